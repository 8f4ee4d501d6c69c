"""One test per memory rule that a one-line change could break unnoticed (issue 21).

Each expected value comes from first principles (gguf-py's tensor bytes, block sizes) and the
llama.cpp source of llama-cpp-python 0.3.36, file and function cited. Only the public contract
of the memory model is used (predict_memory, read_hyperparameters, LlamaSettings and the
BufferEstimate/KVCacheEstimate results), so the tests survive the module's split.
"""

from __future__ import annotations

import gguf
import pytest

from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.conftest import fixture_path
from tests.test_memory import array, load, synthetic

GIB = 1 << 30
CPU_FLAGS = {"cpu_avx512": False, "cpu_amx": False}
CPU_ONLY = LlamaSettings(**CPU_FLAGS)


def model_buffers(prediction) -> dict[str, int]:
    return {b.buffer: b.n_bytes for b in prediction.buffers if b.kind == "model"}


def test_cuda_host_holds_unpadded_rows() -> None:
    """The CUDA 512-row padding is ggml_backend_cuda_buffer_type_get_alloc_size's
    (ggml-cuda.cu), for CUDA device buffers only; the pinned host buffer (CUDA_Host, used for
    CPU weights without mmap) is ggml_backend_cuda_host_buffer_type with the CPU's
    get_alloc_size: ggml_nbytes padded to 32. e320, ngl 1: only the output layer is offloaded
    (i_gpu_start = n_layer + 1 - ngl, llama-model.cpp load_tensors)."""
    path = fixture_path("tiny-llama-e320-q4_k_m.gguf")
    on_gpu = {"output.weight", "output_norm.weight"}
    expected = sum((int(t.n_bytes) + 31) // 32 * 32 for t in gguf.GGUFReader(path).tensors
                   if t.name not in on_gpu)
    prediction = predict_memory(load(path.name), LlamaSettings(
        use_mmap=False, n_gpu_layers=1, gpu_capacities=(24 * GIB,)))
    assert model_buffers(prediction)["CUDA_Host"] == expected == 773_760


REPACK_TENSORS = [("blk.0.attn_q.weight", (256, 8), "q4_0"), ("blk.0.attn_k.weight", (256, 12), "q4_0"),
                  ("blk.0.attn_v.weight", (256, 4), "q4_0"), ("blk.0.ffn_up.weight", (256, 16), "q2_K")]


