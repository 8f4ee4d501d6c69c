"""Our predictions beside llama.cpp's own figures, one check per quantity.

Predictions come from the header (``summary``) and the shared memory model (``memory``); the
runtime's figures come from its load log (``llamacpp.load_log``) and, when the model was loaded here,
from the C API's exact counters (``llama_model_size``, ``llama_model_n_params``, ``llama_n_ctx``).

Sizes in the log are printed in MiB (GiB for large files) with two decimals, so a predicted size
is formatted the way llama.cpp formats it (same unit, same decimals, same float/double rounding)
and the two texts are compared: a match means "equal at the log's printed precision". Exact byte
counts are compared wherever the API gives them. The compute buffer has no closed form: its row
is an ``estimate`` with the percentage difference and never decides the exit code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from gguf_inspect.llamacpp.memory import MemoryPrediction
from gguf_inspect.llamacpp.placement import float32
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.llamacpp.load_log import LoadLog, LoggedBuffer, PrintedSize
from gguf_inspect.llamacpp.summary import ModelSummary
from gguf_inspect.core.constants import ggml_type_from_name

MATCH, DIFFERS, ESTIMATE = "match", "differs", "estimate"
MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Check:
    """One row of the side-by-side table."""

    quantity: str
    unit: str
    predicted: Any  # int | float | str | None (None: not predicted)
    runtime: Any  # int | float | str | None (None: not in the runtime's output)
    status: str  # match | differs | estimate
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.status != ESTIMATE


@dataclass(frozen=True)
class ExactFigures:
    """What the C API reports beside the log (only when the model was loaded here)."""

    model_size: int
    model_n_params: int
    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    n_seq_max: int


@dataclass(frozen=True)
class RuntimeComparison:
    model: str
    runtime: str  # "llama-cpp-python 0.3.36" or "log FILE"
    log_style: str  # "current" | "older" | "unknown"
    config: dict[str, Any]  # the context as llama.cpp resolved it
    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def all_match(self) -> bool:
        return all(check.status == MATCH for check in self.checks if check.exact)


# ---- formatting exactly as llama.cpp prints, to compare at its precision ----------------------

def printed_value(n_bytes: int, like: PrintedSize, single_precision: bool = False) -> float:
    """``n_bytes`` in the unit and at the decimals of a printed size, rounded as printf does.

    ``single_precision``: the KV summary line divides in C ``float`` (llama-kv-cache.cpp); the
    other lines divide in ``double``.
    """
    scale = GIB if like.unit == "GiB" else MIB
    value = float32(float32(n_bytes) / float32(scale)) if single_precision else n_bytes / scale
    return float(f"{value:.{like.decimals}f}")


def _size_check(quantity: str, n_bytes: int | None, logged: PrintedSize | None,
                single_precision: bool = False, note: str = "") -> Check:
    if logged is None:
        predicted = None if n_bytes is None else float(f"{n_bytes / MIB:.2f}")
        return Check(quantity, "MiB", predicted, None, DIFFERS, note or "not in the runtime's log")
    if n_bytes is None:
        return Check(quantity, logged.unit, None, logged.value, DIFFERS, note or "not predicted")
    predicted = printed_value(n_bytes, logged, single_precision)
    status = MATCH if f"{predicted:.{logged.decimals}f}" == f"{logged.value:.{logged.decimals}f}" \
        else DIFFERS
    return Check(quantity, logged.unit, predicted, logged.value, status, note)


def _value_check(quantity: str, unit: str, predicted: Any, runtime: Any, note: str = "") -> Check:
    return Check(quantity, unit, predicted, runtime, MATCH if predicted == runtime else DIFFERS,
                 note)


def llama_params_text(n_params: int) -> str:
    """``model params`` as llama_model::print_info writes it: T, B, M or K, two decimals, scaled
    by multiplying (``n_elements*1e-9``), as the C code does, so ties round the same way."""
    for threshold, factor, unit in ((1e12, 1e-12, "T"), (1e9, 1e-9, "B"), (1e6, 1e-6, "M")):
        if n_params >= threshold:
            return f"{n_params * factor:.2f} {unit}"
    return f"{n_params * 1e-3:.2f} K"


# ---- the checks, group by group ---------------------------------------------------------------

def _model_fact_checks(summary: ModelSummary, n_layer: int | None, log: LoadLog,
                       exact: ExactFigures | None) -> tuple[list[Check], list[str]]:
    checks, missing = [], []
    for quantity, predicted, runtime in (("n_embd", summary.n_embd, log.n_embd),
                                         ("n_vocab", summary.n_vocab, log.n_vocab),
                                         ("n_layer", n_layer, log.n_layer),
                                         ("n_ctx_train", summary.context_length, log.n_ctx_train)):
        if runtime is None:
            missing.append(quantity)
        else:
            checks.append(_value_check(quantity, "", predicted, runtime))
    if log.file_type is not None:
        # Builds before 2024 wrote "mostly Q4_K - Medium" for the same file type.
        logged_type = log.file_type.removeprefix("mostly ")
        checks.append(_value_check("file type", "", summary.file_type, logged_type))
    if log.file_size is not None:
        checks.append(_size_check("file size (tensor bytes)", summary.tensor_bytes, log.file_size))
        checks.append(_value_check("bits per weight", "BPW", f"{summary.bits_per_weight:.2f}",
                                   log.bits_per_weight))
    else:
        missing.append("file size")
    if exact is not None:
        checks.append(_value_check("tensor bytes (llama_model_size)", "B", summary.tensor_bytes,
                                   exact.model_size))
    if log.model_params is not None:
        checks.append(_value_check("model params", "", llama_params_text(summary.n_params),
                                   log.model_params))
    if exact is not None:
        checks.append(_value_check("model params (llama_model_n_params)", "", summary.n_params,
                                   exact.model_n_params))
    return checks, missing


def _type_count_checks(summary: ModelSummary, log: LoadLog) -> list[Check]:
    predicted, logged = dict(summary.type_counts), dict(log.type_counts)
    names = list(predicted) + [name for name in logged if name not in predicted]
    return [_value_check(f"tensors of type {name}", "tensors", predicted.get(name),
                         logged.get(name)) for name in names]


def _buffer_checks(label: str, predicted: dict[str, int], logged: Iterable[LoggedBuffer],
                   estimate: bool = False) -> list[Check]:
    """One row per buffer name, in the log's order, then predicted buffers the log lacks."""
    by_name: dict[str, list[PrintedSize]] = {}
    for buffer in logged:
        by_name.setdefault(buffer.buffer, []).append(buffer.size)
    names = list(by_name) + [name for name in predicted if name not in by_name]
    checks = []
    for name in names:
        quantity = f"{name} {label}"
        sizes = by_name.get(name)
        if estimate:
            checks.append(_estimate_check(quantity, predicted.get(name), sizes))
        elif sizes is not None and len(sizes) > 1:
            checks.append(_summed_check(quantity, predicted.get(name), sizes))
        else:
            checks.append(_size_check(quantity, predicted.get(name), sizes[0] if sizes else None))
    return checks


