"""Fuzz hyperparameter values and rendering through the commands (``fuzz.py --hparams``).

Each case takes a real header (the bundled fixtures and the architecture zoo), parsed with
gguf-py's GGUFReader, and rewrites one to three hyperparameters (block_count, head_count,
head_count_kv, key_length, embedding_length, context_length, vocab_size, expert counts,
sliding_window, ...) with hostile values in any GGUF value type (2^64-1, -2^63, 0, 513, NaN,
a string, a per-layer array of the wrong length...); one case in four also adds a long string
or a long array (the rendering budgets). The file is written to a temporary folder (the tensor
data is the seed's, realigned) and every command runs on it as the CLI would: inspect with
--metadata --embeddings in table, markdown and JSON (and --full in JSON), vram with a random GPU
and random --ctx / --parallel / --ngl (its charts in table and markdown), scan's row, diff
against the seed, validate and audit.

Per command it records the time and the peak memory: the growth of the process's resident set
over the command (Linux: the high-water mark VmHWM is reset through /proc/self/clear_refs before
each command, so every command has its own peak; elsewhere tracemalloc's traced peak, slower).
A finding: a command growing the process by over 256 MiB or taking over 10 s (every case file
is under 10 MB), an exception other than gguf-inspect's own errors (which the CLI prints as one
line; anything else is a traceback), or an exit code outside ExitCode.
"""

from __future__ import annotations

import re
import random
import struct
import tempfile
import time
import tracemalloc
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 256 << 20
SECONDS_LIMIT = 10.0
U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = 4, 5, 6, 7, 8, 9, 10, 11, 12
KEYS = ("block_count", "embedding_length", "attention.head_count", "attention.head_count_kv",
        "attention.key_length", "attention.value_length", "context_length", "vocab_size",
        "feed_forward_length", "expert_count", "expert_used_count", "expert_shared_count",
        "expert_feed_forward_length", "attention.sliding_window", "rope.dimension_count",
        "ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.group_count",
        "attention.kv_lora_rank", "leading_dense_block_count", "nextn_predict_layers")
HOSTILE_INTS = (0, 1, 2, 3, 7, 64, 511, 512, 513, 4096, 1 << 20, (1 << 31) - 1, 1 << 31,
                (1 << 32) - 1, 1 << 32, (1 << 63) - 1, (1 << 64) - 1, -1, -2, -(1 << 31),
                -(1 << 63))
HOSTILE_FLOATS = (0.0, -1.0, 1e30, float("nan"), float("inf"), float("-inf"), 2.5)
GPUS = (None, "1B", "1GiB", "24GiB", "rtx4090", "24GiB,24GiB")
CONTEXTS = (None, 0, 1, 512, 4096, 100_000, 10**8, (1 << 32) - 1, 10**15)


@dataclass(frozen=True)
class HeaderSeed:
    """A real file split into what a case rewrites: its KV entries (key, encoded entry) and
    the tensor infos and data, which it keeps."""

    path: Path
    architecture: str
    version: bytes
    kvs: tuple[tuple[str, bytes], ...]
    tensor_infos: bytes
    n_tensors: int
    data: bytes
    alignment: int


def load_header_seeds() -> list[HeaderSeed]:
    import gguf

    seeds = []
    for path in sorted((ROOT / "fixtures").glob("*.gguf")) + sorted(
            (ROOT / "fixtures" / "zoo").glob("*.gguf")):
        reader = gguf.GGUFReader(path)
        raw = path.read_bytes()
        kvs = []
        for name, reader_field in reader.fields.items():
            if name.startswith("GGUF."):
                continue
            start = int(reader_field.offset)
            kvs.append((name, raw[start:start + sum(p.nbytes for p in reader_field.parts)]))
        first = int(reader.tensors[0].field.offset)
        last = reader.tensors[-1].field
        infos_end = int(last.offset) + sum(part.nbytes for part in last.parts)
        seeds.append(HeaderSeed(path, str(reader.get_field("general.architecture").contents()),
                                raw[4:8], tuple(kvs), raw[first:infos_end], len(reader.tensors),
                                raw[int(reader.data_offset):], int(reader.alignment)))
    return seeds


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _scalar(value_type: int, value: Any) -> bytes:
    if value_type == STRING:
        return _string(value)
    if value_type in (F32, F64):
        return struct.pack("<f" if value_type == F32 else "<d", value)
    if value_type == BOOL:
        return bytes([value & 0xFF])
    width = 4 if value_type in (U32, I32) else 8
    return (value % (1 << 8 * width)).to_bytes(width, "little")


