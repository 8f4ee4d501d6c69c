"""The byte cursor under the header reader: a forward-only, bounded read-ahead over a
``ByteSource``, with the length-prefixed string loops that a 262k-token vocabulary makes hot, and
the collector that recoverable format problems go to.

Kept apart from ``reader.py`` (which knows the GGUF layout) because it knows only bytes: how to
buffer, unpack and skip them without ever reading past what the source has.
"""

from __future__ import annotations

import struct
from typing import Any, Iterator

from gguf_inspect.core.errors import FormatError, GGUFError, TruncatedError
from gguf_inspect.gguf.source import ByteSource

FIRST_CHUNK = 1 << 20
MAX_CHUNK = 4 << 20
# Collecting stops here: past this many, a file is garbage and the list would only grow.
MAX_PROBLEMS = 100
# Keys and tensor names longer than this are named by position in messages (``kv[3]``): a
# corrupt length can make a "name" of megabytes, and an error must stay one readable line.
MAX_LABEL = 128


class Problems:
    """Where a recoverable format problem goes: raised at once (the default), or collected."""

    def __init__(self, collected: list[GGUFError] | None = None) -> None:
        self.collected = collected

    def report(self, error: FormatError) -> None:
        if self.collected is None:
            raise error
        self.collected.append(error)
        if len(self.collected) >= MAX_PROBLEMS:
            raise FormatError(f"{MAX_PROBLEMS} problems found; not looking further",
                              offset=error.offset, field=error.field)


def display_label(name: str, position: str) -> str:
    """How messages name a key or tensor: by its name, or by position when the name is huge."""
    return name if len(name) <= MAX_LABEL else position


