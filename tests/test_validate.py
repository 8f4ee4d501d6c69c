"""``gguf-inspect validate``: every problem listed with its offset, llama.cpp's own loader as the
oracle for its load rules, and ``--data`` against NaN/Inf values planted at known positions."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.reports.validate import ERROR, WARNING, validate_file
from gguf_inspect.cli import app
from gguf_inspect.core.errors import FormatError
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import fixture_path, write_gguf

RUNNER = CliRunner()
BASE = fixture_path("tiny-llama-untied-q8_0.gguf")


def llama_cpp_accepts(path: Path) -> bool:
    """Whether llama.cpp's own loader opens the file (vocab only: header checks, no weights)."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        return False
    llama_cpp.llama_model_free(model)
    return True


def _tensor_fields(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor info's part offsets (name length, name, n_dims, dims, type, offset): gguf-py."""
    fields = {}
    for tensor in gguf.GGUFReader(path).tensors:
        starts, position = [], int(tensor.field.offset)
        for part in tensor.field.parts:
            starts.append(position)
            position += part.nbytes
        fields[tensor.name] = tuple(starts)
    return fields


def test_every_fixture_is_valid_and_fully_decoded(any_fixture: Path) -> None:
    report = validate_file(str(any_fixture), data=True)
    assert report.valid and report.problems == (), report.problems
    oracle = gguf.GGUFReader(any_fixture)
    assert [check.name for check in report.tensors] == [t.name for t in oracle.tensors]
    assert all(check.checked and check.nan == check.inf == 0 for check in report.tensors)
    assert sum(c.n_elements for c in report.tensors) == sum(int(t.n_elements)
                                                            for t in oracle.tensors)
    assert llama_cpp_accepts(any_fixture)  # the oracle agrees: llama.cpp loads it


def test_every_problem_is_listed_not_only_the_first(tmp_path: Path) -> None:
    fields = _tensor_fields(BASE)
    names = list(fields)
    data = bytearray(BASE.read_bytes())
    oracle = gguf.GGUFReader(BASE)
    name_value = oracle.fields["general.name"]
    value_bytes = int(name_value.offset) + sum(p.nbytes for p in name_value.parts[:4])
    data[value_bytes] = 0xFF  # 1: invalid UTF-8 in a value
    # 2: a duplicate tensor name (blk.0.attn_q.weight renamed to blk.0.attn_k.weight)
    assert len("blk.0.attn_q.weight") == len("blk.0.attn_k.weight")
    at = fields["blk.0.attn_q.weight"][1]
    data[at:at + 19] = b"blk.0.attn_k.weight"
    # 3: a misaligned data offset on the last tensor in the header
    last = names[-1]
    relative = oracle.tensors[-1].data_offset - oracle.data_offset
    struct.pack_into("<Q", data, fields[last][5], relative + 8)
    path = tmp_path / "many.gguf"
    path.write_bytes(bytes(data))

    with pytest.raises(FormatError) as caught:  # the default stays raise-on-first
        read_gguf(path)
    assert caught.value.offset == value_bytes

    result = RUNNER.invoke(app, ["validate", "--json", str(path)])
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    errors = [(p["offset"], p["field"]) for p in document["problems"] if p["severity"] == ERROR]
    assert (value_bytes, "general.name") in errors
    renamed = next(t for t in oracle.tensors if t.name == "blk.0.attn_q.weight")
    assert (int(renamed.field.offset), "blk.0.attn_k.weight") in errors
    assert (int(oracle.tensors[-1].field.offset), f"{last} offset") in errors
    assert document["valid"] is False and document["n_errors"] >= 3
    assert not llama_cpp_accepts(path)


def test_a_cut_file_lists_the_fatal_problem_and_stays_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(BASE.read_bytes()[:5000])
    result = RUNNER.invoke(app, ["validate", "--json", str(path)])
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["header_read"] is False and document["valid"] is False
    assert document["problems"][-1]["kind"] == "truncated"
    table = RUNNER.invoke(app, ["validate", str(path)])
    assert table.exit_code == 3 and "INVALID (the header could not be read to the end)" in (
        table.stdout)


def test_missing_file_is_an_io_error() -> None:
    result = RUNNER.invoke(app, ["validate", "/nonexistent/model.gguf"])
    assert result.exit_code == 4
    assert result.stderr.startswith("error: /nonexistent/model.gguf: cannot open")


def test_packed_order_broken_is_a_warning_and_llama_cpp_agrees(tmp_path: Path) -> None:
    # Two same-size tensors trade data offsets: valid GGUF, but llama.cpp insists on each
    # tensor's data following the previous one's, and refuses the file.
    oracle = gguf.GGUFReader(BASE)
    first, second = (t for t in oracle.tensors
                     if t.name in ("blk.0.attn_output.weight", "blk.0.attn_q.weight"))
    assert first.n_bytes == second.n_bytes
    fields = _tensor_fields(BASE)
    data = bytearray(BASE.read_bytes())
    base = oracle.data_offset
    struct.pack_into("<Q", data, fields[first.name][5], second.data_offset - base)
    struct.pack_into("<Q", data, fields[second.name][5], first.data_offset - base)
    path = tmp_path / "swapped.gguf"
    path.write_bytes(bytes(data))
    report = validate_file(str(path))
    assert report.valid
    warning = next(p for p in report.problems if p.severity == WARNING)
    assert warning.field == f"{first.name} offset"
    assert f"llama.cpp expects it at byte {first.data_offset}" in warning.message
    assert RUNNER.invoke(app, ["validate", str(path)]).exit_code == 0
    assert not llama_cpp_accepts(path)


def test_unknown_tensor_type_is_a_warning_and_not_decoded(tmp_path: Path) -> None:
    fields = _tensor_fields(BASE)
    data = bytearray(BASE.read_bytes())
    struct.pack_into("<I", data, fields["token_embd.weight"][4], 4)
    path = tmp_path / "unknown.gguf"
    path.write_bytes(bytes(data))
    result = RUNNER.invoke(app, ["validate", "--data", "--json", str(path)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [p["field"] for p in document["problems"]] == ["token_embd.weight type"]
    check = next(t for t in document["data"]["tensors"] if t["name"] == "token_embd.weight")
    assert check["type"] == "UNKNOWN(4)" and check["decoded"] is False


# ---- --data: NaN and Inf planted at known places ------------------------------------------------

F16_NAN = 0x7E00


def _write_poisoned(path: Path) -> dict[str, tuple[int, int, int]]:
    """A file with NaN/Inf planted; returns tensor -> (expected NaN, expected Inf, first row)."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    f32 = rng.standard_normal((8, 64)).astype(np.float32)
    f32[5, [1, 7, 9]] = np.nan
    f16 = rng.standard_normal((4, 64)).astype(np.float16)
    f16[2, 3], f16[3, 0] = np.inf, -np.inf
    clean = rng.standard_normal((4, 64)).astype(np.float32)
    q8 = gguf.quants.quantize(rng.standard_normal((4, 64)).astype(np.float32),
                              gguf.GGMLQuantizationType.Q8_0)
    # Q8_0 blocks are 34 bytes: an f16 scale then 32 int8 values. A NaN scale in row 1's second
    # block turns its 32 values into NaN when dequantized (and llama.cpp's check flags it).
    struct.pack_into("<H", q8, 1 * 68 + 34, F16_NAN)
    writer.add_tensor("f32.weight", f32)
    writer.add_tensor("f16.weight", f16)
    writer.add_tensor("clean.weight", clean)
    writer.add_tensor("q8.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    write_gguf(writer)
    return {"f32.weight": (3, 0, 5), "f16.weight": (0, 2, 2), "q8.weight": (32, 0, 1)}


def test_data_check_counts_planted_nan_and_inf(tmp_path: Path) -> None:
    path = tmp_path / "poisoned.gguf"
    expected = _write_poisoned(path)
    result = RUNNER.invoke(app, ["validate", "--data", "--json", str(path)])
    assert result.exit_code == 3, result.output
    document = json.loads(result.stdout)
    by_name = {t["name"]: t for t in document["data"]["tensors"]}
    for name, (nan, inf, first_row) in expected.items():
        assert (by_name[name]["nan"], by_name[name]["inf"], by_name[name]["first_bad_row"]) == (
            nan, inf, first_row), name
    assert by_name["clean.weight"]["nan"] == by_name["clean.weight"]["inf"] == 0
    assert document["data"]["nan"] == 35 and document["data"]["inf"] == 2
    oracle = {t.name: t for t in gguf.GGUFReader(path).tensors}
    data_problems = {p["field"]: p["offset"] for p in document["problems"] if p["kind"] == "data"}
    assert data_problems == {
        "f32.weight": int(oracle["f32.weight"].data_offset) + 5 * 64 * 4,
        "f16.weight": int(oracle["f16.weight"].data_offset) + 2 * 64 * 2,
        "q8.weight": int(oracle["q8.weight"].data_offset) + 1 * 2 * 34,
    }
    # Without --data the same file is structurally valid.
    assert RUNNER.invoke(app, ["validate", str(path)]).exit_code == 0


def test_data_check_in_small_chunks_finds_the_same(tmp_path: Path) -> None:
    path = tmp_path / "poisoned.gguf"
    _write_poisoned(path)
    whole = validate_file(str(path), data=True)
    chunked = validate_file(str(path), data=True, chunk_bytes=256)  # one row per chunk
    assert whole.tensors == chunked.tensors


def test_progress_goes_to_stderr_and_reaches_100_percent() -> None:
    result = RUNNER.invoke(app, ["validate", "--data", str(BASE)])
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 11  # not a terminal: one line per 10% at most
    assert lines[-1].startswith("checking tensor data: 100.00%")
    assert "checking" not in result.stdout


def test_progress_callback_sees_every_byte() -> None:
    seen: list[tuple[int, int]] = []
    validate_file(str(BASE), data=True, progress=lambda done, total, name: seen.append(
        (done, total)))
    total = sum(int(t.n_bytes) for t in gguf.GGUFReader(BASE).tensors)
    assert seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_table_and_markdown_list_the_problems(tmp_path: Path) -> None:
    path = tmp_path / "poisoned.gguf"
    _write_poisoned(path)
    table = RUNNER.invoke(app, ["validate", "--data", str(path)])
    assert "INVALID" in table.stdout and "3 NaN and 0 Inf value(s), the first in row 5" in (
        table.stdout)
    markdown = RUNNER.invoke(app, ["validate", "--data", "--markdown", str(path)])
    assert markdown.exit_code == 3 and "### problems" in markdown.stdout


def test_missing_architecture_is_a_warning(tmp_path: Path) -> None:
    # A GGUFWriter file with no architecture key: valid GGUF, llama.cpp cannot load it.
    path = tmp_path / "noarch.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("x", np.zeros(32, dtype=np.float32))
    write_gguf(writer)
    data = bytearray(path.read_bytes())
    at = data.index(b"general.architecture")
    data[at:at + 20] = b"general.architecturX"
    path.write_bytes(bytes(data))
    report = validate_file(str(path))
    assert report.valid and [p.field for p in report.problems] == ["general.architecture"]
    assert not llama_cpp_accepts(path)


def _write_many_tensors(path: Path, count: int, name_length: int = 8) -> None:
    writer = gguf.GGUFWriter(str(path), "llama")
    for index in range(count):
        writer.add_tensor(f"t{index}".ljust(name_length, "x"), np.zeros(8, dtype=np.float32))
    write_gguf(writer)


def test_collecting_stops_after_100_problems(tmp_path: Path) -> None:
    path = tmp_path / "many.gguf"
    _write_many_tensors(path, 150)
    data = bytearray(path.read_bytes())
    for fields in _tensor_fields(path).values():  # every data offset moved off alignment
        offset = struct.unpack_from("<Q", data, fields[5])[0]
        struct.pack_into("<Q", data, fields[5], offset + 4)
    path.write_bytes(bytes(data))
    report = validate_file(str(path))
    assert len(report.problems) == 101 and not report.header_read
    assert report.problems[-1].message == "100 problems found; not looking further"


def test_long_tensor_names_are_a_llama_cpp_warning(tmp_path: Path) -> None:
    path = tmp_path / "long.gguf"
    _write_many_tensors(path, 2, name_length=64)  # llama.cpp: names must be < 64 bytes
    report = validate_file(str(path))
    assert report.valid
    assert [p.message for p in report.problems if p.severity == WARNING] == [
        "tensor name is 64 bytes, llama.cpp allows at most 63"] * 2
    assert not llama_cpp_accepts(path)


def test_bad_vocabulary_items_are_errors_listed_up_to_ten_then_counted(tmp_path: Path) -> None:
    # 25 of 40 tokens are not UTF-8: the first ten are listed at their bytes (gguf-py's parse
    # locates them), the other fifteen counted in one more error, so a broken vocabulary cannot
    # bury the rest of the list.
    path = tmp_path / "bad-vocab.gguf"
    tokens = [f"ok{i}".encode() if i % 8 in (0, 3, 6) else b"x\xc3" for i in range(40)]
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_tensor("token_embd.weight", np.zeros((40, 32), dtype=np.float32))
    write_gguf(writer)
    field = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"]
    starts, position = [], int(field.offset)
    for part in field.parts:
        starts.append(position)
        position += part.nbytes
    bad = [(index, starts[part]) for index, part in enumerate(field.data)
           if bytes(field.parts[part]) == b"x\xc3"]
    assert len(bad) == 25
    report = validate_file(str(path))
    assert not report.valid and all(p.severity == ERROR and p.kind == "format"
                                    for p in report.problems)
    listed = [(p.field, p.offset) for p in report.problems[:10]]
    # The cut-off two-byte sequence fails at its lead byte, one past the 'x'.
    assert listed == [(f"tokenizer.ggml.tokens[{index}]", at + 1) for index, at in bad[:10]]
    assert [p.message for p in report.problems[10:]] == [
        "15 more item(s) with invalid UTF-8 (25 in all)"]
    assert report.problems[10].field == "tokenizer.ggml.tokens"
    assert {p.file for p in report.problems} == {str(path)}
    table = RUNNER.invoke(app, ["validate", str(path)])
    assert table.exit_code == 3 and "tokenizer.ggml.tokens[1]" in table.stdout
    header = next(line for line in table.stdout.splitlines() if line.startswith("severity"))
    assert header.split() == ["severity", "kind", "at", "byte", "field", "problem"]  # one file


def _random_blocks(rng: np.random.Generator, qtype: gguf.GGMLQuantizationType, n_rows: int,
                   n_cols: int) -> np.ndarray:
    """Random valid blocks: any quant bits, every f16 scale finite (from gguf-py's block
    layout: ``SCALE`` below names where the scales are)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_rows * n_cols // block, size), dtype=np.uint8)
    for offset in SCALE[qtype]:
        blocks[:, offset:offset + 2] = rng.uniform(1e-3, 1e-2, (len(blocks), 1)).astype(
            np.float16).view(np.uint8)
    return blocks.reshape(n_rows, -1)


Q = gguf.GGMLQuantizationType
# f16 scale offsets inside a block, from ggml-common.h (block_q4_K: d, dmin first; block_q6_K:
# ql[128], qh[64], scales[16], then d; block_q5_0: d first).
SCALE = {Q.Q4_K: (0, 2), Q.Q6_K: (208,), Q.Q5_0: (0,), Q.Q8_0: (0,)}


def test_nan_and_inf_counts_match_numpy_over_gguf_py_dequantization(tmp_path: Path) -> None:
    """NaN and Inf scales (and plain values) planted in several types: the counts and first bad
    rows equal numpy's over gguf-py's dequantization of the whole tensor."""
    rng = np.random.default_rng(3)
    tensors = {}
    for qtype, n_cols in ((Q.Q4_K, 512), (Q.Q6_K, 256), (Q.Q5_0, 64), (Q.Q8_0, 64)):
        raw = _random_blocks(rng, qtype, 40, n_cols)
        tensors[qtype.name.lower() + ".weight"] = (raw, qtype)
    _, size = gguf.GGML_QUANT_SIZES[Q.Q4_K]
    q4k = tensors["q4_k.weight"][0]
    struct.pack_into("<H", q4k, 7 * 2 * size, 0x7C00)  # +Inf d: Inf or NaN (Inf x 0) values
    struct.pack_into("<H", q4k, 30 * 2 * size + size + 2, F16_NAN)  # NaN dmin
    q6k = tensors["q6_k.weight"][0]
    struct.pack_into("<H", q6k, 12 * 210 + 208, 0xFC00)  # -Inf d
    q5 = tensors["q5_0.weight"][0]
    struct.pack_into("<H", q5, 25 * 44 + 22, F16_NAN)  # row 25, second block
    f16 = rng.standard_normal((40, 64)).astype(np.float16)
    f16[33, 5], f16[38, 1] = np.nan, -np.inf
    path = tmp_path / "scales.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    for name, (raw, qtype) in tensors.items():
        writer.add_tensor(name, raw, raw_dtype=qtype)
    writer.add_tensor("f16.weight", f16)
    write_gguf(writer)
    for chunk_bytes in (None, 4096):
        report = validate_file(str(path), data=True, chunk_bytes=chunk_bytes)
        checks = {check.name: check for check in report.tensors}
        for tensor in gguf.GGUFReader(path).tensors:
            with np.errstate(invalid="ignore", over="ignore"):  # the oracle meets the NaNs too
                values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(
                    -1, int(tensor.shape[0]))
            bad = np.isnan(values) | np.isinf(values)
            expected = (int(np.isnan(values).sum()), int(np.isinf(values).sum()),
                        int(np.flatnonzero(bad.any(axis=1))[0]) if bad.any() else None)
            check = checks[tensor.name]
            assert (check.nan, check.inf, check.first_bad_row) == expected, tensor.name
            assert check.checked
    assert checks["q4_k.weight"].nan > 0 and checks["q6_k.weight"].inf > 0
    assert checks["q5_0.weight"].nan == 32 and checks["q8_0.weight"].nan == 0
