"""The multi-device memory model against real llama.cpp loads on this CPU-only machine: two RPC
servers on 127.0.0.1, each serving the CPU device (ggml-rpc.cpp), are two "GPUs" to
llama_model_load (type GPU, async and events: pipeline parallelism; supports_op true for every
op; offload_op NULL; no host buffer type). Every buffer the load log prints (the model per
device, the KV cache per device, the output buffer, the compute buffer of every device and of
the host) is compared with predict_memory to the log's printed precision.

Needs llama-cpp-python built with CMAKE_ARGS="-DGGML_RPC=ON"; without it these tests skip,
except under CI (env CI set), where they fail: CI must run them.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import replace
from typing import Any, Iterator

import pytest

from gguf_inspect.core.errors import RuntimeUnavailableError, UsageError
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.load_log import LoadLog, parse_load_log, split_log_text
from gguf_inspect.llamacpp.memory import MemoryPrediction, predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings, check_rpc, parse_overrides
from gguf_inspect.reports.runtime import device_settings_from_log, rpc_capacities
from tests.conftest import WideZooModel, fixture_path
from tests.rpc_servers import RpcSession

MIB = 1 << 20
E320 = fixture_path("tiny-llama-e320-q4_k_m.gguf")  # rows of 320: CUDA would pad them
UNTIED = fixture_path("tiny-llama-untied-q4_k_m.gguf")
SWA = fixture_path("tiny-gemma3-swa-q4_k_m.gguf")
MOE = fixture_path("zoo/qwen3moe.gguf")


def _rpc_available() -> str | None:
    """Why the RPC loads cannot run here, None when they can."""
    try:
        from gguf_inspect.llamacpp.runtime import rpc_supported

        if rpc_supported():
            return None
        return ("llama-cpp-python was built without the RPC backend (reinstall with "
                "CMAKE_ARGS=\"-DGGML_RPC=ON\" and --no-cache-dir)")
    except RuntimeUnavailableError as error:
        return str(error)


def _session(count: int, kind: str = "") -> Iterator[RpcSession]:
    """``count`` servers and the worker that loads through them (started on the first load;
    under benchmarks/mutation.py llama.cpp's answers are kept between mutants, in a folder of
    their own per server count, or per ``kind`` of load)."""
    reason = _rpc_available()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the RPC tests: {reason}")
        pytest.skip(reason)
    answers = os.environ.get("GGUF_INSPECT_RUNTIME_ANSWERS")
    folder = None
    if answers:
        folder = Path(answers) if count == 2 else Path(answers) / f"{count}-servers"
        folder = folder / kind if kind else folder
        folder.mkdir(parents=True, exist_ok=True)
    session = RpcSession(folder, count=count)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="module")
def rpc() -> Iterator[RpcSession]:
    """Two servers, once for the module."""
    yield from _session(2)


def case_settings(endpoints: list[str], fields: dict[str, Any]) -> LlamaSettings:
    """A case's settings through ``endpoints``, at n_ctx 512 unless it says otherwise; an
    override's ``{server0}`` / ``{server1}`` names that server (its endpoint, which each
    session picks), as in ``-ot token_embd\\.weight=RPC0[{server1}]``."""
    override = fields.get("override_tensor")
    if override:
        for index, endpoint in enumerate(endpoints):
            override = override.replace(f"{{server{index}}}", endpoint)
        fields = {**fields, "override_tensor": override}
    return LlamaSettings(rpc=",".join(endpoints), **{"n_ctx": 512, **fields})


def load(rpc: RpcSession, path: Any, **fields: Any
         ) -> tuple[LoadLog, str, MemoryPrediction]:
    """Load ``path`` through both servers; the parsed log, the raw log and the prediction for
    the same settings (each server's capacity the free memory its log line reports)."""
    settings = case_settings(rpc.endpoints, fields)
    capture = rpc.capture(str(path), settings)
    log = parse_load_log(capture.records)
    capacities = rpc_capacities(log, tuple(rpc.endpoints))
    prediction = predict_memory(read_gguf(str(path)), replace(settings,
                                                              gpu_capacities=capacities))
    return log, capture.raw_log, prediction


def logged(log: LoadLog) -> dict[tuple[str, str], tuple[float, float]]:
    """Every buffer line of the log in MiB by (kind, buffer name), with the rounding of the
    printed figures (half a unit of the last decimal); KV lines (one per cache) summed."""
    found: dict[tuple[str, str], tuple[float, float]] = {}
    lines = [*log.model_buffers, *log.output_buffers, *log.compute_buffers,
             *log.recurrent_buffers,
             *(buffer for cache in log.kv_caches for buffer in cache.buffers)]
    for buffer in lines:
        scale = 1024 if buffer.size.unit == "GiB" else 1
        total, rounding = found.get((buffer.kind, buffer.buffer), (0.0, 0.0))
        found[(buffer.kind, buffer.buffer)] = (total + buffer.size.value * scale,
                                               rounding + 0.5 * 10 ** -buffer.size.decimals * scale)
    return found


def predicted(prediction: MemoryPrediction) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], int] = {}
    for buffer in prediction.buffers:
        key = (buffer.kind, buffer.buffer)
        found[key] = found.get(key, 0) + buffer.n_bytes
    return {key: n_bytes / MIB for key, n_bytes in found.items()}


def assert_every_buffer_matches(log: LoadLog, prediction: MemoryPrediction) -> None:
    """The same buffers on both sides, each within the log's rounding (0.005 MiB a line; a
    compute buffer is compared with its four-decimal teardown line: 0.00005 MiB)."""
    ours, theirs = predicted(prediction), logged(log)
    assert set(ours) == set(theirs), (sorted(ours), sorted(theirs))
    differences = {key: (round(ours[key], 4), theirs[key][0]) for key in theirs
                   if abs(ours[key] - theirs[key][0]) > theirs[key][1] + 1e-9}
    assert differences == {}


def compute(log: LoadLog) -> dict[str, float]:
    return {buffer.buffer: buffer.size.value for buffer in log.compute_buffers}


# ---- the matrix -------------------------------------------------------------------------------

CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "e320-full": (E320, {}),
    "e320-full-flash-off": (E320, {"flash_attn": "off"}),
    "untied-full": (UNTIED, {}),
    "untied-full-flash-off": (UNTIED, {"flash_attn": "off"}),
    "untied-2-sequences": (UNTIED, {"n_ctx": 1024, "n_parallel": 2}),
    "swa-full": (SWA, {}),
    "swa-no-swa-full-flash-off": (SWA, {"swa_full": False, "flash_attn": "off"}),
    "e320-ngl-1": (E320, {"n_gpu_layers": 1}),
    "e320-ngl-2": (E320, {"n_gpu_layers": 2}),
    "untied-ngl-0": (UNTIED, {"n_gpu_layers": 0}),
    "e320-tensor-split-3-1": (E320, {"tensor_split": "3,1"}),
    "e320-tensor-split-1-3": (E320, {"tensor_split": "1,3"}),
    "e320-split-none-main-1": (E320, {"split_mode": "none", "main_gpu": 1}),
    "e320-no-kv-offload": (E320, {"offload_kqv": False}),
    "e320-no-mmap": (E320, {"use_mmap": False}),
    "e320-ot-cpu": (E320, {"override_tensor": r"blk\.1\.ffn_.*=CPU"}),
    "moe-full": (MOE, {}),
    "moe-n-cpu-moe-1": (MOE, {"n_cpu_moe": 1}),
    "moe-n-cpu-moe-1-flash-off": (MOE, {"n_cpu_moe": 1, "flash_attn": "off"}),
    # the zoo's architectures whose graphs the scheduler model follows: MLA's weight roles,
    # sliding windows, experts, the untied and tied heads, biases
    **{f"zoo-{stem}": (fixture_path(f"zoo/{stem}.gguf"), {}) for stem in (
        "deepseek2-mla", "gemma2", "gemma3", "glm4moe", "gpt-oss", "llama4", "mistral3", "phi3",
        "qwen2", "qwen3", "cohere2", "falcon", "gptneox", "starcoder2")},
    **{f"zoo-{stem}-ngl-1": (fixture_path(f"zoo/{stem}.gguf"), {"n_gpu_layers": 1})
       # (and each architecture with MoE, recurrent or its own graph module's nodes: the last
       # block and the head on a server, the blocks before it on the host)
       for stem in ("deepseek2-mla", "gemma3", "falcon", "starcoder2", "glm4moe", "llama4",
                    "gpt-oss", "qwen3moe", "qwen3next", "mamba2", "granitehybrid", "lfm2",
                    "nemotron_h", "gemma2", "granitemoe", "olmo2", "rwkv7", "mamba")},
    # MLA with the KV cache on the host: V, a view of the K cache with K's strides, is copied
    # to the attention's server at its own ggml_nbytes (47.97 KiB, not a contiguous 32 KiB)
    "zoo-deepseek2-mla-no-kv-offload": (fixture_path("zoo/deepseek2-mla.gguf"),
                                        {"offload_kqv": False}),
    "zoo-deepseek2-mla-no-kv-offload-flash-off": (fixture_path("zoo/deepseek2-mla.gguf"),
                                                  {"offload_kqv": False, "flash_attn": "off"}),
    # recurrent state (RS buffers) on the layers' devices
    **{f"zoo-{stem}": (fixture_path(f"zoo/{stem}.gguf"), {}) for stem in (
        "mamba", "mamba2", "qwen3next")},
    # each node on the device of the layer whose code built it: LayerNorm stacks, no
    # pre-norm (olmo2), parallel attention and FFN, hybrids' recurrent and FFN-only layers
    **{f"zoo-{stem}": (fixture_path(f"zoo/{stem}.gguf"), {}) for stem in (
        "granitehybrid", "lfm2", "nemotron_h", "olmo2", "olmo2-swa")},
    # the granite family's embedding, residual and logit SCALEs, in place on one device
    **{f"zoo-{stem}": (fixture_path(f"zoo/{stem}.gguf"), {}) for stem in (
        "granite", "granitemoe")},
    # token_embd_norm is a tensor of block 0 (LLM_TENSOR_LAYER_REPEATING), on layer 0's device
    # with its tok_norm nodes: with the whole stack offloaded, and with layer 0 on the host
    "zoo-rwkv7": (fixture_path("zoo/rwkv7.gguf"), {}),
    "zoo-bert-ngl-1": (fixture_path("zoo/bert.gguf"), {"n_gpu_layers": 1}),
    # block 0 on the host, block 1 on A: A copies each partial view it reads (the token-shift
    # CONCAT's view of ffn_norm without its last row) as its own input, at the view's size
    "zoo-rwkv7-ngl-2": (fixture_path("zoo/rwkv7.gguf"), {"n_gpu_layers": 2}),
    # the encoders: the token-type ADD reads a view of its weight (a row, copied as a split
    # input at the row's f16 size), so it runs on the device beside tok_norm
    **{f"zoo-{stem}": (fixture_path(f"zoo/{stem}.gguf"), {}) for stem in ("bert", "nomic-bert")},
    # gemma3n: the altup projections on the output device, the per-layer projection on block
    # 0's; the head reads three partial views of the stack, each copied as its own input
    "zoo-gemma3n": (fixture_path("zoo/gemma3n.gguf"), {}),
    "zoo-gemma3n-ngl-1": (fixture_path("zoo/gemma3n.gguf"), {"n_gpu_layers": 1}),
    # block 0 on the host, the rest on the servers: the altup streams and the per-layer input
    # cross as views of part of their tensors (the active stream, the other three, the
    # layer's slice), each copied alone at its size (3.5098 MiB predicted before, 2.6348)
    "zoo-gemma3n-ngl-2": (fixture_path("zoo/gemma3n.gguf"), {"n_gpu_layers": 2}),
    # graph_get_cb pins each layer's norm below 32 tokens: 31 and 32 on either side
    "e320-ubatch-31-ngl-1": (E320, {"n_ubatch": 31, "n_gpu_layers": 1}),
    "e320-ubatch-32-ngl-1": (E320, {"n_ubatch": 32, "n_gpu_layers": 1}),
    "e320-ubatch-16-ngl-1": (E320, {"n_ubatch": 16, "n_gpu_layers": 1}),
    "e320-ngl-0": (E320, {"n_gpu_layers": 0}),
    "e320-ngl-3": (E320, {"n_gpu_layers": 3}),
    # a device without layers: no compute buffer of its own
    "e320-tensor-split-1-0": (E320, {"tensor_split": "1,0"}),
    "e320-tensor-split-0-1": (E320, {"tensor_split": "0,1"}),
    "e320-split-none-main-0": (E320, {"split_mode": "none", "main_gpu": 0}),
    # the KV cache on the host: its views are copied to the layer's device
    "e320-ngl-1-no-kv-offload": (E320, {"n_gpu_layers": 1, "offload_kqv": False}),
    "swa-no-swa-full-no-kv-offload": (SWA, {"offload_kqv": False, "swa_full": False}),
    "untied-2-sequences-no-kv-offload": (UNTIED, {"n_ctx": 1024, "n_parallel": 2,
                                                  "offload_kqv": False}),
    "untied-2-sequences-unified-no-kv-offload": (UNTIED, {
        "n_ctx": 1024, "n_parallel": 2, "offload_kqv": False, "kv_unified": True}),
    "untied-2-sequences-unified": (UNTIED, {"n_ctx": 1024, "n_parallel": 2, "kv_unified": True}),
    "moe-no-kv-offload": (MOE, {"offload_kqv": False}),
    # without flash attention build_attn_mha pins the attention output to the CPU as well
    "e320-no-kv-offload-flash-off": (E320, {"offload_kqv": False, "flash_attn": "off"}),
    "swa-no-swa-full-no-kv-offload-flash-off": (SWA, {"offload_kqv": False, "swa_full": False,
                                                      "flash_attn": "off"}),
    "moe-no-kv-offload-flash-off": (MOE, {"offload_kqv": False, "flash_attn": "off"}),
    # single weights of one block on the host (-ot), the rest on the servers: the nodes that read
    # them move to the host and their neighbours stay, so each node's own device shows (the
    # router, the experts, the shared experts, MLA's absorbed K/V, altup, laurel, the
    # time-mix LoRAs, the state-space mixers)
    **{f"zoo-{stem}-ot-{what}-cpu": (fixture_path(f"zoo/{stem}.gguf"), {
        "override_tensor": rf"blk\.1\.{pattern}=CPU"}) for stem, what, pattern in (
        ("glm4moe", "router", r"ffn_gate_inp\.weight"),
        ("glm4moe", "experts", r"ffn_(gate|up|down)_exps\.weight"),
        ("glm4moe", "shared", r"ffn_(gate|up|down)_shexp\.weight"),
        ("qwen3moe", "router", r"ffn_gate_inp\.weight"),
        ("llama4", "router", r"ffn_gate_inp\.weight"),
        ("gpt-oss", "router", r"ffn_gate_inp\.weight"),
        ("granitemoe", "router", r"ffn_gate_inp\.weight"),
        ("deepseek2-mla", "router", r"ffn_gate_inp\.weight"),
        ("deepseek2-mla", "kv-b", r"attn_(k_b|v_b)\.weight"),
        ("qwen3next", "shared", r"ffn_.*shexp\.weight"),
        ("qwen3next", "ssm", r"ssm_.*"),
        ("gemma3n", "altup", r"altup_.*"),
        ("gemma3n", "laurel", r"laurel_.*"),
        ("rwkv7", "lora", r"time_mix_[wavg][0-2]\.weight"),
        ("mamba2", "ssm", r"ssm_.*"),
        ("mamba", "ssm", r"ssm_.*"),
        ("lfm2", "shortconv", r"shortconv\..*"),
        ("qwen3next", "attn", r"attn_(qkv|gate)\.weight"),
        # biases, norms, sinks and fused matmuls of the attention and FFN blocks
        ("gpt-oss", "sinks", r"attn_sinks\.weight"),
        ("gpt-oss", "biases", r".*\.bias"),
        ("qwen2", "biases", r"attn_(q|k|v)\.bias"),
        ("glm4moe", "biases", r"(attn_(q|k|v)|exp_probs_b)\.bias"),
        ("starcoder2", "biases", r".*\.bias"),
        ("gptneox", "qkv", r"attn_qkv\.(weight|bias)"),
        ("falcon", "qkv", r"attn_qkv\.weight"),
        ("phi3", "qkv", r"attn_qkv\.weight"),
        ("gemma3", "norms", r"(attn_q_norm|attn_k_norm|post_attention_norm|post_ffw_norm)\.weight"),
        ("olmo2", "norms", r"(attn_q_norm|attn_k_norm|post_attention_norm|post_ffw_norm)\.weight"),
        ("qwen3", "norms", r"attn_(q|k)_norm\.weight"),
        ("llama4", "shared", r"ffn_(gate|up|down)_shexp\.weight"),
        ("deepseek2-mla", "q-lora", r"attn_q_(a|b|a_norm)\.weight"),
        ("deepseek2-mla", "kv-a", r"attn_kv_a_(mqa|norm)\.weight"),
        # the latent alone on the host: its two partial views (k_pe, kv_cmpr) are copied to the
        # server one by one, each at its own extent; and Q alone, whose rope and no-rope views are
        # copied the same way
        ("deepseek2-mla", "kv-a-mqa", r"attn_kv_a_mqa\.weight"),
        ("deepseek2-mla", "q-b", r"attn_q_b\.weight"),
        # own graphs' matmuls, placed by the names of their roles (graph_gemma3n, phi3's fused
        # FFN up)
        ("gemma3n", "attn", r"attn_(q|k|v|output)\.weight"),
        ("gemma3n", "ffn", r"ffn_(gate|up|down)\.weight"),
        ("phi3", "ffn", r"ffn_(up|down)\.weight"),
        # single matmuls of the state-space mixers on the host: the parts of their output that
        # the server reads (Mamba's x/z and dt/B/C, Mamba2's z/xBC/dt, shortconv's b/c/x,
        # Qwen3-Next's b/a and q/k/v) are copied there one by one, each at its own extent
        ("mamba", "ssm-in", r"ssm_in\.weight"),
        ("mamba", "ssm-x", r"ssm_x\.weight"),
        ("mamba2", "ssm-in", r"ssm_in\.weight"),
        ("mamba2", "ssm-conv", r"ssm_conv1d\.(weight|bias)"),
        ("lfm2", "in-proj", r"shortconv\.in_proj\.weight"),
        ("qwen3next", "ba", r"ssm_ba\.weight"),
        ("qwen3next", "conv", r"ssm_conv1d\.weight"),
        ("rwkv7", "wkv", r"time_mix_(receptance|key|value)\.weight"),
        ("cohere2", "attn", r"attn_(q|k|v|output)\.weight"))},
    # the head's weights on the host, one by one
    "e320-ot-output-cpu": (E320, {"override_tensor": r"output\.weight=CPU"}),
    "untied-ot-output-cpu": (UNTIED, {"override_tensor": r"output\.weight=CPU"}),
    "untied-ot-output-norm-cpu": (UNTIED, {"override_tensor": r"output_norm\.weight=CPU"}),
    "untied-ot-token-embd-cpu": (UNTIED, {"override_tensor": r"token_embd\.weight=CPU"}),
    # rwkv7's own graph: its embeddings' and head's matrices on the host
    "zoo-rwkv7-ot-token-embd-cpu": (fixture_path("zoo/rwkv7.gguf"), {
        "override_tensor": r"token_embd\.weight=CPU"}),
    "zoo-rwkv7-ot-output-cpu": (fixture_path("zoo/rwkv7.gguf"), {
        "override_tensor": r"output\.weight=CPU"}),
    # MLA without flash attention, its V decompression (attn_v_b) on the host
    "zoo-deepseek2-mla-ot-kv-b-flash-off": (fixture_path("zoo/deepseek2-mla.gguf"), {
        "override_tensor": r"blk\.1\.attn_(k_b|v_b)\.weight=CPU", "flash_attn": "off"}),
    # the input LayerNorm (bert, rwkv7: token_embd_norm, a block-0 tensor) alone on the host
    "zoo-bert-ot-token-embd-norm-cpu": (fixture_path("zoo/bert.gguf"), {
        "override_tensor": r"token_embd_norm\.(weight|bias)=CPU"}),
    "zoo-rwkv7-ot-token-embd-norm-cpu": (fixture_path("zoo/rwkv7.gguf"), {
        "override_tensor": r"token_embd_norm\.(weight|bias)=CPU"}),
    # the input layer's matrices on the second server (-ot moves an input tensor too,
    # llama_model::load_tensors): the embedding lookups follow them there (pass 1), for each
    # graph builder (the head of gemma3n and the tied e320 follow token_embd)
    **{f"{name}-ot-{what}-server1": (path, {"override_tensor": rf"{pattern}=RPC0[{{server1}}]"})
       for name, path, what, pattern in (
           ("e320", E320, "token-embd", r"token_embd\.weight"),
           ("untied", UNTIED, "token-embd", r"token_embd\.weight"),
           ("zoo-gemma3n", fixture_path("zoo/gemma3n.gguf"), "token-embd", r"token_embd\.weight"),
           ("zoo-gemma3n", fixture_path("zoo/gemma3n.gguf"), "per-layer-token-embd",
            r"per_layer_token_embd\.weight"),
           ("zoo-qwen3next", fixture_path("zoo/qwen3next.gguf"), "token-embd",
            r"token_embd\.weight"),
           ("zoo-rwkv7", fixture_path("zoo/rwkv7.gguf"), "token-embd", r"token_embd\.weight"))},
    # the heads of the own graph builders on the host, one by one
    **{f"zoo-{stem}-ot-{what}-cpu": (fixture_path(f"zoo/{stem}.gguf"), {
        "override_tensor": f"{pattern}=CPU"}) for stem, what, pattern in (
        ("gemma3n", "altup-unembd", r"altup_unembd_proj\.weight"),
        ("gemma3n", "altup-proj", r"altup_proj\.weight"),
        ("qwen3next", "output", r"output\.weight"),  # and blk.3.attn_output (a regex search)
        # the full-attention block (3) of qwen3next's own graph, weight by weight, and a
        # recurrent block's norms
        ("qwen3next", "attn-kv", r"blk\.3\.attn_(k|v)\.weight"),
        ("qwen3next", "attn-q", r"blk\.3\.attn_q\.weight"),
        ("qwen3next", "attn-output", r"blk\.3\.attn_output\.weight"),
        ("qwen3next", "qk-norms", r"blk\.3\.attn_(q|k)_norm\.weight"),
        ("qwen3next", "attn-norm", r"blk\.3\.attn_norm\.weight"),
        ("qwen3next", "post-norm", r"blk\.1\.post_attention_norm\.weight"),
        # each norm weight (and bias) the graphs name by its tensor, alone on the host: a
        # block's (blk.1), the input LayerNorm, the output norm (lfm2's is named
        # token_embd_norm, an output-layer tensor: LLM_TENSOR_OUTPUT_NORM_LFM2)
        ("bert", "layer-norms", r"blk\.1\.(attn_output_norm|layer_output_norm)\.(weight|bias)"),
        ("nomic-bert", "layer-norms", r"blk\.1\.attn_output_norm\.(weight|bias)"),
        ("gptneox", "ffn-norm", r"blk\.1\.ffn_norm\.(weight|bias)"),
        ("gptneox", "output-norm", r"output_norm\.(weight|bias)"),
        ("falcon", "output-norm-bias", r"output_norm\.bias"),
        ("starcoder2", "output-norm-bias", r"output_norm\.bias"),
        ("glm4moe", "ffn-norm", r"blk\.1\.post_attention_norm\.weight"),
        ("gpt-oss", "ffn-norm", r"blk\.1\.post_attention_norm\.weight"),
        ("lfm2", "output-norm", r"^token_embd_norm\.weight"),
        ("rwkv7", "layer-norms", r"blk\.1\.attn_norm(_2)?\.(weight|bias)"),
        ("rwkv7", "output-norm", r"output_norm\.(weight|bias)"),
        ("gemma3n", "norms", r"blk\.1\.(attn_norm|post_attention_norm|ffn_norm|post_ffw_norm)"
                             r"\.weight"),
        ("gemma3n", "qk-norms", r"blk\.1\.attn_(q|k)_norm\.weight"),
        ("gemma3n", "per-layer", r"blk\.1\.(inp_gate|proj|post_norm)\.weight"),
        ("gemma3n", "output-norm", r"output_norm\.weight"),
        ("qwen3next", "output-norm", r"output_norm\.weight"))},
    "zoo-bert-ot-position-embd-server1": (fixture_path("zoo/bert.gguf"), {
        "override_tensor": r"position_embd\.weight=RPC0[{server1}]"}),
    # the NextN block (glm4moe-mtp's last, in no buffer) counts in the layer split: the head
    # follows the output layer's device, not that block's
    "zoo-glm4moe-mtp": (fixture_path("zoo/glm4moe-mtp.gguf"), {}),
    "zoo-glm4moe-mtp-tensor-split-2-1": (fixture_path("zoo/glm4moe-mtp.gguf"),
                                         {"tensor_split": "2,1"}),
    "zoo-lfm2-ngl-1-output-norm": (fixture_path("zoo/lfm2.gguf"), {"n_gpu_layers": 1}),
    # the attention output pinned to the host without flash attention (build_attn_mha), for
    # the graphs that build their own attention
    **{f"zoo-{stem}-no-kv-offload-flash-off": (fixture_path(f"zoo/{stem}.gguf"), {
        "offload_kqv": False, "flash_attn": "off"}) for stem in ("gemma3n", "qwen3next")},
    # the recurrent states on the host (--no-kv-offload): each layer reads its two state
    # tensors from there, two copies
    **{f"zoo-{stem}-no-kv-offload": (fixture_path(f"zoo/{stem}.gguf"), {"offload_kqv": False})
       for stem in ("mamba", "mamba2", "rwkv7", "lfm2", "qwen3next")},
    # attention without flash attention on the host with its weights, the KV cache on the
    # server: kqv reads V (q8_0 K: K and V views differ in size)
    "e320-ot-attn-flash-off-q8k": (E320, {"override_tensor": r"blk\.1\.attn_.*=CPU",
                                          "flash_attn": "off", "cache_type_k": "q8_0"}),
    # the same in the graphs that build their own attention (gemma3n's block 1, Qwen3-Next's
    # full-attention block 3): kqv reads V, kq reads K, from the server
    **{f"zoo-{stem}-ot-attn-flash-off-q8k": (fixture_path(f"zoo/{stem}.gguf"), {
        "override_tensor": rf"blk\.{block}\.attn_.*=CPU", "flash_attn": "off",
        "cache_type_k": "q8_0"}) for stem, block in (("gemma3n", 1), ("qwen3next", 3))},
    # block 0 on the first server, block 1 and the head on the second: the input LayerNorm is
    # built as block 0's (pinned there with its norms), each block's norms pinned to its own
    "zoo-bert-tensor-split-1-2": (fixture_path("zoo/bert.gguf"), {"tensor_split": "1,2"}),
    "zoo-rwkv7-tensor-split-1-2": (fixture_path("zoo/rwkv7.gguf"), {"tensor_split": "1,2"}),
    # gemma3n's tied head on the host with its duplicate (-ot matches the head's own
    # token_embd.weight): result_output runs there
    "zoo-gemma3n-ot-token-embd-cpu": (fixture_path("zoo/gemma3n.gguf"), {
        "override_tensor": r"token_embd\.weight=CPU"}),
    # flash attention on the servers over a host cache with an f32 K (its 16-wide heads take
    # no quantized K with flash attention): each FLASH_ATTN_EXT copies its K view and its
    # (smaller, f16) V view from the host
    "zoo-gemma3n-no-kv-offload-flash-on-f32k": (fixture_path("zoo/gemma3n.gguf"), {
        "offload_kqv": False, "flash_attn": "on", "cache_type_k": "f32"}),
    # gemma3n with 64-wide heads (the zoo at e256), a q8_0 K over a host cache, flash attention
    # on the servers: each FLASH_ATTN_EXT copies its K view (q8_0) and its larger V view (f16)
    "e256-gemma3n-no-kv-offload-flash-on-q8k": (WideZooModel("e256", "gemma3n"), {
        "offload_kqv": False, "flash_attn": "on", "cache_type_k": "q8_0"}),
    # gemma3n with 22 blocks: blocks 20 and 21 reuse the KV cache of 18 and 19
    # (n_layer_kv_from_start 20), which the 20,3 split leaves on the first server while 20, 21
    # and the head go to the second: without flash attention kq and kqv read K (q8_0) and V
    # (f16) from the other server (no cache write before them to draw them there)
    "zoo-gemma3n-22-tensor-split-20-3-flash-off-q8k": (
        WideZooModel("", "gemma3n-22", lambda zoo: zoo.gemma3n(22)),
        {"tensor_split": "20,3", "flash_attn": "off", "cache_type_k": "q8_0"}),
    # and an f32 V (K f16): the V view is cast on the server, its copy sized as V's
    **{f"{name}-no-kv-offload-flash-on-f32v": (path, {
        "offload_kqv": False, "flash_attn": "on", "cache_type_v": "f32"})
       for name, path in (("zoo-gemma3n", fixture_path("zoo/gemma3n.gguf")), ("e320", E320))},
    # every block on the host (its KV cache too), one block's attention output on the first
    # server: without flash attention, pass 2 expands kqv (and kq, softmax) up from that matmul
    # onto the server, so kqv copies its V view (f16) from the host and kq its K view (q8_0)
    "e320-ngl-1-ot-attn-output-server0-flash-off-q8k": (E320, {
        "n_gpu_layers": 1, "override_tensor": r"blk\.1\.attn_output\.weight=RPC0[{server0}]",
        "flash_attn": "off", "cache_type_k": "q8_0"}),
    "zoo-qwen3next-ngl-1-ot-attn-output-server0-flash-off-q8k": (
        fixture_path("zoo/qwen3next.gguf"), {
            "n_gpu_layers": 1,
            "override_tensor": r"blk\.3\.attn_output\.weight=RPC0[{server0}]",
            "flash_attn": "off", "cache_type_k": "q8_0"}),
    # a hybrid MoE (Granite-4.0-H's shape) split over the servers, then with its experts on
    # the host (the usual partial offload of a MoE: -ot exps=CPU)
    "zoo-granitehybrid-moe-tensor-split-1-1": (
        WideZooModel("", "granitehybrid-moe"), {"tensor_split": "1,1"}),
    "zoo-granitehybrid-moe-ot-exps-cpu": (
        WideZooModel("", "granitehybrid-moe"), {"override_tensor": r"exps=CPU"}),
    # gemma3n's altup correction scale of block 0 on the second server: first_prediction (its
    # MUL) runs there and copies its view of the corrected predictions, the first of four
    "zoo-gemma3n-ot-altup-correct-scale-server1": (fixture_path("zoo/gemma3n.gguf"), {
        "override_tensor": r"blk\.0\.altup_correct_scale\.weight=RPC0[{server1}]"}),
    # DeepSeek-V2-Lite's single wq (no Q LoRA) of block 0 on the second server: q_lite runs
    # there (27 blocks split over the two servers)
    "zoo-deepseek2-lite-ot-attn-q-server1": (
        WideZooModel("", "deepseek2-lite"),
        {"override_tensor": r"blk\.0\.attn_q\.weight=RPC0[{server1}]"}),
    # flash attention forced on over a host cache (f16 K and V): each FLASH_ATTN_EXT runs on
    # its server and copies both its K and its V view from the host, two inputs of one node
    "e320-no-kv-offload-flash-on": (E320, {"offload_kqv": False, "flash_attn": "on"}),
    # Nemotron-H's output norm (over every token, before the output rows) on the first server,
    # its head on the second
    "zoo-nemotron_h-ot-output-norm-server0": (fixture_path("zoo/nemotron_h.gguf"), {
        "override_tensor": r"output_norm\.weight=RPC0[{server0}]"}),
    # a layer's SSM A (mamba2) or short-convolution kernel (lfm2) on the other server: the scan
    # or the convolution runs there and copies the views of the other server's projections it
    # reads (x, B and C of xBC; c of lfm2's in_proj), each at its own extent
    "zoo-mamba2-ot-ssm-a-server1": (fixture_path("zoo/mamba2.gguf"), {
        "override_tensor": r"blk\.0\.ssm_a=RPC0[{server1}]"}),
    "zoo-lfm2-ot-shortconv-conv-server1": (fixture_path("zoo/lfm2.gguf"), {
        "override_tensor": r"blk\.0\.shortconv\.conv\.weight=RPC0[{server1}]"}),
    # two sequences in a recurrent model: the state copy's views (s_copy_main, s_copy_extra)
    # split its n_rs rows
    **{f"zoo-{stem}-2-sequences": (fixture_path(f"zoo/{stem}.gguf"), {
        "n_ctx": 1024, "n_parallel": 2}) for stem in ("mamba", "lfm2")},
    # a 25-block gemma3n (alternating sliding-window and full blocks; 20-24 share the caches
    # of 18, SWA, and 19, full) split so that block 18 (17,8), 19 (18,7) or 20 (19,6) is the
    # first on the second server, with the sharing blocks: without flash attention a sharing
    # block's kq and kqv copy K and V only when its source is on the first server, which tells
    # the source apart from its neighbours (llama_model::create_memory's reuse)
    **{f"zoo-gemma3n-25-tensor-split-{split.replace(',', '-')}-flash-off-q8k": (
        WideZooModel("", "gemma3n-25", lambda zoo: zoo.gemma3n(25)),
        {"tensor_split": split, "flash_attn": "off", "cache_type_k": "q8_0"})
       for split in ("17,8", "18,7", "19,6")},
    # --n-cpu-moe: the first blocks' experts on the host (common/arg.cpp's patterns, in the
    # overrides after any -ot), as llama-server users keep a big MoE's experts in RAM
    "moe-n-cpu-moe-1": (MOE, {"n_cpu_moe": 1}),
    "zoo-qwen3moe-n-cpu-moe-2": (fixture_path("zoo/qwen3moe.gguf"), {"n_cpu_moe": 2}),
    # Nemotron 3 (nemotron_h_moe): Mamba2, attention and MoE layers with a shared expert split
    # over the servers; its experts on the host (-ot exps=CPU, --n-cpu-moe 2: block 1's); the
    # last block and the head on a server; and LatentMoE (Super), its latent projections on
    # one server and the experts on the other
    "zoo-nemotron_h_moe-tensor-split-1-1": (fixture_path("zoo/nemotron_h_moe.gguf"),
                                            {"tensor_split": "1,1"}),
    "zoo-nemotron_h_moe-ot-exps-cpu": (fixture_path("zoo/nemotron_h_moe.gguf"),
                                       {"override_tensor": r"exps=CPU"}),
    "zoo-nemotron_h_moe-n-cpu-moe-2": (fixture_path("zoo/nemotron_h_moe.gguf"),
                                       {"n_cpu_moe": 2}),
    "zoo-nemotron_h_moe-ngl-1": (fixture_path("zoo/nemotron_h_moe.gguf"), {"n_gpu_layers": 1}),
    # DeepSeek-V2 as converted before MLA: split over the servers, and block 1's attn_kv_b on
    # the second server with block 1 on the first (the decompression runs there, without
    # flash attention)
    "zoo-deepseek2-legacy-tensor-split-1-1": (WideZooModel("", "deepseek2-legacy"),
                                              {"tensor_split": "1,1"}),
    "zoo-deepseek2-legacy-ot-attn-kv-b-server1-flash-off": (
        WideZooModel("", "deepseek2-legacy"),
        {"tensor_split": "1,0", "flash_attn": "off",
         "override_tensor": r"blk\.1\.attn_kv_b\.weight=RPC0[{server1}]"}),
    # its attn_kv_b on the host (the CPU takes no node after it): the nodes after the
    # decompression run on the first server again and copy the no-rope K and the V views of
    # the host's matmul, each at its own extent
    **{f"zoo-deepseek2-legacy-ot-attn-kv-b-cpu-flash-{mode}": (
        WideZooModel("", "deepseek2-legacy"),
        {"tensor_split": "1,0", "flash_attn": mode, "override_tensor": r"attn_kv_b=CPU"})
       for mode in ("on", "off")},
    "zoo-nemotron_h_moe-latent-ot-latent-server0": (
        WideZooModel("", "nemotron_h_moe-latent"),
        {"tensor_split": "0,1", "override_tensor": r"ffn_latent=RPC0[{server0}]"}),
    # 32 tokens, a layer's norm weight on the host: the norms are pinned only below 32
    "e320-ubatch-32-ngl-2-ot-attn-norm-cpu": (E320, {
        "n_ubatch": 32, "n_gpu_layers": 2, "override_tensor": r"blk\.1\.attn_norm\.weight=CPU"}),
}


