"""Strings from a file are untrusted: a hostile model carrying terminal escape sequences, C1
controls, bidi overrides, pipes and backticks in its architecture, name, keys, values, chat
template and tensor names must come out escaped in table and markdown output, and as valid JSON
that gives the original strings back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from tests.conftest import write_gguf

RUNNER = CliRunner()
# A colour change, a window-title OSC ended by BEL, a C1 CSI that clears the screen, a
# right-to-left override and isolate (Trojan Source), DEL, a carriage return, markdown markup.
HOSTILE = ("\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J \u202eevil\u2066 \x7f \r| `code` "
           "**bold** <b>")
# Everything a terminal could act on: C0 controls but newline, DEL, C1, and the bidi controls.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ARCH = "llama"
TENSOR = f"blk.0.{HOSTILE}.weight"
KEY = f"evil.{HOSTILE}"
TEMPLATE = "{{ '\x1b[2J' }}{% for m in messages %}| `{{ m.content }}` |{% endfor %}\u202e"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.gguf"
    writer = gguf.GGUFWriter(str(path), ARCH)
    writer.add_name(HOSTILE)
    writer.add_string(KEY, HOSTILE)
    writer.add_chat_template(TEMPLATE)
    writer.add_uint32(f"{ARCH}.embedding_length", 32)
    writer.add_token_list(["<unk>", HOSTILE, "ok"])
    writer.add_array("evil.list", [HOSTILE, "x|y", "`z`"])
    writer.add_tensor("token_embd.weight", np.zeros((3, 32), dtype=np.float32))
    writer.add_tensor(TENSOR, np.zeros(32, dtype=np.float32))
    write_gguf(writer)
    return path


REPORTS = [
    [],
    ["--embeddings"],
    ["--metadata"],
    ["--metadata", "--full"],
    ["--tensors"],
    ["--tensors", "--filter", "blk.0.*"],
]


@pytest.mark.parametrize("arguments", REPORTS, ids=lambda a: " ".join(a) or "summary")
@pytest.mark.parametrize("output_format", [[], ["--markdown"]], ids=["table", "markdown"])
def test_text_output_escapes_every_control_and_bidi_character(
        hostile: Path, arguments: list[str], output_format: list[str]) -> None:
    result = RUNNER.invoke(app, [str(hostile), *arguments, *output_format])
    assert result.exit_code == 0, result.output
    assert UNSAFE.search(result.stdout) is None, repr(UNSAFE.search(result.stdout))
    # Shown, as visible escapes; markdown backslashes the escape's own backslash and bracket.
    markdown = bool(output_format)
    shown = (r"\\x1b\[31mred", r"\\u202eevil") if markdown else (r"\x1b[31mred", r"\u202eevil")
    if "--metadata" in arguments:
        assert all(text in result.stdout for text in shown), shown
    if "--tensors" in arguments:
        assert shown[1] in result.stdout  # the tensor name is shown, escaped


@pytest.mark.parametrize("arguments", [["--metadata", "--full"], ["--tensors"]])
def test_markdown_cells_cannot_break_the_table(hostile: Path, arguments: list[str]) -> None:
    result = RUNNER.invoke(app, [str(hostile), *arguments, "--markdown"])
    assert result.exit_code == 0, result.output
    assert re.search(r"(?<!\\)`", result.stdout) is None  # every backtick is escaped
    for table in re.findall(r"(?:^\|.*\n)+", result.stdout, flags=re.MULTILINE):
        columns = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(columns) == 1, table  # a hostile pipe never adds a column


def test_json_is_valid_and_gives_the_strings_back(hostile: Path) -> None:
    result = RUNNER.invoke(app, [str(hostile), "--metadata", "--full", "--tensors",
                                 "--embeddings", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["model"]["name"] == HOSTILE
    metadata = {item["key"]: item["value"] for item in document["metadata"]}
    assert metadata[KEY] == HOSTILE and metadata["tokenizer.chat_template"] == TEMPLATE
    assert metadata["evil.list"] == [HOSTILE, "x|y", "`z`"]
    assert TENSOR in [tensor["name"] for tensor in document["tensors"]]
    assert "\x1b" not in result.stdout  # JSON escapes C0 controls itself (\u001b)


@pytest.mark.parametrize("output_format", [[], ["--markdown"]], ids=["table", "markdown"])
def test_validate_output_is_escaped_too(hostile: Path, tmp_path: Path,
                                        output_format: list[str]) -> None:
    # Break the hostile tensor's alignment so its name shows up in the problem list.
    data = bytearray(hostile.read_bytes())
    name = TENSOR.encode()
    at = data.index(name) + len(name) + 4 + 8 + 4  # past the name, n_dims, ne[0], type
    data[at] += 1
    path = tmp_path / "broken.gguf"
    path.write_bytes(bytes(data))
    result = RUNNER.invoke(app, ["validate", "--data", str(path), *output_format])
    assert result.exit_code == 3
    assert "\\x9b2J" in result.stdout
    for stream in (result.stdout, result.stderr):
        assert UNSAFE.search(stream) is None, repr(UNSAFE.search(stream))
    assert json.loads(RUNNER.invoke(app, ["validate", "--json", str(path)]).stdout)[
        "problems"][0]["field"] == f"{TENSOR} offset"


def test_error_line_escapes_a_hostile_file_name(tmp_path: Path) -> None:
    path = tmp_path / "\x1b]0;title\x07.gguf"
    path.write_bytes(b"NOPE" + bytes(60))
    result = RUNNER.invoke(app, [str(path)])
    assert result.exit_code == 3
    assert UNSAFE.search(result.stderr) is None and "\\x1b]0;title\\x07" in result.stderr
