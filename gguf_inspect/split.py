"""Split models: the shards ``NAME-0000N-of-0000M.gguf`` (llama.cpp's gguf-split naming) as one.

Given any shard, local or remote, the siblings are found by name, each shard's header is read and
checked the way llama.cpp's model loader checks it (``split.count``, ``split.no`` of every shard,
``split.tensors.count`` against the tensors really found, no tensor twice), and one merged model
is presented: the first shard's metadata (the only metadata llama.cpp reads), every shard's
tensors tagged with their shard, and totals over all shards. The shards' bytes are laid end to
end, so a merged tensor's ``offset`` reads its data through this source like any other.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, replace
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from gguf_inspect.errors import FormatError, GGUFError, SourceError
from gguf_inspect.model import GGUFFile, TensorInfo
from gguf_inspect.source import ByteSource, is_remote

SPLIT_COUNT = "split.count"
SPLIT_NO = "split.no"
SPLIT_TENSORS_COUNT = "split.tensors.count"
# llama_split_path's "%s-%05d-of-%05d.gguf" (numbers wider than 5 digits past 99999 shards).
_SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5,})-of-(?P<count>\d{5,})\.gguf$")


class SplitError(FormatError):
    """A split model's shards are missing or disagree with each other (exit code 3)."""


@dataclass(frozen=True)
class ShardName:
    """A location split into the parts of llama.cpp's shard naming."""

    location: str
    number: int  # 1-based, as in the name
    count: int

    def sibling(self, number: int) -> str:
        """The location of shard ``number`` (1-based) of the same model."""
        return _rename(self.location, lambda match: (
            f"{match.group('prefix')}-{number:05d}-of-{self.count:05d}.gguf"))


def _path_part(location: str) -> str:
    return urlsplit(location).path if is_remote(location) else location


def _rename(location: str, new_name: Callable[[re.Match[str]], str]) -> str:
    if not is_remote(location):
        return _SHARD_NAME.sub(new_name, location)
    parts = urlsplit(location)
    return urlunsplit(parts._replace(path=_SHARD_NAME.sub(new_name, parts.path)))


def parse_shard_name(location: str | os.PathLike[str]) -> ShardName | None:
    """The shard number and count in a location's file name, or None when it is not a shard."""
    if not isinstance(location, str):
        location = os.fspath(location)
    match = _SHARD_NAME.match(_path_part(location))
    if match is None:
        return None
    number, count = int(match.group("number")), int(match.group("count"))
    if not 1 <= number <= count:
        return None
    return ShardName(location, number, count)


def is_shard_name(location: str | os.PathLike[str]) -> bool:
    return parse_shard_name(location) is not None


def shard_group(location: str) -> str:
    """One key for every shard of one model (the name with the shard number taken out)."""
    if parse_shard_name(location) is None:
        return location
    return _rename(location, lambda match: (
        f"{match.group('prefix')}-*-of-{match.group('count')}.gguf"))