# Open: cases where the estimate is not llama.cpp's yet, per test ("buffers": this module's,
# "assignments": test_scheduler_assignments, "traces": test_rpc_traces), each with its first
# difference; each is a strict xfail, so the fix must remove it
OPEN: dict[str, dict[str, str]] = {"buffers": {}, "assignments": {}, "traces": {}}


def rpc_cases(test: str) -> list[Any]:
    """CASES for ``test`` ("buffers", "assignments" or "traces"), its open ones strict xfails."""
    return [pytest.param(case, marks=pytest.mark.xfail(strict=True, reason=OPEN[test][case]))
            if case in OPEN[test] else case for case in sorted(CASES)]


@pytest.mark.parametrize("case", rpc_cases("buffers"))
def test_every_buffer_of_an_rpc_load_is_predicted(rpc: RpcSession,
                                                  case: str) -> None:
    path, fields = CASES[case]
    log, _raw, prediction = load(rpc, path, **fields)
    assert_every_buffer_matches(log, prediction)


@pytest.fixture(scope="module")
def rpc3() -> Iterator[RpcSession]:
    """Three servers, once for the module."""
    yield from _session(3)


THREE_SERVER_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "e320-full": (E320, {}),
    "e320-tensor-split-1-0-1": (E320, {"tensor_split": "1,0,1"}),  # the middle one empty
    "e320-tensor-split-0-1-1": (E320, {"tensor_split": "0,1,1"}),  # backend 0 without layers
    "e320-ngl-1": (E320, {"n_gpu_layers": 1}),
    "e320-split-none-main-2": (E320, {"split_mode": "none", "main_gpu": 2}),
    "untied-full": (UNTIED, {}),
    "swa-full": (SWA, {}),
    "moe-full": (MOE, {}),
    "zoo-qwen3": (fixture_path("zoo/qwen3.gguf"), {}),
    "zoo-deepseek2-mla": (fixture_path("zoo/deepseek2-mla.gguf"), {}),
}


