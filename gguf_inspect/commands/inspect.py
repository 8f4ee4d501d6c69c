"""The default command's body: summary plus optional sections, rendered to a string.

From Python: ``run_inspect("model.gguf", OutputFormat.JSON, embeddings=True)`` returns
``(text, exit code)``.
"""

from __future__ import annotations

from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.gguf.open import open_model
from gguf_inspect.render.inspect import inspect_json, inspect_sections
from gguf_inspect.reports.inspect import InspectOptions, inspect_model


def run_inspect(location: str, output_format: OutputFormat | str,
                options: InspectOptions | None = None) -> CommandResult:
    """The default command: summary plus the sections named in ``options``; exit 0."""
    options = options or InspectOptions()
    with open_model(location) as model:
        report = inspect_model(model, options)
    # --full also lifts the terminal cut of long values (JSON is never cut).
    return render(report, output_format, inspect_json,
                  lambda done: inspect_sections(done, options.full),
                  fit=not options.full), ExitCode.OK
