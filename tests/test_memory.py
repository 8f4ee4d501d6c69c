"""The llama.cpp memory model, checked from first principles.

Expected values are derived by hand from llama.cpp's source (vendor/llama.cpp of
llama-cpp-python 0.3.36; file and function cited per test) or read from llama.cpp's own load
log for the committed fixtures. The runtime comparison of every fixture and configuration lives
in the runtime command's tests; here: the formulas, and the GPU-only rules on constructed models.
"""

from __future__ import annotations

import gguf
import pytest

from gguf_inspect.llamacpp import compute_graph
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.kv_cache import resolve_context, rotation_size
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.placement import cuda_row_padding, place_layers
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.core.constants import GGML_TYPE_BY_NAME
from gguf_inspect.core.model import ArrayValue, GGUFFile, MetadataEntry, TensorInfo
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.source import LocalFileSource
from tests.conftest import fixture_path, loader_required

MIB = 1 << 20


def load(name: str) -> GGUFFile:
    source = LocalFileSource(fixture_path(name))
    try:
        return read_gguf_source(source)
    finally:
        source.close()


def synthetic(arch: str = "llama", n_layer: int = 2, n_embd: int = 256, n_vocab: int = 512,
              extra: dict | None = None, tensors: list[tuple[str, tuple[int, ...], str]] = (),
              ) -> GGUFFile:
    """A header-only model: metadata and tensor infos laid out back to back, 32-aligned."""
    values = {**loader_required(arch), "general.architecture": arch,
              f"{arch}.block_count": n_layer,
              f"{arch}.embedding_length": n_embd, f"{arch}.context_length": 4096,
              f"{arch}.attention.head_count": 4, f"{arch}.feed_forward_length": n_embd,
              f"{arch}.vocab_size": n_vocab}
    values.update(extra or {})
    metadata = {key: MetadataEntry(key, 4, value, 0) for key, value in values.items()}
    infos, offset = [], 4096
    for name, ne, type_name in tensors:
        ggml_type = GGML_TYPE_BY_NAME[type_name.lower()]
        count = 1
        for dim in ne:
            count *= dim
        n_bytes = count // ggml_type.block_size * ggml_type.type_size
        infos.append(TensorInfo(name, ne, ggml_type.type_id, offset, n_bytes, 0))
        offset += (n_bytes + 31) // 32 * 32
    return GGUFFile("synthetic.gguf", 3, "little", offset, 32, 4096, metadata, tuple(infos),
                    {info.name: info for info in infos})


def array(items: tuple) -> ArrayValue:
    return ArrayValue(item_type=4, count=len(items), offset=0, end=0, items=items)


def by_kind(prediction, kind: str) -> list:
    return [b for b in prediction.buffers if b.kind == kind]


# ---- context: llama_context::llama_context (llama-context.cpp) --------------------------------

@pytest.mark.parametrize("config, n_ctx, n_ctx_seq, n_batch, n_ubatch", [
    # GGML_PAD(n_ctx, 256)
    (LlamaSettings(n_ctx=1000), 1024, 1024, 1000, 512),
    # not unified: n_ctx_seq = PAD(n_ctx / n_seq_max, 256) = PAD(5120 / 3 = 1706, 256) = 1792,
    # then n_ctx = n_ctx_seq * n_seq_max
    (LlamaSettings(n_ctx=5000, n_parallel=3), 5376, 1792, 2048, 512),
    # unified: n_ctx_seq = n_ctx
    (LlamaSettings(n_ctx=3000, n_parallel=2, kv_unified=True), 3072, 3072, 2048, 512),
    # n_batch = min(n_ctx, n_batch) (causal); n_ubatch = min(n_batch, n_ubatch)
    (LlamaSettings(n_ctx=256, n_batch=2048, n_ubatch=512), 256, 256, 256, 256),
    # n_ctx 0 -> n_ctx_train
    (LlamaSettings(n_ctx=0), 4096, 4096, 2048, 512),
])
def test_context_resolution(config, n_ctx, n_ctx_seq, n_batch, n_ubatch) -> None:
    context = resolve_context(read_hyperparameters(synthetic()), config)
    assert (context.n_ctx, context.n_ctx_seq, context.n_batch, context.n_ubatch) == (
        n_ctx, n_ctx_seq, n_batch, n_ubatch)