@pytest.mark.parametrize("case", sorted(THREE_SERVER_CASES))
def test_every_buffer_of_a_three_server_load_is_predicted(rpc3: RpcSession, case: str) -> None:
    path, fields = THREE_SERVER_CASES[case]
    log, _raw, prediction = load(rpc3, path, **fields)
    assert_every_buffer_matches(log, prediction)


def test_an_override_to_the_second_server(rpc: RpcSession) -> None:
    """-ot with the second server's buffer type name, as parse_tensor_buffer_overrides lists it
    (ggml_backend_rpc_buffer_type: RPC<device on the server>[endpoint]): every buffer matches,
    the compute ones too (blk.0's FFN runs on B between two splits on A: A 3.0117 MiB, B 2.25
    MiB logged; each split input is freed on its own device once its split starts)."""
    second = rpc.endpoints[1]
    log, raw, prediction = load(rpc, E320, override_tensor=rf"blk\.0\.ffn_.*=RPC0[{second}]")
    assert f"buffer type overridden to RPC0[{second}]" in raw
    assert_every_buffer_matches(log, prediction)
    # blk.0's experts alone on B: its MUL_MAT_IDs run there (pass 1 follows the weight)
    log, raw, prediction = load(rpc, MOE, override_tensor=rf"blk\.0\.ffn_.*_exps=RPC0[{second}]")
    assert f"buffer type overridden to RPC0[{second}]" in raw
    assert_every_buffer_matches(log, prediction)


