"""Which memory a recurrent or hybrid model gets, and the recurrent state buffers (RS buffers).

Follows ``llama_model::create_memory`` (src/llama-model.cpp: llama_memory_recurrent for
recurrent architectures, llama_memory_hybrid with its attention / recurrent layer filters for
hybrids) and ``llama_memory_recurrent::llama_memory_recurrent`` (src/llama-memory-recurrent.cpp:
per kept layer an r tensor [n_embd_r, mem_size * (1 + n_rs_seq)] and an s tensor [n_embd_s,
same], f32, mem_size = max(1, n_seq_max), n_rs_seq 0 by default; one buffer per buffer type, in
name order, on the layer's device when offload_kqv, else CPU).
"""

from __future__ import annotations

from typing import Callable

from gguf_inspect.core.constants import ggml_type_from_name, row_bytes
from gguf_inspect.llamacpp.backends import device_buffer
from gguf_inspect.llamacpp.hparams import (
    HYBRID_ARCHS,
    MODELLED_RECURRENT,
    NEMOTRON_H_ARCHS,
    Hyperparameters,
)
from gguf_inspect.llamacpp.kv_cache import ResolvedContext
from gguf_inspect.llamacpp.placement import HOST, BufferEstimate, Placement, buffer_alignment, pad
from gguf_inspect.llamacpp.settings import LlamaSettings

LayerFilter = Callable[[int], bool]
STATE_TYPE = "f32"  # create_memory passes GGML_TYPE_F32 for both r and s
N_RS_SEQ = 0  # llama_context_default_params: n_rs_seq 0 (no partial rollback snapshots)


def is_modelled_recurrent(hparams: Hyperparameters) -> bool:
    """A recurrent or hybrid architecture whose layers and state widths are known here (a
    header without the ssm.* / wkv.* / shortconv.* keys llama.cpp requires has no widths)."""
    return (hparams.arch in MODELLED_RECURRENT and bool(hparams.is_recurrent)
            and (hparams.n_embd_r > 0 or hparams.n_embd_s > 0))


def attention_filter(hparams: Hyperparameters) -> LayerFilter | None:
    """create_memory's filter_attn for a hybrid (llama_memory_hybrid's default: not
    recurrent); None for a model without an attention part."""
    if hparams.arch not in HYBRID_ARCHS:
        return None
    recurrent, n_main = hparams.is_recurrent, hparams.n_layer_main
    if hparams.arch == "falcon-h1":  # attention and SSM side by side in every layer
        return lambda il: True
    if hparams.arch in NEMOTRON_H_ARCHS:
        return lambda il: not recurrent[il] and hparams.n_ff[il] == 0
    if hparams.arch == "qwen3next":
        return lambda il: il < n_main and not recurrent[il]
    return lambda il: not recurrent[il]


def recurrent_filter(hparams: Hyperparameters) -> LayerFilter:
    """create_memory's filter_recr (every trunk layer for a purely recurrent model; falcon-h1's
    ``return true`` is its every layer being recurrent, hparams.is_recurrent)."""
    recurrent, n_main = hparams.is_recurrent, hparams.n_layer_main
    if hparams.arch in NEMOTRON_H_ARCHS:
        return lambda il: recurrent[il] and hparams.n_ff[il] == 0
    if hparams.arch == "qwen3next":
        return lambda il: il < n_main and recurrent[il]
    if hparams.arch in HYBRID_ARCHS:
        return lambda il: recurrent[il]
    return lambda il: True


def recurrent_buffers(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
                      settings: LlamaSettings) -> list[BufferEstimate]:
    """The RS buffers: per kept layer (il < n_layer(), the trunk) r and s rows for every cell,
    each tensor padded to its buffer's alignment (ggml_backend_alloc_ctx_tensors_from_buft)."""
    mem_size = max(1, context.n_seq_max)
    n_rows = mem_size * (1 + N_RS_SEQ)
    state_type = ggml_type_from_name(STATE_TYPE).type_id
    keep = recurrent_filter(hparams)
    per_buffer: dict[tuple[str, str], int] = {}
    for il in range(hparams.n_layer_main):
        if not keep(il):
            continue
        device = placement.device_of_layer(il) if settings.offload_kqv else HOST
        buffer = "CPU" if device == HOST else device_buffer(settings, device)
        alignment = buffer_alignment(buffer)
        size = sum(pad(row_bytes(state_type, width) * n_rows, alignment)
                   for width in (hparams.n_embd_r, hparams.n_embd_s))
        per_buffer[(device, buffer)] = per_buffer.get((device, buffer), 0) + size
    return [BufferEstimate(device, buffer, "recurrent", n_bytes, True)
            for (device, buffer), n_bytes in sorted(per_buffer.items(),
                                                   key=lambda item: item[0][1])]
