"""``gguf-inspect validate`` body: validate a model, render the report, pick the exit code.

From Python: ``run_validate("model.gguf", "json", data=True)`` returns ``(text, exit_code)``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from gguf_inspect.analyses.validate import ProgressCallback, validate_file
from gguf_inspect.commands import render_sections
from gguf_inspect.constants import ExitCode

NON_TTY_STEP = 0.1  # without a terminal, print a progress line every 10% instead of redrawing


def run_validate(location: str, output_format: str, data: bool = False,
                 progress: ProgressCallback | None = None) -> tuple[str, int]:
    """Validate ``location``; exit code 0 when valid, 3 when any error was found."""
    report = validate_file(location, data=data, progress=progress)
    code = ExitCode.OK if report.valid else ExitCode.INVALID
    if output_format == "json":
        from gguf_inspect.render.validate import validate_json

        return validate_json(report), code
    from gguf_inspect.render.validate import validate_sections

    return render_sections(validate_sections(report), output_format), code


def stderr_progress(stream: TextIO | None = None) -> ProgressCallback:
    """A progress callback for ``--data``: one redrawn line on a terminal, else a line per 10%."""
    from gguf_inspect.render.validate import progress_line

    out = stream or sys.stderr
    interactive = out.isatty()
    next_step = [0.0]  # mutable: the next fraction to print at when not on a terminal

    def show(done: int, total: int, tensor: str) -> None:
        fraction = done / total if total else 1.0
        if interactive:
            end = "\n" if done >= total else ""
            out.write(f"\r\x1b[2K{progress_line(done, total, tensor)}{end}")
        elif fraction >= next_step[0]:
            out.write(progress_line(done, total, tensor) + "\n")
            next_step[0] = (int(fraction / NON_TTY_STEP) + 1) * NON_TTY_STEP
        out.flush()

    return show
