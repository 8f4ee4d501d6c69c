"""Fuzz the reader (and what runs on top of it) with structure-aware mutations of real headers.

Every committed fixture is mapped with gguf-py's GGUFReader (the offset of each part of each
field: lengths, strings, types, counts, values); each case applies one to four mutations at or
near those boundaries (an interesting integer written over a field, a byte flip, bytes inserted
or deleted, a chunk copied from elsewhere, a truncation) and then runs, in memory:

* ``read_gguf_source``: only gguf-inspect's own errors (GGUFError) may escape;
* ``validate_source``: must never raise, and must call the file invalid exactly when the reader
  raised (the collecting mode and the raising mode agree);
* every error message and problem stays one readable line (at most MAX_MESSAGE characters);
* for files that parse, the whole default report (summary, embeddings, metadata, tensors) in all
  three formats: a GGUFError or NoEmbeddingError (no token_embd.weight) is an expected outcome.

Anything else is a finding: its exception, the stage, and the mutated file written to
``benchmarks/out/fuzz-findings/`` to replay. Each case is timed; cases slower than
``--slow-seconds`` are findings too. Run from the repository root:

    python benchmarks/fuzz.py --cases 100000 --seed 1 --workers 2

``--hparams`` fuzzes hyperparameter values and rendering through the commands instead, with the
time and peak memory of every command recorded (benchmarks/fuzz_hparams.py):

    python benchmarks/fuzz.py --hparams --cases 3000 --seed 1 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import random
import resource
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FINDINGS_DIR = ROOT / "benchmarks" / "out" / "fuzz-findings"
MAX_MESSAGE = 500  # an error is one readable line: no message may be longer than this
INTERESTING = (0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 64, 127, 128, 255, 256, 0x7FFF,
               0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63,
               (1 << 64) - 1)


class MemorySource:
    """A ByteSource over bytes in memory (the fuzz cases never touch the disk)."""

    def __init__(self, data: bytes, name: str = "fuzz.gguf") -> None:
        self.data, self.size, self.name = data, len(data), name

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset:offset + length]

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Seed:
    """A fixture's header bytes, its data bytes, and where each part of each header field starts
    (one tuple per field: the fixed header first, then every KV, then every tensor info)."""

    name: str
    header: bytes
    tail: bytes
    fields: tuple[tuple[int, ...], ...]
    # Per tensor info: where its n_dims starts and where its type starts (the ne in between),
    # and where the tensor infos end (the alignment padding follows), for the reshape mutation.
    tensor_dims: tuple[tuple[int, int], ...] = ()
    infos_end: int = 0
    alignment: int = 32


def load_seeds(folder: Path = ROOT / "fixtures") -> list[Seed]:
    import gguf

    seeds = []
    for path in sorted(folder.glob("*.gguf")):
        oracle = gguf.GGUFReader(path)
        data = path.read_bytes()
        fields = [(0, 4, 8, 16)]
        kvs = [f for name, f in oracle.fields.items() if not name.startswith("GGUF.")]
        for reader_field in kvs + [t.field for t in oracle.tensors]:
            starts, position = [], int(reader_field.offset)
            for part in reader_field.parts:
                starts.append(position)
                position += part.nbytes
            fields.append(tuple(starts))
        split = int(oracle.data_offset)
        tensor_dims = []
        for tensor in oracle.tensors:
            starts = [int(tensor.field.offset)]
            for part in tensor.field.parts:
                starts.append(starts[-1] + part.nbytes)
            tensor_dims.append((starts[2], starts[4]))  # name length, name, n_dims, ne, type
        last = oracle.tensors[-1].field
        infos_end = int(last.offset) + sum(part.nbytes for part in last.parts)
        seeds.append(Seed(path.name, data[:split], data[split:], tuple(fields),
                          tuple(tensor_dims), infos_end, int(oracle.alignment)))
    return seeds


def reshape(seed: Seed, rng: random.Random) -> bytes:
    """A structurally valid file whose one tensor has another shape (0 to 4 dimensions, some
    of them 1, the original ones or small numbers): the analyses past the reader get exercised
    on shapes llama.cpp would refuse but the format allows."""
    n_dims_at, type_at = rng.choice(seed.tensor_dims)
    n_dims = rng.randint(0, 4)
    dims = [rng.choice((1, 1, 2, 3, 32, 64, 96, 128, 256, 384)) for _ in range(n_dims)]
    new = struct.pack("<I", n_dims) + b"".join(struct.pack("<Q", dim) for dim in dims)
    header = seed.header[:n_dims_at] + new + seed.header[type_at:seed.infos_end]
    return header + b"\0" * (-len(header) % seed.alignment) + seed.tail


def mutate(seed: Seed, rng: random.Random) -> bytes:
    """One to four mutations of the header at or near field boundaries (a field picked first,
    then one of its parts, so a 384-string vocabulary does not swamp the tensor infos)."""
    if seed.tensor_dims and rng.random() < 0.1:
        return reshape(seed, rng)
    header = bytearray(seed.header)
    for _ in range(rng.randint(1, 4)):
        part = rng.choice(rng.choice(seed.fields))
        at = min(len(header), part + rng.choice((0, 0, 0, 1, 2, 4, 8)))
        kind = rng.random()
        if kind < 0.55:  # an interesting integer over a field
            width = rng.choice((1, 2, 4, 8, 8, 8))
            value = rng.choice(INTERESTING + (rng.getrandbits(64), len(header) - at))
            header[at:at + width] = (value % (1 << 8 * width)).to_bytes(width, "little")
        elif kind < 0.70:
            header[at:at + 1] = bytes([rng.getrandbits(8)])
        elif kind < 0.80:
            del header[at:at + rng.randint(1, 32)]
        elif kind < 0.88:
            header[at:at] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 16)))
        elif kind < 0.95:
            start = rng.choice(rng.choice(seed.fields))
            header[at:at] = seed.header[start:start + rng.randint(1, 64)]
        else:
            return bytes(header[:at])  # truncated: the data section goes too
    return bytes(header) + seed.tail


@dataclass
class Outcome:
    """What one case did: how far it got and what it raised."""

    parsed: bool = False
    expected_error: str | None = None
    finding: str | None = None  # "stage: ExceptionType: message" for anything unexpected
    seconds: float = 0.0


def run_case(data: bytes) -> Outcome:
    """Run the reader, validate and the default report on one mutated file."""
    from gguf_inspect.reports.validate import validate_source
    from gguf_inspect.core.errors import GGUFError
    from gguf_inspect.gguf.reader import read_gguf_source

    outcome = Outcome()
    started = time.perf_counter()
    source = MemorySource(data)
    stage = "reader"
    try:
        try:
            gguf_file = read_gguf_source(source)
            outcome.parsed = True
        except GGUFError as error:
            outcome.expected_error = type(error).__name__
            gguf_file = None
            if len(str(error)) > MAX_MESSAGE:
                outcome.finding = f"reader: an error message over {MAX_MESSAGE} characters"
        stage = "validate"
        report = validate_source(source)
        # validate decodes every string-array item, which the lazy header reader skips: a file
        # the reader parses may still be invalid, but only for that reason.
        lazily_skipped = all(_in_a_string_array(problem) for problem in report.problems
                             if problem.severity == "error")
        if report.valid != outcome.parsed and not (outcome.parsed and lazily_skipped):
            outcome.finding = (f"validate: says valid={report.valid} but the reader "
                               f"{'parsed' if outcome.parsed else 'raised'}")
        longest = max((len(p.message) + len(p.field or "") for p in report.problems), default=0)
        if longest > MAX_MESSAGE:
            outcome.finding = f"validate: a problem over {MAX_MESSAGE} characters"
        if gguf_file is not None:
            stage = "report"
            _run_report(gguf_file, source)
    except GGUFError as error:
        if stage in ("reader", "validate"):  # the reader already spoke; these must not raise
            outcome.finding = f"{stage}: {type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - catching everything is the point of a fuzzer
        where = traceback.extract_tb(error.__traceback__)[-1]
        outcome.finding = (f"{stage}: {type(error).__name__}: {str(error)[:120]} "
                           f"({Path(where.filename).name}:{where.lineno})")
    outcome.seconds = time.perf_counter() - started
    return outcome


def _in_a_string_array(problem: object) -> bool:
    """An invalid UTF-8 item of a string array (``tokens[58]``) or the count of further ones."""
    message, field = getattr(problem, "message", ""), getattr(problem, "field", "") or ""
    return "UTF-8" in message and (field.endswith("]") or "more item(s)" in message)


def _run_report(gguf_file: object, source: MemorySource) -> None:
    from gguf_inspect.reports.embeddings import NoEmbeddingError
    from gguf_inspect.reports.inspect import InspectOptions, inspect_model
    from gguf_inspect.commands import render_sections
    from gguf_inspect.gguf.open import Model
    from gguf_inspect.render.inspect import inspect_json, inspect_sections

    model = Model(gguf_file, source)  # type: ignore[arg-type]
    options = InspectOptions(embeddings=True, metadata=True, full=True, tensors=True)
    try:
        report = inspect_model(model, options)
    except NoEmbeddingError:  # reported as such to the user; go on without the section
        report = inspect_model(model, InspectOptions(metadata=True, full=True, tensors=True))
    inspect_json(report)
    for output_format in ("table", "markdown"):
        render_sections(inspect_sections(report), output_format)
    _run_audit(gguf_file)


def _run_audit(gguf_file: object) -> None:
    """The memory audit reads shapes of every tensor by name: one GPU, defaults otherwise."""
    from gguf_inspect.llamacpp.devices import GPU
    from gguf_inspect.llamacpp.settings import LlamaSettings
    from gguf_inspect.reports.vram import audit

    audit(gguf_file, LlamaSettings(), (GPU("fuzz", 1 << 30),))  # type: ignore[arg-type]


@dataclass
class Tally:
    cases: int = 0
    parsed: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: collections.Counter[str] = field(default_factory=collections.Counter)
    slow: int = 0
    max_seconds: float = 0.0
    examples: dict[str, bytes] = field(default_factory=dict)


def fuzz_range(seed: int, first: int, count: int, slow_seconds: float) -> Tally:
    """Cases ``first .. first + count`` of the run seeded with ``seed`` (each case its own RNG,
    so a case replays alone from ``(seed, index)``)."""
    seeds = load_seeds()
    run_case(seeds[0].header + seeds[0].tail)  # warm up: lazy imports are not the case's time
    tally = Tally()
    for index in range(first, first + count):
        rng = random.Random(f"{seed}:{index}")
        data = mutate(rng.choice(seeds), rng)
        outcome = run_case(data)
        tally.cases += 1
        tally.parsed += outcome.parsed
        if outcome.expected_error:
            tally.errors[outcome.expected_error] += 1
        tally.max_seconds = max(tally.max_seconds, outcome.seconds)
        if outcome.seconds > slow_seconds:
            tally.slow += 1
            outcome.finding = outcome.finding or f"slow: {outcome.seconds:.2f} s"
        if outcome.finding:
            tally.findings[outcome.finding] += 1
            tally.examples.setdefault(outcome.finding, data)
    return tally


def _merge(tallies: list[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.cases += tally.cases
        total.parsed += tally.parsed
        total.errors.update(tally.errors)
        total.findings.update(tally.findings)
        total.slow += tally.slow
        total.max_seconds = max(total.max_seconds, tally.max_seconds)
        for key, data in tally.examples.items():
            total.examples.setdefault(key, data)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--hparams", action="store_true",
                        help="fuzz hyperparameter values and rendering through the commands")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.hparams:
        return hparams_main(args)
    started = time.perf_counter()
    share = -(-args.cases // args.workers)
    jobs = [(args.seed, start, min(share, args.cases - start), args.slow_seconds)
            for start in range(0, args.cases, share)]
    if args.workers == 1:
        tallies = [fuzz_range(*job) for job in jobs]
    else:
        with multiprocessing.Pool(args.workers) as pool:
            tallies = pool.starmap(fuzz_range, jobs)
    total = _merge(tallies)
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cases: {total.cases:,} in {elapsed:.1f} s ({total.cases / elapsed:,.0f}/s, "
          f"{args.workers} worker(s)), seed {args.seed}")
    print(f"parsed as valid: {total.parsed:,}; rejected with gguf-inspect's own errors: "
          f"{sum(total.errors.values()):,} {dict(total.errors)}")
    print(f"slowest case: {total.max_seconds * 1000:.1f} ms; slower than {args.slow_seconds} s: "
          f"{total.slow}; peak RSS of the main process: {peak_mib:.0f} MiB")
    print(f"findings: {sum(total.findings.values())}")
    FINDINGS_DIR.mkdir(parents=True, exist_ok=True)
    for number, (finding, hits) in enumerate(total.findings.most_common()):
        replay = FINDINGS_DIR / f"finding-{number}.gguf"
        replay.write_bytes(total.examples[finding])
        print(f"  {hits:6d} x {finding}  (replay: {replay.relative_to(ROOT)})")
    return 1 if total.findings else 0


def hparams_main(args: argparse.Namespace) -> int:
    """The hyperparameter and rendering fuzz: per-command peak memory and time, findings."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fuzz_hparams

    started = time.perf_counter()
    share = -(-args.cases // args.workers)
    jobs = [(args.seed, start, min(share, args.cases - start))
            for start in range(0, args.cases, share)]
    if args.workers == 1:
        tallies = [fuzz_hparams.hparam_range(*job) for job in jobs]
    else:
        with multiprocessing.Pool(args.workers) as pool:
            tallies = pool.starmap(fuzz_hparams.hparam_range, jobs)
    total = fuzz_hparams.merge(tallies)
    elapsed = time.perf_counter() - started
    print(f"hparams cases: {total.cases:,} ({total.commands:,} commands) in {elapsed:.1f} s, "
          f"seed {args.seed}, {args.workers} worker(s); largest file "
          f"{total.largest_file / 2**20:.1f} MiB")
    print(f"highest peak of one command (growth of the resident set): "
          f"{total.max_peak[0] / 2**20:.1f} MiB ({total.max_peak[1]}); slowest command: "
          f"{total.max_seconds[0]:.2f} s ({total.max_seconds[1]}); highest resident set "
          f"of a worker during a command: {total.resident / 2**20:.0f} MiB")
    print(f"findings: {sum(total.findings.values())}")
    FINDINGS_DIR.mkdir(parents=True, exist_ok=True)
    ranked = sorted(total.findings.items(), key=lambda item: -item[1])
    for number, (finding, hits) in enumerate(ranked):
        replay = FINDINGS_DIR / f"hparams-finding-{number}.gguf"
        replay.write_bytes(total.examples[finding])
        print(f"  {hits:6d} x {finding}  (replay: {replay.relative_to(ROOT)})")
    return 1 if total.findings else 0


if __name__ == "__main__":
    sys.exit(main())
