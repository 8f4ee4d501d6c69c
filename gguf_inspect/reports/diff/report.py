"""What a diff report holds: the result types of every layer of the diff (structure, tensor
data, metadata, values), the options that choose the layers, and the progress events with the
one counter that sends them.

Types only (and that counter), so that each layer's module and the renderer import them without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from gguf_inspect.core.model import Scalar
from gguf_inspect.reports.diff.template import TemplateDiff

DEFAULT_VALUE_CHUNK_BYTES = 16 << 20  # float32 bytes of both sides together per row chunk
DEFAULT_HASH_CHUNK_BYTES = 8 << 20  # tensor bytes read and hashed at a time
VALUE_SCOPES = ("embeddings", "all")


# ---- structure --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SideFacts:
    """The headline facts of one side."""

    path: str
    architecture: str | None
    file_type: str
    n_tensors: int
    n_params: int
    tensor_bytes: int
    bits_per_weight: float
    type_counts: tuple[tuple[str, int], ...]  # (ggml type, tensors), in type-id order


@dataclass(frozen=True)
class TensorSide:
    type: str
    ne: tuple[int, ...]
    n_bytes: int


@dataclass(frozen=True)
class TensorChange:
    """One tensor name; ``change`` is "same", "type", "shape" (same type), "added" or "removed".

    ``data_equal`` says whether the raw bytes are equal, for a tensor whose type and shape are
    the same on both sides and whose data was hashed; None otherwise.
    """

    name: str
    role: str
    change: str
    a: TensorSide | None
    b: TensorSide | None
    data_equal: bool | None = None

    @property
    def delta(self) -> int:
        return (self.b.n_bytes if self.b else 0) - (self.a.n_bytes if self.a else 0)

    @property
    def differs(self) -> bool:
        """A structural change, or the same structure holding other bytes."""
        return self.change != "same" or self.data_equal is False


@dataclass(frozen=True)
class RoleGroup:
    """Bytes of one role on each side."""

    role: str
    a_tensors: int
    b_tensors: int
    a_bytes: int
    b_bytes: int

    @property
    def delta(self) -> int:
        return self.b_bytes - self.a_bytes

    @property
    def ratio(self) -> float | None:
        """B's bytes as a fraction of A's; None when A has none."""
        return self.b_bytes / self.a_bytes if self.a_bytes else None


# ---- metadata ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArrayDigest:
    """A large metadata array, summarized: item type, item count and SHA-256 of the items."""

    item_type: str
    count: int
    sha256: str


@dataclass(frozen=True)
class MetadataSide:
    """One side of a metadata key: its type name and its value (or array items, or digest)."""

    type_name: str  # "uint32", "string", "array[string]"
    value: Scalar | tuple[Any, ...] | ArrayDigest


@dataclass(frozen=True)
class MetadataChange:
    """One key; ``change`` is "same", "changed", "added" or "removed"."""

    key: str
    change: str
    a: MetadataSide | None
    b: MetadataSide | None


# ---- values -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueDiff:
    """Error of B against A over the rows compared (all rows, or a seeded sample)."""

    name: str
    role: str
    rows: int
    total_rows: int
    rmse: float
    max_abs: float
    cos_mean: float
    cos_min: float
    rel_error: float | None  # ||B - A|| / ||A||; None when A is all zeros
    # Both sides' raw bytes hashed equal: not dequantized, the error is zero by definition.
    identical: bool = False


@dataclass(frozen=True)
class ValueSkip:
    name: str
    reason: str


# ---- progress ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorProgress:
    """Handed to the progress callback after each chunk of a pass over tensor pairs: the tensor
    in hand and the work done over the whole pass (its unit is the subclass's)."""

    tensor: str
    tensor_index: int  # 1-based
    n_tensors: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class HashProgress(TensorProgress):
    """Hashing tensor data: ``done`` and ``total`` count bytes, both sides together."""


@dataclass(frozen=True)
class ValuesProgress(TensorProgress):
    """Comparing values: ``done`` and ``total`` count elements of A (rows compared x ne[0])."""


ProgressEvent = Union[HashProgress, ValuesProgress]
ProgressCallback = Callable[[ProgressEvent], None]


class ProgressCounter:
    """Counts the work done over one pass (bytes hashed, elements compared) and hands the
    callback an event of ``event_type`` after each step."""

    def __init__(self, event_type: type[HashProgress] | type[ValuesProgress], total: int,
                 n_tensors: int, progress: ProgressCallback | None) -> None:
        self.event_type = event_type
        self.total = total
        self.n_tensors = n_tensors
        self.progress = progress
        self.done = 0
        self.tensor = ""
        self.tensor_index = 0

    def start(self, tensor: str, index: int) -> None:
        """The pass moves on to tensor number ``index`` (1-based)."""
        self.tensor, self.tensor_index = tensor, index

    def __call__(self, amount: int) -> None:
        self.done += amount
        if self.progress is not None:
            self.progress(self.event_type(self.tensor, self.tensor_index, self.n_tensors,
                                          self.done, self.total))


# ---- the whole report -------------------------------------------------------------------------

@dataclass(frozen=True)
class DiffOptions:
    values: str | None = None  # None, "embeddings" or "all"
    sample: int | None = None  # rows per tensor; None compares every row
    seed: int = 0
    chunk_bytes: int = DEFAULT_VALUE_CHUNK_BYTES
    # Hash same-type same-shape tensors' bytes: True always, False never, None (the default)
    # unless a side is remote (hashing reads every byte of both files).
    data_hash: bool | None = None
    hash_chunk_bytes: int = DEFAULT_HASH_CHUNK_BYTES


@dataclass(frozen=True)
class DiffReport:
    warnings: tuple[str, ...]
    notes: tuple[str, ...]  # facts that explain a change, e.g. a tied output head
    a: SideFacts
    b: SideFacts
    type_counts: tuple[tuple[str, int, int], ...]  # (ggml type, tensors in A, in B), id order
    tensors: tuple[TensorChange, ...]  # every name in either file, in role order
    data_hashed: bool  # whether tensor data was hashed (else every data_equal is None)
    groups: tuple[RoleGroup, ...]  # roles present in either file, in role order
    metadata: tuple[MetadataChange, ...]  # every key in either file, A's order then B's
    values: tuple[ValueDiff, ...]
    values_skipped: tuple[ValueSkip, ...]
    options: DiffOptions
    template: TemplateDiff | None = None  # None when neither file has a chat template

    @property
    def tensor_bytes_delta(self) -> int:
        return self.b.tensor_bytes - self.a.tensor_bytes

    @property
    def differs(self) -> bool:
        """True when anything at all differs (what ``--exit-code`` reports)."""
        return (any(t.differs for t in self.tensors)
                or any(m.change != "same" for m in self.metadata)
                or any(v.max_abs != 0.0 for v in self.values))
