"""``gguf-inspect vram`` body: resolve the options against llama.cpp's defaults, run the audit,
render it, and pick the exit code (0 fits or no GPU given, 1 does not fit or cannot be shown
to fit).

From Python: ``run_vram("model.gguf", "json", VramOptions(gpu="rtx4090", n_ctx=8192))``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from gguf_inspect.llamacpp.devices import parse_gpus, parse_size
from gguf_inspect.llamacpp.memory import MemoryConfig
from gguf_inspect.reports.vram import VramReport, audit
from gguf_inspect.core.constants import ExitCode, ggml_type_from_name
from gguf_inspect.gguf.open import read_gguf

# Where each default comes from: the audit states every one it assumed.
DEFAULTS: dict[str, tuple[object, str]] = {
    "n_ctx": (4096, "gguf-inspect's audit default (the plan shows the trained maximum)"),
    "n_batch": (2048, "llama_context_default_params"),
    "n_ubatch": (512, "llama_context_default_params"),
    "n_parallel": (1, "llama_context_default_params n_seq_max"),
    "cache_type_k": ("f16", "llama_context_default_params type_k"),
    "cache_type_v": ("f16", "llama_context_default_params type_v"),
    "flash_attn": ("auto", "llama_context_default_params flash_attn_type"),
    "swa_full": (True, "llama_context_default_params"),
    "kv_unified": (False, "llama_context_default_params"),
    "use_mmap": (True, "llama_model_default_params (load_mode auto: mmap)"),
    "n_gpu_layers": (-1, "llama_model_default_params: all layers"),
    "headroom": ("0", "no memory kept free beyond the buffers; the CUDA context takes a few "
                      "hundred MiB per GPU, add it with --headroom"),
}


@dataclass(frozen=True)
class VramOptions:
    """The command line as given: None means "not given, use the default"."""

    gpu: str | None = None
    n_ctx: int | None = None
    n_gpu_layers: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_parallel: int | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    flash_attn: str | None = None
    swa_full: bool | None = None
    kv_unified: bool | None = None
    use_mmap: bool | None = None
    headroom: str | None = None
    plan: bool = False


def resolve_options(options: VramOptions) -> tuple[dict[str, object], tuple[str, ...]]:
    """Every option's value, and one assumption line per default that was filled in."""
    values: dict[str, object] = {}
    assumed = []
    for field in fields(options):
        if field.name in ("gpu", "plan"):
            continue
        value = getattr(options, field.name)
        if value is None:
            value, source = DEFAULTS[field.name]
            shown = "all (-1)" if field.name == "n_gpu_layers" else value
            assumed.append(f"{field.name} = {shown} ({source})")
        values[field.name] = value
    return values, tuple(assumed)


def build_config(values: dict[str, object]) -> MemoryConfig:
    flash_attn = str(values["flash_attn"]).lower()
    if flash_attn not in ("on", "off", "auto"):
        raise ValueError(f"--flash-attn must be on, off or auto, not {flash_attn!r}")
    if flash_attn == "off" and ggml_type_from_name(str(values["cache_type_v"])).is_quantized:
        # llama_context::llama_context throws: "quantized V cache was requested, but this
        # requires Flash Attention"
        raise ValueError("a quantized V cache needs flash attention: llama.cpp refuses "
                         "--flash-attn off with it")
    return MemoryConfig(
        n_ctx=int(values["n_ctx"]),  # type: ignore[call-overload]
        n_batch=int(values["n_batch"]),  # type: ignore[call-overload]
        n_ubatch=int(values["n_ubatch"]),  # type: ignore[call-overload]
        n_parallel=int(values["n_parallel"]),  # type: ignore[call-overload]
        cache_type_k=str(values["cache_type_k"]), cache_type_v=str(values["cache_type_v"]),
        flash_attn=flash_attn, swa_full=bool(values["swa_full"]),
        kv_unified=bool(values["kv_unified"]),
        use_mmap=bool(values["use_mmap"]),
        n_gpu_layers=int(values["n_gpu_layers"]),  # type: ignore[call-overload]
    )


def run_vram(location: str, output_format: str, options: VramOptions) -> tuple[str, int]:
    """The audit rendered in ``output_format``, and the exit code."""
    values, assumed = resolve_options(options)
    config = build_config(values)
    gpus = parse_gpus(options.gpu) if options.gpu else ()
    headroom = parse_size(str(values["headroom"]))
    if not gpus:
        assumed += ("no --gpu given: CPU-only build (CPU_REPACK rules of this machine's CPU), "
                    "nothing to fit",)
        if options.plan:
            assumed += ("--plan needs --gpu: no plan made",)
    gguf = read_gguf(location)
    report = audit(gguf, config, gpus, headroom, plan=options.plan and bool(gpus),
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