def test_two_devices_at_full_offload_enable_pipeline_parallelism(
        rpc: RpcSession) -> None:
    """llama_context: more than one device, every layer offloaded, layer split, KV offloaded,
    no override, every device async with events (RPC's caps): n_copies = 4. Each split input
    is then allocated four times, so the two devices' compute buffers together exceed the one
    device's (split-mode none keeps one device: no pipeline parallelism)."""
    two, raw_two, prediction_two = load(rpc, UNTIED)
    one, raw_one, prediction_one = load(rpc, UNTIED, split_mode="none")
    assert "pipeline parallelism enabled" in raw_two
    assert "pipeline parallelism enabled" not in raw_one
    assert_every_buffer_matches(two, prediction_two)
    assert_every_buffer_matches(one, prediction_one)
    first, second = (f"RPC0[{endpoint}]" for endpoint in rpc.endpoints)
    assert set(compute(two)) == {first, second, "CPU"}
    assert compute(two)[first] + compute(two)[second] > compute(one)[first]


def test_pipeline_parallelism_is_off_with_an_override_or_partial_offload(
        rpc: RpcSession) -> None:
    for fields in ({"n_gpu_layers": 2}, {"override_tensor": r"blk\.1\.ffn_.*=CPU"},
                   {"offload_kqv": False}):
        log, raw, prediction = load(rpc, E320, **fields)
        assert "pipeline parallelism enabled" not in raw, fields
        assert_every_buffer_matches(log, prediction)  # one copy of each split input


