"""The default command's body: summary plus optional sections, rendered to a string.

From Python: ``run_inspect("model.gguf", "json", embeddings=True)``.
"""

from __future__ import annotations

from gguf_inspect.analyses.inspect import InspectOptions, inspect_model
from gguf_inspect.commands import render_sections
from gguf_inspect.reader import read_gguf_source
from gguf_inspect.source import open_source


def run_inspect(location: str, output_format: str, **options: object) -> str:
    """The default command: summary plus the sections named in ``options``."""
    source = open_source(location)
    try:
        gguf = read_gguf_source(source)
        report = inspect_model(gguf, source, InspectOptions(**options))  # type: ignore[arg-type]
    finally:
        source.close()
    if output_format == "json":
        from gguf_inspect.render.inspect import inspect_json

        return inspect_json(report)
    from gguf_inspect.render.inspect import inspect_sections

    return render_sections(inspect_sections(report), output_format)
