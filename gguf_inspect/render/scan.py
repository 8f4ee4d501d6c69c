"""Rendering of ``gguf-inspect scan``: the models table (and failures) for table/markdown, and
the JSON contract (``schema_version``, ``models``, ``failures``)."""

from __future__ import annotations

from typing import Any

from gguf_inspect.reports.scan import KV_TOKENS, ScanReport, ScanRow
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.document import Paragraph, Section, Table
from gguf_inspect.render.text import (
    format_mib,
    format_params,
    format_percent,
    json_text,
)

HEADERS = ["model", "arch", "params", "file type", "embd type", "embd bytes", "embd vs f16",
           "tied", f"KV f16 / {KV_TOKENS} ctx", "tensor bytes"]
TEMPLATE_HEADER = "template"
NUMERIC = frozenset({2, 5, 6, 8, 9})


def _maybe(value: Any, draw: Any = str) -> str:
    return "-" if value is None else draw(value)


def _row(row: ScanRow) -> list[str]:
    model = row.location if row.n_shards == 1 else f"{row.location} ({row.n_shards} shards)"
    return [
        model,
        _maybe(row.architecture),
        format_params(row.n_params),
        row.file_type,
        _maybe(row.embedding_type),
        _maybe(row.embedding_bytes, format_mib),
        _maybe(row.embedding_ratio_to_f16, format_percent),
        _maybe(row.tied_output, lambda tied: "yes" if tied else "no"),
        _maybe(row.kv_cache_bytes_per_1k_tokens, format_mib),
        format_mib(row.tensor_bytes),
    ]


def _template_cell(row: ScanRow) -> str:
    return row.template + (" (error: see audit)" if row.template_error else "")


def scan_sections(report: ScanReport) -> list[Section]:
    order = f"sorted by {report.sort_key}{' (reversed)' if report.reverse else ''}"
    headers, rows = HEADERS, [_row(row) for row in report.rows]
    numeric = NUMERIC
    # The template column only when a model has one: a shelf without templates keeps the table
    # within 100 columns (JSON always carries the key).
    if any(row.template != "none" or row.template_error for row in report.rows):
        headers = [*headers, TEMPLATE_HEADER]
        rows = [[*cells, _template_cell(row)] for cells, row in zip(rows, report.rows)]
    if report.sort_key == "file-size":  # the only key without a column: show what sorts
        headers = [*headers, "size"]  # short: a number column's header is cut to its values
        rows = [[*cells, format_mib(row.file_size)] for cells, row in zip(rows, report.rows)]
        numeric = NUMERIC | {len(headers) - 1}
    sections: list[Section] = []
    if report.rows:  # no models: the failures or the note say so, not an empty table
        sections.append(Table(f"models ({len(report.rows)}, {order})", headers, rows,
                              numeric_columns=numeric))
    if not report.rows and not report.failures:
        sections.append(Paragraph("note", "no GGUF files found"))
    if report.failures:
        sections.append(Table(f"could not read ({len(report.failures)})",
                              ["model", "exit code", "error"],
                              [[failure.location, str(failure.exit_code), failure.error]
                               for failure in report.failures]))
    return sections


def _row_json(row: ScanRow) -> dict[str, Any]:
    return {
        "location": row.location, "architecture": row.architecture, "name": row.name,
        "n_params": row.n_params, "file_type": row.file_type,
        "embedding_type": row.embedding_type, "embedding_bytes": row.embedding_bytes,
        "embedding_f16_bytes": row.embedding_f16_bytes,
        "embedding_ratio_to_f16": row.embedding_ratio_to_f16, "tied_output": row.tied_output,
        "kv_cache_bytes_per_1k_tokens": row.kv_cache_bytes_per_1k_tokens,
        "tensor_bytes": row.tensor_bytes, "file_size": row.file_size, "n_shards": row.n_shards,
        "template": row.template, "template_error": row.template_error,
    }


def scan_json(report: ScanReport) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "sort": {"key": report.sort_key, "reverse": report.reverse},
        "kv_cache_tokens": KV_TOKENS,
        "models": [_row_json(row) for row in report.rows],
        "failures": [{"location": failure.location, "error": failure.error,
                      "exit_code": failure.exit_code} for failure in report.failures],
    }
    return json_text(document)