class Cursor:
    """A forward-only cursor over a byte source with a growing read-ahead buffer.

    Memory stays bounded: the buffer holds at most the unread part of one chunk plus the next.
    """

    def __init__(self, source: ByteSource, byte_order: str = "<",
                 problems: Problems | None = None) -> None:
        self.source = source
        self.problems = problems or Problems()
        self.size = source.size
        self.order = byte_order
        self.buffer = b""
        self.buffer_start = 0
        self.position = 0
        # A source may ask for smaller reads (a remote one pays for every byte fetched).
        self.chunk, self.max_chunk = getattr(source, "read_ahead", (FIRST_CHUNK, MAX_CHUNK))
        self._formats: dict[str, struct.Struct] = {}

    def remaining(self) -> int:
        return self.size - self.position

    def _fill(self, needed: int, field: str) -> None:
        """Make ``needed`` bytes from ``position`` available in the buffer, or fail as truncated."""
        if self.position + needed > self.size:
            raise TruncatedError(
                f"file ends before {needed} byte(s) of {field}", offset=self.position, field=field)
        keep_from = self.position - self.buffer_start
        want = max(needed, self.chunk)
        # A source that holds only the file's first bytes (a server without Range support)
        # says where they end: read ahead no further than that.
        readable_end = getattr(self.source, "readable_end", None)
        if readable_end is not None:
            want = max(needed, min(want, readable_end - self.position))
        self.chunk = min(self.chunk * 2, self.max_chunk)
        tail = self.buffer[keep_from:]
        read_from = self.position + len(tail)
        data = self.source.read_at(read_from, want - len(tail))
        self.buffer = tail + data
        self.buffer_start = self.position
        if len(self.buffer) < needed:
            raise TruncatedError(
                f"file ends before {needed} byte(s) of {field}", offset=self.position, field=field)

    def take(self, length: int, field: str) -> bytes:
        start = self.position - self.buffer_start
        if start + length > len(self.buffer):
            self._fill(length, field)
            start = 0
        self.position += length
        return self.buffer[start:start + length]

    def unpack(self, fmt: str, field: str) -> Any:
        compiled = self._formats.get(fmt)
        if compiled is None:
            compiled = self._formats[fmt] = struct.Struct(self.order + fmt)
        start = self.position - self.buffer_start
        if start + compiled.size > len(self.buffer):
            self._fill(compiled.size, field)
            start = 0
        self.position += compiled.size
        return compiled.unpack_from(self.buffer, start)[0]

    def skip(self, length: int, field: str) -> None:
        if self.position + length > self.size:
            raise TruncatedError(
                f"{field} needs {length} byte(s) but only {self.remaining()} remain",
                offset=self.position, field=field)
        self.position += length

    def string(self, field: str, *, strict: bool = True) -> str:
        start, raw = self.raw_string(field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if strict:
                self.problems.report(FormatError(f"invalid UTF-8 in string ({error.reason})",
                                                 offset=start + 8 + error.start, field=field))
            return raw.decode("utf-8", errors="backslashreplace")

    def raw_string(self, field: str) -> tuple[int, bytes]:
        """One length-prefixed string, undecoded, with the offset of its length prefix."""
        start = self.position
        length = self.unpack("Q", field + " length")
        if length > self.remaining():
            raise TruncatedError(
                f"string length {length} exceeds the {self.remaining()} byte(s) left",
                offset=start, field=field)
        return start, self.take(length, field)

    def skip_strings(self, count: int, field: str, first: int = 0) -> None:
        """Skip ``count`` length-prefixed strings; the hot loop of a 262k-token vocabulary.
        ``first`` is the array index of the first one skipped (messages name the item).

        Only the 8-byte lengths must be buffered, not the strings: the inner loop hops from
        length to length and lets the position run past the buffer, which the next refill
        starts from. A length that runs past the end of the file is caught right after it.
        """
        unpack_length = (self._formats.get("Q") or struct.Struct(self.order + "Q")).unpack_from
        index = 0
        while index < count:
            self.ensure(8, f"{field}[{first + index}] length")
            buffer = self.buffer
            local = self.position - self.buffer_start
            limit = len(buffer) - 8
            string_start = local
            for index in range(index, count):  # noqa: B020 - resumes where the last pass stopped
                if local > limit:
                    break
                string_start = local
                local += 8 + unpack_length(buffer, local)[0]
            else:
                index = count
            self.position = self.buffer_start + local
            if self.position > self.size:
                start = self.buffer_start + string_start
                length = self.position - start - 8
                raise TruncatedError(
                    f"string length {length} exceeds the {self.size - start - 8} byte(s) left",
                    offset=start, field=f"{field}[{first + index - 1}]")

    def strings(self, count: int, field: str) -> Iterator[str]:
        """Decode ``count`` length-prefixed strings, bad UTF-8 shown as backslash escapes; the
        hot loop of decoding a 262k-token vocabulary (about twice as fast as ``string`` per item,
        see ``raw_strings``). Memory stays bounded by the read-ahead buffer."""
        for _, raw in self.raw_strings(count, field):
            yield raw.decode("utf-8", errors="backslashreplace")

    def raw_strings(self, count: int, field: str) -> Iterator[tuple[int, bytes]]:
        """``count`` length-prefixed strings undecoded, each with the absolute offset of its
        length prefix (``strings`` decodes them; ``invalid_strings`` checks every one).

        One item goes through the cursor (which refills the buffer and raises TruncatedError
        for a length past the end), then every following item that lies whole in the buffer is
        sliced directly; the first one that does not starts the next pass.
        """
        unpack_length = (self._formats.get("Q") or struct.Struct(self.order + "Q")).unpack_from
        index = 0
        while index < count:
            yield self.raw_string(f"{field}[{index}]")
            index += 1
            buffer, buffered = self.buffer, len(self.buffer)
            local = self.position - self.buffer_start
            while index < count and local + 8 <= buffered:
                end = local + 8 + unpack_length(buffer, local)[0]
                if end > buffered:
                    break
                index += 1
                yield self.buffer_start + local, buffer[local + 8:end]
                local = end
            self.position = self.buffer_start + local

    def ensure(self, needed: int, field: str) -> None:
        """Make ``needed`` bytes from the position available in the buffer (refilling once)."""
        if self.position - self.buffer_start + needed > len(self.buffer) or (
                self.position < self.buffer_start):
            self._fill(needed, field)
