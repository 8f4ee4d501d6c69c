"""The reader against gguf-py's GGUFReader (an independent implementation) on every fixture,
and against first principles (block size x elements) for sizes."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from gguf_inspect.core.errors import FormatError, SourceError, TruncatedError
from gguf_inspect.core.model import ArrayValue
from gguf_inspect.gguf.cursor import MAX_CHUNK
from gguf_inspect.gguf.reader import (
    invalid_strings,
    read_array,
    read_gguf_source,
)
from gguf_inspect.gguf.open import open_source, read_gguf
from gguf_inspect.gguf.source import LocalFileSource
from tests.conftest import write_gguf


def _oracle_value(field: gguf.ReaderField) -> object:
    """A field's value as gguf-py decodes it (strings and arrays included)."""
    value_type = field.types[0]
    if value_type == gguf.GGUFValueType.ARRAY:
        item_type = field.types[1]
        if item_type == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="backslashreplace")
                    for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if value_type == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


def test_every_key_matches_gguf_py(any_fixture: Path) -> None:
    oracle = gguf.GGUFReader(any_fixture)
    ours = read_gguf(any_fixture)
    oracle_keys = [name for name in oracle.fields if not name.startswith("GGUF.")]
    assert list(ours.metadata) == oracle_keys
    with open_source(any_fixture) as source:
        for key in oracle_keys:
            expected = _oracle_value(oracle.fields[key])
            value = ours.value(key)
            if isinstance(value, ArrayValue):
                assert value.count == len(expected)
                assert read_array(source, value) == pytest.approx(expected)
            elif isinstance(value, float):
                assert value == pytest.approx(expected)
            else:
                assert value == expected


def test_every_tensor_matches_gguf_py(any_fixture: Path) -> None:
    oracle = gguf.GGUFReader(any_fixture)
    ours = read_gguf(any_fixture)
    assert [t.name for t in ours.tensors] == [t.name for t in oracle.tensors]
    for mine, theirs in zip(ours.tensors, oracle.tensors):
        assert mine.ne == tuple(int(d) for d in theirs.shape)  # gguf-py's shape is ggml's ne
        assert mine.type_id == int(theirs.tensor_type)
        assert mine.offset == theirs.data_offset
        assert mine.n_bytes == theirs.n_bytes
        assert mine.n_elements == theirs.n_elements


def test_header_facts_match_gguf_py(any_fixture: Path) -> None:
    oracle = gguf.GGUFReader(any_fixture)
    ours = read_gguf(any_fixture)
    assert ours.version == oracle.fields["GGUF.version"].parts[-1][0]
    assert ours.alignment == oracle.alignment
    assert ours.data_offset == oracle.data_offset
    assert ours.file_size == any_fixture.stat().st_size
    assert ours.byte_order == "little"


def test_sizes_follow_block_arithmetic(any_fixture: Path) -> None:
    for tensor in read_gguf(any_fixture).tensors:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.type_id)]
        assert tensor.n_bytes == tensor.n_elements // block * size


def test_small_numeric_arrays_are_decoded_and_large_ones_stay_lazy(tmp_path: Path) -> None:
    path = tmp_path / "arrays.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("llama.attention.head_count_kv", [8, 8, 4, 4])
    writer.add_array("big", list(range(5000)))
    writer.add_array("words", [f"w{i}" for i in range(3000)])
    write_gguf(writer)
    gguf_file = read_gguf(path)
    assert gguf_file.arch_value("attention.head_count_kv").items == (8, 8, 4, 4)
    big = gguf_file.value("big")
    assert big.items is None and big.count == 5000 and big.preview[:3] == (0, 1, 2)
    words = gguf_file.value("words")
    assert words.count == 3000 and words.preview[0] == "w0"
    with open_source(path) as source:
        assert read_array(source, big)[4999] == 4999
        assert read_array(source, words, limit=3) == ["w0", "w1", "w2"]
        assert read_array(source, words)[-1] == "w2999"


def test_a_vocabulary_larger_than_one_read_chunk_is_skipped_exactly(tmp_path: Path) -> None:
    # 300k strings of varying length span several read-ahead chunks (1 MiB growing to 4 MiB),
    # so strings straddle chunk edges; the key after them must still decode.
    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    tokens = [("t" * (i % 23)) + str(i) for i in range(300_000)]
    writer.add_token_list(tokens)
    writer.add_uint32("after.vocab", 1234)
    writer.add_tensor("token_embd.weight", np.zeros((3, 32), dtype=np.float32))
    write_gguf(writer)
    gguf_file = read_gguf(path)
    assert gguf_file.value("after.vocab") == 1234
    assert gguf_file.value("tokenizer.ggml.tokens").count == 300_000
    with open_source(path) as source:
        assert read_array(source, gguf_file.value("tokenizer.ggml.tokens"))[-1] == tokens[-1]
    assert gguf_file.tensor("token_embd.weight").ne == (32, 3)


