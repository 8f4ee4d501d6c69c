"""Validation of a GGUF file: every structural problem found (not only the first), and with
``data`` a scan of every tensor's bytes for NaN and Inf values (llama.cpp's ``--check-tensors``).

The header checks are the reader's own, run in its collecting mode, plus the rules llama.cpp's
loader (``gguf_init_from_file_impl`` in ggml/src/gguf.cpp) enforces that the reader tolerates;
those come back as warnings: the file is well-formed GGUF, but llama.cpp would refuse it.
Errors make the file invalid; warnings do not. A split model is checked file by file: every
problem names the shard it is in and a byte offset inside that shard, and each shard's tensor
data is held to that shard's own data section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from gguf_inspect.core.constants import (
    FLOAT_TYPE_IDS,
    GGML_TYPES,
    PLAIN_TYPE_IDS,
    VALUE_TYPE_STRING,
)
from gguf_inspect.core.errors import FormatError, GGUFError, TruncatedError
from gguf_inspect.core.model import ArrayValue, GGUFFile, TensorInfo
from gguf_inspect.gguf.open import open_source, read_header
from gguf_inspect.gguf.cursor import MAX_LABEL
from gguf_inspect.gguf.reader import invalid_strings
from gguf_inspect.gguf.tensor_data import read_tensor_bytes
from gguf_inspect.gguf.source import ByteSource

ERROR = "error"
WARNING = "warning"
GGML_MAX_NAME = 64  # llama.cpp refuses tensor names of this many bytes or more
PRESENCE_CHUNK_BYTES = 16 << 20  # raw bytes read at a time when a type is only checked for presence
# Bad items listed one by one per string array; the rest are counted in one more problem, so a
# vocabulary of broken tokens cannot bury everything else.
MAX_BAD_ITEMS_LISTED = 10

# (bytes done, bytes in all, tensor now being read): called after every chunk of --data.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where it is (byte offset, field) and how bad it is."""

    severity: str  # ERROR (the file is invalid) or WARNING (llama.cpp would refuse or warn)
    kind: str  # "truncated", "format", "data" or "llama.cpp"
    message: str
    offset: int | None  # absolute byte offset inside ``file``
    field: str | None
    file: str | None = None  # the file it is in (a split model's shard); set on every problem


@dataclass(frozen=True)
class TensorCheck:
    """The data check of one tensor: how many values were looked at and how many were bad."""

    name: str
    type: str
    n_elements: int
    n_bytes: int
    checked: bool  # False when the values could not be decoded (see note)
    nan: int
    inf: int
    first_bad_row: int | None  # the first row holding a NaN or Inf
    note: str


@dataclass(frozen=True)
class ValidationReport:
    path: str
    file_size: int
    header_read: bool  # False when a problem stopped the header scan
    version: int | None
    n_tensors: int | None
    n_kv: int | None
    problems: tuple[Problem, ...]
    data_checked: bool
    tensors: tuple[TensorCheck, ...]  # empty unless data_checked
    files: tuple[str, ...] = ()  # the files the model was read from (a split model's shards)

    @property
    def several_files(self) -> bool:
        """True when problems must say which file they are in (a split model)."""
        named = set(self.files) | {problem.file for problem in self.problems}
        return len(named - {None}) > 1

    @property
    def n_errors(self) -> int:
        return sum(problem.severity == ERROR for problem in self.problems)

    @property
    def n_warnings(self) -> int:
        return sum(problem.severity == WARNING for problem in self.problems)

    @property
    def valid(self) -> bool:
        return self.n_errors == 0

    @property
    def decoded(self) -> tuple[TensorCheck, ...]:
        """The tensors whose values were decoded (``--data``); only these can hold NaN/Inf."""
        return tuple(check for check in self.tensors if check.checked)

    @property
    def values_decoded(self) -> int:
        return sum(check.n_elements for check in self.decoded)

    @property
    def nan_values(self) -> int:
        return sum(check.nan for check in self.decoded)

    @property
    def inf_values(self) -> int:
        return sum(check.inf for check in self.decoded)


