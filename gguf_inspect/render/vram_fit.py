"""Rendering of ``vram --fit on``: what llama-server's automatic fit would start with, which
step decided what, the projected memory per GPU, and the command line that pins it; and the
``fit`` object of the JSON."""

from __future__ import annotations

import shlex
from typing import Any

from gguf_inspect.llamacpp.fit import FitPlan
from gguf_inspect.render.document import KeyValues, Section, Table
from gguf_inspect.render.text import format_mib


def command_line(plan: FitPlan) -> str:
    """The arguments quoted for a POSIX shell (the -ot patterns hold ``|`` and ``\\``)."""
    return shlex.join(plan.command)


def start_line(plan: FitPlan) -> str:
    """One line for the verdict and the plan grid."""
    split = f" -ts {','.join(map(str, plan.tensor_split))}" if plan.tensor_split else ""
    overrides = f", {len(plan.overrides)} -ot override(s)" if plan.overrides else ""
    return f"-c {plan.n_ctx} -ngl {plan.n_gpu_layers}{split}{overrides}"


def _outcome(plan: FitPlan) -> str:
    if plan.status == "success" and plan.fits:
        return "success: every GPU keeps its target free"
    if plan.status == "success":
        return ("success as llama.cpp reports it, but not every GPU keeps its target free "
                "(the layer search stopped at its lower bound); loading may run out of memory")
    return f"{plan.status}: {plan.message} (llama.cpp loads with the parameters as they stand)"


def fit_sections(plan: FitPlan) -> list[Section]:
    summary = KeyValues("llama-server --fit", [
        ("outcome", _outcome(plan)),
        ("would start with", start_line(plan)),
        ("no-alloc loads", str(plan.measurements)),
        ("command", command_line(plan)),
    ])
    devices = Table("fit: memory per GPU", ["device", "free", "target free", "used",
                                            "left free"],
                    [[device.name, format_mib(device.free_bytes),
                      format_mib(device.margin_bytes), format_mib(device.used_bytes),
                      ("" if device.projected_free >= 0 else "-")
                      + format_mib(abs(device.projected_free))] for device in plan.devices],
                    numeric_columns=frozenset({1, 2, 3, 4}))
    steps = Table("fit: steps (common_params_fit_impl, common/fit.cpp)",
                  ["step", "action", "outcome"],
                  [[str(step.step), step.action, step.outcome] for step in plan.steps])
    sections: list[Section] = [summary, devices, steps]
    if plan.overrides:
        sections.append(Table("fit: tensor overrides (-ot)", ["pattern", "buffer"],
                              [[pattern, buffer] for pattern, buffer in plan.overrides]))
    return sections


def fit_json(plan: FitPlan) -> dict[str, Any]:
    return {
        "status": plan.status, "message": plan.message, "fits": plan.fits,
        "n_ctx": plan.n_ctx, "n_gpu_layers": plan.n_gpu_layers,
        "tensor_split": list(plan.tensor_split),
        "overrides": [{"pattern": pattern, "buffer": buffer}
                      for pattern, buffer in plan.overrides],
        "devices": [{"name": device.name, "free_bytes": device.free_bytes,
                     "target_bytes": device.margin_bytes, "used_bytes": device.used_bytes,
                     "projected_free_bytes": device.projected_free} for device in plan.devices],
        "steps": [{"step": step.step, "action": step.action, "outcome": step.outcome}
                  for step in plan.steps],
        "measurements": plan.measurements,
        "command": list(plan.command), "command_line": command_line(plan),
    }
