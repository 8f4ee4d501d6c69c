"""Benchmark: the data-reading commands (diff, diff --values, embed, validate --data) on full-size
models of real shapes, each against one ``gguf-dump`` run of the same file in the same session.

For each shape it writes two quantizations of one model, A and B, as header-true files of the
real model (every key, the full tokenizer, every tensor info; ``header_bench.write_sparse_model``)
whose token embedding and output head hold real random blocks (finite f16 scales, any quant bits)
and whose other tensors are holes of a sparse file (zeros: valid blocks, little disk). Then it
times each command as a whole process (peak RSS from ``wait4``) and prints its ratio to
``gguf-dump A``. Run from the repository root:

    python benchmarks/speed_bench.py               # both shapes
    python benchmarks/speed_bench.py --shape 262k  # the Gemma 3 270M shape only

Shapes: 262,144 x 640 with 18 blocks (Gemma 3 270M; A Q8_0, B Q5_0 embedding and Q4_0 blocks,
tied head) and 128,256 x 4096 with 32 blocks (Llama-3.1-8B; A Q4_K_M-like, B Q8_0). Disk: about
0.3 GB for the first pair and 1.85 GB for the second, one pair at a time, deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from header_bench import BIN, OUT, Q, SHAPES, Shape, measure, write_sparse_model  # noqa: E402

FILLED = ("token_embd.weight", "output.weight")  # tensors given real data
WRITE_ROWS = 8192


def pair(key: str) -> tuple[Shape, Shape]:
    """(A, B): two quantizations of one model shape."""
    if key == "262k":
        a = SHAPES[0]
        b = replace(a, stem=a.stem + "-b", weight_type=Q.Q4_0, value_type=Q.Q4_0,
                    embedding_type=Q.Q5_0)
        return a, b
    a = SHAPES[1]
    b = replace(a, stem=a.stem + "-b", weight_type=Q.Q8_0, value_type=Q.Q8_0,
                embedding_type=Q.Q8_0, output_type=Q.Q8_0)
    return a, b


def random_blocks(rng: np.random.Generator, qtype: Q, n_rows: int, n_cols: int) -> np.ndarray:
    """Random bytes shaped as valid blocks: the leading f16 scales (d, and dmin for the types
    that have one) finite; Q6_K keeps its d last."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_rows, n_cols // block, size), dtype=np.uint8)
    scales = rng.uniform(0.0005, 0.002, size=blocks.shape[:2] + (1,)).astype(np.float16)
    if qtype == Q.Q6_K:
        blocks[:, :, size - 2:] = scales.view(np.uint8)
    else:
        blocks[:, :, 0:2] = scales.view(np.uint8)
    if qtype in (Q.Q4_K, Q.Q5_K, Q.Q2_K):
        blocks[:, :, 2:4] = scales.view(np.uint8)
    return blocks.reshape(n_rows, -1)


def fill(path: Path, seed: int) -> None:
    """Write random valid blocks over the embedding and output head of a sparse model."""
    from gguf_inspect.gguf.open import read_gguf

    header = read_gguf(path)
    rng = np.random.default_rng(seed)
    with open(path, "r+b") as file:
        for tensor in header.tensors:
            if tensor.name not in FILLED:
                continue
            qtype = Q(tensor.type_id)
            n_cols, n_rows = tensor.ne[0], tensor.n_elements // tensor.ne[0]
            file.seek(tensor.offset)
            for first in range(0, n_rows, WRITE_ROWS):
                random_blocks(rng, qtype, min(WRITE_ROWS, n_rows - first), n_cols).tofile(file)


def commands(a: Path, b: Path) -> list[tuple[str, list[str]]]:
    inspect = str(BIN / "gguf-inspect")
    return [
        ("diff A B", [inspect, "diff", str(a), str(b)]),
        ("diff A A", [inspect, "diff", str(a), str(a)]),
        ("diff A B --values", [inspect, "diff", str(a), str(b), "--values", "embeddings"]),
        ("embed A --analogy", [inspect, "embed", str(a), "--analogy", "100", "200", "300"]),
        ("embed A --nearest", [inspect, "embed", str(a), "--nearest", "100"]),
        ("embed A --stats", [inspect, "embed", str(a), "--stats"]),
        ("embed A --stats --vs B", [inspect, "embed", str(a), "--stats", "--vs", str(b)]),
        ("validate --data A", [inspect, "validate", "--data", str(a)]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="data-reading commands vs gguf-dump")
    parser.add_argument("--shape", choices=("262k", "128k"), action="append")
    parser.add_argument("--runs", type=int, default=1, help="runs of each of ours (median)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for key in args.shape or ("262k", "128k"):
        shape_a, shape_b = pair(key)
        path_a, path_b = OUT / f"speed-{key}-a.gguf", OUT / f"speed-{key}-b.gguf"
        try:
            for seed, (shape, path) in enumerate(((shape_a, path_a), (shape_b, path_b))):
                write_sparse_model(shape, path)
                fill(path, seed)
            dump = measure([str(BIN / "gguf-dump"), str(path_a)])
            print(f"{key}: gguf-dump A {dump.seconds:.2f} s, {dump.peak_rss_mib:.0f} MiB",
                  flush=True)
            for label, command in commands(path_a, path_b):
                runs = [measure(command) for _ in range(args.runs)]
                seconds = statistics.median(run.seconds for run in runs)
                peak = max(run.peak_rss_mib for run in runs)
                print(f"{key}: {label:<24} {seconds:6.2f} s {peak:6.0f} MiB "
                      f"{seconds / dump.seconds:5.2f}x", flush=True)
        finally:
            if not args.keep:
                path_a.unlink(missing_ok=True)
                path_b.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
