"""The chat-template layer of a diff: whether A's and B's chat templates differ (by their bytes,
by their normalised hash, by the known template each is), and the audit's template findings on
B, the candidate about to replace A: a changed template is where a backdoor would arrive.

B's templates are analysed like ``gguf-inspect audit`` does (reports/template.py: parsed, never
rendered); A's are only hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gguf_inspect.gguf.open import Model
from gguf_inspect.llamacpp.chat_template import known_as, normalised_hash
from gguf_inspect.reports.audit import templates
from gguf_inspect.reports.findings import Finding

TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True)
class TemplateSide:
    """One side's template under one key."""

    sha256: str  # of the UTF-8 bytes as stored
    normalised_sha256: str  # after chat_template.normalise (layout folded)
    known_as: str | None
    length: int  # characters


@dataclass(frozen=True)
class TemplateChange:
    """One template key; ``change`` is "same" (same bytes), "reformatted" (same normalised
    template), "changed", "added" or "removed"."""

    key: str
    change: str
    a: TemplateSide | None
    b: TemplateSide | None


@dataclass(frozen=True)
class TemplateDiff:
    changes: tuple[TemplateChange, ...]  # every template key of either file, A's order first
    b_findings: tuple[Finding, ...]  # the audit's findings on B's templates

    @property
    def differs(self) -> bool:
        return any(change.change not in ("same", "reformatted") for change in self.changes)


def _template_keys(model: Model) -> list[str]:
    return [key for key in model.file.metadata
            if key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")]


def _side(model: Model, key: str) -> TemplateSide | None:
    text = model.file.value(key)
    if not isinstance(text, str):
        return None
    return TemplateSide(sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                        normalised_sha256=normalised_hash(text), known_as=known_as(text),
                        length=len(text))


def _change(a: TemplateSide | None, b: TemplateSide | None) -> str:
    if a is None:
        return "added"
    if b is None:
        return "removed"
    if a.sha256 == b.sha256:
        return "same"
    return "reformatted" if a.normalised_sha256 == b.normalised_sha256 else "changed"


def template_diff(a: Model, b: Model) -> TemplateDiff | None:
    """None when neither file has a chat template."""
    keys = list(dict.fromkeys(_template_keys(a) + _template_keys(b)))
    changes = []
    for key in keys:
        side_a, side_b = _side(a, key), _side(b, key)
        if side_a is not None or side_b is not None:
            changes.append(TemplateChange(key, _change(side_a, side_b), side_a, side_b))
    if not changes:
        return None
    findings = tuple(finding for report in templates(b.source, b.file)
                     for finding in report.findings)
    return TemplateDiff(changes=tuple(changes), b_findings=findings)
