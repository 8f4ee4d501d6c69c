"""Read llama.cpp's model-load log: the figures it prints about a model, its buffers and caches.

Pure text processing, no llama-cpp-python needed, so a log pasted from another machine (a GPU box
running llama-server, an older build) can be compared too. Two generations of prefixes are
understood; lines are recognised by their wording, and the prefix only decides which block a
``key = value`` line belongs to:

- model facts: ``print_info:`` (current), ``llm_load_print_meta:`` (older: ``model ftype``,
  ``model size`` for ``file type``, ``file size``);
- model buffers: ``load_tensors: CPU_Mapped model buffer size``, older
  ``llm_load_tensors: CPU buffer size`` (no ``model`` word);
- context settings: ``llama_context:``, older ``llama_new_context_with_model:``;
- KV cache: ``llama_kv_cache: size = ... (N cells, L layers, S/T seqs)``, older
  ``llama_kv_cache_init: kv_size = N ... n_layer = L`` then ``KV self size = ...``;
- compute buffers: ``sched_reserve: CPU compute buffer size``, older
  ``llama_new_context_with_model:``; current builds repeat it with four decimals on teardown.

Sizes are kept as printed (``PrintedSize``: value, unit, decimals) so comparisons can be made at
the log's own precision. Hand-written regular expressions: no library parses this log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable

CONTINUATION_LEVEL = 5  # GGML_LOG_LEVEL_CONT: a fragment that continues the previous message
ERROR_LEVEL = 4  # GGML_LOG_LEVEL_ERROR

META_PREFIXES = frozenset({"print_info", "llm_load_print_meta"})
CONTEXT_PREFIXES = frozenset({"llama_context", "llama_new_context_with_model",
                              "llama_init_from_model"})
OLDER_PREFIXES = frozenset({"llm_load_print_meta", "llm_load_tensors",
                            "llama_new_context_with_model", "llama_kv_cache_init"})
CURRENT_PREFIXES = frozenset({"print_info", "load_tensors", "sched_reserve", "llama_context",
                              "llama_kv_cache"})


@dataclass(frozen=True)
class LogRecord:
    """One whole line of the log, without its newline; ``level`` is None for a saved log."""

    level: int | None
    text: str


@dataclass(frozen=True)
class PrintedSize:
    """A size as printed, e.g. ``0.55 MiB``: compare at ``decimals`` places of ``unit``."""

    value: float
    unit: str  # "MiB" or "GiB"
    decimals: int

    @property
    def text(self) -> str:
        return f"{self.value:.{self.decimals}f} {self.unit}"


@dataclass(frozen=True)
class LoggedBuffer:
    """One ``<name> <kind> buffer size = X MiB`` line."""

    buffer: str  # the backend buffer's name: CPU_Mapped, CPU_REPACK, CPU, CUDA0, CUDA_Host ...
    kind: str  # "model" | "kv" | "output" | "compute" | "recurrent"
    size: PrintedSize


@dataclass(frozen=True)
class LoggedKVCache:
    """One KV cache's summary line; ``cells``/``layers`` are None in the older format."""

    name: str  # "" for the main cache, "SWA" for the sliding-window one (the log's order)
    size: PrintedSize
    k_size: PrintedSize
    v_size: PrintedSize
    type_k: str
    type_v: str
    cells: int | None
    layers: int | None
    n_seqs: int | None  # n_seq_max ("1/1 seqs": sequences / streams)
    n_streams: int | None  # 1 when unified, else n_seq_max; None where the log does not say
    buffers: tuple[LoggedBuffer, ...]


@dataclass(frozen=True)
class LoggedContext:
    """The context as llama.cpp resolved it (None where the log does not say)."""

    n_seq_max: int | None = None
    n_ctx: int | None = None
    n_ctx_seq: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    flash_attn_requested: str | None = None  # "auto" | "enabled" | "disabled" as printed
    flash_attn: bool | None = None  # what it resolved to
    kv_unified: bool | None = None
    swa_full: bool | None = None  # True when the "full-size SWA cache" warning appears
    use_mmap: bool | None = None
    gpu_layers: tuple[int, int] | None = None  # ("offloaded N/M layers to GPU")


@dataclass(frozen=True)
class LoggedDevice:
    """One ``using device RPC0 (127.0.0.1:50052) (unknown id) - 1234 MiB free`` line
    (llama_prepare_model_devices, src/llama.cpp): the model's devices, in their order."""

    name: str  # CUDA0, RPC0 ...
    description: str  # the card's name; an RPC server's endpoint
    free_mib: int