# ---- KV cache: llama_kv_cache::llama_kv_cache (llama-kv-cache.cpp) ----------------------------

def test_kv_cache_per_layer_heads_and_head_sizes() -> None:
    """n_embd_k_gqa(il) = key_length * head_count_kv[il] (llama-hparams.cpp); each layer's K is
    [n_embd_k_gqa, kv_size, n_stream] and its bytes are row_size(type) * kv_size * n_stream."""
    model = synthetic(extra={"llama.attention.head_count_kv": array((2, 4)),
                             "llama.attention.key_length": 64,
                             "llama.attention.value_length": 32})
    prediction = predict_memory(model, LlamaSettings(n_ctx=1024, flash_attn="on"))
    (cache,) = prediction.kv_caches
    # K: (64*2 + 64*4) f16 values per cell * 1024 cells * 2 bytes
    assert cache.k_bytes == (128 + 256) * 1024 * 2
    # V with flash attention (not transposed): each layer its own width, 32*2 and 32*4
    assert cache.v_bytes == (64 + 128) * 1024 * 2
    # without flash attention V is transposed and every layer takes the widest (32*4)
    no_fa = predict_memory(model, LlamaSettings(n_ctx=1024, flash_attn="off")).kv_caches[0]
    assert no_fa.v_bytes == (128 + 128) * 1024 * 2


