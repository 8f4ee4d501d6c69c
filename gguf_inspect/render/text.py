"""Text helpers shared by the renderers: safe escaping of untrusted strings and number formats."""

from __future__ import annotations

import re
from typing import Sequence

# C0 controls, DEL, C1 controls, and the Unicode bidi controls that can reorder what a
# terminal shows (Trojan Source): all shown as visible escapes. Metadata is untrusted input.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\x1b"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# What json.dumps(ensure_ascii=False) leaves raw but a terminal or a page showing the JSON would
# act on: DEL, C1 controls (U+009B is a CSI), the bidi controls, and U+2028/U+2029 (line breaks
# to JavaScript). C0 controls json.dumps escapes itself.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(document: object) -> str:
    """A report as indented JSON, readable non-ASCII kept, unsafe characters as ``\\uXXXX``
    (outside strings json.dumps writes ASCII only, so the substitution touches strings alone)."""
    import json

    text = json.dumps(document, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group(0)):04x}", text) + "\n"


# Characters of one value shown in a table cell: a 1 MB string in a header must not become a
# 1 MB cell (and, padded, a 1 MB column in every row); --full shows values whole.
VALUE_LIMIT = 160


def value_text(value: object, limit: int | None = VALUE_LIMIT, single: bool = False) -> str:
    """A metadata value as shown: strings quoted, anything longer than ``limit`` characters cut,
    with its whole length said (``None``: never cut); a float32 (``single``) as its shortest
    decimal (``float32_text``)."""
    if isinstance(value, str):
        if limit is None or len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if single and isinstance(value, float):
        return float32_text(value)
    return cut_text(str(value), limit)


def float32_text(value: float) -> str:
    """The shortest decimal that reads back as the same float32: ``1e-06``, not the float64
    expansion ``9.999999974752427e-07`` of the float32 nearest 1e-6 (what the file's author
    wrote, and what llama.cpp's own log prints with %g)."""
    import math

    packed = _float32_bytes(value)
    if not math.isfinite(value) or packed is None:  # not a float32 at all
        return repr(value)
    for digits in range(1, 10):  # 9 significant digits always round-trip a float32
        text = f"{value:.{digits}g}"
        if _float32_bytes(float(text)) == packed:
            return repr(float(text))  # Python's spelling: 10000.0, 1e-06, 0.1
    return repr(value)


def _float32_bytes(value: float) -> bytes | None:
    """``value`` packed as a float32, or None past the float32 range: rounding the largest
    float32 (3.4028234664e+38) to 4 digits gives 3.403e+38, which struct refuses to pack."""
    import struct

    try:
        return struct.pack("<f", value)
    except OverflowError:
        return None


def cut_text(text: str, limit: int | None = VALUE_LIMIT) -> str:
    """``text`` itself, or its first ``limit`` characters and its whole length."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def items_text(items: Sequence[object], total: int, limit: int | None = VALUE_LIMIT,
               single: bool = False) -> str:
    """Array items joined by commas, stopping once about ``limit`` characters are shown; the
    items not shown (of ``total`` in the array) are counted. ``single``: float32 items."""
    parts: list[str] = []
    used = 0
    for item in items:
        if limit is not None and used > limit:
            break
        parts.append(value_text(item, limit, single))
        used += len(parts[-1]) + 2
    more = total - len(parts)
    return ", ".join(parts) + (f", ... ({more:,} more)" if more > 0 else "")


def escape_terminal(text: str) -> str:
    """Make a string from a file safe to print: control and bidi characters become escapes."""
    return _UNSAFE.sub(_escape_char, text)


def escape_markdown(text: str) -> str:
    """Terminal-safe and markdown-inert: pipes, backticks and other markup are backslashed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escape_terminal(text))


def format_mib(n_bytes: int | float) -> str:
    """llama.cpp's own style: MiB with two decimals below 1 GiB, GiB above."""
    if n_bytes < 1 << 30:
        return f"{n_bytes / (1 << 20):.2f} MiB"
    return f"{n_bytes / (1 << 30):.2f} GiB"


def format_bytes(n_bytes: int) -> str:
    """Exact bytes with the human size beside them: ``12,582,912 B (12.00 MiB)``."""
    return f"{n_bytes:,} B ({format_mib(n_bytes)})"


def format_params(n_params: int) -> str:
    """llama.cpp's ``model params`` style: 1.36 M, 8.03 B."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if n_params >= scale:
            return f"{n_params / scale:.2f} {unit}"
    return f"{n_params / 1e3:.2f} K"


def format_shape(ne: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(dim) for dim in ne) + "]"


def format_percent(fraction: float) -> str:
    return f"{fraction:.2%}"
