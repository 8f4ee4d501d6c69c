"""The ``diff`` command's body: open both files, diff them, render, and pick the exit code.

From Python: ``run_diff("a.gguf", "b.gguf", "json", values="embeddings")`` returns
``(text, exit_code)``; pass ``progress_stream=sys.stderr`` to see progress on long value diffs.
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

from gguf_inspect.analyses.diff import DiffOptions, ValuesProgress, diff_models
from gguf_inspect.commands import render_sections
from gguf_inspect.constants import ExitCode
from gguf_inspect.reader import read_gguf_source
from gguf_inspect.source import open_source

PROGRESS_AFTER_SECONDS = 1.0
NON_TTY_STEP = 0.1  # without a terminal, one progress line per 10%


class StderrProgress:
    """Progress of a value diff on a stream, shown only once the work has run for a second.

    On a terminal one line is redrawn in place; into a file or pipe a line is written every
    10%, so logs stay readable. Quick diffs print nothing.
    """

    def __init__(self, stream: TextIO, delay: float = PROGRESS_AFTER_SECONDS,
                 clock: Callable[[], float] | None = None) -> None:
        self.stream = stream
        self.delay = delay
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.interactive = stream.isatty()
        self.next_fraction = 0.0  # when not interactive: the next fraction to print at
        self.redrawing = False

    def __call__(self, event: ValuesProgress) -> None:
        if self.clock() - self.started < self.delay:
            return
        from gguf_inspect.render.diff import progress_line

        if self.interactive:
            self.stream.write(f"\r\x1b[2K{progress_line(event)}")
            self.redrawing = True
        elif event.fraction >= self.next_fraction:
            self.stream.write(progress_line(event) + "\n")
            self.next_fraction = (int(event.fraction / NON_TTY_STEP) + 1) * NON_TTY_STEP
        self.stream.flush()

    def finish(self) -> None:
        """End a redrawn line so whatever follows starts on a fresh line."""
        if self.redrawing:
            self.stream.write("\n")
            self.stream.flush()


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
