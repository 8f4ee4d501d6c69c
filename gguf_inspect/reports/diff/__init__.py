"""Diff two GGUF models (typically two quantizations of one model): ``diff_models`` builds the
whole report from the layers, each in its own module and each usable alone.

A is the reference and B the candidate: every delta is ``B - A`` and every relative error is
relative to A. The layers:

* ``structure``: per-tensor type, shape and byte changes, grouped by role (header only);
* ``data``: whether the raw bytes of each tensor with the same type and shape on both sides are
  equal, by a SHA-256 of each side streamed in bounded chunks (reads both files' tensor data,
  so it is skipped by default for remote files);
* ``metadata``: keys added, removed and changed; large arrays (the tokenizer) compared by item
  count and a SHA-256 of their items;
* ``template``: whether the chat templates differ, and the audit's template findings on B;
* ``values``: dequantize both sides and measure RMSE, max abs error, per-row cosine similarity
  and relative error, one row chunk at a time.

``report`` holds the result types they share; this package re-exports them.
"""

from __future__ import annotations

from dataclasses import replace

from gguf_inspect.gguf.open import Model
from gguf_inspect.reports.diff.data import data_hash_plan, tensor_data_diff
from gguf_inspect.reports.diff.metadata import array_digest, metadata_diff
from gguf_inspect.reports.diff.report import (
    ArrayDigest,
    DiffOptions,
    DiffReport,
    HashProgress,
    MetadataChange,
    MetadataSide,
    ProgressCallback,
    ProgressEvent,
    RoleGroup,
    SideFacts,
    TensorChange,
    TensorProgress,
    TensorSide,
    ValueDiff,
    ValueSkip,
    ValuesProgress,
)
from gguf_inspect.reports.diff.structure import (
    role_groups,
    side_facts,
    structure_warnings,
    tensor_changes,
    tied_head_notes,
    type_count_pairs,
)
from gguf_inspect.reports.diff.template import TemplateDiff, template_diff
from gguf_inspect.reports.diff.values import sample_rows, value_diff

__all__ = [
    "ArrayDigest", "DiffOptions", "DiffReport", "HashProgress", "MetadataChange", "MetadataSide",
    "ProgressCallback", "ProgressEvent", "RoleGroup", "SideFacts", "TensorChange",
    "TemplateDiff", "TensorProgress", "TensorSide", "ValueDiff", "ValueSkip", "ValuesProgress",
    "array_digest", "diff_models", "metadata_diff", "sample_rows", "tensor_changes",
    "tensor_data_diff", "template_diff", "value_diff",
]


def diff_models(a: Model, b: Model, options: DiffOptions = DiffOptions(),
                progress: ProgressCallback | None = None) -> DiffReport:
    """Structure and metadata always; tensor data as ``options.data_hash`` says; values when
    ``options.values`` names a scope."""
    changes = tensor_changes(a.file, b.file)
    data_hashed, data_notes = data_hash_plan(a, b, options.data_hash)
    if data_hashed:
        equal = tensor_data_diff(a, b, options.hash_chunk_bytes, progress)
        changes = tuple(replace(change, data_equal=equal.get(change.name)) for change in changes)
    values: tuple[ValueDiff, ...] = ()
    skipped: tuple[ValueSkip, ...] = ()
    if options.values is not None:
        identical = frozenset(change.name for change in changes if change.data_equal)
        values, skipped = value_diff(a, b, options, progress, identical)
    return DiffReport(
        warnings=structure_warnings(a.file, b.file, changes),
        notes=tied_head_notes(a.file, b.file) + data_notes,
        a=side_facts(a.file), b=side_facts(b.file), type_counts=type_count_pairs(a.file, b.file),
        tensors=changes, data_hashed=data_hashed, groups=role_groups(changes),
        metadata=metadata_diff(a, b), values=values, values_skipped=skipped, options=options,
        template=template_diff(a, b))
