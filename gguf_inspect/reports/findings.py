"""One finding of ``gguf-inspect audit``: what is wrong, where, how bad, and what it follows."""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    id: str  # a stable name of the kind of finding, e.g. "template.dunder-access"
    severity: str  # ERROR (fails the gate), WARNING or INFO
    where: str  # a metadata key, a tensor, or "byte N"
    message: str
    reference: str  # the llama.cpp check, CVE or advisory the finding follows
