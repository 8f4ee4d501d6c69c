"""read_hyperparameters against llama.cpp's loader, in process (issue 21: hparams.py's mutants).

The CLI-level tests of test_hostile_hparams run in a subprocess, which a mutation tool cannot
trace to the mutated function; these call the reader directly. Expected values come from
llama.cpp's source (vendored in llama-cpp-python 0.3.36), cited per test: files are written by
gguf-py's GGUFWriter and offsets are gguf-py's own (``ReaderField.offset``, the key's start).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gguf
import pytest

from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import ArrayValue, MetadataEntry
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.source import LocalFileSource
from gguf_inspect.llamacpp.hparams import Hyperparameters, read_hyperparameters
from tests.conftest import loader_required
from tests.test_hostile_hparams import write_model
from tests.test_memory import array, synthetic

UINT32_MAX = (1 << 32) - 1


def _read(path: Path):
    source = LocalFileSource(str(path))
    try:
        return read_gguf_source(source)
    finally:
        source.close()


def _refusal(path: Path) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(_read(path))
    return caught.value


def _key_offset(path: Path, key: str) -> int:
    return gguf.GGUFReader(str(path)).fields[key].offset


# llama_model_loader::get_key<uint32_t> (src/llama-model-loader.cpp) throws on a value that is
# not a uint32: the refusal names the file, the key, the value and the key's offset.
@pytest.mark.parametrize(("key", "kind", "value"), [
    ("llama.embedding_length", "uint64", 1 << 32),
    ("llama.attention.head_count_kv", "int32", -1),
    ("llama.attention.key_length", "uint64", 1 << 32),
    ("llama.context_length", "int64", -7),
])
def test_a_key_out_of_uint32_range_is_refused_with_file_key_value_offset(
        tmp_path: Path, key: str, kind: str, value: int) -> None:
    path = write_model(tmp_path / "bad.gguf", {key: (kind, value)})
    error = _refusal(path)
    assert error.path == str(path)
    assert error.offset == _key_offset(path, key)
    assert error.message.startswith(f"{key} = {value}: llama.cpp reads this key as a uint32 ")
    assert error.message.endswith("(llama_model_loader::get_key) and refuses the model")


def test_a_per_layer_array_item_out_of_range_is_refused(tmp_path: Path) -> None:
    """get_key_or_arr -> get_arr: each item is taken as a uint32 (int32 -1 is not one)."""
    path = tmp_path / "bad.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    _llama_keys(writer)
    writer.add_array("llama.attention.head_count_kv", [2, -1])  # gguf-py: int32 items
    write_gguf_header_only(writer)
    error = _refusal(path)
    assert error.path == str(path)
    assert error.offset == _key_offset(path, "llama.attention.head_count_kv")
    assert error.message.startswith("llama.attention.head_count_kv = -1: ")


def _llama_keys(writer: gguf.GGUFWriter) -> None:
    """2 layers, n_embd 64, 4 heads, and the other keys llama.cpp requires of a llama."""
    for key, value in {**loader_required("llama"), "llama.block_count": 2,
                       "llama.embedding_length": 64, "llama.attention.head_count": 4}.items():
        writer.add_uint32(key, value)


def write_gguf_header_only(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_the_largest_uint32_is_accepted() -> None:
    """2^32-1 is a uint32: get_key takes it (the allocation fails later, not the loader)."""
    hparams = read_hyperparameters(synthetic(extra={"llama.attention.key_length": UINT32_MAX,
                                                    "llama.embedding_length": UINT32_MAX}))
    assert hparams.head_k == (UINT32_MAX, UINT32_MAX) and hparams.n_embd == UINT32_MAX


@pytest.mark.parametrize("kind, value", [("bool", True), ("string", "2")])
def test_a_block_count_that_is_not_an_integer_is_refused(tmp_path: Path, kind: str,
                                                         value: object) -> None:
    """get_key<uint32_t> throws on a key of another type ("key ... has wrong type")."""
    path = write_model(tmp_path / "bad.gguf", {"llama.block_count": (kind, value)})
    error = _refusal(path)
    assert error.field == "llama.block_count" and error.path == str(path)
    assert "missing" in error.message


def test_a_missing_embedding_length_names_its_key(tmp_path: Path) -> None:
    """load_hparams: get_key(LLM_KV_EMBEDDING_LENGTH, hparams.n_embd) is required."""
    model = synthetic()
    del model.metadata["llama.embedding_length"]
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(model)
    assert caught.value.field == "llama.embedding_length"
    assert caught.value.path == "synthetic.gguf"
    assert caught.value.message.startswith("missing, zero or negative")


@pytest.mark.parametrize("architecture", [None, ""])
def test_a_missing_or_empty_architecture_is_refused(architecture: str | None) -> None:
    """llama_model_create (src/llama-model.cpp): LLM_ARCH_UNKNOWN -> "unknown model
    architecture: ''"; named by its own key, not by a key built from an empty prefix."""
    model = synthetic()
    if architecture is None:
        del model.metadata["general.architecture"]
    else:
        model.metadata["general.architecture"] = MetadataEntry("general.architecture", 8, "", 0)
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(model)
    assert caught.value.field == "general.architecture"
    assert caught.value.path == "synthetic.gguf"
    assert caught.value.message.startswith("missing or empty: ")
    assert caught.value.message.endswith("unknown model architecture")


