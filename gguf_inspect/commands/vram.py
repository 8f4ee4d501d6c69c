"""``gguf-inspect vram`` body: resolve the options against llama.cpp's defaults, run the audit,
render it, and pick the exit code (0 fits or no GPU given, 1 does not fit or cannot be shown
to fit; with --fit on, whether llama-server's fitted start keeps its target free).

From Python:
``run_vram("model.gguf", "json", VramOptions(gpu="rtx4090", settings={"n_ctx": 8192}))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from gguf_inspect.llamacpp.companions import parse_lora_option
from gguf_inspect.llamacpp.devices import parse_gpus, parse_size
from gguf_inspect.llamacpp.extras import ExtraFiles
from gguf_inspect.llamacpp.fit import (
    DEFAULT_MIN_CTX,
    UINT32_MAX,
    FitRequest,
    assumed_free,
    parse_fit_target,
)
from gguf_inspect.llamacpp.settings import (
    LlamaSettings,
    context_refusal,
    resolve_settings,
    rpc_servers,
)
from gguf_inspect.reports.vram import VramReport, audit
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import UsageError
from gguf_inspect.core.model import GGUFFile
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.hparams import read_hyperparameters

# The audit's own default, stated beside llama.cpp's (llamacpp/settings.py SETTINGS).
HEADROOM_DEFAULT = "0"
HEADROOM_ASSUMPTION = (f"headroom = {HEADROOM_DEFAULT} (no memory kept free beyond the buffers; "
                       "the CUDA context takes a few hundred MiB per GPU, add it with --headroom)")


# common/arg.cpp is_truthy / is_falsey
FIT_ON = ("on", "enabled", "true", "1")
FIT_OFF = ("off", "disabled", "false", "0")


@dataclass(frozen=True)
class VramOptions:
    """The command line as given: None means "not given, use the default"."""

    gpu: str | None = None
    headroom: str | None = None
    plan: bool = False
    # llama.cpp settings given (LlamaSettings fields; absent or None: the table's default)
    settings: Mapping[str, Any] = field(default_factory=dict)
    # files loaded beside the model (llama.cpp's --lora, -md, -ngld, --mmproj)
    lora: str | None = None  # FILE[:SCALE][,...]
    model_draft: str | None = None
    gpu_layers_draft: int | None = None
    mmproj: str | None = None
    mmproj_offload: bool = True
    # llama.cpp's automatic fit (common/arg.cpp --fit, --fit-target, --fit-ctx)
    fit: str = "off"  # on | off
    fit_target: str | None = None  # MiB[,MiB...]
    fit_ctx: int | None = None


def read_extras(options: VramOptions) -> ExtraFiles | None:
    """The extra files' headers, or None when none was given."""
    loras = tuple((read_gguf(path), scale) for path, scale in parse_lora_option(options.lora or ""))
    draft = read_gguf(options.model_draft) if options.model_draft else None
    mmproj = read_gguf(options.mmproj) if options.mmproj else None
    extras = ExtraFiles(loras, draft, options.gpu_layers_draft, mmproj, options.mmproj_offload)
    return extras or None


def run_vram(location: str, output_format: str, options: VramOptions) -> tuple[str, int]:
    """The audit rendered in ``output_format``, and the exit code."""
    settings, assumed = resolve_settings(options.settings)
    refusal = context_refusal(settings)
    if refusal is not None:  # llama_context::llama_context throws; nothing to audit
        raise UsageError(f"{refusal}: llama.cpp refuses this context")
    if options.headroom is None:
        assumed += (HEADROOM_ASSUMPTION,)
    headroom = parse_size(options.headroom or HEADROOM_DEFAULT)
    gpus = parse_gpus(options.gpu) if options.gpu else ()
    _check_rpc(settings, gpus, options)
    if not gpus:
        assumed += ("no --gpu given: CPU-only build (CPU_REPACK rules of this machine's CPU), "
                    "nothing to fit",)
        if options.plan:
            assumed += ("--plan needs --gpu: no plan made",)
    gguf = read_gguf(location)
    _refuse_context(location, gguf, settings)
    extras = read_extras(options)
    request, fit_lines = fit_request(options, settings, gpus, extras)
    report = audit(gguf, settings, gpus, headroom, plan=options.plan and bool(gpus),
                   assumptions=assumed + fit_lines, extras=extras, fit=request)
    if output_format == "json":
        from gguf_inspect.render.vram import vram_json

        text = vram_json(report)
    else:
        from gguf_inspect.commands import render_sections
        from gguf_inspect.render.vram import vram_sections

        text = render_sections(vram_sections(report, bars=output_format == "table"),
                               output_format)
    return text, ExitCode.DIFFERS if _cannot_be_shown_to_fit(report) else ExitCode.OK