def test_kv_cache_quantized_types_and_streams() -> None:
    """q8_0 rows: 34 bytes per 32 values; q4_0: 18 per 32 (ggml.c type_traits). Two sequences,
    not unified: two streams of n_ctx_seq cells each."""
    model = synthetic(extra={"llama.attention.head_count_kv": 2})  # 64 * 2 = 128 per layer
    prediction = predict_memory(model, LlamaSettings(
        n_ctx=4096, n_parallel=2, cache_type_k="q8_0", cache_type_v="q4_0", flash_attn="on"))
    (cache,) = prediction.kv_caches
    assert (cache.cells, cache.n_seqs, cache.layers) == (2048, 2, 2)
    assert cache.k_bytes == 2 * (128 // 32 * 34) * 2048 * 2
    assert cache.v_bytes == 2 * (128 // 32 * 18) * 2048 * 2
    # the CPU buffer pads each layer tensor to 32 bytes: these are already multiples
    (buffer,) = by_kind(prediction, "kv")
    assert (buffer.buffer, buffer.n_bytes) == ("CPU", cache.k_bytes + cache.v_bytes)


def test_kv_cache_of_a_fixture_matches_llama_cpp_log() -> None:
    """llama.cpp printed for tiny-llama-untied-q4_k_m at n_ctx 4096: 'size = 4.00 MiB
    (4096 cells, 2 layers, 1/1 seqs), K (f16): 2.00 MiB, V (f16): 2.00 MiB'."""
    (cache,) = predict_memory(load("tiny-llama-untied-q4_k_m.gguf"), LlamaSettings()).kv_caches
    assert (cache.cells, cache.layers, cache.n_seqs) == (4096, 2, 1)
    assert cache.k_bytes == cache.v_bytes == 2 * MIB


def test_gemma3_swa_pattern_and_window() -> None:
    """models/gemma3.cpp: load_swa_pattern(ml, 6) -> set_swa_pattern: il % 6 < 5 is SWA, so
    layers 5 and 11 of 12 attend fully; a sliding_window_pattern array overrides it."""
    extra = {"gemma3.attention.sliding_window": 128, "gemma3.attention.head_count_kv": 1}
    hparams = read_hyperparameters(synthetic("gemma3", n_layer=12, extra=extra))
    assert [il for il in range(12) if not hparams.is_swa[il]] == [5, 11]
    pattern = array((1, 0) * 6)
    extra["gemma3.attention.sliding_window_pattern"] = pattern
    hparams = read_hyperparameters(synthetic("gemma3", n_layer=12, extra=extra))
    assert [il for il in range(12) if not hparams.is_swa[il]] == [1, 3, 5, 7, 9, 11]
    # no window key: gemma3 has no SWA at all
    assert not read_hyperparameters(synthetic("gemma3", n_layer=12)).any_swa


def test_swa_cache_size_on_the_gemma3_fixture() -> None:
    """llama_kv_cache_iswa: SWA cells = PAD(min(n_ctx_seq, n_swa + n_ubatch), 256) without
    swa_full. Fixture: 6 layers (5 SWA), window 128, key/value length 64, 1 KV head; two
    sequences at n_ctx 4096 -> n_ctx_seq 2048, 2 streams. llama.cpp printed KV buffers of
    1.00 MiB (non-SWA) and 1.88 MiB (SWA) for this configuration."""
    prediction = predict_memory(load("tiny-gemma3-swa-q4_k_m.gguf"),
                                LlamaSettings(swa_full=False, n_parallel=2))
    main, swa = prediction.kv_caches
    assert (main.name, main.cells, main.layers) == ("", 2048, 1)
    assert (swa.name, swa.cells, swa.layers) == ("SWA", 768, 5)  # PAD(128 + 512, 256)
    assert main.k_bytes == 64 * 2 * 2048 * 2
    assert swa.k_bytes == 5 * 64 * 2 * 768 * 2
    assert [b.n_bytes for b in by_kind(prediction, "kv")] == [1 * MIB, 1966080]
    full = predict_memory(load("tiny-gemma3-swa-q4_k_m.gguf"), LlamaSettings())
    assert [cache.cells for cache in full.kv_caches] == [4096, 4096]  # swa_full: both full


# ---- model buffers: load_tensors (llama-model.cpp), create_tensor (llama-model-loader.cpp) ---

def test_cpu_mapped_span_and_repack_on_a_fixture() -> None:
    """llama.cpp's log for tiny-llama-untied-q4_k_m: 'CPU_Mapped model buffer size = 0.55 MiB',
    'CPU_REPACK model buffer size = 0.37 MiB', and a 'repack tensor ... with q4_K_8x8' line
    for each of these twelve tensors (AVX2: q4_K with ne[1] % 8 == 0, never token_embd)."""
    path = fixture_path("tiny-llama-untied-q4_k_m.gguf")
    reader = gguf.GGUFReader(path)
    repacked = {f"blk.{b}.{n}.weight" for b in (0, 1)
                for n in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up")}
    repacked |= {"blk.0.attn_v.weight", "blk.0.ffn_down.weight"}
    # get_mapping_range: the file span of the tensors in the CPU context (all but the
    # repacked ones), from gguf-py's own offsets
    mapped = [t for t in reader.tensors if t.name not in repacked]
    first = min(int(t.data_offset) for t in mapped)
    last = max(int(t.data_offset) + int(t.n_bytes) for t in mapped)
    repack_bytes = sum((int(t.n_bytes) + 31) // 32 * 32 for t in reader.tensors
                       if t.name in repacked)
    prediction = predict_memory(load("tiny-llama-untied-q4_k_m.gguf"),
                                LlamaSettings(cpu_avx512=False, cpu_amx=False))
    model = {b.buffer: b.n_bytes for b in by_kind(prediction, "model")}
    assert model == {"CPU_Mapped": last - first, "CPU_REPACK": repack_bytes}
    assert round(model["CPU_Mapped"] / MIB, 2) == 0.55
    assert round(model["CPU_REPACK"] / MIB, 2) == 0.37


def test_no_mmap_sums_padded_tensors() -> None:
    """Without mmap every weight outside CPU_REPACK goes to one CPU buffer: the sum of
    PAD(nbytes, 32) (ggml_backend_alloc_ctx_tensors_from_buft_impl, ggml-alloc.c)."""
    path = fixture_path("tiny-llama-untied-f16.gguf")
    expected = sum((int(t.n_bytes) + 31) // 32 * 32 for t in gguf.GGUFReader(path).tensors)
    prediction = predict_memory(load("tiny-llama-untied-f16.gguf"),
                                LlamaSettings(use_mmap=False, cpu_amx=False))
    assert [(b.buffer, b.n_bytes) for b in by_kind(prediction, "model")] == [("CPU", expected)]


def tied_q4_0(n_layer: int = 2) -> GGUFFile:
    tensors = [("token_embd.weight", (256, 512), "q4_0"), ("output_norm.weight", (256,), "f32")]
    for block in range(n_layer):
        tensors += [(f"blk.{block}.attn_q.weight", (256, 256), "q4_0"),
                    (f"blk.{block}.attn_norm.weight", (256,), "f32")]
    return synthetic(n_layer=n_layer, tensors=tensors)


def test_tied_embedding_duplicated_into_repack() -> None:
    """No output.weight: token_embd is requested again as the output head (TENSOR_DUPLICATED,
    llama_model_loader::create_tensor). As a matmul weight of a repackable type it lands in
    CPU_REPACK, a different buffer than the input copy, so it is stored twice."""
    prediction = predict_memory(tied_q4_0(), LlamaSettings(cpu_avx512=False, cpu_amx=False))
    embd_bytes = 512 * 256 // 32 * 18
    q_bytes = 256 * 256 // 32 * 18
    model = {b.buffer: b.n_bytes for b in by_kind(prediction, "model")}
    assert model["CPU_REPACK"] == embd_bytes + 2 * q_bytes


def amx_model(weights: list[tuple[str, tuple[int, ...], str]]) -> GGUFFile:
    # A q5_0 embedding (no AMX kernel, no repack): its tied head copy stays out of both.
    return synthetic(n_layer=1, tensors=[("token_embd.weight", (256, 512), "q5_0"),
                                         ("blk.0.attn_norm.weight", (256,), "f32"), *weights])


# Sizes from the block layouts (ggml-common.h) and get_row_size (ggml-cpu/amx/mmq.cpp): q8_0 is
# 34 bytes per 32 values plus a 4-byte compensation sum per block; q4_K 144 per 256 plus 4;
# iq4_xs 136 per 256 plus 2; f16 is stored unpacked.
AMX_CASES = [
    ("q8_0", (256, 64), 64 * 8 * (34 + 4)),
    ("q4_K", (512, 32), 32 * 2 * (144 + 4)),
    ("q6_K", (256, 32), 32 * 210),
    ("iq4_xs", (256, 96), 96 * (136 + 2)),
    ("q4_0", (64, 32), 32 * 2 * 18),
    ("f16", (48, 32), 48 * 32 * 2),
]


@pytest.mark.parametrize("type_name, ne, packed", AMX_CASES)
def test_amx_buffer_holds_packed_matmul_weights(type_name: str, ne: tuple[int, int],
                                                packed: int) -> None:
    """On a CPU with AMX-INT8 and AVX512-VNNI, the AMX buffer type comes first among the CPU's
    extra buffer types and takes MUL_MAT weights of its types (ggml-cpu/amx/amx.cpp)."""
    model = amx_model([("blk.0.attn_q.weight", ne, type_name)])
    prediction = predict_memory(model, LlamaSettings(cpu_amx=True))
    buffers = {b.buffer: b.n_bytes for b in by_kind(prediction, "model")}
    assert buffers["AMX"] == (packed + 31) // 32 * 32
    without = predict_memory(model, LlamaSettings(cpu_amx=False, cpu_avx512=False))
    assert "AMX" not in {b.buffer for b in by_kind(without, "model")}


@pytest.mark.parametrize("name, ne, type_name", [
    ("blk.0.attn_q.weight", (256, 48), "q8_0"),  # ne[1] not a multiple of TILE_N * 2 = 32
    ("blk.0.attn_q.weight", (288, 32), "q4_K"),  # ne[0] not a multiple of QK_K = 256
    ("blk.0.attn_q.weight", (40, 32), "q8_0"),  # ne[0] not a multiple of TILE_K = 32
    ("blk.0.attn_q.weight", (256, 32), "q5_0"),  # no AMX kernel for q5_0
    ("blk.0.ffn_up_exps.weight", (256, 32, 4), "q8_0"),  # MUL_MAT_ID: not supported
])
def test_amx_refuses_what_its_supports_op_refuses(name: str, ne: tuple[int, ...],
                                                  type_name: str) -> None:
    prediction = predict_memory(amx_model([(name, ne, type_name)]),
                                LlamaSettings(cpu_amx=True, cpu_avx512=False))
    assert "AMX" not in {b.buffer for b in by_kind(prediction, "model")}


def test_amx_comes_before_repack_and_never_on_a_gpu_build() -> None:
    """q4_0 [256, 64] suits both AMX and CPU_REPACK: AMX is listed first. A GPU build's host
    weights go to the plain CPU buffer (CUDA_Host swapped for CPU with mmap)."""
    model = amx_model([("blk.0.attn_q.weight", (256, 64), "q4_0")])
    cpu = {b.buffer for b in by_kind(predict_memory(model, LlamaSettings(cpu_amx=True)), "model")}
    assert "AMX" in cpu and "CPU_REPACK" not in cpu
    gpu = predict_memory(model, LlamaSettings(cpu_amx=True, n_gpu_layers=0,
                                             gpu_capacities=(8 << 30,)))
    assert "AMX" not in {b.buffer for b in by_kind(gpu, "model")}
    no_extra = predict_memory(model, LlamaSettings(cpu_amx=True, cpu_repack=False))
    assert "AMX" not in {b.buffer for b in by_kind(no_extra, "model")}


def test_an_unset_amx_flag_asks_this_host(monkeypatch) -> None:
    """cpu_amx None (the default) means this machine's CPU, as llama.cpp's own build on it
    would see (ggml_backend_cpu_get_extra_buffer_types): with AMX the q4_0 weight is packed
    for AMX, without it not; either way as when the flag is given."""
    import gguf_inspect.llamacpp.placement as placement

    model = amx_model([("blk.0.attn_q.weight", (256, 64), "q4_0")])
    for has_amx in (True, False):
        monkeypatch.setattr(placement, "host_has_amx", lambda: has_amx)
        asked = predict_memory(model, LlamaSettings(cpu_avx512=False))
        given = predict_memory(model, LlamaSettings(cpu_amx=has_amx, cpu_avx512=False))
        assert asked.buffers == given.buffers
        assert ("AMX" in {b.buffer for b in by_kind(asked, "model")}) == has_amx


def test_tied_embedding_costs_vram_once_the_head_is_offloaded() -> None:
    """ngl = 1 moves only the output pseudo-layer (i_gpu_start = n_layer + 1 - ngl): the tied
    head becomes a CUDA0 copy while the input copy stays on the host."""
    prediction = predict_memory(tied_q4_0(), LlamaSettings(n_gpu_layers=1,
                                                          gpu_capacities=(8 << 30,)))
    gpu_model = [b for b in by_kind(prediction, "model") if b.device == "gpu0"]
    # the head copy: q4_0 [256, 512] = 73728 bytes, + row_size(q4_0, 512 - 256) = 144 of CUDA
    # row padding -> PAD(73872, 128) = 73984; output_norm f32 [256]: 1024
    assert [(b.buffer, b.n_bytes) for b in gpu_model] == [("CUDA0", 73984 + 1024)]
    output = by_kind(prediction, "output")[0]
    assert (output.device, output.buffer) == ("host", "CUDA_Host")


# ---- GPU rules on constructed cases -----------------------------------------------------------

def test_cuda_row_padding() -> None:
    """ggml_backend_cuda_buffer_type_get_alloc_size (ggml-cuda.cu): a quantized tensor with
    ne0 % 512 != 0 gets row_size(type, 512 - ne0 % 512) extra; float types none."""
    q4_0 = GGML_TYPE_BY_NAME["q4_0"].type_id
    assert cuda_row_padding(q4_0, 320) == (512 - 320) // 32 * 18  # 108
    assert cuda_row_padding(q4_0, 1024) == 0
    assert cuda_row_padding(GGML_TYPE_BY_NAME["f16"].type_id, 320) == 0
    q4_k = GGML_TYPE_BY_NAME["q4_k"].type_id
    assert cuda_row_padding(q4_k, 4864) == (5120 - 4864) // 256 * 144


def test_gpu_buffer_alignment_and_padding() -> None:
    """CUDA buffers sum PAD(nbytes + row padding, 128). attn_q q4_0 [320, 64]: 11520 bytes,
    + 108 row padding = 11628 -> 11648; the f32 norm [320]: 1280 -> 1280."""
    model = synthetic(n_embd=320, tensors=[
        ("token_embd.weight", (320, 512), "q8_0"),
        ("blk.0.attn_q.weight", (320, 64), "q4_0"), ("blk.0.attn_norm.weight", (320,), "f32"),
        ("blk.1.attn_q.weight", (320, 64), "q4_0"), ("blk.1.attn_norm.weight", (320,), "f32"),
        ("output.weight", (320, 512), "q8_0")], n_layer=2)
    prediction = predict_memory(model, LlamaSettings(n_gpu_layers=-1, gpu_capacities=(1 << 34,)))
    cuda = [b for b in by_kind(prediction, "model") if b.buffer == "CUDA0"]
    output_bytes = 320 // 32 * 34 * 512 + (512 - 320) // 32 * 34  # 174080 + 204
    assert cuda[0].n_bytes == 2 * (11648 + 1280) + (output_bytes + 127) // 128 * 128
    host = [b for b in by_kind(prediction, "model") if b.device == "host"]
    assert [b.buffer for b in host] == ["CPU_Mapped"]  # the input layer never leaves the host


@pytest.mark.parametrize("ngl, expected", [
    (0, ["host"] * 5),
    (1, ["host", "host", "host", "host", "gpu0"]),  # the output head first
    (2, ["host", "host", "host", "gpu0", "gpu0"]),  # then blocks from the end
    (-1, ["gpu0"] * 5),
    (99, ["gpu0"] * 5),
])
def test_layer_placement_from_the_end(ngl, expected) -> None:
    """load_tensors: i_gpu_start = max(n_layer + 1 - ngl, 0); layer n_layer is the output."""
    assert list(place_layers(4, ngl, (8 << 30,)).layer_device) == expected


def test_multi_gpu_split_by_capacity() -> None:
    """Splits are cumulative free memory normalised: 24 and 8 GiB -> [0.75, 1.0]. With all
    5 layers offloaded, layer il goes to upper_bound(splits, il / 5): 0.0, 0.2, 0.4, 0.6 -> gpu0,
    0.8 -> gpu1 (the output head)."""
    placement = place_layers(4, -1, (24 << 30, 8 << 30))
    assert list(placement.layer_device) == ["gpu0"] * 4 + ["gpu1"]
    # equal cards: [0.5, 1.0]; fractions 0, .2, .4 -> gpu0; .6, .8 -> gpu1
    assert list(place_layers(4, -1, (8 << 30, 8 << 30)).layer_device) == (
        ["gpu0"] * 3 + ["gpu1"] * 2)
    # exactly on a split point, upper_bound moves on: 2 layers of 4 offloaded on 1:1 cards
    assert list(place_layers(3, 2, (1, 1)).layer_device) == ["host", "host", "gpu0", "gpu1"]


def test_kv_cache_follows_layers_to_the_gpu() -> None:
    """With offload_kqv each layer's K/V lives on that layer's device; a quantized cache row
    padded like any CUDA tensor: q8_0 K of width 320 gets row_size(q8_0, 192) = 204 extra."""
    model = synthetic(n_embd=320, extra={"llama.attention.head_count": 5,
                                         "llama.attention.head_count_kv": 5})
    config = LlamaSettings(n_ctx=1024, n_gpu_layers=2, gpu_capacities=(1 << 34,),
                          cache_type_k="q8_0", flash_attn="on")
    kv = {b.buffer: b.n_bytes for b in by_kind(predict_memory(model, config), "kv")}
    k_layer = 320 // 32 * 34 * 1024  # 348160
    v_layer = 320 * 2 * 1024
    assert kv["CUDA0"] == (k_layer + 204 + 127) // 128 * 128 + v_layer  # block 1 only
    assert kv["CPU"] == k_layer + v_layer  # block 0 stays on the host
    off = LlamaSettings(n_ctx=1024, n_gpu_layers=-1, gpu_capacities=(1 << 34,), offload_kqv=False)
    assert {b.buffer for b in by_kind(predict_memory(model, off), "kv")} == {"CPU"}


def test_output_buffer() -> None:
    """llama_context::output_reserve(n_seq_max) at init: n_vocab floats per sequence."""
    prediction = predict_memory(synthetic(n_vocab=1000), LlamaSettings(n_parallel=3))
    assert [(b.buffer, b.n_bytes) for b in by_kind(prediction, "output")] == [("CPU", 4 * 3000)]


def test_recurrent_architectures_say_not_modelled() -> None:
    """A mamba header without its ssm.* widths: no cache is invented, and the note says what
    is left out and which keys would have told (the same text is the prediction's
    ``unmodelled`` reason, which makes vram's verdict "cannot tell")."""
    prediction = predict_memory(synthetic("mamba"), LlamaSettings())
    assert prediction.kv_caches == ()
    expected = ("mamba keeps recurrent state (llama-memory-recurrent.cpp) whose layers or widths "
                "(ssm.*, wkv.*, shortconv.* keys) are not known: not modelled, KV cache and "
                "state left out")
    assert prediction.unmodelled == expected and expected in prediction.notes


def test_compute_buffers_are_marked_as_estimates() -> None:
    """Weights, KV cache and output are exact bytes; the compute buffer is the graph
    allocator's simulated peak, marked not exact on the CPU and on each GPU alike."""
    for settings in (LlamaSettings(cpu_amx=False), LlamaSettings(gpu_capacities=(1 << 34,))):
        prediction = predict_memory(synthetic(), settings)
        assert [b.exact for b in by_kind(prediction, "compute")] == \
            [False] * len(by_kind(prediction, "compute"))
        assert all(b.exact is True for b in prediction.buffers if b.kind != "compute")


# ---- the compute-buffer simulation: ggml-alloc.c ----------------------------------------------

def test_allocator_best_fit_and_merging() -> None:
    """ggml_dyn_tallocr: best fit among free blocks except the last; frees merge."""
    allocator = compute_graph.DynamicAllocator(32)
    a, b, c = allocator.alloc(100), allocator.alloc(64), allocator.alloc(32)
    assert (a, b, c) == (0, 128, 192)  # 100 rounds up to 128
    allocator.free(a, 100)
    allocator.free(b, 64)  # merges with the block at 0: one 192-byte hole
    assert allocator.alloc(160) == 0
    assert allocator.max_size == 224


def test_inplace_reuse_keeps_the_peak_down() -> None:
    """ggml_gallocr_allocate_node: an in-place op (ADD) whose parent has no other consumer
    takes the parent's memory; a matmul cannot."""
    weight = compute_graph.Node("w", "NONE", 0, external=True)
    x = compute_graph.Node("x", "NONE", 1024, is_input=True)
    y = compute_graph.Node("y", "MUL_MAT", 1024, (weight, x))
    z = compute_graph.Node("z", "ADD", 1024, (y, weight))
    out = compute_graph.Node("out", "MUL_MAT", 512, (weight, z), is_output=True)
    # x (1024) + y (1024); z reuses y; x was freed after y, so out takes x's hole
    assert compute_graph.peak_bytes([y, z, out], 32) == 2048


def test_per_layer_array_of_the_wrong_length_is_a_format_error() -> None:
    """get_key_or_arr (llama-model-loader.cpp) refuses an array whose length is not n_layer."""
    from gguf_inspect.core.errors import FormatError

    model = synthetic(extra={"llama.attention.head_count_kv": array((2, 2, 2))})
    with pytest.raises(FormatError, match="llama.attention.head_count_kv"):
        predict_memory(model, LlamaSettings())


@pytest.mark.parametrize("n_layer", [513, 1 << 62, -3])
def test_a_block_count_llama_cpp_refuses_is_a_format_error_at_once(n_layer: int) -> None:
    """llama-hparams.h LLAMA_MAX_LAYERS 512: get_key_or_arr throws above it. A hostile
    block_count must not become a per-layer loop of 2^62 steps (found by benchmarks/fuzz.py)."""
    from gguf_inspect.core.errors import FormatError

    with pytest.raises(FormatError, match="llama.block_count"):
        predict_memory(synthetic(n_layer=n_layer), LlamaSettings())


def test_512_blocks_are_still_modelled() -> None:
    prediction = predict_memory(synthetic(n_layer=512), LlamaSettings(n_ctx=256))
    assert prediction.kv_caches[0].layers == 512


def test_host_compute_buffer_holds_every_graph_input_and_the_token_rows() -> None:
    """ggml_backend_sched_backend_id_from_cur (ggml-backend.cpp) puts GGML_TENSOR_FLAG_INPUT
    tensors on the last backend, the CPU, whose buffer is CUDA_Host on a CUDA build; the first
    GET_ROWS runs there too, beside the host-resident token_embd. By hand, n_ubatch 512 tokens
    over 512 cells, flash attention on (f16 mask), f16 cache (no rotations), n_embd 256:"""
    tokens, cells, n_embd = 512, 512, 256
    expected = (4 * tokens          # inp_tokens (int32)
                + 4 * tokens        # inp_pos (int32)
                + 8 * tokens        # k_idxs (int64)
                + 8 * tokens        # v_idxs (int64; one per token with flash attention)
                + 2 * cells * tokens  # the KQ mask, f16
                + 4 * tokens        # out_ids (int32)
                + 4 * n_embd * tokens  # inp_embd, the embeddings-input path (unused, allocated)
                + 4 * n_embd * tokens)  # the gathered token rows
    config = LlamaSettings(n_ctx=512, flash_attn="on", n_gpu_layers=-1, gpu_capacities=(1 << 34,))
    host = [b for b in predict_memory(synthetic(n_embd=n_embd), config).buffers
            if b.kind == "compute" and b.buffer == "CUDA_Host"]
    assert [b.n_bytes for b in host] == [expected]


def test_an_op_on_a_view_never_reuses_it_in_place() -> None:
    """ggml_gallocr_is_own (ggml-alloc.c): a view is never 'allocated' by the allocator, so
    ROPE on a reshaped Qcur gets fresh memory; this is why llama.cpp's buffer holds Qcur and
    its rotated copy at once."""
    def peak(through_view: bool) -> int:
        weight = compute_graph.Node("w", "NONE", 0, external=True)
        x = compute_graph.Node("x", "NONE", 1024, is_input=True)
        pos = compute_graph.Node("pos", "NONE", 32, is_input=True)
        q = compute_graph.Node("q", "MUL_MAT", 1024, (weight, x))
        nodes = [q]
        parent = q
        if through_view:
            parent = compute_graph.Node("q_view", "VIEW", 0, (q,), view_src=q)
            nodes.append(parent)
        rope = compute_graph.Node("rope", "ROPE", 1024, (parent, pos))
        out = compute_graph.Node("out", "MUL_MAT", 32, (rope, x), is_output=True)
        return compute_graph.peak_bytes(nodes + [rope, out], 32)

    # pos 0..32, x 32..1056 (alive until out), q 1056..2080; through a view rope needs its
    # own 1024 bytes (peak 3104); on q directly it takes q's place (peak 2080), and out takes
    # the 32 bytes pos leaves free once rope is done
    assert peak(through_view=True) == 3104
    assert peak(through_view=False) == 2080


@pytest.mark.parametrize("cache_type, heads, largest, expected", [
    ("q8_0", (128, 128), True, 128),  # K: the largest power of two from 64 dividing 128
    ("q4_0", (64,), True, 64),
    ("q8_0", (192,), True, 64),  # 192 % 128 != 0
    ("q8_0", (128,), False, 64),  # V: always 64
    ("q8_0", (96,), True, 0),  # not a multiple of 64
    ("q8_0", (64, 128), True, 0),  # head sizes differ across layers
    ("f16", (128,), True, 0),  # only quantized caches are rotated
    ("q8_0", (0, 0), True, 0),  # no heads (mamba): n_embd_head_k_all > 0 fails
    ("q8_0", (0,), False, 0),
])
def test_hadamard_rotation_of_quantized_caches(cache_type, heads, largest, expected) -> None:
    """llama_kv_cache's attn_rot_k / attn_rot_v and build_input_k_rot (llama-kv-cache.cpp)."""
    assert rotation_size(cache_type, heads, largest) == expected


def test_graph_builder_orders_nodes_as_ggml_build_forward_expand() -> None:
    """ggml_visit_parents_graph: sources depth first, first source first, each node once, leafs
    (weights, inputs) never nodes; a view of a view keeps the base as its view_src."""
    graph = compute_graph.GraphBuilder(n_embd=4)
    x = compute_graph.Node("x", "NONE", 64, is_input=True)
    gate = graph.add("gate", "MUL_MAT", 8, graph.weight, x)
    up = graph.add("up", "MUL_MAT", 8, graph.weight, x)  # created first, visited second
    glu = graph.add("glu", "GLU", 8, gate, up)
    graph.expand(up)
    graph.expand(graph.add("out", "MUL_MAT", 4, graph.weight, glu))
    assert [node.name for node in graph.nodes] == ["up", "gate", "glu", "out"]
    inner = graph.view(gate)
    assert graph.view(inner).view_src is gate