def test_more_layers_than_llama_max_layers_names_file_and_key() -> None:
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(synthetic(n_layer=513))
    assert caught.value.field == "llama.block_count" and caught.value.path == "synthetic.gguf"
    assert caught.value.message == ("block_count 513 is more than llama.cpp's LLAMA_MAX_LAYERS "
                                    "(512)")


def test_nextn_layers_may_equal_but_not_exceed_block_count(tmp_path: Path) -> None:
    """load_hparams: GGML_ASSERT(hparams.n_layer_nextn <= hparams.n_layer_all)
    (src/llama-model.cpp:1330)."""
    equal = read_hyperparameters(synthetic(extra={"llama.nextn_predict_layers": 2}))
    assert equal.n_layer_nextn == 2 and equal.n_layer_main == 0
    path = write_model(tmp_path / "bad.gguf", {"llama.nextn_predict_layers": ("uint32", 3)})
    error = _refusal(path)
    assert error.path == str(path)
    assert error.offset == _key_offset(path, "llama.nextn_predict_layers")
    assert error.message.startswith("llama.nextn_predict_layers = 3: more than block_count (2)")


# ---- shapes (load_hparams, src/llama-model.cpp:1432-1458) ---------------------------------------

def test_head_size_is_the_integer_quotient_and_zero_without_heads() -> None:
    """n_embd_head_k_full = n_embd / n_head() in uint32 arithmetic; with no heads both head
    sizes are 0 even when key_length is set (the else branch, line 1457)."""
    odd = read_hyperparameters(synthetic(n_embd=250))
    assert odd.head_k == (62, 62) and odd.head_v == (62, 62)
    assert all(type(size) is int for size in odd.head_k + odd.head_v)
    headless = synthetic(extra={"llama.attention.key_length": 32,
                                "llama.attention.value_length": 32})
    del headless.metadata["llama.attention.head_count"]
    hparams = read_hyperparameters(headless)
    assert hparams.n_head == (0, 0) and hparams.head_k == (0, 0) and hparams.head_v == (0, 0)


def test_feed_forward_length_per_layer_and_its_default() -> None:
    """get_key_or_arr(LLM_KV_FEED_FORWARD_LENGTH, n_ff_arr, n_layer, false): 0 when absent."""
    assert read_hyperparameters(synthetic()).n_ff == (256, 256)
    per_layer = synthetic(extra={"llama.feed_forward_length": array((100, 200))})
    assert read_hyperparameters(per_layer).n_ff == (100, 200)
    absent = synthetic()
    del absent.metadata["llama.feed_forward_length"]
    assert read_hyperparameters(absent).n_ff == (0, 0)


