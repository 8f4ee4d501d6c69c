"""The model summary: what llama.cpp prints about a file when it loads it, computed from the header.

Totals follow llama.cpp's ``llama_model_loader``: ``file size`` is the sum of tensor bytes (not the
size on disk), BPW is ``8 * bytes / elements``, type counts are per ggml type in type-id order,
and the file type falls back to a guess from the most common tensor type, as llama.cpp does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gguf_inspect.core.constants import (
    GUESSED_FILE_TYPE_BY_TENSOR_TYPE,
    file_type_name,
    ggml_type_name,
)
from gguf_inspect.core.model import ArrayValue, GGUFFile, TensorInfo
from gguf_inspect.llamacpp.names import layer_index


@dataclass(frozen=True)
class FileFacts:
    path: str
    gguf_version: int
    byte_order: str
    file_size: int
    n_tensors: int
    n_kv: int
    alignment: int
    data_offset: int


@dataclass(frozen=True)
class ModelSummary:
    file: FileFacts
    architecture: str | None
    name: str | None
    file_type: str
    file_type_id: int
    file_type_guessed: bool
    n_params: int
    tensor_bytes: int
    bits_per_weight: float
    n_vocab: int | None
    n_embd: int | None
    n_layer: int | None
    context_length: int | None
    n_head: int | tuple[int, ...] | None
    n_head_kv: int | tuple[int, ...] | None
    type_counts: tuple[tuple[str, int], ...]  # (ggml type name, tensors), in type-id order


def file_facts(gguf: GGUFFile) -> FileFacts:
    return FileFacts(path=gguf.path, gguf_version=gguf.version, byte_order=gguf.byte_order,
                     file_size=gguf.file_size, n_tensors=gguf.n_tensors, n_kv=gguf.n_kv,
                     alignment=gguf.alignment, data_offset=gguf.data_offset)


def type_counts(tensors: tuple[TensorInfo, ...]) -> tuple[tuple[str, int], ...]:
    """Tensors per ggml type, in type-id order, as llama.cpp's ``- type q4_K: N tensors`` lines."""
    counts: dict[int, int] = {}
    for tensor in tensors:
        counts[tensor.type_id] = counts.get(tensor.type_id, 0) + 1
    return tuple((ggml_type_name(type_id), counts[type_id]) for type_id in sorted(counts))


def _layer_sort_key(name: str) -> tuple[int, str]:
    """llama.cpp's weight_name_comparer: block number first (-1 when none), then the name."""
    layer = layer_index(name, prefixed=False)
    return (-1 if layer is None else layer, name)


def guess_file_type(tensors: tuple[TensorInfo, ...]) -> int:
    """llama.cpp's guess: the type that first reaches the highest count, in its weight order."""
    counts: dict[int, int] = {}
    best_count, best_type = 0, 0
    for tensor in sorted(tensors, key=lambda t: _layer_sort_key(t.name)):
        counts[tensor.type_id] = counts.get(tensor.type_id, 0) + 1
        if counts[tensor.type_id] > best_count:
            best_count, best_type = counts[tensor.type_id], tensor.type_id
    return GUESSED_FILE_TYPE_BY_TENSOR_TYPE.get(best_type, 0)


def resolve_file_type(gguf: GGUFFile) -> tuple[int, bool]:
    """(llama_ftype, guessed): ``general.file_type`` when present, else llama.cpp's guess (which,
    with no tensors at all, stays at its starting GGML_TYPE_F32: "(guessed) all F32")."""
    declared = gguf.value("general.file_type")
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared, False
    return guess_file_type(gguf.tensors), True


def _per_layer_or_scalar(value: Any) -> int | tuple[int, ...] | None:
    if isinstance(value, ArrayValue):
        return tuple(value.items) if value.items is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def vocab_size(gguf: GGUFFile) -> int | None:
    """n_vocab as llama.cpp sees it: the tokenizer's token count, else the arch key, else the matrix."""
    tokens = gguf.value("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayValue):
        return tokens.count
    declared = _int_or_none(gguf.arch_value("vocab_size"))
    if declared is not None:
        return declared
    embedding = gguf.tensor("token_embd.weight")
    return embedding.ne[1] if embedding is not None and len(embedding.ne) > 1 else None


def summarize(gguf: GGUFFile) -> ModelSummary:
    n_params = sum(tensor.n_elements for tensor in gguf.tensors)
    tensor_bytes = sum(tensor.n_bytes for tensor in gguf.tensors)
    file_type_id, guessed = resolve_file_type(gguf)
    name = gguf.value("general.name")
    return ModelSummary(
        file=file_facts(gguf),
        architecture=gguf.architecture,
        name=name if isinstance(name, str) else None,
        file_type=file_type_name(file_type_id, guessed),
        file_type_id=file_type_id,
        file_type_guessed=guessed,
        n_params=n_params,
        tensor_bytes=tensor_bytes,
        bits_per_weight=8.0 * tensor_bytes / n_params if n_params else 0.0,
        n_vocab=vocab_size(gguf),
        n_embd=_int_or_none(gguf.arch_value("embedding_length")),
        n_layer=_int_or_none(gguf.arch_value("block_count")),
        context_length=_int_or_none(gguf.arch_value("context_length")),
        n_head=_per_layer_or_scalar(gguf.arch_value("attention.head_count")),
        n_head_kv=_per_layer_or_scalar(gguf.arch_value("attention.head_count_kv")),
        type_counts=type_counts(gguf.tensors),
    )
