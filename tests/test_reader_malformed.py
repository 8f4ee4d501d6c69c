"""The named corpus of damaged and hostile GGUF files, generated here from a valid committed
fixture: each case states the exception class, a message fragment, the byte offset and the CLI
exit code (3 invalid, 0 valid).

Where every field sits comes from gguf-py's GGUFReader (an independent parser: each field's
offset and the size of each of its parts), never from the reader under test.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.errors import FormatError, TruncatedError
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import fixture_path, write_gguf

BASE = fixture_path("tiny-llama-untied-q8_0.gguf")
RUNNER = CliRunner()


@dataclass(frozen=True)
class Field:
    """One header entry as gguf-py sees it: where it starts and where each of its parts starts."""

    offset: int
    parts: tuple[int, ...]  # absolute offset of each part (length, bytes, type, value, ...)
    end: int


def _field(reader_field: gguf.ReaderField) -> Field:
    starts, position = [], int(reader_field.offset)
    for part in reader_field.parts:
        starts.append(position)
        position += part.nbytes
    return Field(int(reader_field.offset), tuple(starts), position)


class Layout:
    """The base fixture's bytes and the position of every header field (from gguf-py)."""

    def __init__(self, path: Path) -> None:
        oracle = gguf.GGUFReader(path)
        self.data = path.read_bytes()
        self.keys = {name: _field(f) for name, f in oracle.fields.items()
                     if not name.startswith("GGUF.")}
        self.key_order = list(self.keys)
        self.tensors = {t.name: _field(t.field) for t in oracle.tensors}
        self.tensor_order = [t.name for t in oracle.tensors]
        self.relative = {t.name: int(t.data_offset) - int(oracle.data_offset)
                         for t in oracle.tensors}
        self.data_offset = int(oracle.data_offset)

    # Parts of a tensor info: name length, name, n_dims, dims, type, offset.
    def tensor_part(self, name: str, part: int) -> int:
        return self.tensors[name].parts[part]

    # Parts of a scalar KV: key length, key, value type, value (string: length, bytes).
    def key_part(self, key: str, part: int) -> int:
        return self.keys[key].parts[part]

    def same_length_pair(self, names: list[str]) -> tuple[str, str]:
        """Two names of equal byte length (the earlier first), so one can be renamed in place."""
        seen: dict[int, str] = {}
        for name in names:
            if len(name.encode()) in seen:
                return seen[len(name.encode())], name
            seen[len(name.encode())] = name
        raise AssertionError("no two names of equal length in the fixture")


LAYOUT = Layout(BASE)
# A 2-D tensor whose data is followed by another tensor's: token_embd.weight in this fixture.
MIDDLE = next(name for name in LAYOUT.tensor_order[1:]
              if len(LAYOUT.tensors[name].parts) == 6 and LAYOUT.tensor_part(name, 4)
              - LAYOUT.tensor_part(name, 3) == 16)
MIDDLE_INDEX = LAYOUT.tensor_order.index(MIDDLE)


def _put(data: bytearray, offset: int, fmt: str, value: int) -> bytes:
    struct.pack_into("<" + fmt, data, offset, value)
    return bytes(data)


def _patch(offset: int, fmt: str, value: int) -> Callable[[bytearray], bytes]:
    return lambda data: _put(data, offset, fmt, value)


def _replace(offset: int, raw: bytes) -> Callable[[bytearray], bytes]:
    def mutate(data: bytearray) -> bytes:
        data[offset:offset + len(raw)] = raw
        return bytes(data)
    return mutate


def _duplicate_key() -> tuple[Callable[[bytearray], bytes], int, str]:
    first, second = LAYOUT.same_length_pair(LAYOUT.key_order)
    return _replace(LAYOUT.key_part(second, 1), first.encode()), LAYOUT.keys[second].offset, first


def _duplicate_tensor() -> tuple[Callable[[bytearray], bytes], int, str]:
    first, second = LAYOUT.same_length_pair(LAYOUT.tensor_order)
    return (_replace(LAYOUT.tensor_part(second, 1), first.encode()),
            LAYOUT.tensors[second].offset, first)


def _alignment(value: int) -> Callable[[bytearray], bytes]:
    """general.file_type (a uint32 key of the same length) renamed to general.alignment."""
    def mutate(data: bytearray) -> bytes:
        key_at = LAYOUT.key_part("general.file_type", 1)
        data[key_at:key_at + 17] = b"general.alignment"
        return _put(data, LAYOUT.key_part("general.file_type", 3), "I", value)
    return mutate


