"""Diff two GGUF files (typically two quantizations of one model): structure, tensor data,
metadata, values.

A is the reference and B the candidate: every delta is ``B - A`` and every relative error is
relative to A. Four layers, each usable alone:

* ``tensor_changes``: per-tensor type, shape and byte changes, grouped by role (header only);
* ``tensor_data_diff``: whether the raw bytes of each tensor with the same type and shape on
  both sides are equal, by a SHA-256 of each side streamed in bounded chunks (reads both files'
  tensor data, so it is skipped by default for remote files);
* ``metadata_diff``: keys added, removed and changed; large arrays (the tokenizer) compared by
  item count and a SHA-256 of their items, streamed with ``reader.iter_array``;
* ``value_diff``: dequantize both sides with the shared chunked dequantizer and measure RMSE,
  max abs error, per-row cosine similarity and relative error, one row chunk at a time.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from gguf_inspect.llamacpp.names import ROLES, role_sort_key, tensor_role
from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.core.constants import OUTPUT, TOKEN_EMBD, VALUE_TYPES, ggml_type_name
from gguf_inspect.core.model import ArrayValue, GGUFFile, MetadataEntry, Scalar, TensorInfo
from gguf_inspect.gguf.reader import iter_array, read_array, read_tensor_bytes
from gguf_inspect.gguf.source import ByteSource, is_remote

SMALL_ARRAY_ITEMS = 16  # arrays up to this long are compared and shown item by item
HASH_BATCH_ITEMS = 4096  # array items hashed per update: bounded memory, few hash calls
DEFAULT_VALUE_CHUNK_BYTES = 16 << 20  # float32 bytes of both sides together per row chunk
DEFAULT_HASH_CHUNK_BYTES = 8 << 20  # tensor bytes read and hashed at a time
ACCUMULATE_BLOCK_ELEMENTS = 1 << 16  # values per side in one step of the error sums
EMBEDDING_ROLES = frozenset({"token_embd", "output"})
VALUE_SCOPES = ("embeddings", "all")


# ---- result model -----------------------------------------------------------------------------

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


@dataclass(frozen=True)
class ValueSkip:
    name: str
    reason: str


@dataclass(frozen=True)
class ValuesProgress:
    """Handed to the progress callback after each row chunk."""

    tensor: str
    tensor_index: int  # 1-based
    n_tensors: int
    elements_done: int
    elements_total: int

    @property
    def fraction(self) -> float:
        return self.elements_done / self.elements_total if self.elements_total else 1.0


@dataclass(frozen=True)
class HashProgress:
    """Handed to the progress callback after each chunk of tensor data hashed."""

    tensor: str
    tensor_index: int  # 1-based
    n_tensors: int
    bytes_done: int  # both sides together
    bytes_total: int

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0


ProgressEvent = Union[HashProgress, ValuesProgress]
ProgressCallback = Callable[[ProgressEvent], None]


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

    @property
    def tensor_bytes_delta(self) -> int:
        return self.b.tensor_bytes - self.a.tensor_bytes

    @property
    def differs(self) -> bool:
        """True when anything at all differs (what ``--exit-code`` reports)."""
        return (any(t.differs for t in self.tensors)
                or any(m.change != "same" for m in self.metadata)
                or any(v.max_abs != 0.0 for v in self.values))


# ---- structure --------------------------------------------------------------------------------

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


def _union_names(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """A's names in order, then the names only B has, in B's order."""
    seen = set(a)
    return list(a) + [name for name in b if name not in seen]


def tensor_changes(a: GGUFFile, b: GGUFFile) -> tuple[TensorChange, ...]:
    """Every tensor name of either file, sorted by role, block and name."""
    names = _union_names([t.name for t in a.tensors], [t.name for t in b.tensors])
    changes = []
    for name in sorted(names, key=role_sort_key):
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


# ---- tensor data ------------------------------------------------------------------------------

def tensor_digest(source: ByteSource, tensor: TensorInfo,
                  chunk_bytes: int = DEFAULT_HASH_CHUNK_BYTES,
                  on_chunk: Callable[[int], None] | None = None) -> str:
    """SHA-256 (hex) of a tensor's raw bytes, read ``chunk_bytes`` at a time.

    SHA-256 rather than BLAKE2b: with the CPU's SHA instructions OpenSSL hashes about twice as
    fast (1.7 against 0.9 GB/s here). ``on_chunk`` gets the byte count of each chunk read.
    """
    digest = hashlib.sha256()
    for start in range(0, tensor.n_bytes, chunk_bytes):
        data = read_tensor_bytes(source, tensor, start, min(chunk_bytes, tensor.n_bytes - start))
        digest.update(data)
        if on_chunk is not None:
            on_chunk(len(data))
    return digest.hexdigest()


def data_hash_pairs(a: GGUFFile, b: GGUFFile) -> list[tuple[TensorInfo, TensorInfo]]:
    """The tensors whose raw bytes mean the same on both sides: same name, type and shape."""
    pairs = []
    for tensor_a in a.tensors:
        tensor_b = b.tensor(tensor_a.name)
        if tensor_b is not None and (tensor_b.type_id, tensor_b.ne) == (tensor_a.type_id,
                                                                        tensor_a.ne):
            pairs.append((tensor_a, tensor_b))
    return pairs


class _HashCounter:
    """Counts the bytes hashed and reports them to the progress callback."""

    def __init__(self, bytes_total: int, n_tensors: int,
                 progress: ProgressCallback | None) -> None:
        self.bytes_total = bytes_total
        self.n_tensors = n_tensors
        self.progress = progress
        self.bytes_done = 0
        self.tensor = ""
        self.tensor_index = 0

    def start(self, tensor: str, index: int) -> None:
        self.tensor, self.tensor_index = tensor, index

    def __call__(self, n_bytes: int) -> None:
        self.bytes_done += n_bytes
        if self.progress is not None:
            self.progress(HashProgress(self.tensor, self.tensor_index, self.n_tensors,
                                       self.bytes_done, self.bytes_total))


def tensor_data_diff(a: GGUFFile, b: GGUFFile, source_a: ByteSource, source_b: ByteSource,
                     chunk_bytes: int = DEFAULT_HASH_CHUNK_BYTES,
                     progress: ProgressCallback | None = None) -> dict[str, bool]:
    """Tensor name -> whether both sides' raw bytes are equal, for each tensor of the same type
    and shape in both files. Reads all of those tensors' data, one chunk at a time."""
    pairs = data_hash_pairs(a, b)
    counter = _HashCounter(sum(ta.n_bytes + tb.n_bytes for ta, tb in pairs), len(pairs), progress)
    equal = {}
    for index, (tensor_a, tensor_b) in enumerate(pairs, 1):
        counter.start(tensor_a.name, index)
        equal[tensor_a.name] = (tensor_digest(source_a, tensor_a, chunk_bytes, counter)
                                == tensor_digest(source_b, tensor_b, chunk_bytes, counter))
    return equal