def _from_error(error: GGUFError, file: str, severity: str = ERROR) -> Problem:
    """The problem an error describes; ``file`` when the error does not name its own."""
    kind = "truncated" if isinstance(error, TruncatedError) else "format"
    return Problem(severity, kind, error.message, error.offset, error.field, error.path or file)


def _shown(name: str, position: str) -> str:
    """A key or tensor name as the problem list shows it; a huge one by its position instead."""
    return name if len(name) <= MAX_LABEL else position


def _llama_cpp_problem(message: str, offset: int | None, field: str | None,
                       file: str) -> Problem:
    return Problem(WARNING, "llama.cpp", message, offset, field, file)


def llama_cpp_checks(gguf: GGUFFile) -> list[Problem]:
    """What llama.cpp's loader refuses although the GGUF format allows it.

    llama.cpp reads the architecture from the first file only, but opens every shard of a split
    model with the same GGUF loader: the other rules are checked in each file's own header,
    with that file's offsets.
    """
    problems = []
    if gguf.architecture is None:
        problems.append(_llama_cpp_problem("no general.architecture string: llama.cpp cannot "
                                           "pick a model loader", None, "general.architecture",
                                           gguf.files[0].header.path))
    for shard in gguf.files:
        problems += _file_checks(shard.header)
    return problems


def _file_checks(header: GGUFFile) -> list[Problem]:
    """llama.cpp's rules for one file: its keys, its tensor entries, its data layout."""
    problems = []
    for index, entry in enumerate(header.metadata.values()):
        if not entry.key:
            problems.append(_llama_cpp_problem("empty key", entry.offset, "key", header.path))
        # Arrays of arrays: the reader's own error (llama.cpp refuses them), not listed twice.
    for index, tensor in enumerate(header.tensors):
        label = _shown(tensor.name, f"tensor[{index}]")
        if not tensor.known_type:
            problems.append(_llama_cpp_problem(
                f"unknown ggml type {tensor.type_name}: sized from the gap to the next tensor",
                tensor.info_offset, f"{label} type", header.path))
        name_bytes = len(tensor.name.encode("utf-8"))
        if name_bytes >= GGML_MAX_NAME:
            problems.append(_llama_cpp_problem(
                f"tensor name is {name_bytes} bytes, llama.cpp allows at most {GGML_MAX_NAME - 1}",
                tensor.info_offset, label, header.path))
    problems.extend(_layout_checks(header))
    return problems


