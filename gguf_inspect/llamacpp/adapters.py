"""What loads beside the model's own weights: LoRA adapters and a draft model for speculative
decoding, each as buffers llama.cpp allocates.

LoRA follows ``llama_adapter_lora_init_impl`` (src/llama-adapter.cpp): the file must say
general.type "adapter" and adapter.type "lora"; ``X.lora_a`` / ``X.lora_b`` pairs patch the
model's tensor X; each pair goes into the buffer type of X's buffer, except the CPU's extra
types (AMX, CPU_REPACK), which fall back to the CPU ("lora for ... cannot use buft"); one buffer
per buffer type, each tensor PAD(alloc_size, alignment) as
``ggml_backend_alloc_ctx_tensors_from_buft`` (ggml-alloc.c). A tensor of a memory-mapped model
lives in a CPU_Mapped buffer, whose type allocates through ``ggml_backend_cpu_buffer_type_alloc_buffer`` (ggml-backend.cpp), so the
adapter's buffer is a plain "CPU" one.

The draft model follows ``common_base_params_to_speculative`` and
``common_speculative_init_result`` (common/speculative.cpp): the main settings with the draft's
own ``-ngld`` and cache types, and the draft context as long as the target's
(``cparams.n_ctx = llama_n_ctx(ctx_tgt)``); it is a second model with its own KV cache, output
and compute buffers (``predict_memory`` on the draft file).
"""

from __future__ import annotations

from dataclasses import replace

from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.llamacpp.backends import is_device_buffer
from gguf_inspect.llamacpp.companions import LoraAdapter
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.kv_cache import resolve_context
from gguf_inspect.llamacpp.memory import MemoryPrediction, predict_memory
from gguf_inspect.llamacpp.placement import (
    HOST,
    BufferEstimate,
    alloc_size,
    buffer_alignment,
    pad,
    place_layers,
    place_tensors,
)
from gguf_inspect.llamacpp.settings import LlamaSettings

CPU_EXTRA_BUFFERS = frozenset({"AMX", "CPU_REPACK"})  # ggml_backend_dev_get_extra_bufts (CPU)
HOST_BUFFERS = frozenset({"CPU", "CPU_Mapped"})
DRAFT_GPU_LAYERS = -1  # common_params_speculative draft.n_gpu_layers (common/common.h)


def lora_buffers(model: GGUFFile, adapter: LoraAdapter,
                 settings: LlamaSettings) -> list[BufferEstimate]:
    """One "LoRA buffer" per buffer type the patched tensors live in."""
    if adapter.architecture != model.architecture:
        raise ValueError("model arch and LoRA arch mismatch")
    hparams = read_hyperparameters(model)
    placement = place_layers(hparams.n_layer, settings.n_gpu_layers, settings.gpu_capacities)
    where = {item.tensor.name: item for item in place_tensors(model, hparams, placement, settings)
             if not item.duplicate}
    sizes: dict[tuple[str, str], int] = {}
    for target, pair in zip(adapter.targets, adapter.pairs):
        placed = where.get(target)
        if placed is None:
            raise ValueError(f"LoRA tensor '{target}' does not exist in base model "
                             "(hint: maybe wrong base model?)")
        buffer = placed.buffer
        if buffer in CPU_EXTRA_BUFFERS or buffer in HOST_BUFFERS:
            buffer = "CPU"
        key = (placed.device if is_device_buffer(buffer) else HOST, buffer)
        sizes[key] = sizes.get(key, 0) + sum(_lora_alloc(t, buffer) for t in pair)
    return [BufferEstimate(device, buffer, "lora", size, True)
            for (device, buffer), size in sizes.items()]


def _lora_alloc(tensor: TensorInfo, buffer: str) -> int:
    """The adapter tensor's allocation in ``buffer`` (never AMX or CPU_REPACK: those map to CPU
    above), as for a model tensor of that buffer."""
    return pad(alloc_size(tensor, buffer), buffer_alignment(buffer))


# ---- the draft model ---------------------------------------------------------------------------


def draft_settings(main: LlamaSettings, target: GGUFFile, n_gpu_layers: int | None,
                   cache_type_k: str | None = None, cache_type_v: str | None = None,
                   ) -> LlamaSettings:
    """The draft's settings: the main ones, the draft's -ngld (common/arg.cpp: default -1,
    whatever -ngl says), and n_ctx the target context's resolved length."""
    n_ctx = resolve_context(read_hyperparameters(target), main).n_ctx
    return replace(main, n_ctx=n_ctx,
                   n_gpu_layers=DRAFT_GPU_LAYERS if n_gpu_layers is None else n_gpu_layers,
                   cache_type_k=cache_type_k or main.cache_type_k,
                   cache_type_v=cache_type_v or main.cache_type_v, embeddings=False)


def draft_buffers(draft: GGUFFile, settings: LlamaSettings) -> tuple[MemoryPrediction,
                                                                     list[BufferEstimate]]:
    """The draft's own prediction and its buffers, relabelled ``draft_<kind>``."""
    prediction = predict_memory(draft, settings)
    return prediction, [replace(item, kind=f"draft_{item.kind}") for item in prediction.buffers]