def entry(key: str, value_type: int, value: Any, item_type: int = U32) -> bytes:
    """One encoded KV entry (an ARRAY's value is a list of ``item_type`` items)."""
    head = _string(key.encode()) + struct.pack("<I", value_type)
    if value_type == ARRAY:
        return head + struct.pack("<IQ", item_type, len(value)) + b"".join(
            _scalar(item_type, item) for item in value)
    return head + _scalar(value_type, value)


def hostile_entry(key: str, rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.55:
        return entry(key, rng.choice((U32, U32, I32, U64, I64)), rng.choice(HOSTILE_INTS))
    if kind < 0.7:
        return entry(key, rng.choice((F32, F64)), rng.choice(HOSTILE_FLOATS))
    if kind < 0.75:
        return entry(key, STRING, b"12")
    if kind < 0.8:
        return entry(key, BOOL, 1)
    length = rng.choice((0, 1, 2, 3, 5, 64, 513, 100_000))
    item_type = rng.choice((U32, I32, U64, F32))
    values = ([rng.choice(HOSTILE_FLOATS) for _ in range(length)] if item_type == F32
              else [rng.choice(HOSTILE_INTS[:16]) for _ in range(length)])
    return entry(key, ARRAY, values, item_type)


def render_entry(rng: random.Random) -> bytes:
    """Something for the rendering budgets: a long string, a long array, or many keys."""
    kind = rng.random()
    if kind < 0.4:
        return entry("fuzz.long_string", STRING, b"x" * rng.choice((161, 10_000, 1 << 20, 4 << 20)))
    if kind < 0.7:
        return entry("fuzz.long_array", ARRAY, list(range(rng.choice((1000, 200_000)))), U32)
    return b"".join(entry(f"fuzz.key_{i:05}", STRING, b"v" * 300) for i in range(2000))


def with_entries(seed: HeaderSeed, replaced: dict[str, bytes], extra: bytes = b"",
                 extra_count: int = 0) -> bytes:
    """The seed's file with the entries of ``replaced`` (key -> encoded entry) in place of its
    own (or added), and ``extra_count`` more entries encoded in ``extra`` at the end."""
    replaced = dict(replaced)
    kvs = [replaced.pop(key, encoded) for key, encoded in seed.kvs] + list(replaced.values())
    header = (b"GGUF" + seed.version
              + struct.pack("<QQ", seed.n_tensors, len(kvs) + extra_count) + b"".join(kvs)
              + extra + seed.tensor_infos)
    return header + b"\0" * (-len(header) % seed.alignment) + seed.data


def build_case(seed: HeaderSeed, rng: random.Random) -> bytes:
    replaced = {f"{seed.architecture}.{key}": hostile_entry(f"{seed.architecture}.{key}", rng)
                for key in rng.sample(KEYS, rng.randint(1, 3))}
    extra = render_entry(rng) if rng.random() < 0.25 else b""
    count = (extra.count(b"fuzz.key_") or 1) if extra else 0
    return with_entries(seed, replaced, extra, count)


class PeakMemory:
    """Peak memory of one stretch of work: VmHWM reset per stretch where Linux allows it."""

    def __init__(self) -> None:
        try:
            self._reset()
            self.kernel = True
        except OSError:
            self.kernel = False
            tracemalloc.start()

    @staticmethod
    def _status(name: str) -> int:
        text = Path("/proc/self/status").read_text()
        return int(re.search(rf"{name}:\s+(\d+)", text).group(1)) << 10  # type: ignore[union-attr]

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets the high-water mark to the current resident set

    def start(self) -> None:
        if self.kernel:
            self._reset()
            self.before = self._status("VmRSS")
        else:
            tracemalloc.reset_peak()
            self.before = tracemalloc.get_traced_memory()[0]

    def peak(self) -> int:
        """Bytes above the start that the stretch reached at most."""
        if self.kernel:
            return self._status("VmHWM") - self.before
        return tracemalloc.get_traced_memory()[1] - self.before

    def resident(self) -> int:
        return self._status("VmHWM") if self.kernel else 0


@dataclass
class CommandOutcome:
    name: str
    seconds: float
    peak: int
    finding: str | None = None


def _commands(path: str, seed: HeaderSeed, rng: random.Random) -> list[tuple[str, Callable]]:
    from gguf_inspect.commands.audit import run_audit
    from gguf_inspect.commands.diff import run_diff
    from gguf_inspect.commands.inspect import run_inspect
    from gguf_inspect.commands.scan import scan_location
    from gguf_inspect.commands.validate import run_validate
    from gguf_inspect.commands.vram import VramOptions, run_vram
    from gguf_inspect.reports.inspect import InspectOptions

    settings = {name: value for name, value in (
        ("n_ctx", rng.choice(CONTEXTS)), ("n_parallel", rng.choice((None, 1, 4, 1000))),
        ("n_gpu_layers", rng.choice((None, -1, 0, 5, 99)))) if value is not None}
    vram = VramOptions(gpu=rng.choice(GPUS), settings=settings)
    metadata = InspectOptions(metadata=True, embeddings=True)
    commands: list[tuple[str, Callable]] = [
        (f"inspect --metadata --{fmt}", lambda fmt=fmt: run_inspect(path, fmt, metadata))
        for fmt in ("table", "markdown", "json")]
    commands += [
        ("inspect --metadata --full --json",
         lambda: run_inspect(path, "json", InspectOptions(metadata=True, full=True))),
        *[(f"vram {vram.gpu} {settings} --{fmt}", lambda fmt=fmt: run_vram(path, fmt, vram))
          for fmt in ("table", "markdown")],
        ("scan row", lambda: _scan(scan_location(path))),
        ("diff seed", lambda: run_diff(str(seed.path), path, "table", data_hash=False)),
        ("validate", lambda: run_validate(path, "json")),
        ("audit", lambda: run_audit(path, "json")),
    ]
    return commands


def _scan(result: Any) -> tuple[str, int]:
    return "", 0  # a row or a listed failure: either way the scan goes on


def run_command(name: str, command: Callable[[], tuple[str, int]],
                memory: PeakMemory) -> CommandOutcome:
    from gguf_inspect.core.constants import ExitCode
    from gguf_inspect.core.errors import GGUFError

    finding = None
    memory.start()
    started = time.perf_counter()
    try:
        _, code = command()
        if code not in {value for name, value in vars(ExitCode).items() if name.isupper()}:
            finding = f"exit code {code}"
    except (GGUFError, LookupError, OSError):  # the CLI prints these as one line
        pass
    except Exception as error:  # noqa: BLE001 - catching everything is the point of a fuzzer
        where = traceback.extract_tb(error.__traceback__)[-1]
        finding = (f"{type(error).__name__}: {str(error)[:100]} "
                   f"({Path(where.filename).name}:{where.lineno})")
    seconds = time.perf_counter() - started
    peak = memory.peak()
    if finding is None and peak > MEMORY_LIMIT:
        finding = f"{peak / 2**20:.0f} MiB"
    if finding is None and seconds > SECONDS_LIMIT:
        finding = f"{seconds:.1f} s"
    return CommandOutcome(name, seconds, peak, finding and f"{name.split()[0]}: {finding}")


@dataclass
class HparamTally:
    cases: int = 0
    commands: int = 0
    max_peak: tuple[int, str] = (0, "")
    max_seconds: tuple[float, str] = (0.0, "")
    largest_file: int = 0
    resident: int = 0  # the process's own peak resident set (bytes), where the kernel says
    findings: dict[str, int] = field(default_factory=dict)
    examples: dict[str, bytes] = field(default_factory=dict)


def hparam_range(seed: int, first: int, count: int) -> HparamTally:
    """Cases ``first .. first + count`` (each its own RNG: a case replays from (seed, index))."""
    seeds = load_header_seeds()
    tally = HparamTally()
    memory = PeakMemory()
    with tempfile.TemporaryDirectory(prefix="fuzz-hparams-") as folder:
        path = str(Path(folder) / "case.gguf")
        for index in range(first, first + count):
            rng = random.Random(f"hparams:{seed}:{index}")
            header_seed = rng.choice(seeds)
            data = build_case(header_seed, rng)
            Path(path).write_bytes(data)
            tally.cases += 1
            tally.largest_file = max(tally.largest_file, len(data))
            for name, command in _commands(path, header_seed, rng):
                outcome = run_command(name, command, memory)
                tally.resident = max(tally.resident, memory.resident())
                tally.commands += 1
                tally.max_peak = max(tally.max_peak, (outcome.peak, name))
                tally.max_seconds = max(tally.max_seconds, (outcome.seconds, name))
                if outcome.finding:
                    tally.findings[outcome.finding] = tally.findings.get(outcome.finding, 0) + 1
                    tally.examples.setdefault(outcome.finding, data)
    return tally


def merge(tallies: list[HparamTally]) -> HparamTally:
    total = HparamTally()
    for tally in tallies:
        total.cases += tally.cases
        total.commands += tally.commands
        total.max_peak = max(total.max_peak, tally.max_peak)
        total.max_seconds = max(total.max_seconds, tally.max_seconds)
        total.largest_file = max(total.largest_file, tally.largest_file)
        total.resident = max(total.resident, tally.resident)
        for key, hits in tally.findings.items():
            total.findings[key] = total.findings.get(key, 0) + hits
            total.examples.setdefault(key, tally.examples[key])
    return total