def test_no_op_offload_to_an_rpc_device(rpc: RpcSession) -> None:
    """Host weights' matmuls stay on the CPU (RPC's offload_op is NULL), so --no-op-offload
    changes no buffer of a partial offload."""
    with_offload, _raw, _prediction = load(rpc, E320, n_gpu_layers=1)
    without, _raw, _prediction = load(rpc, E320, n_gpu_layers=1, op_offload=False)
    assert logged(with_offload) == logged(without)


# ---- without a runtime ------------------------------------------------------------------------

def test_rpc_servers_are_checked_as_host_port() -> None:
    assert check_rpc(" 10.0.0.2:50052, 10.0.0.3:50052 ") == "10.0.0.2:50052,10.0.0.3:50052"
    for bad in ("", "10.0.0.2", "10.0.0.2:port", ":50052"):
        with pytest.raises(ValueError):
            check_rpc(bad)


def test_an_rpc_buffer_name_is_an_override_target() -> None:
    assert parse_overrides("ffn=RPC0[10.0.0.2:50052]") == (("ffn", "RPC0[10.0.0.2:50052]"),)
    with pytest.raises(ValueError):
        parse_overrides("ffn=RPC0")


def test_rpc_buffers_follow_the_cpu_servers_rules_not_cudas() -> None:
    """Two servers: the model buffers are named RPC0[endpoint] (ggml_backend_rpc_buffer_type),
    rows of 320 q4_K are not padded to 512 (a CPU server answers ggml_nbytes), the output and
    host compute buffers are plain CPU (no host buffer type), and CUDA's figures differ."""
    model = read_gguf(str(E320))
    servers = "10.0.0.2:50052,10.0.0.3:50052"
    rpc = predict_memory(model, LlamaSettings(n_ctx=512, rpc=servers))
    cuda = predict_memory(model, LlamaSettings(n_ctx=512, gpu_capacities=(1, 1)))
    names = {(b.kind, b.buffer) for b in rpc.buffers}
    assert ("model", "RPC0[10.0.0.2:50052]") in names and ("model", "RPC0[10.0.0.3:50052]") in names
    assert ("output", "CPU") in names and ("compute", "CPU") in names
    assert not any("CUDA" in name for _kind, name in names)
    rpc_model = rpc.device_total("gpu0", "model") + rpc.device_total("gpu1", "model")
    cuda_model = cuda.device_total("gpu0", "model") + cuda.device_total("gpu1", "model")
    assert rpc_model < cuda_model  # CUDA pads each 320-wide quantized row to 512
    with pytest.raises(ValueError, match="one --gpu size"):
        predict_memory(model, LlamaSettings(rpc=servers, gpu_capacities=(1,)))


