"""Tests of ``gguf-inspect diff``: analysis, rendering, command and CLI.

Oracles: byte sizes from first principles (elements / block size x block bytes, ggml-common.h),
tensor types and bytes as gguf-py's GGUFReader reads them, and error metrics computed with numpy
on whole tensors dequantized by gguf-py (GGUFReader + gguf.quants.dequantize), independently of
gguf-inspect's reader and its chunked dequantizer.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import struct
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.gguf import dequant
from gguf_inspect.reports.diff import (
    ArrayDigest,
    DiffOptions,
    DiffReport,
    HashProgress,
    ProgressCallback,
    ProgressEvent,
    ValueDiff,
    ValuesProgress,
    diff_models,
    sample_rows,
    value_diff,
)
from gguf_inspect.cli import app
from gguf_inspect.commands.diff import StderrProgress, run_diff
from gguf_inspect.gguf.open import Model, open_model, read_header
from gguf_inspect.render.diff import diff_json, diff_sections
from gguf_inspect.render.document import draw_markdown, draw_terminal
from gguf_inspect.core.model import TensorInfo
from gguf_inspect.gguf.source import ByteSource, LocalFileSource
from tests.conftest import FIXTURES, fixture_path, write_gguf
from tests.range_server import RangeServer

# (elements per block, bytes per block) from ggml-common.h: q8_0 is a f16 scale + 32 int8,
# q4_K 144 bytes per 256 values, q6_K 210 per 256, q5_0 22 per 32.
BLOCKS = {"F32": (1, 4), "F16": (1, 2), "Q8_0": (32, 34), "Q4_K": (256, 144),
          "Q6_K": (256, 210), "Q5_0": (32, 22)}
N_EMBD, N_VOCAB, N_FF, N_KV = 256, 384, 256, 128  # the tiny llamas, fixtures/build.py


def expected_bytes(type_name: str, n_elements: int) -> int:
    block, size = BLOCKS[type_name]
    assert n_elements % block == 0
    return n_elements // block * size


def diff(name_a: str, name_b: str, options: DiffOptions = DiffOptions(),
         progress: ProgressCallback | None = None) -> DiffReport:
    return diff_paths(fixture_path(name_a), fixture_path(name_b), options, progress)


def diff_paths(path_a: Path, path_b: Path, options: DiffOptions = DiffOptions(),
               progress: ProgressCallback | None = None) -> DiffReport:
    with open_model(path_a) as model_a, open_model(path_b) as model_b:
        return diff_models(model_a, model_b, options, progress)


def reader_tensors(name: str) -> dict[str, gguf.ReaderTensor]:
    return {t.name: t for t in gguf.GGUFReader(fixture_path(name)).tensors}


def dequantized(tensor: gguf.ReaderTensor) -> np.ndarray:
    """gguf-py's whole-tensor dequantization, as (rows, ne[0]) float64."""
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float64)
    return values.reshape(-1, int(tensor.shape[0]))


def numpy_metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    error = b - a
    cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "max_abs": float(np.abs(error).max()),
            "cos_mean": float(cosines.mean()), "cos_min": float(cosines.min()),
            "rel_error": float(np.linalg.norm(error) / np.linalg.norm(a))}


def assert_metrics(value: ValueDiff, expected: dict[str, float]) -> None:
    for key, number in expected.items():
        assert getattr(value, key) == pytest.approx(number, rel=1e-9, abs=1e-12), key


# ---- structure --------------------------------------------------------------------------------

def test_f16_to_q8_0_every_weight_changes_type_with_first_principles_bytes() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf")
    oracle_a = reader_tensors("tiny-llama-untied-f16.gguf")
    oracle_b = reader_tensors("tiny-llama-untied-q8_0.gguf")
    assert {c.name for c in report.tensors} == set(oracle_a) == set(oracle_b)
    for change in report.tensors:
        a, b = oracle_a[change.name], oracle_b[change.name]
        assert change.a is not None and change.b is not None
        assert (change.a.type.upper(), change.b.type.upper()) == (a.tensor_type.name,
                                                                  b.tensor_type.name)
        assert change.a.n_bytes == expected_bytes(a.tensor_type.name, int(a.n_elements))
        assert change.b.n_bytes == expected_bytes(b.tensor_type.name, int(b.n_elements))
        if len(a.shape) == 2:  # every matrix: f16 -> q8_0; norms stay f32
            assert (change.a.type, change.b.type, change.change) == ("f16", "q8_0", "type")
        else:
            assert (change.a.type, change.b.type, change.change) == ("f32", "f32", "same")
    embedding = next(c for c in report.tensors if c.name == "token_embd.weight")
    assert embedding.delta == N_EMBD * N_VOCAB // 32 * 34 - 2 * N_EMBD * N_VOCAB == -92_160
    assert report.tensor_bytes_delta == sum(
        int(oracle_b[n].n_bytes) - int(oracle_a[n].n_bytes) for n in oracle_a)


