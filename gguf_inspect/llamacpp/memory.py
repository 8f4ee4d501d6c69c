"""The llama.cpp memory model: which buffers llama.cpp allocates for a GGUF and how big each is.

Shared by ``gguf-inspect vram`` (will it fit?) and ``gguf-inspect runtime`` (prove it against the
real log). Every rule is read from the llama.cpp source vendored in llama-cpp-python 0.3.36
(``vendor/llama.cpp``). This module puts the parts together: the hyperparameters
(``hparams``), the context (``kv_cache.resolve_context``), the weights' placement and buffers
(``placement``), the KV caches and output buffer (``kv_cache``), and the compute buffer, the graph
allocator's peak at ``sched_reserve`` (src/llama-context.cpp), simulated by ``compute_graph``.
Model, KV-cache and output buffers are exact; the compute buffer has no closed form and is an
estimate, flagged ``exact=False``.

Nothing here touches bytes or formats text: input is a parsed ``GGUFFile`` and a
``LlamaSettings``; output is a ``MemoryPrediction``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.backends import offloads_ops, uses_rpc, with_rpc_devices
from gguf_inspect.llamacpp.compute_graph import GraphShape, estimate_compute_bytes, reserved_tokens
from gguf_inspect.llamacpp.graph_layout import GraphLayout, graph_layout
from gguf_inspect.llamacpp.hparams import (
    GEMMA_GRAPH_ARCHS,
    HYBRID_ARCHS,
    NO_MEMORY_ARCHS,
    RECURRENT_ARCHS,
    Hyperparameters,
    read_hyperparameters,
)
from gguf_inspect.llamacpp.kv_cache import (
    KVCacheEstimate,
    ResolvedContext,
    kv_caches,
    output_buffer,
    resolve_context,
    rotation_size,
)
from gguf_inspect.llamacpp.placement import (
    CPU_ALIGNMENT,
    HOST,
    BufferEstimate,
    Placement,
    model_buffers,
    place_tensors,
    placement_for,
)
from gguf_inspect.llamacpp.recurrent import (
    attention_filter,
    is_modelled_recurrent,
    recurrent_buffers,
)
from gguf_inspect.llamacpp.scheduler import (DevicePlan, device_plan,
                                              flash_attn_leaves_its_layer, gpu_compute_buffers)
from gguf_inspect.llamacpp.settings import LlamaSettings, context_refusal


@dataclass(frozen=True)
class MemoryPrediction:
    context: ResolvedContext
    buffers: tuple[BufferEstimate, ...]
    kv_caches: tuple[KVCacheEstimate, ...]
    notes: tuple[str, ...]  # assumptions and "not modelled" lines
    # Set when memory llama.cpp allocates is left out (recurrent state): the buffers are then a
    # lower bound, and a fit can be refuted but never confirmed.
    unmodelled: str | None = None
    n_layer: int | None = None  # llama_hparams::n_layer(): the trunk, NextN/MTP blocks excluded

    def device_total(self, device: str, kind: str | None = None) -> int:
        return sum(b.n_bytes for b in self.buffers
                   if b.device == device and (kind is None or b.kind == kind))

    @property
    def devices(self) -> tuple[str, ...]:
        """"host" first, then the GPUs in index order, each once."""
        seen = {b.device for b in self.buffers} | {"host"}
        return tuple(sorted(seen, key=lambda d: (d != "host", int(d[3:]) if d != "host" else 0)))


def compute_buffers(hparams: Hyperparameters, context: ResolvedContext,
                    caches: list[KVCacheEstimate],
                    plan: DevicePlan | None = None,
                    layout: GraphLayout = GraphLayout(),
                    v_trans: bool | None = None) -> list[BufferEstimate]:
    """The graph allocator's peak for the worst-case ubatch (sched_reserve: n_tokens =
    min(n_ctx, n_ubatch), every token an output), simulated by ``compute_graph``: an estimate.
    On a GPU build each backend gets its own share of the split graph (llamacpp/scheduler).
    ``v_trans``: how the cache stores V, when not as ``context.flash_attn`` says."""
    shape = graph_shape(hparams, context, caches, layout, min(context.n_ctx, context.n_ubatch),
                        v_trans)
    if plan is not None:  # a GPU build: ggml_backend_sched's split graph (llamacpp/scheduler)
        return gpu_compute_buffers(shape, plan)
    return [BufferEstimate(HOST, "CPU", "compute", estimate_compute_bytes(shape, CPU_ALIGNMENT),
                           False)]


def graph_shape(hparams: Hyperparameters, context: ResolvedContext,
                caches: list[KVCacheEstimate], layout: GraphLayout, n_tokens: int,
                v_trans: bool | None = None) -> GraphShape:
    """The graph llama.cpp reserves for ``n_tokens`` tokens, every one an output."""
    cells = {cache.name: cache.cells for cache in caches}
    # Without a memory module (encoders) attention spans the reserved ubatch itself, on the
    # sliding-window layers too (build_attn_inp_no_cache: both masks n_tokens x n_tokens): its
    # tokens, rounded up to a multiple of the sequences. The main cache holds n_ctx_seq cells.
    no_cache = hparams.arch in NO_MEMORY_ARCHS
    ubatch = reserved_tokens(n_tokens, context.n_seq_max)
    main = ubatch if no_cache else context.n_ctx_seq
    trunk = hparams.n_layer_main  # the graph skips NextN/MTP blocks (llama_hparams::n_layer())
    is_swa = hparams.is_swa[:trunk]
    n_kv = tuple(cells.get("SWA", main) if swa else main for swa in is_swa)
    if layout.ssm is not None:  # llama_memory_recurrent: mem_size = max(1, n_seq_max) rows
        layout = replace(layout, ssm=replace(layout.ssm, n_rs=max(1, context.n_seq_max)))
    return GraphShape(
        n_tokens=n_tokens, n_outputs=n_tokens, n_embd=hparams.n_embd, n_ff=hparams.n_ff[:trunk],
        n_head=hparams.n_head[:trunk], n_head_kv=hparams.n_head_kv[:trunk],
        head_k=hparams.head_k[:trunk], head_v=hparams.head_v[:trunk], n_vocab=hparams.n_vocab,
        n_kv=n_kv, is_swa=is_swa,
        **{field.name: getattr(layout, field.name) for field in fields(GraphLayout)},
        n_stream=1 if context.kv_unified else context.n_seq_max, n_seqs=context.n_seq_max,
        flash_attn=context.flash_attn, gemma=hparams.arch in GEMMA_GRAPH_ARCHS,
        v_width_max=max(hparams.n_embd_v_gqa),  # block_count 0 is refused
        # the rotations belong to the KV cache (llama_kv_cache's attn_rot_k / attn_rot_v): an
        # encoder has none, whatever --cache-type-k says
        k_rot=0 if no_cache else rotation_size(context.type_k, hparams.head_k, largest=True),
        v_rot=0 if no_cache else rotation_size(context.type_v, hparams.head_v, largest=False),
        kv_f32=(context.type_k == "f32", context.type_v == "f32"),
        v_trans=v_trans)


# ---- the whole prediction ---------------------------------------------------------------------


def predict_memory(gguf: GGUFFile, settings: LlamaSettings,
                   with_compute: bool = True) -> MemoryPrediction:
    """Every buffer llama.cpp would allocate for this model under ``settings``; without
    ``with_compute`` only the exact ones (weights, KV cache, output), which is much cheaper: a
    lower bound that ``vram``'s searches use to rule settings out."""
    settings = with_rpc_devices(settings)
    hparams = read_hyperparameters(gguf)
    context = resolve_context(hparams, settings)
    placement = placement_for(hparams.n_layer, settings)
    notes = _notes(hparams, settings)
    placed = place_tensors(gguf, hparams, placement, settings)
    buffers = model_buffers(placed)
    caches: list[KVCacheEstimate] = []
    unmodelled = None
    if is_modelled_recurrent(hparams):
        caches, state_buffers = recurrent_memory(hparams, context, placement, settings)
        buffers += state_buffers
    elif hparams.arch in RECURRENT_ARCHS or hparams.arch in HYBRID_ARCHS:
        unmodelled = (f"{hparams.arch} keeps recurrent state (llama-memory-recurrent.cpp) "
                      "whose layers or widths (ssm.*, wkv.*, shortconv.* keys) are not known: "
                      "not modelled, KV cache and state left out")
        notes.append(unmodelled)
    elif hparams.arch in NO_MEMORY_ARCHS:
        notes.append(f"{hparams.arch} has no KV cache (llama_model::create_memory)")
    else:
        caches, kv_buffers = kv_caches(hparams, context, placement, settings)
        buffers += kv_buffers
    buffers.append(output_buffer(hparams, context, placement, settings))
    if with_compute:
        plan = device_plan(hparams, context, placement, caches, placed, settings)
        layout, v_trans = graph_layout(gguf, hparams), None
        if (settings.flash_attn == "auto" and context.flash_attn and plan is not None
                and flash_attn_leaves_its_layer(graph_shape(
                    hparams, context, caches, layout, context.n_seq_max), plan)):
            # resolve_fused_ops' probe turns flash attention off after the cache was made
            # (V untransposed): the graph and the scheduler's pins follow the new setting
            notes = [FLASH_PROBE_NOTE if note == FLASH_ON_NOTE else note for note in notes]
            context_off = replace(context, flash_attn=False)
            plan = device_plan(hparams, context_off, placement, caches, placed, settings)
            context, v_trans = context_off, False
        buffers += compute_buffers(hparams, context, caches, plan, layout, v_trans)
    return MemoryPrediction(context, tuple(buffers), tuple(caches), tuple(notes), unmodelled,
                            hparams.n_layer_main)


