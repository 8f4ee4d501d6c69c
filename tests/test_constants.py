"""The hand-written type tables must agree with gguf-py's own tables (they exist only because
importing gguf costs ~300 ms on the header-only path)."""

from __future__ import annotations

import gguf
import pytest

from gguf_inspect.core import constants


@pytest.mark.parametrize("qtype", list(gguf.GGMLQuantizationType), ids=lambda t: t.name)
def test_every_gguf_py_type_has_the_same_block_and_size(qtype: gguf.GGMLQuantizationType) -> None:
    ours = constants.GGML_TYPES[qtype.value]
    assert (ours.block_size, ours.type_size) == gguf.GGML_QUANT_SIZES[qtype]


@pytest.mark.parametrize("qtype", list(gguf.GGMLQuantizationType), ids=lambda t: t.name)
def test_type_names_are_ggml_names(qtype: gguf.GGMLQuantizationType) -> None:
    # ggml prints lower case, except the K of the k-quants (q4_K, q8_K).
    expected = qtype.name.lower()
    if expected.endswith("_k"):
        expected = expected[:-1] + "K"
    assert constants.GGML_TYPES[qtype.value].name == expected


def test_unknown_type_ids_get_a_visible_name() -> None:
    assert constants.ggml_type_name(4) == "UNKNOWN(4)"
    assert constants.ggml_type_name(200) == "UNKNOWN(200)"


@pytest.mark.parametrize("file_type", [t for t in gguf.LlamaFileType if t.name != "GUESSED"],
                         ids=lambda t: t.name)
def test_every_gguf_py_file_type_has_a_llama_cpp_name(file_type: gguf.LlamaFileType) -> None:
    assert file_type.value in constants.FILE_TYPE_NAMES
    # llama_ftype_get_default_type (llama-quant.cpp) has no base type for NVFP4: the quantizer
    # cannot produce it, so the recipe table leaves it out on purpose.
    if file_type.name != "MOSTLY_NVFP4":
        assert file_type.value in constants.FILE_TYPE_DEFAULT_TENSOR_TYPE


def test_file_type_names_follow_llama_cpp_wording() -> None:
    # From llama_ftype_name in llama-model-loader.cpp.
    assert constants.file_type_name(15) == "Q4_K - Medium"
    assert constants.file_type_name(7, guessed=True) == "(guessed) Q8_0"
    assert constants.file_type_name(999) == "unknown, may not work"


def test_value_types_match_gguf_py() -> None:
    for value_type in gguf.GGUFValueType:
        assert constants.VALUE_TYPES[value_type.value][0] == value_type.name.lower()


def test_row_bytes_is_blocks_times_block_size() -> None:
    assert constants.row_bytes(12, 4096) == 4096 // 256 * 144  # q4_K
    assert constants.row_bytes(8, 640) == 640 // 32 * 34  # q8_0
    assert constants.row_bytes(1, 7) == 14  # f16
