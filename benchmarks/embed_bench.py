"""Benchmark: ``gguf-inspect embed FILE --analogy king man woman`` on full-size embeddings.

Writes a header-true, data-filled GGUF holding the full tokenizer and ``token_embd.weight`` of the
target shape (random but valid quantized blocks: finite f16 scales, any quant bits), with the
analogy planted in the last four rows (the worst case for finding the words) so the answer can
be checked: king = R + M, man = G + M, woman = G + F, queen = R + F. Q8_0 rows come from
gguf.quants.quantize (queen then scores ~0.99996); Q4_K rows are hand-packed blocks whose values
are exactly (q - 8) / 8, which gguf.quants.dequantize confirms (queen scores 1). Then it times the
command as a whole process, with peak RSS from ``wait4``, and deletes the file. Run from the
repository root:

    python benchmarks/embed_bench.py             # both shapes, 3 timed runs each
    python benchmarks/embed_bench.py --runs 5 --keep

Targets (issue 8): 262,144 x 640 Q8_0 <= 3 s; 128,256 x 4096 Q4_K <= 10 s with peak RSS <= 1 GiB.
The files live in benchmarks/out/ (git-ignored): 178 MB and 296 MB, one at a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

OUT = Path(__file__).resolve().parent / "out"
BIN = Path(sys.executable).parent
Q = gguf.GGMLQuantizationType
PLANTED = ("\u2581king", "\u2581man", "\u2581woman", "\u2581queen")
WRITE_ROWS = 8192  # rows of random blocks generated and written at a time


@dataclass(frozen=True)
class Shape:
    stem: str
    n_vocab: int
    n_embd: int
    qtype: gguf.GGMLQuantizationType
    tokenizer: str
    target_s: float
    target_rss_mib: float | None


SHAPES = (
    Shape("embed-262k-640-q8_0", 262_144, 640, Q.Q8_0, "llama", 3.0, None),
    Shape("embed-128k-4096-q4_k", 128_256, 4096, Q.Q4_K, "gpt2", 10.0, 1024.0),
)


def _token(index: int, marker: str) -> str:
    stems = ("the", "ing", "über", "tion", "模型", "s", "a", "ally")
    return f"{marker}{stems[index % len(stems)]}{index}"


def vocabulary(shape: Shape) -> list[str]:
    """Varied filler tokens; the planted words sit at the end of the vocabulary."""
    marker = "\u2581" if shape.tokenizer == "llama" else "\u0120"
    planted = [marker + word[1:] for word in PLANTED]
    return [_token(i, marker) for i in range(shape.n_vocab - len(planted))] + planted


def random_blocks(rng: np.random.Generator, shape: Shape, n_rows: int) -> np.ndarray:
    """Random bytes shaped as valid blocks: every f16 scale set to a finite positive value."""
    block, size = gguf.GGML_QUANT_SIZES[shape.qtype]
    blocks = rng.integers(0, 256, size=(n_rows, shape.n_embd // block, size), dtype=np.uint8)
    scales = rng.uniform(0.0005, 0.002, size=blocks.shape[:2] + (1,)).astype(np.float16)
    blocks[:, :, 0:2] = scales.view(np.uint8)
    if shape.qtype == Q.Q4_K:
        blocks[:, :, 2:4] = scales.view(np.uint8)  # dmin
    return blocks.reshape(n_rows, -1)


def _q4_k_rows(values: np.ndarray) -> np.ndarray:
    """Q4_K blocks for rows of integers in [-8, 7], exactly: d = dmin = 1/8, every sub-block
    scale 1 and min 8, so each value is (q - 8) / 8 (see dequantize_row_q4_K in ggml)."""
    n_rows, n_embd = values.shape
    q = (values + 8).astype(np.uint8).reshape(n_rows, n_embd // 256, 4, 2, 32)
    blocks = np.zeros((n_rows, n_embd // 256, 144), dtype=np.uint8)
    eighth = np.array([0.125], dtype=np.float16).view(np.uint8)
    blocks[:, :, 0:2] = eighth
    blocks[:, :, 2:4] = eighth
    blocks[:, :, 4:8] = 1  # scales of sub-blocks 0-3 (6 bits)
    blocks[:, :, 8:12] = 8  # mins of sub-blocks 0-3
    blocks[:, :, 12:16] = 0x81  # sub-blocks 4-7: low nibble scale 1, high nibble min 8
    # Each 32-byte group holds 64 values: low nibbles the first 32, high nibbles the next 32.
    blocks[:, :, 16:] = (q[:, :, :, 0, :] | (q[:, :, :, 1, :] << 4)).reshape(n_rows, -1, 128)
    return blocks.reshape(n_rows, -1)


def planted_rows(shape: Shape) -> np.ndarray:
    """king, man, woman, queen as rows of the shape's type."""
    rng = np.random.default_rng(8)
    royal, grown, male, female = (rng.integers(-2, 3, size=shape.n_embd) for _ in range(4))
    values = np.stack([royal + male, grown + male, grown + female, royal + female])
    if shape.qtype == Q.Q8_0:
        return gguf.quants.quantize((values / 64).astype(np.float32), Q.Q8_0)
    rows = _q4_k_rows(values)
    decoded = gguf.quants.dequantize(rows, Q.Q4_K).reshape(4, shape.n_embd)
    assert np.array_equal(decoded, values / 8), "hand-packed Q4_K rows do not decode as planted"
    return rows


