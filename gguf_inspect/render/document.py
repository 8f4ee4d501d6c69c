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
PARAGRAPH_WIDTH = 100  # paragraphs wrap here when no terminal width is given


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


# The narrowest a fitted column is cut to, and the mark a cut cell ends with.
MIN_COLUMN = 8
ELLIPSIS = "\u2026"
COLUMN_GAP = 2  # tabulate's "simple" and "plain" formats put two spaces between columns
HEADER_PADDING = 2  # tabulate's MIN_PADDING: a column is at least its header plus two
WRAP_LIMIT = 1000  # a last-column cell longer than this is cut, not wrapped over many lines


def _cut(cell: str, width: int) -> str:
    """The cell in ``width`` characters: a path or URL keeps its end (the file name), other
    text its start."""
    if len(cell) <= width:
        return cell
    if "/" in cell and " " not in cell:
        return ELLIPSIS + cell[len(cell) - width + 1:]
    return cell[:max(width - 1, 0)] + ELLIPSIS


def _cap(widths: Sequence[int], fixed: frozenset[int], width: int) -> int | None:
    """The largest column width that makes the row fit in ``width`` when every column not in
    ``fixed`` is cut to it (None: it fits already)."""
    total = sum(widths) + COLUMN_GAP * (len(widths) - 1)
    if total <= width:
        return None
    cap = max(widths)
    while cap > MIN_COLUMN and sum(w if i in fixed else min(w, cap) for i, w in
                                   enumerate(widths)) + COLUMN_GAP * (len(widths) - 1) > width:
        cap -= 1
    return cap


def fit_rows(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int],
             width: int | None) -> tuple[list[str], list[list[str]]]:
    """Cut the widest text columns (never the numbers) with an ellipsis until a line fits in
    ``width`` characters; ``width`` None leaves every cell whole (--full, markdown)."""
    headers, rows = list(headers), [list(row) for row in rows]
    if width is None or not (headers or rows):
        return headers, rows
    n_columns = max([len(headers)] + [len(row) for row in rows])
    widths = [0] * n_columns
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    for index, header in enumerate(headers):  # tabulate pads to the header plus HEADER_PADDING
        wanted = len(header) + HEADER_PADDING
        # a number column keeps its numbers whole; its header is cut to them instead
        widths[index] = max(widths[index], min(wanted, MIN_COLUMN) if index in numeric
                            else wanted)
    cap = _cap(widths, numeric, width)
    if cap is None:
        return headers, rows
    last = n_columns - 1

    def fitted(index: int, cell: str, padding: int) -> str:
        limit = (widths[index] if index in numeric else cap) - padding
        if index == last and index not in numeric and not padding:
            return _wrapped(cell, limit)  # the last column is text to read: wrapped, not cut
        return _cut(cell, limit)

    return ([fitted(index, header, HEADER_PADDING) for index, header in enumerate(headers)],
            [[fitted(index, cell, 0) for index, cell in enumerate(row)] for row in rows])


def _wrapped(cell: str, width: int) -> str:
    """A long last-column cell as several lines of ``width`` (tabulate draws multi-line cells);
    a cell too long even so (over WRAP_LIMIT characters) is cut."""
    import textwrap

    if len(cell) <= width:
        return cell
    if len(cell) > WRAP_LIMIT:
        return _cut(cell, width)
    return "\n".join(textwrap.wrap(cell, width, break_long_words=True)) or cell


def _oversized(rows: Sequence[Sequence[str]]) -> bool:
    return any(len(line) > PAD_LIMIT for row in rows for cell in row
               for line in cell.split("\n"))


def draw_terminal(sections: Sequence[Section], width: int | None = None) -> str:
    """Plain-text tables for a terminal; every cell is escaped (metadata is untrusted). With a
    ``width``, tables are cut to fit it (see ``fit_rows``) and paragraphs wrapped to it."""
    from tabulate import tabulate  # lazy: only the text formats need it

    from gguf_inspect.render.text import escape_terminal

    blocks = []
    for section in sections:
        heading = f"== {escape_terminal(section.title)} =="
        if isinstance(section, KeyValues):
            rows = [[escape_terminal(k), escape_terminal(v)] for k, v in section.rows]
            _, rows = fit_rows([], rows, frozenset({0}), width)
            body = _grid([], rows, frozenset(), False) if _oversized(rows) else tabulate(
                rows, tablefmt="plain", disable_numparse=True)
        elif isinstance(section, Table) and not section.rows:
            body = "(none)"  # a table with no rows: its headers would only be noise
        elif isinstance(section, Table):
            rows = [[escape_terminal(cell) for cell in row] for row in section.rows]
            headers, rows = fit_rows([escape_terminal(h) for h in section.headers], rows,
                                     section.numeric_columns, width)
            if _oversized(rows):
                body = _grid(headers, rows, section.numeric_columns, False)
            else:
                body = tabulate(rows, headers=headers, tablefmt="simple",
                                disable_numparse=True, colalign=_align(section))
        else:
            body = _wrap(section.text, escape_terminal, width or PARAGRAPH_WIDTH)
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
        elif isinstance(section, Table) and not section.rows:
            body = "(none)"  # as in the terminal: headers over no rows are only noise
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


def _wrap(text: str, escape: Callable[[str], str], width: int) -> str:
    """Escape each line of a paragraph (newlines are the layout's own) and wrap it."""
    import textwrap

    return "\n".join(textwrap.fill(escape(line), width) if line else line
                     for line in text.split("\n"))


def _align(table: Table) -> list[str] | None:
    if not table.rows:
        return None
    return ["right" if index in table.numeric_columns else "left"
            for index in range(len(table.headers))]