def test_swa_layers_take_the_swa_head_sizes() -> None:
    """n_embd_head_k/v(il) = is_swa(il) ? *_swa : *_full (llama-hparams.cpp); gemma2's pattern
    is 2 (models/gemma2.cpp: every other layer is SWA, the last of each pair full)."""
    hparams = read_hyperparameters(synthetic("gemma2", n_layer=4, extra={
        "gemma2.attention.key_length": 64, "gemma2.attention.value_length": 48,
        "gemma2.attention.key_length_swa": 32, "gemma2.attention.value_length_swa": 16}))
    assert hparams.is_swa == (True, False, True, False)
    assert hparams.head_k == (32, 64, 32, 64) and hparams.head_v == (16, 48, 16, 48)


def test_mla_needs_both_head_lengths() -> None:
    """is_mla(): n_embd_head_k_mla_impl != 0 && n_embd_head_v_mla_impl != 0 (llama-hparams)."""
    both = {"llama.attention.key_length_mla": 192, "llama.attention.value_length_mla": 128}
    assert read_hyperparameters(synthetic(extra=both)).is_mla
    for key in both:
        assert not read_hyperparameters(synthetic(extra={key: both[key]})).is_mla


def test_non_causal_architectures_are_not_causal() -> None:
    """models/dream.cpp sets hparams.causal_attn = false whatever the header says."""
    assert not read_hyperparameters(synthetic("dream")).causal_attn
    assert read_hyperparameters(synthetic("llama")).causal_attn


# ---- which layers have KV (llama_hparams::has_kv, src/llama-hparams.cpp:321) --------------------

def _gemma4_pattern(n_layer: int) -> dict[str, ArrayValue]:
    """The per-layer window array gemma4 cannot load without (models/gemma4.cpp:6)."""
    return {"gemma4.attention.sliding_window_pattern": ArrayValue(
        item_type=7, count=n_layer, offset=0, end=0, items=(False,) * n_layer)}


def test_gemma4_without_its_window_array_is_refused() -> None:
    """models/gemma4.cpp:6: ml.get_arr(LLM_KV_ATTENTION_SLIDING_WINDOW_PATTERN, is_swa_impl) is
    required, so llama.cpp throws on a gemma4 header without it; so do we."""
    with pytest.raises(FormatError, match="sliding_window_pattern") as caught:
        read_hyperparameters(synthetic("gemma4", n_layer=4, extra={
            "gemma4.attention.sliding_window": 1024}))
    # the one line the CLI prints names the file, the key and llama.cpp's reason
    assert caught.value.path == "synthetic.gguf"
    assert caught.value.field == "gemma4.attention.sliding_window_pattern"
    assert caught.value.message.startswith("missing: llama.cpp requires")
    assert caught.value.message.endswith("(get_arr in load_arch_hparams)")


def test_a_gemma4_window_array_longer_than_llama_cpps_layer_limit_is_refused() -> None:
    """models/gemma4.cpp:6 reads the array with get_arr into a std::array of LLAMA_MAX_LAYERS
    (512), which throws on a longer one (llama-model-loader.cpp: "array length %u for key %s
    exceeds max %u"); 512 entries load."""
    n_layer = 4
    for count, refused in ((513, True), (512, False)):
        pattern = ArrayValue(item_type=7, count=count, offset=0, end=0,
                             items=(False,) * count)
        key = "gemma4.attention.sliding_window_pattern"
        model = synthetic("gemma4", n_layer=n_layer, extra={
            "gemma4.attention.sliding_window": 1024, key: pattern})
        model.metadata[key] = MetadataEntry(key, 9, pattern, 1234)  # where the array's key is
        if not refused:
            assert read_hyperparameters(model).is_swa == (False,) * n_layer
            continue
        with pytest.raises(FormatError) as caught:
            read_hyperparameters(model)
        assert (caught.value.path, caught.value.offset, caught.value.field) == (
            "synthetic.gguf", 1234, key)
        assert caught.value.message == ("array length 513 exceeds max 512: llama.cpp refuses the "
                                        "model (llama_model_loader::get_arr)")