def data_hash_plan(a: GGUFFile, b: GGUFFile, source_a: ByteSource, source_b: ByteSource,
                   choice: bool | None) -> tuple[bool, tuple[str, ...]]:
    """Whether to hash tensor data (``choice``: True, False or None for automatic), and a note
    saying why not when it is not."""
    if choice is False:
        return False, ("tensor data not compared (--no-data-hash): tensors of the same type and "
                       "shape count as equal",)
    if a.byte_order != b.byte_order:
        return False, (f"tensor data not compared: A is {a.byte_order}-endian and B "
                       f"{b.byte_order}-endian, so equal values are stored as other bytes",)
    remote = [label for label, source in (("A", source_a), ("B", source_b))
              if is_remote(source.name)]
    if choice is None and remote:
        return False, (f"tensor data not compared: {' and '.join(remote)} "
                       f"{'is' if len(remote) == 1 else 'are'} remote, and hashing would "
                       "download every tensor; tensors of the same type and shape count as "
                       "equal (--data-hash compares them anyway)",)
    return True, ()


# ---- metadata ---------------------------------------------------------------------------------

def array_digest(source: ByteSource, array: ArrayValue, byte_order: str = "little") -> ArrayDigest:
    """Item type, count and SHA-256 of a metadata array's items, streamed in bounded memory.

    The hash covers each item's ``repr`` joined by newlines (``repr`` escapes newlines inside
    strings, so the encoding is unambiguous), which makes it independent of the file's byte
    order and of how the array is laid out on disk.
    """
    digest = hashlib.sha256()
    batch: list[str] = []
    for item in iter_array(source, array, byte_order):
        batch.append(repr(item))
        if len(batch) == HASH_BATCH_ITEMS:
            digest.update(("\n".join(batch) + "\n").encode("utf-8", "backslashreplace"))
            batch.clear()
    if batch:
        digest.update(("\n".join(batch) + "\n").encode("utf-8", "backslashreplace"))
    return ArrayDigest(item_type=array.item_type_name, count=array.count,
                       sha256=digest.hexdigest())


def _metadata_side(entry: MetadataEntry, source: ByteSource, byte_order: str) -> MetadataSide:
    value = entry.value
    if not isinstance(value, ArrayValue):
        return MetadataSide(VALUE_TYPES.get(entry.value_type, ("?", None))[0], value)
    type_name = f"array[{value.item_type_name}]"
    if value.count <= SMALL_ARRAY_ITEMS:
        return MetadataSide(type_name, tuple(read_array(source, value, byte_order)))
    return MetadataSide(type_name, array_digest(source, value, byte_order))


