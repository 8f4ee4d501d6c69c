"""The GPU proof kit: every CUDA buffer llama.cpp allocates, next to gguf-inspect's prediction.

On a machine with an NVIDIA GPU it builds llama.cpp from the source vendored in the pinned
llama-cpp-python (``vendor/llama.cpp``, unpacked from its sdist) as shared libraries with CUDA for
the present GPU's architecture only, writes header-true, data-sparse twins of three real shapes
(Llama-3.1-8B dense, a Qwen3-30B-A3B MoE, Gemma-3-270M with sliding-window layers), loads each
through llama-cpp-python pointed at that build (LLAMA_CPP_LIB_PATH) at a matrix of settings with
``gguf-inspect runtime``, and writes one table (markdown and JSON) of every buffer: predicted,
printed by llama.cpp, and whether they agree. Run from the repository root:

    python benchmarks/gpu_proof.py --source /tmp/sdist/llama_cpp_python-0.3.36   # the GPU run
    python benchmarks/gpu_proof.py --dry-run   # no GPU: everything but the build and the loads

``--dry-run`` writes the twins, predicts every setting with ``gguf-inspect vram`` and prints the
build commands instead of running them; the table then has predictions only. Budget: the CUDA
build of one architecture on 16 cores takes most of the 10 minutes; the loads a few seconds each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gguf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "fixtures"))
from header_bench import Q, _add_tensor  # noqa: E402
from build import add_tokenizer  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "gpu_proof"
# (name, gguf-inspect options): full and partial offload, flash attention on/off, q8_0 KV.
MATRIX = (
    ("full", []),
    ("full-fa-off", ["--flash-attn", "off"]),
    ("full-q8_0-kv", ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--flash-attn", "on"]),
    ("half", ["--ngl", "HALF"]),
    ("half-no-op-offload", ["--ngl", "HALF", "--no-op-offload"]),
    ("no-kv-offload", ["--no-kv-offload"]),
)
MOE_ONLY = (("n-cpu-moe-4", ["--n-cpu-moe", "4"]),)


def _llama(n_layer: int, n_embd: int, n_ff: int, n_head: int, n_head_kv: int, n_vocab: int,
           head_dim: int = 128, weight: object = Q.Q4_K, value: object = Q.Q6_K
           ) -> list[tuple[str, tuple[int, ...], object]]:
    """Llama-style tensors; Q4_K_M's types (q6_K for attn_v, ffn_down and output) by default."""
    tensors = [("token_embd.weight", (n_embd, n_vocab), weight)]
    for il in range(n_layer):
        p = f"blk.{il}."
        tensors += [(p + "attn_norm.weight", (n_embd,), Q.F32),
                    (p + "attn_q.weight", (n_embd, head_dim * n_head), weight),
                    (p + "attn_k.weight", (n_embd, head_dim * n_head_kv), weight),
                    (p + "attn_v.weight", (n_embd, head_dim * n_head_kv), value),
                    (p + "attn_output.weight", (head_dim * n_head, n_embd), weight),
                    (p + "ffn_norm.weight", (n_embd,), Q.F32)]
        if n_ff:
            tensors += [(p + "ffn_gate.weight", (n_embd, n_ff), weight),
                        (p + "ffn_up.weight", (n_embd, n_ff), weight),
                        (p + "ffn_down.weight", (n_ff, n_embd), value)]
    return tensors + [("output_norm.weight", (n_embd,), Q.F32),
                      ("output.weight", (n_embd, n_vocab), value)]


