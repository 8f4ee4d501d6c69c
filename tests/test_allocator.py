"""llamacpp/allocator.py's DynamicAllocator against ggml-alloc.c's own ggml_dyn_tallocr.

The C allocator is compiled from the copy of ggml-alloc.c shipped in tests/data/ggml-alloc (the
pinned llama-cpp-python's, unchanged) into a small program (dyn_tallocr_harness.c) that reads
allocs and frees on stdin and prints where it placed each; thousands of random sequences, with
zero-byte and unaligned sizes, must get the same offsets and the same peak from both. The
compute buffers of every real load already depend on this allocator
(tests/test_compute_trace.py, tests/test_rpc_traces.py); this pins each of its rules on its own.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from gguf_inspect.llamacpp.allocator import DynamicAllocator
from tests.conftest import ROOT, load_script, unavailable

SOURCE = ROOT / "tests" / "data" / "ggml-alloc"
SEQUENCES, OPERATIONS = 300, 120


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dyn_tallocr_harness.c built, linked against the installed libggml-base (which
    ggml-alloc.c's other functions call)."""
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable("llama-cpp-python is not installed (its libggml-base links the harness)")
    if shutil.which("cc") is None:
        unavailable("no C compiler (cc) to build ggml-alloc.c's allocator")
    installed = load_script("alloc_trace", ROOT / "benchmarks" / "alloc_trace.py"
                            ).installed_library_folder()
    program = tmp_path_factory.mktemp("dyn-tallocr") / "harness"
    subprocess.run(["cc", "-O1", f"-I{SOURCE / 'ggml' / 'include'}",
                    f"-I{SOURCE / 'ggml' / 'src'}", str(SOURCE / "dyn_tallocr_harness.c"),
                    "-o", str(program), f"-L{installed}", "-lggml-base",
                    f"-Wl,-rpath,{installed}"], check=True, capture_output=True)
    return program


def ggml_answers(harness: Path, script: str, alignment: int = 32) -> list[str]:
    """The harness's output lines for ``script`` (its stdin)."""
    done = subprocess.run([str(harness), str(alignment)], input=script, capture_output=True,
                          text=True, check=True)
    return done.stdout.split("\n")[:-1]


def our_answers(script: str, alignment: int = 32) -> list[str]:
    """The same script run through DynamicAllocator, printed as the harness prints."""
    allocator, lines = DynamicAllocator(alignment), []
    for line in script.splitlines():
        op, *numbers = line.split()
        if op == "a":
            lines.append(f"0 {allocator.alloc(int(numbers[0]))}")
        elif op == "f":
            allocator.free(int(numbers[0]), int(numbers[1]))
        elif op == "m":
            lines.append(str(allocator.max_size))
        elif op == "r":
            allocator = DynamicAllocator(alignment)
    return lines


def random_script(seed: int) -> str:
    """Allocs of sizes a graph has (zero bytes, a few bytes, unaligned, a block's worth and
    more) and frees of live allocations in any order, the peak after each step."""
    chooser, live, lines = random.Random(seed), [], []
    allocator = DynamicAllocator(32)  # only to know where each alloc went, to free it later
    for _ in range(OPERATIONS):
        if live and chooser.random() < 0.45:
            offset, size = live.pop(chooser.randrange(len(live)))
            allocator.free(offset, size)
            lines.append(f"f {offset} {size}")
        else:
            size = chooser.choice([0, 0, 4, 32, 96, 100, 512, 544, 4096, 8184, 131072,
                                   chooser.randrange(1, 300_000)])
            live.append((allocator.alloc(size), size))
            lines.append(f"a {size}")
        lines.append("m")
    return "\n".join(lines + ["r"]) + "\n"


def test_every_placement_and_peak_is_ggml_allocs(harness: Path) -> None:
    script = "".join(random_script(seed) for seed in range(SEQUENCES))
    theirs, ours = ggml_answers(harness, script), our_answers(script)
    index = next((i for i, pair in enumerate(zip(theirs, ours)) if pair[0] != pair[1]),
                 None)
    assert index is None and len(theirs) == len(ours), \
        f"answer {index}: ggml {theirs[index:index + 3]}, ours {ours[index:index + 3]}"


def test_other_alignments(harness: Path) -> None:
    for alignment in (1, 16, 64, 128, 512):
        script = random_script(alignment)
        assert our_answers(script, alignment) == ggml_answers(harness, script, alignment)


# Each rule by hand, with its answer worked out from ggml-alloc.c (and ggml's own for it):
RULES = {
    # best fit among the free blocks but the last: the 64-byte hole, not the tail
    "best fit": ("a 64\na 32\na 64\nf 0 64\na 32\n", "0 0|0 64|0 96|0 0"),
    # two equal holes: the later one (block->size <= best_fit_size)
    "ties go to the later block": ("a 32\na 32\na 32\na 32\na 32\nf 0 32\nf 64 32\na 32\n",
                                   "0 0|0 32|0 64|0 96|0 128|0 64"),
    # no hole fits: the tail, which grows the peak
    "the last block grows": ("a 64\na 32\nf 0 64\na 96\nm\n", "0 0|0 64|0 96|192"),
    # sizes are aligned up (100 takes 128) and a free merges with both neighbours
    "aligned and merged": ("a 100\na 100\na 100\na 32\nf 0 100\nf 256 100\nf 128 100\na 384\n",
                           "0 0|0 128|0 256|0 384|0 0"),
    # a zero-byte tensor freed inside a free range leaves a zero-byte block in the list behind
    # the block it lies in; once that block is allocated from it keeps it from merging with
    # the tail, so 128 bytes then go to the tail at 160, not to 64 (ggml_dyn_tallocr_free_bytes
    # merges with the next block in list order, and never re-sorts the list)
    "a zero-byte block": ("a 4\na 0\na 64\na 64\nf 32 64\nf 0 4\nf 32 0\na 64\nf 96 64\na 128\n",
                          "0 0|0 32|0 32|0 96|0 0|0 160"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule(harness: Path, rule: str) -> None:
    script, expected = RULES[rule]
    assert "|".join(our_answers(script)) == expected
    assert "|".join(ggml_answers(harness, script)) == expected
