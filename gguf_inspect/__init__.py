"""gguf-inspect: look inside llama.cpp GGUF files before you deploy them.

The public API (``gguf_inspect.api``) is importable from here: ``open_model``, ``read_gguf``,
``embeddings``, ``predict_memory``, ``diff`` and their result types. Names are loaded on first
use (PEP 562), so ``import gguf_inspect`` alone stays as light as the header-only command.

The package is layered one way: ``core`` -> ``gguf`` (bytes) -> ``llamacpp`` (llama.cpp's rules)
-> ``reports`` -> ``render`` -> ``commands`` -> ``cli`` / ``api``.
"""

from __future__ import annotations

from typing import Any

from gguf_inspect.core.version import __version__

_API_NAMES = frozenset({"DiffOptions", "DiffReport", "EmbeddingReport", "GGUFFile",
                        "LlamaSettings", "MemoryPrediction", "Model", "diff", "embeddings",
                        "open_model", "predict_memory", "read_gguf"})

__all__ = ["__version__", *sorted(_API_NAMES)]


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from gguf_inspect import api

        return getattr(api, name)
    raise AttributeError(f"module 'gguf_inspect' has no attribute {name!r}")
