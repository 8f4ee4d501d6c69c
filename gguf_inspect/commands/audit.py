"""``gguf-inspect audit`` body: audit a model, render the report, pick the exit code.

From Python: ``run_audit("model.gguf", OutputFormat.JSON)`` returns ``(text, exit_code)``: 0 when no
finding is an error, 1 when one is, 3 when the file is not readable as GGUF at all.
"""

from __future__ import annotations

from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.render.audit import audit_json, audit_sections
from gguf_inspect.reports.audit import audit_file


def run_audit(location: str, output_format: OutputFormat | str) -> CommandResult:
    """The audit rendered, and its exit code (the gate a CI job reads)."""
    report = audit_file(location)
    if not report.header_read:
        code = ExitCode.INVALID
    else:
        code = ExitCode.DIFFERS if report.n_errors else ExitCode.OK
    return render(report, output_format, audit_json, audit_sections), code