def test_f16_to_q4_k_m_follows_llama_cpp_recipe() -> None:
    """Q4_K_M: q4_K base, q6_K head, q6_K attn_v/ffn_down in some layers (use_more_bits)."""
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf")
    oracle_b = reader_tensors("tiny-llama-untied-q4_k_m.gguf")
    by_name = {c.name: c for c in report.tensors}
    for name, tensor in oracle_b.items():
        side = by_name[name].b
        assert side is not None and side.type.upper() == tensor.tensor_type.name
        assert side.n_bytes == int(tensor.n_bytes)
    head, embedding = by_name["output.weight"], by_name["token_embd.weight"]
    assert head.b is not None and (head.b.type, head.b.n_bytes) == ("q6_K", 98_304 // 256 * 210)
    assert embedding.b is not None and (embedding.b.type, embedding.b.n_bytes) == (
        "q4_K", 98_304 // 256 * 144)
    assert [c.name for c in report.tensors][:2] == ["token_embd.weight", "output.weight"]
    assert report.a.file_type == "F16" and report.b.file_type == "Q4_K - Medium"
    assert dict((t, (a, b)) for t, a, b in report.type_counts) == {
        "f32": (5, 5), "f16": (16, 0), "q4_K": (0, 13), "q6_K": (0, 3)}


def test_role_groups_have_first_principles_bytes() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf")
    matrix = {"token_embd": N_EMBD * N_VOCAB, "output": N_EMBD * N_VOCAB,
              "attn_q": N_EMBD * N_EMBD, "attn_k": N_EMBD * N_KV, "attn_v": N_EMBD * N_KV,
              "attn_output": N_EMBD * N_EMBD, "ffn_gate": N_EMBD * N_FF,
              "ffn_up": N_EMBD * N_FF, "ffn_down": N_FF * N_EMBD}
    expected = {role: (2 * n if role in ("token_embd", "output") else 4 * n,  # 1 or 2 layers
                       (1 if role in ("token_embd", "output") else 2) * n // 32 * 34)
                for role, n in matrix.items()}
    expected["norm"] = (5 * N_EMBD * 4, 5 * N_EMBD * 4)
    got = {g.role: (g.a_bytes, g.b_bytes) for g in report.groups}
    assert got == expected
    assert [g.role for g in report.groups][:2] == ["token_embd", "output"]
    assert all(g.delta == g.b_bytes - g.a_bytes for g in report.groups)
    assert sum(g.delta for g in report.groups) == report.tensor_bytes_delta


def test_tied_against_untied_reports_the_missing_output_head() -> None:
    report = diff("tiny-llama-untied-q8_0.gguf", "tiny-llama-tied-q8_0.gguf")
    head = next(c for c in report.tensors if c.name == "output.weight")
    assert (head.change, head.b, head.delta) == ("removed", None, -(N_EMBD * N_VOCAB // 32 * 34))
    group = next(g for g in report.groups if g.role == "output")
    assert (group.a_tensors, group.b_tensors, group.b_bytes) == (1, 0, 0)
    assert next(m for m in report.metadata if m.key == "general.name").change == "changed"
    assert report.notes == ("B has no output.weight: llama.cpp uses token_embd.weight as the "
                            "output head (tied embeddings); its bytes count under token embedding",)
    reverse = diff("tiny-llama-tied-q8_0.gguf", "tiny-llama-untied-q8_0.gguf")
    assert next(c for c in reverse.tensors if c.name == "output.weight").change == "added"
    assert reverse.tensor_bytes_delta == -report.tensor_bytes_delta


def test_different_shapes_still_diff_with_a_warning_first() -> None:
    report = diff("tiny-llama-untied-q4_k_m.gguf", "tiny-llama-e320-q4_k_m.gguf",
                  DiffOptions(values="embeddings"))
    assert report.warnings and report.warnings[0].startswith("shapes differ: 21 tensor(s)")
    embedding = next(c for c in report.tensors if c.name == "token_embd.weight")
    assert embedding.a is not None and embedding.b is not None
    assert (embedding.a.ne, embedding.b.ne) == ((256, 384), (320, 384))
    down = next(c for c in report.tensors if c.name == "blk.0.ffn_down.weight")
    assert down.change == "shape"  # q4_K on both sides, 256 -> 320 rows
    assert report.values == ()
    assert [s.reason.split(":")[0] for s in report.values_skipped] == ["shapes differ"] * 2
    lines = draw_terminal(diff_sections(report)).splitlines()
    assert lines[0] == "== warning ==" and lines[1].startswith("shapes differ")
    paragraph = " ".join(lines[1:lines.index("")])  # long paragraphs wrap on a terminal
    assert paragraph == report.warnings[0]


def test_different_architectures_warn(tmp_path: Path) -> None:
    other = tmp_path / "qwen2.gguf"
    writer = gguf.GGUFWriter(str(other), "qwen2")
    writer.add_tensor("token_embd.weight", np.zeros((N_VOCAB, N_EMBD), dtype=np.float16))
    write_gguf(writer)
    report = diff_paths(fixture_path("tiny-llama-untied-f16.gguf"), other)
    assert report.warnings[0] == "architectures differ: A is llama, B is qwen2"
    assert next(c for c in report.tensors if c.name == "output.weight").change == "removed"


def test_each_warning_and_skip_reason_is_drawn_on_its_own() -> None:
    """llama against gemma3: two warnings, every value skipped; no escaped newlines anywhere."""
    report = diff("tiny-llama-untied-q4_k_m.gguf", "tiny-gemma3-swa-q4_k_m.gguf",
                  DiffOptions(values="all"))
    assert [w.split(":")[0] for w in report.warnings] == ["architectures differ", "shapes differ"]
    for text in (draw_terminal(diff_sections(report)), draw_markdown(diff_sections(report))):
        assert "\\n" not in text
    text = draw_terminal(diff_sections(report))
    assert text.startswith("== warning ==\narchitectures differ: A is llama, B is gemma3\n\n"
                           "== warning ==\nshapes differ")
    skipped = [line.split() for line in text.split("== values not compared ==")[1].splitlines()]
    assert ["output.weight", "only", "in", "A"] in skipped


# ---- metadata ---------------------------------------------------------------------------------

def write_vocab(path: Path, tokens: list[str], name: str = "m") -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_token_list(tokens)
    writer.add_array("test.small", [1, 2, 3])
    write_gguf(writer)
    return path


def key_change(report: DiffReport, key: str) -> tuple[str, Any, Any]:
    """(change, A's value, B's value) of one metadata key; None for a missing side."""
    change = next(m for m in report.metadata if m.key == key)
    return (change.change, change.a.value if change.a else None,
            change.b.value if change.b else None)


def test_metadata_f16_to_q4_k_m() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf")
    changed = {m.key for m in report.metadata if m.change != "same"}
    assert changed == {"general.file_type", "general.quantization_version"}
    assert key_change(report, "general.file_type") == ("changed", 1, 15)  # F16 -> Q4_K_M
    assert key_change(report, "general.quantization_version") == ("added", None, 2)
    change, tokens_a, tokens_b = key_change(report, "tokenizer.ggml.tokens")
    assert change == "same" and tokens_a == tokens_b
    assert isinstance(tokens_a, ArrayDigest) and tokens_a.count == N_VOCAB


def test_large_array_hash_is_over_the_items_read_by_gguf_py() -> None:
    """The digest is SHA-256 of the items in GGUF's little-endian encoding (the documented one:
    each string as its 8-byte little-endian length and its UTF-8 bytes), built here from the
    items gguf-py reads."""
    path = fixture_path("tiny-llama-untied-f16.gguf")
    items = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"].contents()
    encoded = b"".join(struct.pack("<Q", len(raw)) + raw
                       for raw in (item.encode("utf-8") for item in items))
    expected = hashlib.sha256(encoded).hexdigest()
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-tied-f16.gguf")
    _, tokens_a, _ = key_change(report, "tokenizer.ggml.tokens")
    assert tokens_a == ArrayDigest("string", N_VOCAB, expected)


def write_arrays(path: Path, endian: gguf.GGUFEndian) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    writer.add_token_list([f"tok{index}\u00e9" for index in range(300)])
    writer.add_token_scores([float(-index) / 3 for index in range(300)])
    writer.add_token_types([index % 6 for index in range(300)])
    writer.add_array("test.ints", [(index - 25) * 100_003 for index in range(50)])
    writer.add_array("test.flags", [index % 3 == 0 for index in range(50)])
    write_gguf(writer)
    return path


def test_array_digests_are_equal_across_byte_orders(tmp_path: Path) -> None:
    """The same items hash the same in a little- and a big-endian file; each digest is over the
    little-endian encoding of the items gguf-py reads (numbers packed here with struct)."""
    little = write_arrays(tmp_path / "little.gguf", gguf.GGUFEndian.LITTLE)
    big = write_arrays(tmp_path / "big.gguf", gguf.GGUFEndian.BIG)
    report = diff_paths(little, big)
    arrays = [m for m in report.metadata if isinstance(getattr(m.a, "value", None), ArrayDigest)]
    assert {m.key for m in arrays} == {"tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                       "tokenizer.ggml.token_type", "test.ints", "test.flags"}
    assert all(m.change == "same" and m.a == m.b for m in arrays)
    formats = {"tokenizer.ggml.scores": "<f", "tokenizer.ggml.token_type": "<i",
               "test.ints": "<i", "test.flags": "<?"}
    fields = gguf.GGUFReader(big).fields
    for key, fmt in formats.items():
        items = fields[key].contents()
        expected = hashlib.sha256(b"".join(struct.pack(fmt, item) for item in items)).hexdigest()
        assert key_change(report, key)[2].sha256 == expected, key


def test_file_diffed_with_itself_is_hashed_once() -> None:
    """Every tensor's data and every long array are read once, not once per side."""
    path = fixture_path("tiny-llama-untied-q4_k_m.gguf")
    data_start = header_bytes(path)
    data_reads: list[int] = []
    array_reads: list[int] = []

    class Recording(LocalFileSource):
        def read_at(self, offset: int, length: int) -> bytes:
            (data_reads if offset >= data_start else array_reads).append(length)
            return super().read_at(offset, length)

    with Recording(path) as source_a, Recording(path) as source_b:
        model_a, model_b = Model(read_header(source_a), source_a), Model(read_header(source_b),
                                                                          source_b)
        data_reads.clear()
        array_reads.clear()
        report = diff_models(model_a, model_b, DiffOptions(values="all"))
    data_bytes = sum(int(t.n_bytes) for t in gguf.GGUFReader(path).tensors)
    tokens = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"]
    assert sum(data_reads) == data_bytes  # hashed once; values not dequantized (identical)
    assert not report.differs and all(c.data_equal for c in report.tensors)
    assert all(v.identical and v.rmse == 0 for v in report.values)
    assert len(report.values) == len(report.tensors)
    long_arrays = [model_a.file.metadata[m.key].value for m in report.metadata
                   if isinstance(m.a.value, ArrayDigest)]
    assert tokens.name in {m.key for m in report.metadata if isinstance(m.a.value, ArrayDigest)}
    assert sum(array_reads) == sum(array.end - array.offset for array in long_arrays)


def test_identical_hash_tensors_are_reported_identical_without_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same type, shape and bytes on both sides: no dequantization, reported identical; a tensor
    whose bytes differ is still measured."""
    rows = np.arange(64 * 32, dtype=np.float32).reshape(64, 32) / 100
    head = rows[::-1].copy()
    changed_head = head.copy()
    changed_head[3, 4] += 1.0
    paths = []
    for name, output in (("a.gguf", head), ("b.gguf", changed_head)):
        writer = gguf.GGUFWriter(str(tmp_path / name), "llama")
        writer.add_tensor("token_embd.weight", rows)
        writer.add_tensor("output.weight", output)
        write_gguf(writer)
        paths.append(tmp_path / name)
    read = dequant.read_row_set
    dequantized_names: list[str] = []

    def recording(source: ByteSource, tensor: TensorInfo, *args: Any, **kwargs: Any) -> Any:
        dequantized_names.append(tensor.name)
        return read(source, tensor, *args, **kwargs)

    monkeypatch.setattr(dequant, "read_row_set", recording)
    report = diff_paths(paths[0], paths[1], DiffOptions(values="embeddings"))
    values = {v.name: v for v in report.values}
    assert values["token_embd.weight"].identical and values["token_embd.weight"].rmse == 0.0
    assert values["token_embd.weight"].rows == values["token_embd.weight"].total_rows == 64
    assert not values["output.weight"].identical
    assert values["output.weight"].max_abs == pytest.approx(1.0)
    assert set(dequantized_names) == {"output.weight"}
    assert json.loads(diff_json(report))["values"][0]["identical"] is True
    unhashed = diff_paths(paths[0], paths[1], DiffOptions(values="embeddings", data_hash=False))
    assert not any(v.identical for v in unhashed.values)  # not hashed: measured as before


def test_arrays_compared_by_count_and_hash(tmp_path: Path) -> None:
    tokens = [f"t{index}" for index in range(40)]
    base = write_vocab(tmp_path / "base.gguf", tokens)
    renamed = write_vocab(tmp_path / "renamed.gguf", tokens[:-1] + ["t|\x1b[31mX"], name="m2")
    longer = write_vocab(tmp_path / "longer.gguf", tokens + ["extra"])
    same = diff_paths(base, write_vocab(tmp_path / "copy.gguf", list(tokens)))
    assert not same.differs
    change, digest_a, digest_b = key_change(diff_paths(base, renamed), "tokenizer.ggml.tokens")
    assert change == "changed" and digest_a.count == digest_b.count == 40
    assert digest_a.sha256 != digest_b.sha256
    _, digest_a, digest_b = key_change(diff_paths(base, longer), "tokenizer.ggml.tokens")
    assert (digest_a.count, digest_b.count) == (40, 41)
    assert key_change(same, "test.small") == ("same", (1, 2, 3), (1, 2, 3))  # item by item


def test_untrusted_metadata_is_escaped_in_tables(tmp_path: Path) -> None:
    base = write_vocab(tmp_path / "base.gguf", ["a"] * 20)
    hostile = write_vocab(tmp_path / "hostile.gguf", ["a"] * 20, name="x|y\x1b[31m\u202e")
    report = diff_paths(base, hostile)
    for text in (draw_terminal(diff_sections(report)), draw_markdown(diff_sections(report))):
        assert "\x1b" not in text and "\u202e" not in text
    assert "x\\|y\\\\x1b\\[31m" in draw_markdown(diff_sections(report))


# ---- values -----------------------------------------------------------------------------------

@pytest.mark.parametrize("candidate", ["tiny-llama-untied-q8_0.gguf",
                                       "tiny-llama-untied-q4_k_m.gguf"])
def test_embedding_values_match_numpy_on_the_f16_source(candidate: str) -> None:
    report = diff("tiny-llama-untied-f16.gguf", candidate, DiffOptions(values="embeddings"))
    source, quantized = reader_tensors("tiny-llama-untied-f16.gguf"), reader_tensors(candidate)
    assert [v.name for v in report.values] == ["token_embd.weight", "output.weight"]
    for value in report.values:
        assert (value.rows, value.total_rows) == (N_VOCAB, N_VOCAB)
        assert_metrics(value, numpy_metrics(dequantized(source[value.name]),
                                            dequantized(quantized[value.name])))
    assert 0 < report.values[0].rmse and report.values[0].cos_min < 1


def test_all_values_f16_to_q4_k_m_match_numpy() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf",
                  DiffOptions(values="all"))
    source = reader_tensors("tiny-llama-untied-f16.gguf")
    quantized = reader_tensors("tiny-llama-untied-q4_k_m.gguf")
    assert {v.name for v in report.values} == set(source) and report.values_skipped == ()
    for value in report.values:
        assert_metrics(value, numpy_metrics(dequantized(source[value.name]),
                                            dequantized(quantized[value.name])))
    # q6_K keeps ~4x less error than q4_K: the recipe's bigger types show in the numbers.
    rmse = {v.name: v.rmse for v in report.values}
    assert rmse["output.weight"] < rmse["token_embd.weight"] / 2


def test_small_chunks_give_the_same_numbers_and_alternate_sides(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    real_read_row_set = dequant.read_row_set

    def recording_read_row_set(source: ByteSource, tensor: TensorInfo, rows: np.ndarray,
                               byte_order: str = "little") -> np.ndarray:
        calls.append((source.name, len(rows)))
        return real_read_row_set(source, tensor, rows, byte_order)

    whole = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf",
                 DiffOptions(values="embeddings"))
    monkeypatch.setattr(dequant, "read_row_set", recording_read_row_set)
    # 4096 bytes for both sides: 2 rows of 256 float32 each per chunk.
    chunked = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf",
                   DiffOptions(values="embeddings", chunk_bytes=4096))
    for small, big in zip(chunked.values, whole.values):
        assert_metrics(small, {k: getattr(big, k) for k in
                               ("rmse", "max_abs", "cos_mean", "cos_min", "rel_error")})
    assert max(n for _, n in calls) == 2 and len(calls) == 2 * (2 * N_VOCAB // 2)
    sides = [name.endswith("f16.gguf") for name, _ in calls]
    assert sides == [True, False] * (len(calls) // 2)  # one chunk of A, then B, never more


def test_sampled_rows_are_seeded_and_match_numpy_on_those_rows() -> None:
    options = DiffOptions(values="embeddings", sample=10, seed=7)
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf", options)
    again = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf", options)
    assert report.values == again.values
    source = reader_tensors("tiny-llama-untied-f16.gguf")
    quantized = reader_tensors("tiny-llama-untied-q4_k_m.gguf")
    for value in report.values:
        rows = sample_rows(value.name, N_VOCAB, 10, 7)
        assert len(set(rows.tolist())) == 10 and 0 <= rows.min() and rows.max() < N_VOCAB
        assert (value.rows, value.total_rows) == (10, N_VOCAB)
        assert_metrics(value, numpy_metrics(dequantized(source[value.name])[rows],
                                            dequantized(quantized[value.name])[rows]))
    assert not np.array_equal(sample_rows("x", N_VOCAB, 10, 7), sample_rows("x", N_VOCAB, 10, 8))
    assert np.array_equal(sample_rows("x", 5, 10, 0), np.arange(5))  # more than there are: all


def test_progress_counts_every_element_once() -> None:
    reported: list[ProgressEvent] = []
    diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf",
         DiffOptions(values="embeddings", chunk_bytes=64 * 1024), reported.append)
    events = [event for event in reported if isinstance(event, ValuesProgress)]
    done = [event.done for event in events]
    assert done == sorted(done) and len(events) > 2
    assert done[-1] == events[-1].total == 2 * N_EMBD * N_VOCAB
    assert events[-1].fraction == 1.0 and events[-1].tensor_index == events[-1].n_tensors == 2


def test_same_file_has_no_differences_and_zero_error() -> None:
    report = diff("tiny-llama-tied-q4_k_m.gguf", "tiny-llama-tied-q4_k_m.gguf",
                  DiffOptions(values="all"))
    assert not report.differs and report.warnings == () and report.notes == ()
    assert all(c.change == "same" for c in report.tensors)
    assert all(v.rmse == 0 and v.cos_min == pytest.approx(1.0) for v in report.values)


def write_matrix(path: Path, rows: np.ndarray) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", rows.astype(np.float32))
    write_gguf(writer)
    return path


def test_nan_and_zero_rows(tmp_path: Path) -> None:
    """A NaN in B shows as NaN (null in JSON, '-' in tables); zero rows follow the convention."""
    reference = np.ones((4, 32), dtype=np.float32)
    reference[3] = 0.0
    candidate = reference.copy()
    candidate[1, 5] = np.nan
    candidate[2] = 0.0  # one zero row: cosine 0
    report = diff_paths(write_matrix(tmp_path / "a.gguf", reference),
                        write_matrix(tmp_path / "b.gguf", candidate),
                        DiffOptions(values="embeddings"))
    value = report.values[0]
    assert math.isnan(value.rmse) and math.isnan(value.max_abs) and math.isnan(value.cos_min)
    assert report.differs
    assert json.loads(diff_json(report))["values"][0]["max_abs"] is None
    row = next(line for line in draw_terminal(diff_sections(report)).splitlines()
               if line.startswith("token_embd.weight"))
    assert row.split()[6:] == ["-"] * 5  # RMSE, max abs, cos mean, cos min, rel error
    healthy = candidate.copy()
    healthy[1, 5] = 1.0
    clean = diff_paths(write_matrix(tmp_path / "a.gguf", reference),
                       write_matrix(tmp_path / "c.gguf", healthy),
                       DiffOptions(values="embeddings")).values[0]
    assert clean.cos_min == 0.0  # rows: 1, 1, 0 (one side zero), 1 (both zero)
    assert clean.cos_mean == pytest.approx(0.75)
    assert clean.max_abs == 1.0 and clean.rmse == pytest.approx(math.sqrt(32 / 128))


def test_value_diff_rejects_an_unknown_scope() -> None:
    with open_model(fixture_path("tiny-llama-tied-q8_0.gguf")) as model:
        with pytest.raises(ValueError):
            value_diff(model, model, DiffOptions(values="some"))


# ---- tensor data ------------------------------------------------------------------------------

def raw_digests(path: Path) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """Tensor name -> (SHA-256 of its raw bytes, type, shape), all as gguf-py's GGUFReader sees
    them: the oracle for data_equal."""
    return {t.name: (hashlib.sha256(t.data.tobytes()).hexdigest(), t.tensor_type.name,
                     tuple(int(n) for n in t.shape))
            for t in gguf.GGUFReader(path).tensors}


def expected_data_equal(path_a: Path, path_b: Path) -> dict[str, bool]:
    """For tensors of the same type and shape on both sides: are their bytes equal?"""
    a, b = raw_digests(path_a), raw_digests(path_b)
    return {name: a[name][0] == b[name][0] for name in a
            if name in b and a[name][1:] == b[name][1:]}


def flipped_copy(source: Path, target: Path, tensor_name: str) -> Path:
    """A byte-for-byte copy of ``source`` with one bit flipped inside one tensor's data."""
    target.write_bytes(source.read_bytes())
    tensor = next(t for t in gguf.GGUFReader(source).tensors if t.name == tensor_name)
    offset = int(tensor.data_offset) + int(tensor.n_bytes) // 2 + 1
    with target.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0x04]))
    return target


def test_one_flipped_tensor_byte_is_reported_with_exit_1(tmp_path: Path) -> None:
    original = fixture_path("tiny-llama-untied-q4_k_m.gguf")
    flipped = flipped_copy(original, tmp_path / "flipped.gguf", "blk.1.ffn_up.weight")
    expected = expected_data_equal(original, flipped)
    assert [name for name, equal in expected.items() if not equal] == ["blk.1.ffn_up.weight"]
    report = diff_paths(original, flipped)
    assert report.data_hashed and report.differs
    assert {c.name: c.data_equal for c in report.tensors} == expected
    change = next(c for c in report.tensors if c.name == "blk.1.ffn_up.weight")
    assert (change.change, change.data_equal, change.differs) == ("same", False, True)
    assert all(m.change == "same" for m in report.metadata)
    assert cli(str(original), str(flipped), "--exit-code") == 1
    assert cli(str(original), str(flipped)) == 0  # without --exit-code, differences exit 0
    text = draw_terminal(diff_sections(report))
    assert "== tensors: 1 changed (1 in data only), 20 unchanged not shown" in text
    row = next(line for line in text.splitlines() if "blk.1.ffn_up.weight" in line)
    assert row.split()[2:5] == ["blk.1.ffn_up.weight", "same", "differs"]
    assert "tensor data         20 same, 1 differ (SHA-256 of the 21 tensors" in text
    document = json.loads(diff_json(report))
    assert document["data_hashed"] is True and document["differs"] is True
    assert document["tensors"] == [{
        "name": "blk.1.ffn_up.weight", "role": "ffn_up", "change": "same", "data_equal": False,
        "a": {"type": "q4_K", "ne": [256, 256], "n_bytes": 256 * 256 // 256 * 144},
        "b": {"type": "q4_K", "ne": [256, 256], "n_bytes": 256 * 256 // 256 * 144}}]


def test_identical_copies_are_equal(tmp_path: Path) -> None:
    original = fixture_path("tiny-llama-tied-q8_0.gguf")
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(original.read_bytes())
    report = diff_paths(original, copy)
    assert all(equal for equal in expected_data_equal(original, copy).values())
    assert {c.name: c.data_equal for c in report.tensors} == expected_data_equal(original, copy)
    assert not report.differs and report.notes == ()
    assert cli(str(original), str(copy), "--exit-code") == 0


def test_untied_against_tied_data_matches_hashlib() -> None:
    """Two fixtures built from other weights: every same-type tensor is hashed and compared."""
    path_a = fixture_path("tiny-llama-untied-q8_0.gguf")
    path_b = fixture_path("tiny-llama-tied-q8_0.gguf")
    report = diff_paths(path_a, path_b)
    expected = expected_data_equal(path_a, path_b)
    assert {c.name: c.data_equal for c in report.tensors if c.data_equal is not None} == expected
    assert next(c for c in report.tensors if c.name == "output.weight").data_equal is None


def test_types_that_differ_are_not_hashed() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf")
    assert {c.name: c.data_equal for c in report.tensors if c.data_equal is not None} == (
        expected_data_equal(fixture_path("tiny-llama-untied-f16.gguf"),
                            fixture_path("tiny-llama-untied-q8_0.gguf")))
    assert all(c.data_equal is None for c in report.tensors if c.change == "type")


def test_no_data_hash_reads_no_tensor_and_says_so(tmp_path: Path) -> None:
    original = fixture_path("tiny-llama-untied-q8_0.gguf")
    flipped = flipped_copy(original, tmp_path / "flipped.gguf", "token_embd.weight")
    report = diff_paths(original, flipped, DiffOptions(data_hash=False))
    assert not report.data_hashed and not report.differs
    assert all(c.data_equal is None for c in report.tensors)
    assert report.notes == ("tensor data not compared (--no-data-hash): tensors of the same type "
                            "and shape count as equal",)
    assert cli(str(original), str(flipped), "--exit-code", "--no-data-hash") == 0
    assert json.loads(diff_json(report))["data_hashed"] is False


def test_hashing_reads_each_byte_once_in_bounded_chunks(tmp_path: Path) -> None:
    """Progress covers both sides' bytes of every same-type same-shape tensor, counted by gguf-py;
    no read of tensor data is bigger than the chunk. (B is a copy: a file diffed with itself is
    hashed once, see test_file_diffed_with_itself_is_hashed_once.)"""
    path = fixture_path("tiny-llama-untied-q4_k_m.gguf")
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    data_start = header_bytes(path)
    reads: list[int] = []

    class Recording(LocalFileSource):
        def read_at(self, offset: int, length: int) -> bytes:
            if offset >= data_start:  # the metadata diff reads the header's arrays too
                reads.append(length)
            return super().read_at(offset, length)

    events: list[ProgressEvent] = []
    with Recording(path) as source_a, Recording(copy) as source_b:
        model_a, model_b = Model(read_header(source_a), source_a), Model(read_header(source_b),
                                                                          source_b)
        reads.clear()
        diff_models(model_a, model_b, DiffOptions(hash_chunk_bytes=10_000), events.append)
    data_bytes = 2 * sum(int(t.n_bytes) for t in gguf.GGUFReader(path).tensors)
    hashed = [event for event in events if isinstance(event, HashProgress)]
    assert hashed[-1].done == hashed[-1].total == data_bytes
    assert hashed[-1].fraction == 1.0 and hashed[-1].n_tensors == 21
    assert [e.done for e in hashed] == sorted(e.done for e in hashed)
    assert max(reads) <= 10_000 and sum(reads) == data_bytes


def test_remote_files_are_not_hashed_unless_asked() -> None:
    name = "tiny-llama-untied-q8_0.gguf"
    size = fixture_path(name).stat().st_size
    with RangeServer(FIXTURES) as server:
        url = server.url(name)
        text, code = run_diff(url, str(fixture_path(name)), "json", exit_code=True)
        sent_without = server.log.bytes_sent
        forced, forced_code = run_diff(url, str(fixture_path(name)), "json", data_hash=True,
                                       exit_code=True)
    document = json.loads(text)
    assert (code, document["data_hashed"], document["differs"]) == (0, False, False)
    assert document["notes"] == [
        "tensor data not compared: A is remote, and hashing would download every tensor; "
        "tensors of the same type and shape count as equal (--data-hash compares them anyway)"]
    assert sent_without < size  # the header only
    everything = json.loads(forced)
    assert (forced_code, everything["data_hashed"], everything["notes"]) == (0, True, [])
    assert server.log.bytes_sent - sent_without >= size - header_bytes(fixture_path(name))


def header_bytes(path: Path) -> int:
    """Where gguf-py says tensor data starts."""
    return min(int(t.data_offset) for t in gguf.GGUFReader(path).tensors)


# ---- progress on stderr -----------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def event(done: int, total: int = 100) -> ValuesProgress:
    return ValuesProgress("blk.0.attn_q.weight", 1, 2, done, total)


def test_progress_is_silent_for_the_first_second_then_one_line_per_tenth() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = StderrProgress(stream, clock=clock)
    progress(event(5))
    assert stream.getvalue() == ""
    clock.now = 1.5
    for done in (10, 12, 25, 100):
        progress(event(done))
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("comparing values:  10.0%")
    assert "\r" not in stream.getvalue()


def test_progress_redraws_one_line_on_a_terminal() -> None:
    clock, stream = FakeClock(), Terminal()
    progress = StderrProgress(stream, clock=clock)
    clock.now = 2.0
    progress(event(50))
    progress(event(100))
    progress.finish()
    assert stream.getvalue().count("\r") == 2 and stream.getvalue().endswith("100.0%  tensor 1/2"
                                                                          "  blk.0.attn_q.weight\n")


def test_hashing_then_values_each_get_their_own_progress_lines() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = StderrProgress(stream, clock=clock)
    clock.now = 1.5
    for done in (50, 100):
        progress(HashProgress("blk.0.attn_q.weight", 1, 1, done, 100))
    clock.now = 2.0
    progress(event(40))  # values start afresh at 0%, shown at once: the diff is past its second
    progress(event(100))
    progress.finish()
    assert [line.split(":")[0] for line in stream.getvalue().splitlines()] == [
        "hashing tensor data", "hashing tensor data", "comparing values", "comparing values"]


# ---- rendering, JSON contract, command and CLI ------------------------------------------------

def test_json_carries_the_contract_keys() -> None:
    text, code = run_diff(str(fixture_path("tiny-llama-untied-f16.gguf")),
                          str(fixture_path("tiny-llama-untied-q8_0.gguf")), "json",
                          values="embeddings")
    document = json.loads(text)
    assert code == 0 and document["schema_version"] == 1
    assert {"a", "b", "type_counts", "tensors", "groups", "metadata", "tensor_bytes_delta",
            "values"} <= set(document)
    for side in ("a", "b"):
        assert {"path", "file_type", "tensor_bytes", "bits_per_weight"} <= set(document[side])
    assert document["type_counts"] == {"a": {"f32": 5, "f16": 16}, "b": {"f32": 5, "q8_0": 16}}
    first = document["tensors"][0]
    assert set(first) == {"name", "role", "change", "a", "b", "data_equal"}
    assert first == {"name": "token_embd.weight", "role": "token_embd", "change": "type",
                     "a": {"type": "f16", "ne": [256, 384], "n_bytes": 196_608},
                     "b": {"type": "q8_0", "ne": [256, 384], "n_bytes": 104_448},
                     "data_equal": None}  # bytes of other types are not compared
    assert all(t["change"] != "same" for t in document["tensors"])  # unchanged: only with --all
    assert {"role", "a_bytes", "b_bytes", "delta"} <= set(document["groups"][0])
    assert all(set(m) == {"key", "change", "a", "b"} for m in document["metadata"])
    assert {"name", "rmse", "max_abs", "cos_mean", "cos_min"} <= set(document["values"][0])
    oracle_a = gguf.GGUFReader(fixture_path("tiny-llama-untied-f16.gguf")).tensors
    oracle_b = gguf.GGUFReader(fixture_path("tiny-llama-untied-q8_0.gguf")).tensors
    bytes_a, bytes_b = sum(int(t.n_bytes) for t in oracle_a), sum(int(t.n_bytes) for t in oracle_b)
    assert document["tensor_bytes_delta"] == bytes_b - bytes_a
    elements = sum(int(t.n_elements) for t in oracle_a)
    assert document["a"]["bits_per_weight"] == pytest.approx(8 * bytes_a / elements)


def test_all_lists_unchanged_tensors_and_keys() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q8_0.gguf")
    everything = json.loads(diff_json(report, show_all=True))
    assert len(everything["tensors"]) == 21 and len(everything["metadata"]) == 19
    text = draw_terminal(diff_sections(report, show_all=True))
    assert "blk.0.attn_norm.weight" in text
    assert "blk.0.attn_norm.weight" not in draw_terminal(diff_sections(report))


def test_table_shows_the_embedding_and_head_first() -> None:
    report = diff("tiny-llama-untied-f16.gguf", "tiny-llama-untied-q4_k_m.gguf",
                  DiffOptions(values="embeddings"))
    text = draw_terminal(diff_sections(report))
    tensors_block = text.split("== tensors:")[1]
    rows = [line for line in tensors_block.splitlines() if ".weight" in line]
    assert rows[0].split()[2] == "token_embd.weight" and rows[1].split()[2] == "output.weight"
    assert "== values: B against A, token embedding and output head, all rows ==" in text


runner = CliRunner()


def cli(*args: str) -> int:
    return runner.invoke(app, ["diff", *args]).exit_code


def test_cli_exit_codes(tmp_path: Path) -> None:
    f16 = str(fixture_path("tiny-llama-untied-f16.gguf"))
    q8 = str(fixture_path("tiny-llama-untied-q8_0.gguf"))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all")
    assert cli(f16, q8) == 0
    assert cli(f16, q8, "--exit-code") == 1
    assert cli(f16, f16, "--exit-code", "--values", "all") == 0
    assert cli(f16, str(tmp_path / "missing.gguf"), "--exit-code") == 4
    assert cli(str(garbage), q8, "--exit-code") == 3
    assert cli(f16, q8, "everything", "--values") == 2  # a third file name
    assert cli(f16, q8, "--values=everything") == 2
    assert cli(f16, q8, "--sample", "3") == 2  # --sample needs --values


@pytest.mark.parametrize("words, expected", [
    (["--values", "all", "A", "B"], 20),  # every tensor of the tied model
    (["A", "--values", "all", "B"], 20),
    (["A", "B", "--values=all"], 20),
    (["--values", "A", "B"], 1),  # bare: the token embedding (tied: no output.weight)
    (["A", "B", "--values"], 1),
    (["A", "B", "--values", "embeddings"], 1),
])
def test_values_takes_an_optional_scope_anywhere(words: list[str], expected: int) -> None:
    files = {"A": str(fixture_path("tiny-llama-tied-f16.gguf")),
             "B": str(fixture_path("tiny-llama-tied-q8_0.gguf"))}
    result = runner.invoke(app, ["diff", *(files.get(word, word) for word in words), "--json"])
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)["values"]
    assert len(compared) == expected == len(gguf.GGUFReader(files["A"]).tensors if expected > 1
                                            else ["token_embd.weight"])


def test_cli_values_scope_word_and_markdown() -> None:
    result = runner.invoke(app, ["diff", str(fixture_path("tiny-llama-tied-f16.gguf")),
                                 str(fixture_path("tiny-llama-tied-q8_0.gguf")), "--values",
                                 "all", "--sample", "4", "--markdown"])
    assert result.exit_code == 0
    assert "### values: B against A, every tensor, 4 random rows per tensor, seed 0" in (
        result.stdout)
    assert "| blk.1.ffn\\_down.weight" in result.stdout  # markdown-escaped
