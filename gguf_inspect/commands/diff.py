"""The ``diff`` command's body: open both files, diff them, render, and pick the exit code.

From Python: ``run_diff("a.gguf", "b.gguf", "json", values="embeddings")`` returns
``(text, exit_code)``; pass ``progress_stream=sys.stderr`` to see progress on long value diffs.
"""

from __future__ import annotations

from typing import Callable, TextIO

from gguf_inspect.analyses.diff import DiffOptions, ValuesProgress, diff_models
from gguf_inspect.commands import render_sections
from gguf_inspect.commands.progress import ProgressLine
from gguf_inspect.constants import ExitCode
from gguf_inspect.reader import read_gguf_source
from gguf_inspect.source import open_source

class StderrProgress:
    """Progress of a value diff, shown once the work has run for a second (see ProgressLine)."""

    def __init__(self, stream: TextIO, delay: float = 1.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.line = ProgressLine(stream, delay=delay, clock=clock)

    def __call__(self, event: ValuesProgress) -> None:
        from gguf_inspect.render.diff import progress_line

        self.line.show(progress_line(event), event.fraction)

    def finish(self) -> None:
        self.line.finish()


def run_diff(location_a: str, location_b: str, output_format: str, *, show_all: bool = False,
             values: str | None = None, sample: int | None = None, seed: int = 0,
             exit_code: bool = False, progress_stream: TextIO | None = None) -> tuple[str, int]:
    """Diff B against A; the exit code is DIFFERS only with ``exit_code`` and a difference."""
    options = DiffOptions(values=values, sample=sample, seed=seed)
    progress = StderrProgress(progress_stream) if progress_stream is not None else None
    source_a = open_source(location_a)
    try:
        source_b = open_source(location_b)
        try:
            report = diff_models(read_gguf_source(source_a), read_gguf_source(source_b),
                                 source_a, source_b, options, progress)
        finally:
            source_b.close()
    finally:
        source_a.close()
        if progress is not None:
            progress.finish()
    code = ExitCode.DIFFERS if exit_code and report.differs else ExitCode.OK
    if output_format == "json":
        from gguf_inspect.render.diff import diff_json

        return diff_json(report, show_all), code
    from gguf_inspect.render.diff import diff_sections

    return render_sections(diff_sections(report, show_all), output_format), code
