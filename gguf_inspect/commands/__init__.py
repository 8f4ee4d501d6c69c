"""Command bodies, one module per subcommand, all under one contract: open the model(s), build
the report, render it in the asked ``OutputFormat``, and return ``(text, exit code)``.

The CLI (``cli/``) only parses arguments, calls these with the ``Streams`` it was given once (progress
and diagnostics go to ``streams.stderr``; the returned text is printed to ``streams.stdout``)
and maps a raised error to its exit code (``core.errors.exit_code_for``). The same calls work
from Python: ``run_inspect("model.gguf", OutputFormat.JSON)``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator, Sequence, TextIO, TypeVar

from gguf_inspect.render.document import Section

Report = TypeVar("Report")
CommandResult = tuple[str, int]  # (rendered text, ExitCode)


class OutputFormat(str, Enum):
    """``--json``, ``--markdown`` or the default terminal table."""

    TABLE = "table"
    MARKDOWN = "markdown"
    JSON = "json"


@dataclass(frozen=True)
class Streams:
    """Where a command's output goes, chosen once by the caller (httpie's ``main(args, env)``
    shape): tests pass ``io.StringIO`` objects, the console script the process's streams."""

    stdout: TextIO
    stderr: TextIO

    @classmethod
    def system(cls) -> "Streams":
        """The process's streams as they are now (pytest and typer's CliRunner swap them)."""
        return cls(sys.stdout, sys.stderr)


# The stream the returned text will be printed to, set by the caller for the run (a context
# variable, so the run_* signatures stay (arguments) -> (text, code) for library callers).
_OUTPUT_STREAM: ContextVar[TextIO | None] = ContextVar("output_stream", default=None)


@contextmanager
def writing_to(stream: TextIO) -> Iterator[None]:
    """Fit tables to ``stream`` (the Streams' stdout) rather than the process's sys.stdout."""
    token = _OUTPUT_STREAM.set(stream)
    try:
        yield
    finally:
        _OUTPUT_STREAM.reset(token)


# Default tables are fitted to the terminal but never narrower than this: below it the tables
# would be mostly ellipses. COLUMNS (or the real width) above it is used as it is.
MIN_TERMINAL_WIDTH = 100


def terminal_width() -> int | None:
    """The width to fit tables to: COLUMNS when set, else the real terminal's width when
    the output stream is a terminal, never under MIN_TERMINAL_WIDTH. None (no fitting) when output goes
    to a pipe or file and COLUMNS is unset: ``| grep`` sees whole lines, as with ``ls``."""
    import os

    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_TERMINAL_WIDTH, int(columns))
    stream = _OUTPUT_STREAM.get() or sys.stdout
    try:
        if not stream.isatty():
            return None
        return max(MIN_TERMINAL_WIDTH, os.get_terminal_size(stream.fileno()).columns)
    except (AttributeError, ValueError, OSError):  # a replaced or closed stdout
        return None


def render(report: Report, output_format: OutputFormat | str,
           to_json: Callable[[Report], str],
           to_sections: Callable[[Report], Sequence[Section]], *, fit: bool = True) -> str:
    """The one render dispatch: JSON from the report's JSON renderer, otherwise its laid-out
    sections drawn as a terminal table (fitted to the terminal's width unless ``fit`` is
    False, as for --full) or as markdown. JSON and markdown are never cut."""
    chosen = OutputFormat(output_format)
    if chosen is OutputFormat.JSON:
        return to_json(report)
    return render_sections(to_sections(report), chosen, fit=fit)


def render_sections(sections: Sequence[Section], output_format: OutputFormat | str, *,
                    fit: bool = True) -> str:
    """Draw a laid-out report as a terminal table or as markdown."""
    from gguf_inspect.render.document import draw_markdown, draw_terminal

    if OutputFormat(output_format) is OutputFormat.MARKDOWN:
        return draw_markdown(sections)
    return draw_terminal(sections, terminal_width() if fit else None)