@dataclass(frozen=True)
class LoadLog:
    """Everything the comparison uses from one load log."""

    style: str  # "current" | "older" | "unknown"
    n_embd: int | None
    n_vocab: int | None
    n_layer: int | None
    n_ctx_train: int | None
    file_type: str | None
    file_size: PrintedSize | None
    bits_per_weight: str | None  # as printed, two decimals
    model_params: str | None  # as printed, e.g. "984.32 K"
    type_counts: tuple[tuple[str, int], ...]
    model_buffers: tuple[LoggedBuffer, ...]
    kv_caches: tuple[LoggedKVCache, ...]
    output_buffers: tuple[LoggedBuffer, ...]
    compute_buffers: tuple[LoggedBuffer, ...]  # four decimals when the teardown line was seen
    recurrent_buffers: tuple[LoggedBuffer, ...]
    context: LoggedContext
    errors: tuple[str, ...]
    devices: tuple[LoggedDevice, ...] = ()


# ---- lines ------------------------------------------------------------------------------------

def join_fragments(fragments: Iterable[tuple[int, str]]) -> tuple[LogRecord, ...]:
    """Turn the callback's (level, text) fragments into whole lines.

    A level-5 fragment continues the message before it (progress dots, parts of one line);
    any other level starts a new message, so a line left open by dots is closed first. A line
    takes the level of the message it belongs to (None before the first message).
    """
    records: list[LogRecord] = []
    pending, pending_level = "", None

    def flush(text: str, level: int | None) -> None:
        records.append(LogRecord(level, text))

    for level, text in fragments:
        if level != CONTINUATION_LEVEL:
            if pending:
                flush(pending, pending_level)
            pending, pending_level = "", level
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            flush(line, pending_level)
    if pending:
        flush(pending, pending_level)
    return tuple(records)


def split_log_text(text: str) -> tuple[LogRecord, ...]:
    """A saved log (levels unknown) as lines."""
    return tuple(LogRecord(None, line) for line in text.splitlines())


# An optional llama-server/common_log decoration ("0.00.039.148 I "), progress dots, then the
# function-name prefix ("print_info:", "~llama_context:").
_LINE = re.compile(r"^(?:[\d.]+ [IWEDT] )?\.*\s*(?P<prefix>~?\w+):\s*(?P<body>.*?)\s*$")
_ERROR_WORDS = re.compile(r"error loading model|failed to load|failed to (?:create|init|alloc)"
                          r"|\berror\b|requires flash_attn|cannot both be zero", re.IGNORECASE)


def error_lines(records: Iterable[LogRecord]) -> tuple[str, ...]:
    """llama.cpp's error lines, most specific first (``error loading model: ...`` leads)."""
    found = [r.text.strip() for r in records
             if r.text.strip() and (r.level == ERROR_LEVEL
                                    or (r.level is None and _ERROR_WORDS.search(r.text)))]
    return tuple(sorted(found, key=lambda line: "error loading model" not in line))


# ---- line patterns (bodies, after the prefix) -------------------------------------------------

# Every size llama.cpp prints in MiB/GiB has decimals ("%8.2f MiB", teardown "%8.4f MiB").
_SIZE = r"(?P<{0}>\d+\.\d+) (?P<{0}_unit>MiB|GiB)"
_TYPE_COUNT = re.compile(r"^- type\s+(?P<type>\S+):\s+(?P<count>\d+) tensors$")
_FILE_TYPE = re.compile(r"^(?:file type|model ftype)\s*=\s*(?P<name>.+)$")
_FILE_SIZE = re.compile(r"^(?:file size|model size)\s*=\s*" + _SIZE.format("size")
                        + r" \((?P<bpw>[\d.]+) BPW\)")
_KEY_VALUE = re.compile(r"^(?P<key>[\w.]+(?: [\w.]+)*)\s*=\s*(?P<value>.*)$")
_BUFFER = re.compile(r"^(?P<buffer>\S+)\s+(?:(?P<kind>model|KV|output|compute|RS)\s+)?"
                     r"buffer size\s*=\s*" + _SIZE.format("size") + "$")
_PRECISE_COMPUTE = re.compile(r"^(?P<buffer>\S+)\s+compute buffer size (?:is|of)\s+"
                              + _SIZE.format("size"))
_KV_SIZE = re.compile(
    r"^size\s*=\s*" + _SIZE.format("size") + r" \(\s*(?P<cells>\d+) cells,\s*(?P<layers>\d+)"
    r" layers,\s*(?P<seqs>\d+)(?:/(?P<streams>\d+))? seqs\), K \((?P<type_k>\w+)\):\s*"
    + _SIZE.format("k") + r", V \((?P<type_v>\w+)\):\s*" + _SIZE.format("v"))
_KV_SIZE_OLDER = re.compile(
    r"^KV self size\s*=\s*" + _SIZE.format("size") + r", K \((?P<type_k>\w+)\):\s*"
    + _SIZE.format("k") + r", V \((?P<type_v>\w+)\):\s*" + _SIZE.format("v"))
