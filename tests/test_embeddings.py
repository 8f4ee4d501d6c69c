"""The --embeddings report: sizes from block arithmetic, and the recipe replay checked against
what llama.cpp's own quantizer actually wrote into the fixtures."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from gguf_inspect.llamacpp.recipe import expected_embedding_type
from gguf_inspect.reports.embeddings import NoEmbeddingError, analyze_embeddings
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import fixture_path, write_gguf

N_VOCAB = 384
QUANTIZED_BY_LLAMA_CPP = [
    "tiny-llama-untied-q8_0.gguf", "tiny-llama-untied-q4_k_m.gguf", "tiny-llama-tied-q8_0.gguf",
    "tiny-llama-tied-q4_k_m.gguf", "tiny-llama-e320-q4_k_m.gguf",
]


@pytest.mark.parametrize("name, n_embd, emb_type, emb_bytes, out_type, out_bytes", [
    # bytes = elements / block * block bytes: q4_K 144/256, q6_K 210/256, q5_0 22/32, q8_0 34/32
    ("tiny-llama-untied-q4_k_m.gguf", 256, "q4_K", N_VOCAB * 256 // 256 * 144, "q6_K",
     N_VOCAB * 256 // 256 * 210),
    ("tiny-llama-tied-q4_k_m.gguf", 256, "q6_K", N_VOCAB * 256 // 256 * 210, None, None),
    ("tiny-llama-e320-q4_k_m.gguf", 320, "q5_0", N_VOCAB * 320 // 32 * 22, "q8_0",
     N_VOCAB * 320 // 32 * 34),
    ("tiny-llama-untied-f16.gguf", 256, "f16", N_VOCAB * 256 * 2, "f16", N_VOCAB * 256 * 2),
])
def test_embedding_and_head_sizes(name: str, n_embd: int, emb_type: str, emb_bytes: int,
                                  out_type: str | None, out_bytes: int | None) -> None:
    gguf_file = read_gguf(fixture_path(name))
    report = analyze_embeddings(gguf_file)
    embedding = report.embedding
    assert (embedding.n_rows, embedding.n_cols, embedding.ne) == (N_VOCAB, n_embd, (n_embd, N_VOCAB))
    assert (embedding.type, embedding.n_bytes) == (emb_type, emb_bytes)
    assert embedding.f16_bytes == 2 * N_VOCAB * n_embd
    assert embedding.ratio_to_f16 == emb_bytes / (2 * N_VOCAB * n_embd)
    assert embedding.bits_per_weight == 8 * emb_bytes / (N_VOCAB * n_embd)
    total = sum(t.n_bytes for t in gguf.GGUFReader(fixture_path(name)).tensors)
    assert embedding.share_of_tensor_bytes == emb_bytes / total
    assert report.tied_output is (out_type is None)
    if out_type is None:
        assert report.output is None and report.placement.tied_gpu_copy_bytes == emb_bytes
    else:
        assert (report.output.type, report.output.n_bytes) == (out_type, out_bytes)
        assert report.placement.tied_gpu_copy_bytes is None
    assert report.placement.input_device == "host"
    assert report.warnings == ()


@pytest.mark.parametrize("name", QUANTIZED_BY_LLAMA_CPP)
def test_recipe_replay_agrees_with_llama_cpps_quantizer(name: str) -> None:
    report = analyze_embeddings(read_gguf(fixture_path(name)))
    assert report.expected is not None
    assert report.expected.type == report.embedding.type
    assert "That is llama.cpp's" in report.verdict


@pytest.mark.parametrize("file_type, tied, n_embd, expected", [
    # Read from llama_tensor_get_type_impl / tensor_type_fallback in src/llama-quant.cpp.
    (15, False, 4096, "q4_K"),   # Q4_K_M, untied: base type
    (15, True, 4096, "q6_K"),    # Q4_K_M, tied: treated as the output head
    (15, True, 2880, "q8_0"),    # tied, ne0 % 256 != 0: head rule picks q8_0
    (15, False, 2880, "q5_0"),   # untied q4_K falls back to q5_0
    (17, False, 4096, "q5_K"),   # Q5_K_M
    (17, False, 2880, "q5_1"),   # q5_K falls back to q5_1
    (18, True, 640, "q8_0"),     # Q6_K, tied, 640 % 256 != 0
    (7, True, 640, "q8_0"),      # Q8_0 keeps q8_0 for the head
    (2, True, 4096, "q6_K"),     # Q4_0, tied: the head is raised to q6_K
    (19, True, 4096, "q5_K"),    # IQ2_XXS: head q5_K
    (19, False, 4096, "q2_K"),   # IQ2_XXS: embedding q2_K
    (29, False, 4096, "iq3_s"),  # IQ2_M: embedding iq3_s
    (1, False, 4096, "f16"),     # F16 files are not quantized at all
])
def test_recipe_table(file_type: int, tied: bool, n_embd: int, expected: str) -> None:
    assert expected_embedding_type(file_type, tied, n_embd, "llama").type == expected


def test_an_override_is_called_out(tmp_path: Path) -> None:
    # A Q4_K_M file whose untied embedding is q8_0: not the default recipe (q4_K).
    path = tmp_path / "override.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_file_type(15)
    writer.add_embedding_length(256)
    embedding = gguf.quants.quantize(np.zeros((8, 256), dtype=np.float32),
                                     gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("token_embd.weight", embedding, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output.weight", np.zeros((8, 256), dtype=np.float16))
    write_gguf(writer)
    report = analyze_embeddings(read_gguf(path))
    assert report.embedding.type == "q8_0" and report.expected.type == "q4_K"
    assert "explicit override" in report.verdict


def test_mismatched_metadata_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "mismatch.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_embedding_length(512)
    writer.add_vocab_size(99)
    writer.add_token_list([f"t{i}" for i in range(7)])
    writer.add_tensor("token_embd.weight", np.zeros((8, 256), dtype=np.float16))
    write_gguf(writer)
    warnings = analyze_embeddings(read_gguf(path)).warnings
    assert any("7 tokens" in w and "8 rows" in w for w in warnings)
    assert any("vocab_size is 99" in w for w in warnings)
    assert any("embedding_length is 512" in w and "256 wide" in w for w in warnings)


def test_keys_of_the_wrong_type_are_warned_about_not_silently_ignored(tmp_path: Path) -> None:
    path = tmp_path / "wrong-types.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("llama.embedding_length", "256")
    writer.add_string("llama.vocab_size", "8")
    writer.add_tensor("token_embd.weight", np.zeros((8, 256), dtype=np.float16))
    write_gguf(writer)
    warnings = analyze_embeddings(read_gguf(path)).warnings
    assert any("llama.embedding_length is str '256', not an integer" in w for w in warnings)
    assert any("llama.vocab_size is str '8', not an integer" in w for w in warnings)


def test_an_architecture_that_is_not_a_string_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "numeric-arch.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.zeros((8, 256), dtype=np.float16))
    write_gguf(writer)
    # Swap the architecture's string value for a uint32 in place (fields found with gguf-py),
    # then re-pad the shorter header to the alignment before the unchanged data.
    reader = gguf.GGUFReader(path)
    field = reader.fields["general.architecture"]
    value_start = field.offset + sum(part.nbytes for part in field.parts[:2])  # after the key
    value_end = field.offset + sum(part.nbytes for part in field.parts)
    last = reader.tensors[-1].field
    infos_end = last.offset + sum(part.nbytes for part in last.parts)
    raw = path.read_bytes()
    header = (raw[:value_start] + struct.pack("<II", int(gguf.GGUFValueType.UINT32), 7)
              + raw[value_end:infos_end])
    path.write_bytes(header + b"\0" * (-len(header) % 32) + raw[reader.data_offset:])
    assert gguf.GGUFReader(path).fields["general.architecture"].parts[-1][0] == 7
    warnings = analyze_embeddings(read_gguf(path)).warnings
    assert any("general.architecture is int 7, not a string" in w for w in warnings)


def test_a_file_without_token_embd_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "projector.gguf"
    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_tensor("v.patch_embd.weight", np.zeros((4, 32), dtype=np.float16))
    write_gguf(writer)
    with pytest.raises(NoEmbeddingError, match="no token_embd.weight"):
        analyze_embeddings(read_gguf(path))
