"""``gguf-inspect validate`` body: validate a model, render the report, pick the exit code.

From Python: ``run_validate("model.gguf", OutputFormat.JSON, data=True)`` returns
``(text, exit_code)``.
"""

from __future__ import annotations

from typing import TextIO

from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.commands.progress import ProgressLine
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.render.validate import progress_line, validate_json, validate_sections
from gguf_inspect.reports.validate import ProgressCallback, validate_file


def run_validate(location: str, output_format: OutputFormat | str, data: bool = False,
                 progress: ProgressCallback | None = None) -> CommandResult:
    """Validate ``location``; exit code 0 when valid, 3 when any error was found."""
    report = validate_file(location, data=data, progress=progress)
    code = ExitCode.OK if report.valid else ExitCode.INVALID
    return render(report, output_format, validate_json, validate_sections), code


def stderr_progress(stream: TextIO | None = None) -> ProgressCallback:
    """A progress callback for ``--data``, shown from the start (see ProgressLine)."""
    line = ProgressLine(stream, delay=0.0)

    def show(done: int, total: int, tensor: str) -> None:
        line.show(progress_line(done, total, tensor), done / total if total else 1.0)

    return show
