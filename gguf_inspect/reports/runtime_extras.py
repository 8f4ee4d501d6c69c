"""``runtime --lora / --mmproj / --model-draft``: the extra files' predicted buffers beside what
llama.cpp and mtmd logged for them, as comparison checks (sizes as the log prints them, MiB to
two decimals). A draft model is a second model: its checks are the main model's kind, named
``draft ...``.

LoRA buffers are exact; the projector's model size is exact (mtmd logs the sum of ggml_nbytes);
its compute buffer is an estimate, accepted within 1% (shown as ``estimate``), else ``differs``.
"""

from __future__ import annotations

from dataclasses import replace

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.extras import ExtraLoad
from gguf_inspect.llamacpp.extras_log import parse_extras_log
from gguf_inspect.reports.runtime import Check, RuntimeComparison

MIB = 1024 * 1024
COMPUTE_TOLERANCE = 0.01


def _printed(n_bytes: int) -> float:
    return round(n_bytes / MIB, 2)


def _exact(quantity: str, predicted: int, logged: float | None) -> Check:
    status = "match" if logged is not None and _printed(predicted) == logged else "differs"
    return Check(quantity, "MiB", _printed(predicted), logged, status)


def extras_checks(loads: tuple[ExtraLoad, ...], mmproj: GGUFFile | None,
                  extras_log: str) -> list[Check]:
    """One check per LoRA buffer (in load order) and two for a projector."""
    log = parse_extras_log(extras_log)
    checks: list[Check] = []
    logged_lora = iter(log.lora_buffers)
    for load in loads:
        if load.role == "lora":
            for item in load.buffers:
                name, mib = next(logged_lora, (item.buffer, None))
                checks.append(_exact(f"LoRA buffer {name} ({load.path.rsplit('/', 1)[-1]})",
                                     item.n_bytes, mib))
        elif load.role == "mmproj" and mmproj is not None:
            checks.append(_exact("projector model size (sum of tensor bytes)",
                                 sum(tensor.n_bytes for tensor in mmproj.tensors),
                                 log.projector_model_mib))
            compute = sum(item.n_bytes for item in load.buffers if item.kind == "mmproj_compute")
            logged = log.projector_compute[0][1] if log.projector_compute else None
            within = logged is not None and abs(compute / MIB - logged) <= max(
                COMPUTE_TOLERANCE * logged, 0.005)
            checks.append(Check("projector compute buffer CPU", "MiB", _printed(compute), logged,
                                "estimate" if within else "differs",
                                "the vision graph's allocator peak, within 1%"))
    return checks


def draft_checks(draft: RuntimeComparison) -> tuple[Check, ...]:
    """The draft model's own comparison (facts, model, KV and compute buffers), each quantity
    named ``draft ...`` so that it reads apart from the main model's."""
    return tuple(replace(check, quantity=f"draft {check.quantity}") for check in draft.checks)
