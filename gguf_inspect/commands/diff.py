"""The ``diff`` command's body: open both files, diff them, render, and pick the exit code.

From Python: ``run_diff("a.gguf", "b.gguf", OutputFormat.JSON, values="embeddings")`` returns
``(text, exit_code)``; pass ``progress_stream=sys.stderr`` to see progress on long diffs.
"""

from __future__ import annotations

from typing import Callable, TextIO

from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.commands.progress import PhasedProgress
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.gguf.open import open_model
from gguf_inspect.render.diff import diff_json, diff_sections, progress_line
from gguf_inspect.reports.diff import DiffOptions, ProgressEvent, diff_models


class StderrProgress:
    """Progress of hashing tensor data, then of a value diff, once the diff has run for a second;
    each task from its own 0% (see PhasedProgress)."""

    def __init__(self, stream: TextIO, delay: float = 1.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.progress = PhasedProgress(stream, delay=delay, clock=clock)

    def __call__(self, event: ProgressEvent) -> None:
        self.progress.show(type(event), progress_line(event), event.fraction)

    def finish(self) -> None:
        self.progress.finish()


def run_diff(location_a: str, location_b: str, output_format: OutputFormat | str, *,
             show_all: bool = False, values: str | None = None, sample: int | None = None,
             seed: int = 0, data_hash: bool | None = None, exit_code: bool = False,
             progress_stream: TextIO | None = None) -> CommandResult:
    """Diff B against A; the exit code is DIFFERS only with ``exit_code`` and a difference.

    ``data_hash``: hash same-type same-shape tensors' bytes always (True), never (False), or
    unless a side is remote (None).
    """
    options = DiffOptions(values=values, sample=sample, seed=seed, data_hash=data_hash)
    progress = StderrProgress(progress_stream) if progress_stream is not None else None
    try:
        with open_model(location_a) as model_a, open_model(location_b) as model_b:
            report = diff_models(model_a, model_b, options, progress)
    finally:
        if progress is not None:
            progress.finish()
    code = ExitCode.DIFFERS if exit_code and report.differs else ExitCode.OK
    text = render(report, output_format, lambda done: diff_json(done, show_all),
                  lambda done: diff_sections(done, show_all))
    return text, code
