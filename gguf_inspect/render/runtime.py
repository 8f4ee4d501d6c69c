"""Rendering of ``gguf-inspect runtime``: the side-by-side table and its JSON contract."""

from __future__ import annotations

from typing import Any

from gguf_inspect.reports.runtime import RuntimeComparison
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.text import json_text
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        # Two decimals as the log prints sizes; four where the figure carries them.
        return f"{value:.2f}" if round(value, 2) == value else f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _config_rows(comparison: RuntimeComparison) -> list[tuple[str, str]]:
    config = comparison.config
    return [("model", comparison.model), ("runtime", comparison.runtime),
            ("log format", comparison.log_style)] + [
        (name, _cell(value)) for name, value in config.items()]


def _verdict(comparison: RuntimeComparison) -> str:
    exact = [check for check in comparison.checks if check.exact]
    differing = [check.quantity for check in exact if check.status != "match"]
    if not differing:
        return f"all {len(exact)} exact quantities match the runtime"
    return (f"{len(differing)} of {len(exact)} exact quantities differ from the runtime: "
            + ", ".join(differing))


def runtime_sections(comparison: RuntimeComparison) -> list[Section]:
    rows = [[check.quantity, check.unit, _cell(check.predicted), _cell(check.runtime),
             check.status, check.note] for check in comparison.checks]
    table = Table("predicted vs llama.cpp", ["quantity", "unit", "predicted", "runtime",
                                             "status", "note"], rows,
                  numeric_columns=frozenset({2, 3}))
    return [KeyValues("load (as llama.cpp resolved it)", _config_rows(comparison)), table,
            Paragraph("verdict", _verdict(comparison)),
            Table("notes", ["note"], [[note] for note in comparison.notes])]


def runtime_json(comparison: RuntimeComparison) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "model": comparison.model,
        "runtime": comparison.runtime,
        "log_style": comparison.log_style,
        "config": comparison.config,
        "checks": [{"quantity": check.quantity, "unit": check.unit,
                    "predicted": check.predicted, "runtime": check.runtime,
                    "status": check.status, "note": check.note}
                   for check in comparison.checks],
        "all_match": comparison.all_match,
        "notes": list(comparison.notes),
    }
    return json_text(document)
