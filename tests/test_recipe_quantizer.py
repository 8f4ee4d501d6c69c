"""The token-embedding recipe and the file types' base types, against llama.cpp's own quantizer.

Each case writes a two-tensor llama (token_embd, and output.weight when untied) with GGUFWriter
and quantizes it with ``llama_model_quantize`` (llama-cpp-python 0.3.36): the type llama.cpp
writes is the oracle. Only the embedding and the head are quantizable, and llama.cpp never
asks an importance matrix for those two (``tensor_requires_imatrix``, src/llama-quant.cpp), so
every file type quantizes without one.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import gguf
import numpy as np
import pytest

from gguf_inspect.core.constants import FILE_TYPE_DEFAULT_TENSOR_TYPE, ggml_type_name
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.recipe import expected_embedding_type

llama_cpp = pytest.importorskip("llama_cpp")

N_VOCAB = 384  # fixtures/build.py's tokenizer
NOT_QUANTIZABLE = {0, 1, 32}  # ALL_F32, F16, BF16: nothing to choose, covered by test_embeddings
FILE_TYPES = sorted(set(FILE_TYPE_DEFAULT_TENSOR_TYPE) - NOT_QUANTIZABLE)
# IQ2_XXS, IQ2_XS, IQ1_S, IQ2_S (llama.h): base types iq2_xxs, iq2_xs, iq1_s, iq2_xs, whose
# quantize_row_*_impl asserts "missing quantization
# weights" without an imatrix (ggml-quants.c), so --pure cannot write their base type here;
# IQ2_M and IQ1_M (iq2_s, iq1_m) quantize without one, but take 15-25 s: left out too.
PURE_NEEDS_IMATRIX = {19, 20, 24, 28, 29, 31}
# 2880 only tied: untied it adds nothing 640 does not show, and costs a second per file type.
SHAPES = [(256, False), (640, False), (256, True), (640, True), (2880, True), (48, False),
          (48, True)]
# Row lengths: a multiple of every block (256); of 32 but not 256 (640: the k-quants fall
# back); of 64 but not 256 (2880: gpt-oss's width, where the tied-head rule and the fallback
# can hide each other, and q1_0's 128-wide block has no fallback); of no block but f16's (48:
# a 32-wide type has nothing smaller to demote to, tensor_type_fallback's `qk_k <= 32` case,
# and a demoted type that still does not fit becomes f16).


def _write_model(path: Path, n_embd: int, tied: bool, architecture: str = "llama") -> None:
    from fixtures.build import add_tokenizer

    rng = np.random.default_rng(n_embd)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_file_type(1)
    writer.add_context_length(256)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_embd)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    if architecture == "falcon":
        writer.add_layer_norm_eps(1e-5)
    else:
        writer.add_layer_norm_rms_eps(1e-5)
    add_tokenizer(writer, N_VOCAB)
    matrix = (rng.standard_normal((N_VOCAB, n_embd)) * 0.05).astype(np.float16)
    writer.add_tensor("token_embd.weight", matrix)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    if not tied:
        writer.add_tensor("output.weight", matrix)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, bool], Path]:
    folder = tmp_path_factory.mktemp("recipe")
    paths = {}
    for n_embd, tied in SHAPES:
        path = folder / f"source-{n_embd}-{'tied' if tied else 'untied'}.gguf"
        _write_model(path, n_embd, tied)
        paths[(n_embd, tied)] = path
    return paths


@pytest.fixture(scope="module")
def falcon_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe-falcon") / "source-falcon-256-tied.gguf"
    _write_model(path, 256, True, "falcon")
    return path


# benchmarks/mutation.py reruns these tests once per mutant of recipe.py: the quantizer's
# answers do not depend on our code, so it keeps them in this folder (one file per case) and the
# quantizer runs once per case instead of once per mutant.
ANSWERS = os.environ.get("GGUF_INSPECT_QUANTIZER_ANSWERS")


def quantized_embedding_type(source: Path, file_type: int, pure: bool = False) -> str | None:
    """The type llama_model_quantize gives token_embd.weight (ggml's lower-case name); None when
    the quantizer refuses (tensor_type_fallback has no fallback for q1_0 and nvfp4)."""
    if ANSWERS is None:
        return _quantize(source, file_type, pure)
    saved = Path(ANSWERS) / f"{llama_cpp.__version__}-{source.stem}-{file_type}-{int(pure)}"
    if saved.exists():
        return saved.read_text() or None
    written = _quantize(source, file_type, pure)
    partial = saved.with_suffix(f".{os.getpid()}")
    partial.write_text(written or "")
    partial.replace(saved)  # atomic: parallel runs never read half an answer
    return written


def _quantize(source: Path, file_type: int, pure: bool) -> str | None:
    target = source.with_name(f"{source.stem}-{file_type}-{int(pure)}.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type
    params.nthread = 1
    params.pure = pure
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(),
                                            ctypes.byref(params))
    if status != 0:
        return None
    try:
        # the raw type id (gguf-py's enum does not know every type llama.cpp writes, e.g. q2_0)
        return ggml_type_name(read_gguf(target).tensor("token_embd.weight").type_id)
    finally:
        target.unlink()


@pytest.mark.parametrize("file_type", sorted(set(FILE_TYPES) - PURE_NEEDS_IMATRIX))
def test_each_file_types_base_type_is_what_pure_quantization_writes(
        file_type: int, sources: dict[tuple[int, bool], Path]) -> None:
    # --pure skips llama_tensor_get_type_impl: every matrix gets llama_ftype_get_default_type's
    # type, and 256 divides every block, so no fallback interferes.
    written = quantized_embedding_type(sources[(256, False)], file_type, pure=True)
    assert ggml_type_name(FILE_TYPE_DEFAULT_TENSOR_TYPE[file_type]) == written


@pytest.mark.parametrize("n_embd, tied", SHAPES,
                         ids=[f"{n}-{'tied' if t else 'untied'}" for n, t in SHAPES])
@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_the_recipe_replay_is_what_the_quantizer_writes(
        file_type: int, n_embd: int, tied: bool, sources: dict[tuple[int, bool], Path]) -> None:
    written = quantized_embedding_type(sources[(n_embd, tied)], file_type)
    expected = expected_embedding_type(file_type, tied, n_embd, "llama")
    assert (expected.type if expected is not None else None) == written, expected


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_a_tied_falcon_head_is_q8_0(file_type: int, falcon_source: Path) -> None:
    """llama_tensor_get_type_impl: `arch == LLM_ARCH_FALCON || nx % qk_k != 0` gives the
    output head (the tied embedding) q8_0, even where the row length fits the block."""
    written = quantized_embedding_type(falcon_source, file_type)
    expected = expected_embedding_type(file_type, True, 256, "falcon")
    assert (expected.type if expected is not None else None) == written, expected