_KV_INIT_OLDER = re.compile(r"^kv_size = (?P<cells>\d+),.*\bn_layer = (?P<layers>\d+)")
_KV_CREATING = re.compile(r"^creating\s+(?P<which>non-SWA|SWA) KV cache, size = (?P<cells>\d+)")
_LOAD_START = re.compile(r"^loaded meta data with \d+ key-value pairs")
_FULL_SWA = re.compile(r"using full-size SWA cache")
_FLASH_RESOLVED = re.compile(r"Flash Attention (?:was auto, set to )?(?P<state>enabled|disabled)"
                             r"|Flash Attention not supported, set to (?P<off>disabled)")
_FLASH_FORCED = re.compile(r"enabling flash_attn since")
# "(load_mode = %s)": none, mmap, mlock, mmap+mlock (llama_load_mode_name, src/llama.cpp);
# older builds: "(mmap = true|false)".
_LOAD_MODE = re.compile(r"\((?:load_mode|mmap) = (?P<mode>[\w+]+)\)")
# The modes with use_mmap set (llama_model_loader's constructor, src/llama-model-loader.cpp).
_MMAP_MODES = frozenset({"mmap", "mmap+mlock", "true"})
_DEVICE = re.compile(r"^using device (?P<name>\S+) \((?P<description>.*?)\)(?: \([^()]*\))?"
                     r" - (?P<free>\d+) MiB free$")
_OFFLOADED = re.compile(r"^offloaded (?P<done>\d+)/(?P<total>\d+) layers to GPU")

_BUFFER_KINDS = {None: "model", "model": "model", "KV": "kv", "output": "output",
                 "compute": "compute", "RS": "recurrent"}
_CONTEXT_INTS = {"n_seq_max": "n_seq_max", "n_ctx": "n_ctx", "n_ctx_seq": "n_ctx_seq",
                 "n_ctx_per_seq": "n_ctx_seq", "n_batch": "n_batch", "n_ubatch": "n_ubatch"}
_META_INTS = ("n_embd", "n_vocab", "n_layer", "n_ctx_train")


def _printed(match: re.Match[str], name: str) -> PrintedSize:
    text = match.group(name)
    return PrintedSize(float(text), match.group(f"{name}_unit"), len(text.split(".")[1]))


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _flag(text: str) -> bool | None:
    # llama_context's constructor prints "true"/"false" (src/llama-context.cpp, kv_unified).
    return {"true": True, "false": False}.get(text)


# ---- the parser -------------------------------------------------------------------------------

@dataclass
class _State:
    """What has been read so far; turned into a frozen LoadLog at the end."""

    prefixes: set[str] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)
    type_counts: list[tuple[str, int]] = field(default_factory=list)
    file_type: str | None = None
    file_size: PrintedSize | None = None
    bits_per_weight: str | None = None
    buffers: dict[str, list[LoggedBuffer]] = field(default_factory=lambda: {
        kind: [] for kind in ("model", "output", "compute", "recurrent")})
    kv_caches: list[LoggedKVCache] = field(default_factory=list)
    kv_pending_name: str = ""
    kv_pending_buffers: list[LoggedBuffer] = field(default_factory=list)
    kv_pending_shape: tuple[int, int] | None = None
    context: LoggedContext = field(default_factory=LoggedContext)
    devices: list[LoggedDevice] = field(default_factory=list)


def _read_context_setting(state: _State, key: str, value: str) -> None:
    if key in _CONTEXT_INTS:
        state.context = replace(state.context, **{_CONTEXT_INTS[key]: _int(value)})
    elif key == "flash_attn":
        requested = {"1": "enabled", "0": "disabled"}.get(value, value)
        resolved = {"enabled": True, "disabled": False}.get(requested, state.context.flash_attn)
        state.context = replace(state.context, flash_attn_requested=requested,
                                flash_attn=resolved)
    elif key == "kv_unified":
        state.context = replace(state.context, kv_unified=_flag(value))


def _read_kv_cache(state: _State, body: str) -> bool:
    if creating := _KV_CREATING.match(body):
        state.kv_pending_name = "" if creating["which"] == "non-SWA" else "SWA"
        return True
    if older_init := _KV_INIT_OLDER.match(body):
        state.kv_pending_shape = (int(older_init["cells"]), int(older_init["layers"]))
        return True
    current, older = _KV_SIZE.match(body), _KV_SIZE_OLDER.match(body)
    match = current or older
    if match is None:
        return False
    cells, layers = (int(current["cells"]), int(current["layers"])) if current else (
        state.kv_pending_shape or (None, None))
    state.kv_caches.append(LoggedKVCache(
        name=state.kv_pending_name, size=_printed(match, "size"), k_size=_printed(match, "k"),
        v_size=_printed(match, "v"), type_k=match["type_k"], type_v=match["type_v"],
        cells=cells, layers=layers, n_seqs=int(current["seqs"]) if current else None,
        n_streams=int(current["streams"]) if current and current["streams"] else None,
        buffers=tuple(state.kv_pending_buffers)))
    state.kv_pending_name, state.kv_pending_buffers, state.kv_pending_shape = "", [], None
    return True


