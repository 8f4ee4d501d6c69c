"""Split models: the shards ``NAME-0000N-of-0000M.gguf`` (llama.cpp's gguf-split naming) as one.

Given any shard, local or remote, the siblings are found by name, each shard's header is read and
checked the way llama.cpp's model loader checks it (``split.count``, ``split.no`` of every shard,
``split.tensors.count`` against the tensors really found, no tensor twice), and one merged model
is presented: the first shard's metadata (the only metadata llama.cpp reads), every shard's
tensors tagged with their shard, and totals over all shards. The shards' bytes are laid end to
end, so a merged tensor's ``offset`` reads its data through this source like any other; each
shard's own header (offsets inside that file) stays with the model for reports and checks that
must name the file and the byte in it.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from gguf_inspect.core.errors import FormatError, GGUFError, SourceError
from gguf_inspect.core.model import GGUFFile, ShardFile, TensorInfo
from gguf_inspect.gguf.cursor import MAX_PROBLEMS
from gguf_inspect.gguf.source import ByteSource, is_remote, redact_url

SPLIT_COUNT = "split.count"
SPLIT_NO = "split.no"
SPLIT_TENSORS_COUNT = "split.tensors.count"
# llama_split_path's "%s-%05d-of-%05d.gguf" (numbers wider than 5 digits past 99999 shards).
_SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5,})-of-(?P<count>\d{5,})\.gguf$")


class SplitError(FormatError):
    """A split model's shards are missing or disagree with each other (exit code 3)."""


