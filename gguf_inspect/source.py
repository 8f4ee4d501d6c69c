"""Byte sources: where the reader gets its bytes from (a local file today; remote and split later).

The reader only ever calls ``read_at(offset, length)`` and looks at ``size`` and ``name``, so a
new kind of source (HTTP range reads, a shard set) plugs in without touching the parser.
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

from gguf_inspect.errors import SourceError


@runtime_checkable
class ByteSource(Protocol):
    """Random-access, read-only bytes with a known total size."""

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
            self._fd = os.open(self.name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
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


def open_source(location: str | os.PathLike[str]) -> ByteSource:
    """The byte source for a model location (a local path for now)."""
    return LocalFileSource(location)