def test_the_log_names_the_rpc_servers_and_their_free_memory() -> None:
    text = ("llama_prepare_model_devices: using device RPC0 (127.0.0.1:50052) (unknown id) - "
            "1000 MiB free\nllama_prepare_model_devices: using device RPC1 (127.0.0.1:50053) "
            "(unknown id) - 3000 MiB free\n")
    log = parse_load_log(split_log_text(text))
    assert [(d.name, d.description, d.free_mib) for d in log.devices] == [
        ("RPC0", "127.0.0.1:50052", 1000), ("RPC1", "127.0.0.1:50053", 3000)]
    changes, _notes = device_settings_from_log(log)
    assert changes["rpc"] == "127.0.0.1:50052,127.0.0.1:50053"
    assert changes["gpu_capacities"] == (1000 * MIB, 3000 * MIB)


def test_vram_with_rpc_needs_one_gpu_size_per_server() -> None:
    from gguf_inspect.commands.vram import VramOptions, run_vram

    options = VramOptions(gpu="8GiB", settings={"rpc": "10.0.0.2:1,10.0.0.3:1"})
    with pytest.raises(UsageError, match="one size per server"):
        run_vram(str(E320), "json", options)
    text, _code = run_vram(str(E320), "json", replace(options, gpu="8GiB,8GiB"))
    assert "RPC0[10.0.0.3:1]" in text


