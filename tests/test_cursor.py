"""The byte cursor on its own: bounds, messages, offsets and read-ahead, against bytes built here.

Expected values come from the bytes each test writes with ``struct`` (a length-prefixed string
is an 8-byte little-endian length and the bytes), never from the cursor. Small read-ahead sizes
make every refill path run on a few hundred bytes.
"""

from __future__ import annotations

import struct

import pytest

from gguf_inspect.core.errors import FormatError, TruncatedError
from gguf_inspect.gguf.cursor import (
    FIRST_CHUNK,
    MAX_CHUNK,
    MAX_LABEL,
    MAX_PROBLEMS,
    Cursor,
    Problems,
    display_label,
)


class Recorded:
    """An in-memory byte source that records every read (offset, length)."""

    def __init__(self, data: bytes, read_ahead: tuple[int, int] | None = None,
                 readable_end: int | None = None) -> None:
        self.data = data
        self.size = len(data)
        self.reads: list[tuple[int, int]] = []
        if read_ahead is not None:
            self.read_ahead = read_ahead
        if readable_end is not None:
            self.readable_end = readable_end

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset:offset + length]

    def close(self) -> None:
        pass


def packed(*items: bytes) -> bytes:
    return b"".join(struct.pack("<Q", len(item)) + item for item in items)


def offsets_of(*items: bytes) -> list[int]:
    offsets, at = [], 0
    for item in items:
        offsets.append(at)
        at += 8 + len(item)
    return offsets


WORDS = [bytes([65 + i % 26]) * (i % 7) for i in range(60)]  # 0..6 bytes each, some empty
SMALL_CHUNKS = [(8, 8), (8, 16), (16, 64), (FIRST_CHUNK, MAX_CHUNK)]


# ---- Problems and labels -------------------------------------------------------------------

def test_a_problem_is_raised_at_once_by_default() -> None:
    error = FormatError("bad", offset=3, field="f")
    with pytest.raises(FormatError) as raised:
        Problems().report(error)
    assert raised.value is error


def test_problems_are_collected_until_the_hundredth() -> None:
    collected: list = []
    problems = Problems(collected)
    for index in range(MAX_PROBLEMS - 1):
        problems.report(FormatError(f"p{index}", offset=index, field=f"f{index}"))
    assert len(collected) == 99 == MAX_PROBLEMS - 1
    with pytest.raises(FormatError) as raised:
        problems.report(FormatError("last", offset=7, field="g"))
    assert len(collected) == 100
    assert raised.value.message == "100 problems found; not looking further"
    assert (raised.value.offset, raised.value.field) == (7, "g")


def test_long_names_are_named_by_position() -> None:
    assert MAX_LABEL == 128
    assert display_label("k" * 128, "kv[3]") == "k" * 128
    assert display_label("k" * 129, "kv[3]") == "kv[3]"


# ---- take, unpack, skip ----------------------------------------------------------------------

@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
def test_take_unpack_and_skip_walk_the_bytes(read_ahead: tuple[int, int]) -> None:
    data = bytes(range(200))
    cursor = Cursor(Recorded(data, read_ahead))
    assert cursor.take(3, "a") == data[0:3]
    assert cursor.unpack("I", "b") == struct.unpack_from("<I", data, 3)[0]
    cursor.skip(50, "c")
    assert cursor.position == 57 and cursor.remaining() == 143
    assert cursor.unpack("H", "d") == struct.unpack_from("<H", data, 57)[0]
    assert cursor.take(20, "e") == data[59:79]
    cursor.skip(100, "f")
    assert cursor.take(21, "g") == data[179:200]
    assert cursor.remaining() == 0


def test_big_endian_cursor_unpacks_big_endian() -> None:
    cursor = Cursor(Recorded(struct.pack(">IQ", 7, 9)), byte_order=">")
    assert (cursor.unpack("I", "a"), cursor.unpack("Q", "b")) == (7, 9)


def test_taking_the_last_byte_works_and_one_more_is_truncated() -> None:
    cursor = Cursor(Recorded(b"abcdef", (4, 4)))
    assert cursor.take(6, "all") == b"abcdef"
    with pytest.raises(TruncatedError) as raised:
        Cursor(Recorded(b"abcdef", (4, 4))).take(7, "field")
    assert raised.value.message == "file ends before 7 byte(s) of field"
    assert (raised.value.offset, raised.value.field) == (0, "field")


