"""Metadata values as the terminal and JSON show them (render/text.py): json_text, value_text,
float32_text, cut_text, items_text (issue 21). The escaping itself is test_escaping.py's.

Expected texts are written by hand (the limit and "(N more)" arithmetic on small inputs), read
back with json.loads, or taken from numpy's shortest round-tripping float32 repr (Dragon4, an
implementation independent of ours) and Python's float repr.
"""

from __future__ import annotations

import json
import random
import struct

import numpy as np
import pytest

from gguf_inspect.render.text import (
    VALUE_LIMIT,
    cut_text,
    escape_terminal,
    float32_text,
    items_text,
    json_text,
    value_text,
)

FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINIEST = 2.0 ** -149  # the smallest subnormal float32


def as_float32(value: float) -> float:
    """The float32 nearest ``value``, as the Python float a GGUF reader hands over."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def shortest_float32(value: float) -> str:
    """numpy's shortest digits that read back as this float32, in Python's float spelling."""
    return repr(float(np.format_float_scientific(np.float32(value), unique=True)))


# --- json_text ---------------------------------------------------------------------------------

def test_json_text_is_two_space_indented_with_readable_non_ascii_and_a_final_newline() -> None:
    assert json_text({"a": [1, "é中"]}) == '{\n  "a": [\n    1,\n    "é中"\n  ]\n}\n'


@pytest.mark.parametrize("char", ["\x7f", "\x9b", "\u061c", "\u200f", "\u2028", "\u2029",
                                  "\u202e", "\u2066", "\x1b", "\x00"])
def test_json_text_writes_unsafe_characters_as_escapes_that_read_back(char: str) -> None:
    text = json_text({"key": f"a{char}b"})
    assert char not in text
    assert f"a\\u{ord(char):04x}b" in text
    assert json.loads(text) == {"key": f"a{char}b"}


# --- float32_text ------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "shown"), [
    (1e-6, "1e-06"), (1e-5, "1e-05"), (0.1, "0.1"), (10000.0, "10000.0"), (1.0, "1.0"),
    (0.0, "0.0"), (-0.0, "-0.0"), (-2.5, "-2.5"), (0.123456789, "0.12345679"),
    (500000.0, "500000.0"), (1e16, "1e+16"), (FLOAT32_TINIEST, "1e-45"),
    (FLOAT32_MAX, "3.4028235e+38"), (-FLOAT32_MAX, "-3.4028235e+38"),
])
def test_float32_text_is_the_shortest_decimal_of_the_float32(written: float, shown: str) -> None:
    value = as_float32(written)
    assert float32_text(value) == shown == shortest_float32(value)
    assert struct.pack("<f", float(shown)) == struct.pack("<f", value)


def test_float32_text_needs_two_digits_where_one_is_shortest_but_two_are_closer() -> None:
    # 2^-149 = 1.4013e-45: "1e-45" already reads back as it, so "1.4e-45" is not the shortest
    assert float32_text(FLOAT32_TINIEST) == "1e-45"
    assert float32_text(3 * FLOAT32_TINIEST) == "4e-45"


def test_float32_text_agrees_with_numpy_on_random_float32_bit_patterns() -> None:
    generator = random.Random(21)
    for _ in range(3000):
        value = struct.unpack("<f", struct.pack("<I", generator.getrandbits(32)))[0]
        if value != value or abs(value) == float("inf"):
            continue
        assert float32_text(value) == shortest_float32(value), value


@pytest.mark.parametrize(("value", "shown"), [
    (float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan"),
    (1e300, "1e+300"), (1.234e300, "1.234e+300"), (-1.234e300, "-1.234e+300"),
])
def test_values_that_are_no_float32_are_shown_as_python_writes_them(value: float,
                                                                    shown: str) -> None:
    assert float32_text(value) == shown


def test_a_float64_no_nine_digits_round_trip_is_shown_whole() -> None:
    # Just above the midpoint of two float32s: it rounds up to a float32, but its decimals of
    # up to 9 digits fall below the midpoint and round down (double rounding).
    value = 1.759230434894562
    assert as_float32(value) != value
    assert all(as_float32(float(f"{value:.{digits}g}")) != as_float32(value)
               for digits in range(1, 10))
    assert float32_text(value) == "1.759230434894562"


# --- cut_text ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "limit", "shown"), [
    ("abc", 3, "abc"), ("abc", 4, "abc"), ("abcd", 3, "abc... (4 characters)"),
    ("abc", 1, "a... (3 characters)"), ("abc", 0, "... (3 characters)"), ("", 0, ""),
    ("abc", None, "abc"), ("x" * 1234, 2, "xx... (1,234 characters)"),
    ("éé中文", 2, "éé... (4 characters)"),
])
def test_cut_text(text: str, limit: int | None, shown: str) -> None:
    assert cut_text(text, limit) == shown


def test_cut_text_default_limit_is_value_limit() -> None:
    assert VALUE_LIMIT == 160
    assert cut_text("y" * 160) == "y" * 160
    assert cut_text("y" * 161) == "y" * 160 + "... (161 characters)"


def test_a_cut_counts_characters_and_escaping_still_applies_to_what_is_kept() -> None:
    shown = escape_terminal(cut_text("\x1b\u202e\x1b\u202e", 2))
    assert shown == "\\x1b\\u202e... (4 characters)"


# --- value_text --------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "limit", "shown"), [
    ("abc", 3, "'abc'"), ("abcd", 3, "'abc'... (4 characters)"), ("a", 0, "''... (1 characters)"),
    ("", 0, "''"), ("x" * 2000, None, "'" + "x" * 2000 + "'"),
    ("z" * 1500, 1, "'z'... (1,500 characters)"),
    (12345, 5, "12345"), (12345, 3, "123... (5 characters)"), (12345, 0, "... (5 characters)"),
    (10 ** 200, None, "1" + "0" * 200), (True, 4, "True"), (-7, None, "-7"),
])
def test_value_text_quotes_strings_and_cuts_at_the_limit(value: object, limit: int | None,
                                                         shown: str) -> None:
    assert value_text(value, limit) == shown


def test_value_text_default_limit_cuts_numbers_and_strings_alike() -> None:
    assert value_text("s" * 160) == "'" + "s" * 160 + "'"
    assert value_text("s" * 161) == "'" + "s" * 160 + "'... (161 characters)"
    assert value_text(10 ** 160) == "1" + "0" * 159 + "... (161 characters)"


def test_value_text_strings_show_control_and_bidi_characters_as_escapes() -> None:
    assert value_text("é\u202e\n\x1b") == "'é\\u202e\\n\\x1b'"


def test_value_text_float32_only_when_single() -> None:
    value = as_float32(0.1)
    assert value_text(value, single=True) == "0.1"
    assert value_text(value) == "0.10000000149011612" == repr(value)
    assert value_text(0.123456789) == "0.123456789"  # a float64 keeps its digits
    assert value_text(5, single=True) == "5"  # an integer is no float
    assert value_text("0.1", single=True) == "'0.1'"


# --- items_text --------------------------------------------------------------------------------

@pytest.mark.parametrize(("items", "total", "limit", "shown"), [
    # each one-digit item uses 1 + 2 (", ") characters; items go on while no more than limit
    # characters are used: 0, 3, 6, ...
    ((1, 2, 3, 4, 5), 5, 3, "1, 2, ... (3 more)"),
    ((1, 2, 3, 4, 5), 5, 2, "1, ... (4 more)"),
    ((1, 2, 3, 4, 5), 5, 0, "... (1 characters), ... (4 more)"),  # the item cut at 0 too
    ((1, 2, 3, 4, 5), 5, 6, "1, 2, 3, ... (2 more)"),
    ((1, 2, 3, 4, 5), 5, 12, "1, 2, 3, 4, 5"),
    ((1, 2, 3, 4, 5), 5, None, "1, 2, 3, 4, 5"),
    ((1, 2), 2, 3, "1, 2"),
    ((1, 2, 3), 3, 3, "1, 2, ... (1 more)"),
    ((1, 2), 1236, None, "1, 2, ... (1,234 more)"),  # a preview of a longer array
    ((), 0, 3, ""),
    (("ab", "c"), 2, None, "'ab', 'c'"),
    (("abcdef", "g"), 2, 3, "'abc'... (6 characters), ... (1 more)"),
    (("é\u202e", "\t"), 2, None, "'é\\u202e', '\\t'"),
])
def test_items_text(items: tuple[object, ...], total: int, limit: int | None,
                    shown: str) -> None:
    assert items_text(items, total, limit) == shown


def test_items_text_default_limit() -> None:
    # 3 characters per item: the 54th starts at 159 <= 160, the 55th at 162
    assert items_text((7,) * 1000, 1000) == ", ".join(["7"] * 54) + ", ... (946 more)"


def test_items_text_float32_items_only_when_single() -> None:
    items = (as_float32(0.1), as_float32(1e-6))
    assert items_text(items, 2, single=True) == "0.1, 1e-06"
    assert items_text(items, 2) == f"{as_float32(0.1)!r}, {as_float32(1e-6)!r}"
