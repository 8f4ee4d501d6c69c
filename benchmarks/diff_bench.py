"""Benchmark: ``gguf-inspect diff`` on model-sized files (sampled values, tensor-data hashing).

Writes two files with the same tensor names and shapes (``--tensors`` matrices of ``--ne0`` x
``--rows``, named like llama's attention and FFN weights): A holds Q8_0 made by
gguf.quants.quantize from random weights, B holds Q4_K blocks of random bits with finite f16
scales (gguf-py has no Q4_K quantizer; any bits are valid Q4_K). Then it times, as whole
processes with peak RSS from ``wait4``:

1. ``diff A B --values all --sample N``: every tensor's sampled rows, dequantized on both sides;
2. ``diff B C --exit-code``, C a copy of B with one byte flipped in its last tensor: every tensor
   hashed on both sides (expects exit 1), and the same with ``--no-data-hash`` (expects exit 0).

A is deleted before C is made, so at most two files exist at once (about 2.0 GB with the
defaults: 1.34 GB of Q8_0 and 0.71 GB of Q4_K). Everything is deleted at the end unless
``--keep``. Run from the repository root:

    python benchmarks/diff_bench.py                  # 200 tensors of 4096 x 1536
    python benchmarks/diff_bench.py --runs 3 --sample 1000

The files sit in benchmarks/out/ (git-ignored); timings are with the files in the page cache
(each file is read once before timing), so they measure gguf-inspect, not the disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

OUT = Path(__file__).resolve().parent / "out"
Q = gguf.GGMLQuantizationType
ROLES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
Q4_K_BLOCK = (256, 144)  # values and bytes per Q4_K block; its first 4 bytes: f16 d and dmin


@dataclass(frozen=True)
class Layout:
    n_tensors: int
    ne0: int  # row length
    rows: int

    def names(self) -> list[str]:
        return [f"blk.{index // len(ROLES)}.{ROLES[index % len(ROLES)]}.weight"
                for index in range(self.n_tensors)]


def q8_0_rows(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    weights = rng.standard_normal((layout.rows, layout.ne0), dtype=np.float32) * 0.02
    return gguf.quants.quantize(weights, Q.Q8_0)


def q4_k_rows(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    values, size = Q4_K_BLOCK
    n_blocks = layout.rows * layout.ne0 // values
    blocks = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    scales = rng.uniform(1e-4, 1e-3, size=(n_blocks, 2)).astype(np.float16)
    blocks[:, :4] = scales.view(np.uint8).reshape(n_blocks, 4)
    return blocks.reshape(layout.rows, -1)


def write_model(path: Path, layout: Layout, qtype: Q, seed: int) -> None:
    """Write the file one tensor at a time, so memory holds one tensor, not the model."""
    make_rows = q8_0_rows if qtype == Q.Q8_0 else q4_k_rows
    rng = np.random.default_rng(seed)
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    row_bytes = layout.ne0 // block_values * block_bytes
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"diff-bench-{qtype.name.lower()}")
    writer.add_block_count(-(-layout.n_tensors // len(ROLES)))
    for name in layout.names():
        writer.add_tensor_info(name, (layout.rows, row_bytes), np.dtype(np.uint8),
                               layout.rows * row_bytes, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _ in layout.names():
        writer.write_tensor_data(make_rows(rng, layout))
    writer.close()


def flip_last_tensor_byte(path: Path) -> None:
    """Flip one bit in the middle of the last tensor's data (types and metadata unchanged)."""
    last = gguf.GGUFReader(path).tensors[-1]
    offset = int(last.data_offset) + int(last.n_bytes) // 2
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x10]))


def warm(path: Path) -> None:
    with path.open("rb") as handle:
        while handle.read(64 << 20):
            pass


def timed(args: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in MiB, exit code) of one ``gguf-inspect`` process."""
    command = [sys.executable, "-m", "gguf_inspect", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    return elapsed, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def report(label: str, args: list[str], runs: int) -> None:
    results = [timed(args) for _ in range(runs)]
    seconds = [r[0] for r in results]
    print(f"{label}: median {statistics.median(seconds):.2f} s over {runs} run(s) "
          f"({', '.join(f'{s:.2f}' for s in seconds)}), peak RSS {max(r[1] for r in results)} "
          f"MiB, exit {sorted({r[2] for r in results})}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tensors", type=int, default=200)
    parser.add_argument("--ne0", type=int, default=4096, help="row length (multiple of 256)")
    parser.add_argument("--rows", type=int, default=1536, help="rows per tensor")
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the files in benchmarks/out")
    parser.add_argument("--only", choices=("values", "hash"),
                        help="run one of the two timings (values alone also times older "
                             "versions, which have no --no-data-hash)")
    args = parser.parse_args(argv)
    layout = Layout(args.tensors, args.ne0, args.rows)
    OUT.mkdir(exist_ok=True)
    path_a, path_b, path_c = (OUT / f"diff-bench-{tag}.gguf" for tag in ("a-q8_0", "b-q4_k",
                                                                         "c-q4_k-flipped"))
    try:
        for path, qtype, seed in ((path_a, Q.Q8_0, 1), (path_b, Q.Q4_K, 2)):
            if path == path_a and args.only == "hash":
                continue
            started = time.perf_counter()
            write_model(path, layout, qtype, seed)
            print(f"wrote {path.name}: {path.stat().st_size / 1e9:.2f} GB in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            warm(path)
        if args.only != "hash":
            report(f"diff A B --values all --sample {args.sample}",
                   ["diff", str(path_a), str(path_b), "--values", "all", "--sample",
                    str(args.sample)], args.runs)
        if args.only == "values":
            return 0
        path_a.unlink(missing_ok=True)
        shutil.copyfile(path_b, path_c)
        flip_last_tensor_byte(path_c)
        warm(path_c)
        report("diff B C --exit-code (hashes both files' tensor data)",
               ["diff", str(path_b), str(path_c), "--exit-code"], args.runs)
        report("diff B C --exit-code --no-data-hash",
               ["diff", str(path_b), str(path_c), "--exit-code", "--no-data-hash"], args.runs)
    finally:
        if not args.keep:
            for path in (path_a, path_b, path_c):
                path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
