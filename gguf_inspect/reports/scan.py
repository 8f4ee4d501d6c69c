"""The shelf scan: one comparable row per model (size, type, embedding, KV cache), sortable.

Every figure comes from the header alone, so a remote model costs one header read. The KV cache
figure follows llama.cpp's ``llama_hparams::n_embd_k_gqa`` / ``n_embd_v_gqa``
(src/llama-hparams.cpp), read by the memory model's ``hparams``: per layer, head size x that
layer's KV head count, for K and for V, in f16 (2 bytes), per 1,024 tokens of context
(``KV_TOKENS``), the default cache type of ``llama_context``.

The template column is the audit's analysis of ``tokenizer.chat_template`` (reports/template.py,
parsed and never rendered) without the vocabulary, which scan does not read: every error finding
of the audit is still found (a missing special token is only a warning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gguf_inspect.reports.embeddings import matrix_facts
from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.core.constants import OUTPUT, TOKEN_EMBD
from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.hparams import NO_OUTPUT_HEAD_ARCHS, read_hyperparameters
from gguf_inspect.reports.findings import ERROR
from gguf_inspect.reports.template import analyse_template

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
    template: str = "none"  # the known template it is, "custom", or "none"
    template_error: bool | None = None  # an audit error finding in it; None without a template


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


def kv_cache_bytes(gguf: GGUFFile, n_tokens: int = KV_TOKENS) -> int | None:
    """f16 K and V cache bytes for ``n_tokens`` cells; None when the header lacks the facts.

    The hyperparameters are the memory model's (``hparams.read_hyperparameters``: per-layer
    head sizes and KV head counts, LLAMA_MAX_LAYERS and the uint32 ranges llama.cpp's loader
    checks, so a header it would refuse raises FormatError). Per layer K is n_embd_k_gqa and V
    n_embd_v_gqa values per token; a layer with 0 KV heads holds none. Sliding-window layers
    and layers sharing another's KV are counted in full.
    """
    if not _int(gguf.arch_value("block_count")) or not _int(gguf.arch_value("embedding_length")):
        return None
    hparams = read_hyperparameters(gguf)
    if not hparams.n_head[0]:
        return None
    values_per_token = sum(hparams.n_embd_k_gqa) + sum(hparams.n_embd_v_gqa)
    return values_per_token * KV_F16_BYTES * n_tokens


def template_facts(gguf: GGUFFile) -> tuple[str, bool | None]:
    """The template column: which known template tokenizer.chat_template is ("custom" when none,
    "none" without one), and whether the audit has an error finding on it."""
    template = gguf.value("tokenizer.chat_template")
    if not isinstance(template, str):
        return "none", None
    report = analyse_template(template)
    return (report.known_as or "custom",
            any(finding.severity == ERROR for finding in report.findings))


def scan_row(location: str, gguf: GGUFFile) -> ScanRow:
    """The row of one parsed model (a split model arrives already merged)."""
    summary = summarize(gguf)
    embedding = gguf.tensor(TOKEN_EMBD)
    facts = matrix_facts(embedding, summary.tensor_bytes) if embedding is not None else None
    n_shards = _int(gguf.value("split.count")) or 1
    template, template_error = template_facts(gguf)
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
        tied_output=(gguf.tensor(OUTPUT) is None and gguf.architecture not in
                     NO_OUTPUT_HEAD_ARCHS) if facts else None,
        kv_cache_bytes_per_1k_tokens=kv_cache_bytes(gguf),
        tensor_bytes=summary.tensor_bytes,
        file_size=gguf.file_size,
        n_shards=n_shards,
        template=template,
        template_error=template_error,
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
