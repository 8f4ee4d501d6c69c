"""The compute buffers of a GPU build: which device runs each node of the worst-case graph, what
the scheduler copies between devices, and each device's allocator peak.

Follows ``ggml_backend_sched_split_graph`` (ggml/src/ggml-backend.cpp): pass 1
(``ggml_backend_sched_backend_id_from_cur``: graph inputs on the CPU, ops next to their weights,
a host weight's large-batch op offloaded to the first GPU when ``op_offload`` is on, writes into
the KV cache on the cache's device), pass 2 (expand GPU assignments down then up, skipping the
CPU, then any assignment down and up), pass 5 (a split per run of one device, and a new one
at a weight on another device once the split has inputs; a source on another device is copied
into the split's device once per backend, ``tensor_id_copy``), and the graph copy it hands to
ggml-alloc (each copy allocated at the start of its split, after an op-NONE ``input_dep`` that
reads its source: ggml-alloc counts no view of an op-NONE node, so the source is freed there
unless a later node reads it; graph inputs are freed after their last reader, as nodes are,
unless pipelined). With pipeline parallelism (``n_copies`` =
``GGML_SCHED_MAX_COPIES`` = 4) every graph input and every copy is made four times, flagged
input and output, allocated first and never freed. ``ggml_backend_cuda_device_offload_op``
(ggml-cuda.cu) offloads an op whose batch is at least 32 rows, never a GET_ROWS; an RPC device
has no offload_op, so nothing is offloaded to it (llamacpp/backends.py).

The graph itself is ``compute_graph.build_graph``; this module only assigns and allocates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from typing import TYPE_CHECKING

from gguf_inspect.core.constants import ggml_type_from_name, row_bytes
from gguf_inspect.llamacpp.compute_graph import (
    INPLACE_OPS,
    DynamicAllocator,
    GraphShape,
    Node,
    build_graph,
    graph_inputs,
)
from gguf_inspect.llamacpp.backends import (
    CPU_ALIGNMENT,
    CUDA_HOST,
    device_alignment,
    device_buffer,
    host_buffer,
    offloads_ops,
)
from gguf_inspect.llamacpp.hparams import Hyperparameters
from gguf_inspect.llamacpp.placement import (
    HOST,
    BufferEstimate,
    Placement,
    TensorPlacement,
    alloc_size,
)
from gguf_inspect.llamacpp.settings import LlamaSettings, all_overrides

if TYPE_CHECKING:
    from gguf_inspect.llamacpp.kv_cache import KVCacheEstimate, ResolvedContext

SCHED_MAX_COPIES = 4  # GGML_SCHED_MAX_COPIES, ggml-backend.cpp
PIN_NORMS_BELOW = 32  # ubatch.n_tokens < 32 in llama_context::graph_get_cb
OFFLOAD_MIN_BATCH = 32  # op_offload_min_batch_size (GGML_OP_OFFLOAD_MIN_BATCH), ggml-cuda.cu
NOT_BY_WEIGHT = frozenset({"ROPE", "FLASH_ATTN_EXT"})  # pass 1 skips their small weights
# Nodes that read a view of their weight (bert's token-type row, ggml_view_1d of token_types in
# models/bert.cpp): the view has no buffer when the graph is built, and pass 1
# (ggml_backend_sched_backend_id_from_cur) follows only a source whose own buffer holds
# weights; the view is then copied to the node's device as a split input.
READS_WEIGHT_VIEW = {"inp_typed": "token_types:row0"}  # the view's entry in DevicePlan.weights
# The weight each matmul of build_graph reads (LLM_TENSOR names); norms are numbered per layer.
WEIGHT_ROLES = {"Qcur": "attn_q", "Kcur": "attn_k", "Vcur": "attn_v", "attn_out": "attn_output",
                "wqkv": "attn_qkv",  # build_qkv's fused matmul (phi3, falcon, ...)
                "ffn_gate": "ffn_gate", "ffn_up": "ffn_up", "ffn_out": "ffn_down",
                "attn_norm": "attn_norm", "ffn_norm": "ffn_norm",
                # the per-head Q/K norms and the post-norms (build_norm with their weights)
                "attn_q_norm": "attn_q_norm", "attn_k_norm": "attn_k_norm",
                "attn_post_norm": "post_attention_norm", "ffn_post_norm": "post_ffw_norm",
                # build_moe_ffn (graph_ffn.moe_ffn): the router and the expert matmuls
                "ffn_moe_logits": "ffn_gate_inp", "ffn_moe_gate": "ffn_gate_exps",
                "ffn_moe_up": "ffn_up_exps", "ffn_moe_down": "ffn_down_exps",
                # multi-head latent attention (graph_mla)
                "q_a": "attn_q_a", "q": "attn_q_b", "q_lite": "attn_q",
                "kv_cmpr_pe": "attn_kv_a_mqa", "attn_q_a_norm": "attn_q_a_norm",
                "attn_kv_a_norm": "attn_kv_a_norm",
                "q_nope_absorbed": "attn_k_b", "fattn_mla": "attn_v_b", "kqv_mla": "attn_v_b"}


# Nodes reading a weight of no block (gemma3n's altup and per-layer projections, models/
# gemma3n.cpp): the tensor each reads, on its own device (altup_proj and altup_unembd_proj
# are output-layer tensors, per_layer_model_proj and per_layer_proj_norm block 0's, and
# per_layer_token_embd an input-layer tensor: LLM_TENSOR_INFOS, llama-arch.cpp)
MODEL_WEIGHTS = {"altup_added": "altup_proj.weight", "altup_unembd": "altup_unembd_proj.weight",
                 "per_layer_rows": "per_layer_token_embd.weight",
                 "per_layer_mm": "per_layer_model_proj.weight",
                 "per_layer_norm": "per_layer_proj_norm.weight"}


@dataclass(frozen=True)
class DevicePlan:
    """Where things live: each layer's device (index n_layer: the output head), each layer's KV
    device, and every weight's device and CUDA allocation size by tensor name."""

    layer_device: tuple[str, ...]
    kv_device: tuple[str, ...]
    kv_view_bytes: tuple[tuple[int, int], ...]  # per layer: the K and V views attention reads
    weights: dict[str, tuple[str, int]]
    first_gpu: str  # backend 0: op_offload's target
    op_offload: bool = True
    n_copies: int = 1
    # each device's buffer type name (CUDA0, RPC0[host:port]) and their alignment; the CPU
    # backend's compute buffer type (CUDA_Host on a CUDA build, else CPU)
    device_buffers: dict[str, str] = field(default_factory=dict)
    device_alignment: int = 128
    host_buffer: str = CUDA_HOST
    # llama_context::graph_get_cb pins each layer's "norm" to the layer's device when every
    # layer is offloaded (or the batch is under 32 tokens)
    pin_norms: bool = False
    # build_attn_mha (llama-graph.cpp) without flash attention and with the KV cache on the
    # host (--no-kv-offload) pins each layer's attention output (our "kqv_out") to the CPU
    pin_attention_to_host: bool = False