def _missing(shard: "ShardName", first: int, last: int, count: int) -> "SplitError":
    """``missing shard N of M``, or ``missing shards N to K of M`` for a run of them."""
    if first == last:
        return SplitError(f"missing shard {first} of {count}",
                          path=redact_url(shard.sibling(first)))
    return SplitError(f"missing shards {first} to {last} of {count}",
                      path=redact_url(shard.sibling(first)))


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
    if not is_remote(location):
        return location
    try:
        return urlsplit(location).path
    except ValueError:  # a broken URL ("Invalid IPv6 URL"): not a shard; opening it says why
        return ""


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
    one file. ``open_file`` opens one file, local or remote. A shard that is missing or whose
    header cannot be read does not stop the others from being read: every shard's problems are
    kept, and ``read_model`` hands them on (``validate`` lists them all, each with its file).
    """

    def __init__(self, location: str, open_file: Callable[[str], ByteSource]) -> None:
        self.name = redact_url(location)
        self._open_file = open_file
        self._sources: list[ByteSource] = []
        self._headers: list[GGUFFile] = []
        # (0-based shard, problem, fatal): fatal ones leave that shard's header unread.
        self._problems: list[tuple[int, GGUFError, bool]] = []
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

    @property
    def shard_names(self) -> tuple[str, ...]:
        """Each shard's own location, in shard order (to name the file a problem is in)."""
        return tuple(source.name for source in self._sources)

    # ---- opening and checking -----------------------------------------------------------------

    def _open_all(self, shard: ShardName) -> None:
        given = self._open_file(shard.location)
        self._sources.append(given)
        given_header = self._read_header(given, shard.number - 1)
        if given_header is None:
            return
        self._headers = [given_header]
        count = _int_value(given_header, SPLIT_COUNT)
        if count is None or count <= 1:
            return  # one whole file that only looks like a shard
        if count != shard.count:
            self._fail(shard.number - 1, SplitError(
                f"the name says {shard.count} shards but {SPLIT_COUNT} is {count}",
                path=redact_url(shard.location), field=SPLIT_COUNT))
            return
        if not self._check_number(given_header, shard.number - 1, count):
            return
        sources: list[ByteSource] = []
        headers: list[GGUFFile] = []
        for number in self._numbers_to_open(shard, count):
            if len(self._problems) >= MAX_PROBLEMS:  # validate's cap holds over all shards
                self._fail(count, SplitError(
                    f"{MAX_PROBLEMS} problems found; not looking further", path=self.name))
                break
            if isinstance(number, tuple):  # a run of shards known to be absent: one problem
                self._fail(number[0] - 1, _missing(shard, number[0], number[1], count))
                continue
            if number == shard.number:
                sources.append(given)
                headers.append(given_header)
                continue
            try:
                source = self._open_shard(shard.sibling(number), number, count)
            except SplitError as missing:  # told after the problems of the shards before it
                self._fail(number - 1, missing)
                if is_remote(shard.location):
                    break  # no listing to look at: one request per absent shard is not spent
                continue
            self._sources.append(source)  # closed by __init__ if a later shard fails
            sources.append(source)
            header = self._read_header(source, number - 1)
            if header is not None and self._check_number(header, number - 1, count):
                headers.append(header)
        self._sources, self._headers = sources, headers

    def _numbers_to_open(self, shard: ShardName, count: int
                         ) -> Sequence[int | tuple[int, int]]:
        """Shard numbers to open, in order, with each run of absent local shards as one
        ``(first, last)``. The folder is listed once, so a name declaring a million shards costs
        what the folder holds, not a million look-ups (or a million problems). A remote model
        has no listing: its shards are asked for in order, and the first absent one ends it."""
        if is_remote(shard.location):
            return range(1, count + 1)  # lazy: the loop stops at the first absent shard
        folder = os.path.dirname(shard.location) or "."
        present = {shard.number}
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    found = parse_shard_name(entry.name)
                    if (found is not None and found.count == count and
                            os.path.basename(shard.sibling(found.number)) == entry.name):
                        present.add(found.number)
        except OSError:
            pass  # the given shard alone; the others are then told missing
        numbers: list[int | tuple[int, int]] = []
        previous = 0
        for number in sorted(present):
            if number > previous + 1:
                numbers.append((previous + 1, number - 1))
            numbers.append(number)
            previous = number
        if previous < count:
            numbers.append((previous + 1, count))
        return numbers

    def _fail(self, index: int, error: GGUFError) -> None:
        """Keep a problem that leaves shard ``index`` (0-based) unusable; read_model raises it."""
        self._problems.append((index, error, True))

    def _open_shard(self, location: str, number: int, count: int) -> ByteSource:
        missing = f"missing shard {number} of {count}"
        if not is_remote(location) and not os.path.exists(location):
            raise SplitError(missing, path=location)
        try:
            return self._open_file(location)
        except SourceError as error:
            from gguf_inspect.gguf.remote import RemoteFileMissingError

            if isinstance(error, RemoteFileMissingError):
                raise SplitError(missing, path=redact_url(location)) from error
            raise

    def _read_header(self, source: ByteSource, index: int) -> GGUFFile | None:
        """Shard ``index``'s header (0-based), its problems kept for ``read_model`` to hand on;
        None when a problem stopped the header from being read."""
        from gguf_inspect.gguf.reader import read_gguf_source

        collected: list[GGUFError] = []
        try:
            header: GGUFFile | None = read_gguf_source(source, collected)
        except FormatError as fatal:
            header = None
            collected.append(fatal)
        self._problems += [(index, problem, header is None and problem is collected[-1])
                           for problem in collected]
        return header

    def _check_number(self, header: GGUFFile, index: int, count: int) -> bool:
        """llama.cpp: every shard carries ``split.no`` equal to its place (0-based)."""
        number = _int_value(header, SPLIT_NO)
        problem = None
        if number is None:
            problem = SplitError(f"shard {index + 1} of {count} has no {SPLIT_NO}",
                                 path=header.path, field=SPLIT_NO)
        elif number != index:
            problem = SplitError(f"{SPLIT_NO} is {number} but the name makes it shard {index} "
                                 f"(0-based) of {count}", path=header.path, field=SPLIT_NO)
        else:
            declared = _int_value(header, SPLIT_COUNT)
            if declared is not None and declared != count:
                problem = SplitError(f"{SPLIT_COUNT} is {declared} here but {count} in the "
                                     "other shards", path=header.path, field=SPLIT_COUNT)
        if problem is not None:
            self._fail(index, problem)
        return problem is None

    # ---- the merged model ---------------------------------------------------------------------

    def read_model(self, problems: list[GGUFError] | None = None) -> GGUFFile:
        """One model: the first shard's metadata and every shard's tensors, offsets end to end.

        As ``reader.read_gguf_source``: with ``problems``, every shard's problems (in shard
        order, each naming its file) are appended there, and when one of them left a shard
        unusable that one is raised as well (it is in the list already); without it, the first
        one raises.
        """
        ordered = sorted(self._problems, key=lambda item: item[0])  # stable within a shard
        if problems is None and ordered:
            raise ordered[0][1]
        if problems is not None:
            problems.extend(problem for _, problem, _ in ordered)
        fatal = next((problem for _, problem, is_fatal in ordered if is_fatal), None)
        if fatal is not None:
            raise fatal  # the first in shard order
        first = self._headers[0]
        if len(self._headers) == 1:
            return replace(first, path=self.name)
        tensors: list[TensorInfo] = []
        index: dict[str, TensorInfo] = {}
        shards: list[ShardFile] = []
        for number, (header, start) in enumerate(zip(self._headers, self._starts)):
            shards.append(ShardFile(header=header, start=start))
            for tensor in header.tensors:
                if tensor.name in index:
                    raise SplitError(f"tensor {tensor.name!r} is in shard "
                                     f"{index[tensor.name].shard + 1} and in shard {number + 1}",
                                     path=header.path, offset=tensor.info_offset,
                                     field=tensor.name)
                merged = replace(tensor, offset=tensor.offset + start,
                                 info_offset=tensor.info_offset + start, shard=number,
                                 shard_start=start)
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
                       tensor_index=index, shards=tuple(shards))

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