def _shared_offset() -> tuple[Callable[[bytearray], bytes], int, str]:
    """The later of two tensors in the header gets the earlier one's data offset."""
    earlier, later = LAYOUT.tensor_order[0], LAYOUT.tensor_order[1]
    return (_patch(LAYOUT.tensor_part(later, 5), "Q", LAYOUT.relative[earlier]),
            LAYOUT.tensors[later].offset, f"{later} offset")


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[bytearray], bytes]
    error: type[Exception] | None  # None: the file is valid
    fragment: str
    offset: int | None
    field: str | None
    exit_code: int


_dup_key, _dup_key_offset, _dup_key_name = _duplicate_key()
_dup_tensor, _dup_tensor_offset, _dup_tensor_name = _duplicate_tensor()
_shared, _shared_at, _shared_field = _shared_offset()
_arch_value = LAYOUT.key_part("general.architecture", 3)  # the value's string length
_name_bytes = LAYOUT.key_part("general.name", 4)
_tokens = LAYOUT.keys["tokenizer.ggml.tokens"]
_token_100 = _tokens.parts[5 + 2 * 100]  # parts: ..., count, then (length, bytes) per string
_to_end = len(LAYOUT.data) - _token_100 - 8 + 1  # one byte more than the file holds
_last = max(LAYOUT.tensor_order, key=lambda name: LAYOUT.relative[name])
_past_end = -(-len(LAYOUT.data) // 32) * 32 - LAYOUT.data_offset  # aligned, past the end

CASES = [
    Case("bad magic", _replace(0, b"GGML"), FormatError, "not a GGUF file", 0, "magic", 3),
    Case("version 0", _patch(4, "I", 0), FormatError, "unsupported GGUF version 0", 4,
         "version", 3),
    Case("version 1", _patch(4, "I", 1), FormatError, "unsupported GGUF version 1", 4,
         "version", 3),
    Case("version 99", _patch(4, "I", 99), FormatError, "unsupported GGUF version 99", 4,
         "version", 3),
    Case("tensor count beyond the file", _patch(8, "Q", 1 << 40), FormatError,
         "tensor count 1099511627776 exceeds", 8, "tensor count", 3),
    Case("kv count beyond the file", _patch(16, "Q", 1 << 40), FormatError,
         "metadata count 1099511627776 exceeds", 16, "metadata kv count", 3),
    Case("key length past the end", _patch(24, "Q", 1 << 40), TruncatedError,
         "string length 1099511627776 exceeds", 24, "kv[0].key", 3),
    Case("string value length past the end", _patch(_arch_value, "Q", 1 << 40), TruncatedError,
         "string length 1099511627776 exceeds", _arch_value, "general.architecture", 3),
    Case("array count past the end", _patch(_tokens.parts[4], "Q", 1 << 40), TruncatedError,
         "array count 1099511627776 needs more", _tokens.parts[4], "tokenizer.ggml.tokens", 3),
    Case("vocabulary string length past the end", _patch(_token_100, "Q", 1 << 40),
         TruncatedError, "string length 1099511627776 exceeds", _token_100,
         "tokenizer.ggml.tokens[100]", 3),
    Case("vocabulary string ending one byte past the file", _patch(_token_100, "Q", _to_end),
         TruncatedError, f"string length {_to_end} exceeds", _token_100,
         "tokenizer.ggml.tokens[100]", 3),
    Case("invalid UTF-8 in a key", _replace(LAYOUT.key_part("general.name", 1) + 3, b"\xff"),
         FormatError, "invalid UTF-8", LAYOUT.key_part("general.name", 1) + 3, "kv[1].key", 3),
    Case("invalid UTF-8 in a value", _replace(_name_bytes + 2, b"\xc3\x28"), FormatError,
         "invalid UTF-8", _name_bytes + 2, "general.name", 3),
    Case("invalid UTF-8 in a tensor name", _replace(LAYOUT.tensor_part(MIDDLE, 1), b"\x80"),
         FormatError, "invalid UTF-8", LAYOUT.tensor_part(MIDDLE, 1),
         f"tensor[{MIDDLE_INDEX}].name", 3),
    Case("unknown metadata value type",
         _patch(LAYOUT.key_part("llama.context_length", 2), "I", 13), FormatError,
         "unknown metadata value type 13", LAYOUT.key_part("llama.context_length", 2),
         "llama.context_length value type", 3),
    Case("unknown array item type", _patch(_tokens.parts[3], "I", 99), FormatError,
         "unknown metadata value type 99", _tokens.parts[3],
         "tokenizer.ggml.tokens item type", 3),
    Case("unknown tensor type (still reports)", _patch(LAYOUT.tensor_part(MIDDLE, 4), "I", 4),
         None, "UNKNOWN(4)", None, None, 0),
    Case("n_dims 5", _patch(LAYOUT.tensor_part(MIDDLE, 2), "I", 5), FormatError,
         "n_dims 5 exceeds 4", LAYOUT.tensor_part(MIDDLE, 2), f"{MIDDLE} n_dims", 3),
    Case("zero dimension", _patch(LAYOUT.tensor_part(MIDDLE, 3), "Q", 0), FormatError,
         "ne[0] = 0 is not a positive int64", LAYOUT.tensor_part(MIDDLE, 3), f"{MIDDLE} ne[0]",
         3),
    Case("dimension beyond int64", _patch(LAYOUT.tensor_part(MIDDLE, 3) + 8, "Q", 1 << 63),
         FormatError, "ne[1] = 9223372036854775808 is not a positive int64",
         LAYOUT.tensor_part(MIDDLE, 3) + 8, f"{MIDDLE} ne[1]", 3),
    Case("element count beyond int64",
         lambda data: _put(bytearray(_put(data, LAYOUT.tensor_part(MIDDLE, 3), "Q", 1 << 32)),
                           LAYOUT.tensor_part(MIDDLE, 3) + 8, "Q", 1 << 32),
         FormatError, "element count 18446744073709551616 overflows int64",
         LAYOUT.tensors[MIDDLE].offset, MIDDLE, 3),
    Case("misaligned tensor offset",
         _patch(LAYOUT.tensor_part(MIDDLE, 5), "Q", LAYOUT.relative[MIDDLE] + 1), FormatError,
         "is not a multiple of the alignment 32", LAYOUT.tensors[MIDDLE].offset,
         f"{MIDDLE} offset", 3),
    Case("overlapping tensor data", _shared, FormatError, "tensor data overlaps", _shared_at,
         _shared_field, 3),
    Case("tensor offset past the end", _patch(LAYOUT.tensor_part(_last, 5), "Q", _past_end),
         FormatError, "runs past the end of the file", LAYOUT.tensors[_last].offset,
         f"{_last} offset", 3),
    Case("duplicate key", _dup_key, FormatError, f"duplicate metadata key {_dup_key_name!r}",
         _dup_key_offset, _dup_key_name, 3),
    Case("duplicate tensor name", _dup_tensor, FormatError,
         f"duplicate tensor name {_dup_tensor_name!r}", _dup_tensor_offset, _dup_tensor_name, 3),
    Case("alignment 0", _alignment(0), FormatError, "power-of-two uint32, got 0",
         LAYOUT.keys["general.file_type"].offset, "general.alignment", 3),
    Case("alignment 48 (not a power of two)", _alignment(48), FormatError,
         "power-of-two uint32, got 48", LAYOUT.keys["general.file_type"].offset,
         "general.alignment", 3),
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    case: Case = request.param
    path = tmp_path / "case.gguf"
    path.write_bytes(case.mutate(bytearray(LAYOUT.data)))
    return case, path


def test_reader_names_class_message_offset_and_field(case_file: tuple[Case, Path]) -> None:
    case, path = case_file
    if case.error is None:
        # the only such case: an unknown tensor type id is kept and shown, not refused
        (tensor,) = [t for t in read_gguf(path).tensors if t.name == MIDDLE]
        assert tensor.type_id == 4 and tensor.type_name == case.fragment
        return
    with pytest.raises(FormatError) as caught:
        read_gguf(path)
    error = caught.value
    assert type(error) is case.error
    assert case.fragment in error.message
    assert (error.offset, error.field, error.path) == (case.offset, case.field, str(path))


def test_cli_prints_one_line_and_exits_with_the_case_code(case_file: tuple[Case, Path]) -> None:
    case, path = case_file
    result = RUNNER.invoke(app, [str(path), "--tensors"])
    assert result.exit_code == case.exit_code, result.output
    if case.error is None:
        assert case.fragment in result.stdout
        return
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: ") and case.fragment in lines[0]
    assert lines[0].endswith(f" at byte {case.offset} ({case.field})")


def test_validate_agrees_with_the_reader(case_file: tuple[Case, Path]) -> None:
    case, path = case_file
    result = RUNNER.invoke(app, ["validate", str(path)])
    assert result.exit_code == case.exit_code, result.output
    if case.error is not None:
        assert case.fragment in result.stdout and str(case.offset) in result.stdout


def test_traceback_flag_shows_the_stack(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(CASES[0].mutate(bytearray(LAYOUT.data)))
    result = RUNNER.invoke(app, [str(path), "--traceback"])
    assert result.exit_code == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith(f"error: {path}: not a GGUF file")


# ---- truncation at every field boundary of the header -------------------------------------------

def _boundaries() -> list[tuple[int, int]]:
    """(cut, start of the entry being cut) for every part boundary of every header field."""
    cuts = [(offset, 0) for offset in (0, 4, 8, 16)]  # inside magic, version and the two counts
    for entry in [*LAYOUT.keys.values(), *LAYOUT.tensors.values()]:
        cuts += [(part, entry.offset) for part in entry.parts[1:]] + [(entry.offset, 0)]
    return sorted(set(cuts))


def _header_count_cannot_fit(error: FormatError, cut: int) -> bool:
    """The header's own count check fires first when the cut leaves too few bytes for the
    smallest possible entries (a KV: 8-byte key length, 4-byte type, 1-byte value; a tensor
    info: 8-byte name length, 4-byte n_dims, 4-byte type, 8-byte offset)."""
    n_tensors, n_kv = len(LAYOUT.tensor_order), len(LAYOUT.key_order)
    return (error.field == "metadata kv count" and n_kv * 13 > cut - 24) or (
        error.field == "tensor count" and n_tensors * 24 > cut - 24)


def test_truncation_at_every_field_boundary_is_reported_inside_the_cut_entry(
        tmp_path: Path) -> None:
    cuts = _boundaries()
    assert len(cuts) > 900  # header, 18 keys (384 tokens, scores, types), 21 tensor infos
    for cut, entry_start in cuts:
        error = _read_prefix(tmp_path, cut)
        assert isinstance(error, FormatError), cut
        assert any(word in error.message for word in ("ends", "exceeds", "needs")), error
        # The complaint points into the entry that was cut (or its count), never past the cut.
        assert entry_start <= error.offset <= cut or _header_count_cannot_fit(error, cut), (
            cut, entry_start, error)


def test_truncation_inside_padding_and_data(tmp_path: Path) -> None:
    last_info_end = max(field.end for field in LAYOUT.tensors.values())
    assert last_info_end < LAYOUT.data_offset  # this fixture has padding before its data
    error = _read_prefix(tmp_path, last_info_end)
    assert type(error) is TruncatedError and "file ends before the tensor data" in error.message
    error = _read_prefix(tmp_path, LAYOUT.data_offset + 1)
    assert type(error) is FormatError and "runs past the end of the file" in error.message


def _read_prefix(folder: Path, length: int) -> FormatError | None:
    """Read the first ``length`` bytes of the base fixture as a file; the error raised, if any."""
    path = folder / "cut.gguf"
    path.write_bytes(LAYOUT.data[:length])
    try:
        read_gguf(path)
    except FormatError as error:
        return error
    return None


def test_truncated_file_at_cli_exits_3(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(LAYOUT.data[:LAYOUT.key_part("tokenizer.ggml.scores", 1)])
    result = RUNNER.invoke(app, [str(path)])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}: ") and " at byte " in result.stderr


# ---- valid but unusual: big-endian, offsets beyond 4 GiB --------------------------------------

def _write_tiny(path: Path, endianess: gguf.GGUFEndian) -> None:
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endianess)
    writer.add_name("big-endian twin")
    writer.add_uint32("llama.embedding_length", 64)
    writer.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_array("llama.attention.head_count_kv", [2, 2, 1])
    writer.add_token_list(["<unk>", "hello", "w\u00f6rld"])
    values = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) / 7
    writer.add_tensor("token_embd.weight", values)
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float16))
    write_gguf(writer)