def _summed_check(quantity: str, n_bytes: int | None, sizes: list[PrintedSize]) -> Check:
    """Several log lines for one buffer name (one per KV cache): compare with their sum, within
    the rounding of the printed figures (half a unit of the last decimal each)."""
    total = sum(size.value * (GIB if size.unit == "GiB" else MIB) for size in sizes) / MIB
    tolerance = sum(0.5 * 10 ** -size.decimals * (1024 if size.unit == "GiB" else 1)
                    for size in sizes)
    runtime = round(total, 4)
    if n_bytes is None:
        return Check(quantity, "MiB", None, runtime, DIFFERS, "not predicted")
    predicted = n_bytes / MIB
    status = MATCH if abs(predicted - total) <= tolerance + 1e-9 else DIFFERS
    return Check(quantity, "MiB", round(predicted, 4), runtime, status,
                 f"sum of {len(sizes)} log lines, each to 0.01 MiB")


def _estimate_check(quantity: str, n_bytes: int | None, sizes: list[PrintedSize] | None) -> Check:
    if not sizes or n_bytes is None:
        predicted = None if n_bytes is None else round(n_bytes / MIB, 4)
        runtime = None if not sizes else sizes[0].value
        return Check(quantity, "MiB", predicted, runtime, ESTIMATE,
                     "not in the runtime's log" if not sizes else "not predicted")
    runtime = sum(size.value * (GIB if size.unit == "GiB" else MIB) for size in sizes) / MIB
    predicted = n_bytes / MIB
    difference = (predicted - runtime) / runtime if runtime else 0.0
    # Rounded first, plus 0.0: a difference under 0.05% reads +0.0%, never -0.0%.
    return Check(quantity, "MiB", round(predicted, 4), round(runtime, 4), ESTIMATE,
                 f"{round(difference, 3) + 0.0:+.1%}")