def recurrent_memory(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
                     settings: LlamaSettings) -> tuple[list[KVCacheEstimate],
                                                        list[BufferEstimate]]:
    """A recurrent model's state, or a hybrid's attention KV cache and then its state, in the
    order llama_memory_hybrid's constructor allocates them (mem_attn, then mem_recr)."""
    caches: list[KVCacheEstimate] = []
    buffers: list[BufferEstimate] = []
    attention = attention_filter(hparams)
    if attention is not None:
        caches, buffers = kv_caches(hparams, context, placement, settings, attention)
    return caches, buffers + recurrent_buffers(hparams, context, placement, settings)


FLASH_ON_NOTE = "flash_attn auto resolved to on (the CPU and CUDA backends support it)"
FLASH_PROBE_NOTE = ("flash_attn auto resolved to off: a FLASH_ATTN_EXT node would run on "
                    "another device than its layer's (llama_context::resolve_fused_ops' probe);"
                    " the KV cache keeps V untransposed, as made before the probe")


def _notes(hparams: Hyperparameters, settings: LlamaSettings) -> list[str]:
    notes = ["compute buffer is an estimate of the graph allocator's peak (not exact)"]
    refusal = context_refusal(settings, hparams.head_k, hparams.head_v, hparams.is_mla)
    if refusal is not None:
        notes.append(f"{refusal}: llama.cpp refuses this context")
    if settings.flash_attn == "auto":
        notes.append(FLASH_ON_NOTE)
    if hparams.arch in ("gemma3n", "gemma4"):
        notes.append("layers that reuse another layer's KV cache hold none of their own")
    if settings.gpu_capacities and uses_rpc(settings):
        notes.append("the devices are RPC servers each serving one CPU device (32-byte "
                     "alignment, no row padding, no pinned host buffer, no op_offload: "
                     "ggml-rpc.cpp); a server backed by CUDA would follow CUDA's rules")
    elif settings.gpu_capacities:
        notes.append("GPU buffers follow the CUDA backend's rules (128-byte alignment, "
                     "quantized rows padded to 512); other backends differ")
    if settings.gpu_capacities:
        notes.append("each GPU's compute buffer is its share of the graph as ggml_backend_sched "
                     "splits it (the CUDA context itself, a few hundred MiB, is not counted: "
                     "use --headroom)")
        if settings.op_offload and offloads_ops(settings):
            notes.append("weights left on the host have their large-batch matmuls run on the "
                         "first GPU (op_offload), which holds a copy of each in turn: GPU "
                         "memory is not monotone in --ngl")
    return notes