def write_model(shape: Shape, path: Path) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(1)
    writer.add_context_length(4096)
    writer.add_head_count(8)
    writer.add_tokenizer_model(shape.tokenizer)
    writer.add_token_list(vocabulary(shape))
    block, size = gguf.GGML_QUANT_SIZES[shape.qtype]
    row_bytes = shape.n_embd // block * size
    writer.add_tensor_info("token_embd.weight", (shape.n_vocab, shape.n_embd),
                           np.dtype(np.float32), shape.n_vocab * row_bytes, raw_dtype=shape.qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    rng = np.random.default_rng(0)
    planted = planted_rows(shape)
    with open(path, "ab") as file:
        file.write(b"\0" * (-file.tell() % 32))  # the data section is 32-byte aligned
        filler_rows = shape.n_vocab - len(planted)
        for first in range(0, filler_rows, WRITE_ROWS):
            random_blocks(rng, shape, min(WRITE_ROWS, filler_rows - first)).tofile(file)
        planted.tofile(file)


# The timing runs in a tiny launcher process: ru_maxrss of a child forked straight from this
# script would include this script's own pages (numpy, gguf, the vocabulary) from before exec.
# stdout (the JSON answer) is read to its end, then wait4 reaps the child with its own rusage.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=open(sys.argv[1], "wb"))
answer = process.stdout.read()
_, status, usage = os.wait4(process.pid, 0)
elapsed = time.perf_counter() - start
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(open(sys.argv[1]).read()[-800:])
sys.stdout.write(f"{elapsed} {usage.ru_maxrss}\\n")
sys.stdout.buffer.write(answer)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    answer: dict


def measure(command: list[str]) -> Run:
    """Wall time, peak RSS and JSON answer of one whole process."""
    stderr_path = OUT / "embed_bench.stderr"
    output = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, str(stderr_path), *command],
                            check=True, capture_output=True, text=True).stdout
    timing, answer = output.split("\n", 1)
    seconds, rss_kib = timing.split()
    stderr_path.unlink(missing_ok=True)
    return Run(float(seconds), int(rss_kib) / 1024, json.loads(answer))


def command_for(path: Path) -> list[str]:
    return [str(BIN / "gguf-inspect"), "embed", str(path), "--analogy", "king", "man", "woman",
            "--json"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gguf-inspect embed --analogy on full shapes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the written files")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    print(f"{'file':<22} {'median s':>9} {'min s':>7} {'peak MiB':>9} {'target':>14} "
          f"{'answer':<12} {'cosine':>8}")
    failed = False
    for shape in SHAPES:
        path = OUT / f"{shape.stem}.gguf"
        write_model(shape, path)
        try:
            runs = [measure(command_for(path)) for _ in range(args.runs)]
        finally:
            if not args.keep:
                path.unlink()
        median = statistics.median(run.seconds for run in runs)
        peak = max(run.peak_rss_mib for run in runs)
        best = runs[0].answer["results"][0]
        target = f"<= {shape.target_s:g} s" + (
            f", {shape.target_rss_mib:g} MiB" if shape.target_rss_mib else "")
        met = median <= shape.target_s and (shape.target_rss_mib is None
                                             or peak <= shape.target_rss_mib)
        failed |= not met or best["token"] != vocabulary(shape)[-1]
        print(f"{shape.stem:<22} {median:>9.2f} {min(r.seconds for r in runs):>7.2f} "
              f"{peak:>9.1f} {target:>14} {best['token']!r:<12} {best['score']:>8.5f}"
              f"{'' if met else '  MISSED'}")
    print("command: " + " ".join(command_for(OUT / "FILE.gguf")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
