"""Rendering of ``gguf-inspect diff A B``: the layout for table/markdown, and the JSON contract.

Unchanged tensors and metadata keys are left out of every format unless ``show_all``.
"""

from __future__ import annotations

import math
from typing import Any

from gguf_inspect.reports.diff import (
    ArrayDigest,
    DiffReport,
    HashProgress,
    MetadataChange,
    MetadataSide,
    SideFacts,
    TensorChange,
    TensorSide,
    ValueDiff,
    ValuesProgress,
)
from gguf_inspect.reports.diff.template import TemplateDiff, TemplateSide
from gguf_inspect.reports.findings import SEVERITIES
from gguf_inspect.llamacpp.names import role_label
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table
from gguf_inspect.render.text import (
    cut_text,
    escape_terminal,
    format_bytes,
    format_mib,
    format_params,
    format_shape,
    items_text,
    json_text,
    value_text,
)

DIGEST_SHOWN = 12  # hex digits of an array's SHA-256 shown in tables (JSON has all 64)


def _signed(delta: int) -> str:
    return f"{delta:+,}"


def _ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1%}"


def _files_section(a: SideFacts, b: SideFacts, delta: int) -> Table:
    rows = [
        ["file", a.path, b.path, ""],
        ["architecture", a.architecture or "-", b.architecture or "-", ""],
        ["file type", a.file_type, b.file_type, ""],
        ["tensors", str(a.n_tensors), str(b.n_tensors), _signed(b.n_tensors - a.n_tensors)],
        ["model params", format_params(a.n_params), format_params(b.n_params), ""],
        ["tensor bytes", format_bytes(a.tensor_bytes), format_bytes(b.tensor_bytes),
         f"{_signed(delta)} B"],
        ["bits per weight", f"{a.bits_per_weight:.2f}", f"{b.bits_per_weight:.2f}", ""],
    ]
    return Table("files (A = reference, B = candidate)", ["", "A", "B", "B - A"], rows)


def _type_counts_section(report: DiffReport) -> Table:
    rows = [[name, str(count_a), str(count_b)] for name, count_a, count_b in report.type_counts]
    return Table("tensor types (tensors per ggml type)", ["type", "A", "B"], rows,
                 numeric_columns=frozenset({1, 2}))


def _groups_section(report: DiffReport) -> Table:
    rows = [[role_label(g.role), f"{g.a_tensors} / {g.b_tensors}", f"{g.a_bytes:,}",
             f"{g.b_bytes:,}", _signed(g.delta), _ratio(g.ratio)] for g in report.groups]
    return Table("bytes by role", ["role", "tensors A / B", "A bytes", "B bytes", "B - A",
                                   "B / A"], rows, numeric_columns=frozenset({2, 3, 4, 5}))


def _side_cells(side: TensorSide | None) -> tuple[str, str]:
    return ("-", "-") if side is None else (side.type, f"{side.n_bytes:,}")


def _shape(change: TensorChange) -> str:
    shapes = [side.ne for side in (change.a, change.b) if side is not None]
    if len(shapes) == 2 and shapes[0] != shapes[1]:
        return f"{format_shape(shapes[0])} -> {format_shape(shapes[1])}"
    return format_shape(shapes[0])


def _data_cell(data_equal: bool | None) -> str:
    return "-" if data_equal is None else "same" if data_equal else "differs"


def _tensors_section(report: DiffReport, show_all: bool) -> Table:
    shown = [c for c in report.tensors if show_all or c.differs]
    hidden = len(report.tensors) - len(shown)
    title = f"tensors: {sum(c.differs for c in report.tensors)} changed"
    data_only = sum(c.change == "same" and c.differs for c in report.tensors)
    if data_only:
        title += f" ({data_only} in data only)"
    if hidden:
        title += f", {hidden} unchanged not shown (--all shows them)"
    rows = []
    for change in shown:
        type_a, bytes_a = _side_cells(change.a)
        type_b, bytes_b = _side_cells(change.b)
        rows.append([role_label(change.role), change.name, change.change,
                     _data_cell(change.data_equal), _shape(change), type_a, type_b, bytes_a,
                     bytes_b, _signed(change.delta)])
    return Table(title, ["role", "tensor", "change", "data", "ne", "A type", "B type",
                         "A bytes", "B bytes", "B - A"], rows,
                 numeric_columns=frozenset({7, 8, 9}))


