"""The exception hierarchy: every failure the library reports is one of these, and the one
mapping from a failure to its exit code and its one-line message.

Messages name the file, the byte offset and the field.
"""

from __future__ import annotations

from gguf_inspect.core.constants import ExitCode


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


class UsageError(GGUFError, ValueError):
    """A question or a value the command cannot take as given (a bad --gpu size, a word the
    vocabulary lacks): the user's input, not the file, is at fault. Also a ValueError, which is
    what a bad argument is in Python."""


def exit_code_for(error: BaseException) -> int:
    """The exit code of a failure: the one place that maps errors to codes (CLI and scan rows)."""
    if isinstance(error, UsageError):
        return ExitCode.USAGE
    if isinstance(error, SourceError):
        return ExitCode.IO
    if isinstance(error, RuntimeUnavailableError):
        return ExitCode.RUNTIME
    if isinstance(error, (GGUFError, LookupError)):
        return ExitCode.INVALID
    if isinstance(error, OSError):
        return ExitCode.IO
    return ExitCode.INVALID


def error_message(error: BaseException) -> str:
    """The failure as one line (not yet escaped for a terminal): an OSError as ``PATH: reason``,
    a KeyError without the quotes ``str`` gives it."""
    if isinstance(error, KeyError):
        return str(error.args[0]) if error.args else "KeyError"
    if isinstance(error, OSError) and not isinstance(error, GGUFError):
        return f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
    return str(error)