def test_gemma4_shares_the_kv_of_its_last_layers() -> None:
    """models/gemma4.cpp:11: n_layer_kv_from_start = n_layer_all - shared_kv_layers (default 0)."""
    shared = read_hyperparameters(synthetic("gemma4", n_layer=6, extra={
        "gemma4.attention.shared_kv_layers": 2, **_gemma4_pattern(6)}))
    assert shared.n_layer_kv_from_start == 4
    assert [shared.has_kv(il) for il in range(6)] == [True] * 4 + [False] * 2
    assert read_hyperparameters(synthetic("gemma4", n_layer=6, extra=_gemma4_pattern(6))
                                ).n_layer_kv_from_start == 6
    assert read_hyperparameters(synthetic("llama")).has_kv(1)


def test_kv_from_start_zero_means_no_layer_has_kv() -> None:
    """has_kv: n_layer_kv_from_start >= 0 and il >= it -> false, so 0 leaves no KV layer."""
    every = read_hyperparameters(synthetic("gemma4", n_layer=2, extra={
        "gemma4.attention.shared_kv_layers": 2, **_gemma4_pattern(2)}))
    assert every.n_layer_kv_from_start == 0
    assert not every.has_kv(0) and not every.has_kv(1)
    assert isinstance(every, Hyperparameters)


# ---- sliding-window layers (llama_hparams::set_swa_pattern, src/llama-hparams.cpp:8-22, and
# llama_model_base::load_swa_pattern, src/llama-model.cpp:3434) -----------------------------------

def _swa(arch: str, n_layer: int, extra: dict) -> tuple[tuple[bool, ...], int]:
    hparams = read_hyperparameters(synthetic(arch, n_layer=n_layer, extra=extra))
    return hparams.is_swa, hparams.n_swa


@pytest.mark.parametrize(("arch", "pattern", "expected"), [
    # not dense-first: is_swa = n_pattern == 0 || il % n_pattern < n_pattern - 1
    ("gemma2", 3, (True, True, False, True, True, False)),
    ("gemma2", 1, (False,) * 6),
    ("gemma2", 0, (True,) * 6),
    # dense-first (cohere2moe): is_swa = n_pattern == 0 || il % n_pattern != 0
    ("cohere2moe", 1, (False,) * 6),
    ("cohere2moe", 0, (True,) * 6),
    ("cohere2moe", 3, (False, True, True, False, True, True)),
])
def test_the_header_pattern_replaces_the_architecture_default(
        arch: str, pattern: int, expected: tuple[bool, ...]) -> None:
    """load_swa_pattern: get_key(SLIDING_WINDOW_PATTERN, n_pattern, false) overrides the
    architecture's n_pattern before set_swa_pattern."""
    flags, window = _swa(arch, 6, {f"{arch}.attention.sliding_window": 512,
                                   f"{arch}.attention.sliding_window_pattern": pattern})
    assert flags == expected and window == 512


def test_nextn_layers_are_never_swa() -> None:
    """set_swa_pattern, lines 19-21: layers n_layer() .. n_layer_all are not SWA."""
    flags, _ = _swa("gemma2", 3, {"gemma2.nextn_predict_layers": 1})
    assert flags == (True, False, False)  # pattern 2 over the 2 main layers, then the NextN one


@pytest.mark.parametrize(("n_layer", "n_nextn", "on"), [(64, 0, True), (65, 1, True),
                                                        (32, 0, False), (64, 1, False)])
def test_exaone4_has_swa_only_with_64_main_layers(n_layer: int, n_nextn: int, on: bool) -> None:
    """models/exaone4.cpp:4: ``if (hparams.n_layer() == 64)`` (n_layer() excludes NextN)."""
    flags, window = _swa("exaone4", n_layer, {"exaone4.nextn_predict_layers": n_nextn})
    assert any(flags) is on and window == (4096 if on else 0)