@dataclass(eq=False)
class Placed:
    """A node of the graph copy: the graph's node, or a copy of one on another device."""

    node: Node
    device: str
    srcs: list[Placed] = field(default_factory=list)
    keep: bool = False  # an output (with n_copies > 1 also every input and copy): never freed
    n_children: int = 0
    offset: int = -1
    view_of: Placed | None = None  # a view's base (which owns the memory)
    n_views: int = 0  # views of this base not yet done with


def split_compute_bytes(shape: GraphShape, plan: DevicePlan, gpu_alignment: int,
                        host_alignment: int) -> dict[str, int]:
    """Each device's compute buffer: the allocator's peak over the nodes it runs and the copies
    it receives ("host" is the CPU backend's, a CUDA_Host buffer)."""
    nodes, unused_inputs, weights, devices = _assigned_graph(shape, plan)
    order, leafs = _graph_copy(nodes, unused_inputs, devices, weights, plan)
    allocators: dict[str, DynamicAllocator] = {}

    def allocator(device: str) -> DynamicAllocator:
        if device not in allocators:
            allocators[device] = DynamicAllocator(host_alignment if device == HOST
                                                  else gpu_alignment)
        return allocators[device]

    for leaf in leafs:
        _allocate(leaf, allocator(leaf.device))
    for item in order:  # ggml_gallocr_alloc_graph_impl's counts: children, and views per base
        if item.view_of is not None:
            item.view_of.n_views += 1
        for src in item.srcs:
            src.n_children += 1
    for item in order:
        if item.node.view_src is None:  # a view owns no memory (ggml_gallocr_allocate_node)
            _allocate(item, allocator(item.device))
        for src in item.srcs:
            src.n_children -= 1
            if src.n_children or src.n_views:
                continue
            # a view done with: its base is freed once no view and no child holds it
            base = src.view_of
            if base is not None:
                base.n_views -= 1
                if base.n_views == 0 and base.n_children == 0:
                    _free(base, allocator(base.device))
            elif src.node.view_src is None:
                _free(src, allocator(src.device))
    return {device: alloc.max_size for device, alloc in allocators.items()}


