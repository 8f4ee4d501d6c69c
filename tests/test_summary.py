"""Summary figures from first principles: element counts, block sizes, llama.cpp's guess rule."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from gguf_inspect.llamacpp.summary import guess_file_type, summarize, type_counts, vocab_size
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


# ---- the header facts, llama.cpp's guess and the tolerant hyperparameters ----------------------

def _write(path: Path, tensors: dict[str, np.ndarray], build=None) -> Path:
    """A llama GGUF holding ``tensors``; ``build(writer)`` adds metadata first."""
    writer = gguf.GGUFWriter(str(path), "llama")
    if build is not None:
        build(writer)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    write_gguf(writer)
    return path


def test_file_facts_match_gguf_py(tmp_path: Path) -> None:
    path = _write(tmp_path / "aligned.gguf", {"token_embd.weight": np.ones((3, 8), np.float32)},
                  lambda writer: writer.add_custom_alignment(64))
    oracle = gguf.GGUFReader(path)
    facts = summarize(read_gguf(path)).file
    assert facts.path == str(path)
    assert facts.gguf_version == oracle.fields["GGUF.version"].parts[-1][0] == 3
    assert facts.byte_order == "little" and oracle.endianess == gguf.GGUFEndian.LITTLE
    assert facts.file_size == path.stat().st_size
    assert facts.n_tensors == len(oracle.tensors) == 1
    assert facts.n_kv == oracle.fields["GGUF.kv_count"].parts[-1][0]
    assert facts.alignment == oracle.alignment == 64
    assert facts.data_offset == oracle.data_offset


def test_names_with_a_prefix_before_blk_are_not_blocks_to_the_guess(tmp_path: Path) -> None:
    # weight_name_comparer's sscanf(name, "blk.%d.") fails on "v.blk.0...": block -1, so the
    # f16 tensor comes first and f16 reaches the (tied) highest count first.
    path = _write(tmp_path / "prefixed.gguf", {
        "blk.0.attn_q.weight": np.zeros((4, 32), np.float32),
        "v.blk.0.attn_q.weight": np.zeros((4, 32), np.float16)})
    assert guess_file_type(read_gguf(path).tensors) == 1  # LLAMA_FTYPE_MOSTLY_F16


def test_guess_from_one_tensor_and_from_none(tmp_path: Path) -> None:
    # llama.cpp starts at n_type_max = 0 and type_max = GGML_TYPE_F32: one f16 tensor gives
    # MOSTLY_F16 (1), no tensor at all leaves ALL_F32 (0).
    path = _write(tmp_path / "one.gguf", {"blk.0.attn_q.weight": np.zeros((4, 32), np.float16)})
    assert guess_file_type(read_gguf(path).tensors) == 1
    assert guess_file_type(()) == 0


def test_a_type_without_a_file_type_is_guessed_all_f32(tmp_path: Path) -> None:
    # The switch's default: "unknown type", ftype = LLAMA_FTYPE_ALL_F32 (GGML_TYPE_I32 here).
    path = _write(tmp_path / "i32.gguf", {
        "blk.0.a.weight": np.zeros(32, np.int32), "blk.0.b.weight": np.zeros(32, np.int32),
        "blk.0.c.weight": np.zeros(32, np.float16)})
    summary = summarize(read_gguf(path))
    assert (summary.file_type_id, summary.file_type) == (0, "(guessed) all F32")


def test_a_file_without_tensors(tmp_path: Path) -> None:
    # No weight: llama.cpp's guess keeps GGML_TYPE_F32; no parameter, no bits per weight.
    summary = summarize(read_gguf(_write(tmp_path / "empty.gguf", {})))
    assert (summary.file_type_id, summary.file_type_guessed) == (0, True)
    assert summary.file_type == "(guessed) all F32"
    assert (summary.n_params, summary.tensor_bytes, summary.bits_per_weight) == (0, 0, 0.0)


def test_names_types_and_per_layer_head_counts_from_the_header(tmp_path: Path) -> None:
    def build(writer: gguf.GGUFWriter) -> None:
        writer.add_name("tiny")
        writer.add_file_type(1)
        writer.add_array("llama.attention.head_count", [4, 4, 8])
        writer.add_array("llama.attention.head_count_kv", ["a", "b"])  # not numbers: unknown

    summary = summarize(read_gguf(_write(tmp_path / "named.gguf", {}, build)))
    assert (summary.architecture, summary.name) == ("llama", "tiny")
    assert (summary.file_type_id, summary.file_type, summary.file_type_guessed) == (1, "F16", False)
    assert summary.n_head == (4, 4, 8) and summary.n_head_kv is None


def test_values_of_the_wrong_type_are_unknown(tmp_path: Path) -> None:
    def build(writer: gguf.GGUFWriter) -> None:
        writer.add_uint32("general.name", 7)
        writer.add_float32("llama.attention.head_count", 4.0)
        writer.add_bool("llama.attention.head_count_kv", True)
        writer.add_float32("llama.embedding_length", 64.0)
        writer.add_bool("llama.block_count", True)
        writer.add_string("llama.context_length", "2048")

    summary = summarize(read_gguf(_write(tmp_path / "odd.gguf", {}, build)))
    assert summary.name is None
    assert (summary.n_head, summary.n_head_kv) == (None, None)
    assert (summary.n_embd, summary.n_layer, summary.context_length) == (None, None, None)


@pytest.mark.parametrize("tokens, declared, embedding, expected", [
    (10, 20, (30, 8), 10),  # the tokenizer's list (llama_vocab's id_to_token) comes first
    (None, 20, (30, 8), 20),  # then {arch}.vocab_size
    (None, None, (30, 8), 30),  # then token_embd's rows (ne[1])
    (None, None, (8,), None),  # a 1-D token_embd has no rows to count
    (None, None, None, None),
])
def test_vocab_size_sources_in_order(tmp_path: Path, tokens: int | None, declared: int | None,
                                     embedding: tuple[int, ...] | None,
                                     expected: int | None) -> None:
    def build(writer: gguf.GGUFWriter) -> None:
        if tokens is not None:
            writer.add_token_list([f"t{index}" for index in range(tokens)])
        if declared is not None:
            writer.add_vocab_size(declared)

    arrays = {} if embedding is None else {"token_embd.weight": np.zeros(embedding, np.float32)}
    assert vocab_size(read_gguf(_write(tmp_path / "vocab.gguf", arrays, build))) == expected
