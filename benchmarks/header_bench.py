"""Benchmark: ``gguf-inspect FILE --embeddings`` against ``gguf-dump FILE`` on real model shapes.

Writes header-true, data-sparse GGUF files (every key, the full tokenizer and every tensor info
of the real model; the tensor data is a hole in a sparse file, so nothing large hits the disk),
then times each tool as a whole process, in the same session, and reports wall time, peak RSS
(from ``wait4``) and the ratio. Run from the repository root:

    python benchmarks/header_bench.py            # both shapes, 5 runs of ours, 2 of gguf-dump
    python benchmarks/header_bench.py --runs 3 --dump-runs 1
    python benchmarks/header_bench.py --baseline /path/to/older/checkout   # before / after

Shapes: a 262,144-token x 640 model with 18 blocks and a SentencePiece tokenizer (the Gemma 3
270M shape, Q8_0), and the Llama-3.1-8B shape (128,256 x 4096, 32 blocks, GPT-2 tokenizer with
280,147 merges, Q4_K_M types).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gguf
import numpy as np

OUT = Path(__file__).resolve().parent / "out"
BIN = Path(sys.executable).parent
Q = gguf.GGMLQuantizationType


@dataclass(frozen=True)
class Shape:
    stem: str
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    tokenizer: str  # "llama" (SentencePiece) or "gpt2" (BPE with merges)
    n_merges: int
    weight_type: gguf.GGMLQuantizationType
    embedding_type: gguf.GGMLQuantizationType
    tied: bool
    value_type: gguf.GGMLQuantizationType  # attn_v (Q4_K_M raises it to q6_K)
    output_type: gguf.GGMLQuantizationType
    context_length: int = 32_768


SHAPES = (
    Shape("vocab262k-640", "gemma3", 262_144, 640, 18, 2048, 4, 1, "llama", 0, Q.Q8_0, Q.Q8_0,
          True, Q.Q8_0, Q.Q8_0),
    Shape("llama31-8b", "llama", 128_256, 4096, 32, 14_336, 32, 8, "gpt2", 280_147, Q.Q4_K,
          Q.Q4_K, False, Q.Q6_K, Q.Q6_K),
)


def _token(index: int) -> str:
    # Varied lengths like a real vocabulary (mean ~7 bytes, some multi-byte UTF-8).
    stems = ("▁the", "ing", "▁über", "tion", "▁模型", "s", "▁a", "ally")
    return f"{stems[index % len(stems)]}{index}"


def _add_tokenizer(writer: gguf.GGUFWriter, shape: Shape) -> None:
    tokens = [_token(i) for i in range(shape.n_vocab)]
    writer.add_tokenizer_model(shape.tokenizer)
    writer.add_token_list(tokens)
    writer.add_token_types([1] * shape.n_vocab)
    if shape.tokenizer == "llama":
        writer.add_token_scores([float(-i) for i in range(shape.n_vocab)])
    else:
        writer.add_token_merges([f"{_token(i)} {_token(i + 1)}" for i in range(shape.n_merges)])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)


def _nbytes(qtype: gguf.GGMLQuantizationType, n_elements: int) -> int:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    return n_elements // block * size


def _add_tensor(writer: gguf.GGUFWriter, name: str, ne: tuple[int, ...],
                qtype: gguf.GGMLQuantizationType) -> int:
    n_elements = int(np.prod(ne))
    n_bytes = _nbytes(qtype, n_elements)
    writer.add_tensor_info(name, tuple(reversed(ne)), np.dtype(np.float32), n_bytes, raw_dtype=qtype)
    return n_bytes


def write_sparse_model(shape: Shape, path: Path,
                       add_tokenizer: Callable[[gguf.GGUFWriter], None] | None = None) -> None:
    """Write every key and tensor info; extend the file to full size as a hole.

    ``add_tokenizer`` replaces the synthetic tokenizer (tests/test_runtime_large_vocab.py
    passes fixtures/build.py's, whose specials and byte tokens llama.cpp's loader expects).
    """
    writer = gguf.GGUFWriter(str(path), shape.arch)
    writer.add_name(shape.stem)
    writer.add_file_type(7 if shape.weight_type == Q.Q8_0 else 15)
    if shape.arch == "llama":
        writer.add_rope_dimension_count(128)
        writer.add_rope_freq_base(500_000.0)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    if add_tokenizer is None:
        _add_tokenizer(writer, shape)
    else:
        add_tokenizer(writer)
    data_bytes = 0
    head_dim = 128 if shape.arch == "llama" else 256
    tensors = [("token_embd.weight", (shape.n_embd, shape.n_vocab), shape.embedding_type)]
    for block in range(shape.n_layer):
        prefix = f"blk.{block}."
        tensors += [
            (prefix + "attn_norm.weight", (shape.n_embd,), Q.F32),
            (prefix + "attn_q.weight", (shape.n_embd, head_dim * shape.n_head), shape.weight_type),
            (prefix + "attn_k.weight", (shape.n_embd, head_dim * shape.n_head_kv), shape.weight_type),
            (prefix + "attn_v.weight", (shape.n_embd, head_dim * shape.n_head_kv),
             shape.value_type),
            (prefix + "attn_output.weight", (head_dim * shape.n_head, shape.n_embd), shape.weight_type),
            (prefix + "ffn_norm.weight", (shape.n_embd,), Q.F32),
            (prefix + "ffn_gate.weight", (shape.n_embd, shape.n_ff), shape.weight_type),
            (prefix + "ffn_up.weight", (shape.n_embd, shape.n_ff), shape.weight_type),
            (prefix + "ffn_down.weight", (shape.n_ff, shape.n_embd), shape.weight_type),
        ]
    tensors.append(("output_norm.weight", (shape.n_embd,), Q.F32))
    if not shape.tied:
        tensors.append(("output.weight", (shape.n_embd, shape.n_vocab), shape.output_type))
    for name, ne, qtype in tensors:
        n_bytes = _add_tensor(writer, name, ne, qtype)
        data_bytes += -(-n_bytes // 32) * 32
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header_end = path.stat().st_size
    os.truncate(path, -(-header_end // 32) * 32 + data_bytes)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float


# The timing runs in a tiny launcher process: ru_maxrss of a child forked straight from this
# script would include this script's own pages (numpy, gguf, a 262k-token list) from before exec.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(process.pid, 0)
elapsed = time.perf_counter() - start
if os.waitstatus_to_exitcode(status) != 0:
    sys.exit(process.stderr.read().decode()[-500:])
print(elapsed, usage.ru_maxrss)
"""


