"""The README's Llama-3.1-8B comparison: our memory audit next to llama.cpp's own allocation.

Writes a header-true, data-sparse Llama-3.1-8B-shaped Q8_0 file (zero weights in a sparse file:
llama.cpp loads it; nothing large hits the disk), then runs, at n_ctx 8192 on the CPU:
``gguf-inspect vram FILE --ctx 8192`` (our prediction) and ``gguf-inspect runtime FILE --ctx
8192`` (llama.cpp loads it through llama-cpp-python and the two are shown side by side, with and
without flash attention). Needs the ``runtime`` extra. Run from the repository root:

    python benchmarks/vram_8b_compare.py [--keep]

The @huggingface/gguf column of the README was produced with that npm package on the same file
(``npm install @huggingface/gguf`` in a scratch folder, outside the repository).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from header_bench import OUT, Q, Shape, write_sparse_model  # noqa: E402

LLAMA31_8B_Q8_0 = Shape("llama31-8b-q8_0", "llama", 128_256, 4096, 32, 14_336, 32, 8, "llama", 0,
                        Q.Q8_0, Q.Q8_0, False, Q.Q8_0, Q.Q8_0, context_length=131_072)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the sparse file")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{LLAMA31_8B_Q8_0.stem}.gguf"
    write_sparse_model(LLAMA31_8B_Q8_0, path)
    tool = str(Path(sys.executable).parent / "gguf-inspect")
    try:
        for command in ([tool, "vram", str(path), "--ctx", "8192"],
                        [tool, "runtime", str(path), "--ctx", "8192"],
                        [tool, "runtime", str(path), "--ctx", "8192", "--flash-attn", "off"]):
            print("$", " ".join(command[1:]), flush=True)
            subprocess.run(command, check=False)
    finally:
        if not args.keep:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
