"""The exception hierarchy: every failure the library reports is one of these.

The CLI maps each family to one exit code; messages name the file, the byte offset and the field.
"""

from __future__ import annotations


class GGUFError(Exception):
    """Base class of every error gguf-inspect raises on purpose."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.offset = offset
        self.field = field
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line: ``PATH: message at byte OFFSET (field)``."""
        text = self.message
        if self.offset is not None:
            text += f" at byte {self.offset}"
        if self.field:
            text += f" ({self.field})"
        if self.path:
            text = f"{self.path}: {text}"
        return text

    def with_path(self, path: str) -> "GGUFError":
        """Attach the file name once the caller knows it (the reader works on byte sources)."""
        if self.path is None:
            self.path = path
            self.args = (self.describe(),)
        return self


class FormatError(GGUFError):
    """The bytes are not a valid (or not a supported) GGUF file."""


class TruncatedError(FormatError):
    """The file ends before a field it declares."""


class SourceError(GGUFError):
    """The bytes could not be read at all: missing file, permission, network failure."""


class RuntimeUnavailableError(GGUFError):
    """llama-cpp-python is missing, or llama.cpp refused to load the model."""
