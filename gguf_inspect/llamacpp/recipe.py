"""llama.cpp's quantization recipe for the token embedding: which ggml type ``llama-quantize``
gives ``token_embd.weight`` under each file type, tied (doubling as the output head) or not.

Follows ``llama_tensor_get_type`` and ``tensor_type_fallback`` in ``src/llama-quant.cpp`` of the
llama.cpp vendored in llama-cpp-python 0.3.36. Pure table work: safe on the header-only path.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.core.constants import (
    FILE_TYPE_DEFAULT_TENSOR_TYPE,
    GGML_TYPES,
    file_type_name,
    ggml_type_name,
)

# llama_ftype groups used by the recipe (values from llama.h).
_FTYPE_MXFP4_MOE = 38
_FTYPES_OUTPUT_Q5_K = frozenset({19, 20, 23, 24, 28, 29, 31})  # IQ2_XXS..IQ1_M: head -> q5_K
_FTYPES_EMBD_Q2_K = frozenset({19, 20, 24, 31})  # IQ2_XXS, IQ2_XS, IQ1_S, IQ1_M
_FTYPES_EMBD_IQ3_S = frozenset({28, 29, 23})  # IQ2_S, IQ2_M, IQ3_XXS
_FTYPES_EMBD_Q4_K = frozenset({36, 37, 41})  # TQ1_0, TQ2_0, Q2_0

# tensor_type_fallback: the type used when a row length does not divide the target's block.
_FALLBACK_NAMES = {
    "iq1_s": "iq4_nl", "iq1_m": "iq4_nl", "iq2_xxs": "iq4_nl", "iq2_xs": "iq4_nl",
    "iq2_s": "iq4_nl", "iq3_xxs": "iq4_nl", "iq3_s": "iq4_nl", "iq4_xs": "iq4_nl",
    "q2_0": "q4_0", "q2_K": "q4_0", "q3_K": "q4_0", "tq1_0": "q4_0", "tq2_0": "q4_0",
    "q4_K": "q5_0", "q5_K": "q5_1", "q6_K": "q8_0",
}
_TYPE_ID = {ggml_type.name: ggml_type.type_id for ggml_type in GGML_TYPES.values()}


@dataclass(frozen=True)
class RecipeExpectation:
    """What llama.cpp's default quantization recipe would have chosen for a tensor, and why."""

    type: str
    reason: str


class _NoFallback(Exception):
    """tensor_type_fallback throws "no tensor type fallback is defined": llama-quantize refuses."""


def _fallback(type_name: str, n_cols: int) -> tuple[str, str]:
    """tensor_type_fallback: demote a type whose block does not divide the row length."""
    block = GGML_TYPES[_TYPE_ID[type_name]].block_size
    if n_cols % block == 0:
        return type_name, ""
    if type_name not in _FALLBACK_NAMES and block > 32:  # its default branch (q1_0, nvfp4)
        raise _NoFallback(type_name)
    demoted = _FALLBACK_NAMES.get(type_name, type_name)
    if n_cols % GGML_TYPES[_TYPE_ID[demoted]].block_size:
        demoted = "f16"
    return demoted, (f"; n_embd {n_cols} is not a multiple of {type_name}'s "
                     f"{GGML_TYPES[_TYPE_ID[type_name]].block_size}-wide block, so it falls back "
                     f"to {demoted}")


def expected_embedding_type(file_type: int, tied: bool, n_cols: int,
                            architecture: str | None) -> RecipeExpectation | None:
    """Replay llama.cpp's recipe for token_embd under ``file_type``; None when it has no recipe
    (or its quantizer refuses the row length)."""
    try:
        return _replay(file_type, tied, n_cols, architecture)
    except _NoFallback:
        return None


def _replay(file_type: int, tied: bool, n_cols: int,
            architecture: str | None) -> RecipeExpectation | None:
    base_id = FILE_TYPE_DEFAULT_TENSOR_TYPE.get(file_type)
    if base_id is None:
        return None
    base = ggml_type_name(base_id)
    ftype = file_type_name(file_type)
    if not GGML_TYPES[base_id].is_quantized:
        return RecipeExpectation(base, f"a {ftype} file keeps every matrix in {base}")
    if tied:
        block = GGML_TYPES[base_id].block_size
        if file_type == _FTYPE_MXFP4_MOE:
            chosen, why = "q8_0", "MXFP4 MoE files give the output head q8_0"
        elif architecture == "falcon":
            chosen, why = "q8_0", "falcon's output head is always q8_0"
        elif n_cols % block:
            chosen, why = "q8_0", (f"n_embd {n_cols} is not a multiple of the {block}-wide "
                                   f"{base} block, so the head rule picks q8_0")
        elif file_type in _FTYPES_OUTPUT_Q5_K:
            chosen, why = "q5_K", f"{ftype} gives the output head q5_K"
        elif base != "q8_0":
            chosen, why = "q6_K", "the output head is kept at q6_K"
        else:
            chosen, why = "q8_0", "the output head keeps the base type q8_0"
        chosen, fallback_note = _fallback(chosen, n_cols)
        reason = ("with no output.weight the embedding doubles as the output head, so "
                  f"llama.cpp quantizes it like the head: {why}{fallback_note}")
        return RecipeExpectation(chosen, reason)
    if file_type == _FTYPE_MXFP4_MOE:  # only 3-D expert tensors get mxfp4
        chosen, why = "q8_0", "MXFP4 MoE files give every matrix but the experts q8_0"
    elif file_type in _FTYPES_EMBD_Q2_K:
        chosen, why = "q2_K", f"{ftype} gives the embedding q2_K"
    elif file_type in _FTYPES_EMBD_IQ3_S:
        chosen, why = "iq3_s", f"{ftype} gives the embedding iq3_s"
    elif file_type in _FTYPES_EMBD_Q4_K:
        chosen, why = "q4_K", f"{ftype} gives the embedding q4_K"
    else:
        chosen, why = base, f"an untied embedding takes the file's base type {base}"
    chosen, fallback_note = _fallback(chosen, n_cols)
    return RecipeExpectation(chosen, f"{why}{fallback_note}")