def test_big_endian_file_reads_like_its_little_endian_twin(tmp_path: Path) -> None:
    big, little = tmp_path / "big.gguf", tmp_path / "little.gguf"
    _write_tiny(big, gguf.GGUFEndian.BIG)
    _write_tiny(little, gguf.GGUFEndian.LITTLE)
    assert big.read_bytes()[4:8] == struct.pack(">I", 3)  # really big-endian on disk
    ours_big, ours_little = read_gguf(big), read_gguf(little)
    assert ours_big.byte_order == "big" and ours_little.byte_order == "little"
    for key, entry in ours_little.metadata.items():
        other = ours_big.metadata[key].value
        if hasattr(entry.value, "preview"):
            assert other.preview == entry.value.preview and other.count == entry.value.count
        else:
            assert other == entry.value
    assert [(t.name, t.ne, t.type_id, t.n_bytes, t.offset) for t in ours_big.tensors] == [
        (t.name, t.ne, t.type_id, t.n_bytes, t.offset) for t in ours_little.tensors]
    for arguments in (["--metadata", "--tensors"], ["--json"]):
        result = RUNNER.invoke(app, [str(big), *arguments])
        assert result.exit_code == 0, result.output
    result = RUNNER.invoke(app, ["validate", "--data", str(big)])
    assert result.exit_code == 0, result.output
    assert "NaN / Inf values         0 / 0" in result.stdout


