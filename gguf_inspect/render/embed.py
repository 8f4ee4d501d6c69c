"""Rendering of ``gguf-inspect embed``: the layout for table/markdown, and the JSON contract
``{schema_version, query: {...}, results: [{token, id, score}], ...}``."""

from __future__ import annotations

import math
from typing import Any, Sequence

from gguf_inspect.reports.embed import (
    CrossFileCosine,
    EmbeddingStats,
    EmbedReport,
    Exploration,
    Neighbour,
    ResolvedToken,
    RowDrift,
    TokenRef,
)
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.text import json_text
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table

BAR_WIDTH = 30  # characters of the longest histogram bar
LABELS = ("A", "B")  # the two files of --vs, in the order given
MAX_VARIANTS_LISTED = 6  # variants of one input named in the table (JSON lists them all)


def format_token(token: str | None) -> str:
    """A token string quoted, so leading spaces and empty tokens stay visible."""
    return "-" if token is None else repr(token)


def format_score(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_drift(value: float | None) -> str:
    """A cross-file cosine: six digits, since quantization moves rows by 1e-4 or less; more
    when six would round a cosine below 1 up to ``1.000000`` (a row that moved reads as moved)."""
    if value is None or value >= 1 or not math.isfinite(value):
        return format_score(value, 6)
    for digits in range(6, 17):
        text = format_score(value, digits)
        if float(text) < 1:
            return text
    return format_score(value, 16)


def _expression(report: EmbedReport) -> str:
    words = report.query.words
    if report.query.operation == "analogy":
        return f"{words[0]} - {words[1]} + {words[2]}"
    if report.query.operation == "stats":
        return "whole vocabulary"
    return words[0]


def _title(report: EmbedReport) -> str:
    operation = report.query.operation
    if operation == "nearest":
        return f"nearest to {report.query.words[0]} by cosine (the word itself excluded)"
    if operation == "analogy":
        return f"analogy {_expression(report)} by cosine (the three inputs excluded)"
    return operation


def _input_text(item: ResolvedToken) -> str:
    text = f"{format_token(item.token)} (id {item.id}, by {item.method})"
    if not item.variants:
        return text
    kept_out = set(item.excluded)
    listed = ", ".join(format_token(ref.token) for ref in item.variants[:MAX_VARIANTS_LISTED])
    more = f" and {len(item.variants) - MAX_VARIANTS_LISTED} more" if (
        len(item.variants) > MAX_VARIANTS_LISTED) else ""
    how = ("left out of the answers; --keep-variants keeps them"
           if all(ref.id in kept_out for ref in item.variants) else "kept in the answers")
    return f"{text}; variants {listed}{more} {how}"


def _matrix_text(exploration: Exploration) -> str:
    matrix = exploration.matrix
    return f"{matrix.tensor}, {matrix.type}, {matrix.n_rows} x {matrix.n_cols}"


def _query_section(report: EmbedReport) -> KeyValues:
    files = [report.primary] + ([report.other] if report.other is not None else [])
    multiple = len(files) > 1
    rows: list[tuple[str, str]] = []
    for label, exploration in zip(LABELS, files):
        prefix = f"{label}: " if multiple else ""
        rows.append((f"{prefix}file", exploration.matrix.path))
        rows.append((f"{prefix}matrix", _matrix_text(exploration)))
        for item in exploration.inputs:
            rows.append((f"{prefix}{item.word}", _input_text(item)))
    rows.insert(0, ("query", f"{report.query.operation}: {_expression(report)}"))
    return KeyValues("query", rows)


def _results_table(report: EmbedReport) -> Table:
    columns = [report.primary.results]
    if report.other is not None:
        columns.append(report.other.results)
    headers = ["rank"]
    for label in LABELS[:len(columns)]:
        suffix = f" ({label})" if len(columns) > 1 else ""
        headers += [f"token{suffix}", f"id{suffix}", f"cosine{suffix}"]
    rows = []
    for rank in range(max(len(results) for results in columns)):
        row = [str(rank + 1)]
        for results in columns:
            row += _neighbour_cells(results[rank] if rank < len(results) else None)
        rows.append(row)
    numeric = frozenset(index for index, name in enumerate(headers)
                        if name.startswith(("rank", "id", "cosine")))
    return Table(_title(report), headers, rows, numeric_columns=numeric)


def _neighbour_cells(item: Neighbour | None) -> list[str]:
    if item is None:
        return ["", "", ""]
    return [format_token(item.token), str(item.id), format_score(item.score)]


def _cross_file_table(cross_file: Sequence[CrossFileCosine]) -> Table:
    return Table("same token in both files: cosine of row A with row B",
                 ["token", "id", "cosine A~B"],
                 [[format_token(item.token), str(item.id), format_drift(item.cosine)]
                  for item in cross_file], numeric_columns=frozenset({1, 2}))


def _row_sections(report: EmbedReport) -> list[Section]:
    files = [report.primary] + ([report.other] if report.other is not None else [])
    fields = [("norm", lambda row: f"{row.norm:.6g}"), ("min", lambda row: f"{row.minimum:.6g}"),
              ("max", lambda row: f"{row.maximum:.6g}"), ("mean", lambda row: f"{row.mean:.6g}"),
              ("first values", lambda row: ", ".join(f"{v:.4g}" for v in row.first_values))]
    rows = [[name] + [describe(exploration.row) for exploration in files]
            for name, describe in fields]
    headers = ["", *(LABELS[:len(files)] if len(files) > 1 else ["value"])]
    return [Table(f"row of {report.query.words[0]}", headers, rows)]


def _histogram_rows(stats: EmbeddingStats) -> list[list[str]]:
    largest = max(item.count for item in stats.histogram) or 1
    edges = edge_labels([item.low for item in stats.histogram] + [stats.histogram[-1].high])
    return [[f"{edges[index]} .. {edges[index + 1]}", f"{item.count:,}",
             "#" * round(BAR_WIDTH * item.count / largest)]
            for index, item in enumerate(stats.histogram)]


def edge_labels(edges: Sequence[float], least: int = 4) -> list[str]:
    """Bin edges with as many significant digits as it takes (``least`` at least) for each to
    read differently from its neighbours: norms packed into 1.0280 .. 1.0281 would all read
    ``1.028`` at four digits."""
    for digits in range(least, 18):  # 17 digits tell any two different doubles apart
        labels = [f"{edge:.{digits}g}" for edge in edges]
        if all(left != right for left, right in zip(labels, labels[1:])):
            return labels
    return labels


def _refs(refs: Sequence[TokenRef]) -> str:
    return ", ".join(f"{format_token(ref.token)} ({ref.id})" for ref in refs)


def _stats_sections(exploration: Exploration, label: str) -> list[Section]:
    stats = exploration.stats
    assert stats is not None
    prefix = f"{label}: " if label else ""
    summary = [
        ("file", exploration.matrix.path),
        ("matrix", _matrix_text(exploration)),
        ("row norm min / median / mean / max",
         f"{stats.norm_min:.4g} / {stats.norm_median:.4g} / {stats.norm_mean:.4g} / "
         f"{stats.norm_max:.4g}"),
        ("near-zero rows", f"{stats.near_zero_count:,} (norm <= {stats.near_zero_threshold:.4g}, "
                           "1% of the median)"),
        ("duplicate rows", f"{stats.duplicate_rows:,} repeat an earlier row exactly "
                           f"(groups of identical rows: {stats.duplicate_groups:,})"),
    ]
    if stats.non_finite_rows:
        summary.append(("rows with NaN/inf", f"{stats.non_finite_rows:,}"))
    sections: list[Section] = [
        KeyValues(f"{prefix}embedding rows", summary),
        Table(f"{prefix}row norm histogram", ["norm", "rows", ""], _histogram_rows(stats),
              numeric_columns=frozenset({1})),
    ]
    if stats.near_zero_examples:
        sections.append(Paragraph(f"{prefix}near-zero rows (first {len(stats.near_zero_examples)})",
                                  _refs(stats.near_zero_examples)))
    if stats.duplicate_examples:
        sections.append(Table(
            f"{prefix}duplicate groups (largest first)", ["rows", "tokens (first few)"],
            [[str(group.size), _refs(group.members)] for group in stats.duplicate_examples],
            numeric_columns=frozenset({0})))
    return sections


def _drift_sections(drift: RowDrift) -> list[Section]:
    summary = KeyValues("every row, A vs B (cosine of the same token's rows)", [
        ("mean", format_drift(drift.mean)), ("1st percentile", format_drift(drift.percentile_1)),
        ("minimum", format_drift(drift.minimum))])
    if not drift.moved_most:
        return [summary, Paragraph("rows that moved most", "none: every row's cosine A~B is 1 "
                                   "(each row points the same way in both files)")]
    moved = Table("rows that moved most", ["token", "id", "cosine A~B"],
                  [[format_token(item.token), str(item.id), format_drift(item.cosine)]
                   for item in drift.moved_most], numeric_columns=frozenset({1, 2}))
    return [summary, moved]


def embed_sections(report: EmbedReport) -> list[Section]:
    operation = report.query.operation
    sections: list[Section] = []
    if operation == "stats":
        files = [report.primary] + ([report.other] if report.other is not None else [])
        for label, exploration in zip(LABELS, files):
            sections += _stats_sections(exploration, label if len(files) > 1 else "")
        if report.drift is not None:
            sections += _drift_sections(report.drift)
    else:
        sections.append(_query_section(report))
        sections += _row_sections(report) if operation == "token" else [_results_table(report)]
        if report.other is not None and report.cross_file:
            sections.append(_cross_file_table(report.cross_file))
    if report.notes:
        sections.append(Paragraph("notes", "\n".join(f"note: {note}" for note in report.notes)))
    return sections


# ---- JSON ---------------------------------------------------------------------------------------

def _number(value: float) -> float | None:
    """NaN and infinity are not JSON: a row holding them shows null."""
    return value if math.isfinite(value) else None


def _token_json(item: ResolvedToken) -> dict[str, Any]:
    return {"word": item.word, "token": item.token, "id": item.id, "resolved_by": item.method,
            "variants": [_ref_json(ref) for ref in item.variants],
            "excluded_ids": list(item.excluded)}


def _ref_json(ref: TokenRef) -> dict[str, Any]:
    return {"token": ref.token, "id": ref.id}


def _stats_json(stats: EmbeddingStats) -> dict[str, Any]:
    return {
        "norm": {"min": stats.norm_min, "median": stats.norm_median, "mean": stats.norm_mean,
                 "max": stats.norm_max},
        "histogram": [{"low": item.low, "high": item.high, "count": item.count}
                      for item in stats.histogram],
        "near_zero": {"threshold": stats.near_zero_threshold, "count": stats.near_zero_count,
                      "examples": [_ref_json(ref) for ref in stats.near_zero_examples]},
        "duplicates": {"rows": stats.duplicate_rows, "groups": stats.duplicate_groups,
                       "examples": [{"size": group.size,
                                     "members": [_ref_json(ref) for ref in group.members]}
                                    for group in stats.duplicate_examples]},
        "non_finite_rows": stats.non_finite_rows,
    }


def _exploration_json(exploration: Exploration) -> dict[str, Any]:
    """The per-file part: which matrix, how the words resolved, and the answer."""
    matrix = exploration.matrix
    body: dict[str, Any] = {
        "file": matrix.path, "tensor": matrix.tensor, "type": matrix.type,
        "n_vocab": matrix.n_rows, "n_embd": matrix.n_cols,
        "inputs": [_token_json(item) for item in exploration.inputs],
        "results": [{"token": item.token, "id": item.id, "score": item.score}
                    for item in exploration.results],
    }
    if exploration.row is not None:
        row = exploration.row
        body["row"] = {"norm": _number(row.norm), "min": _number(row.minimum),
                       "max": _number(row.maximum), "mean": _number(row.mean),
                       "first_values": [_number(value) for value in row.first_values]}
    if exploration.stats is not None:
        body["stats"] = _stats_json(exploration.stats)
    return body


def _cross_json(item: CrossFileCosine) -> dict[str, Any]:
    return {"token": item.token, "id": item.id, "cosine": item.cosine}


def embed_json(report: EmbedReport) -> str:
    primary = _exploration_json(report.primary)
    query = {"operation": report.query.operation, "words": list(report.query.words),
             "top_k": report.query.top_k}
    query.update({key: primary.pop(key) for key in ("file", "tensor", "type", "n_vocab",
                                                      "n_embd", "inputs")})
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "query": query}
    document.update(primary)
    if report.other is not None:
        document["vs"] = _exploration_json(report.other)
        document["cross_file"] = [_cross_json(item) for item in report.cross_file]
    if report.drift is not None:
        document["drift"] = {"mean": report.drift.mean, "min": report.drift.minimum,
                             "percentile_1": report.drift.percentile_1,
                             "moved_most": [_cross_json(item) for item in report.drift.moved_most]}
    document["notes"] = list(report.notes)
    return json_text(document)