def test_unpack_past_the_end_names_the_offset() -> None:
    cursor = Cursor(Recorded(b"\x01\x02\x03\x04\x05"))
    cursor.take(2, "a")
    with pytest.raises(TruncatedError) as raised:
        cursor.unpack("I", "value")
    assert raised.value.message == "file ends before 4 byte(s) of value"
    assert (raised.value.offset, raised.value.field) == (2, "value")


def test_a_source_shorter_than_it_says_is_truncated() -> None:
    source = Recorded(b"abc")
    source.size = 10  # claims more than it returns
    with pytest.raises(TruncatedError) as raised:
        Cursor(source).take(5, "x")
    assert raised.value.message == "file ends before 5 byte(s) of x"
    assert (raised.value.offset, raised.value.field) == (0, "x")
    source = Recorded(struct.pack("<Q", 5) + b"ab")
    source.size = 20
    with pytest.raises(TruncatedError) as raised:
        Cursor(source).raw_string("key")
    assert (raised.value.offset, raised.value.field) == (8, "key")


def test_a_known_truncation_reads_nothing() -> None:
    """The cursor never reads past what the source has: the size is checked first."""
    source = Recorded(b"abcdef", (4, 4))
    with pytest.raises(TruncatedError):
        Cursor(source).take(7, "field")
    assert source.reads == []


def test_the_first_byte_is_read_like_any_other() -> None:
    assert Cursor(Recorded(b"\x07rest")).take(1, "a") == b"\x07"
    assert Cursor(Recorded(b"\x07rest")).unpack("B", "a") == 7


def test_skip_to_the_end_works_and_past_it_is_truncated() -> None:
    cursor = Cursor(Recorded(bytes(10)))
    cursor.take(4, "a")
    cursor.skip(6, "tail")
    assert cursor.remaining() == 0
    cursor = Cursor(Recorded(bytes(10)))
    cursor.take(4, "a")
    with pytest.raises(TruncatedError) as raised:
        cursor.skip(7, "tail")
    assert raised.value.message == "tail needs 7 byte(s) but only 6 remain"
    assert (raised.value.offset, raised.value.field) == (4, "tail")
    assert cursor.position == 4


# ---- read-ahead ------------------------------------------------------------------------------