def _assigned_graph(shape: GraphShape, plan: DevicePlan
                    ) -> tuple[list[Node], tuple[Node, ...], dict[int, tuple[str, int] | None],
                               dict[int, str]]:
    """``shape``'s graph, its unused inputs, the weight each node reads and each node's device
    (passes 1, 2 and 4 of ggml_backend_sched_split_graph)."""
    nodes, unused_inputs = build_graph(shape)
    # each node's layer is the one the graph builder stamped on it (the il of llama.cpp's
    # callback; -1 before the first block, n_layer the head). NextN blocks are in the layer
    # split, not in the graph: the head's nodes (il -1) belong to the split's output entry
    n_layer, n_blocks = len(plan.layer_device) - 1, len(shape.n_head)
    for node in nodes:
        if n_blocks <= node.layer < n_layer:
            node.layer = n_layer
    weights = {id(node): _weight(node, plan, shape) for node in nodes}
    return nodes, unused_inputs, weights, _assign(nodes, weights, plan, shape.n_tokens)


def _free(item: Placed, allocator: DynamicAllocator) -> None:
    """ggml_gallocr_free_node: never an input, an output or a kept copy source."""
    if not item.keep and item.offset >= 0:
        allocator.free(item.offset, item.node.n_bytes)
        item.offset = -2  # freed


def _allocate(item: Placed, allocator: DynamicAllocator) -> None:
    """ggml_gallocr_allocate_node: in place over a same-sized parent used only here."""
    if item.offset != -1:
        return
    if item.node.op in INPLACE_OPS:
        for parent in item.srcs:
            if (parent.offset >= 0 and not parent.keep and parent.device == item.device
                    and parent.node.n_bytes == item.node.n_bytes and parent.n_children == 1
                    and parent.n_views == 0 and parent.node.view_src is None):
                item.offset, parent.offset = parent.offset, -3  # taken over
                return
    item.offset = allocator.alloc(item.node.n_bytes)


def _weight(node: Node, plan: DevicePlan, shape: GraphShape) -> tuple[str, int] | None:
    """The device and size of the weight ``node`` reads, None when it reads none."""
    source = next((src for src in node.srcs if src.external and src.name == "weight"), None)
    if source is None:
        return None
    layer = node.layer
    n_layer = len(plan.layer_device) - 1
    device = HOST if layer < 0 else plan.layer_device[min(max(layer, 0), n_layer)]
    return plan.weights.get(weight_name(node, source, plan) or "", (device, 4 * shape.n_embd))


