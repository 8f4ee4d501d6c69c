"""Rendering of ``gguf-inspect audit``: layout for table/markdown and the JSON document."""

from __future__ import annotations

import json
from typing import Any

from gguf_inspect.core.constants import SCHEMA_VERSION
from gguf_inspect.reports.audit import AuditReport
from gguf_inspect.reports.findings import SEVERITIES
from gguf_inspect.render.document import KeyValues, Paragraph, Section, Table
from gguf_inspect.render.text import format_bytes


def _summary_rows(report: AuditReport) -> list[tuple[str, str]]:
    counts = {severity: 0 for severity in SEVERITIES}
    for finding in report.findings:
        counts[finding.severity] += 1
    rows = [("file", report.path), ("size", format_bytes(report.size)),
            ("sha256", report.sha256 or "-"), ("verdict", report.verdict.upper()),
            ("findings", ", ".join(f"{counts[s]} {s}" for s in SEVERITIES))]
    if not report.header_read:
        rows.append(("header", "not readable as GGUF"))
    template = report.template
    if template is not None:
        rows += [("chat template", f"{template.length:,} characters, sha256 {template.sha256}"),
                 ("known as", template.known_as or "not a known template")]
    return rows


def audit_sections(report: AuditReport) -> list[Section]:
    sections: list[Section] = [KeyValues("audit", _summary_rows(report))]
    # Errors first, then warnings, then notes: what fails the gate is on top.
    ordered = sorted(report.findings, key=lambda f: SEVERITIES.index(f.severity))
    if ordered:
        sections.append(Table("findings", ["severity", "id", "where", "finding", "reference"],
                              [[f.severity, f.id, f.where, f.message, f.reference]
                               for f in ordered]))
    else:
        sections.append(Paragraph("findings", "none"))
    return sections


def audit_json(report: AuditReport) -> str:
    template = report.template
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file": {"path": report.path, "size": report.size, "sha256": report.sha256},
        "verdict": report.verdict,
        "findings": [{"id": f.id, "severity": f.severity, "where": f.where,
                      "message": f.message, "reference": f.reference} for f in report.findings],
        "template": None if template is None else {
            "sha256": template.sha256, "length": template.length,
            "known_as": template.known_as},
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