def _same_value(a: MetadataSide, b: MetadataSide) -> bool:
    # repr, not ==: NaN equals itself, and 1 (uint32) is not True (bool) even in Python.
    return a.type_name == b.type_name and repr(a.value) == repr(b.value)


def metadata_diff(a: GGUFFile, b: GGUFFile, source_a: ByteSource, source_b: ByteSource,
                  ) -> tuple[MetadataChange, ...]:
    """Every key of either file (A's order, then B's new keys), each marked with its change."""
    changes = []
    for key in _union_names(list(a.metadata), list(b.metadata)):
        entry_a, entry_b = a.metadata.get(key), b.metadata.get(key)
        side_a = _metadata_side(entry_a, source_a, a.byte_order) if entry_a else None
        side_b = _metadata_side(entry_b, source_b, b.byte_order) if entry_b else None
        if side_a is None:
            change = "added"
        elif side_b is None:
            change = "removed"
        else:
            change = "same" if _same_value(side_a, side_b) else "changed"
        changes.append(MetadataChange(key=key, change=change, a=side_a, b=side_b))
    return tuple(changes)


# ---- values -----------------------------------------------------------------------------------

def value_targets(a: GGUFFile, b: GGUFFile, scope: str,
                  ) -> tuple[list[tuple[TensorInfo, TensorInfo]], list[ValueSkip]]:
    """The tensor pairs to compare for ``scope`` ("embeddings" or "all"), and those skipped."""
    from gguf_inspect.gguf.dequant import can_dequantize  # imports gguf: values only

    names = _union_names([t.name for t in a.tensors], [t.name for t in b.tensors])
    if scope == "embeddings":
        names = [name for name in names if tensor_role(name) in EMBEDDING_ROLES]
    pairs, skipped = [], []
    for name in sorted(names, key=role_sort_key):
        tensor_a, tensor_b = a.tensor(name), b.tensor(name)
        if tensor_a is None or tensor_b is None:
            skipped.append(ValueSkip(name, "only in A" if tensor_b is None else "only in B"))
        elif tensor_a.ne != tensor_b.ne:
            skipped.append(ValueSkip(name, f"shapes differ: A {list(tensor_a.ne)}, "
                                           f"B {list(tensor_b.ne)}"))
        elif not (can_dequantize(tensor_a) and can_dequantize(tensor_b)):
            unreadable = tensor_a if not can_dequantize(tensor_a) else tensor_b
            skipped.append(ValueSkip(name, f"cannot dequantize type {unreadable.type_name}"))
        else:
            pairs.append((tensor_a, tensor_b))
    return pairs, skipped


def sample_rows(name: str, total_rows: int, sample: int | None, seed: int) -> np.ndarray:
    """The rows to compare: all of them, or ``sample`` distinct rows drawn with a seeded RNG.

    The generator is seeded with the seed and the tensor name, so a tensor's rows do not depend
    on which other tensors are compared.
    """
    if sample is None or sample >= total_rows:
        return np.arange(total_rows, dtype=np.int64)
    generator = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    return np.sort(generator.choice(total_rows, size=sample, replace=False))


def _row_chunks(rows: np.ndarray, rows_per_chunk: int) -> Iterator[np.ndarray]:
    """Split the rows to compare into chunks of at most ``rows_per_chunk`` rows."""
    for start in range(0, rows.size, rows_per_chunk):
        yield rows[start:start + rows_per_chunk]