def test_gemma4_takes_its_swa_layers_from_the_array() -> None:
    """models/gemma4.cpp:6: get_arr(SLIDING_WINDOW_PATTERN, is_swa_impl)."""
    pattern = ArrayValue(item_type=7, count=4, offset=0, end=0, items=(True, False, True, True))
    flags, window = _swa("gemma4", 4, {"gemma4.attention.sliding_window": 1024,
                                       "gemma4.attention.sliding_window_pattern": pattern})
    assert flags == (True, False, True, True) and window == 1024


@pytest.mark.parametrize(("arch", "extra"), [
    ("llama", {"llama.attention.sliding_window": 512}),  # no window rule for llama
    ("gemma3", {}),  # models/gemma3.cpp: SWA only with a window key
    ("gemma2", {"gemma2.attention.sliding_window": 0}),  # a zero window
    ("exaone4", {}),  # 2 layers, not 64
])
def test_no_swa_means_a_zero_window(arch: str, extra: dict) -> None:
    flags, window = _swa(arch, 2, extra)
    assert flags == (False, False) and window == 0


# ---- n_vocab (llama_vocab, src/llama-vocab.cpp: uint32 token counts) ----------------------------

def test_an_out_of_range_vocab_size_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "bad.gguf", {"llama.vocab_size": ("uint64", 1 << 32)})
    error = _refusal(path)
    assert error.offset == _key_offset(path, "llama.vocab_size")
    assert error.message.startswith(f"llama.vocab_size = {1 << 32}: ")


def test_no_vocabulary_is_zero_tokens() -> None:
    model = synthetic()
    del model.metadata["llama.vocab_size"]
    assert read_hyperparameters(model).n_vocab == 0


def test_more_tokens_than_a_uint32_is_refused() -> None:
    """The token array's count is what llama_vocab takes; 2^32-1 tokens still fit a uint32."""
    def with_tokens(count: int):
        tokens = ArrayValue(item_type=8, count=count, offset=0, end=0)
        model = synthetic(extra={"tokenizer.ggml.tokens": tokens})
        return model
    assert read_hyperparameters(with_tokens(UINT32_MAX)).n_vocab == UINT32_MAX
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(with_tokens(1 << 32))
    assert caught.value.path == "synthetic.gguf"
    assert caught.value.message == (f"tokenizer.ggml.tokens = {1 << 32} tokens: llama.cpp counts "
                                    "tokens in a uint32 and refuses the vocabulary")


# ---- per-layer arrays (llama_model_loader::get_key_or_arr, src/llama-model-loader.cpp) ----------

def test_a_per_layer_array_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    """get_key_or_arr throws when the array does not have n_layer entries."""
    path = tmp_path / "bad.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    _llama_keys(writer)
    writer.add_array("llama.attention.head_count_kv", [2, 2, 2])
    write_gguf_header_only(writer)
    error = _refusal(path)
    assert error.path == str(path) and error.field == "llama.attention.head_count_kv"
    assert error.offset == _key_offset(path, "llama.attention.head_count_kv")
    assert error.message == "3 entries where llama.cpp expects one per layer (2)"


# ---- recurrent layers and state (llama_hparams::is_recr, n_embd_r, n_embd_s:
# src/llama-hparams.cpp:208-258; each architecture's load_arch_hparams) ----------------------------

def _per_layer_array(items: tuple[int, ...]) -> ArrayValue:
    return array(items)


@pytest.mark.parametrize("arch", ["mamba", "rwkv6", "falcon-h1"])
def test_recurrent_and_falcon_h1_layers_are_all_recurrent(arch: str) -> None:
    """models/falcon-h1.cpp:14 fills is_recr_impl with true; RECURRENT archs are recurrent."""
    assert read_hyperparameters(synthetic(arch, n_layer=3)).is_recurrent == (True,) * 3


def test_nemotron_h_recurrent_layers_have_no_kv_heads_and_no_ffn() -> None:
    """models/nemotron-h.cpp:15: i < n_layer() && n_head_kv(i) == 0 && n_ff(i) == 0."""
    hparams = read_hyperparameters(synthetic("nemotron_h", n_layer=5, extra={
        "nemotron_h.nextn_predict_layers": 1,
        "nemotron_h.attention.head_count_kv": _per_layer_array((0, 2, 0, 0, 0)),
        "nemotron_h.feed_forward_length": _per_layer_array((0, 0, 64, 0, 0))}))
    assert hparams.is_recurrent == (True, False, False, True, False)


