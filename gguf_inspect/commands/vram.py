"""``gguf-inspect vram`` body: resolve the options against llama.cpp's defaults, run the audit,
render it, and pick the exit code (0 fits or no GPU given, 1 does not fit or cannot be shown
to fit).

From Python:
``run_vram("model.gguf", "json", VramOptions(gpu="rtx4090", settings={"n_ctx": 8192}))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gguf_inspect.llamacpp.devices import parse_gpus, parse_size
from gguf_inspect.llamacpp.settings import context_refusal, resolve_settings
from gguf_inspect.reports.vram import VramReport, audit
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import UsageError
from gguf_inspect.gguf.open import read_gguf

# The audit's own default, stated beside llama.cpp's (llamacpp/settings.py SETTINGS).
HEADROOM_DEFAULT = "0"
HEADROOM_ASSUMPTION = (f"headroom = {HEADROOM_DEFAULT} (no memory kept free beyond the buffers; "
                       "the CUDA context takes a few hundred MiB per GPU, add it with --headroom)")


@dataclass(frozen=True)
class VramOptions:
    """The command line as given: None means "not given, use the default"."""

    gpu: str | None = None
    headroom: str | None = None
    plan: bool = False
    # llama.cpp settings given (LlamaSettings fields; absent or None: the table's default)
    settings: Mapping[str, Any] = field(default_factory=dict)


def run_vram(location: str, output_format: str, options: VramOptions) -> tuple[str, int]:
    """The audit rendered in ``output_format``, and the exit code."""
    settings, assumed = resolve_settings(options.settings)
    refusal = context_refusal(settings)
    if refusal is not None:  # llama_context::llama_context throws; nothing to audit
        raise UsageError(f"{refusal}: llama.cpp refuses --flash-attn off with it")
    if options.headroom is None:
        assumed += (HEADROOM_ASSUMPTION,)
    headroom = parse_size(options.headroom or HEADROOM_DEFAULT)
    gpus = parse_gpus(options.gpu) if options.gpu else ()
    if not gpus:
        assumed += ("no --gpu given: CPU-only build (CPU_REPACK rules of this machine's CPU), "
                    "nothing to fit",)
        if options.plan:
            assumed += ("--plan needs --gpu: no plan made",)
    gguf = read_gguf(location)
    report = audit(gguf, settings, gpus, headroom, plan=options.plan and bool(gpus),
                   assumptions=assumed)
    if output_format == "json":
        from gguf_inspect.render.vram import vram_json

        text = vram_json(report)
    else:
        from gguf_inspect.commands import render_sections
        from gguf_inspect.render.vram import vram_sections

        text = render_sections(vram_sections(report, bars=output_format == "table"),
                               output_format)
    return text, ExitCode.DIFFERS if _cannot_be_shown_to_fit(report) else ExitCode.OK


def _cannot_be_shown_to_fit(report: VramReport) -> bool:
    """A CI gate fails closed: "does not fit", and "cannot tell" on a GPU (memory the audit
    does not model, e.g. recurrent state) both exit 1."""
    return report.fits is False or (bool(report.gpus) and report.fits is None)