def test_repack_needs_eight_rows_and_q2_k_needs_avx512() -> None:
    """ggml_repack_get_optimal_repack_type (ggml-cpu/repack.cpp, x86): q4_0 -> q4_0_8x8 when
    AVX2 and ne[1] % 8 == 0; q2_K -> q2_K_8x8 only when AVX512 and ne[1] % 8 == 0."""
    model = synthetic(tensors=REPACK_TENSORS)
    shapes = {name: (ne, t) for name, ne, t in REPACK_TENSORS}
    row = {"q4_0": 256 // 32 * 18, "q2_K": 84}  # bytes of one 256-wide row

    def bytes_of(*names: str) -> int:
        return sum(row[shapes[n][1]] * shapes[n][0][1] for n in names)

    avx2 = model_buffers(predict_memory(model, CPU_ONLY))
    assert avx2["CPU_REPACK"] == bytes_of("blk.0.attn_q.weight")  # 8 rows; not 12, not 4
    avx512 = model_buffers(predict_memory(model, LlamaSettings(cpu_avx512=True, cpu_amx=False)))
    assert avx512["CPU_REPACK"] == bytes_of("blk.0.attn_q.weight", "blk.0.ffn_up.weight")


def test_embeddings_add_n_embd_floats_per_output() -> None:
    """output_reserve (llama-context.cpp): n_vocab logits and n_embd_out embeddings per output,
    n_outputs_max = n_seq_max at init; 4-byte floats."""
    model = load("tiny-llama-untied-q4_k_m.gguf")  # n_vocab 384, n_embd 256
    prediction = predict_memory(model, LlamaSettings(n_parallel=3, embeddings=True))
    (output,) = [b for b in prediction.buffers if b.kind == "output"]
    assert output.n_bytes == 4 * (384 * 3 + 256 * 3)


def test_dense_first_swa_pattern() -> None:
    """llama_hparams::set_swa_pattern (llama-hparams.cpp), dense_first: is_swa = il % n_pattern
    != 0; cohere2moe uses n_pattern 4, dense first (models/cohere2moe.cpp)."""
    model = synthetic("cohere2moe", n_layer=8, extra={"cohere2moe.attention.sliding_window": 512})
    hparams = read_hyperparameters(model)
    assert [il for il in range(8) if hparams.is_swa[il]] == [1, 2, 3, 5, 6, 7]


def test_gemma3n_layers_from_twenty_share_earlier_kv() -> None:
    """models/gemma3n.cpp: hparams.n_layer_kv_from_start = 20, so a 30-layer gemma3n keeps
    KV for layers 0..19 only (llama_hparams::has_kv)."""
    model = synthetic("gemma3n", n_layer=30, extra={"gemma3n.attention.sliding_window": 512,
                                                    "gemma3n.attention.head_count_kv": 1})
    prediction = predict_memory(model, LlamaSettings(n_ctx=256))
    assert sum(cache.layers for cache in prediction.kv_caches) == 20


def test_the_nextn_layer_has_no_kv_in_the_trunk() -> None:
    """create_memory's layer filter (llama-model.cpp): il < hparams.n_layer(), which leaves out
    the nextn_predict_layers trailing (MTP) blocks."""
    model = synthetic("glm4moe", n_layer=3, extra={"glm4moe.nextn_predict_layers": 1,
                                                   "glm4moe.attention.head_count_kv": 1})
    prediction = predict_memory(model, LlamaSettings(n_ctx=256))
    assert [cache.layers for cache in prediction.kv_caches] == [2]


def test_swa_layers_use_key_length_swa() -> None:
    """llama_model_base::load_hparams (llama-model.cpp): n_embd_head_k_swa from
    attention.key_length_swa; n_embd_head_k(il) picks it on SWA layers (llama-hparams.cpp).
    gemma2: pattern 2, layer 0 SWA. K bytes = head * n_head_kv * cells * 2 (f16)."""
    model = synthetic("gemma2", n_layer=2, extra={
        "gemma2.attention.head_count_kv": 1, "gemma2.attention.key_length": 256,
        "gemma2.attention.value_length": 256, "gemma2.attention.key_length_swa": 128,
        "gemma2.attention.value_length_swa": 128})
    prediction = predict_memory(model, LlamaSettings(n_ctx=1024))
    caches = {cache.name: cache for cache in prediction.kv_caches}
    assert caches["SWA"].layers == 1 and caches["SWA"].cells == 1024
    assert caches["SWA"].k_bytes == 128 * 1 * 1024 * 2
    assert caches[""].k_bytes == 256 * 1 * 1024 * 2


def test_host_flags_are_what_the_native_build_compiled_in() -> None:
    """A native build compiles in this CPU's features; llama_print_system_info (llama.h) lists
    them: "AVX512 = 1" is ggml_cpu_has_avx512 (__AVX512F__), "AMX_INT8 = 1" ggml_cpu_has_amx_int8
    (__AMX_INT8__, which the AMX buffer type also needs __AVX512VNNI__ for: "AVX512_VNNI = 1")."""
    import pytest

    llama_cpp = pytest.importorskip("llama_cpp")
    from gguf_inspect.llamacpp.cpu_buffers import host_has_amx, host_has_avx512

    info = llama_cpp.llama_print_system_info().decode()
    assert host_has_avx512() == ("AVX512 = 1" in info)
    assert host_has_amx() == ("AMX_INT8 = 1" in info and "AVX512_VNNI = 1" in info)


def _tensor(ne: tuple[int, ...], type_name: str = "q4_0"):
    from gguf_inspect.core.constants import GGML_TYPES, row_bytes
    from gguf_inspect.core.model import TensorInfo

    (type_id,) = [i for i, t in GGML_TYPES.items() if t.name == type_name]
    rows = 1
    for size in ne[1:]:
        rows *= size
    return TensorInfo("w", ne, type_id, 0, row_bytes(type_id, ne[0]) * rows, 0)


def test_repack_counts_dimensions_like_ggml_n_dims() -> None:
    """ggml_n_dims (ggml.c) ignores trailing dimensions of size 1, and the CPU_REPACK
    buffer's supports_op (ggml-cpu/repack.cpp, extra_buffer_type::supports_op) wants
    ggml_n_dims(op->src[0]) == 2 for MUL_MAT and == 3 for MUL_MAT_ID; a tensor that is no
    MUL_MAT weight (matmul_dims None: token_embd's GET_ROWS) is never repacked."""
    from gguf_inspect.llamacpp.cpu_buffers import repacks

    assert repacks(_tensor((64, 16)), 2, avx512=False)
    assert not repacks(_tensor((64, 16)), None, avx512=False)
    assert repacks(_tensor((64, 16, 1)), 2, avx512=False)  # ne[2] == 1: 2-D
    assert not repacks(_tensor((64, 16, 1)), 3, avx512=False)  # one expert: not 3-D
    assert repacks(_tensor((64, 16, 2)), 3, avx512=False)  # two experts: 3-D
    assert not repacks(_tensor((64, 16, 2)), 2, avx512=False)


def test_amx_sizes_are_whole_bytes() -> None:
    """ggml_backend_amx_get_alloc_size (ggml-cpu/amx/mmq.cpp): ne[1] rows of
    get_row_size(ne[0]) = (ne[0] / block) * (type size + extra) bytes; q4_0 has no extra."""
    from gguf_inspect.llamacpp.cpu_buffers import amx_alloc_size

    size = amx_alloc_size(_tensor((64, 32)))
    assert size == 32 * 2 * 18 and type(size) is int


def test_no_context_length_and_no_n_ctx_is_refused_naming_the_key() -> None:
    """llama.cpp takes n_ctx 0 as "the trained context" (llama_context::llama_context); with no
    trained context either there is nothing to size the cache with."""
    import pytest

    from gguf_inspect.core.errors import FormatError
    from gguf_inspect.llamacpp.kv_cache import resolve_context

    hparams = read_hyperparameters(synthetic(extra={"llama.context_length": 0}))
    with pytest.raises(FormatError) as raised:
        resolve_context(hparams, LlamaSettings(n_ctx=0))
    assert raised.value.message == "n_ctx is 0 and the model has no context_length"
    assert raised.value.field == "context_length"


def test_the_resolved_context_is_whole_numbers_and_passes_the_settings_on() -> None:
    """n_ctx_seq = GGML_PAD(n_ctx / n_seq_max, 256) in integer arithmetic (uint32_t,
    llama_context::llama_context): 5000 -> 5120, 5120 / 3 = 1706 -> 1792 cells."""
    from gguf_inspect.llamacpp.kv_cache import resolve_context

    hparams = read_hyperparameters(synthetic())
    context = resolve_context(hparams, LlamaSettings(n_ctx=5000, n_parallel=3))
    assert (context.n_ctx_seq, context.n_ctx) == (1792, 5376)
    assert all(type(value) is int for value in (context.n_ctx, context.n_ctx_seq,
                                                context.n_batch, context.n_ubatch))
    assert context.n_ctx_train == 4096
    assert resolve_context(hparams, LlamaSettings(kv_unified=True)).kv_unified is True


def test_an_encoder_keeps_its_batch_size() -> None:
    """llama_context::llama_context: "with causal attention, the batch size is limited by the
    context size" (cparams.n_batch = causal_attn ? min(n_ctx, n_batch) : n_batch)."""
    from gguf_inspect.llamacpp.kv_cache import resolve_context

    causal = read_hyperparameters(synthetic())
    encoder = read_hyperparameters(synthetic(extra={"llama.attention.causal": False}))
    assert not encoder.causal_attn
    settings = LlamaSettings(n_ctx=512, n_batch=2048, n_ubatch=4096)
    assert resolve_context(causal, settings).n_batch == 512
    assert (resolve_context(encoder, settings).n_batch,
            resolve_context(encoder, settings).n_ubatch) == (2048, 2048)


def test_kv_and_output_buffers_are_exact_and_kv_buffers_come_in_name_order() -> None:
    """The KV cache and the output buffer are sized, not estimated. llama_kv_cache keeps one
    context per buffer type in a std::map ordered by ggml_backend_buft_comparator (strcmp of
    the names, llama-kv-cache.cpp), so "CPU" comes before "CUDA0" whatever the layers' order.
    ngl 2 of 2 layers + output: layer 0 stays on the CPU (i_gpu_start = n_layer + 1 - ngl)."""
    model = synthetic()
    cpu = predict_memory(model, CPU_ONLY)
    for buffer in cpu.buffers:
        if buffer.kind in ("kv", "output"):
            assert buffer.exact is True and buffer.device == "host", buffer
    split = predict_memory(model, LlamaSettings(n_gpu_layers=2, gpu_capacities=(24 * GIB,),
                                                cpu_avx512=False, cpu_amx=False))
    kv = [(b.device, b.buffer) for b in split.buffers if b.kind == "kv"]
    assert kv == [("host", "CPU"), ("gpu0", "CUDA0")]


def test_an_mla_cache_has_no_v_bytes() -> None:
    """llama_kv_cache::llama_kv_cache (llama-kv-cache.cpp): `has_v = !is_mla`, so an MLA model
    (deepseek2 with kv_lora_rank) creates K tensors only: V is 0 bytes, not a padded stub
    (the log's "V (f16): 0.00 MiB" cannot tell 1 byte from none)."""
    prediction = predict_memory(load("zoo/deepseek2-mla.gguf"), CPU_ONLY)
    assert [cache.v_bytes for cache in prediction.kv_caches] == [0]
    assert prediction.kv_caches[0].k_bytes > 0


def test_the_prediction_says_when_llama_cpp_refuses_an_mla_context() -> None:
    """llama_init_from_model (llama-context.cpp:3835) refuses different K and V cache types
    for an MLA model; the same types for a dense llama pass that check. The prediction's notes
    say so (the CLI refuses before predicting: tests/test_vram.py)."""
    mixed = LlamaSettings(cache_type_k="f16", cache_type_v="bf16", **CPU_FLAGS)
    refused = ("an MLA model needs one K and V cache type (f16 and bf16 given): llama.cpp "
               "refuses this context")
    assert refused in predict_memory(load("zoo/deepseek2-mla.gguf"), mixed).notes
    assert not any("refuses" in note for note in predict_memory(load("zoo/qwen3.gguf"),
                                                                mixed).notes)


def test_the_flash_attention_probe_is_reported() -> None:
    """--flash-attn auto: llama_context::resolve_fused_ops turns it off when the probe graph's
    FLASH_ATTN_EXT runs off its layer's device, as lfm2's does with the KV cache on the host
    (-nkvo; the RPC cases of tests/test_rpc_devices.py hold the buffers to llama.cpp's). The
    prediction's one flash-attention note then says off and why; every other note stays."""
    from gguf_inspect.llamacpp.memory import FLASH_ON_NOTE, FLASH_PROBE_NOTE

    model = load("zoo/lfm2.gguf")
    gpu = {"gpu_capacities": (8 * GIB,), **CPU_FLAGS}
    offloaded = predict_memory(model, LlamaSettings(**gpu)).notes
    probed = predict_memory(model, LlamaSettings(offload_kqv=False, **gpu))
    on_host = probed.notes
    assert probed.context.flash_attn is False  # resolved off (vram's JSON: flash_attn_enabled)
    assert FLASH_ON_NOTE in offloaded and FLASH_PROBE_NOTE not in offloaded
    assert FLASH_PROBE_NOTE in on_host and FLASH_ON_NOTE not in on_host
    assert set(offloaded) - {FLASH_ON_NOTE} == set(on_host) - {FLASH_PROBE_NOTE}
    assert len(offloaded) == len(on_host)


def test_a_sliding_window_encoder_attends_over_the_ubatch_on_every_layer() -> None:
    """build_attn_inp_no_cache (llama-graph.cpp:2757-2781): an encoder has no KV cache, and
    both its masks, the sliding-window one too, are n_tokens x n_tokens; gemma-embedding's
    five of six sliding-window layers see the reserved ubatch (512 tokens) like its global one.
    A decoder's layers see the cache: n_ctx_seq cells, a sliding-window cache's fewer
    (without --swa-full: PAD(min(4096, 128 + 512), 256) = 768)."""
    from gguf_inspect.llamacpp.graph_layout import GraphLayout
    from gguf_inspect.llamacpp.kv_cache import resolve_context
    from gguf_inspect.llamacpp.memory import graph_shape

    encoder = synthetic("gemma-embedding", n_layer=6, extra={
        "gemma-embedding.attention.sliding_window": 128,
        "gemma-embedding.attention.layer_norm_rms_epsilon": 1e-6})
    hparams = read_hyperparameters(encoder)
    assert hparams.is_swa == (True,) * 5 + (False,)
    context = resolve_context(hparams, LlamaSettings(n_ctx=4096))
    shape = graph_shape(hparams, context, [], GraphLayout(), 512)
    assert shape.n_kv == (512,) * 6
    decoder = load("tiny-gemma3-swa-q4_k_m.gguf")
    prediction = predict_memory(decoder, LlamaSettings(n_ctx=4096, swa_full=False, **CPU_FLAGS))
    hparams = read_hyperparameters(decoder)
    shape = graph_shape(hparams, prediction.context, list(prediction.kv_caches), GraphLayout(),
                        512)
    swa_cells = {cache.name: cache.cells for cache in prediction.kv_caches}["SWA"]
    assert shape.n_kv == tuple(swa_cells if swa else 4096 for swa in hparams.is_swa)
    assert swa_cells == 768 and any(hparams.is_swa) and not all(hparams.is_swa)


def test_a_quantized_cache_on_cuda_pads_k_and_v_rows() -> None:
    """ggml_backend_cuda_buffer_type_get_alloc_size (ggml-cuda.cu): a quantized tensor whose
    ne[0] is not a multiple of MATRIX_ROW_PADDING (512) gets ggml_row_size(type, 512 - ne0 %
    512) more bytes, once per tensor; the CUDA buffer aligns each tensor to 128 bytes.
    K and V of each layer are [256, 1024 cells] q8_0 (n_embd 256, 4 heads, 4 KV heads):
    272 bytes a row (8 blocks of 34), + 272 padding, rounded up to 128."""
    settings = LlamaSettings(n_ctx=1024, n_gpu_layers=99, gpu_capacities=(24 * GIB,),
                             cache_type_k="q8_0", cache_type_v="q8_0", flash_attn="on",
                             cpu_avx512=False, cpu_amx=False)
    prediction = predict_memory(synthetic(extra={"llama.attention.head_count_kv": 4}),
                                settings)
    per_tensor = (272 * 1024 + 272 + 127) // 128 * 128
    kv = {b.buffer: b.n_bytes for b in prediction.buffers if b.kind == "kv"}
    assert kv == {"CUDA0": 2 * 2 * per_tensor}


# ---- placement (llama_model_base::load_tensors, llama_model_loader::create_tensor) -----------

NO_EXTRA_CPU = LlamaSettings(cpu_avx512=False, cpu_amx=False)


def _buffers_of(model, settings: LlamaSettings) -> dict[str, str]:
    """tensor name -> buffer type (the duplicate of a tied head as "name (output)")."""
    from gguf_inspect.llamacpp.placement import place_tensors, placement_for

    hparams = read_hyperparameters(model)
    placed = place_tensors(model, hparams, placement_for(hparams.n_layer, settings), settings)
    return {p.tensor.name + (" (output)" if p.duplicate else ""): p.buffer for p in placed}


def test_only_matmul_weights_repack() -> None:
    """CPU_REPACK's supports_op (ggml-cpu/repack.cpp) takes MUL_MAT on a 2-D weight and
    MUL_MAT_ID on a 3-D one: a norm (GGML_OP_MUL) or a bias (GGML_OP_ADD) stays in the mapped
    buffer even when it is a q4_0 matrix; experts ([ne0, ne1, n_expert], MUL_MAT_ID) repack."""
    model = synthetic(tensors=[("blk.0.attn_q.weight", (64, 16), "q4_0"),
                               ("blk.0.attn_norm.weight", (64, 16), "q4_0"),
                               ("blk.0.attn_k.norm.weight", (64, 16), "q4_0"),
                               ("blk.0.attn_q.bias", (64, 16), "q4_0"),
                               ("blk.0.ffn_up_exps.weight", (64, 16, 4), "q4_0")])
    assert _buffers_of(model, NO_EXTRA_CPU) == {
        "blk.0.attn_q.weight": "CPU_REPACK", "blk.0.attn_norm.weight": "CPU_Mapped",
        "blk.0.attn_k.norm.weight": "CPU_Mapped", "blk.0.attn_q.bias": "CPU_Mapped",
        "blk.0.ffn_up_exps.weight": "CPU_REPACK"}


def test_q2_k_repacks_only_where_the_build_has_avx512() -> None:
    """ggml_repack_get_optimal_repack_type (x86): q2_K needs AVX512; unset, the setting is the
    native build's, i.e. this CPU's (pinned to llama_print_system_info above)."""
    from gguf_inspect.llamacpp.cpu_buffers import host_has_avx512

    model = synthetic(tensors=[("blk.0.attn_q.weight", (256, 16), "q2_K")])
    expected = "CPU_REPACK" if host_has_avx512() else "CPU_Mapped"
    assert _buffers_of(model, LlamaSettings(cpu_amx=False)) == {"blk.0.attn_q.weight": expected}
    assert _buffers_of(model, NO_EXTRA_CPU) == {"blk.0.attn_q.weight": "CPU_Mapped"}


def test_rope_freqs_lives_with_layer_0() -> None:
    """llama-model.cpp creates rope_freqs for layer 0 and marks the other layers' use
    TENSOR_DUPLICATED, so it takes layer 0's buffer: with ngl 2 of 2 layers (+ output) layer 0
    is on the CPU and layer 1 on the GPU."""
    model = synthetic(tensors=[("rope_freqs.weight", (32,), "f32"),
                               ("blk.1.attn_q.weight", (256, 256), "f16")])
    settings = LlamaSettings(n_gpu_layers=2, gpu_capacities=(24 * GIB,), cpu_amx=False)
    assert _buffers_of(model, settings) == {"rope_freqs.weight": "CPU_Mapped",
                                            "blk.1.attn_q.weight": "CUDA0"}


def test_cuda_host_aligns_like_the_cpu() -> None:
    """ggml_backend_cuda_host_buffer_type takes the CPU buffer type's get_alignment
    (TENSOR_ALIGNMENT 32, ggml-cuda.cu), not the device's 128: a 160-byte norm takes 160."""
    model = synthetic(tensors=[("blk.0.attn_norm.weight", (40,), "f32")])
    prediction = predict_memory(model, LlamaSettings(use_mmap=False, n_gpu_layers=0,
                                                     gpu_capacities=(24 * GIB,)))
    assert model_buffers(prediction) == {"CUDA_Host": 160}


def test_a_tied_head_in_the_same_buffer_is_not_copied() -> None:
    """llama_model_loader::create_tensor with TENSOR_DUPLICATED returns the tensor already in
    that buffer type's context; a copy is made only in another buffer type (here CPU_REPACK,
    whose device is the host)."""
    q6 = synthetic(tensors=[("token_embd.weight", (256, 512), "q6_K")])
    no_mmap = LlamaSettings(use_mmap=False, cpu_avx512=False, cpu_amx=False)
    assert _buffers_of(q6, no_mmap) == {"token_embd.weight": "CPU"}
    assert model_buffers(predict_memory(q6, no_mmap)) == {"CPU": 210 * 512}  # one 210-byte q6_K block a row, once
    q4 = synthetic(tensors=[("token_embd.weight", (256, 512), "q4_0")])
    assert _buffers_of(q4, no_mmap) == {"token_embd.weight": "CPU",
                                        "token_embd.weight (output)": "CPU_REPACK"}
    repack = [b for b in predict_memory(q4, no_mmap).buffers if b.buffer == "CPU_REPACK"]
    assert [(b.device, b.n_bytes, b.exact) for b in repack] == [("host", 18 * 8 * 512, True)]


def test_pad_is_ggml_pad() -> None:
    """GGML_PAD(x, n) = ((x + n - 1) / n) * n (ggml.h)."""
    from gguf_inspect.llamacpp.placement import pad

    assert [pad(value, 32) for value in (0, 1, 32, 33, 63, 64)] == [0, 32, 32, 64, 64, 64]


def test_an_override_is_the_first_pattern_that_matches() -> None:
    """llama_model_loader::create_tensor tries every override in order (std::regex_search) and
    the first match wins; a CUDA device that is not there is refused (common/arg.cpp lists the
    buffer types of the devices present)."""
    import pytest

    from gguf_inspect.llamacpp.placement import override_device

    one_gpu = LlamaSettings(gpu_capacities=(1,))
    overrides = (("attn", "CUDA0"), ("ffn", "CPU"), ("up", "CUDA0"))
    assert override_device("blk.0.ffn_up.weight", overrides, one_gpu) == "host"
    assert override_device("blk.0.output.weight", overrides, one_gpu) is None
    with pytest.raises(ValueError) as raised:
        override_device("blk.0.ffn_up.weight", (("ffn", "CUDA1"),), one_gpu)
    assert str(raised.value) == "unknown buffer type CUDA1 (--override-tensor): 1 GPU(s) given"


def test_layer_split_follows_llama_cpp() -> None:
    """load_tensors (llama-model.cpp): act_gpu_layers = min(ngl, n_layer + 1); layer il goes to
    upper_bound(splits, float(il - i_gpu_start) / act_gpu_layers); an all-zero --tensor-split
    means "by free memory", missing trailing shares are 0; --split-mode none puts the offloaded
    layers on main_gpu, which must exist ("invalid value for main_gpu", src/llama.cpp)."""
    import pytest

    from gguf_inspect.llamacpp.placement import place_layers

    two = (8 * GIB, 8 * GIB)
    # 3 layers + output, all offloaded: 0/4, 1/4 < 0.5 <= 2/4, 3/4
    assert place_layers(3, 99, two).layer_device == ("gpu0", "gpu0", "gpu1", "gpu1")
    assert place_layers(3, 99, two, tensor_split=(0.0, 0.0)).layer_device == (
        "gpu0", "gpu0", "gpu1", "gpu1")
    assert place_layers(3, 99, two, tensor_split=(1.0,)).layer_device == ("gpu0",) * 4
    assert place_layers(2, 1, two, split_mode="none", main_gpu=1).layer_device == (
        "host", "host", "gpu1")
    with pytest.raises(ValueError) as raised:
        place_layers(2, 99, (8 * GIB,), split_mode="none", main_gpu=1)
    assert str(raised.value) == "--main-gpu 1: there are 1 GPU(s)"


def test_a_skipped_nextn_tensor_does_not_end_the_loading() -> None:
    """load_arch_tensors flags the NextN/MTP block TENSOR_SKIP (ml.load_mtp is false by
    default); the loader finds tensors by name, so a skipped one first in the file says
    nothing about the ones after it."""
    model = synthetic("glm4moe", extra={"glm4moe.nextn_predict_layers": 1},
                      tensors=[("blk.1.attn_q.weight", (256, 256), "f16"),
                               ("blk.0.attn_q.weight", (256, 256), "f16")])
    assert _buffers_of(model, NO_EXTRA_CPU) == {"blk.0.attn_q.weight": "CPU_Mapped"}


def test_a_block_past_n_layer_is_in_no_buffer_for_any_architecture(tmp_path) -> None:
    """n_layer() = block_count - nextn_predict_layers for every architecture (load_hparams reads
    the key for all, src/llama-model.cpp; LLAMA_LOAD_LOCALS). llama's load_arch_tensors loops
    only to n_layer(), so the last block's tensors are never created: in no buffer, and the
    real load refuses the file for the tensors it did not create."""
    from gguf_inspect.core.errors import RuntimeUnavailableError
    from gguf_inspect.llamacpp.runtime import capture_load
    from tests.test_audit import _copy

    model = synthetic("llama", extra={"llama.nextn_predict_layers": 1},
                      tensors=[("blk.1.attn_q.weight", (256, 256), "f16"),
                               ("blk.0.attn_q.weight", (256, 256), "f16")])
    assert _buffers_of(model, NO_EXTRA_CPU) == {"blk.0.attn_q.weight": "CPU_Mapped"}

    path = _copy(tmp_path / "nextn.gguf", overrides={
        "llama.nextn_predict_layers": (1, gguf.GGUFValueType.UINT32, None)})
    with pytest.raises(RuntimeUnavailableError) as refused:
        capture_load(str(path), LlamaSettings())
    assert "wrong number of tensors" in str(refused.value)


ESTIMATE = "compute buffer is an estimate of the graph allocator's peak (not exact)"
AUTO_FA = "flash_attn auto resolved to on (the CPU and CUDA backends support it)"
CUDA_RULES = ("GPU buffers follow the CUDA backend's rules (128-byte alignment, quantized rows "
              "padded to 512); other backends differ")
RPC_RULES = ("the devices are RPC servers each serving one CPU device (32-byte alignment, no row "
             "padding, no pinned host buffer, no op_offload: ggml-rpc.cpp); a server backed by "
             "CUDA would follow CUDA's rules")
SPLIT = ("each GPU's compute buffer is its share of the graph as ggml_backend_sched splits it "
         "(the CUDA context itself, a few hundred MiB, is not counted: use --headroom)")
OP_OFFLOAD = ("weights left on the host have their large-batch matmuls run on the first GPU "
              "(op_offload), which holds a copy of each in turn: GPU memory is not monotone in "
              "--ngl")
SHARED_KV = "layers that reuse another layer's KV cache hold none of their own"


@pytest.mark.parametrize("arch, settings, expected", [
    ("llama", LlamaSettings(flash_attn="on", cpu_amx=False), [ESTIMATE]),
    ("llama", LlamaSettings(cpu_amx=False), [ESTIMATE, AUTO_FA]),
    ("llama", LlamaSettings(flash_attn="off", cache_type_v="q8_0", cpu_amx=False),
     [ESTIMATE, "a quantized V cache needs flash attention: llama.cpp refuses this context"]),
    ("gemma3n", LlamaSettings(flash_attn="on", cpu_amx=False), [ESTIMATE, SHARED_KV]),
    ("gemma4", LlamaSettings(flash_attn="on", cpu_amx=False), [ESTIMATE, SHARED_KV]),
    ("llama", LlamaSettings(flash_attn="on", gpu_capacities=(GIB,)),
     [ESTIMATE, CUDA_RULES, SPLIT, OP_OFFLOAD]),
    ("llama", LlamaSettings(flash_attn="on", op_offload=False, gpu_capacities=(GIB,)),
     [ESTIMATE, CUDA_RULES, SPLIT]),
    ("llama", LlamaSettings(flash_attn="on", rpc="127.0.0.1:1", gpu_capacities=(GIB,)),
     [ESTIMATE, RPC_RULES, SPLIT]),
    ("llama", LlamaSettings(flash_attn="on", rpc="127.0.0.1:1", cpu_amx=False), [ESTIMATE]),
])
def test_the_notes_say_what_the_prediction_assumes(arch, settings, expected) -> None:
    """One note per assumption, only when it applies: the estimate, flash attention's auto
    resolution, llama_context's refusal, gemma3n/gemma4's shared KV layers, the device kind's
    rules (CUDA or RPC: ggml-rpc.cpp), the scheduler's split and, on CUDA only (RPC's
    offload_op is NULL), op_offload."""
    from gguf_inspect.llamacpp import memory

    extra = {"gemma4.attention.sliding_window_pattern": array((True, False))} \
        if arch == "gemma4" else {}
    hparams = read_hyperparameters(synthetic(arch, extra=extra))
    assert memory._notes(hparams, settings) == expected


def test_token_embd_norm_lives_on_layer_0s_device() -> None:
    """LLM_TENSOR_TOKEN_EMBD_NORM is a repeating-layer tensor (llama-arch.cpp: "do the norms on
    the first layer (not the input layer)") that bert.cpp and rwkv7.cpp create for block 0: with
    one layer offloaded (the output pseudo-layer, rwkv7 has 2 blocks) it stays on the host with
    block 0 while output_norm goes to the GPU; with every layer offloaded it is on the GPU."""
    model = load(fixture_path("zoo/rwkv7.gguf"))
    partial = _buffers_of(model, LlamaSettings(n_gpu_layers=1, gpu_capacities=(1 << 30,)))
    assert partial["output_norm.weight"] == "CUDA0"
    assert partial["token_embd_norm.weight"] == partial["blk.0.attn_norm.weight"] != "CUDA0"
    full = _buffers_of(model, LlamaSettings(n_gpu_layers=-1, gpu_capacities=(1 << 30,)))
    assert full["token_embd_norm.weight"] == "CUDA0"