@pytest.mark.parametrize(("extra", "expected"), [
    # full_attn_interval defaults to 4 (models/qwen3next.cpp:18); the NextN layer is not recurrent
    ({}, (True, True, True, False, True, True, True, False, False)),
    ({"qwen3next.full_attention_interval": 3},
     (True, True, False, True, True, False, True, True, False)),
    # the per-layer key wins when present (get_key_or_arr, line 17)
    ({"qwen3next.attention.recurrent_layers": ArrayValue(
        item_type=7, count=9, offset=0, end=0, items=(False, True) * 4 + (True,))},
     (False, True) * 4 + (True,)),
])
def test_qwen3next_recurrent_layers(extra: dict, expected: tuple[bool, ...]) -> None:
    hparams = read_hyperparameters(synthetic("qwen3next", n_layer=9, extra={
        "qwen3next.nextn_predict_layers": 1, **extra}))
    assert hparams.is_recurrent == expected


@pytest.mark.parametrize(("extra", "n_embd_r", "n_embd_s"), [
    # RWKV: token_shift_count (default 2, llama-hparams.h:143) * n_embd; n_embd * wkv_head_size
    ({"rwkv6.wkv.head_size": 16}, 2 * 64, 64 * 16),
    ({"rwkv6.wkv.head_size": 16, "rwkv6.token_shift_count": 1}, 64, 64 * 16),
])
def test_rwkv_state_rows(extra: dict, n_embd_r: int, n_embd_s: int) -> None:
    hparams = read_hyperparameters(synthetic("rwkv6", n_embd=64, extra=extra))
    assert (hparams.n_embd_r, hparams.n_embd_s) == (n_embd_r, n_embd_s)


@pytest.mark.parametrize(("extra", "n_embd_r", "n_embd_s"), [
    # Mamba: (d_conv - 1) * (d_inner + 2 * n_group * d_state); d_state * d_inner
    ({"conv_kernel": 4, "inner_size": 128, "state_size": 16, "group_count": 1},
     3 * (128 + 2 * 16), 16 * 128),
    ({"conv_kernel": 4, "inner_size": 128, "state_size": 16}, 3 * 128, 16 * 128),
    ({"conv_kernel": 4, "state_size": 16, "group_count": 1}, 3 * 32, 0),
    ({"conv_kernel": 4, "inner_size": 128, "group_count": 1}, 3 * 128, 0),
    ({"inner_size": 128, "state_size": 16}, 0, 16 * 128),  # no conv: ssm_d_conv 0 -> 0 rows
])
def test_mamba_state_rows(extra: dict, n_embd_r: int, n_embd_s: int) -> None:
    hparams = read_hyperparameters(synthetic("mamba", n_embd=64, extra={
        f"mamba.ssm.{key}": value for key, value in extra.items()}))
    assert (hparams.n_embd_r, hparams.n_embd_s) == (n_embd_r, n_embd_s)


def test_nemotron_h_without_feed_forward_length_has_no_ffn() -> None:
    """n_ff_arr is zero-filled (llama_hparams) and get_key_or_arr(..., false) leaves it so."""
    model = synthetic("nemotron_h", n_layer=2, extra={
        "nemotron_h.attention.head_count_kv": _per_layer_array((0, 2))})
    del model.metadata["nemotron_h.feed_forward_length"]
    assert read_hyperparameters(model).is_recurrent == (True, False)


def test_a_long_per_layer_array_is_refused_with_its_count(tmp_path: Path) -> None:
    """2000 entries (more than the reader decodes eagerly) for 2 layers: get_key_or_arr throws
    (n > N_MAX); the refusal counts the array's entries."""
    path = tmp_path / "bad.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    _llama_keys(writer)
    writer.add_array("llama.attention.head_count_kv", [2] * 2000)
    write_gguf_header_only(writer)
    error = _refusal(path)
    assert error.message == "2000 entries where llama.cpp expects one per layer (2)"


