"""Command bodies, one module per subcommand, all under one contract: open the model(s), build
the report, render it in the asked ``OutputFormat``, and return ``(text, exit code)``.

``cli.py`` only parses arguments, calls these with the ``Streams`` it was given once (progress
and diagnostics go to ``streams.stderr``; the returned text is printed to ``streams.stdout``)
and maps a raised error to its exit code (``core.errors.exit_code_for``). The same calls work
from Python: ``run_inspect("model.gguf", OutputFormat.JSON)``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Sequence, TextIO, TypeVar

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


def render(report: Report, output_format: OutputFormat | str,
           to_json: Callable[[Report], str],
           to_sections: Callable[[Report], Sequence[Section]]) -> str:
    """The one render dispatch: JSON from the report's JSON renderer, otherwise its laid-out
    sections drawn as a terminal table or as markdown."""
    chosen = OutputFormat(output_format)
    if chosen is OutputFormat.JSON:
        return to_json(report)
    return render_sections(to_sections(report), chosen)


def render_sections(sections: Sequence[Section], output_format: OutputFormat | str) -> str:
    """Draw a laid-out report as a terminal table or as markdown."""
    from gguf_inspect.render.document import draw_markdown, draw_terminal

    if OutputFormat(output_format) is OutputFormat.MARKDOWN:
        return draw_markdown(sections)
    return draw_terminal(sections)
