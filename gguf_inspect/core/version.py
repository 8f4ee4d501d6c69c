"""gguf-inspect's version: one place, read by ``--version`` and by the packaging metadata
(pyproject.toml's dynamic version)."""

__version__ = "0.1.0"
