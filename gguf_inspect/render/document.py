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


# A cell wider than this is drawn as it is, neither padded to nor widening its column: one long
# value (``--full``) must not pad every row of its table to its width (a 1 MB string among 500
# keys would draw 500 MB).
PAD_LIMIT = 200


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int],
          markdown: bool, header_rule: bool = True) -> str:
    """A table with each column padded to its widest cell of at most PAD_LIMIT characters
    (tabulate's ``simple``/``pipe`` look); longer cells overflow, so the text stays the size of
    its cells plus bounded padding."""
    n_columns = max([len(headers)] + [len(row) for row in rows])
    widths = [0] * n_columns
    for row in [headers, *rows]:
        for index, cell in enumerate(row):
            if len(cell) <= PAD_LIMIT:
                widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(widths[index]) if index in numeric else cell.ljust(widths[index])
                  for index, cell in enumerate(cells)]
        return ("| " + " | ".join(padded) + " |") if markdown else "  ".join(padded).rstrip()

    out = [line(headers)] if headers else []
    if header_rule and headers:
        if markdown:
            out.append("|" + "|".join(("-" * (width + 1) + ":") if index in numeric else
                                      (":" + "-" * (width + 1))
                                      for index, width in enumerate(widths)) + "|")
        else:
            out.append("  ".join("-" * width for width in widths))
    out += [line(row) for row in rows]
    return "\n".join(out)


def _oversized(rows: Sequence[Sequence[str]]) -> bool:
    return any(len(cell) > PAD_LIMIT for row in rows for cell in row)


def draw_terminal(sections: Sequence[Section]) -> str:
    """Plain-text tables for a terminal; every cell is escaped (metadata is untrusted)."""
    from tabulate import tabulate  # lazy: only the text formats need it

    from gguf_inspect.render.text import escape_terminal

    blocks = []
    for section in sections:
        heading = f"== {escape_terminal(section.title)} =="
        if isinstance(section, KeyValues):
            rows = [[escape_terminal(k), escape_terminal(v)] for k, v in section.rows]
            body = _grid([], rows, frozenset(), False) if _oversized(rows) else tabulate(
                rows, tablefmt="plain", disable_numparse=True)
        elif isinstance(section, Table):
            rows = [[escape_terminal(cell) for cell in row] for row in section.rows]
            if _oversized(rows):
                body = _grid(list(section.headers), rows, section.numeric_columns, False)
            else:
                body = tabulate(rows, headers=list(section.headers), tablefmt="simple",
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
            body = _grid(["", ""], rows, frozenset(), True) if _oversized(rows) else tabulate(
                rows, headers=["", ""], tablefmt="pipe", disable_numparse=True)
        elif isinstance(section, Table):
            rows = [[escape_markdown(cell) for cell in row] for row in section.rows]
            headers = [escape_markdown(h) for h in section.headers]
            if _oversized(rows):
                body = _grid(headers, rows, section.numeric_columns, True)
            else:
                body = tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True,
                                colalign=_align(section))
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
