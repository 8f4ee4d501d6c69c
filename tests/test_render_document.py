"""The shared layout renderers: escaping of untrusted text, paragraph lines, alignment."""

from __future__ import annotations

from gguf_inspect.render.document import KeyValues, Paragraph, Table, draw_markdown, draw_terminal
from gguf_inspect.render.text import escape_markdown, escape_terminal, format_mib, format_params


def test_paragraph_newlines_are_layout_but_control_characters_are_escaped() -> None:
    text = draw_terminal([Paragraph("warnings", "first\x1b[2J\nsecond\x07")])
    assert text.splitlines()[1:] == ["first\\x1b[2J", "second\\x07"]


def test_markdown_paragraph_lines_become_paragraphs_and_pipes_are_inert() -> None:
    text = draw_markdown([Paragraph("notes", "a|b\nc`d`")])
    assert "a\\|b\n\nc\\`d\\`" in text


def test_cells_are_escaped_in_both_formats() -> None:
    sections = [KeyValues("kv", [("key\x1b", "value\u202e")]),
                Table("t", ["name"], [["x\x9by"]])]
    for text in (draw_terminal(sections), draw_markdown(sections)):
        assert "\x1b" not in text and "\u202e" not in text and "\x9b" not in text
        assert "\\x1b" in text and "\\u202e" in text and "\\x9b" in text


def test_escape_helpers() -> None:
    assert escape_terminal("tab\tnew\nline\x7f") == "tab\\tnew\\nline\\x7f"
    assert escape_terminal("ünïcödé ▁king") == "ünïcödé ▁king"  # printable text is kept
    assert escape_markdown("a|b*c") == "a\\|b\\*c"


def test_sizes_print_like_llama_cpp() -> None:
    # llama.cpp prints %.2f MiB below 1 GiB and %.2f GiB above (llama_model_loader::print_info).
    assert format_mib(1024 * 1024 * 1.5) == "1.50 MiB"
    assert format_mib(3 * 1024**3) == "3.00 GiB"
    assert format_params(984_320) == "984.32 K" and format_params(8_030_261_248) == "8.03 B"
