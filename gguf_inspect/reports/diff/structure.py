"""The header-only layer of a diff: each side's headline facts, per-tensor type, shape and byte
changes grouped by role, and the warnings and notes that explain them. Reads no tensor data."""

from __future__ import annotations

from typing import Sequence

from gguf_inspect.core.constants import OUTPUT, TOKEN_EMBD, ggml_type_name
from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.llamacpp.names import ROLES, role_sort_key, tensor_role
from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.reports.diff.report import RoleGroup, SideFacts, TensorChange, TensorSide


def side_facts(gguf: GGUFFile) -> SideFacts:
    summary = summarize(gguf)
    return SideFacts(path=gguf.path, architecture=summary.architecture,
                     file_type=summary.file_type, n_tensors=gguf.n_tensors,
                     n_params=summary.n_params, tensor_bytes=summary.tensor_bytes,
                     bits_per_weight=summary.bits_per_weight, type_counts=summary.type_counts)


def type_count_pairs(a: GGUFFile, b: GGUFFile) -> tuple[tuple[str, int, int], ...]:
    """Tensors per ggml type on each side, for the types either file uses, in type-id order."""
    counts: dict[int, list[int]] = {}
    for side, gguf in enumerate((a, b)):
        for tensor in gguf.tensors:
            counts.setdefault(tensor.type_id, [0, 0])[side] += 1
    return tuple((ggml_type_name(type_id), counts[type_id][0], counts[type_id][1])
                 for type_id in sorted(counts))


def _tensor_side(tensor: TensorInfo | None) -> TensorSide | None:
    if tensor is None:
        return None
    return TensorSide(type=tensor.type_name, ne=tensor.ne, n_bytes=tensor.n_bytes)


def _change_kind(a: TensorInfo | None, b: TensorInfo | None) -> str:
    if a is None:
        return "added"
    if b is None:
        return "removed"
    if a.type_id != b.type_id:
        return "type"
    if a.ne != b.ne:
        return "shape"
    return "same"


def union_names(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """A's names in order, then the names only B has, in B's order."""
    seen = set(a)
    return list(a) + [name for name in b if name not in seen]


def tensor_names(a: GGUFFile, b: GGUFFile) -> list[str]:
    """Every tensor name of either file: A's in order, then B's new ones."""
    return union_names([t.name for t in a.tensors], [t.name for t in b.tensors])


def tensor_changes(a: GGUFFile, b: GGUFFile) -> tuple[TensorChange, ...]:
    """Every tensor name of either file, sorted by role, block and name."""
    changes = []
    for name in sorted(tensor_names(a, b), key=role_sort_key):
        tensor_a, tensor_b = a.tensor(name), b.tensor(name)
        changes.append(TensorChange(name=name, role=tensor_role(name),
                                    change=_change_kind(tensor_a, tensor_b),
                                    a=_tensor_side(tensor_a), b=_tensor_side(tensor_b)))
    return tuple(changes)


def role_groups(changes: Sequence[TensorChange]) -> tuple[RoleGroup, ...]:
    """Tensor count and bytes per role on each side, for the roles either file has."""
    groups = []
    for role in ROLES:
        members = [change for change in changes if change.role == role.key]
        if not members:
            continue
        sides_a = [change.a for change in members if change.a is not None]
        sides_b = [change.b for change in members if change.b is not None]
        groups.append(RoleGroup(role=role.key, a_tensors=len(sides_a), b_tensors=len(sides_b),
                                a_bytes=sum(side.n_bytes for side in sides_a),
                                b_bytes=sum(side.n_bytes for side in sides_b)))
    return tuple(groups)


def structure_warnings(a: GGUFFile, b: GGUFFile, changes: Sequence[TensorChange],
                       ) -> tuple[str, ...]:
    """What makes the two files not two quantizations of one model: architecture or shapes."""
    warnings = []
    if a.architecture != b.architecture:
        warnings.append(f"architectures differ: A is {a.architecture or 'unknown'}, "
                        f"B is {b.architecture or 'unknown'}")
    reshaped = [c for c in changes if c.a is not None and c.b is not None and c.a.ne != c.b.ne]
    if reshaped:
        first = reshaped[0]
        assert first.a is not None and first.b is not None
        warnings.append(
            f"shapes differ: {len(reshaped)} tensor(s) in both files have different shapes "
            f"(first: {first.name} A {list(first.a.ne)}, B {list(first.b.ne)}); "
            "these files are not quantizations of one model, values are compared only where "
            "shapes match")
    return tuple(warnings)


def tied_head_notes(a: GGUFFile, b: GGUFFile) -> tuple[str, ...]:
    """Explain an output head that is missing on one side: llama.cpp then reuses the embedding."""
    notes = []
    for label, gguf in (("A", a), ("B", b)):
        if gguf.tensor(OUTPUT) is None and gguf.tensor(TOKEN_EMBD) is not None:
            notes.append(f"{label} has no {OUTPUT}: llama.cpp uses {TOKEN_EMBD} as the output "
                         "head (tied embeddings); its bytes count under token embedding")
    return tuple(notes) if len(notes) == 1 else ()
