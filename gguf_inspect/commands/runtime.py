"""The ``runtime`` command's body: load the model through llama-cpp-python (or read a saved
load log), predict the same load with the memory model, and render the side-by-side checks.

From Python: ``run_runtime("model.gguf", "json", {"n_ctx": 1000})`` returns (text, exit code);
the settings are ``LlamaSettings`` fields (llamacpp/settings.py), the rest llama.cpp's defaults.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.adapters import draft_settings
from gguf_inspect.llamacpp.companions import parse_lora_option
from gguf_inspect.llamacpp.extras import ExtraFiles, extra_loads
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.reports.runtime_extras import draft_checks, extras_checks
from gguf_inspect.llamacpp.settings import (
    LlamaSettings,
    given_settings,
    resolve_settings,
    rpc_servers,
)
from gguf_inspect.reports.runtime import (
    ExactFigures,
    RuntimeComparison,
    compare,
    config_from_log,
    device_settings_from_log,
    rpc_capacities,
)
from gguf_inspect.llamacpp.load_log import LoadLog, parse_load_log, split_log_text
from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.commands import render_sections
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import GGUFError, RuntimeUnavailableError, SourceError, UsageError
from gguf_inspect.gguf.open import read_gguf

if TYPE_CHECKING:
    from gguf_inspect.llamacpp.runtime import RuntimeCapture

# A load log is tens of KiB (a few MiB with every tensor listed); past this it is not one, and
# parsing it would take long. Only a regular file is read: a FIFO or /dev/zero never ends.
MAX_LOG_BYTES = 16 << 20


def _read_text(path: str) -> str:
    import os

    from gguf_inspect.gguf.source import open_regular

    fd, size = open_regular(path)
    try:
        if size > MAX_LOG_BYTES:
            raise SourceError(f"the log is {size:,} bytes; a llama.cpp load log is read up to "
                              f"{MAX_LOG_BYTES:,} bytes", path=path)
        data = os.pread(fd, MAX_LOG_BYTES + 1, 0)
    except OSError as error:
        raise SourceError(f"cannot read the log: {error.strerror or error}", path=path) from None
    finally:
        os.close(fd)
    return data[:MAX_LOG_BYTES].decode("utf-8", errors="replace")


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise SourceError(f"cannot write the log: {error.strerror or error}", path=path) from None


def _from_saved_log(log_file: str, settings: Mapping[str, Any]
                    ) -> tuple[LoadLog, LlamaSettings, list[str]]:
    log = parse_load_log(split_log_text(_read_text(log_file)))
    if log.style == "unknown" and log.n_embd is None and not log.model_buffers:
        raise GGUFError("not a llama.cpp load log: no print_info:/llm_load_print_meta:, "
                        "load_tensors: or llama_context: lines", path=log_file)
    # A log that does not say how many layers it offloaded: none (as before the defaults
    # table; only matters when the log shows GPU buffers but no "offloaded" line).
    config, notes = config_from_log(log, LlamaSettings(n_gpu_layers=0))
    given = given_settings(settings)
    if given:
        config, _assumed = resolve_settings(given, base=config)
        notes.append("given on the command line: " + ", ".join(
            f"{name}={value}" for name, value in given.items()))
    return log, config, notes


def _exact_figures(capture: "RuntimeCapture") -> ExactFigures:
    return ExactFigures(capture.model_size, capture.model_n_params, capture.n_ctx,
                        capture.n_ctx_seq, capture.n_batch, capture.n_ubatch, capture.n_seq_max)


def _from_live_load(location: str, config: LlamaSettings, log_path: str | None,
                    loras: tuple[tuple[str, float], ...] = (), mmproj: str | None = None,
                    draft: tuple[str, LlamaSettings] | None = None,
                    ) -> tuple[LoadLog, ExactFigures, str, str, "RuntimeCapture | None"]:
    from gguf_inspect.llamacpp.runtime import capture_load

    try:
        capture = capture_load(location, config, loras, mmproj, draft)
    except RuntimeUnavailableError as error:
        raw_log = getattr(error, "raw_log", None)
        if log_path and raw_log:
            _write_text(log_path, raw_log)  # the refusal's log is the useful one to keep
        raise
    if log_path:
        _write_text(log_path, capture.raw_log)
    return (parse_load_log(capture.records), _exact_figures(capture), capture.library,
            capture.extras_log, capture.draft)


def compare_runtime(location: str, settings: Mapping[str, Any], log_path: str | None = None,
                    from_log: str | None = None, lora: str | None = None,
                    mmproj: str | None = None, model_draft: str | None = None,
                    gpu_layers_draft: int | None = None) -> RuntimeComparison:
    """Load (or read the saved log of) ``location`` with ``settings`` (LlamaSettings fields
    given by the user; None or absent: not given) and compare every figure with the memory
    model's prediction. A live load takes the defaults table's values for the rest, as
    ``vram`` assumes them: llama.cpp's C API defaults (every layer offloaded, n_gpu_layers -1
    from llama_model_default_params; no effect on a CPU-only build) and n_ctx 4096.
    ``model_draft``: a draft model loaded after it, as a second model with the target's
    context (-ngld ``gpu_layers_draft``), compared the same way (checks named ``draft ...``)."""
    gguf = read_gguf(location)
    loras = parse_lora_option(lora or "")
    if from_log is not None and model_draft is not None:
        raise UsageError("--model-draft needs a live load: a saved log holds one model's load")
    draft_gguf = read_gguf(model_draft) if model_draft is not None else None
    draft_capture = None
    if from_log is not None:
        log, config, notes = _from_saved_log(from_log, settings)
        exact, runtime = None, f"log {from_log}"
        extras_log = _read_text(from_log) if loras or mmproj else ""
    else:
        config, notes = resolve_settings(settings)[0], []
        draft = None if draft_gguf is None else (
            draft_gguf.path, draft_settings(config, gguf, gpu_layers_draft))
        log, exact, runtime, extras_log, draft_capture = _from_live_load(
            location, config, log_path, loras, mmproj, draft)
        devices, device_notes = device_settings_from_log(log)
        if config.rpc:  # the servers asked for, each with the free memory it reported
            config = replace(config, gpu_capacities=rpc_capacities(
                log, rpc_servers(config.rpc)))
            notes += device_notes
        elif "gpu_capacities" in devices:
            # A GPU build: predict for the devices llama.cpp used, as the log names them.
            config = replace(config, gpu_capacities=devices["gpu_capacities"])
            notes += device_notes
    comparison = compare(summarize(gguf), predict_memory(gguf, config), log, exact, runtime)
    comparison = replace(comparison, notes=tuple(notes) + comparison.notes)
    if loras or mmproj:
        comparison = _with_extras(comparison, gguf, config, loras, mmproj, extras_log)
    if draft_gguf is not None and draft_capture is not None:
        comparison = _with_draft(comparison, gguf, draft_gguf, config, gpu_layers_draft,
                                 draft_capture)
    return comparison


def _with_draft(comparison: RuntimeComparison, gguf: GGUFFile, draft: GGUFFile,
                config: LlamaSettings, gpu_layers_draft: int | None,
                capture: "RuntimeCapture") -> RuntimeComparison:
    """The draft model's checks after the main model's, made as for the main model: its
    prediction under the draft's settings (the target's context, -ngld) beside its own load."""
    draft_config = draft_settings(config, gguf, gpu_layers_draft)
    log = parse_load_log(capture.records)
    own = compare(summarize(draft), predict_memory(draft, draft_config), log,
                  _exact_figures(capture), capture.library)
    note = (f"draft {draft.path}: loaded as a second model with its own context (n_ctx "
            f"{capture.n_ctx}, the target's; -ngld {draft_config.n_gpu_layers})")
    return replace(comparison, checks=comparison.checks + draft_checks(own),
                   notes=comparison.notes + (note,))


def _with_extras(comparison: RuntimeComparison, gguf: GGUFFile, config: LlamaSettings,
                 loras: tuple[tuple[str, float], ...], mmproj: str | None,
                 extras_log: str) -> RuntimeComparison:
    """The LoRA and projector checks after the model's (the projector on the CPU, as loaded)."""
    projector = read_gguf(mmproj) if mmproj else None
    files = ExtraFiles(tuple((read_gguf(path), scale) for path, scale in loras), None, None,
                       projector, mmproj_offload=False)
    checks = extras_checks(extra_loads(gguf, config, files), projector, extras_log)
    return replace(comparison, checks=comparison.checks + tuple(checks))


def run_runtime(location: str, output_format: str, settings: Mapping[str, Any],
                log_path: str | None = None, from_log: str | None = None,
                lora: str | None = None, mmproj: str | None = None,
                model_draft: str | None = None, gpu_layers_draft: int | None = None,
                ) -> tuple[str, int]:
    """The ``runtime`` command: rendered comparison and its exit code (0 all exact match)."""
    comparison = compare_runtime(location, settings, log_path, from_log, lora, mmproj,
                                 model_draft, gpu_layers_draft)
    code = ExitCode.OK if comparison.all_match else ExitCode.DIFFERS
    if output_format == "json":
        from gguf_inspect.render.runtime import runtime_json

        return runtime_json(comparison), code
    from gguf_inspect.render.runtime import runtime_sections

    return render_sections(runtime_sections(comparison), output_format), code
