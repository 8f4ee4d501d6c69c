"""Fixed tables of the GGUF format and of llama.cpp: type ids, block sizes, names, exit codes.

Why hand-written and not imported from gguf-py: ``import gguf`` pulls in numpy and costs about
300 ms, more than the whole header scan; the header-only path must stay light. The tests check
every entry here against gguf-py's own tables (``gguf.GGML_QUANT_SIZES``, ``gguf.LlamaFileType``,
``gguf.GGUFValueType``) so the two cannot drift apart; entries gguf-py does not know yet
(e.g. Q2_0) come from llama.cpp's ``ggml.c`` and ``ggml-common.h``.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 1
GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS


class ExitCode:
    """Process exit codes, one per outcome family (documented in the README)."""

    OK = 0
    DIFFERS = 1  # does not fit / differs / mismatch against the runtime
    USAGE = 2
    INVALID = 3  # invalid or unsupported GGUF
    IO = 4  # missing file, permission, network
    RUNTIME = 5  # llama-cpp-python missing or llama.cpp refused the model


@dataclass(frozen=True)
class GGMLType:
    """One ggml tensor type: id, name as llama.cpp prints it, elements per block, bytes per block."""

    type_id: int
    name: str
    block_size: int
    type_size: int

    @property
    def is_quantized(self) -> bool:
        return self.type_id not in PLAIN_TYPE_IDS

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.type_size / self.block_size


# Float and integer types: one element per block, stored as is.
FLOAT_TYPE_IDS = frozenset({0, 1, 28, 30})  # f32, f16, f64, bf16
PLAIN_TYPE_IDS = FLOAT_TYPE_IDS | {24, 25, 26, 27}  # plus i8, i16, i32, i64

# (id, ggml name, block size, block bytes), from ggml.c's type_traits.
_GGML_TYPE_ROWS = (
    (0, "f32", 1, 4), (1, "f16", 1, 2), (2, "q4_0", 32, 18), (3, "q4_1", 32, 20),
    (6, "q5_0", 32, 22), (7, "q5_1", 32, 24), (8, "q8_0", 32, 34), (9, "q8_1", 32, 40),
    (10, "q2_K", 256, 84), (11, "q3_K", 256, 110), (12, "q4_K", 256, 144), (13, "q5_K", 256, 176),
    (14, "q6_K", 256, 210), (15, "q8_K", 256, 292), (16, "iq2_xxs", 256, 66),
    (17, "iq2_xs", 256, 74), (18, "iq3_xxs", 256, 98), (19, "iq1_s", 256, 50),
    (20, "iq4_nl", 32, 18), (21, "iq3_s", 256, 110), (22, "iq2_s", 256, 82),
    (23, "iq4_xs", 256, 136), (24, "i8", 1, 1), (25, "i16", 1, 2), (26, "i32", 1, 4),
    (27, "i64", 1, 8), (28, "f64", 1, 8), (29, "iq1_m", 256, 56), (30, "bf16", 1, 2),
    (34, "tq1_0", 256, 54), (35, "tq2_0", 256, 66), (39, "mxfp4", 32, 17), (40, "nvfp4", 64, 36),
    (41, "q1_0", 128, 18), (42, "q2_0", 64, 18),
)

GGML_TYPES: dict[int, GGMLType] = {row[0]: GGMLType(*row) for row in _GGML_TYPE_ROWS}
GGML_TYPE_BY_NAME: dict[str, GGMLType] = {t.name.lower(): t for t in GGML_TYPES.values()}



def ggml_type_name(type_id: int) -> str:
    """llama.cpp's name for a type id, or ``UNKNOWN(id)`` for ids this version does not know."""
    known = GGML_TYPES.get(type_id)
    return known.name if known else f"UNKNOWN({type_id})"


def ggml_type_from_name(name: str) -> GGMLType:
    """Look a type up by its ggml name, case-insensitively (``q8_0``, ``Q4_K``, ``f16``)."""
    try:
        return GGML_TYPE_BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown ggml type {name!r}") from None


