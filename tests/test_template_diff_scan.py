"""The audit's chat-template checks where models are compared and listed: ``diff`` says whether
A's and B's templates differ (bytes, normalised template, known template) and shows B's template
findings; ``scan`` has a template column (known template, "custom" or "none", and an error
flag) in every output format. Files are the audit corpus's (tests/test_audit.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gguf_inspect.commands.diff import run_diff
from gguf_inspect.commands.scan import run_scan
from tests.conftest import fixture_path
from tests.test_audit import HOSTILE, TEMPLATES, _copy

CHATML = (TEMPLATES / "chatml.jinja").read_text(encoding="utf-8")
LLAMA3 = (TEMPLATES / "llama3-instruct.jinja").read_text(encoding="utf-8")
NO_TEMPLATE = str(fixture_path("tiny-llama-untied-f16.gguf"))  # the corpus source has none


def _diff(a: Path | str, b: Path | str) -> dict[str, Any]:
    text, code = run_diff(str(a), str(b), "json")
    assert code == 0
    return json.loads(text)


def test_a_hostile_template_in_b_is_a_changed_template_with_findings(tmp_path: Path) -> None:
    a = _copy(tmp_path / "a.gguf", CHATML)
    b = _copy(tmp_path / "b.gguf", HOSTILE["__globals__"])
    template = _diff(a, b)["template"]
    [change] = template["changes"]
    assert change["key"] == "tokenizer.chat_template" and change["change"] == "changed"
    assert change["a"]["known_as"] == "chatml" and change["b"]["known_as"] is None
    hostile = HOSTILE["__globals__"]
    assert change["b"]["sha256"] == hashlib.sha256(hostile.encode()).hexdigest()
    assert change["b"]["length"] == len(hostile)
    errors = {f["id"] for f in template["b_findings"] if f["severity"] == "error"}
    assert "template.private-access" in errors
    text, _ = run_diff(str(a), str(b), "table")
    assert "chat template findings on B" in text and "template.private-access" in text
    markdown, _ = run_diff(str(a), str(b), "markdown")
    assert "template.private-access" in markdown


def test_a_reindented_template_is_reformatted_not_changed(tmp_path: Path) -> None:
    loose = CHATML.replace("{% for", "{%- for").replace("%}{{", "%}\n  {{")
    assert loose != CHATML
    change = _diff(_copy(tmp_path / "a.gguf", CHATML),
                   _copy(tmp_path / "b.gguf", loose))["template"]["changes"][0]
    assert change["change"] == "reformatted"
    assert change["a"]["normalised_sha256"] == change["b"]["normalised_sha256"]
    assert change["a"]["sha256"] != change["b"]["sha256"]
    assert change["a"]["known_as"] == change["b"]["known_as"] == "chatml"


def test_benign_templates_same_changed_added_removed(tmp_path: Path) -> None:
    chatml = _copy(tmp_path / "chatml.gguf", CHATML)
    llama3 = _copy(tmp_path / "llama3.gguf", LLAMA3)
    same = _diff(chatml, chatml)["template"]
    assert same["changes"][0]["change"] == "same"
    assert [f for f in same["b_findings"] if f["severity"] == "error"] == []
    changed = _diff(chatml, llama3)["template"]["changes"][0]
    assert changed["change"] == "changed" and "llama3" in changed["b"]["known_as"]
    assert _diff(NO_TEMPLATE, chatml)["template"]["changes"][0]["change"] == "added"
    removed = _diff(chatml, NO_TEMPLATE)["template"]
    assert removed["changes"][0]["change"] == "removed" and removed["b_findings"] == []
    assert _diff(NO_TEMPLATE, NO_TEMPLATE)["template"] is None
    text, _ = run_diff(NO_TEMPLATE, NO_TEMPLATE, "table")
    assert "chat template" not in text


def test_scan_has_a_template_column_in_every_format(tmp_path: Path) -> None:
    _copy(tmp_path / "benign.gguf", CHATML)
    _copy(tmp_path / "hostile.gguf", HOSTILE["subclass loop"])
    _copy(tmp_path / "odd.gguf", "{{ messages[0]['content'] }}")
    _copy(tmp_path / "plain.gguf")
    text, code = run_scan([str(tmp_path)], "json")
    assert code == 0
    rows = {Path(row["location"]).name: row for row in json.loads(text)["models"]}
    assert (rows["benign.gguf"]["template"], rows["benign.gguf"]["template_error"]) \
        == ("chatml", False)
    assert (rows["hostile.gguf"]["template"], rows["hostile.gguf"]["template_error"]) \
        == ("custom", True)
    assert (rows["odd.gguf"]["template"], rows["odd.gguf"]["template_error"]) == ("custom", False)
    assert (rows["plain.gguf"]["template"], rows["plain.gguf"]["template_error"]) == ("none", None)
    for output_format in ("table", "markdown"):
        text, code = run_scan([str(tmp_path)], output_format)
        assert code == 0 and "template" in text
        lines = {name: next(line for line in text.splitlines() if name in line)
                 for name in rows}
        assert "chatml" in lines["benign.gguf"] and "error" not in lines["benign.gguf"]
        assert "custom (error: see audit)" in lines["hostile.gguf"]
        assert "none" in lines["plain.gguf"]
