"""The context llama.cpp derives from the settings, and the memory it sizes from it: the KV
caches and the output buffer.

Follows ``llama_context::llama_context`` (src/llama-context.cpp: n_ctx padded to 256, split into
n_ctx_seq per sequence, n_batch / n_ubatch caps), ``llama_kv_cache::llama_kv_cache`` and
``llama_kv_cache_iswa`` (src/llama-kv-cache*.cpp: one K and V tensor per layer, the sliding-window
cache, the Hadamard rotation around a quantized cache) and ``llama_context::output_reserve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from gguf_inspect.core.constants import ggml_type_from_name, row_bytes
from gguf_inspect.core.errors import FormatError
from gguf_inspect.llamacpp.backends import device_buffer, host_buffer, is_cuda_device_buffer
from gguf_inspect.llamacpp.hparams import Hyperparameters
from gguf_inspect.llamacpp.placement import (
    HOST,
    BufferEstimate,
    Placement,
    buffer_alignment,
    cuda_row_padding,
    pad,
)
from gguf_inspect.llamacpp.settings import LlamaSettings, flash_attn_enabled

CTX_PAD = 256  # GGML_PAD(n_ctx, 256) in llama_context::llama_context, llama-context.cpp


@dataclass(frozen=True)
class KVCacheEstimate:
    name: str  # "" for the (non-SWA) main cache, "SWA" for the sliding-window cache
    cells: int
    layers: int
    n_seqs: int  # streams (1 when unified)
    type_k: str
    type_v: str
    k_bytes: int
    v_bytes: int

    @property
    def n_bytes(self) -> int:
        return self.k_bytes + self.v_bytes


@dataclass(frozen=True)
class ResolvedContext:
    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    n_seq_max: int
    flash_attn: bool
    kv_unified: bool
    swa_full: bool
    type_k: str
    type_v: str
    n_ctx_train: int | None



# ---- context parameters (llama_context::llama_context, llama-context.cpp) ---------------------


def resolve_context(hparams: Hyperparameters, settings: LlamaSettings) -> ResolvedContext:
    """n_ctx, n_ctx_seq, n_batch, n_ubatch as the llama_context constructor derives them."""
    n_ctx_train = hparams.n_ctx_train
    requested = settings.n_ctx or n_ctx_train
    if not requested:  # llama_init_from_model refuses the same way
        raise FormatError("n_ctx is 0 and the model has no context_length",
                          field="context_length")
    n_seq_max = max(1, settings.n_parallel)
    n_ctx = pad(requested, CTX_PAD)
    if settings.kv_unified:
        n_ctx_seq = n_ctx
    else:
        n_ctx_seq = pad(n_ctx // n_seq_max, CTX_PAD)
        n_ctx = n_ctx_seq * n_seq_max  # "n_ctx is not divisible by n_seq_max - rounding"
    # n_batch is capped by the requested (unpadded) n_ctx: cparams.n_ctx is padded only later;
    # "with causal attention, the batch size is limited by the context size": encoders keep it
    n_batch = min(requested, settings.n_batch) if hparams.causal_attn else settings.n_batch
    n_ubatch = min(n_batch, settings.n_ubatch or settings.n_batch)
    type_k = ggml_type_from_name(settings.cache_type_k).name
    type_v = ggml_type_from_name(settings.cache_type_v).name
    return ResolvedContext(
        n_ctx=n_ctx, n_ctx_seq=n_ctx_seq, n_batch=n_batch, n_ubatch=n_ubatch,
        n_seq_max=n_seq_max, flash_attn=flash_attn_enabled(settings),
        kv_unified=settings.kv_unified, swa_full=settings.swa_full, type_k=type_k,
        type_v=type_v, n_ctx_train=n_ctx_train)


# ---- KV cache (llama_kv_cache::llama_kv_cache, llama-kv-cache*.cpp) ---------------------------


def kv_caches(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
              settings: LlamaSettings, layer_filter: Callable[[int], bool] | None = None,
              ) -> tuple[list[KVCacheEstimate], list[BufferEstimate]]:
    """The KV caches and their buffers. iSWA models get two caches, non-SWA first
    (llama_kv_cache_iswa): SWA cells = PAD(min(n_ctx_seq, n_swa * (unified ? n_seq_max : 1)
    + n_ubatch), 256), or full size with swa_full. Per layer K is [n_embd_k_gqa(il), cells,
    n_stream]; without flash attention V uses the widest n_embd_v_gqa (TAG_V_CACHE_VARIABLE);
    MLA models have no V tensor (``has_v = !is_mla``). ``layer_filter``: a hybrid's attention
    layers (create_memory's filter_attn), else every layer with KV but the NextN/MTP blocks."""
    cells = context.n_ctx_seq
    groups: list[tuple[str, int, Callable[[int], bool]]]
    if hparams.any_swa:
        swa_cells = cells if context.swa_full else pad(
            min(cells, hparams.n_swa * (context.n_seq_max if context.kv_unified else 1)
                + context.n_ubatch), CTX_PAD)
        groups = [("", cells, lambda il: not hparams.is_swa[il]),
                  ("SWA", swa_cells, lambda il: hparams.is_swa[il])]
    else:
        groups = [("", cells, lambda il: True)]
    n_stream = 1 if context.kv_unified else context.n_seq_max
    has_v = not hparams.is_mla  # llama_kv_cache: MLA keeps only K (latent + rope part)
    type_k = ggml_type_from_name(context.type_k)
    type_v = ggml_type_from_name(context.type_v)
    v_trans = not context.flash_attn
    v_widths = hparams.n_embd_v_gqa
    n_main = hparams.n_layer - hparams.n_layer_nextn
    caches, buffers = [], []
    for name, size, keep in groups:
        k_total = v_total = layers = 0
        per_buffer: dict[tuple[str, str], int] = {}
        for il in range(hparams.n_layer):
            if not hparams.has_kv(il) or not keep(il):
                continue
            if layer_filter is not None and not layer_filter(il):
                continue  # a hybrid's attention filter (llama_memory_hybrid)
            if layer_filter is None and hparams.n_layer_nextn and il >= n_main:
                continue  # create_memory's filter: the NextN/MTP block has no KV in the trunk
            k_width = hparams.n_embd_k_gqa[il]
            v_width = max(v_widths) if v_trans else v_widths[il]
            k_bytes = row_bytes(type_k.type_id, k_width) * size * n_stream
            v_bytes = row_bytes(type_v.type_id, v_width) * size * n_stream if has_v else 0
            device = placement.device_of_layer(il) if settings.offload_kqv else HOST
            buffer = "CPU" if device == HOST else device_buffer(settings, device)
            alignment = buffer_alignment(buffer)
            # CUDA pads quantized rows; an RPC server's CPU buffer type does not
            cuda = is_cuda_device_buffer(buffer)
            k_alloc = k_bytes + (cuda_row_padding(type_k.type_id, k_width) if cuda else 0)
            v_alloc = v_bytes + (cuda_row_padding(type_v.type_id, v_width)
                                 if cuda and has_v else 0)
            key = (device, buffer)
            padded = pad(k_alloc, alignment) + pad(v_alloc, alignment)
            per_buffer[key] = per_buffer.get(key, 0) + padded
            k_total += k_bytes
            v_total += v_bytes
            layers += 1
        caches.append(KVCacheEstimate(name, size, layers, n_stream, type_k.name, type_v.name,
                                      k_total, v_total))
        # each cache allocates its own buffers, one per buffer type in name order
        buffers += [BufferEstimate(device, buffer, "kv", n_bytes, True)
                    for (device, buffer), n_bytes in sorted(per_buffer.items(),
                                                           key=lambda item: item[0][1])]
    return caches, buffers


# ---- output buffer (llama_context::output_reserve, llama-context.cpp) -------------------------


def output_buffer(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
                  settings: LlamaSettings) -> BufferEstimate:
    """At init: ``output_reserve(n_seq_max)`` floats for n_vocab logits (+ n_embd embeddings
    when requested) per output, in the output device's host buffer (CUDA_Host) or CPU (also
    for an RPC device, which has no host buffer type)."""
    n_outputs = context.n_seq_max
    embeddings = hparams.n_embd * n_outputs if settings.embeddings else 0
    floats = hparams.n_vocab * n_outputs + embeddings
    pinned = host_buffer(settings) if placement.output_device != HOST else None
    return BufferEstimate(HOST, pinned or "CPU", "output", 4 * floats, True)


# ---- the rotation around a quantized cache (also sized into the compute graph) ---------------


def rotation_size(cache_type: str, head_sizes: tuple[int, ...], largest: bool) -> int:
    """The Hadamard rotation llama.cpp applies around a quantized cache (llama_kv_cache's
    attn_rot_k / attn_rot_v and build_input_k_rot / _v_rot, llama-kv-cache.cpp): only when every
    layer has the same head size and it is a multiple of 64. K uses the largest power of two
    (from 64) dividing the head size, V always 64. 0 when there is none."""
    heads = set(head_sizes)
    if not ggml_type_from_name(cache_type).is_quantized or len(heads) != 1:
        return 0
    head = heads.pop()
    if head <= 0 or head % 64:  # n_embd_head_k_all > 0 (a model without attention heads)
        return 0
    size = 64
    while largest and head % (size * 2) == 0:
        size *= 2
    return size

