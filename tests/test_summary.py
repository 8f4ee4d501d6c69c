"""Summary figures from first principles: element counts, block sizes, llama.cpp's guess rule."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from gguf_inspect.llamacpp.summary import guess_file_type, summarize, type_counts
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import fixture_path, write_gguf

N_VOCAB, N_EMBD, N_FF, N_LAYER = 384, 256, 256, 2


def _untied_elements(n_embd: int = N_EMBD, n_head: int = 4, n_head_kv: int = 2) -> int:
    """Parameter count of the tiny untied llama, from its shapes (see fixtures/build.py)."""
    n_kv = n_embd // n_head * n_head_kv
    per_block = 2 * n_embd + 2 * n_embd * n_embd + 2 * n_embd * n_kv + 3 * n_embd * N_FF
    return 2 * N_VOCAB * n_embd + N_LAYER * per_block + n_embd


def test_params_and_bytes_of_the_f16_source() -> None:
    summary = summarize(read_gguf(fixture_path("tiny-llama-untied-f16.gguf")))
    n_norm = 2 * N_LAYER * N_EMBD + N_EMBD  # f32 norms
    assert summary.n_params == _untied_elements()
    assert summary.tensor_bytes == 2 * (summary.n_params - n_norm) + 4 * n_norm
    assert summary.bits_per_weight == 8 * summary.tensor_bytes / summary.n_params
    assert summary.file_type == "F16" and not summary.file_type_guessed
    assert (summary.n_vocab, summary.n_embd, summary.n_layer) == (N_VOCAB, N_EMBD, N_LAYER)
    assert summary.context_length == 2048 and summary.n_head == 4 and summary.n_head_kv == 2


def test_q8_0_bytes_are_34_per_32_values() -> None:
    summary = summarize(read_gguf(fixture_path("tiny-llama-untied-q8_0.gguf")))
    n_norm = 2 * N_LAYER * N_EMBD + N_EMBD
    assert summary.tensor_bytes == (summary.n_params - n_norm) // 32 * 34 + 4 * n_norm
    assert summary.file_type == "Q8_0"
    assert dict(summary.type_counts) == {"f32": 5, "q8_0": 16}


def test_type_counts_are_in_ggml_type_id_order() -> None:
    summary = summarize(read_gguf(fixture_path("tiny-llama-e320-q4_k_m.gguf")))
    names = [name for name, _ in summary.type_counts]
    order = {t.name.lower(): t.value for t in gguf.GGMLQuantizationType}
    assert names == sorted(names, key=lambda n: order[n.lower()])
    assert sum(count for _, count in summary.type_counts) == summary.file.n_tensors


def test_file_type_is_guessed_like_llama_cpp_when_the_key_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "noftype.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.zeros(32, dtype=np.float32))
    write_gguf(writer)
    summary = summarize(read_gguf(path))
    assert summary.file_type == "(guessed) F16" and summary.file_type_guessed


def test_guess_breaks_ties_by_the_type_that_reached_the_count_first() -> None:
    # llama.cpp walks weights in (block number, name) order and keeps the first type to reach
    # the highest count. Order here: output_norm (f32, block -1), blk.0.attn_k (q8_0),
    # blk.0.attn_norm (f32 reaches 2 first), blk.1.attn_k (q8_0 ties at 2, too late).
    gguf_file = read_gguf(fixture_path("tiny-llama-tied-q8_0.gguf"))
    assert guess_file_type(gguf_file.tensors) == 7  # q8_0: 16 tensors beat f32's 5
    names = ["blk.1.attn_k.weight", "blk.0.attn_norm.weight", "blk.0.attn_k.weight",
             "output_norm.weight"]
    picked = tuple(gguf_file.tensor(name) for name in names)
    assert guess_file_type(picked) == 0  # LLAMA_FTYPE_ALL_F32


def test_type_counts_match_gguf_py(any_fixture: Path) -> None:
    oracle = gguf.GGUFReader(any_fixture)
    expected: dict[str, int] = {}
    for tensor in oracle.tensors:
        name = tensor.tensor_type.name.lower()
        name = name[:-1] + "K" if name.endswith("_k") else name
        expected[name] = expected.get(name, 0) + 1
    assert dict(type_counts(read_gguf(any_fixture).tensors)) == expected
