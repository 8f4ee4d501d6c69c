"""The command contract: every command body returns (text, exit code) through one render
dispatch; the CLI writes only to the streams given to ``main``; one map from errors to the exit
codes the README documents."""

from __future__ import annotations

import io
import json

import pytest

from gguf_inspect.cli import main
from gguf_inspect.commands import OutputFormat, Streams, render, terminal_width, writing_to
from gguf_inspect.commands.audit import run_audit
from gguf_inspect.commands.diff import run_diff
from gguf_inspect.commands.embed import run_embed
from gguf_inspect.commands.inspect import run_inspect
from gguf_inspect.commands.scan import run_scan
from gguf_inspect.commands.validate import run_validate
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import (
    FormatError,
    GGUFError,
    RuntimeUnavailableError,
    SourceError,
    TruncatedError,
    UsageError,
    error_message,
    exit_code_for,
)
from tests.conftest import fixture_path

MODEL = str(fixture_path("tiny-llama-untied-q4_k_m.gguf"))
OTHER = str(fixture_path("tiny-llama-untied-q8_0.gguf"))
PLANTED = str(fixture_path("tiny-llama-planted-q8_0.gguf"))

BODIES = {
    "inspect": lambda fmt: run_inspect(MODEL, fmt),
    "validate": lambda fmt: run_validate(MODEL, fmt),
    "diff": lambda fmt: run_diff(MODEL, OTHER, fmt),
    "embed": lambda fmt: run_embed(PLANTED, fmt, nearest="king", use_tokenizer=False),
    "scan": lambda fmt: run_scan([MODEL], fmt),
    "audit": lambda fmt: run_audit(MODEL, fmt),
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("output_format", list(OutputFormat))
def test_every_body_returns_text_and_an_exit_code(name: str, output_format: OutputFormat) -> None:
    text, code = BODIES[name](output_format)
    assert isinstance(text, str) and text
    assert code in (ExitCode.OK, ExitCode.DIFFERS)
    if output_format is OutputFormat.JSON:
        assert json.loads(text)["schema_version"] == 1
    elif output_format is OutputFormat.MARKDOWN:
        assert "|" in text and "+--" not in text


def test_the_render_dispatch_takes_the_format_names_and_nothing_else() -> None:
    assert render({"a": 1}, "json", lambda report: json.dumps(report), lambda _: []) == '{"a": 1}'
    with pytest.raises(ValueError):
        render({}, "yaml", lambda report: "", lambda _: [])


def test_main_writes_only_to_the_streams_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        main([MODEL, "--json"], Streams(out, err))
    assert exit_info.value.code == ExitCode.OK
    assert json.loads(out.getvalue())["model"]
    assert err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-file.gguf"], Streams(out, err))
    assert exit_info.value.code == ExitCode.IO
    assert out.getvalue() == ""
    assert err.getvalue().startswith("error: no-such-file.gguf") and err.getvalue().count("\n") == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


class _Terminal(io.StringIO):
    """A stream that says it is a terminal of 150 columns."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1


def test_tables_fit_the_stream_they_are_printed_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """The width follows the Streams' stdout given to main, not the process's sys.stdout: a
    pipe-like stream gets whole lines although the process's stdout is a 150-column terminal,
    and a terminal stream gets its own width."""
    import os

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((150, 40)))
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert terminal_width() == 150
    with writing_to(io.StringIO()):
        assert terminal_width() is None
    with writing_to(_Terminal()):
        assert terminal_width() == 150
    widths = {}
    for name, out in (("pipe", io.StringIO()), ("terminal", _Terminal())):
        with pytest.raises(SystemExit):
            main([MODEL, "--metadata"], Streams(out, io.StringIO()))
        widths[name] = max(len(line) for line in out.getvalue().splitlines())
    assert widths["terminal"] <= 150 < widths["pipe"]  # the pipe's lines are whole


@pytest.mark.parametrize("error, code", [
    (UsageError("bad --gpu"), 2),
    (FormatError("bad magic", path="m.gguf", offset=0, field="magic"), 3),
    (TruncatedError("file ends", offset=9), 3),
    (GGUFError("anything else of ours"), 3),
    (KeyError("missing key"), 3),
    (SourceError("cannot open", path="m.gguf"), 4),
    (FileNotFoundError(2, "No such file or directory", "m.gguf"), 4),
    (RuntimeUnavailableError("llama.cpp refused the model"), 5),
])
def test_one_map_from_errors_to_the_documented_exit_codes(error: BaseException,
                                                          code: int) -> None:
    """README's exit-code table: 2 usage, 3 invalid GGUF, 4 I/O, 5 runtime."""
    assert exit_code_for(error) == code


def test_error_messages_are_one_line_without_python_decoration() -> None:
    assert error_message(KeyError("no tokenizer")) == "no tokenizer"
    assert error_message(FileNotFoundError(2, "No such file or directory", "m.gguf")) == (
        "m.gguf: No such file or directory")
    assert error_message(FormatError("bad", path="m.gguf", offset=4, field="version")) == (
        "m.gguf: bad at byte 4 (version)")