def _read_buffer(state: _State, body: str) -> bool:
    if precise := _PRECISE_COMPUTE.match(body):
        # The teardown repeats each compute buffer with four decimals: keep the finer figure.
        computes = state.buffers["compute"]
        for index, logged in enumerate(computes):
            if logged.buffer == precise["buffer"]:
                computes[index] = replace(logged, size=_printed(precise, "size"))
        return True
    match = _BUFFER.match(body)
    if match is None:
        return False
    buffer = LoggedBuffer(match["buffer"], _BUFFER_KINDS[match["kind"]], _printed(match, "size"))
    if buffer.kind == "kv":
        state.kv_pending_buffers.append(buffer)
    else:
        state.buffers[buffer.kind].append(buffer)
    return True


def _read_model_facts(state: _State, prefix: str, body: str) -> bool:
    if count := _TYPE_COUNT.match(body):
        state.type_counts.append((count["type"], int(count["count"])))
    elif file_type := _FILE_TYPE.match(body):
        state.file_type = file_type["name"].strip()
    elif file_size := _FILE_SIZE.match(body):
        state.file_size, state.bits_per_weight = _printed(file_size, "size"), file_size["bpw"]
    elif prefix in META_PREFIXES and (pair := _KEY_VALUE.match(body)):
        state.meta.setdefault(pair["key"], pair["value"].strip())
    else:
        return False
    return True


def _read_line(state: _State, prefix: str, body: str) -> None:
    state.prefixes.add(prefix)
    if _read_model_facts(state, prefix, body) or _read_buffer(state, body):
        return
    if _read_kv_cache(state, body):
        return
    if prefix in CONTEXT_PREFIXES and (pair := _KEY_VALUE.match(body)):
        _read_context_setting(state, pair["key"], pair["value"].strip())
    elif flash := _FLASH_RESOLVED.search(body):
        state.context = replace(state.context, flash_attn=flash["state"] == "enabled")
    elif _FLASH_FORCED.search(body):
        state.context = replace(state.context, flash_attn=True)
    elif _FULL_SWA.search(body):
        state.context = replace(state.context, swa_full=True)
    elif mode := _LOAD_MODE.search(body):
        state.context = replace(state.context, use_mmap=mode["mode"] in _MMAP_MODES)
    elif device := _DEVICE.match(body):
        state.devices.append(LoggedDevice(device["name"], device["description"],
                                          int(device["free"])))
    elif offloaded := _OFFLOADED.match(body):
        state.context = replace(state.context,
                                gpu_layers=(int(offloaded["done"]), int(offloaded["total"])))


def _style(prefixes: set[str]) -> str:
    if prefixes & OLDER_PREFIXES:
        return "older"
    return "current" if prefixes & CURRENT_PREFIXES else "unknown"


def parse_load_log(records: Iterable[LogRecord]) -> LoadLog:
    """Parse a whole load log (from the callback or from a saved file) into a LoadLog.

    Only the first model load is read: a server log may go on to load a draft model or reload,
    and mixing two loads' figures would compare nonsense.
    """
    records = tuple(records)
    state = _State()
    loads = 0
    for record in records:
        line = _LINE.match(record.text)
        if not line:
            continue
        if _LOAD_START.match(line["body"]):
            loads += 1
            if loads > 1:
                break
        _read_line(state, line["prefix"], line["body"])
    swa_caches = any(cache.name == "SWA" for cache in state.kv_caches)
    if swa_caches and state.context.swa_full is None:
        state.context = replace(state.context, swa_full=False)  # the warning would have said so
    meta = {key: _int(state.meta[key]) if key in state.meta else None for key in _META_INTS}
    return LoadLog(
        style=_style(state.prefixes), **meta,
        file_type=state.file_type, file_size=state.file_size,
        bits_per_weight=state.bits_per_weight, model_params=state.meta.get("model params"),
        type_counts=tuple(state.type_counts), model_buffers=tuple(state.buffers["model"]),
        kv_caches=tuple(state.kv_caches), output_buffers=tuple(state.buffers["output"]),
        compute_buffers=tuple(state.buffers["compute"]),
        recurrent_buffers=tuple(state.buffers["recurrent"]),
        context=state.context, errors=error_lines(records), devices=tuple(state.devices),
    )
