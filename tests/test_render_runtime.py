"""Rendering of the runtime comparison: table, markdown, JSON contract, escaping of log text."""

from __future__ import annotations

import json

from gguf_inspect.reports.runtime import Check, RuntimeComparison
from gguf_inspect.commands import render_sections
from gguf_inspect.render.runtime import runtime_json, runtime_sections

COMPARISON = RuntimeComparison(
    model="model.gguf", runtime="log saved.log", log_style="older",
    config={"n_ctx": 4096, "flash_attn": False, "use_mmap": None},
    checks=(Check("n_embd", "", 256, 256, "match"),
            # A pasted log is untrusted: an escape sequence in it must not reach the terminal.
            Check("file type", "", "Q8_0", "Q8_0\x1b[2J", "differs"),
            Check("CPU KV buffer", "MiB", 4.0, 4.0, "match"),
            Check("CPU compute buffer", "MiB", 42.5098, 43.01, "estimate", "-1.2%")),
    notes=("compute buffer is an estimate",))


def test_table_shows_each_row_and_the_verdict() -> None:
    text = render_sections(runtime_sections(COMPARISON), "table")
    assert "\x1b" not in text and "Q8_0\\x1b[2J" in text
    assert "42.5098" in text and "43.01" in text and "-1.2%" in text
    assert "4.00" in text  # sizes keep the log's two decimals
    assert "1 of 3 exact quantities differ from the runtime: file type" in text
    assert "flash_attn" in text and "off" in text


def test_markdown_escapes_cells() -> None:
    text = render_sections(runtime_sections(COMPARISON), "markdown")
    assert "### predicted vs llama.cpp" in text
    assert "n\\_embd" in text


def test_json_contract() -> None:
    document = json.loads(runtime_json(COMPARISON))
    assert document["schema_version"] == 1
    assert document["all_match"] is False  # the file type differs; the estimate never counts
    assert document["config"] == {"n_ctx": 4096, "flash_attn": False, "use_mmap": None}
    assert document["checks"][3] == {"quantity": "CPU compute buffer", "unit": "MiB",
                                     "predicted": 42.5098, "runtime": 43.01,
                                     "status": "estimate", "note": "-1.2%"}
    assert all(set(check) == {"quantity", "unit", "predicted", "runtime", "status", "note"}
               for check in document["checks"])
