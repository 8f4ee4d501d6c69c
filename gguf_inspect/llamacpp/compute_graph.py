"""llama.cpp's compute buffer: the worst-case (prompt-processing) graph of a layer stack, run
through a re-implementation of ggml's graph allocator.

Why simulate instead of a formula: the buffer is the allocator's high-water mark, which depends
on which activations are alive together, on in-place reuse and on fragmentation. The graph
follows src/models/*.cpp (variants named by ``graph_layout``; MLA in ``graph_mla``, Mamba mixers
in ``graph_ssm``, FFNs in ``graph_ffn``), ``build_attn`` and ``build_qkv`` (llama-graph.cpp)
node by node, in the order ``ggml_build_forward_expand`` walks them (``GraphBuilder``); the
allocator follows ``ggml_gallocr_alloc_graph_impl``, ``ggml_gallocr_allocate_node`` (in-place
reuse of a parent it placed itself, never of a view) and ``ggml_dyn_tallocr_alloc`` /
``_free_bytes`` (ggml-alloc.c). tests/test_compute_trace.py holds each node, placement, reuse
and free to ggml-alloc's own trace of real loads; other models' graphs stay an estimate."""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.llamacpp.allocator import DynamicAllocator
from gguf_inspect.llamacpp.graph_ffn import MoeLayout, dense_ffn, moe_ffn
from gguf_inspect.llamacpp.graph_mla import MlaShape, mla_legacy_qkv, mla_qkv
from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, f16_casts, soft_cap
from gguf_inspect.llamacpp.graph_arch import own_graph
from gguf_inspect.llamacpp.graph_gemma3n import Gemma3nShape
from gguf_inspect.llamacpp.graph_qwen3next import DeltaNetShape
from gguf_inspect.llamacpp.graph_rwkv import RwkvShape
from gguf_inspect.llamacpp.graph_ssm import SsmShape, ssm_mixer, state_inputs

__all__ = ["INPLACE_OPS", "DynamicAllocator", "GraphBuilder", "GraphShape", "Node",
           "build_graph", "estimate_compute_bytes", "reserved_tokens",
           "graph_inputs", "peak_bytes"]

# ggml_op_can_inplace (ggml-alloc.c), for the ops this graph uses
INPLACE_OPS = frozenset({"FILL", "SCALE", "ADD", "ADD_ID", "ADD1", "SUB", "MUL", "DIV", "SQR",
                         "SQRT", "LOG", "UNARY", "ROPE", "RMS_NORM", "CLAMP", "SOFT_MAX"})


def graph_inputs(nodes: list[Node], unused_inputs: tuple[Node, ...] = ()) -> list[Node]:
    """The graph's inputs, each once, in the order ggml_gallocr allocates them before any node
    (the graph's leafs, as the depth-first walk first visited them: a matmul's rotation input
    before the positions its other source's subtree reads), with the unused ones after the
    first; first-use order for nodes no GraphBuilder walked."""
    leafs = list(dict.fromkeys(src for node in nodes for src in node.srcs if src.is_input))
    if all(leaf.visit >= 0 for leaf in leafs):
        leafs.sort(key=lambda leaf: leaf.visit)
    leafs[1:1] = unused_inputs
    return list(dict.fromkeys(leafs))


def peak_bytes(nodes: list[Node], alignment: int, unused_inputs: tuple[Node, ...] = ()) -> int:
    """ggml_gallocr_alloc_graph_impl over ``nodes`` (graph order); leafs are the inputs, and
    ``unused_inputs`` are leafs no node reads (allocated, never freed)."""
    allocator = DynamicAllocator(alignment)
    for leaf in graph_inputs(nodes, unused_inputs):
        _allocate(allocator, leaf)
    for node in nodes:
        if node.view_src is not None:
            node.view_src.n_views += 1
        for src in node.srcs:
            src.n_children += 1
    for node in nodes:
        for src in node.srcs:
            _allocate(allocator, src)
        _allocate(allocator, node)
        for src in node.srcs:
            src.n_children -= 1
            if src.n_children == 0 and src.n_views == 0:
                if src.view_src is not None:
                    base = src.view_src
                    base.n_views -= 1
                    if base.n_views == 0 and base.n_children == 0 and base.allocated:
                        _free(allocator, base)
                elif src.allocated:
                    _free(allocator, src)
    return allocator.max_size


