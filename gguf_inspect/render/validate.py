"""Rendering of ``gguf-inspect validate``: layout for table/markdown, the JSON document, and the
progress line shown on stderr while ``--data`` reads the tensors."""

from __future__ import annotations

from typing import Any

from gguf_inspect.reports.validate import Problem, TensorCheck, ValidationReport
from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table
from gguf_inspect.render.text import (
    escape_terminal,
    format_bytes,
    format_mib,
    format_percent,
    json_text,
)


def _verdict(report: ValidationReport) -> str:
    verdict = "VALID" if report.valid else "INVALID"
    if not report.header_read:
        verdict += " (the header could not be read to the end)"
    return verdict


def _summary_rows(report: ValidationReport) -> list[tuple[str, str]]:
    rows = [("file", report.path), ("file size on disk", format_bytes(report.file_size)),
            ("result", _verdict(report)), ("errors", str(report.n_errors)),
            ("warnings", str(report.n_warnings))]
    if len(report.files) > 1:  # a split model: the size above is over all its shards
        rows[2:2] = [("shards read", str(len(report.files)))]
    if report.header_read:
        rows[2:2] = [("GGUF version", f"v{report.version}"),
                     ("tensors / metadata keys", f"{report.n_tensors} / {report.n_kv}")]
    if report.data_checked:
        rows += [("tensors decoded", f"{len(report.decoded)} of {len(report.tensors)}"),
                 ("values decoded", f"{report.values_decoded:,}"),
                 ("NaN / Inf values", f"{report.nan_values:,} / {report.inf_values:,}")]
    return rows


def _problem_row(problem: Problem, with_file: bool) -> list[str]:
    offset = "-" if problem.offset is None else str(problem.offset)
    file = [problem.file or "-"] if with_file else []
    return [problem.severity, problem.kind, *file, offset, problem.field or "-", problem.message]


def _tensor_row(check: TensorCheck) -> list[str]:
    return [check.name, check.type, f"{check.n_elements:,}", f"{check.nan:,}", f"{check.inf:,}",
            "yes" if check.checked else "no", check.note or "-"]


def validate_sections(report: ValidationReport) -> list[Section]:
    sections: list[Section] = [KeyValues("validation", _summary_rows(report))]
    if report.problems:
        # A file column only when the problems can be in several files (a split model); the
        # byte offsets are inside the file named there.
        with_file = report.several_files
        headers = ["severity", "kind"] + (["file"] if with_file else []) + [
            "at byte", "field", "problem"]
        sections.append(Table("problems", headers,
                              [_problem_row(problem, with_file) for problem in report.problems],
                              numeric_columns=frozenset({3 if with_file else 2})))
    else:
        sections.append(Paragraph("problems", "none found"))
    notable = [check for check in report.tensors if check.nan or check.inf or not check.checked]
    if notable:  # tensors that were clean are only counted above, not listed
        sections.append(Table("tensor data (only tensors with findings or not decoded)",
                              ["tensor", "type", "elements", "NaN", "Inf", "decoded", "note"],
                              [_tensor_row(check) for check in notable],
                              numeric_columns=frozenset({2, 3, 4})))
    return sections


def validate_json(report: ValidationReport) -> str:
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file": {"path": report.path, "file_size": report.file_size,
                 "gguf_version": report.version, "n_tensors": report.n_tensors,
                 "n_kv": report.n_kv, "files": list(report.files)},
        "valid": report.valid,
        "header_read": report.header_read,
        "n_errors": report.n_errors,
        "n_warnings": report.n_warnings,
        "problems": [{"severity": p.severity, "kind": p.kind, "message": p.message,
                      "offset": p.offset, "field": p.field, "file": p.file}
                     for p in report.problems],
        "data": None,
    }
    if report.data_checked:
        document["data"] = {
            "tensors_decoded": len(report.decoded),
            "values_decoded": report.values_decoded,
            "nan": report.nan_values,
            "inf": report.inf_values,
            "tensors": [{"name": c.name, "type": c.type, "n_elements": c.n_elements,
                         "n_bytes": c.n_bytes, "decoded": c.checked, "nan": c.nan,
                         "inf": c.inf, "first_bad_row": c.first_bad_row, "note": c.note or None}
                        for c in report.tensors],
        }
    return json_text(document)


def progress_line(done: int, total: int, tensor: str) -> str:
    """``checking tensor data: 45.00% (12.00 MiB of 26.67 MiB) blk.3.ffn_up.weight``."""
    fraction = done / total if total else 1.0
    return (f"checking tensor data: {format_percent(fraction)} "
            f"({format_mib(done)} of {format_mib(total)}) {escape_terminal(tensor)}")