def measure(command: list[str]) -> Run:
    """Wall time and peak RSS of one whole process (wait4 gives the child's own rusage)."""
    output = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *command], check=True,
                            capture_output=True, text=True).stdout.split()
    return Run(float(output[0]), int(output[1]) / 1024)


def bench(path: Path, runs: int, dump_runs: int) -> dict[str, float]:
    ours = [measure([str(BIN / "gguf-inspect"), str(path), "--embeddings"]) for _ in range(runs)]
    theirs = [measure([str(BIN / "gguf-dump"), str(path)]) for _ in range(dump_runs)]
    ours_time = statistics.median(r.seconds for r in ours)
    theirs_time = statistics.median(r.seconds for r in theirs)
    return {
        "ours_s": ours_time, "ours_rss_mib": max(r.peak_rss_mib for r in ours),
        "dump_s": theirs_time, "dump_rss_mib": max(r.peak_rss_mib for r in theirs),
        "speedup": theirs_time / ours_time,
    }


def checkout_command(checkout: Path, path: Path) -> list[str]:
    """``gguf-inspect FILE --embeddings`` run from the package in ``checkout`` (PYTHONPATH)."""
    return ["env", f"PYTHONPATH={checkout}", sys.executable, "-m", "gguf_inspect", str(path),
            "--embeddings"]


def before_after(path: Path, baseline: Path, runs: int) -> dict[str, float]:
    """This checkout against ``baseline``, runs interleaved so that load on a shared machine
    hits both alike; the ratio is what to read."""
    here = Path(__file__).resolve().parent.parent
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(measure(checkout_command(here, path)))
        theirs.append(measure(checkout_command(baseline, path)))
    return {"ours_s": statistics.median(r.seconds for r in ours),
            "ours_rss_mib": max(r.peak_rss_mib for r in ours),
            "base_s": statistics.median(r.seconds for r in theirs),
            "base_rss_mib": max(r.peak_rss_mib for r in theirs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gguf-inspect vs gguf-dump on real shapes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dump-runs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the sparse files")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="compare with an older checkout's package instead of gguf-dump")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    if args.baseline is not None:
        return report_before_after(args.baseline, args.runs, args.keep)
    print(f"{'file':<16} {'header':>10} {'ours s':>8} {'ours MiB':>9} {'dump s':>8} "
          f"{'dump MiB':>9} {'speedup':>8}")
    for shape in SHAPES:
        path = OUT / f"{shape.stem}.gguf"
        write_sparse_model(shape, path)
        from gguf_inspect.gguf.open import read_gguf

        header = read_gguf(path).data_offset
        result = bench(path, args.runs, args.dump_runs)
        print(f"{shape.stem:<16} {header / 2**20:>7.1f}MiB {result['ours_s']:>8.3f} "
              f"{result['ours_rss_mib']:>9.1f} {result['dump_s']:>8.3f} "
              f"{result['dump_rss_mib']:>9.1f} {result['speedup']:>7.1f}x")
        if not args.keep:
            path.unlink()
    return 0


def report_before_after(baseline: Path, runs: int, keep: bool) -> int:
    print(f"{'file':<16} {'now s':>8} {'now MiB':>8} {'base s':>8} {'base MiB':>9} "
          f"{'time ratio':>10}")
    for shape in SHAPES:
        path = OUT / f"{shape.stem}.gguf"
        write_sparse_model(shape, path)
        result = before_after(path, baseline, runs)
        print(f"{shape.stem:<16} {result['ours_s']:>8.3f} {result['ours_rss_mib']:>8.1f} "
              f"{result['base_s']:>8.3f} {result['base_rss_mib']:>9.1f} "
              f"{result['ours_s'] / result['base_s']:>9.2f}x")
        if not keep:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
