"""The shelf scan: one comparable row per model (size, type, embedding, KV cache), sortable.

Every figure comes from the header alone, so a remote model costs one header read. The KV cache
figure follows llama.cpp's ``llama_hparams::n_embd_k_gqa`` / ``n_embd_v_gqa``
(src/llama-hparams.cpp): per layer, head size x that layer's KV head count, for K and for V, in f16 (2 bytes), per
1,024 tokens of context (``KV_TOKENS``), the default cache type of ``llama_context``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gguf_inspect.reports.embeddings import matrix_facts
from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.core.constants import OUTPUT, TOKEN_EMBD
from gguf_inspect.core.model import ArrayValue, GGUFFile

KV_TOKENS = 1024
KV_F16_BYTES = 2


@dataclass(frozen=True)
class ScanRow:
    """One model of the shelf. Embedding fields are None for a file without token_embd.weight."""

    location: str
    architecture: str | None
    name: str | None
    n_params: int
    file_type: str
    embedding_type: str | None
    embedding_bytes: int | None
    embedding_f16_bytes: int | None
    embedding_ratio_to_f16: float | None
    tied_output: bool | None
    kv_cache_bytes_per_1k_tokens: int | None
    tensor_bytes: int
    file_size: int
    n_shards: int


@dataclass(frozen=True)
class ScanFailure:
    """A location that could not be read, with the error and the exit code it would have had."""

    location: str
    error: str
    exit_code: int


@dataclass(frozen=True)
class ScanReport:
    rows: tuple[ScanRow, ...]
    failures: tuple[ScanFailure, ...]
    sort_key: str
    reverse: bool


# --sort keys: the row value each sorts by (None sorts last either way).
SORT_KEYS: dict[str, Callable[[ScanRow], Any]] = {
    "location": lambda row: row.location,
    "architecture": lambda row: row.architecture,
    "params": lambda row: row.n_params,
    "file-type": lambda row: row.file_type,
    "embedding-type": lambda row: row.embedding_type,
    "embedding-bytes": lambda row: row.embedding_bytes,
    "embedding-ratio": lambda row: row.embedding_ratio_to_f16,
    "kv-cache": lambda row: row.kv_cache_bytes_per_1k_tokens,
    "tensor-bytes": lambda row: row.tensor_bytes,
    "file-size": lambda row: row.file_size,
}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _per_layer(gguf: GGUFFile, suffix: str, n_layer: int, default: list[int] | None,
               ) -> list[int] | None:
    """A per-layer hyperparameter: a scalar repeated, or an array of one value per layer."""
    value = gguf.arch_value(suffix)
    if isinstance(value, ArrayValue):
        items = value.items
        if items is None or len(items) < n_layer:
            return None
        return [int(item) for item in items[:n_layer]]
    scalar = _int(value)
    if scalar is not None:
        return [scalar] * n_layer
    return default


def kv_cache_bytes(gguf: GGUFFile, n_tokens: int = KV_TOKENS) -> int | None:
    """f16 K and V cache bytes for ``n_tokens`` cells; None when the header lacks the facts.

    n_embd_head_k = key_length, else n_embd / n_head (of layer 0); K per layer is
    n_embd_head_k x n_head_kv(layer); V the same with value_length. A layer with 0 KV heads
    (a recurrent or attention-free layer) holds none. Sliding-window layers are counted in full.
    """
    n_layer = _int(gguf.arch_value("block_count"))
    n_embd = _int(gguf.arch_value("embedding_length"))
    if not n_layer or not n_embd:
        return None
    n_head = _per_layer(gguf, "attention.head_count", n_layer, None)
    if n_head is None or not n_head[0]:
        return None
    n_head_kv = _per_layer(gguf, "attention.head_count_kv", n_layer, n_head)
    if n_head_kv is None:
        return None
    head_k = _int(gguf.arch_value("attention.key_length")) or n_embd // n_head[0]
    head_v = _int(gguf.arch_value("attention.value_length")) or n_embd // n_head[0]
    values_per_token = sum((head_k + head_v) * heads for heads in n_head_kv)
    return values_per_token * KV_F16_BYTES * n_tokens


def scan_row(location: str, gguf: GGUFFile) -> ScanRow:
    """The row of one parsed model (a split model arrives already merged)."""
    summary = summarize(gguf)
    embedding = gguf.tensor(TOKEN_EMBD)
    facts = matrix_facts(embedding, summary.tensor_bytes) if embedding is not None else None
    n_shards = _int(gguf.value("split.count")) or 1
    return ScanRow(
        location=location,
        architecture=summary.architecture,
        name=summary.name,
        n_params=summary.n_params,
        file_type=summary.file_type,
        embedding_type=facts.type if facts else None,
        embedding_bytes=facts.n_bytes if facts else None,
        embedding_f16_bytes=facts.f16_bytes if facts else None,
        embedding_ratio_to_f16=facts.ratio_to_f16 if facts else None,
        tied_output=gguf.tensor(OUTPUT) is None if facts else None,
        kv_cache_bytes_per_1k_tokens=kv_cache_bytes(gguf),
        tensor_bytes=summary.tensor_bytes,
        file_size=gguf.file_size,
        n_shards=n_shards,
    )


def sort_rows(rows: list[ScanRow] | tuple[ScanRow, ...], key: str, reverse: bool = False,
              ) -> tuple[ScanRow, ...]:
    """Rows ordered by a ``SORT_KEYS`` key; rows lacking the value go last in both directions."""
    value_of = SORT_KEYS[key]
    known = [row for row in rows if value_of(row) is not None]
    unknown = [row for row in rows if value_of(row) is None]
    known.sort(key=lambda row: row.location)
    known.sort(key=value_of, reverse=reverse)  # stable: ties stay in location order
    return tuple(known + unknown)


def build_report(rows: list[ScanRow], failures: list[ScanFailure], key: str = "location",
                 reverse: bool = False) -> ScanReport:
    return ScanReport(rows=sort_rows(rows, key, reverse), failures=tuple(failures),
                      sort_key=key, reverse=reverse)