def test_offsets_beyond_4_gib_in_a_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "sparse.gguf"
    big_shape = (1 << 20, 1152)  # f32: 4.5 GiB, so the next tensor starts past 4 GiB
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor_info("token_embd.weight", big_shape, np.dtype(np.float32),
                           4 * big_shape[0] * big_shape[1])
    writer.add_tensor_info("output_norm.weight", (1152,), np.dtype(np.float32), 4 * 1152)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header_end = path.stat().st_size
    data_offset = -(-header_end // 32) * 32
    first_bytes = 4 * big_shape[0] * big_shape[1]
    second_offset = data_offset + first_bytes  # already a multiple of 32
    with open(path, "r+b") as handle:
        handle.truncate(second_offset + 4 * 1152)  # a hole: no disk blocks for the data
    gguf_file = read_gguf(path)
    second = gguf_file.tensor("output_norm.weight")
    assert second.offset == second_offset > 1 << 32
    assert gguf_file.tensor("token_embd.weight").n_bytes == first_bytes
    assert RUNNER.invoke(app, [str(path), "--tensors"]).exit_code == 0
    result = RUNNER.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    os.remove(path)


def test_a_huge_key_is_named_by_position_so_the_error_stays_one_short_line(
        tmp_path: Path) -> None:
    path = tmp_path / "huge-key.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("k" * 5000, 1)
    write_gguf(writer)
    data = bytearray(path.read_bytes())
    type_at = data.index(b"k" * 5000) + 5000
    struct.pack_into("<I", data, type_at, 13)
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError) as caught:
        read_gguf(path)
    assert caught.value.field == "kv[1] value type" and caught.value.offset == type_at
    assert len(str(caught.value)) < 200


