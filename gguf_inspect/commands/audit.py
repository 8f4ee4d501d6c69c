"""``gguf-inspect audit`` body: audit a model, render the report, pick the exit code.

From Python: ``run_audit("model.gguf", "json")`` returns ``(text, exit_code)``: 0 when no
finding is an error, 1 when one is, 3 when the file is not readable as GGUF at all.
"""

from __future__ import annotations

from gguf_inspect.commands import render_sections
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.reports.audit import audit_file


def run_audit(location: str, output_format: str) -> tuple[str, int]:
    report = audit_file(location)
    if not report.header_read:
        code = ExitCode.INVALID
    else:
        code = ExitCode.DIFFERS if report.n_errors else ExitCode.OK
    if output_format == "json":
        from gguf_inspect.render.audit import audit_json

        return audit_json(report), code
    from gguf_inspect.render.audit import audit_sections

    return render_sections(audit_sections(report), output_format), code