def test_reads_are_contiguous_doubling_and_bounded() -> None:
    data = bytes(range(256)) * 4
    source = Recorded(data, (16, 64))
    cursor = Cursor(source)
    taken = b"".join(cursor.take(5, "x") for _ in range(len(data) // 5))
    assert taken == data[:len(taken)]
    # each read starts where the last ended (no byte read twice), and sizes double to the cap:
    # 16 at 0; at 15 one byte is left, so 32 - 1; at 45 (the buffer ends at 47), 64 - 2
    assert [offset for offset, _ in source.reads] == [sum(n for _, n in source.reads[:i])
                                                     for i in range(len(source.reads))]
    assert [length for _, length in source.reads[:3]] == [16, 32 - 1, 64 - 2]
    assert all(length <= 64 for _, length in source.reads)
    assert len(cursor.buffer) <= 64 + 5


def test_the_default_read_ahead_is_one_mib_then_four() -> None:
    assert (FIRST_CHUNK, MAX_CHUNK) == (1 << 20, 4 << 20)
    source = Recorded(bytes(14 << 20))
    cursor = Cursor(source)
    for _ in range(9):  # a take every MiB: a read each time the buffer runs out
        cursor.skip((1 << 20) - 4, "gap")
        cursor.take(8, "x")
    assert [length >> 20 for _, length in source.reads] == [1, 2, 4, 4]


def test_what_is_buffered_is_not_read_again() -> None:
    source = Recorded(bytes(range(64)), (16, 16))
    cursor = Cursor(source)
    assert cursor.take(8, "a") + cursor.take(8, "b") == bytes(range(16))
    assert source.reads == [(0, 16)]  # the second take fits exactly: no read
    source = Recorded(bytes(range(64)), (16, 16))
    cursor = Cursor(source)
    values = [cursor.unpack("I", "v") for _ in range(16)]
    assert values == list(struct.unpack("<16I", bytes(range(64))))
    assert source.reads == [(0, 16), (16, 16), (32, 16), (48, 16)]


def test_a_large_take_reads_what_it_needs_at_once() -> None:
    source = Recorded(bytes(1000), (16, 64))
    assert len(Cursor(source).take(500, "x")) == 500
    assert source.reads == [(0, 500)]


def test_read_ahead_stops_at_the_readable_end() -> None:
    source = Recorded(bytes(range(100)), (64, 64), readable_end=40)
    cursor = Cursor(source)
    assert cursor.take(4, "a") == bytes(range(4))
    assert source.reads == [(0, 40)]
    assert cursor.take(40, "b") == bytes(range(4, 44))  # needed wins over the readable end
    assert source.reads[1] == (40, 4)


# ---- strings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
def test_string_and_raw_string(read_ahead: tuple[int, int]) -> None:
    data = b"xy" + packed(b"hello", b"", "é".encode())
    cursor = Cursor(Recorded(data, read_ahead))
    cursor.take(2, "pad")
    assert cursor.raw_string("s") == (2, b"hello")
    assert cursor.string("s") == ""
    assert cursor.string("s") == "é"
    assert cursor.remaining() == 0


def test_invalid_utf8_is_a_problem_at_its_byte() -> None:
    data = b"zz" + packed(b"ok\xffno")
    collected: list = []
    cursor = Cursor(Recorded(data), problems=Problems(collected))
    cursor.take(2, "pad")
    assert cursor.string("name") == "ok\\xffno"
    (problem,) = collected
    assert problem.message == "invalid UTF-8 in string (invalid start byte)"
    assert (problem.offset, problem.field) == (2 + 8 + 2, "name")
    cursor = Cursor(Recorded(data), problems=Problems(collected))
    cursor.take(2, "pad")
    assert cursor.string("name", strict=False) == "ok\\xffno"
    assert len(collected) == 1  # not strict: no problem
    with pytest.raises(FormatError):
        Cursor(Recorded(packed(b"\xff"))).string("name")


def test_a_string_longer_than_the_file_is_truncated_at_its_prefix() -> None:
    data = b"abc" + struct.pack("<Q", 6) + b"12345"
    cursor = Cursor(Recorded(data))
    cursor.take(3, "pad")
    with pytest.raises(TruncatedError) as raised:
        cursor.raw_string("key")
    assert raised.value.message == "string length 6 exceeds the 5 byte(s) left"
    assert (raised.value.offset, raised.value.field) == (3, "key")
    cursor = Cursor(Recorded(data[:-1] + b"5!"))
    cursor.take(3, "pad")
    assert cursor.raw_string("key") == (3, b"12345!")  # exactly to the end is fine


def test_a_cut_length_prefix_names_the_length() -> None:
    with pytest.raises(TruncatedError) as raised:
        Cursor(Recorded(b"abc")).raw_string("key")
    assert raised.value.message == "file ends before 8 byte(s) of key length"
    assert (raised.value.offset, raised.value.field) == (0, "key length")


HUGE = 2 ** 63 + 5  # a u64 length that a signed read would see as negative


def test_lengths_are_unsigned() -> None:
    data = struct.pack("<Q", HUGE) + b"xyz"
    with pytest.raises(TruncatedError) as raised:
        Cursor(Recorded(data)).raw_string("key")
    assert raised.value.message == f"string length {HUGE} exceeds the 3 byte(s) left"
    data = packed(b"ab") + struct.pack("<Q", HUGE) + b"xyz"
    for read_signed_first in (False, True):  # "q" already used for an int64 value
        for run in ("raw_strings", "skip_strings"):
            cursor = Cursor(Recorded(struct.pack("<q", -1) + data))
            if read_signed_first:
                assert cursor.unpack("q", "int64") == -1
            else:
                cursor.take(8, "pad")
            with pytest.raises(TruncatedError) as raised:
                if run == "raw_strings":
                    list(cursor.raw_strings(2, "tokens"))
                else:
                    cursor.skip_strings(2, "tokens")
            assert raised.value.field == "tokens[1]", run


def test_raw_strings_stop_at_the_count() -> None:
    data = packed(b"a", b"bc", b"def", b"ghij")
    cursor = Cursor(Recorded(data))
    assert [raw for _, raw in cursor.raw_strings(2, "t")] == [b"a", b"bc"]
    assert cursor.position == 9 + 10
    assert cursor.raw_string("t") == (19, b"def")


@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
@pytest.mark.parametrize("prefix", [0, 5])
def test_raw_strings_give_every_item_with_its_offset(read_ahead: tuple[int, int],
                                                     prefix: int) -> None:
    data = b"p" * prefix + packed(*WORDS) + b"TAIL"
    cursor = Cursor(Recorded(data, read_ahead))
    cursor.take(prefix, "pad") if prefix else None
    got = list(cursor.raw_strings(len(WORDS), "tokens"))
    assert got == [(prefix + at, word) for at, word in zip(offsets_of(*WORDS), WORDS)]
    assert cursor.take(4, "tail") == b"TAIL"


@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
def test_strings_decode_and_escape(read_ahead: tuple[int, int]) -> None:
    items = [b"a", b"\xff", "ü".encode(), b""] * 5
    cursor = Cursor(Recorded(packed(*items) + b"!", read_ahead))
    assert list(cursor.strings(len(items), "t")) == ["a", "\\xff", "ü", ""] * 5
    assert cursor.take(1, "end") == b"!"


@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
def test_raw_strings_name_the_item_that_runs_past_the_end(read_ahead: tuple[int, int]) -> None:
    items = [b"abc"] * 7
    data = packed(*items) + struct.pack("<Q", 50) + b"short"
    with pytest.raises(TruncatedError) as raised:
        list(Cursor(Recorded(data, read_ahead)).raw_strings(9, "tokens"))
    assert raised.value.field == "tokens[7]"
    assert raised.value.offset == 7 * 11
    assert raised.value.message == "string length 50 exceeds the 5 byte(s) left"


@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
@pytest.mark.parametrize("first", [0, 10])
def test_skip_strings_lands_after_the_last(read_ahead: tuple[int, int], first: int) -> None:
    data = packed(*WORDS) + b"TAIL"
    cursor = Cursor(Recorded(data, read_ahead))
    cursor.skip_strings(len(WORDS), "tokens", first)
    assert cursor.position == len(data) - 4
    assert cursor.take(4, "tail") == b"TAIL"
    cursor = Cursor(Recorded(data, read_ahead))
    cursor.skip_strings(3, "tokens", first)
    assert cursor.position == offsets_of(*WORDS)[3]
    cursor.skip_strings(0, "tokens", first)
    assert cursor.position == offsets_of(*WORDS)[3]


@pytest.mark.parametrize("read_ahead", SMALL_CHUNKS)
@pytest.mark.parametrize("bad", [0, 4, 6])
def test_skip_strings_names_the_item_that_runs_past_the_end(read_ahead: tuple[int, int],
                                                            bad: int) -> None:
    items = [b"abcd"] * bad
    data = packed(*items) + struct.pack("<Q", 100) + b"xyz"
    start = 12 * bad
    with pytest.raises(TruncatedError) as raised:
        Cursor(Recorded(data, read_ahead)).skip_strings(7, "tokens", first=10)
    assert raised.value.field == f"tokens[{10 + bad}]"
    assert raised.value.offset == start
    assert raised.value.message == "string length 100 exceeds the 3 byte(s) left"


@pytest.mark.parametrize("last", [b"cde", b""])
def test_skip_strings_ending_exactly_at_the_end_is_fine(last: bytes) -> None:
    data = packed(b"ab", last)
    cursor = Cursor(Recorded(data, (8, 8)))
    cursor.skip_strings(2, "t")
    assert cursor.remaining() == 0
    with pytest.raises(TruncatedError) as raised:
        Cursor(Recorded(data, (8, 8))).skip_strings(3, "t")
    assert raised.value.field == "t[2] length"
    assert raised.value.offset == len(data)


def test_ensure_refills_only_when_needed() -> None:
    source = Recorded(bytes(range(64)), (16, 16))
    cursor = Cursor(source)
    cursor.ensure(8, "a")
    assert source.reads == [(0, 16)]
    cursor.ensure(16, "a")
    assert source.reads == [(0, 16)]
    cursor.ensure(17, "a")  # the 16 buffered are kept; want = max(17, chunk 16): 1 more
    assert source.reads == [(0, 16), (16, 1)]
    assert cursor.buffer == bytes(range(17))
    cursor.take(10, "a")
    cursor.ensure(8, "a")  # 7 left: keep them, read up to the chunk
    assert source.reads[2] == (17, 16 - 7)
    cursor.ensure(16, "a")  # the buffer now starts at 10 and holds 16: nothing to read
    assert len(source.reads) == 3


def test_strings_name_the_item_that_runs_past_the_end() -> None:
    data = packed(b"ok") + struct.pack("<Q", 9) + b"abc"
    with pytest.raises(TruncatedError) as raised:
        list(Cursor(Recorded(data)).strings(2, "tokens"))
    assert (raised.value.field, raised.value.offset) == ("tokens[1]", 10)