def _buffers_of(prediction: MemoryPrediction, kind: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for buffer in prediction.buffers:
        if buffer.kind == kind:
            totals[buffer.buffer] = totals.get(buffer.buffer, 0) + buffer.n_bytes
    return totals


def _older_buffer_names(predicted: dict[str, int], log: LoadLog) -> tuple[dict[str, int],
                                                                          list[str]]:
    """Builds before late 2024 named the memory-mapped weights buffer ``CPU``, not
    ``CPU_Mapped``: in such a log, compare our CPU_Mapped figure with its CPU line."""
    logged = {buffer.buffer for buffer in log.model_buffers}
    if (log.style != "older" or "CPU_Mapped" not in predicted or "CPU_Mapped" in logged
            or "CPU" not in logged or "CPU" in predicted):
        return predicted, []
    renamed = {("CPU" if name == "CPU_Mapped" else name): size for name, size in predicted.items()}
    return renamed, ["the log names the memory-mapped weights buffer CPU (as builds before late "
                     "2024 did): compared with our CPU_Mapped figure"]


def _kv_cache_checks(prediction: MemoryPrediction, log: LoadLog) -> list[Check]:
    checks = []
    logged_by_name = {cache.name: cache for cache in log.kv_caches}
    names = [cache.name for cache in prediction.kv_caches]
    names += [name for name in logged_by_name if name not in names]
    predicted_by_name = {cache.name: cache for cache in prediction.kv_caches}
    for name in names:
        label = f"{name} KV cache" if name else "KV cache"
        predicted, logged = predicted_by_name.get(name), logged_by_name.get(name)
        if logged is None or predicted is None:
            checks.append(Check(label, "", "present" if predicted else None,
                                "present" if logged else None, DIFFERS,
                                "only one side has this cache"))
            continue
        for quantity, ours, theirs in ((f"{label} cells", predicted.cells, logged.cells),
                                       (f"{label} layers", predicted.layers, logged.layers),
                                       (f"{label} streams", predicted.n_seqs, logged.n_streams)):
            if theirs is not None:
                checks.append(_value_check(quantity, "", ours, theirs))
        checks.append(_value_check(f"{label} K type", "", predicted.type_k, logged.type_k))
        checks.append(_value_check(f"{label} V type", "", predicted.type_v, logged.type_v))
        checks.append(_size_check(f"{label} K", predicted.k_bytes, logged.k_size, True))
        checks.append(_size_check(f"{label} V", predicted.v_bytes, logged.v_size, True))
        checks.append(_size_check(f"{label} size", predicted.n_bytes, logged.size, True))
    return checks


def _kv_buffer_checks(prediction: MemoryPrediction, log: LoadLog) -> list[Check]:
    """Each KV cache allocates its own buffers (llama_kv_cache's constructor), printed one line
    each, cache by cache. The memory model lists them in the same order, so they are compared
    line by line; when the two lists do not line up (an older log, another device layout), the
    per-name sums are compared instead."""
    predicted = [b for b in prediction.buffers if b.kind == "kv"]
    logged = [(cache.name, b) for cache in log.kv_caches for b in cache.buffers]
    if [b.buffer for b in predicted] != [b.buffer for _name, b in logged]:
        return _buffer_checks("KV buffer", _buffers_of(prediction, "kv"),
                              [b for _name, b in logged])
    return [_size_check(f"{name + ' ' if name else ''}KV cache {b.buffer} buffer", ours.n_bytes,
                        b.size) for ours, (name, b) in zip(predicted, logged)]


def _context_checks(prediction: MemoryPrediction, log: LoadLog,
                    exact: ExactFigures | None) -> list[Check]:
    resolved, logged = prediction.context, log.context
    checks = []
    for name in ("n_ctx", "n_ctx_seq", "n_batch", "n_ubatch", "n_seq_max"):
        runtime = getattr(exact, name) if exact is not None else getattr(logged, name)
        if runtime is not None:
            checks.append(_value_check(name, "", getattr(resolved, name), runtime))
    if logged.flash_attn is not None:
        checks.append(_value_check("flash attention", "", _on_off(resolved.flash_attn),
                                   _on_off(logged.flash_attn)))
    return checks


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


def compare(summary: ModelSummary, prediction: MemoryPrediction, log: LoadLog,
            exact: ExactFigures | None, runtime: str) -> RuntimeComparison:
    """Every check we can make between our prediction and one load of the model."""
    # llama.cpp prints llama_hparams::n_layer(): block_count less the NextN/MTP blocks
    n_layer = prediction.n_layer if prediction.n_layer is not None else summary.n_layer
    fact_checks, missing = _model_fact_checks(summary, n_layer, log, exact)
    checks = fact_checks + _type_count_checks(summary, log) + _context_checks(prediction, log,
                                                                              exact)
    model_buffers, alias_note = _older_buffer_names(_buffers_of(prediction, "model"), log)
    checks += _buffer_checks("model buffer", model_buffers, log.model_buffers)
    checks += _kv_cache_checks(prediction, log)
    checks += _kv_buffer_checks(prediction, log)
    checks += _buffer_checks("RS buffer", _buffers_of(prediction, "recurrent"),
                             log.recurrent_buffers)  # recurrent state (Mamba, RWKV, hybrids)
    checks += _buffer_checks("output buffer", _buffers_of(prediction, "output"),
                             log.output_buffers)
    checks += _buffer_checks("compute buffer", _buffers_of(prediction, "compute"),
                             log.compute_buffers, estimate=True)
    notes = list(prediction.notes) + alias_note
    notes.append("sizes compared at the log's printed precision (0.01 MiB; the compute buffer "
                 "at 0.0001 MiB when the log repeats it on teardown); exact bytes where the "
                 "C API gives them")
    if missing:
        notes.append(f"not in the runtime's log, not compared: {', '.join(missing)}")
    return RuntimeComparison(summary.file.path, runtime, log.style,
                             resolved_config(prediction, log), tuple(checks), tuple(notes))


def resolved_config(prediction: MemoryPrediction, log: LoadLog) -> dict[str, Any]:
    """The context as llama.cpp resolved it: the log's figures, ours where the log is silent."""
    ours, logged = prediction.context, log.context
    first_cache = log.kv_caches[0] if log.kv_caches else None

    def pick(logged_value: Any, predicted_value: Any) -> Any:
        return predicted_value if logged_value is None else logged_value

    return {
        "n_ctx": pick(logged.n_ctx, ours.n_ctx),
        "n_ctx_seq": pick(logged.n_ctx_seq, ours.n_ctx_seq),
        "n_batch": pick(logged.n_batch, ours.n_batch),
        "n_ubatch": pick(logged.n_ubatch, ours.n_ubatch),
        "n_seq_max": pick(logged.n_seq_max, ours.n_seq_max),
        "flash_attn": pick(logged.flash_attn, ours.flash_attn),
        "kv_unified": pick(logged.kv_unified, ours.kv_unified),
        "swa_full": pick(logged.swa_full, ours.swa_full),
        "type_k": first_cache.type_k if first_cache else ours.type_k,
        "type_v": first_cache.type_v if first_cache else ours.type_v,
        "use_mmap": logged.use_mmap,
        "n_ctx_train": ours.n_ctx_train,
    }


# ---- settings recovered from a saved log (--from-log) -----------------------------------------

def config_from_log(log: LoadLog, base: LlamaSettings) -> tuple[LlamaSettings, list[str]]:
    """The settings a saved log was made with, so the prediction is made for the same load.

    Only what the log states is taken; the rest stays as in ``base``. Returns the notes that say
    which settings were read from the log.
    """
    context, changes, notes = log.context, {}, []
    for field, value in (("n_ctx", context.n_ctx), ("n_batch", context.n_batch),
                         ("n_ubatch", context.n_ubatch), ("n_parallel", context.n_seq_max),
                         ("kv_unified", context.kv_unified), ("swa_full", context.swa_full),
                         ("use_mmap", context.use_mmap)):
        if value is not None:
            changes[field] = value
    if context.flash_attn is not None:
        changes["flash_attn"] = _on_off(context.flash_attn)
    if log.kv_caches:
        changes["cache_type_k"] = ggml_type_from_name(log.kv_caches[0].type_k).name
        changes["cache_type_v"] = ggml_type_from_name(log.kv_caches[0].type_v).name
    gpu_changes, gpu_notes = device_settings_from_log(log)
    changes.update(gpu_changes)
    notes += gpu_notes
    notes.append("settings read from the log: " + ", ".join(
        f"{name}={value}" for name, value in changes.items() if name != "gpu_capacities")
        + " (cpu_repack: whether the log has a CPU_REPACK or AMX buffer; cpu_amx: an AMX one)")
    return replace(base, **changes), notes


def device_settings_from_log(log: LoadLog) -> tuple[dict[str, Any], list[str]]:
    """Where the weights went, as far as a log tells: GPUs present (their buffers), layers
    offloaded, and whether CPU weights were repacked (a property of the build and the CPU).
    RPC devices are the servers the log's ``using device`` lines name (their endpoints), with
    the free memory those lines print."""
    gpus = sorted({b.buffer for b in log.model_buffers if _is_gpu_buffer(b.buffer)})
    servers = tuple(device.description for device in log.devices
                    if device.name.startswith("RPC"))
    if servers:
        changes: dict[str, Any] = {"rpc": ",".join(servers),
                                   "gpu_capacities": rpc_capacities(log, servers)}
        if log.context.gpu_layers is not None:
            changes["n_gpu_layers"] = log.context.gpu_layers[0]
        return changes, [f"{len(servers)} RPC server(s) in the log ({', '.join(servers)}): "
                         "layers split by the free memory each reported"]
    if not gpus:
        # The CPU's extra buffer types (AMX, then CPU_REPACK) are a property of the build and
        # the CPU: read them off the buffers the log names.
        names = {b.buffer for b in log.model_buffers}
        return {"cpu_repack": bool(names & {"CPU_REPACK", "AMX"}), "cpu_amx": "AMX" in names}, []
    changes = {"gpu_capacities": (1,) * len(gpus)}
    if log.context.gpu_layers is not None:
        changes["n_gpu_layers"] = log.context.gpu_layers[0]
    notes = [f"{len(gpus)} GPU buffer(s) in the log ({', '.join(gpus)})"
             + (": layers split evenly between them (the log does not say how much memory "
                "each GPU had free)" if len(gpus) > 1 else "")]
    return changes, notes


def rpc_capacities(log: LoadLog, servers: tuple[str, ...]) -> tuple[int, ...]:
    """Each RPC server's free memory as its ``using device`` line prints it (MiB), what
    load_tensors splits the layers by; equal shares when the log does not list every server
    (``--split-mode none`` lists only the main one, and then no split is made)."""
    free = {device.description: device.free_mib * MIB for device in log.devices
            if device.name.startswith("RPC")}
    if all(server in free for server in servers):
        return tuple(free[server] for server in servers)
    return (1,) * len(servers)


_GPU_BUFFER = re.compile(r"^(?:CUDA|ROCm|Vulkan|SYCL|MUSA|CANN)\d+$|^Metal$")


def _is_gpu_buffer(name: str) -> bool:
    """A device buffer (CUDA0, Vulkan1, Metal), not a host one (CPU, CUDA_Host)."""
    return _GPU_BUFFER.match(name) is not None
