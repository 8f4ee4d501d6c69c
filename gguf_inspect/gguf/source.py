"""Byte sources: the protocol the reader reads through, and the local-file source.

The reader only ever calls ``read_at(offset, length)`` and looks at ``size`` and ``name``, so the
other sources (``remote.HTTPRangeSource``, ``split.SplitSource``) plug in without touching the
parser; ``open.py`` picks the source for a location.
"""

from __future__ import annotations

import os
import re
from typing import Protocol, runtime_checkable

from gguf_inspect.core.errors import SourceError


@runtime_checkable
class ByteSource(Protocol):
    """Random-access, read-only bytes with a known total size.

    Optional extra the reader looks for: ``read_ahead`` (first and largest read size, for a
    source that pays per byte). A split model's source parses and merges its shards' headers
    itself (``SplitSource.read_model``); ``open.read_header`` picks that path.
    """

    name: str
    size: int

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``; fewer only at the end of the source."""
        ...

    def close(self) -> None: ...


class LocalFileSource:
    """A local file opened read-only; reads with ``os.pread`` so no shared file position."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        try:
            # Non-blocking, so a FIFO (or a device) is refused below instead of blocking here
            # until a writer comes; for a regular file the flag changes nothing.
            flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
            self._fd = os.open(self.name, flags)
        except OSError as error:
            raise SourceError(f"cannot open: {error.strerror or error}", path=self.name) from error
        try:
            status = os.fstat(self._fd)
        except OSError as error:  # pragma: no cover - fstat on an open fd practically never fails
            os.close(self._fd)
            raise SourceError(f"cannot stat: {error.strerror}", path=self.name) from error
        if not _is_regular(status.st_mode):
            os.close(self._fd)
            raise SourceError("not a regular file", path=self.name)
        self.size = status.st_size

    def read_at(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self._fd, length, offset)
        except OSError as error:
            raise SourceError(f"read failed: {error.strerror}", path=self.name, offset=offset) from error

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "LocalFileSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def open_regular(path: str) -> tuple[int, int]:
    """(descriptor, size) of a regular file opened read-only; anything else (a FIFO, a device, a
    folder) is refused before a read could block on it or never end."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise SourceError(f"cannot open: {error.strerror or error}", path=path) from None
    status = os.fstat(fd)
    if not _is_regular(status.st_mode):
        os.close(fd)
        raise SourceError("not a regular file", path=path)
    return fd, status.st_size


# ``scheme://user:password@host``: everything between ``//`` and the last ``@`` of the authority.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def redact_url(location: str) -> str:
    """The location with any ``user:password@`` left out, fit to print. Works on text that is not
    a valid URL too (``urlsplit`` raises on a broken IPv6 host), and on every URL in a message."""
    return _CREDENTIALS.sub(r"\1", location)


REMOTE_PREFIXES = ("http://", "https://", "hf://")
DEFAULT_DEADLINE = 120.0  # seconds for everything read from one remote location (--timeout)

# Here, not in remote.py: the CLI sets it on every run, and the local-file path must not import
# the HTTP code to do so.
_deadline_seconds = DEFAULT_DEADLINE


def set_deadline(seconds: float) -> None:
    """The deadline of every remote location opened from now on without its own (the CLI's
    ``--timeout``)."""
    global _deadline_seconds
    _deadline_seconds = float(seconds)


def remote_deadline() -> float:
    return _deadline_seconds


def is_remote(location: str | os.PathLike[str]) -> bool:
    """True for an ``http(s)://`` or ``hf://`` URL (read with Range requests, not opened)."""
    return isinstance(location, str) and location.lower().startswith(REMOTE_PREFIXES)