def _data_verdict(report: DiffReport) -> str:
    if not report.data_hashed:
        return "not compared (see the note)"
    compared = [c.data_equal for c in report.tensors if c.data_equal is not None]
    if not compared:
        return "nothing to compare (no tensor has the same type and shape in both)"
    return (f"{compared.count(True)} same, {compared.count(False)} differ "
            f"(SHA-256 of the {len(compared)} tensors with the same type and shape)")


def _metadata_text(side: MetadataSide | None) -> str:
    if side is None:
        return "-"
    value = side.value
    single = "float32" in side.type_name  # also "array[float32]"
    if isinstance(value, ArrayDigest):
        return f"{value.count} x {value.item_type}, sha256 {value.sha256[:DIGEST_SHOWN]}"
    if isinstance(value, tuple):  # cut like inspect's --metadata: a cell stays one line
        return "[" + items_text(value, len(value), single=single) + "]"
    return value_text(value, single=single)


def _metadata_cells(change: MetadataChange) -> tuple[str, str]:
    text_a, text_b = _metadata_text(change.a), _metadata_text(change.b)
    if change.a and change.b and change.a.type_name != change.b.type_name:
        text_a, text_b = f"{text_a} ({change.a.type_name})", f"{text_b} ({change.b.type_name})"
    return text_a, text_b


def _metadata_section(report: DiffReport, show_all: bool) -> Table:
    shown = [m for m in report.metadata if show_all or m.change != "same"]
    hidden = len(report.metadata) - len(shown)
    title = f"metadata: {sum(m.change != 'same' for m in report.metadata)} key(s) differ"
    if hidden:
        title += f", {hidden} unchanged not shown (--all shows them)"
    rows = [[cut_text(m.key), m.change, *_metadata_cells(m)] for m in shown]
    return Table(title, ["key", "change", "A", "B"], rows)


def _metric(value: float | None, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.{digits}g}"


def _cosine(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.6f}"


def _values_section(report: DiffReport) -> Table:
    options = report.options
    scope = "every tensor" if options.values == "all" else "token embedding and output head"
    rows_note = ("all rows" if options.sample is None
                 else f"{options.sample} random rows per tensor, seed {options.seed}")
    rows = [[v.name, role_label(v.role),
             f"{v.rows:,} / {v.total_rows:,}" + (" (same bytes)" if v.identical else ""),
             _metric(v.rmse),
             _metric(v.max_abs), _cosine(v.cos_mean), _cosine(v.cos_min),
             _metric(v.rel_error)] for v in report.values]
    return Table(f"values: B against A, {scope}, {rows_note}",
                 ["tensor", "role", "rows", "RMSE", "max abs", "cos mean", "cos min",
                  "rel error"], rows, numeric_columns=frozenset({2, 3, 4, 5, 6, 7}))


def diff_sections(report: DiffReport, show_all: bool = False) -> list[Section]:
    # One paragraph per warning or note: the drawers escape newlines inside a paragraph's text.
    sections: list[Section] = [Paragraph("warning", warning) for warning in report.warnings]
    sections.append(_files_section(report.a, report.b, report.tensor_bytes_delta))
    sections += [Paragraph("note", note) for note in report.notes]
    sections += [_type_counts_section(report), _groups_section(report),
                 _tensors_section(report, show_all), _metadata_section(report, show_all)]
    if report.options.values is not None:
        sections.append(_values_section(report))
        if report.values_skipped:
            sections.append(Table("values not compared", ["tensor", "reason"],
                                  [[skip.name, skip.reason] for skip in report.values_skipped]))
    sections += _template_sections(report.template)
    sections.append(KeyValues("verdict", [
        ("differs", "yes" if report.differs else "no"),
        ("tensor data", _data_verdict(report)),
        ("tensor bytes B - A", _size_change(report.tensor_bytes_delta)),
    ]))
    return sections


def _template_cell(side: TemplateSide | None) -> str:
    if side is None:
        return "-"
    return f"{side.known_as or 'custom'}, sha256 {side.sha256[:DIGEST_SHOWN]}"


def _template_sections(template: TemplateDiff | None) -> list[Section]:
    """How the chat templates differ, and the audit's findings on B's."""
    if template is None:
        return []
    sections: list[Section] = [Table(
        "chat template (normalised: layout folded)", ["key", "change", "A", "B"],
        [[cut_text(c.key), c.change, _template_cell(c.a), _template_cell(c.b)]
         for c in template.changes])]
    ordered = sorted(template.b_findings, key=lambda f: SEVERITIES.index(f.severity))
    if ordered:
        sections.append(Table("chat template findings on B (as gguf-inspect audit)",
                              ["severity", "id", "where", "finding"],
                              [[f.severity, f.id, f.where, f.message] for f in ordered]))
    return sections