def weight_name(node: Node, source: Node, plan: DevicePlan) -> str | None:
    """The tensor (DevicePlan.weights' key) of the weight ``source`` that ``node`` reads, from
    the graph's name for the tensor or the node's role; None when neither names one (the
    weight is then taken to live with the node's layer)."""
    layer = node.layer
    name = None
    if node.name == "embd":
        name = "token_embd.weight"
    elif node.name == "result_output":
        name = "output.weight" if "output.weight" in plan.weights else "output:tied"
    elif node.name in MODEL_WEIGHTS:
        name = MODEL_WEIGHTS[node.name]
    elif node.name in READS_WEIGHT_VIEW:
        name = READS_WEIGHT_VIEW[node.name]
    elif source.tensor:  # the graph named the tensor (GraphBuilder.weight_of): a block's by
        # its name within the block, one outside the blocks (the input's, the head's) in full;
        # a file names a block's tensors only with their blk.N. prefix, so a bare name among
        # the weights is one outside the blocks
        name = (source.tensor if source.tensor in plan.weights
                else f"blk.{layer}.{source.tensor}")
    elif node.name in WEIGHT_ROLES:
        name = f"blk.{layer}.{WEIGHT_ROLES[node.name]}.weight"
    elif node.name.endswith("_b") and node.name[:-2] in WEIGHT_ROLES:  # its matmul's bias
        name = f"blk.{layer}.{WEIGHT_ROLES[node.name[:-2]]}.bias"
    return name


def _assign(nodes: list[Node], weights: dict[int, tuple[str, int] | None], plan: DevicePlan,
            n_tokens: int) -> dict[int, str]:
    """Passes 1, 2 and 4 of ggml_backend_sched_split_graph."""
    devices: dict[int, str] = {}
    n_layer = len(plan.layer_device) - 1
    for node in nodes:
        layer = node.layer
        if plan.pin_norms and node.name == "norm" and 0 <= layer < n_layer:
            devices[id(node)] = plan.layer_device[layer]  # ggml_backend_sched_set_tensor_backend
            continue
        if plan.pin_attention_to_host and node.name == "kqv_out":
            devices[id(node)] = HOST  # "all nodes between the KV store and the attention output"
            continue
        if node.view_src is not None and node.op != "VIEW":  # SET_ROWS into the cache
            devices[id(node)] = plan.kv_device[layer]
            continue
        weight = weights[id(node)]
        if weight is None or node.op in NOT_BY_WEIGHT or node.name in READS_WEIGHT_VIEW:
            continue
        device = weight[0]
        if (device == HOST and plan.op_offload and plan.first_gpu != HOST
                and node.op != "GET_ROWS" and n_tokens >= OFFLOAD_MIN_BATCH):
            device = plan.first_gpu  # "1.off"
        devices[id(node)] = device
    computing = [node for node in nodes if node.op != "VIEW"]
    for skip_host in (True, False):  # expand gpu down / up, then rest down / up
        for sequence in (computing, computing[::-1]):
            current = None
            for node in sequence:
                assigned = devices.get(id(node))
                if assigned is not None:
                    current = None if skip_host and assigned == HOST else assigned
                elif current is not None:
                    devices[id(node)] = current
    for node in nodes:  # pass 4: a view lives with what it views
        if node.op == "VIEW":
            base = node.view_src
            devices[id(node)] = devices.get(id(base), HOST) if base is not None else HOST
        devices.setdefault(id(node), HOST)
    return devices