def dense_8b(writer: gguf.GGUFWriter) -> list:
    """Llama-3.1-8B: 32 blocks, 4096 wide, GQA 32/8, 128,256 tokens."""
    writer.add_context_length(131_072)
    writer.add_embedding_length(4096)
    writer.add_block_count(32)
    writer.add_feed_forward_length(14_336)
    writer.add_head_count(32)
    writer.add_head_count_kv(8)
    writer.add_rope_dimension_count(128)
    writer.add_rope_freq_base(500_000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    return _llama(32, 4096, 14_336, 32, 8, 128_256)


def moe_30b_a3b(writer: gguf.GGUFWriter) -> list:
    """Qwen3-30B-A3B: 48 blocks, 2048 wide, 128 experts (8 used) of 768, 151,936 tokens."""
    n_embd, n_ff, n_expert = 2048, 768, 128
    writer.add_context_length(40_960)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(48)
    writer.add_feed_forward_length(6144)
    writer.add_expert_feed_forward_length(n_ff)
    writer.add_expert_count(n_expert)
    writer.add_expert_used_count(8)
    writer.add_head_count(32)
    writer.add_head_count_kv(4)
    writer.add_key_length(128)
    writer.add_value_length(128)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    tensors = _llama(48, n_embd, 0, 32, 4, 151_936)
    for il in range(48):
        p = f"blk.{il}."
        tensors += [(p + "attn_q_norm.weight", (128,), Q.F32),
                    (p + "attn_k_norm.weight", (128,), Q.F32),
                    (p + "ffn_gate_inp.weight", (n_embd, n_expert), Q.F32),
                    (p + "ffn_gate_exps.weight", (n_embd, n_ff, n_expert), Q.Q4_K),
                    (p + "ffn_up_exps.weight", (n_embd, n_ff, n_expert), Q.Q4_K),
                    (p + "ffn_down_exps.weight", (n_ff, n_embd, n_expert), Q.Q6_K)]
    return tensors


def swa_gemma3(writer: gguf.GGUFWriter) -> list:
    """Gemma-3-270M: 18 blocks, 640 wide, head 256, five sliding-window (512) layers in six."""
    writer.add_context_length(32_768)
    writer.add_embedding_length(640)
    writer.add_block_count(18)
    writer.add_feed_forward_length(2048)
    writer.add_head_count(4)
    writer.add_head_count_kv(1)
    writer.add_key_length(256)
    writer.add_value_length(256)
    writer.add_sliding_window(512)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    tensors = [t for t in _llama(18, 640, 2048, 4, 1, 262_144, head_dim=256,
                                    weight=Q.Q8_0, value=Q.Q8_0)
               if t[0] != "output.weight"]  # tied
    for il in range(18):
        p = f"blk.{il}."
        tensors += [(p + "attn_q_norm.weight", (256,), Q.F32),
                    (p + "attn_k_norm.weight", (256,), Q.F32),
                    (p + "post_attention_norm.weight", (640,), Q.F32),
                    (p + "post_ffw_norm.weight", (640,), Q.F32)]
    return tensors


SHAPES = {"dense-8b": ("llama", dense_8b, 32), "moe-30b-a3b": ("qwen3moe", moe_30b_a3b, 48),
          "swa-gemma3-270m": ("gemma3", swa_gemma3, 18)}


def write_twin(name: str, path: Path) -> None:
    """Every key and tensor info of the shape; the data a hole (a sparse file)."""
    arch, describe, _ = SHAPES[name]
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_file_type(7 if arch == "gemma3" else 15)  # Q8_0 / Q4_K_M
    tensors = describe(writer)
    n_vocab = next(t[1][1] for t in tensors if t[0] == "token_embd.weight")
    add_tokenizer(writer, n_vocab)
    data = sum(-(-_add_tensor(writer, n, ne, q) // 32) * 32 for n, ne, q in tensors)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    os.truncate(path, -(-path.stat().st_size // 32) * 32 + data)


def build_commands(source: Path, build: Path, arch: str) -> list[list[str]]:
    """CUDA for this GPU only (CMAKE_CUDA_ARCHITECTURES), shared libraries, nothing else."""
    return [["cmake", "-S", str(source / "vendor" / "llama.cpp"), "-B", str(build),
             "-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={arch}", "-DBUILD_SHARED_LIBS=ON",
             "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_BUILD_TESTS=OFF",
             "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=OFF",
             "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_CURL=OFF"],
            ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 4), "--target", "llama"]]


def gpu_architecture() -> tuple[str, str]:
    """nvidia-smi's compute capability ("9.0" -> "90") and the GPU's name."""
    line = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap,name", "--format=csv,noheader"],
                          check=True, capture_output=True, text=True).stdout.splitlines()[0]
    cap, name = (part.strip() for part in line.split(",", 1))
    return cap.replace(".", ""), name


def settings_for(shape: str) -> list[tuple[str, list[str]]]:
    half = str(SHAPES[shape][2] // 2)
    rows = list(MATRIX) + (list(MOE_ONLY) if shape.startswith("moe") else [])
    return [(name, [half if word == "HALF" else word for word in options])
            for name, options in rows]


def _tool(*words: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run([sys.executable, "-m", "gguf_inspect", *words, "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    if not done.stdout.strip():
        return {"error": done.stderr.strip()[-400:]}
    return json.loads(done.stdout)


def measure(path: Path, shape: str, options: list[str], lib: Path | None) -> list[dict]:
    """One row per buffer, in MiB: the prediction and, with a CUDA build, llama.cpp's figure."""
    common = ["--ctx", "8192", *options]
    if lib is None:
        document = _tool("vram", str(path), "--gpu", "h200", *common)
        return [{"buffer": f"{b['buffer']} {b['kind']}", "predicted": round(b["bytes"] / 2**20, 2),
                 "runtime": None, "status": "predicted only"}
                for b in document.get("buffers", [])] or [{"error": document.get("error")}]
    env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(lib), PYTHONPATH=str(ROOT))
    document = _tool("runtime", str(path), *common, env=env)
    return [{"buffer": c["quantity"], "predicted": c["predicted"], "runtime": c["runtime"],
             "status": c["status"]}
            for c in document.get("checks", []) if "buffer" in c["quantity"]] or [
        {"error": document.get("error")}]


def table(rows: list[dict]) -> str:
    lines = ["| shape | setting | buffer | predicted MiB | llama.cpp MiB | status |",
             "|---|---|---|---:|---:|---|"]
    for row in rows:
        mib = ["-" if v is None else str(v) for v in (row.get("predicted"), row.get("runtime"))]
        lines.append(f"| {row['shape']} | {row['setting']} | {row.get('buffer', row.get('error'))}"
                     f" | {mib[0]} | {mib[1]} | {row.get('status', 'error')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="no build, no loads")
    parser.add_argument("--source", type=Path, default=Path("/tmp/sdist/llama_cpp_python-0.3.36"),
                        help="the unpacked llama-cpp-python sdist (holds vendor/llama.cpp)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    build, lib = args.out / "build", None
    arch, gpu = ("90", "dry run: no GPU") if args.dry_run else gpu_architecture()
    for command in build_commands(args.source, build, arch):
        print("$", " ".join(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True)
    if not args.dry_run:
        lib = build / "bin"
    rows = []
    for shape in args.shapes.split(","):
        path = args.out / f"{shape}.gguf"
        write_twin(shape, path)
        for setting, options in settings_for(shape):
            for row in measure(path, shape, options, lib):
                rows.append({"shape": shape, "setting": setting, **row})
        path.unlink()
    header = f"GPU: {gpu}; llama.cpp from {args.source.name}; n_ctx 8192\n\n"
    (args.out / "table.md").write_text(header + table(rows))
    (args.out / "table.json").write_text(json.dumps({"gpu": gpu, "rows": rows}, indent=1))
    print(header + table(rows))
    print(f"{time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