def _size_change(delta: int) -> str:
    if delta == 0:
        return "+0 B (same size)"
    return f"{_signed(delta)} B ({format_mib(abs(delta))} {'smaller' if delta < 0 else 'larger'})"


def progress_line(event: HashProgress | ValuesProgress) -> str:
    """One line of progress for stderr (the tensor name is untrusted: escaped)."""
    task = "hashing tensor data" if isinstance(event, HashProgress) else "comparing values"
    return (f"{task}: {event.fraction:6.1%}  "
            f"tensor {event.tensor_index}/{event.n_tensors}  {escape_terminal(event.tensor)}")


# ---- JSON -------------------------------------------------------------------------------------

def _finite(value: float | None) -> float | None:
    """NaN and infinities are not JSON: they become null."""
    return value if value is not None and math.isfinite(value) else None


def _side_json(facts: SideFacts) -> dict[str, Any]:
    return {"path": facts.path, "file_type": facts.file_type, "tensor_bytes": facts.tensor_bytes,
            "bits_per_weight": facts.bits_per_weight, "architecture": facts.architecture,
            "n_params": facts.n_params, "n_tensors": facts.n_tensors}


def _tensor_side_json(side: TensorSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {"type": side.type, "ne": list(side.ne), "n_bytes": side.n_bytes}


def _metadata_value_json(side: MetadataSide | None) -> Any:
    if side is None:
        return None
    value = side.value
    if isinstance(value, ArrayDigest):
        return {"type": side.type_name, "count": value.count, "sha256": value.sha256}
    if isinstance(value, tuple):
        return [_finite(v) if isinstance(v, float) else v for v in value]
    return _finite(value) if isinstance(value, float) else value


def _value_json(value: ValueDiff) -> dict[str, Any]:
    return {"name": value.name, "role": value.role, "rmse": _finite(value.rmse),
            "max_abs": _finite(value.max_abs), "cos_mean": _finite(value.cos_mean),
            "cos_min": _finite(value.cos_min), "rel_error": _finite(value.rel_error),
            "rows": value.rows, "total_rows": value.total_rows, "identical": value.identical}


def _template_json(template: TemplateDiff | None) -> dict[str, Any] | None:
    if template is None:
        return None
    side = (lambda s: None if s is None else {"sha256": s.sha256, "length": s.length,
            "normalised_sha256": s.normalised_sha256, "known_as": s.known_as})
    return {"changes": [{"key": c.key, "change": c.change, "a": side(c.a), "b": side(c.b)}
                        for c in template.changes],
            "b_findings": [{"id": f.id, "severity": f.severity, "where": f.where,
                            "message": f.message, "reference": f.reference}
                           for f in template.b_findings]}


def diff_json(report: DiffReport, show_all: bool = False) -> str:
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "warnings": list(report.warnings),
        "notes": list(report.notes),
        "a": _side_json(report.a),
        "b": _side_json(report.b),
        "type_counts": {"a": dict(report.a.type_counts), "b": dict(report.b.type_counts)},
        "tensors": [{"name": c.name, "role": c.role, "change": c.change,
                     "a": _tensor_side_json(c.a), "b": _tensor_side_json(c.b),
                     "data_equal": c.data_equal}
                    for c in report.tensors if show_all or c.differs],
        "data_hashed": report.data_hashed,
        "groups": [{"role": g.role, "a_bytes": g.a_bytes, "b_bytes": g.b_bytes,
                    "delta": g.delta, "a_tensors": g.a_tensors, "b_tensors": g.b_tensors}
                   for g in report.groups],
        "metadata": [{"key": m.key, "change": m.change, "a": _metadata_value_json(m.a),
                      "b": _metadata_value_json(m.b)}
                     for m in report.metadata if show_all or m.change != "same"],
        "tensor_bytes_delta": report.tensor_bytes_delta,
        "values": [_value_json(v) for v in report.values],
        "values_skipped": [{"name": s.name, "reason": s.reason} for s in report.values_skipped],
        "differs": report.differs,
        "template": _template_json(report.template),
    }
    return json_text(document)