def _allocate(allocator: DynamicAllocator, node: Node) -> None:
    if node.allocated or node.external or node.view_src is not None or node.offset >= 0:
        return
    node.allocated = True
    if node.op in INPLACE_OPS:
        for parent in node.srcs:
            # ggml_gallocr_is_own: only this allocator's tensors, never a view (ROPE on Qcur)
            if not parent.allocated or parent.view_src is not None or parent.is_output:
                continue
            if parent.n_bytes != node.n_bytes or parent.n_children != 1 or parent.n_views != 0:
                continue
            node.offset = parent.offset
            parent.allocated = False
            return
    node.offset = allocator.alloc(node.n_bytes)


def _free(allocator: DynamicAllocator, node: Node) -> None:
    if node.is_output:
        return
    allocator.free(node.offset, node.n_bytes)
    node.allocated = False


@dataclass(frozen=True)
class GraphShape:
    """What the graph's tensor sizes depend on."""

    n_tokens: int
    n_outputs: int
    n_embd: int
    n_ff: tuple[int, ...]
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    head_k: tuple[int, ...]
    head_v: tuple[int, ...]
    n_vocab: int
    n_kv: tuple[int, ...]  # KV cells each layer attends over (its cache's size)
    is_swa: tuple[bool, ...]  # SWA layers use their own mask (build_attn_inp_kv_iswa)
    n_stream: int
    flash_attn: bool
    gemma: bool  # gemma2/3 layout: scaled input, q/k norms, post-attention and post-FFN norms
    v_width_max: int  # V row width when V is stored transposed (no flash attention)
    k_rot: int = 0  # Hadamard rotation size for a quantized K cache (0: none)
    v_rot: int = 0  # the same for a quantized V cache
    kv_f32: tuple[bool, bool] = (False, False)  # K's and V's cache type is f32
    n_seqs: int = 0  # n_seq_max, the reserve's sequences (0: n_stream, which it is unless unified)
    moe: tuple[bool, ...] = ()  # per layer: the FFN is build_moe_ffn (graph_layout)
    moe_layout: MoeLayout | None = None
    layer_norm: bool = False  # LLM_NORM (NORM, weight, bias) instead of LLM_NORM_RMS
    # V stored transposed in the cache; None: when flash attention is off. The cache is made
    # before llama_context::resolve_fused_ops may turn an "auto" flash attention off, so then
    # the graph runs without it over an untransposed V (False)
    v_trans: bool | None = None
    bias: bool = False  # q/k/v, attention-output and FFN biases (in-place ADDs)
    qkv_bias: bool = False  # q/k/v biases only (build_qkv adds each that the file has)
    attn_sinks: bool = False  # attn_sinks: a source of FLASH_ATTN_EXT / SOFT_MAX (gpt-oss)
    ffn_gated: bool = True  # a parallel gate (GLU), else up, bias, in-place activation
    ffn_fused: bool = False  # one up matmul of twice the width, halved by ggml_swiglu (phi3)
    fused_qkv: bool = False  # one wqkv matmul; Q, K and V are views of it (build_qkv)
    residual: str = "sequential"  # or "falcon" / "cohere" / "neox": parallel attention and FFN
    # the residual ADD after attention / after the FFN takes the residual as its first source
    # (models/lfm2.cpp both, models/phi3.cpp the FFN's): in-place reuse tries the first source
    # first, so the order moves where the sum lands
    attn_residual_first: bool = False
    ffn_residual_first: bool = False
    # the output rows gathered after the stack (embeddings_nextn_masked false by default): "stack"
    # the stack's output, t_h_nextn, an output (models/openai-moe.cpp); "norm" the output norm's,
    # then t_h_nextn (nemotron-h.cpp); "" the last layer (build_inp_out_ids)
    late_out_rows: str = ""
    norm_bias: bool = True  # LLM_NORM with a bias (cohere2's LayerNorm has none)
    # the tensors of the FFN's pre-norm and the output norm (their weight and bias)
    ffn_norm_tensor: str = "ffn_norm"
    output_norm_tensor: str = "output_norm"
    pre_norm: bool = True  # attn_norm and ffn_norm before each block (olmo2 has neither)
    post_norm: bool = False  # attn_post_norm and ffn_post_norm after each block (olmo2)
    # "full": build_norm on Qcur/Kcur before the reshape (olmo2); "head": on the reshaped Q and K
    # before ROPE (attn_q_norm: qwen3, gemma3, lfm2); "rope": weightless after ROPE (llama4)
    qk_norm: str = ""
    rope_layers: tuple[bool, ...] = ()  # per layer: ROPE on Q and K (empty: every layer)
    attn_scale: bool = False  # llama4: Q of a no-rope layer scaled by inp_attn_scale (MUL)
    logit_scale: bool = False  # the logits SCALEd (cohere2 f_logit_scale)
    logit_softcap: bool = False  # the logits soft-capped (gemma2 always, gemma3 when set)
    attn_softcap: bool = False  # KQ soft-capped without flash attention (gemma2)
    # the granite family: the embeddings SCALEd in build_inp_embd (f_embedding_scale), the
    # attention and FFN outputs before their residual ADDs (f_residual_scale)
    embd_scale: bool = False
    residual_scale: bool = False
    q_scale: bool = False  # a SCALE of Q after rope (phi3)
    # models/bert.cpp: attention over the batch (build_attn_inp_no_cache), LayerNorm after each
    # residual, no output head (t_embd is the result); the input adds the token-type row and,
    # for BERT itself, the learned position embeddings, then tok_norm
    encoder: bool = False
    type_embd: bool = False
    pos_embd: bool = False
    mla: MlaShape | None = None  # multi-head latent attention (graph_mla)
    # DeepSeek-V2 converted before MLA: the latent decompressed by attn_kv_b (graph_mla)
    mla_legacy: MlaShape | None = None
    # per layer: "" attention, "mamba"/"mamba2"/"shortconv" (graph_ssm), "ffn" an ungated FFN
    # or a MoE (moe[il]) only (nemotron_h); empty: all attention. ssm: their widths; ffn
    # False: no FFN (mamba)
    mixers: tuple[str, ...] = ()
    ssm: SsmShape | None = None
    ffn: bool = True
    rwkv: RwkvShape | None = None  # models/rwkv7.cpp: its own graph (graph_rwkv)
    delta: DeltaNetShape | None = None  # models/qwen3next.cpp: its own graph (graph_qwen3next)
    gemma3n: Gemma3nShape | None = None  # models/gemma3n.cpp: its own graph (graph_gemma3n)