def test_a_per_layer_array_of_floats_is_refused(tmp_path: Path) -> None:
    """get_arr (src/llama-model-loader.cpp) takes bool, uint32 and int32 items for a uint32
    array and throws on any other element type."""
    path = tmp_path / "bad.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    _llama_keys(writer)
    writer.add_array("llama.attention.head_count_kv", [2.0, 2.0])
    write_gguf_header_only(writer)
    error = _refusal(path)
    assert error.path == str(path) and error.field == "llama.attention.head_count_kv"
    assert error.offset == _key_offset(path, "llama.attention.head_count_kv")
    assert error.message == "llama.attention.head_count_kv has wrong array element type float32"


# ---- what llama.cpp's loader refuses (loader_keys; tests/test_loader_refusals.py loads them) ----


def test_an_architecture_without_keys_of_its_own_needs_only_the_base_ones() -> None:
    """gptj's load_arch_hparams requires nothing: the three keys of load_hparams are enough."""
    assert read_hyperparameters(synthetic("gptj")).arch == "gptj"
    without = dataclasses.replace(synthetic("gptj"), metadata={
        key: entry for key, entry in synthetic("gptj").metadata.items()
        if key != "gptj.context_length"})
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(without)
    assert caught.value.field == "gptj.context_length"


def _deepseek2(n_layer: int, n_nextn: int = 0, vocab_key: int | None = None,
               tokens: int | None = None):
    """A deepseek2 header without attention.q_lora_rank."""
    extra = {"deepseek2.nextn_predict_layers": n_nextn}
    if tokens is not None:
        extra["tokenizer.ggml.tokens"] = ArrayValue(item_type=8, count=tokens, offset=0, end=0,
                                                    items=None)
    model = synthetic("deepseek2", n_layer=n_layer, extra=extra)
    metadata = {key: entry for key, entry in model.metadata.items()
                if key != "deepseek2.attention.q_lora_rank"
                and (key != "deepseek2.vocab_size" or vocab_key is not None)}
    if vocab_key is not None:
        metadata["deepseek2.vocab_size"] = MetadataEntry("deepseek2.vocab_size", 4, vocab_key, 0)
    return dataclasses.replace(model, metadata=metadata)


# models/deepseek2.cpp: is_lite = n_layer() == 27 || n_layer() == 26 || (n_layer() == 48 &&
# n_vocab == 128256), n_vocab from {arch}.vocab_size, else the token list's length; only a model
# that is not lite must have attention.q_lora_rank
@pytest.mark.parametrize(("n_layer", "n_nextn", "vocab_key", "tokens", "lite"), [
    (26, 0, None, None, True), (27, 0, None, None, True), (28, 0, None, None, False),
    (25, 0, None, None, False), (28, 1, None, None, True),  # n_layer() leaves out NextN
    (48, 0, 128256, None, True), (48, 0, 128257, None, False), (49, 0, 128256, None, False),
    (48, 0, None, 128256, True), (48, 0, None, 128257, False),
    (48, 0, 128256, 5, True),  # the key comes first: the token list is not counted
    (48, 0, None, None, False)])
def test_deepseek2_needs_its_q_lora_rank_unless_lite(n_layer: int, n_nextn: int,
                                                     vocab_key: int | None, tokens: int | None,
                                                     lite: bool) -> None:
    model = _deepseek2(n_layer, n_nextn, vocab_key, tokens)
    if lite:
        assert read_hyperparameters(model).n_layer == n_layer
        return
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(model)
    assert caught.value.field == "deepseek2.attention.q_lora_rank"
    assert caught.value.path == "synthetic.gguf"  # the one line names the file too
    assert caught.value.message == ("missing: llama.cpp's loader requires this key and refuses "
                                    "the model without it (\"key not found in model\")")


