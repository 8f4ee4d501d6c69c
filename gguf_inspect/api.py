"""The public Python API: a few documented functions over the same code the commands run.

    import gguf_inspect as gi

    with gi.open_model("model.gguf") as model:        # header read, data left on disk
        print(model.file.architecture, model.file.n_tensors)
    report = gi.embeddings("model.gguf")              # what token_embd.weight really is
    prediction = gi.predict_memory("model.gguf", n_ctx=8192, n_gpu_layers=-1,
                                   gpu_capacities=(24 << 30,))
    print(prediction.device_total("gpu0"))            # bytes llama.cpp allocates on the GPU
    changes = gi.diff("model-f16.gguf", "model-q4_k_m.gguf")

Every function takes a location (a local path, an ``http(s)://`` or ``hf://`` URL, any shard of
a split model) or an already opened ``Model``; the results are the frozen dataclasses the
renderers format (``dataclasses.asdict`` turns them into plain data). Errors are the
``core.errors`` hierarchy: ``GGUFError`` and its subclasses.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator, Union

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.gguf.open import Model, open_model, read_gguf
from gguf_inspect.llamacpp.memory import MemoryPrediction
from gguf_inspect.llamacpp.memory import predict_memory as _predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.reports.diff import DiffOptions, DiffReport, diff_models
from gguf_inspect.reports.embeddings import EmbeddingReport, analyze_embeddings

ModelLike = Union[str, "os.PathLike[str]", Model]

__all__ = ["DiffOptions", "DiffReport", "EmbeddingReport", "GGUFFile", "LlamaSettings",
           "MemoryPrediction", "Model", "diff", "embeddings", "open_model", "predict_memory",
           "read_gguf"]


@contextmanager
def _opened(model: ModelLike) -> Iterator[Model]:
    """A Model as given (left open for its owner), or one opened here and closed after."""
    if isinstance(model, Model):
        yield model
    else:
        with open_model(model) as opened:
            yield opened


def _header(model: ModelLike) -> GGUFFile:
    return model.file if isinstance(model, Model) else read_gguf(model)


def embeddings(model: ModelLike) -> EmbeddingReport:
    """The token-embedding report: shape, ggml type, bytes, bits per weight, size next to f16,
    tied head, share of the file, llama.cpp's recipe for it and where llama.cpp places it.
    Raises ``NoEmbeddingError`` (a LookupError) for a file without ``token_embd.weight``."""
    return analyze_embeddings(_header(model))


def predict_memory(model: ModelLike, settings: LlamaSettings | None = None,
                   **changes: Any) -> MemoryPrediction:
    """Every buffer llama.cpp would allocate for the model: weights per device, KV cache,
    output and compute buffers. ``settings`` (default: llama.cpp's defaults, n_ctx 4096) with
    ``changes`` laid over it, by ``LlamaSettings`` field name (``n_ctx=8192``,
    ``gpu_capacities=(24 << 30,)`` for one 24 GiB GPU, ``n_gpu_layers=20`` ...)."""
    chosen = replace(settings or LlamaSettings(), **changes)
    return _predict_memory(_header(model), chosen)


def diff(reference: ModelLike, candidate: ModelLike,
         options: DiffOptions | None = None) -> DiffReport:
    """What changed from ``reference`` to ``candidate`` (two quantizations of one model):
    metadata, tensor types and bytes by role, tensor data (SHA-256) and, with
    ``DiffOptions(values="embeddings")`` or ``"all"``, dequantized values."""
    with _opened(reference) as first, _opened(candidate) as second:
        return diff_models(first, second, options or DiffOptions())