@dataclass(frozen=True)
class Cache:
    """One KV cache's graph inputs (llama_kv_cache::build_input_*, build_attn_inp_kq_mask)."""
    k_idxs: Node
    v_idxs: Node
    mask: Node
    k_rot: Node | None
    v_rot: Node | None


def reserved_tokens(n_tokens: int, n_seqs: int) -> int:
    """graph_reserve (llama-context.cpp) rounds n_tokens up to a multiple of the sequences: the
    reserve ubatch holds n_tokens / n_seqs tokens per sequence."""
    return -(-n_tokens // n_seqs) * n_seqs


def build_graph(shape: GraphShape) -> tuple[list[Node], tuple[Node, ...]]:
    """The prompt-processing graph of ``sched_reserve`` (n_tokens = min(n_ctx, n_ubatch), all
    tokens output), in llama.cpp's node order, and its unused inputs: ``inp_embd``, the
    embeddings-input path that ``build_inp_embd`` (llama-graph.cpp) keeps beside the token path
    and ``ggml_build_forward_select`` leaves allocated for the whole graph."""
    n_seqs = shape.n_seqs or shape.n_stream
    tokens = reserved_tokens(shape.n_tokens, n_seqs)  # n_outputs stays as given
    graph = GraphBuilder(shape.n_embd)
    add, view, weight = graph.add, graph.view, graph.weight
    cache = Node("cache", "NONE", 0, external=True)
    inp_tokens = Node("inp_tokens", "NONE", 4 * tokens, is_input=True)
    inp_pos = Node("inp_pos", "NONE", 4 * tokens, is_input=True)
    v_trans = not shape.flash_attn if shape.v_trans is None else shape.v_trans
    v_idx_count = tokens * shape.v_width_max if v_trans else tokens
    mask_bytes = 2 if shape.flash_attn else 4
    # One set of cache inputs per KV cache: a sliding-window model has two caches (base and
    # SWA, build_attn_inp_kv_iswa), each with its own k/v row indices, mask and rotations.
    caches = {swa: Cache(
        k_idxs=Node(f"k_idxs{n_kv}", "NONE", 8 * tokens, is_input=True),
        v_idxs=Node(f"v_idxs{n_kv}", "NONE", 8 * v_idx_count, is_input=True),
        mask=Node(f"mask{n_kv}", "NONE", mask_bytes * n_kv * tokens, is_input=True),
        k_rot=Node("k_rot", "NONE", 4 * shape.k_rot**2, is_input=True) if shape.k_rot else None,
        v_rot=Node("v_rot", "NONE", 4 * shape.v_rot**2, is_input=True) if shape.v_rot else None)
        for swa, n_kv in dict(zip(shape.is_swa, shape.n_kv)).items()}
    out_ids = Node("out_ids", "NONE", 4 * shape.n_outputs, is_input=True)
    own = own_graph(shape, tokens, n_seqs, caches)  # rwkv7, qwen3next, gemma3n (graph_arch)
    if own is not None:
        return own

    def rotate(x: Node, rot: Node | None, width: int) -> Node:
        """llama_mul_mat_hadamard (llama-impl.h): a matmul by the rotation input."""
        if rot is None:
            return x
        return add(x.name + "_rot", "MUL_MAT", width * tokens, rot, view(x))

    def norm(x: Node, width: int, rows: int = tokens, layer: bool = False,
             role: str = "norm_w", tensor: str = "") -> Node:
        """build_norm: RMS_NORM (in place) or NORM (never), the weight's MUL, the bias; the
        scheduler places them by ``tensor`` (``<tensor>.weight`` and ``.bias``) or, without
        one, by the role's tensor (WEIGHT_ROLES)."""
        op = "NORM" if layer else "RMS_NORM"
        scale = graph.weight_of(f"{tensor}.weight") if tensor else weight
        out = add(role, "MUL", width * rows, add("norm", op, width * rows, x), scale)
        if layer and shape.norm_bias:
            bias = graph.weight_of(f"{tensor}.bias") if tensor else weight
            return add(role + "_b", "ADD", width * rows, out, bias)
        return out

    def biased(x: Node, width: int, rows: int = tokens, bias: bool = shape.bias) -> Node:
        return add(x.name + "_b", "ADD", width * rows, x, weight) if bias else x

    inp_l = add("embd", "GET_ROWS", shape.n_embd * tokens, weight, inp_tokens)
    if shape.embd_scale:
        inp_l = add("embd_scaled", "SCALE", shape.n_embd * tokens, inp_l)
    graph.expand(inp_l)  # build_inp_embd
    if shape.gemma:
        inp_l = add("inp_scaled", "SCALE", shape.n_embd * tokens, inp_l)
    if shape.type_embd:  # the first row of type_embd (a view of the weight: no memory here)
        inp_l = add("inp_typed", "ADD", shape.n_embd * tokens, inp_l, weight)
    if shape.pos_embd:
        positions = add("pos_embd", "GET_ROWS", shape.n_embd * tokens,
                        graph.weight_of("position_embd.weight"), inp_pos)
        inp_l = add("inp_embd", "ADD", shape.n_embd * tokens, positions, inp_l)
    if shape.encoder:  # tok_norm, built as layer 0's (build_norm(..., 0), models/bert.cpp:95):
        graph.layer = 0  # its NORM is pinned with layer 0's norms (graph_get_cb)
        inp_l = norm(inp_l, shape.n_embd, layer=True, tensor="token_embd_norm")
    n_layer = len(shape.n_head)
    iswa = any(shape.is_swa)  # two caches: build_attn_inp_kv_iswa and its build_attn
    # build_inp_attn_scale (llama-graph.cpp): one float per token
    attn_scale = Node("inp_attn_scale", "NONE", 4 * tokens, is_input=True)
    post_norm = shape.gemma or shape.post_norm
    # build_rs_inp (llama-graph.cpp): the recurrent memory's one input, when a layer reads it
    state = state_inputs(shape.ssm) if shape.ssm is not None and any(shape.mixers) else None
    def attention(il: int, attn_in: Node) -> Node:
        """build_qkv, rope, the cache writes and build_attn up to the output projection."""
        cache_inputs = caches[shape.is_swa[il]]
        k_rot, v_rot = cache_inputs.k_rot, cache_inputs.v_rot
        q_width = shape.head_k[il] * shape.n_head[il]
        k_width = shape.head_k[il] * shape.n_head_kv[il]
        v_width = shape.head_v[il] * shape.n_head_kv[il]
        parts = (("Qcur", q_width), ("Kcur", k_width), ("Vcur", v_width))
        if shape.mla is not None:  # models/deepseek2.cpp, is_mla
            q, k, v = mla_qkv(graph, attn_in, shape.mla, shape.n_head[il], tokens, inp_pos,
                              norm)
        elif shape.mla_legacy is not None:  # models/deepseek2.cpp without is_mla: plain MHA
            q, k, v_mat = mla_legacy_qkv(graph, attn_in, shape.mla_legacy, shape.n_head[il],
                                         tokens, inp_pos, norm)
            q, k, v = rotate(q, k_rot, q_width), rotate(k, k_rot, k_width), rotate(
                v_mat, v_rot, v_width)
        else:
            if shape.fused_qkv:  # build_qkv: Q, K and V are views of one (biased) matmul
                fused = q_width + k_width + v_width
                qkv = biased(add("wqkv", "MUL_MAT", fused * tokens, weight, attn_in), fused)
                # strided ggml_view_3d of the fused rows: each copy spans tokens - 1 rows + width
                q, k_mat, v_mat = (view(qkv, name, (tokens - 1) * fused + width)
                                   for name, width in parts)
            else:  # build_qkv: each bias (when the file has it) after its matmul
                q, k_mat, v_mat = (biased(add(name, "MUL_MAT", width * tokens, weight, attn_in),
                                          width, bias=shape.bias or shape.qkv_bias)
                                   for name, width in parts)
            rope = not shape.rope_layers or shape.rope_layers[il]
            if shape.qk_norm == "full":  # models/olmo2.cpp: on the matmuls, before the reshape
                q = norm(q, q_width, role="attn_q_norm")
                k_mat = norm(k_mat, k_width, role="attn_k_norm")
            head_norm = shape.qk_norm == "head"  # models/qwen3.cpp: build_norm, then ROPE
            q = norm(view(q), q_width, role="attn_q_norm") if head_norm else view(q)
            if rope:  # ROPE on the reshaped Qcur (a view: never in place) or on its norm
                q = add("Qrope", "ROPE", q_width * tokens, q, inp_pos)
            if shape.gemma or (rope and shape.q_scale):  # models/gemma2.cpp f_attention_scale,
                q = add("Qscaled", "SCALE", q_width * tokens, q)  # phi3.cpp 1/sqrt(head)
            elif not rope and shape.attn_scale:  # models/llama4.cpp: Q times the temperature
                q = add("Qscaled", "MUL", q_width * tokens, q, attn_scale)
            k = view(k_mat)
            if head_norm:
                k = norm(k, k_width, role="attn_k_norm")
            if rope:
                k = add("Krope", "ROPE", k_width * tokens, k, inp_pos)
            if rope and shape.qk_norm == "rope":  # llama4: ggml_rms_norm, no weight, in place
                q = add("Qcur_normed", "RMS_NORM", q_width * tokens, q)
                k = add("Kcur_normed", "RMS_NORM", k_width * tokens, k)
            q, k = rotate(q, k_rot, q_width), rotate(k, k_rot, k_width)
            if shape.fused_qkv and v_rot is not None:  # a view of wqkv is not contiguous:
                v_mat = add("v_cont", "CONT", v_width * tokens, view(v_mat))  # hadamard copies
            v = rotate(v_mat, v_rot, v_width)
        keys = values = cache
        if shape.encoder:  # build_attn (no cache): K and V are the batch's own
            for part in (q, k, v):
                graph.expand(part)
            if shape.flash_attn:  # build_attn_mha: ggml_cast of K and V to F16 (half the bytes)
                keys = add("k_f16", "CPY", k_width * tokens // 2, view(k))
                values = add("v_f16", "CPY", v_width * tokens // 2, view(v))
            else:  # V is not transposed: ggml_cont of its transpose
                keys, values = view(k), add("v_cont", "CONT", v_width * tokens, view(v))
        else:
            # build_attn expands q, k, v for the sliding-window input
            # (llm_graph_input_attn_kv_iswa) and q, v, k for the plain one
            # (llm_graph_input_attn_kv), then the two cache writes
            for part in (q, k, v) if iswa else (q, v, k):
                graph.expand(part)
            graph.expand(add("set_k", "SET_ROWS", 0, view(k), cache_inputs.k_idxs, cache,
                             view_of=cache))
            if shape.mla is None:  # MLA's build_attn_inp_k: the K cache only
                v_rows = view(v)  # cpy_v copies a strided V into the transposed cache
                if shape.fused_qkv and v_rot is None and v_trans:
                    v_rows = add("v_cont", "CONT", v_width * tokens, v_rows)
                graph.expand(add("set_v", "SET_ROWS", 0, v_rows, cache_inputs.v_idxs, cache,
                                 view_of=cache))
        mask = cache_inputs.mask
        sinks = (graph.weight_of("attn_sinks.weight"),) if shape.attn_sinks else ()  # *_add_sinks
        # MLA's V: a kv_lora_rank-wide view of the K cache (build_attn, llm_graph_input_attn_k)
        v_head = shape.head_v[il] if shape.mla is None else shape.mla.n_lora_kv
        heads_out = v_head * shape.n_head[il]
        # MLA decompresses each head's latent output with wv_b (v_mla in build_attn_mha)
        out_width = heads_out if shape.mla is None else shape.mla.head_v * shape.n_head[il]
        # the cache views span every cell of every stream, K n_embd_k_gqa wide (MLA's: its
        # key_length, the latent and the rope part, in one KV head)
        heads_kv = 1 if shape.mla is not None else shape.n_head_kv[il]
        cells = shape.n_kv[il] * shape.n_stream
        if shape.flash_attn:
            if not shape.encoder:
                keys, values = f16_casts(graph, cache, shape.kv_f32,
                                         shape.head_k[il] * heads_kv * cells,
                                         v_head * heads_kv * cells)
            attn = add("fattn", "FLASH_ATTN_EXT", heads_out * tokens, view(q), keys, values,
                       mask, *sinks)
            if shape.mla is not None:
                attn = add("fattn_mla", "MUL_MAT", out_width * tokens, weight, view(attn))
                attn = add("fattn_mla_cont", "CONT", out_width * tokens, view(attn))
        else:
            scores = shape.n_kv[il] * tokens * shape.n_head[il]
            if shape.mla is not None or not v_trans:  # V is not transposed (MLA's is a view
                # of the K cache): the ggml_cont of its transpose keeps the cache's type (F16:
                # half f32's bytes; MLA's V is K's, whose type llama.cpp holds to V's)
                values = add("v_cont", "CONT", v_head * heads_kv * cells
                             // (1 if shape.kv_f32[1] else 2), view(cache))
            kq = add("kq", "MUL_MAT", scores, keys, view(q))
            if shape.attn_softcap:  # build_attn_mha: hparams.attn_soft_cap (set by gemma2)
                kq = soft_cap(graph, kq, scores)
            kq = add("kq_soft_max", "SOFT_MAX", scores, kq, mask, *sinks)
            kqv = add("kqv", "MUL_MAT", heads_out * tokens, values, kq)
            if shape.mla is not None:
                kqv = add("kqv_mla", "MUL_MAT", out_width * tokens, weight, kqv)
            attn = add("kqv_out", "CONT", out_width * tokens, view(kqv))
        graph.expand(attn)  # build_attn_mha expands its result before the output projection
        attn = rotate(attn, v_rot, out_width)  # undo the V rotation on the attention output
        cur = biased(add("attn_out", "MUL_MAT", shape.n_embd * tokens, weight, view(attn)),
                     shape.n_embd)
        return cur

    for il in range(n_layer):
        graph.layer = il
        attn_in = (norm(inp_l, shape.n_embd, layer=shape.layer_norm, role="attn_norm")
                   if shape.pre_norm else inp_l)
        mixer = shape.mixers[il] if shape.mixers else ""
        moe = bool(shape.moe) and shape.moe[il]  # this layer's FFN is build_moe_ffn
        if mixer == "ffn" and moe and shape.moe_layout is not None:
            cur = moe_ffn(graph, attn_in, shape.moe_layout, tokens)  # nemotron_h_moe's experts
        elif mixer == "ffn":  # models/nemotron-h.cpp build_ffn_layer: up, ReLU^2 in place, down
            # (its optional ffn_up_b / ffn_down_b are not modelled: no fixture has them)
            cur = dense_ffn(graph, attn_in, shape.n_ff[il], tokens, gated=False, relu_sqr=True)
        elif mixer and shape.ssm is not None and state is not None:  # graph_ssm
            cur = ssm_mixer(graph, attn_in, shape.ssm, mixer, tokens, n_seqs, state)
        else:
            cur = attention(il, attn_in)
        last = il == n_layer - 1 and not shape.late_out_rows
        rows = shape.n_outputs if last else tokens

        def ffn(x: Node) -> Node:
            if moe and shape.moe_layout is not None:
                return moe_ffn(graph, x, shape.moe_layout, rows)
            return dense_ffn(graph, x, shape.n_ff[il], rows, shape.ffn_gated, shape.bias,
                             shape.ffn_fused)

        if last:  # build_inp_out_ids: the rows that produce outputs
            cur = add("out_rows", "GET_ROWS", shape.n_embd * rows, cur, out_ids)
        if post_norm:  # attn_post_norm, on the output rows
            cur = norm(cur, shape.n_embd, rows, role="attn_post_norm")
        if last:
            inp_l = add("inp_rows", "GET_ROWS", shape.n_embd * rows, inp_l, out_ids)
        if not shape.ffn:  # models/mamba.cpp: the mixer's output plus the residual, no FFN
            inp_l = add("l_out", "ADD", shape.n_embd * rows, cur, inp_l)
            continue
        if shape.residual in ("falcon", "cohere"):  # the FFN reads attn_norm
            if last:
                attn_in = add("norm_rows", "GET_ROWS", shape.n_embd * rows, attn_in, out_ids)
            # models/falcon.cpp: (ffn + attn) + inpL; models/cohere2.cpp: (ffn + inpL) + attn
            first, second = (cur, inp_l) if shape.residual == "falcon" else (inp_l, cur)
            cur = add("ffn_inp", "ADD", shape.n_embd * rows, ffn(attn_in), first)
            inp_l = add("l_out", "ADD", shape.n_embd * rows, cur, second)
            continue
        if shape.encoder:  # models/bert.cpp: LayerNorm after each residual add
            cur = add("attn_res", "ADD", shape.n_embd * rows, cur, inp_l)
            residual = norm(cur, shape.n_embd, rows, layer=True, tensor="attn_output_norm")
            cur = add("ffn_res", "ADD", shape.n_embd * rows, ffn(residual), residual)
            inp_l = norm(cur, shape.n_embd, rows, layer=True, tensor="layer_output_norm")
            continue
        if shape.residual == "neox":  # models/gptneox.cpp, use_par_res
            ffn_out = ffn(norm(inp_l, shape.n_embd, rows, shape.layer_norm, tensor="ffn_norm"))
            ffn_out = add("ffn_out", "ADD", shape.n_embd * rows, ffn_out, inp_l)
            inp_l = add("l_out", "ADD", shape.n_embd * rows, ffn_out, cur)
            continue
        if shape.residual_scale:
            cur = add("attn_scaled", "SCALE", shape.n_embd * rows, cur)
        residual = add("ffn_inp", "ADD", shape.n_embd * rows,
                       *((inp_l, cur) if shape.attn_residual_first else (cur, inp_l)))
        cur = ffn(norm(residual, shape.n_embd, rows, shape.layer_norm, role="ffn_norm",
                       tensor=shape.ffn_norm_tensor) if shape.pre_norm else residual)
        if post_norm:
            cur = norm(cur, shape.n_embd, rows, role="ffn_post_norm")
        if shape.residual_scale:
            cur = add("ffn_scaled", "SCALE", shape.n_embd * rows, cur)
        first, second = (residual, cur) if shape.ffn_residual_first else (cur, residual)
        inp_l = add("l_out", "ADD", shape.n_embd * rows, first, second)
    graph.layer = n_layer  # the output head
    if shape.late_out_rows == "stack":  # the stack's output is t_h_nextn (set_outputs)
        inp_l.is_output = True
        inp_l = add("out_rows", "GET_ROWS", shape.n_embd * shape.n_outputs, inp_l, out_ids)
    inp_embd = Node("inp_embd", "NONE", 4 * shape.n_embd * tokens, is_input=True)
    if shape.encoder:  # no output head: t_embd is the last layer's output
        inp_l.is_output = True
        graph.expand(inp_l)
        return graph.nodes, (inp_embd,)
    if shape.late_out_rows == "norm":  # the norm over every token is t_h_nextn, an output
        h_nextn = norm(inp_l, shape.n_embd, tokens, shape.layer_norm,
                       tensor=shape.output_norm_tensor)
        h_nextn.is_output = True
        result_norm = add("out_rows", "GET_ROWS", shape.n_embd * shape.n_outputs, h_nextn,
                          out_ids)
    else:
        result_norm = norm(inp_l, shape.n_embd, shape.n_outputs, shape.layer_norm,
                           tensor=shape.output_norm_tensor)
    result_norm.is_output = True
    logits = add("result_output", "MUL_MAT", shape.n_vocab * shape.n_outputs, weight, result_norm)
    if shape.logit_scale:  # t_logits is the SCALE (in place over the matmul)
        logits = add("result_scaled", "SCALE", shape.n_vocab * shape.n_outputs, logits)
    if shape.logit_softcap:
        logits = soft_cap(graph, logits, shape.n_vocab * shape.n_outputs)
    logits.is_output = True
    graph.expand(logits)
    return graph.nodes, (inp_embd,)


def estimate_compute_bytes(shape: GraphShape, alignment: int) -> int:
    nodes, unused_inputs = build_graph(shape)
    return peak_bytes(nodes, alignment, unused_inputs)