def _int_value(header: GGUFFile, key: str) -> int | None:
    value = header.value(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SplitSource:
    """Every shard of a split model as one ``ByteSource`` whose ``read_model`` merges them.

    A file named like a shard whose header declares no split (or ``split.count`` 1) is just that
    one file. ``open_file`` opens one file, local or remote.
    """

    def __init__(self, location: str, open_file: Callable[[str], ByteSource]) -> None:
        self.name = location
        self._open_file = open_file
        self._sources: list[ByteSource] = []
        self._headers: list[GGUFFile] = []
        self._problems: list[GGUFError] = []
        shard = parse_shard_name(location)
        if shard is None:
            raise SplitError("not a shard name (NAME-0000N-of-0000M.gguf)", path=location)
        try:
            self._open_all(shard)
        except BaseException:
            self.close()
            raise
        self._starts = [0]
        for source in self._sources[:-1]:
            self._starts.append(self._starts[-1] + source.size)
        self.size = self._starts[-1] + self._sources[-1].size

    @property
    def n_shards(self) -> int:
        return len(self._sources)

    # ---- opening and checking -----------------------------------------------------------------

    def _open_all(self, shard: ShardName) -> None:
        given = self._open_file(shard.location)
        self._sources.append(given)
        given_header = self._read_header(given)
        self._headers = [given_header]
        count = _int_value(given_header, SPLIT_COUNT)
        if count is None or count <= 1:
            return  # one whole file that only looks like a shard
        if count != shard.count:
            raise SplitError(f"the name says {shard.count} shards but {SPLIT_COUNT} is {count}",
                             path=shard.location, field=SPLIT_COUNT)
        self._check_number(given_header, shard.number - 1, count)
        sources: list[ByteSource] = []
        headers: list[GGUFFile] = []
        for number in range(1, count + 1):
            if number == shard.number:
                source, header = given, given_header
            else:
                source = self._open_shard(shard.sibling(number), number, count)
                self._sources.append(source)  # closed by __init__ if a later shard fails
                header = self._read_header(source)
                self._check_number(header, number - 1, count)
            sources.append(source)
            headers.append(header)
        self._sources, self._headers = sources, headers

    def _open_shard(self, location: str, number: int, count: int) -> ByteSource:
        missing = f"missing shard {number} of {count}"
        if not is_remote(location) and not os.path.exists(location):
            raise SplitError(missing, path=location)
        try:
            return self._open_file(location)
        except SourceError as error:
            from gguf_inspect.remote import RemoteFileMissingError

            if isinstance(error, RemoteFileMissingError):
                raise SplitError(missing, path=location) from error
            raise

    def _read_header(self, source: ByteSource) -> GGUFFile:
        """A shard's header; recoverable problems are kept for ``read_model`` to hand on."""
        from gguf_inspect.reader import read_gguf_source

        return read_gguf_source(source, self._problems)

    @staticmethod
    def _check_number(header: GGUFFile, index: int, count: int) -> None:
        """llama.cpp: every shard carries ``split.no`` equal to its place (0-based)."""
        number = _int_value(header, SPLIT_NO)
        if number is None:
            raise SplitError(f"shard {index + 1} of {count} has no {SPLIT_NO}", path=header.path,
                             field=SPLIT_NO)
        if number != index:
            raise SplitError(f"{SPLIT_NO} is {number} but the name makes it shard {index} "
                             f"(0-based) of {count}", path=header.path, field=SPLIT_NO)
        declared = _int_value(header, SPLIT_COUNT)
        if declared is not None and declared != count:
            raise SplitError(f"{SPLIT_COUNT} is {declared} here but {count} in the other shards",
                             path=header.path, field=SPLIT_COUNT)

    # ---- the merged model ---------------------------------------------------------------------

    def read_model(self, problems: list[GGUFError] | None = None) -> GGUFFile:
        """One model: the first shard's metadata and every shard's tensors, offsets end to end.

        As ``reader.read_gguf_source``: with ``problems``, recoverable problems are appended
        there; without it, the first one raises.
        """
        if problems is not None:
            problems.extend(self._problems)
        elif self._problems:
            raise self._problems[0]
        first = self._headers[0]
        if len(self._headers) == 1:
            return replace(first, path=self.name)
        tensors: list[TensorInfo] = []
        index: dict[str, TensorInfo] = {}
        for number, (header, start) in enumerate(zip(self._headers, self._starts)):
            for tensor in header.tensors:
                if tensor.name in index:
                    raise SplitError(f"tensor {tensor.name!r} is in shard "
                                     f"{index[tensor.name].shard + 1} and in shard {number + 1}",
                                     path=header.path, offset=tensor.info_offset,
                                     field=tensor.name)
                merged = replace(tensor, offset=tensor.offset + start,
                                 info_offset=tensor.info_offset + start, shard=number)
                tensors.append(merged)
                index[tensor.name] = merged
        expected = _int_value(first, SPLIT_TENSORS_COUNT)
        if expected is None:
            raise SplitError(f"the first shard has no {SPLIT_TENSORS_COUNT}", path=first.path,
                             field=SPLIT_TENSORS_COUNT)
        if expected != len(tensors):
            raise SplitError(f"{SPLIT_TENSORS_COUNT} is {expected} but the {self.n_shards} "
                             f"shards hold {len(tensors)} tensors", path=first.path,
                             field=SPLIT_TENSORS_COUNT)
        return replace(first, path=self.name, file_size=self.size, tensors=tuple(tensors),
                       tensor_index=index)

    # ---- ByteSource ---------------------------------------------------------------------------

    def read_at(self, offset: int, length: int) -> bytes:
        """Bytes of the shards laid end to end; a read across a shard boundary spans both."""
        pieces = []
        while length > 0 and offset < self.size:
            number = bisect.bisect_right(self._starts, offset) - 1
            source, start = self._sources[number], self._starts[number]
            piece = source.read_at(offset - start, min(length, source.size - (offset - start)))
            if not piece:
                break
            pieces.append(piece)
            offset += len(piece)
            length -= len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        for source in self._sources:
            source.close()

    def __enter__(self) -> "SplitSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