class _ErrorAccumulator:
    """Running sums of the error metrics, fed one chunk of rows of both sides at a time."""

    def __init__(self) -> None:
        self.rows = 0
        self.elements = 0
        self.squared_error = 0.0
        self.squared_reference = 0.0
        self.max_abs = 0.0
        self.cos_sum = 0.0
        self.cos_min = 1.0

    def add(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        # A few rows at a time: float64 temporaries of 512 KiB stay in cache and are reused by
        # the allocator, where chunk-sized ones (tens of MiB) cost a page fault every 4 KiB and
        # took most of the time of a sampled diff.
        rows_per_block = max(1, ACCUMULATE_BLOCK_ELEMENTS // max(1, reference.shape[1]))
        for start in range(0, reference.shape[0], rows_per_block):
            self._add_block(reference[start:start + rows_per_block],
                            candidate[start:start + rows_per_block])

    def _add_block(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        ref = reference.astype(np.float64)
        cand = candidate.astype(np.float64)
        error = cand - ref
        self.rows += ref.shape[0]
        self.elements += ref.size
        self.squared_error += float(np.einsum("ij,ij->", error, error))
        self.squared_reference += float(np.einsum("ij,ij->", ref, ref))
        if error.size:
            self.max_abs = _nan_max(self.max_abs, float(np.max(np.abs(error))))
        cosines = row_cosines(ref, cand)
        self.cos_sum += float(np.sum(cosines))
        if cosines.size:
            self.cos_min = -_nan_max(-self.cos_min, -float(np.min(cosines)))

    def result(self, name: str, total_rows: int) -> ValueDiff:
        reference_norm = self.squared_reference ** 0.5
        return ValueDiff(
            name=name, role=tensor_role(name), rows=self.rows, total_rows=total_rows,
            rmse=(self.squared_error / self.elements) ** 0.5 if self.elements else 0.0,
            max_abs=self.max_abs,
            cos_mean=self.cos_sum / self.rows if self.rows else 1.0,
            cos_min=self.cos_min,
            rel_error=self.squared_error ** 0.5 / reference_norm if reference_norm else None)


def _nan_max(running: float, new: float) -> float:
    """max() that keeps a NaN once seen (Python's max silently drops it when it comes second)."""
    return new if math.isnan(new) or new > running else running


def row_cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row pair; two zero rows count as 1, one zero row as 0, and a
    row holding NaN gives NaN (damage must show, not average away)."""
    dots = np.einsum("ij,ij->i", reference, candidate)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    both_zero = ~reference.any(axis=1) & ~candidate.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosines = np.where(norms == 0, 0.0, dots / norms)
    return np.where(both_zero, 1.0, cosines)


def value_diff(a: GGUFFile, b: GGUFFile, source_a: ByteSource, source_b: ByteSource,
               options: DiffOptions, progress: ProgressCallback | None = None,
               ) -> tuple[tuple[ValueDiff, ...], tuple[ValueSkip, ...]]:
    """Compare dequantized values of same-shaped tensors, holding one row chunk per side."""
    from gguf_inspect.gguf import dequant  # imports gguf: values only

    if options.values not in VALUE_SCOPES:
        raise ValueError(f"values scope must be one of {VALUE_SCOPES}, got {options.values!r}")
    pairs, skipped = value_targets(a, b, options.values)
    plans = []
    for tensor_a, _ in pairs:
        total_rows = dequant.tensor_row_count(tensor_a)
        plans.append((total_rows, sample_rows(tensor_a.name, total_rows, options.sample,
                                              options.seed)))
    elements_total = sum(rows.size * t.row_length for (t, _), (_, rows) in zip(pairs, plans))
    elements_done = 0
    results = []
    for index, ((tensor_a, tensor_b), (total_rows, rows)) in enumerate(zip(pairs, plans), 1):
        # Both sides' float32 rows together stay within chunk_bytes.
        rows_per_chunk = max(1, options.chunk_bytes // (2 * 4 * tensor_a.row_length))
        accumulator = _ErrorAccumulator()
        for chunk in _row_chunks(rows, rows_per_chunk):
            reference = dequant.read_row_set(source_a, tensor_a, chunk, a.byte_order)
            candidate = dequant.read_row_set(source_b, tensor_b, chunk, b.byte_order)
            accumulator.add(reference, candidate)
            elements_done += reference.size
            del reference, candidate  # release this chunk before reading the next
            if progress is not None:
                progress(ValuesProgress(tensor_a.name, index, len(pairs), elements_done,
                                        elements_total))
        results.append(accumulator.result(tensor_a.name, total_rows))
    return tuple(results), tuple(skipped)


# ---- the whole report -------------------------------------------------------------------------

def diff_models(a: GGUFFile, b: GGUFFile, source_a: ByteSource, source_b: ByteSource,
                options: DiffOptions = DiffOptions(),
                progress: ProgressCallback | None = None) -> DiffReport:
    """Structure and metadata always; tensor data as ``options.data_hash`` says; values when
    ``options.values`` names a scope."""
    changes = tensor_changes(a, b)
    data_hashed, data_notes = data_hash_plan(a, b, source_a, source_b, options.data_hash)
    if data_hashed:
        equal = tensor_data_diff(a, b, source_a, source_b, options.hash_chunk_bytes, progress)
        changes = tuple(replace(change, data_equal=equal.get(change.name)) for change in changes)
    values: tuple[ValueDiff, ...] = ()
    skipped: tuple[ValueSkip, ...] = ()
    if options.values is not None:
        values, skipped = value_diff(a, b, source_a, source_b, options, progress)
    return DiffReport(
        warnings=structure_warnings(a, b, changes), notes=tied_head_notes(a, b) + data_notes,
        a=side_facts(a), b=side_facts(b), type_counts=type_count_pairs(a, b), tensors=changes,
        data_hashed=data_hashed, groups=role_groups(changes),
        metadata=metadata_diff(a, b, source_a, source_b),
        values=values, values_skipped=skipped, options=options)
