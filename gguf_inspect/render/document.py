"""A format-neutral layout (titled key/value blocks, tables, paragraphs) that the table and
markdown renderers both draw, so each report is laid out once and drawn in either format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union


@dataclass(frozen=True)
class KeyValues:
    title: str
    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric_columns: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Paragraph:
    title: str
    text: str


Section = Union[KeyValues, Table, Paragraph]


def draw_terminal(sections: Sequence[Section]) -> str:
    """Plain-text tables for a terminal; every cell is escaped (metadata is untrusted)."""
    from tabulate import tabulate  # lazy: only the text formats need it

    from gguf_inspect.render.text import escape_terminal

    blocks = []
    for section in sections:
        heading = f"== {escape_terminal(section.title)} =="
        if isinstance(section, KeyValues):
            rows = [[escape_terminal(k), escape_terminal(v)] for k, v in section.rows]
            body = tabulate(rows, tablefmt="plain", disable_numparse=True)
        elif isinstance(section, Table):
            rows = [[escape_terminal(cell) for cell in row] for row in section.rows]
            body = tabulate(rows, headers=[escape_terminal(h) for h in section.headers],
                            tablefmt="simple",
                            disable_numparse=True, colalign=_align(section))
        else:
            body = _wrap(section.text, escape_terminal)
        blocks.append(f"{heading}\n{body}")
    return "\n\n".join(blocks) + "\n"


def draw_markdown(sections: Sequence[Section]) -> str:
    """GitHub-flavoured markdown; cells are escaped so file strings cannot inject markup."""
    from tabulate import tabulate

    from gguf_inspect.render.text import escape_markdown

    blocks = []
    for section in sections:
        heading = f"### {escape_markdown(section.title)}"
        if isinstance(section, KeyValues):
            rows = [[escape_markdown(k), escape_markdown(v)] for k, v in section.rows]
            body = tabulate(rows, headers=["", ""], tablefmt="pipe", disable_numparse=True)
        elif isinstance(section, Table):
            rows = [[escape_markdown(cell) for cell in row] for row in section.rows]
            body = tabulate(rows, headers=[escape_markdown(h) for h in section.headers],
                            tablefmt="pipe", disable_numparse=True, colalign=_align(section))
        else:
            body = "\n\n".join(escape_markdown(line) for line in section.text.split("\n"))
        blocks.append(f"{heading}\n\n{body}")
    return "\n\n".join(blocks) + "\n"


def _wrap(text: str, escape: Callable[[str], str], width: int = 100) -> str:
    """Escape each line of a paragraph (newlines are the layout's own) and wrap it."""
    import textwrap

    return "\n".join(textwrap.fill(escape(line), width) if line else line
                     for line in text.split("\n"))


def _align(table: Table) -> list[str] | None:
    if not table.rows:
        return None
    return ["right" if index in table.numeric_columns else "left"
            for index in range(len(table.headers))]
