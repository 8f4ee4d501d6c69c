"""Every file loaded beside the model, as the buffers llama.cpp (and mtmd) allocate for it under
one configuration: LoRA adapters (``adapters.lora_buffers``), a draft model
(``adapters.draft_buffers``) and a multimodal projector (``projector``).

Where the projector goes: ``clip_ctx`` (tools/mtmd/clip.cpp) takes the first GPU backend
(``ggml_backend_init_by_type(GPU)``) when ``use_gpu``, i.e. unless ``--no-mmproj-offload``
(common/arg.cpp: ``mmproj_use_gpu``), and the CPU otherwise or without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.adapters import draft_buffers, draft_settings, lora_buffers
from gguf_inspect.llamacpp.companions import read_lora, read_projector
from gguf_inspect.llamacpp.placement import BufferEstimate
from gguf_inspect.llamacpp.projector import projector_compute, projector_notes, projector_weights
from gguf_inspect.llamacpp.settings import LlamaSettings


@dataclass(frozen=True)
class ExtraFiles:
    """What was asked to load beside the model (headers already read)."""

    loras: tuple[tuple[GGUFFile, float], ...] = ()  # (adapter, scale)
    draft: GGUFFile | None = None
    draft_gpu_layers: int | None = None  # -ngld; None: llama.cpp's default
    mmproj: GGUFFile | None = None
    mmproj_offload: bool = True  # --no-mmproj-offload turns it off

    def __bool__(self) -> bool:
        return bool(self.loras) or self.draft is not None or self.mmproj is not None


@dataclass(frozen=True)
class ExtraLoad:
    role: str  # "lora" | "draft" | "mmproj"
    path: str
    buffers: tuple[BufferEstimate, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_bytes(self) -> int:
        return sum(item.n_bytes for item in self.buffers)


def extra_loads(model: GGUFFile, settings: LlamaSettings,
                extras: ExtraFiles | None) -> tuple[ExtraLoad, ...]:
    """The buffers of each extra file under ``settings`` (the main model's, GPUs included)."""
    if not extras:
        return ()
    loads = []
    for adapter_file, scale in extras.loras:
        adapter = read_lora(adapter_file, scale)
        loads.append(ExtraLoad("lora", adapter_file.path,
                               tuple(lora_buffers(model, adapter, settings)),
                               (f"LoRA {adapter_file.path}: {len(adapter.targets)} tensors "
                                f"patched, scale {scale:g}",)))
    if extras.draft is not None:
        draft_config = draft_settings(settings, model, extras.draft_gpu_layers)
        prediction, buffers = draft_buffers(extras.draft, draft_config)
        notes = (f"draft {extras.draft.path}: context {prediction.context.n_ctx} (the target's, "
                 "common_speculative_init_result), -ngld "
                 f"{draft_config.n_gpu_layers}",)
        loads.append(ExtraLoad("draft", extras.draft.path, tuple(buffers), notes))
    if extras.mmproj is not None:
        offload = extras.mmproj_offload and bool(settings.gpu_capacities)
        shape = read_projector(extras.mmproj)
        buffers = (projector_weights(extras.mmproj, offload), projector_compute(shape, offload))
        loads.append(ExtraLoad("mmproj", extras.mmproj.path, buffers, projector_notes(shape)))
    return tuple(loads)


def extra_buffers(loads: tuple[ExtraLoad, ...]) -> tuple[BufferEstimate, ...]:
    return tuple(item for load in loads for item in load.buffers)
