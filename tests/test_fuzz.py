"""A short, seeded hypothesis run over mutated headers of the committed fixtures (CI's sample of
``benchmarks/fuzz.py``, which runs 100,000 cases and shares its harness with this test).

The property: on any mutated file the reader raises only gguf-inspect's own errors, ``validate``
never raises and agrees with the reader, and the default report renders or fails cleanly. Time
bounds are the benchmark's job (``--slow-seconds``): no test here depends on the clock.

CI replays the same 250 seeded cases every run. To explore new cases, opt in with
``GGUF_INSPECT_FUZZ_RANDOM=1`` (hypothesis draws fresh cases each run; the count comes from
``GGUF_INSPECT_FUZZ_EXAMPLES``, 2,000 by default), as a separate slow job:

    GGUF_INSPECT_FUZZ_RANDOM=1 python -m pytest tests/test_fuzz.py -k mutated_headers
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
HARNESS = load_script("gguf_fuzz", ROOT / "benchmarks" / "fuzz.py")
SEEDS = HARNESS.load_seeds()
INTERESTING = st.sampled_from(HARNESS.INTERESTING) | st.integers(0, (1 << 64) - 1)


@st.composite
def mutated_files(draw: st.DrawFn) -> bytes:
    """A fixture with one to four mutations at or near its header's field boundaries."""
    seed = draw(st.sampled_from(SEEDS))
    header = bytearray(seed.header)
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(seed.fields))  # a field first: no vocabulary swamping
        at = min(len(header), draw(st.sampled_from(field)) + draw(st.sampled_from((0, 1, 2, 4, 8))))
        kind = draw(st.sampled_from(("integer", "integer", "byte", "delete", "insert", "cut")))
        if kind == "integer":
            width = draw(st.sampled_from((1, 2, 4, 8)))
            value = draw(INTERESTING) % (1 << 8 * width)
            header[at:at + width] = value.to_bytes(width, "little")
        elif kind == "byte":
            header[at:at + 1] = bytes([draw(st.integers(0, 255))])
        elif kind == "delete":
            del header[at:at + draw(st.integers(1, 32))]
        elif kind == "insert":
            header[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            return bytes(header[:at])
    return bytes(header) + seed.tail


RANDOM = os.environ.get("GGUF_INSPECT_FUZZ_RANDOM") == "1"
EXAMPLES = int(os.environ.get("GGUF_INSPECT_FUZZ_EXAMPLES", "2000")) if RANDOM else 250


@settings(max_examples=EXAMPLES, derandomize=not RANDOM, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_files())
def test_mutated_headers_fail_only_with_our_errors(data: bytes) -> None:
    outcome = HARNESS.run_case(data)
    assert outcome.finding is None, outcome.finding


def test_the_benchmark_mutator_replays_from_seed_and_index() -> None:
    first = HARNESS.mutate(SEEDS[0], random.Random("1:42"))
    again = HARNESS.mutate(SEEDS[0], random.Random("1:42"))
    assert first == again and first != SEEDS[0].header + SEEDS[0].tail


def test_a_short_benchmark_run_has_no_findings() -> None:
    # slow_seconds infinite: a busy machine must not turn a slow case into a test failure
    tally = HARNESS.fuzz_range(seed=7, first=0, count=150, slow_seconds=float("inf"))
    assert tally.cases == 150 and not tally.findings, tally.findings
    assert tally.parsed and sum(tally.errors.values())  # both outcomes are exercised


def test_deeply_nested_arrays_are_refused_not_a_recursion_error() -> None:
    # A finding of the fuzzer: an array of arrays 100,000 deep (12 bytes a level) used to
    # exhaust Python's stack inside the reader.
    import struct

    level = struct.pack("<IQ", 9, 1)
    body = struct.pack("<Q", 1) + b"k" + struct.pack("<I", 9) + level * 100_000
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body + struct.pack("<IQ", 4, 0)
    outcome = HARNESS.run_case(data)
    assert outcome.finding is None and outcome.expected_error == "FormatError"