# ---- bad UTF-8 inside a string array: lazy on the header-only path, an error in validate ------

@pytest.mark.parametrize("item", [3, 100], ids=["in-the-preview", "past-the-preview"])
def test_invalid_utf8_in_a_vocabulary_item(tmp_path: Path, item: int) -> None:
    # The header-only path skips vocabulary items by length (it must stay lazy on a 262k-token
    # vocabulary), so the file still reports; validate decodes every item and names this one at
    # its byte, as it names a bad scalar string. Where the item's bytes sit: gguf-py's parse.
    bad_byte = _tokens.parts[5 + 2 * item + 1]  # parts: ..., count, then (length, bytes) each
    path = tmp_path / "bad-token.gguf"
    path.write_bytes(_replace(bad_byte, b"\xff")(bytearray(LAYOUT.data)))
    read_gguf(path)
    assert RUNNER.invoke(app, [str(path)]).exit_code == 0
    listing = RUNNER.invoke(app, [str(path), "--metadata", "--full", "--json"])
    assert listing.exit_code == 0, listing.output  # shown escaped, not a crash
    result = RUNNER.invoke(app, ["validate", "--json", str(path)])
    assert result.exit_code == 3, result.output
    assert json.loads(result.stdout)["problems"] == [{
        "severity": "error", "kind": "format", "message": "invalid UTF-8 in string "
        "(invalid start byte)", "offset": bad_byte, "field": f"tokenizer.ggml.tokens[{item}]",
        "file": str(path)}]
