"""Opening a model location: pick its byte source, read its header, and hand both on as one
``Model`` that owns the source (and closes it).

A location is a local path, an ``http(s)://`` or ``hf://`` URL, or any shard of a split model
(``NAME-0000N-of-0000M.gguf``, which opens every shard as one model). This is the one place that
knows all three kinds of source, so ``reader`` and ``split`` never import each other back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from gguf_inspect.core.errors import GGUFError
from gguf_inspect.core.model import GGUFFile
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.source import ByteSource, LocalFileSource, is_remote
from gguf_inspect.gguf.split import SplitSource, is_shard_name


def open_single_source(location: str | os.PathLike[str]) -> ByteSource:
    """One file, local or remote, never expanded to its split siblings."""
    if is_remote(location):
        from gguf_inspect.gguf.remote import HTTPRangeSource  # lazy: imports requests

        return HTTPRangeSource(os.fspath(location))
    return LocalFileSource(location)


def open_source(location: str | os.PathLike[str]) -> ByteSource:
    """The byte source for a model location; any shard of a split model opens all shards."""
    if is_shard_name(location):
        return SplitSource(os.fspath(location), open_single_source)
    return open_single_source(location)


def read_header(source: ByteSource, problems: list[GGUFError] | None = None) -> GGUFFile:
    """The parsed header of an open source; a split model's shards are parsed and merged.

    ``problems`` as in ``reader.read_gguf_source``: with a list, recoverable problems are
    collected there and parsing goes on."""
    if isinstance(source, SplitSource):
        return source.read_model(problems)
    return read_gguf_source(source, problems)


@dataclass
class Model:
    """An opened model: its parsed header (``file``) and the byte source that tensor data and
    long metadata arrays are read from. Close it (or use ``with``) when done."""

    file: GGUFFile
    source: ByteSource

    @property
    def location(self) -> str:
        return self.source.name

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_model(location: str | os.PathLike[str],
               problems: list[GGUFError] | None = None) -> Model:
    """Open ``location`` and read its header; the returned ``Model`` keeps the source open."""
    source = open_source(location)
    try:
        return Model(read_header(source, problems), source)
    except BaseException:
        source.close()
        raise


def same_file(a: Model, b: Model) -> bool:
    """True when both models read the very same local file (or the same first shard), so that
    whatever is hashed on one side holds for the other: a file diffed with itself is read once.
    Remote sources count as different (nothing cheap proves two URLs serve the same bytes)."""
    if a is b:
        return True
    if is_remote(a.location) or is_remote(b.location) or a.source.size != b.source.size:
        return False
    try:
        return os.path.samefile(a.location, b.location)
    except OSError:
        return False


def read_gguf(location: str | os.PathLike[str]) -> GGUFFile:
    """Open a model location, read its header, and close it again."""
    with open_model(location) as model:
        return model.file
