"""A multimodal projector (mmproj) as llama.cpp's mtmd loads it: its weights buffer and the vision
encoder's compute buffer for the warmup image.

Follows tools/mtmd/clip.cpp (vendored in llama-cpp-python 0.3.36): ``clip_model_loader``
(``load_hparams``: the ``clip.*`` keys; ``load_tensors``: every tensor goes into one buffer of the
backend's default buffer type, ``ggml_backend_alloc_ctx_tensors_from_buft``), ``clip_ctx`` (the
GPU backend when ``use_gpu``, which ``--no-mmproj-offload`` turns off, else the CPU), and
``warmup`` / ``get_dummy_batch`` / ``reserve_compute_meta`` (the graph for a square image of
``warmup_image_size`` = ``clip.vision.image_size``, flash attention tried first and kept when
the backend runs it, as the CPU and CUDA backends do). The compute graph is the LLaVA one
(tools/mtmd/models/llava.cpp with clip.cpp's ``build_inp``, ``build_norm``, ``build_attn``,
``build_ffn``) run through the graph-allocator simulation of ``compute_graph``; for other
projector types it is an approximation, and says so.
"""

from __future__ import annotations

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.companions import ProjectorShape
from gguf_inspect.llamacpp.compute_graph import Node, peak_bytes
from gguf_inspect.llamacpp.placement import (
    CPU_ALIGNMENT,
    CUDA_ALIGNMENT,
    HOST,
    BufferEstimate,
    cuda_row_padding,
    pad,
)

F32, F16 = 4, 2
LLAVA_TYPES = frozenset({"mlp"})  # the projector types whose graph is simulated node by node


def projector_weights(gguf: GGUFFile, offload: bool, gpu_index: int = 0) -> BufferEstimate:
    """One weights buffer: every tensor PAD(alloc_size, alignment) in the backend's default
    buffer type (load_tensors); CUDA pads quantized rows to 512 as for the model."""
    if offload:
        size = sum(pad(t.n_bytes + cuda_row_padding(t.type_id, t.row_length), CUDA_ALIGNMENT)
                   for t in gguf.tensors)
        return BufferEstimate(f"gpu{gpu_index}", f"CUDA{gpu_index}", "mmproj", size, True)
    size = sum(pad(t.n_bytes, CPU_ALIGNMENT) for t in gguf.tensors)
    return BufferEstimate(HOST, "CPU", "mmproj", size, True)


def projector_compute(shape: ProjectorShape, offload: bool, gpu_index: int = 0) -> BufferEstimate:
    """The graph allocator's peak for the warmup image (reserve_compute_meta): an estimate."""
    alignment = CUDA_ALIGNMENT if offload else CPU_ALIGNMENT
    size = peak_bytes(vision_graph(shape), alignment)
    if offload:
        return BufferEstimate(f"gpu{gpu_index}", f"CUDA{gpu_index}", "mmproj_compute", size, False)
    return BufferEstimate(HOST, "CPU", "mmproj_compute", size, False)


def projector_notes(shape: ProjectorShape) -> tuple[str, ...]:
    notes = [f"projector compute buffer: the warmup image {shape.image_size}x{shape.image_size} "
             "(clip.cpp get_dummy_batch), flash attention on, an estimate"]
    if shape.projector_type not in LLAVA_TYPES:
        notes.append(f"projector type {shape.projector_type}: its compute graph is approximated "
                     "by the LLaVA one (models/llava.cpp)")
    return tuple(notes)


# ---- the vision graph (clip_graph_llava::build), in ggml's node order ------------------------