def test_override_targets_are_the_buffer_types_present() -> None:
    """parse_tensor_buffer_overrides (common/arg.cpp) knows the buffer types of the devices
    present: CPU and each server's RPC0[endpoint] (a one-device server's device is 0), or
    CUDA0..N-1; any other name is refused with that list."""
    from gguf_inspect.llamacpp.backends import buffer_device, with_rpc_devices

    servers = with_rpc_devices(LlamaSettings(rpc="10.0.0.2:50052,10.0.0.3:50052"))
    assert buffer_device("RPC0[10.0.0.3:50052]", servers) == "gpu1"
    for unknown in ("RPC1[10.0.0.2:50052]", "RPC0[10.0.0.4:50052]", "Metal"):
        with pytest.raises(ValueError) as raised:
            buffer_device(unknown, servers)
        assert str(raised.value) == (
            f"unknown buffer type {unknown} (--override-tensor): this deployment has CPU, "
            "RPC0[10.0.0.2:50052], RPC0[10.0.0.3:50052]")
    with pytest.raises(ValueError) as raised:
        buffer_device("Metal", LlamaSettings(gpu_capacities=(1, 1)))
    assert str(raised.value).endswith("this deployment has CPU, CUDA0, CUDA1")


def test_device_buffers_and_their_alignment() -> None:
    """A device buffer is CUDAn or RPCn[endpoint], never a host one; an RPC server serving the
    CPU answers get_alignment with the CPU's TENSOR_ALIGNMENT (32, ggml-impl.h), CUDA's buffer
    type aligns to 128 (ggml_backend_cuda_buffer_type_get_alignment)."""
    from gguf_inspect.llamacpp.backends import device_alignment, is_device_buffer

    for buffer in ("CUDA0", "CUDA1", "RPC0[10.0.0.2:50052]"):
        assert is_device_buffer(buffer), buffer
    for buffer in ("CPU", "CUDA_Host", "AMX", "CPU_REPACK", "RPC0"):
        assert not is_device_buffer(buffer), buffer
    assert device_alignment(LlamaSettings(rpc="10.0.0.2:50052", gpu_capacities=(1,))) == 32
    assert device_alignment(LlamaSettings(gpu_capacities=(1,))) == 128


def test_gpu_sizes_for_another_number_of_servers_are_refused() -> None:
    from gguf_inspect.llamacpp.backends import with_rpc_devices

    with pytest.raises(ValueError) as raised:
        with_rpc_devices(LlamaSettings(rpc="10.0.0.2:1,10.0.0.3:1", gpu_capacities=(1,)))
    assert str(raised.value) == ("--rpc names 2 server(s) but 1 GPU size(s) were given: give one "
                                 "--gpu size (its free memory) per server")
