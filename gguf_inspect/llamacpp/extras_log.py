"""The lines llama.cpp logs while loading the files beside a model, parsed.

``llama_adapter_lora_init_impl`` (src/llama-adapter.cpp) prints one
``%10s LoRA buffer size = %8.2f MiB`` line per buffer; mtmd's ``clip_model_loader::load_hparams``
(tools/mtmd/clip.cpp) prints ``model size: %.2f MiB`` (the sum of ggml_nbytes over the tensors)
and ``reserve_compute_meta`` one ``%10s compute buffer size = %8.2f MiB`` line per backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LORA_BUFFER = re.compile(r"llama_adapter_lora_init_impl:\s+(\S+) LoRA buffer size =\s+([\d.]+) MiB")
CLIP_MODEL_SIZE = re.compile(r"load_hparams: model size:\s+([\d.]+) MiB")
CLIP_COMPUTE = re.compile(r"reserve_compute_meta:\s+(\S+) compute buffer size =\s+([\d.]+) MiB")


@dataclass
class ExtrasLog:
    # (buffer name, MiB) per LoRA buffer, in load order
    lora_buffers: list[tuple[str, float]] = field(default_factory=list)
    projector_model_mib: float | None = None
    projector_compute: list[tuple[str, float]] = field(default_factory=list)  # the last reserve


def parse_extras_log(text: str) -> ExtrasLog:
    parsed = ExtrasLog()
    parsed.lora_buffers = [(m.group(1), float(m.group(2))) for m in LORA_BUFFER.finditer(text)]
    model = CLIP_MODEL_SIZE.search(text)
    parsed.projector_model_mib = float(model.group(1)) if model else None
    # warmup may reserve twice (flash attention tried, then off): the last reserve stands
    computes = [(m.group(1), float(m.group(2))) for m in CLIP_COMPUTE.finditer(text)]
    parsed.projector_compute = computes[-1:]
    return parsed