def _refuse_context(location: str, gguf: GGUFFile, settings: LlamaSettings) -> None:
    """The refusals of llama_init_from_model that depend on the model (head sizes, MLA):
    nothing to audit when llama.cpp would not make the context."""
    hparams = read_hyperparameters(gguf)
    refusal = context_refusal(settings, hparams.head_k, hparams.head_v, hparams.is_mla)
    if refusal is not None:
        raise UsageError(f"{location}: {refusal}: llama.cpp refuses this context")


def _check_rpc(settings: LlamaSettings, gpus: tuple, options: VramOptions) -> None:
    """``--rpc`` servers are the devices: ``--gpu`` names each one's free memory (what llama.cpp
    splits the layers by and what must hold them), one size per server, in the same order."""
    servers = rpc_servers(settings.rpc)
    if not servers:
        return
    if len(gpus) != len(servers):
        raise UsageError(f"--rpc names {len(servers)} server(s): give each one's free memory "
                         f"with --gpu, one size per server (e.g. --gpu "
                         f"{','.join(['24GiB'] * len(servers))}); got {len(gpus)}")
    if options.fit.lower() in FIT_ON:
        raise UsageError("--fit on replays the CUDA build's fit; it is not modelled with --rpc")


def fit_request(options: VramOptions, settings: LlamaSettings, gpus: tuple,
                extras: ExtraFiles | None) -> tuple[FitRequest | None, tuple[str, ...]]:
    """What llama-server's common_fit_params would be given: the parameters as set, n_ctx 0
    (llama-server's default: the trained context) unless --ctx was given, and -c 0 turning the
    context reduction off (common/arg.cpp sets fit_params_min_ctx to UINT32_MAX)."""
    switch = options.fit.lower()
    if switch not in FIT_ON + FIT_OFF:
        raise UsageError(f"--fit: expected on or off, got {options.fit!r}")
    if switch in FIT_OFF:
        return None, ()
    if not gpus:
        return None, ("--fit needs --gpu: llama.cpp fits to the GPUs' free memory; no fit made",)
    try:
        margins = parse_fit_target(options.fit_target, len(gpus))
    except ValueError as error:
        raise UsageError(f"--fit-target: {error}") from None
    given = {name for name, value in options.settings.items() if value is not None}
    n_ctx = options.settings.get("n_ctx")
    free, lines = assumed_free(gpus)
    n_ctx_min = (UINT32_MAX if n_ctx == 0 else DEFAULT_MIN_CTX if options.fit_ctx is None
                 else options.fit_ctx)
    lines += (f"fit: target {', '.join(str(m >> 20) for m in margins)} MiB free per GPU "
              "(--fit-target, common_params fit_params_target), minimum context "
              + ("none: -c 0 asks for the full context" if n_ctx == 0 else str(n_ctx_min))
              + " (--fit-ctx); --headroom plays no part in the fit",)
    if n_ctx is None:
        lines += ("fit: n_ctx unset: llama-server's default 0, the trained context, which the "
                  "fit may lower (the audit above keeps --ctx's default)",)
    if extras is not None and extras.loras:
        lines += ("fit: LoRA adapters load after the fit (common_init_result) and are not "
                  "counted by it",)
    request = FitRequest(settings if n_ctx is not None else replace(settings, n_ctx=0), free,
                         margins, n_ctx_min, "n_gpu_layers" in given, extras)
    return request, lines


def _cannot_be_shown_to_fit(report: VramReport) -> bool:
    """A CI gate fails closed: "does not fit", and "cannot tell" on a GPU (memory the audit
    does not model, e.g. recurrent state) both exit 1. With ``--fit on`` the deployment is
    what llama-server starts with after fitting, so its result decides instead of the settings
    as given: exit 1 when a GPU would not keep its --fit-target free."""
    if report.gpus and report.fits is None:
        return True
    if report.fit is not None:
        return not report.fit.fits
    return report.fits is False