def _graph_copy(nodes: list[Node], unused_inputs: tuple[Node, ...], devices: dict[int, str],
                weights: dict[int, tuple[str, int] | None], plan: DevicePlan
                ) -> tuple[list[Placed], list[Placed]]:
    """The scheduler's graph copy: per split, its new copies, then its nodes; and the leafs
    allocated before everything (graph inputs; with n_copies > 1 also every copy, times four)."""
    placed: dict[int, Placed] = {}
    leafs: list[Placed] = []
    pipelined = plan.n_copies > 1
    for leaf in graph_inputs(nodes, unused_inputs):
        # an input is an output too only with n_copies > 1 (pass 6's ggml_set_output); else
        # ggml_gallocr frees it after its last reader, as any node
        placed[id(leaf)] = item = Placed(leaf, HOST, keep=pipelined)
        leafs.append(item)
        leafs += [Placed(leaf, HOST, keep=True) for _ in range(plan.n_copies - 1)]
    copies: dict[tuple[object, ...], Placed] = {}
    held: set[tuple[int, str]] = set()  # (source, device) pairs with their input_dep
    order: list[Placed] = []
    split_copies: list[Placed] = []  # allocated at the start of the split (before its nodes)
    split_nodes: list[Placed] = []
    split_device = None
    split_inputs = 0
    for node in nodes:
        device = devices[id(node)]
        item = Placed(node, device, keep=node.is_output)
        placed[id(node)] = item
        if node.op == "VIEW":  # in the split it falls in, on its base's device (pass 4)
            base = node.view_src
            if base is not None and not base.external:
                item.view_of = placed[id(base)]
                item.srcs += [placed[id(src)] for src in node.srcs
                              if not src.external and placed[id(src)].device == device]
            split_nodes.append(item)
            continue
        # a view of a weight (READS_WEIGHT_VIEW) has no buffer yet: need_new_split skips it
        weight = None if node.name in READS_WEIGHT_VIEW else weights[id(node)]
        # pass 5: a new split on a change of device, or, once the split has inputs, at a node
        # whose weight lives on another device ("need_new_split": the weight copies of the
        # earlier split can then be freed before this one's are allocated)
        if split_device is not None and (split_device != device or (
                split_inputs and weight is not None and weight[0] != device)):
            order += split_copies + split_nodes
            split_copies, split_nodes, split_inputs = [], [], 0
        split_device = device
        cache_reads = 0
        for src in node.srcs:
            read = src
            if src.view_src is not None and src.view_src.external:  # a view of a state cache
                src = src.view_src  # (graph_ssm's build_rs reads): placed like the KV cache
            if src.external:
                size, where = _external_source(src, node, weights, plan, cache_reads)
                cache_reads += src.name == "cache"
                key: tuple[object, ...] = (src.name, id(node), cache_reads, device)
                if read is not src and read.view_bytes >= 0 and node.view_src is None:
                    # a layer's whole recurrent state read through its view (build_rs): the
                    # view is copied, once per device however many nodes read it
                    size, where = read.view_bytes, plan.kv_device[node.layer]
                    key = ("node", id(read), device)
                if where == device or size == 0:
                    continue
                source = None
            else:
                base = src.view_src if src.op == "VIEW" and src.view_src is not None else src
                source = placed[id(base)]
                if source.device == device:
                    item.srcs.append(placed[id(src)])  # the view itself: it holds its base
                    continue
                size, key = base.n_bytes, ("node", id(src), device)
                if src.view_bytes >= 0:  # a partial view is its own split input, at its size
                    size = src.view_bytes
            if source is not None and (id(src), device) not in held:
                # input_dep: holds the source until the split starts; llama.cpp copies each
                # view it reads (one input per src tensor), so every view read from another
                # device is done with there, even one whose base's copy is shared here
                held.add((id(src), device))
                split_copies.append(_input_dependency(placed[id(src)]))
            if key not in copies:
                copy = Placed(Node(f"{device}#copy", "NONE", size), device, keep=pipelined)
                copies[key] = copy
                split_inputs += 1
                if pipelined:
                    leafs += [copy] + [Placed(copy.node, device, keep=True)
                                       for _ in range(plan.n_copies - 1)]
                else:
                    split_copies.append(copy)
            item.srcs.append(copies[key])
        split_nodes.append(item)
    return order + split_copies + split_nodes, leafs