def row_bytes(type_id: int, n_elements: int) -> int:
    """Bytes of ``n_elements`` consecutive values of a type (ggml_row_size); must be whole blocks."""
    ggml_type = GGML_TYPES[type_id]
    return n_elements // ggml_type.block_size * ggml_type.type_size


# GGUF metadata value types: id -> (name, struct format or None for string/array).
VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("uint8", "B"), 1: ("int8", "b"), 2: ("uint16", "H"), 3: ("int16", "h"),
    4: ("uint32", "I"), 5: ("int32", "i"), 6: ("float32", "f"), 7: ("bool", "?"),
    8: ("string", None), 9: ("array", None), 10: ("uint64", "Q"), 11: ("int64", "q"),
    12: ("float64", "d"),
}
VALUE_TYPE_STRING = 8
VALUE_TYPE_ARRAY = 9

# llama_ftype -> llama.cpp's printed name (llama_ftype_name in llama-model-loader.cpp).
FILE_TYPE_NAMES: dict[int, str] = {
    0: "all F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K - Medium", 11: "Q3_K - Small", 12: "Q3_K - Medium", 13: "Q3_K - Large",
    14: "Q4_K - Small", 15: "Q4_K - Medium", 16: "Q5_K - Small", 17: "Q5_K - Medium",
    18: "Q6_K", 19: "IQ2_XXS - 2.0625 bpw", 20: "IQ2_XS - 2.3125 bpw", 21: "Q2_K - Small",
    22: "IQ3_XS - 3.3 bpw", 23: "IQ3_XXS - 3.0625 bpw", 24: "IQ1_S - 1.5625 bpw",
    25: "IQ4_NL - 4.5 bpw", 26: "IQ3_S - 3.4375 bpw", 27: "IQ3_S mix - 3.66 bpw",
    28: "IQ2_S - 2.5 bpw", 29: "IQ2_M - 2.7 bpw", 30: "IQ4_XS - 4.25 bpw",
    31: "IQ1_M - 1.75 bpw", 32: "BF16", 36: "TQ1_0 - 1.69 bpw ternary",
    37: "TQ2_0 - 2.06 bpw ternary", 38: "MXFP4 MoE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
}

# The file type llama.cpp guesses from the most common tensor type when general.file_type is
# missing (llama_model_loader's constructor, the switch on type_max).
GUESSED_FILE_TYPE_BY_TENSOR_TYPE: dict[int, int] = {
    0: 0, 1: 1, 30: 32, 2: 2, 3: 3, 6: 8, 7: 9, 8: 7, 10: 10, 11: 12, 12: 15, 13: 17, 14: 18,
    34: 36, 35: 37, 16: 19, 17: 20, 22: 28, 18: 23, 19: 24, 29: 31, 20: 25, 23: 30, 21: 26,
    40: 39, 41: 40, 42: 41,
}

# The base tensor type of each file type (llama_ftype_get_default_type in llama-quant.cpp).
FILE_TYPE_DEFAULT_TENSOR_TYPE: dict[int, int] = {
    2: 2, 3: 3, 8: 6, 9: 7, 7: 8, 1: 1, 32: 30, 0: 0, 40: 41, 41: 42, 38: 39,
    21: 10, 10: 10, 22: 21, 11: 11, 12: 11, 13: 11, 14: 12, 15: 12, 16: 13, 17: 13, 18: 14,
    36: 34, 37: 35, 19: 16, 20: 17, 28: 17, 29: 22, 23: 18, 24: 19, 31: 29, 25: 20, 30: 23,
    26: 21, 27: 21,
}


def file_type_name(file_type: int, guessed: bool = False) -> str:
    """llama.cpp's words for a file type, with its ``(guessed) `` prefix when it was inferred."""
    name = FILE_TYPE_NAMES.get(file_type, "unknown, may not work")
    return f"(guessed) {name}" if guessed else name


# Tensor names with a special role for llama.cpp.
TOKEN_EMBD = "token_embd.weight"
OUTPUT = "output.weight"
PER_LAYER_TOKEN_EMBD = "per_layer_token_embd.weight"
