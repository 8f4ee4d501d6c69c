"""benchmarks/real_width_probe.py writes header-true twins: every tensor the architecture's
loader creates, at the real widths, with the data a hole sized exactly as ggml sizes it."""

from __future__ import annotations

import sys
from pathlib import Path

import gguf

from gguf_inspect.gguf.open import read_gguf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import real_width_probe  # noqa: E402


def test_a_twin_is_header_true_and_sparse(tmp_path: Path) -> None:
    path = tmp_path / "bert-base.gguf"
    size = real_width_probe.write_twin(real_width_probe.bert_base(), path)
    assert path.stat().st_size == size
    model = read_gguf(str(path))
    embedding = model.tensor("token_embd.weight")
    assert embedding.ne[:2] == (768, 30_522)
    # Q4_K (rows of 768, a multiple of 256): 144 bytes per 256 values, from gguf-py's table
    block, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q4_K]
    assert embedding.n_bytes == 768 // block * block_bytes * 30_522
    last = max(model.tensors, key=lambda t: t.offset)
    assert last.offset + last.n_bytes <= size < last.offset + last.n_bytes + 32
    assert model.arch_value("block_count") == 2
