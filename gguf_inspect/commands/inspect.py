"""The default command's body: summary plus optional sections, rendered to a string.

From Python: ``run_inspect("model.gguf", "json", embeddings=True)``.
"""

from __future__ import annotations

from gguf_inspect.reports.inspect import InspectOptions, inspect_model
from gguf_inspect.commands import render_sections
from gguf_inspect.gguf.open import open_model


def run_inspect(location: str, output_format: str, **options: object) -> str:
    """The default command: summary plus the sections named in ``options``."""
    with open_model(location) as model:
        report = inspect_model(model.file, model.source,
                               InspectOptions(**options))  # type: ignore[arg-type]
    if output_format == "json":
        from gguf_inspect.render.inspect import inspect_json

        return inspect_json(report)
    from gguf_inspect.render.inspect import inspect_sections

    return render_sections(inspect_sections(report, bool(options.get("full"))), output_format)
