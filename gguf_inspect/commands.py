"""Command bodies: open the model, run the analysis, render to a string. The CLI only prints.

Kept apart from ``cli.py`` so the CLI stays free of logic and so the same calls can be used
from Python (``run_inspect("model.gguf", "json", embeddings=True)``).
"""

from __future__ import annotations

from gguf_inspect.analyses.inspect import InspectOptions, inspect_model
from gguf_inspect.reader import read_gguf_source
from gguf_inspect.source import open_source


def render_sections(sections: list, output_format: str) -> str:  # type: ignore[type-arg]
    from gguf_inspect.render.document import draw_markdown, draw_terminal

    return draw_markdown(sections) if output_format == "markdown" else draw_terminal(sections)


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
