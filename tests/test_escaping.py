"""Every character that can hide or reorder terminal text is escaped, each one by itself, and
every place a file string reaches the terminal escapes it (issue 21).

The list is Unicode's, not ours: the C0 controls U+0000-001F, DEL U+007F, the C1 controls
U+0080-009F, and the explicit bidi formatting characters of UAX #9 (table 4): ALM U+061C,
LRM U+200E, RLM U+200F, LRE/RLE/PDF/LRO/RLO U+202A-202E, LRI/RLI/FSI/PDI U+2066-2069.
"""

from __future__ import annotations

import pytest

from gguf_inspect.render.document import KeyValues, Paragraph, Table, draw_markdown, draw_terminal
from gguf_inspect.render.text import escape_markdown, escape_terminal

BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Neighbours of every range: printable, left alone.
SAFE = [0x20, 0x7E, 0xA0, 0x061B, 0x061D, 0x200D, 0x2010, 0x2029, 0x202F, 0x2065, 0x206A]


@pytest.mark.parametrize("code", BIDI + CONTROLS, ids=lambda c: f"U+{c:04X}")
def test_each_unsafe_character_becomes_a_visible_escape(code: int) -> None:
    shown = escape_terminal(f"a{chr(code)}b")
    assert chr(code) not in shown and shown.startswith("a\\") and shown.endswith("b")
    assert chr(code) not in escape_markdown(f"a{chr(code)}b")


@pytest.mark.parametrize("code", SAFE, ids=lambda c: f"U+{c:04X}")
def test_the_neighbours_are_left_alone(code: int) -> None:
    assert escape_terminal(f"a{chr(code)}b") == f"a{chr(code)}b"


def test_escapes_name_the_code_point() -> None:
    assert escape_terminal("\u2066\x1b\n\x85") == "\\u2066\\x1b\\n\\x85"


HOSTILE = "evil\u202e\x1b[31m"


@pytest.mark.parametrize("section", [
    KeyValues(HOSTILE, [("k", "v")]), Table(HOSTILE, ["h"], [["c"]]), Paragraph(HOSTILE, "text"),
    KeyValues("t", [(HOSTILE, HOSTILE)]), Table("t", [HOSTILE], [[HOSTILE]]),
    Paragraph("t", HOSTILE),
], ids=["kv-title", "table-title", "paragraph-title", "kv-cells", "table-cells", "paragraph"])
def test_every_part_of_a_section_is_escaped(section) -> None:
    for drawn in (draw_terminal([section]), draw_markdown([section])):
        assert "\u202e" not in drawn and "\x1b" not in drawn


def test_tab_and_carriage_return_have_their_c_names() -> None:
    assert escape_terminal("a\tb\rc\x0b") == "a\\tb\\rc\\x0b"


# ---- the number formats of the same module (llama.cpp's log style, llama-model-loader.cpp) ----

@pytest.mark.parametrize("n_bytes, shown", [
    (0, "0.00 MiB"), (1 << 20, "1.00 MiB"), (3 * (1 << 19), "1.50 MiB"),
    ((1 << 30) - 1, "1024.00 MiB"), (1 << 30, "1.00 GiB"), (5 * (1 << 29), "2.50 GiB"),
])
def test_format_mib(n_bytes: int, shown: str) -> None:
    from gguf_inspect.render.text import format_bytes, format_mib

    assert format_mib(n_bytes) == shown
    assert format_bytes(n_bytes) == f"{n_bytes:,} B ({shown})"


@pytest.mark.parametrize("n_params, shown", [
    (999, "1.00 K"), (1_500, "1.50 K"), (1_000_000, "1.00 M"), (1_360_000, "1.36 M"),
    (8_030_000_000, "8.03 B"), (1_000_000_000, "1.00 B"), (2 * 10**12, "2.00 T"),
    (999_999, "1000.00 K"), (10**12, "1.00 T"),
])
def test_format_params(n_params: int, shown: str) -> None:
    from gguf_inspect.render.text import format_params

    assert format_params(n_params) == shown


def test_format_shape_and_percent() -> None:
    from gguf_inspect.render.text import format_percent, format_shape

    assert format_shape((4096, 128256)) == "[4096, 128256]"
    assert format_shape((7,)) == "[7]"
    assert format_percent(0.28125) == "28.12%"