def _layout_checks(header: GGUFFile) -> Iterable[Problem]:
    """llama.cpp wants each tensor's data right after the previous one's, padded to alignment.

    ``header`` is one file's own header (a shard's, for a split model): every shard starts its
    own data section, so the packing restarts at each shard's data offset.
    """
    expected = header.data_offset
    for index, tensor in enumerate(header.tensors):
        if tensor.offset != expected:
            label = _shown(tensor.name, f"tensor[{index}]")
            yield _llama_cpp_problem(
                f"data at byte {tensor.offset}, llama.cpp expects it at byte {expected} "
                "(tensors packed in header order)", tensor.info_offset, f"{label} offset",
                header.path)
            return  # every later offset is off by the same slip; once is enough
        expected += -(-tensor.n_bytes // header.alignment) * header.alignment


def string_checks(source: ByteSource, gguf: GGUFFile) -> list[Problem]:
    """Every string-array item (vocabulary tokens and the like) that is not valid UTF-8.

    The header reader checks keys and scalar strings as it goes but only previews string arrays,
    so that the header-only path never reads a whole vocabulary; here every item is read.
    """
    problems = []
    for shard in gguf.files:
        header = shard.header
        for index, entry in enumerate(header.metadata.values()):
            value = entry.value
            if not isinstance(value, ArrayValue) or value.item_type != VALUE_TYPE_STRING:
                continue
            label = _shown(entry.key, f"kv[{index}]")
            n_bad = 0
            try:
                for error in invalid_strings(source, value, label, header.byte_order,
                                             shard.start):
                    n_bad += 1
                    if n_bad <= MAX_BAD_ITEMS_LISTED:
                        problems.append(_from_error(error, header.path))
            except FormatError as error:  # the header read the lengths, so only if bytes vanish
                problems.append(_from_error(error, header.path))
            if n_bad > MAX_BAD_ITEMS_LISTED:
                problems.append(Problem(
                    ERROR, "format", f"{n_bad - MAX_BAD_ITEMS_LISTED} more item(s) with invalid "
                    f"UTF-8 ({n_bad} in all)", value.offset, label, header.path))
    return problems


def _unchecked_reason(tensor: TensorInfo, gguf: GGUFFile) -> str | None:
    """Why a tensor's values cannot be decoded, or None when they can."""
    if not tensor.known_type:
        return f"unknown type {tensor.type_name}: bytes present, values not decoded"
    ggml_type = GGML_TYPES[tensor.type_id]
    if not tensor.ne or tensor.n_elements == 0 or tensor.ne[0] % ggml_type.block_size:
        return "no rows of whole blocks (a scalar or a bad shape): values not decoded"
    if tensor.type_id in PLAIN_TYPE_IDS and tensor.type_id not in FLOAT_TYPE_IDS:
        return "integer type: no NaN or Inf possible"
    from gguf_inspect.gguf.dequant import can_dequantize

    if not can_dequantize(tensor):
        return (f"gguf-py has no dequantizer for {tensor.type_name}: bytes present, "
                "values not decoded")
    return None


class _Progress:
    """Counts bytes done across tensors and forwards them to the caller's callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.callback = total, 0, callback

    def advance(self, n_bytes: int, name: str) -> None:
        self.done += n_bytes
        if self.callback is not None:
            self.callback(self.done, self.total, name)


def _read_presence(source: ByteSource, tensor: TensorInfo, progress: _Progress) -> None:
    """Read every byte of a tensor whose values are not decoded, to prove they can be read."""
    for start in range(0, tensor.n_bytes, PRESENCE_CHUNK_BYTES):
        length = min(PRESENCE_CHUNK_BYTES, tensor.n_bytes - start)
        read_tensor_bytes(source, tensor, start, length)
        progress.advance(length, tensor.name)


def _check_tensor(source: ByteSource, gguf: GGUFFile, tensor: TensorInfo, progress: _Progress,
                  chunk_bytes: int | None = None) -> TensorCheck:
    """Decode one tensor in chunks and count its NaN and Inf values."""
    # numpy and gguf load only here, so that validating the header alone stays quick.
    import numpy as np

    from gguf_inspect.gguf import dequant

    facts = dict(name=tensor.name, type=tensor.type_name, n_elements=tensor.n_elements,
                 n_bytes=tensor.n_bytes)
    if not _data_in_file(gguf, tensor):  # already a structural error
        return TensorCheck(**facts, checked=False, nan=0, inf=0, first_bad_row=None,
                           note="data runs past the end of the file")
    reason = _unchecked_reason(tensor, gguf)
    if reason is not None:
        _read_presence(source, tensor, progress)
        return TensorCheck(**facts, checked=False, nan=0, inf=0, first_bad_row=None, note=reason)
    nan = inf = 0
    first_bad_row = None
    row_bytes = dequant.row_byte_size(tensor)
    total_rows = dequant.tensor_row_count(tensor)
    rows_per_chunk = max(1, (chunk_bytes or dequant.DEFAULT_CHUNK_BYTES) // (4 * tensor.row_length))
    for first_row in range(0, total_rows, rows_per_chunk):
        n_rows = min(rows_per_chunk, total_rows - first_row)
        raw = np.frombuffer(read_tensor_bytes(source, tensor, first_row * row_bytes,
                                              n_rows * row_bytes), dtype=np.uint8)
        # Quantized blocks with finite scales hold finite values: only chunks with a NaN or
        # Inf scale are dequantized, and then every value is counted.
        if not dequant.scales_finite(raw, tensor, gguf.byte_order):
            rows = dequant.dequantize_raw(raw.reshape(n_rows, row_bytes), tensor, gguf.byte_order)
            nan_mask, inf_mask = np.isnan(rows), np.isinf(rows)
            nan += int(nan_mask.sum())
            inf += int(inf_mask.sum())
            if first_bad_row is None and (nan or inf):
                bad_rows = np.flatnonzero((nan_mask | inf_mask).any(axis=1))
                first_bad_row = first_row + int(bad_rows[0])
        progress.advance(n_rows * row_bytes, tensor.name)
    return TensorCheck(**facts, checked=True, nan=nan, inf=inf, first_bad_row=first_bad_row,
                       note="")


def _data_in_file(gguf: GGUFFile, tensor: TensorInfo) -> bool:
    """Whether the tensor's data ends inside its own file (a shard's end, for a split model:
    the merged source would otherwise read on into the next shard's bytes)."""
    return tensor.file_offset + tensor.n_bytes <= gguf.file_of(tensor).file_size


def _data_problem(check: TensorCheck, tensor: TensorInfo, file: str) -> Problem:
    row_bytes = tensor.n_bytes // (tensor.n_elements // tensor.row_length)
    offset = tensor.file_offset + (check.first_bad_row or 0) * row_bytes
    return Problem(ERROR, "data",
                   f"{check.nan} NaN and {check.inf} Inf value(s), the first in row "
                   f"{check.first_bad_row}", offset, check.name, file)


def check_all_data(source: ByteSource, gguf: GGUFFile, progress: ProgressCallback | None = None,
                   chunk_bytes: int | None = None) -> tuple[list[TensorCheck], list[Problem]]:
    """Every tensor's bytes read; float and quantized ones decoded and scanned for NaN/Inf."""
    counter = _Progress(sum(t.n_bytes for t in gguf.tensors if _data_in_file(gguf, t)),
                        progress)
    checks, problems = [], []
    for tensor in gguf.tensors:
        try:
            check = _check_tensor(source, gguf, tensor, counter, chunk_bytes)
        except FormatError as error:  # bytes missing although the header said they are there
            problems.append(_from_error(error, gguf.file_of(tensor).path))
            continue
        checks.append(check)
        if check.nan or check.inf:
            problems.append(_data_problem(check, tensor, gguf.file_of(tensor).path))
    return checks, problems


def validate_source(source: ByteSource, data: bool = False,
                    progress: ProgressCallback | None = None,
                    chunk_bytes: int | None = None) -> ValidationReport:
    """Validate an open byte source; I/O failures (SourceError) propagate to the caller."""
    collected: list[GGUFError] = []
    try:
        gguf: GGUFFile | None = read_header(source, problems=collected)
    except FormatError as fatal:  # the header cannot be read past this point
        if not any(fatal is problem for problem in collected):  # a split model lists it itself
            collected.append(fatal)
        gguf = None
    problems = [_from_error(error, source.name) for error in collected]
    checks: list[TensorCheck] = []
    if gguf is not None:
        problems += string_checks(source, gguf)
        problems += llama_cpp_checks(gguf)
        if data:
            checks, data_problems = check_all_data(source, gguf, progress, chunk_bytes)
            problems += data_problems
    # A split model's shards (those that could be opened), else the one file.
    files = tuple(getattr(source, "shard_names", None) or (source.name,))
    return ValidationReport(
        path=source.name, file_size=source.size, header_read=gguf is not None,
        version=gguf.version if gguf else None, n_tensors=gguf.n_tensors if gguf else None,
        n_kv=gguf.n_kv if gguf else None, problems=tuple(problems),
        data_checked=data and gguf is not None, tensors=tuple(checks), files=files)


def validate_file(location: str, data: bool = False, progress: ProgressCallback | None = None,
                  chunk_bytes: int | None = None) -> ValidationReport:
    """Open a model location read-only, validate it, close it."""
    source = open_source(location)
    try:
        return validate_source(source, data, progress, chunk_bytes)
    finally:
        source.close()
