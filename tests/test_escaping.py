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