# llama_model_base::load_hparams' GGML_ASSERTs on the expert counts (llama.cpp aborts,
# llama-model.cpp:1361-1373), each refusal saying which one the header breaks
@pytest.mark.parametrize(("keys", "field", "why"), [
    ({"expert_count": 1025, "expert_used_count": 2}, "expert_count",  # > LLAMA_MAX_EXPERTS
     "more than 1024"),
    ({"expert_count": 4, "expert_used_count": 5}, "expert_used_count",
     "more than expert_count (4)"),
    ({"expert_count": 4}, "expert_used_count", "zero or missing with experts"),
    ({"expert_count": 1}, "expert_used_count", "zero or missing with experts"),  # one expert
    ({"expert_count": 4, "expert_used_count": 0}, "expert_used_count",
     "zero or missing with experts"),
    ({"expert_used_count": 1}, "expert_used_count", "more than expert_count (0)"),
    ({"expert_count": 4, "expert_used_count": 2, "expert_group_count": 4}, "expert_group_count",
     "not below expert_count"),
    # one expert in one group: n_expert_groups < n_expert fails (1 < 1)
    ({"expert_count": 1, "expert_used_count": 1, "expert_group_count": 1},
     "expert_group_count", "not below expert_count"),
    ({"expert_count": 6, "expert_used_count": 2, "expert_group_count": 4,
      "expert_group_used_count": 1}, "expert_group_count",  # 4 does not divide 6
     "does not divide expert_count"),
    ({"expert_count": 3, "expert_used_count": 1, "expert_group_count": 2,
      "expert_group_used_count": 1}, "expert_group_count",  # 2 does not divide 3
     "does not divide expert_count"),
    ({"expert_count": 8, "expert_used_count": 2, "expert_group_count": 4},
     "expert_group_used_count", "not between 0 and expert_group_count"),
    ({"expert_count": 8, "expert_used_count": 2, "expert_group_count": 4,
      "expert_group_used_count": 4}, "expert_group_used_count",
     "not between 0 and expert_group_count"),
    ({"expert_count": 4, "expert_used_count": 2, "expert_group_count": 2,
      "expert_group_used_count": 2}, "expert_group_used_count",  # two groups, both used
     "not between 0 and expert_group_count"),
    ({"expert_group_count": 2}, "expert_group_count", "set without experts"),
])
def test_expert_counts_llama_cpp_aborts_on_are_refused(keys: dict, field: str, why: str) -> None:
    model = synthetic(extra={f"llama.{key}": value for key, value in keys.items()})
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(model)
    value = keys.get(field, "(missing)")
    assert caught.value.message == (
        f"llama.{field} = {value}: {why}: llama.cpp aborts loading the model "
        "(GGML_ASSERT in llama_model_base::load_hparams)")


@pytest.mark.parametrize("keys", [
    {"expert_count": 1024, "expert_used_count": 1024},  # LLAMA_MAX_EXPERTS itself
    {"expert_count": 4, "expert_used_count": 4},
    {"expert_count": 8, "expert_used_count": 2, "expert_group_count": 4,
     "expert_group_used_count": 3},
    {"expert_count": 8, "expert_used_count": 2, "expert_group_count": 4,
     "expert_group_used_count": 1},  # 0 < 1 < 4
    {"expert_count": 8, "expert_used_count": 2, "expert_group_count": 1},  # one group: no check
    {"expert_count": 8, "expert_used_count": 2, "expert_group_count": 0},
    {"expert_count": 4, "expert_used_count": array((0, 2))},  # the max counts
    {}])
def test_expert_counts_llama_cpp_accepts_are_accepted(keys: dict) -> None:
    model = synthetic(extra={f"llama.{key}": value for key, value in keys.items()})
    assert read_hyperparameters(model).arch == "llama"


def test_the_refusal_shows_the_value_or_that_it_is_missing() -> None:
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(synthetic(extra={"llama.expert_count": 4, "llama.expert_used_count": 5}))
    assert caught.value.message.startswith("llama.expert_used_count = 5: more than expert_count (4)")
    with pytest.raises(FormatError) as caught:
        read_hyperparameters(synthetic(extra={"llama.expert_count": 4}))
    assert caught.value.message.startswith("llama.expert_used_count = (missing): zero or missing")