def _input_dependency(source: Placed) -> Placed:
    """ggml_backend_sched_split_graph's ``input_dep``: a GGML_OP_NONE view of a split input,
    added to the graph copy just before the input's copy, with the input as its source. It owns
    no memory, and ggml_gallocr_alloc_graph_impl counts no view of an op-NONE node
    (``ggml_impl_is_view(node) && node->op != GGML_OP_NONE``): the input is one more child
    that is done with when the split starts, then freed unless a later node still reads it."""
    return Placed(Node("input_dep", "NONE", 0, view_src=source.node), source.device, [source])


def _external_source(src: Node, node: Node, weights: dict[int, tuple[str, int] | None],
                     plan: DevicePlan, cache_reads: int) -> tuple[int, str]:
    """The size and device of a weight or a KV-cache view ``node`` reads (0: not copied)."""
    layer = node.layer
    if src.name == "weight":
        weight = weights[id(node)]
        return (0, HOST) if weight is None else (weight[1], weight[0])
    if node.view_src is not None or not 0 <= layer < len(plan.kv_device):
        return 0, HOST  # the SET_ROWS writing its own cache
    k_bytes, v_bytes = plan.kv_view_bytes[layer]
    # V: kqv's first source, flash attention's second cache read (or its only one, when K
    # comes cast from an f32 cache: its source 1 is then the cast), the cast of an f32 V, or
    # (MLA without flash attention) the CONT of V's transpose, a view of the K cache's first
    # columns
    flash_v = node.op == "FLASH_ATTN_EXT" and (cache_reads == 1 or node.srcs[1] is not src)
    reads_v = node.name in ("kqv", "v_f16") or node.op == "CONT" or flash_v
    return (v_bytes if reads_v else k_bytes), plan.kv_device[layer]


def pipeline_parallel(n_gpus: int, n_gpu_layers: int, n_layer: int, split_mode: str,
                      offload_kqv: bool, has_overrides: bool) -> bool:
    """llama_context::llama_context (src/llama-context.cpp): more than one device, every layer
    and the output offloaded, layer split, KV offloaded and no tensor overrides (CUDA devices
    support async compute and events)."""
    offloaded = n_gpu_layers < 0 or n_gpu_layers > n_layer
    return (n_gpus > 1 and offloaded and split_mode == "layer" and offload_kqv
            and not has_overrides)


