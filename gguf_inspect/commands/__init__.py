"""Command bodies, one module per subcommand: open the model(s), run the analysis, render to a
string and pick the exit code. ``cli.py`` only parses arguments, calls these and prints.

Kept apart from ``cli.py`` so the CLI stays free of logic and the same calls work from Python.
"""

from __future__ import annotations

from typing import Sequence

from gguf_inspect.render.document import Section


def render_sections(sections: Sequence[Section], output_format: str) -> str:
    """Draw a laid-out report as a terminal table (``table``) or markdown (``markdown``)."""
    from gguf_inspect.render.document import draw_markdown, draw_terminal

    return draw_markdown(sections) if output_format == "markdown" else draw_terminal(sections)