def _vocabulary_with_odd_items(count: int) -> list[bytes]:
    """Tokens as raw bytes: ASCII, multi-byte UTF-8 (2, 3 and 4 bytes), invalid UTF-8 (a bad
    start byte, a cut-off sequence, a lone continuation byte, an encoded surrogate), empty
    items, and three long ones (300 kB, 1.5 MiB and 2.4 MB, longer than a first 1 MiB read)."""
    kinds = (lambda i: f"t{i}".encode(), lambda i: f"\u2581\u00fcber{i}".encode(),
             lambda i: f"\u6a21\u578b{i}".encode(), lambda i: f"\U0001f600{i}".encode(),
             lambda i: b"\xff\xfe" + str(i).encode(), lambda i: str(i).encode() + b"\xe6\xa8",
             lambda i: b"\x80", lambda i: b"\xed\xa0\x80" + str(i).encode(), lambda i: b"")
    tokens = [kinds[i % len(kinds)](i) for i in range(count)]
    tokens[count // 4] = "\u00e9".encode() * 150_000
    tokens[count // 2] = b"x\xc3" * (3 << 18)
    tokens[3 * count // 4] = "\u6a21\u578b".encode() * 400_000
    return tokens


class _CountingSource(LocalFileSource):
    """A local file that records the length of every read (the reader's memory bound)."""

    def __init__(self, path: Path, read_ahead: tuple[int, int] | None = None) -> None:
        super().__init__(path)
        self.reads: list[int] = []
        if read_ahead is not None:  # the reader's first and largest read-ahead (remote.py's)
            self.read_ahead = read_ahead

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append(length)
        return super().read_at(offset, length)


@pytest.mark.parametrize("endian", [gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG],
                         ids=["little", "big"])
def test_a_vocabulary_spanning_several_reads_decodes_like_gguf_py(
        tmp_path: Path, endian: gguf.GGUFEndian) -> None:
    # About 4.6 MB of strings, more than the largest read-ahead chunk (4 MiB): the reads end
    # inside the array, so items straddle their edges, and one item is longer than a first read.
    path = tmp_path / "vocab.gguf"
    tokens = _vocabulary_with_odd_items(20_000)
    writer = gguf.GGUFWriter(str(path), "llama", endianess=endian)
    writer.add_array("tokenizer.ggml.tokens", tokens)
    writer.add_uint32("after.vocab", 1234)
    write_gguf(writer)
    expected = _oracle_value(gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"])
    assert expected[0] == "t0" and expected[4] == "\\xff\\xfe4"  # the oracle escapes as we do
    gguf_file = read_gguf(path)
    assert gguf_file.value("after.vocab") == 1234
    array = gguf_file.value("tokenizer.ggml.tokens")
    with _CountingSource(path) as source:
        assert read_array(source, array, gguf_file.byte_order) == expected
        assert len(source.reads) >= 3 and max(source.reads) <= MAX_CHUNK < array.end - array.offset
        assert read_array(source, array, gguf_file.byte_order, limit=5) == expected[:5]


def _write_vocabulary(path: Path, tokens: list) -> None:
    """A header-only GGUF whose one key is the token list."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("tokenizer.ggml.tokens", tokens)
    write_gguf(writer)


def test_strings_straddling_every_read_edge_decode_exactly(tmp_path: Path) -> None:
    # Reads of 61 to 97 bytes: items of 0 to 40 bytes end at every position around a read's
    # edge, including inside their 8-byte length.
    path = tmp_path / "vocab.gguf"
    tokens = [item[:40] for item in _vocabulary_with_odd_items(3_000)]
    _write_vocabulary(path, tokens)
    array = read_gguf(path).value("tokenizer.ggml.tokens")
    with _CountingSource(path, read_ahead=(61, 97)) as source:
        decoded = read_array(source, array)
        assert max(source.reads) <= 97 and len(source.reads) > 300
    assert decoded == [item.decode("utf-8", errors="backslashreplace") for item in tokens]


def _part_starts(field: gguf.ReaderField) -> list[int]:
    """Absolute offset of each part of a field, from gguf-py's parse (not the reader's)."""
    starts, position = [], int(field.offset)
    for part in field.parts:
        starts.append(position)
        position += part.nbytes
    return starts


@pytest.mark.parametrize("read_ahead", [None, (61, 97)], ids=["default-reads", "tiny-reads"])
def test_invalid_strings_finds_every_bad_item_at_its_first_bad_byte(
        tmp_path: Path, read_ahead: tuple[int, int] | None) -> None:
    # The vocabulary with bad start bytes, cut-off sequences, lone continuation bytes and
    # encoded surrogates: which items are bad and where comes from Python's own decoder on the
    # item bytes gguf-py located; tiny reads put items across every read edge.
    path = tmp_path / "vocab.gguf"
    tokens = _vocabulary_with_odd_items(3_000)
    _write_vocabulary(path, tokens)
    field = gguf.GGUFReader(path).fields["tokenizer.ggml.tokens"]
    starts = _part_starts(field)
    expected = []
    for index, part in enumerate(field.data):
        try:
            bytes(field.parts[part]).decode("utf-8")
        except UnicodeDecodeError as error:
            expected.append((f"tokenizer.ggml.tokens[{index}]", starts[part] + error.start))
    assert len(expected) > 1000  # four of the nine kinds of item are invalid
    gguf_file = read_gguf(path)  # the header-only read does not look at the items
    array = gguf_file.value("tokenizer.ggml.tokens")
    with _CountingSource(path, read_ahead) as source:
        found = [(error.field, error.offset)
                 for error in invalid_strings(source, array, "tokenizer.ggml.tokens")]
    assert found == expected


def _string_array_file(path: Path, items: list[bytes], tail: bytes) -> ArrayValue:
    """A file holding length-prefixed strings then ``tail`` (a damaged item), and the lazy
    array that claims one item more than ``items`` (the header reader would refuse the file)."""
    data = b"".join(struct.pack("<Q", len(item)) + item for item in items) + tail
    path.write_bytes(data)
    return ArrayValue(item_type=8, count=len(items) + 1, offset=0, end=len(data))


@pytest.mark.parametrize("n_items", [2, 300_000], ids=["in-the-first-read", "after-many-reads"])
def test_a_string_length_past_the_end_is_truncation(tmp_path: Path, n_items: int) -> None:
    items = [f"w{i}".encode() for i in range(n_items)]
    array = _string_array_file(tmp_path / "cut.gguf", items, struct.pack("<Q", 1 << 40) + b"abc")
    item_offset = sum(8 + len(item) for item in items)
    with open_source(tmp_path / "cut.gguf") as source:
        with pytest.raises(TruncatedError) as raised:
            read_array(source, array)
    assert raised.value.offset == item_offset
    assert raised.value.field == f"array[{n_items}]"
    assert f"string length {1 << 40} exceeds the 3 byte(s) left" in str(raised.value)


def test_a_string_length_cut_off_is_truncation(tmp_path: Path) -> None:
    items = [b"alpha", b"beta"]
    array = _string_array_file(tmp_path / "cut.gguf", items, b"\x05\x00\x00")
    with open_source(tmp_path / "cut.gguf") as source:
        with pytest.raises(TruncatedError) as raised:
            read_array(source, array)
    assert raised.value.offset == 8 + 5 + 8 + 4
    assert raised.value.field == "array[2] length"


def test_unknown_tensor_type_is_sized_from_the_gap(tmp_path: Path) -> None:
    source_path = Path(__file__).parent.parent / "fixtures" / "tiny-llama-untied-q8_0.gguf"
    original = read_gguf(source_path)
    target = original.tensors[1]  # any tensor followed by another one
    data = bytearray(source_path.read_bytes())
    type_field = target.info_offset + 8 + len(target.name.encode()) + 4 + 8 * len(target.ne)
    struct.pack_into("<I", data, type_field, 4)  # id 4 was Q4_2, long removed from ggml
    path = tmp_path / "unknown.gguf"
    path.write_bytes(bytes(data))
    patched = read_gguf(path)
    unknown = patched.tensor(target.name)
    assert unknown.type_name == "UNKNOWN(4)"
    following = sorted(t.offset for t in original.tensors if t.offset > target.offset)[0]
    assert unknown.n_bytes == following - target.offset


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        read_gguf(tmp_path / "absent.gguf")


def test_bad_magic_names_the_offset_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGML" + bytes(60))
    with pytest.raises(FormatError) as caught:
        read_gguf(path)
    assert caught.value.offset == 0 and caught.value.field == "magic"
    assert str(path) in str(caught.value)


def test_truncated_header_is_reported_with_its_offset(tmp_path: Path) -> None:
    source_path = Path(__file__).parent.parent / "fixtures" / "tiny-llama-tied-q4_k_m.gguf"
    path = tmp_path / "cut.gguf"
    path.write_bytes(source_path.read_bytes()[:3000])
    with pytest.raises(TruncatedError) as caught:
        read_gguf(path)
    assert caught.value.offset is not None and caught.value.offset <= 3000


def test_reader_keeps_the_source_open_for_lazy_arrays(any_fixture: Path) -> None:
    with open_source(any_fixture) as source:
        gguf_file = read_gguf_source(source)
        tokens = gguf_file.value("tokenizer.ggml.tokens")
        assert read_array(source, tokens, limit=3) == ["<unk>", "<s>", "</s>"]


def test_version_2_files_read_like_version_3(tmp_path: Path) -> None:
    # GGUF v2 and v3 share one layout (v3 only made big-endian files possible).
    source_path = Path(__file__).parent.parent / "fixtures" / "tiny-llama-tied-q8_0.gguf"
    data = bytearray(source_path.read_bytes())
    struct.pack_into("<I", data, 4, 2)
    path = tmp_path / "v2.gguf"
    path.write_bytes(bytes(data))
    v2, v3 = read_gguf(path), read_gguf(source_path)
    assert v2.version == 2 and v3.version == 3
    assert v2.tensors == v3.tensors and list(v2.metadata) == list(v3.metadata)