def device_plan(hparams: Hyperparameters, context: "ResolvedContext", placement: Placement,
                caches: list["KVCacheEstimate"], placed: list[TensorPlacement],
                settings: LlamaSettings) -> DevicePlan | None:
    """Where the scheduler finds everything; None on a CPU-only build (one backend, no splits).
    Backend 0 is the first model device: the main GPU with ``--split-mode none``."""
    if not settings.gpu_capacities:
        return None
    gpu_devices = [f"gpu{index}" for index in range(len(settings.gpu_capacities))]
    if settings.split_mode == "none":
        gpu_devices = [f"gpu{settings.main_gpu}"]
    weights: dict[str, tuple[str, int]] = {}
    # a host weight is copied to the first device by op_offload, at that device's size
    first_buffer = device_buffer(settings, gpu_devices[0])
    for item in placed:
        name = "output:tied" if item.duplicate else item.tensor.name
        weights[name] = (item.device, alloc_size(item.tensor, item.buffer
                                                 if item.device != HOST else first_buffer))
        if name == "token_types.weight":  # bert.cpp's type_row0: the copy is one row
            weights["token_types:row0"] = (item.device, row_bytes(item.tensor.type_id,
                                                                  item.tensor.row_length))
    if "output.weight" not in weights and "output:tied" not in weights:
        if "token_embd.weight" in weights:
            weights["output:tied"] = weights["token_embd.weight"]
    cells = {cache.name: cache.cells for cache in caches}
    n_stream = 1 if context.kv_unified else context.n_seq_max
    type_k, type_v = ggml_type_from_name(context.type_k), ggml_type_from_name(context.type_v)
    v_width_max = max(hparams.n_embd_v_gqa, default=0)
    views = []
    for il in range(hparams.n_layer):
        n_kv = cells.get("SWA" if hparams.is_swa[il] else "", context.n_ctx_seq)
        v_width = hparams.n_embd_v_gqa[il] if context.flash_attn else v_width_max
        k_row = row_bytes(type_k.type_id, hparams.n_embd_k_gqa[il])
        k_bytes = k_row * n_kv * n_stream
        if hparams.is_mla:  # V is a view of the K cache's first columns, with K's strides
            # (build_attn, llama-graph.cpp: ggml_view_4d(k, v_cur->ne[0], ..., k->nb[1..3])):
            # its ggml_nbytes spans every K row but the last one's tail
            views.append((k_bytes, k_bytes - k_row + row_bytes(type_k.type_id, v_width)))
        else:
            views.append((k_bytes, row_bytes(type_v.type_id, v_width) * n_kv * n_stream))
    kv_device = tuple(placement.device_of_layer(hparams.kv_source(il))  # a reused cache's
                      if settings.offload_kqv else HOST for il in range(hparams.n_layer))
    # graph_get_cb's full_offload: model.n_gpu_layers() > n_layer_all
    offloaded = settings.n_gpu_layers < 0 or settings.n_gpu_layers > hparams.n_layer
    n_tokens = min(context.n_ctx, context.n_ubatch)  # the reserved worst-case batch
    parallel = pipeline_parallel(len(gpu_devices), settings.n_gpu_layers, hparams.n_layer,
                                 settings.split_mode, settings.offload_kqv,
                                 bool(all_overrides(settings)))
    return DevicePlan(placement.layer_device, kv_device, tuple(views), weights, gpu_devices[0],
                      op_offload=settings.op_offload and offloads_ops(settings),
                      n_copies=SCHED_MAX_COPIES if parallel else 1,
                      device_buffers={device: device_buffer(settings, device)
                                      for device in gpu_devices},
                      device_alignment=device_alignment(settings),
                      host_buffer=host_buffer(settings) or "CPU",
                      pin_norms=offloaded or n_tokens < PIN_NORMS_BELOW,
                      pin_attention_to_host=not settings.offload_kqv and not context.flash_attn)


def flash_attn_leaves_its_layer(shape: GraphShape, plan: DevicePlan) -> bool:
    """llama_context::resolve_fused_ops' probe for ``--flash-attn auto``: a graph of one token
    per sequence (``shape``) is split, and flash attention is turned off when any
    FLASH_ATTN_EXT node runs on another device than its layer's (model.dev_layer), as when the
    KV cache on the host (--no-kv-offload) draws it there. The probe's few tokens pin each
    layer's norm (graph_get_cb: under 32 tokens)."""
    plan = replace(plan, pin_norms=True)
    nodes, _, _, devices = _assigned_graph(shape, plan)
    n_layer = len(plan.layer_device) - 1
    return any(node.op == "FLASH_ATTN_EXT"
               and devices[id(node)] != plan.layer_device[min(max(node.layer, 0), n_layer)]
               for node in nodes)


def gpu_compute_buffers(shape: GraphShape, plan: DevicePlan) -> list[BufferEstimate]:
    """One compute buffer per device the graph runs on (CUDA<i>, RPC0[host:port]), then the
    CPU backend's, whose buffer type is the first device's host buffer (CUDA_Host) when it has
    one (llama_context::llama_context's backend_buft), else CPU (RPC)."""
    peaks = split_compute_bytes(shape, plan, plan.device_alignment, CPU_ALIGNMENT)
    gpus = sorted((device for device in peaks if device != HOST), key=lambda d: int(d[3:]))
    buffers = [BufferEstimate(gpu, plan.device_buffers.get(gpu, f"CUDA{gpu[3:]}"), "compute",
                              peaks[gpu], False) for gpu in gpus]
    buffers.append(BufferEstimate(HOST, plan.host_buffer, "compute", peaks.get(HOST, 0), False))
    return buffers