class _Graph:
    """Collects nodes in the order ggml_build_forward_expand visits them (sources first)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.weight = Node("weight", "NONE", 0, external=True)

    def op(self, name: str, op: str, n_bytes: int, *srcs: Node) -> Node:
        node = Node(name, op, n_bytes, srcs)
        self.nodes.append(node)
        return node

    def view(self, name: str, src: Node) -> Node:
        """reshape / permute / transpose: a node that allocates nothing."""
        base = src.view_src or src
        node = Node(name, "VIEW", src.n_bytes, (src,), view_src=None if base.external else base)
        if base.external:
            node.external = True
        self.nodes.append(node)
        return node

    def input(self, name: str, n_bytes: int) -> Node:
        return Node(name, "NONE", n_bytes, is_input=True)

    def norm(self, cur: Node, with_bias: bool) -> Node:
        """build_norm (NORM_TYPE_NORMAL): ggml_norm, then * weight (+ bias)."""
        cur = self.op("norm", "NORM", cur.n_bytes, cur)
        cur = self.op("norm_w", "MUL", cur.n_bytes, cur, self.weight)
        return self.op("norm_b", "ADD", cur.n_bytes, cur, self.weight) if with_bias else cur

    def linear(self, cur: Node, n_out: int, n_rows: int, bias: bool) -> Node:
        cur = self.op("mul_mat", "MUL_MAT", F32 * n_out * n_rows, self.weight, cur)
        return self.op("bias", "ADD", cur.n_bytes, cur, self.weight) if bias else cur


def vision_graph(shape: ProjectorShape) -> list[Node]:
    """clip_graph_llava::build for one warmup image, flash attention enabled."""
    g = _Graph()
    n_patches, n_embd = shape.n_patches, shape.n_embd
    n_pos = n_patches + (1 if shape.has_class_embd else 0)
    patch_area = shape.patch_size * shape.patch_size * 3
    # build_inp: ggml_conv_2d = im2col (f16) + mul_mat, then permute/cont, transpose/cont
    raw = g.input("inp_raw", F32 * shape.image_size * shape.image_size * 3)
    im2col = g.op("im2col", "IM2COL", F16 * patch_area * n_patches, g.weight, raw)
    cols = g.view("im2col_2d", im2col)
    kernel = g.view("kernel_2d", g.weight)
    conv = g.op("conv", "MUL_MAT", F32 * n_patches * n_embd, cols, kernel)
    conv = g.op("conv_cont", "CONT", conv.n_bytes, g.view("permute", g.view("reshape", conv)))
    cur = g.op("inp", "CONT", conv.n_bytes, g.view("transpose", g.view("reshape", conv)))
    if shape.has_patch_bias:
        cur = g.op("patch_bias", "ADD", cur.n_bytes, cur, g.weight)
    if shape.has_class_embd:
        cur = g.op("concat", "CONCAT", F32 * n_embd * n_pos, cur, g.weight)
    positions = g.input("positions", 4 * n_pos)
    pos_embd = g.op("pos_rows", "GET_ROWS", F32 * n_embd * n_pos, g.weight, positions)
    cur = g.op("pos_add", "ADD", cur.n_bytes, cur, pos_embd)
    if shape.has_pre_ln:
        cur = g.norm(cur, True)
    for _layer in range(_layers_run(shape)):
        cur = _vision_layer(g, shape, cur, n_pos)
    if shape.has_post_ln:
        cur = g.norm(cur, True)
    # the LLaVA projector: get_rows over the patches (drops the class token), mm.0, GELU, mm.2
    patches = g.input("patches", 4 * n_patches)
    cur = g.op("patch_rows", "GET_ROWS", F32 * n_embd * n_patches,
               g.view("reshape", cur), patches)
    for index, width in enumerate(shape.mm_widths):
        if index:
            cur = g.op("gelu", "UNARY", cur.n_bytes, cur)
        cur = g.linear(cur, width, n_patches, bias=True)
    return g.nodes


def _layers_run(shape: ProjectorShape) -> int:
    """clip_graph_llava stops at the deepest feature layer, by default the second to last."""
    deepest = max(shape.feature_layers, default=-1)
    return deepest if deepest >= 0 else shape.n_layer - 1


def _vision_layer(g: _Graph, shape: ProjectorShape, residual: Node, n_pos: int) -> Node:
    n_embd, bias = shape.n_embd, shape.has_biases
    cur = g.norm(residual, True)
    # Q, K, V (build_attn's ggml_build_forward_order keeps them in this order)
    qkv = [g.view("reshape", g.linear(cur, n_embd, n_pos, bias)) for _ in range(3)]
    q = g.view("permute", qkv[0])
    k = g.op("k_f16", "CPY", F16 * n_embd * n_pos, g.view("permute", qkv[1]))
    v = g.op("v_f16", "CPY", F16 * n_embd * n_pos, g.view("permute", qkv[2]))
    attn = g.op("flash_attn", "FLASH_ATTN_EXT", F32 * n_embd * n_pos, q, k, v)
    cur = g.linear(g.view("reshape", attn), n_embd, n_pos, bias)
    cur = g.op("attn_residual", "ADD", cur.n_bytes, cur, residual)
    inner = g.norm(cur, True)
    inner = g.linear(inner, shape.n_ff, n_pos, bias)
    inner = g.op("ffn_gelu", "UNARY", inner.n_bytes, inner)
    inner = g.linear(inner, n_embd, n_pos, bias)
    return g.op("layer_out", "ADD", inner.n_bytes, cur, inner)
