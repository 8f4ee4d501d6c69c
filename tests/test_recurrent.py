"""The recurrent state's rules (llamacpp/recurrent.py) from llama.cpp's source, where the zoo's
real loads cannot tell: falcon-h1 (no zoo model), a qwen3next NextN block, exact RS bytes (the
log prints MiB with two decimals), and the state's device with and without --no-kv-offload.

Expected values come from llama.cpp 0.3.36's source: llama_model::create_memory's filters
(src/llama-model.cpp), llama_memory_recurrent's tensors (src/llama-memory-recurrent.cpp: r and s
of n_embd_r / n_embd_s floats per cell, mem_size = max(1, n_seq_max) cells) and
llama_hparams::n_embd_r / n_embd_s for Mamba2 (src/llama-hparams.cpp).
"""

from __future__ import annotations

from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.recurrent import attention_filter, recurrent_filter
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.test_memory import array, by_kind, synthetic

# Mamba2 state widths of fixtures/zoo.py (d_conv 4, d_inner 128, d_state 16, n_group 1)
SSM = {"ssm.conv_kernel": 4, "ssm.inner_size": 128, "ssm.state_size": 16,
       "ssm.time_step_rank": 8, "ssm.group_count": 1}
N_EMBD_R = (4 - 1) * (128 + 2 * 1 * 16)  # (d_conv - 1) * (d_inner + 2 * n_group * d_state)
N_EMBD_S = 16 * 128  # d_state * d_inner


def _hybrid(arch: str, n_layer: int, kv_heads: tuple[int, ...], **extra: object):
    keys = {f"{arch}.{key}": value for key, value in SSM.items()}
    keys[f"{arch}.attention.head_count_kv"] = array(kv_heads)
    keys.update({f"{arch}.{key}": value for key, value in extra.items()})
    return synthetic(arch, n_layer=n_layer, n_embd=64, extra=keys)


def test_falcon_h1_keeps_attention_and_state_in_every_layer() -> None:
    """create_memory: for LLM_ARCH_FALCON_H1 filter_attn and filter_recr are both
    ``[&](uint32_t) { return true; }`` (attention and SSM side by side in each layer)."""
    hparams = read_hyperparameters(_hybrid("falcon-h1", 3, (2, 2, 2)))
    attention = attention_filter(hparams)
    assert attention is not None
    assert [attention(il) for il in range(3)] == [True] * 3
    assert [recurrent_filter(hparams)(il) for il in range(3)] == [True] * 3


def test_a_qwen3next_nextn_block_has_neither_kv_nor_state() -> None:
    """create_memory: qwen3next's filters keep only il < n_layer() (the trunk): its NextN block
    is in neither cache, whatever its recurrent flag says (attention here, recurrent below)."""
    for nextn_recurrent in (False, True):
        hparams = read_hyperparameters(_hybrid(
            "qwen3next", 5, (2, 2, 2, 2, 2), nextn_predict_layers=1,
            **{"attention.recurrent_layers": array((True, True, True, False,
                                                    nextn_recurrent))}))
        assert hparams.n_layer_main == 4
        attention = attention_filter(hparams)
        assert attention is not None
        assert [attention(il) for il in range(5)] == [False, False, False, True, False]
        assert [recurrent_filter(hparams)(il) for il in range(5)] == [True, True, True, False,
                                                                        False]


def test_rs_bytes_are_r_plus_s_rows_per_kept_layer() -> None:
    """Two Mamba2 layers of the nemotron_h kind (no KV heads, no FFN) and one attention layer:
    each kept layer holds r (n_embd_r floats) and s (n_embd_s floats) per cell, one cell per
    sequence, each tensor padded to 32 bytes; exact bytes, which the log's MiB line cannot give."""
    model = _hybrid("nemotron_h", 3, (0, 2, 0),
                    **{"feed_forward_length": array((0, 0, 0)),
                       "attention.layer_norm_epsilon": 1e-5})
    for n_seq in (1, 3):
        prediction = predict_memory(model, LlamaSettings(n_ctx=512, n_parallel=n_seq),
                                    with_compute=False)
        (state,) = by_kind(prediction, "recurrent")
        per_layer = 4 * N_EMBD_R * n_seq + 4 * N_EMBD_S * n_seq  # both multiples of 32
        assert (state.device, state.buffer, state.n_bytes, state.exact) == (
            "host", "CPU", 2 * per_layer, True)


def test_the_state_follows_its_layer_unless_kv_offload_is_off() -> None:
    """llama_memory_recurrent puts each layer's r and s on its layer's device when offload is
    on (cparams.offload_kqv), else in host memory; one buffer per buffer type."""
    model = _hybrid("nemotron_h", 3, (0, 2, 0),
                    **{"feed_forward_length": array((0, 0, 0)),
                       "attention.layer_norm_epsilon": 1e-5})
    per_layer = 4 * N_EMBD_R + 4 * N_EMBD_S
    # --ngl 3 of 4 on one GPU: blocks 1 and 2 and the head on it, block 0 on the host
    settings = LlamaSettings(n_ctx=512, n_gpu_layers=3, gpu_capacities=(1 << 34,))
    offloaded = by_kind(predict_memory(model, settings, with_compute=False), "recurrent")
    assert [(b.device, b.buffer, b.n_bytes, b.exact) for b in offloaded] == [
        ("host", "CPU", per_layer, True), ("gpu0", "CUDA0", per_layer, True)]
    kept_home = by_kind(predict_memory(model, LlamaSettings(
        n_ctx=512, n_gpu_layers=3, gpu_capacities=(1 << 34,), offload_kqv=False),
        with_compute=False), "recurrent")
    assert [(b.device, b.buffer, b.n_bytes) for b in kept_home] == [("host", "CPU",
                                                                      2 * per_layer)]
