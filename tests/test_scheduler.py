"""The scheduler model (llamacpp/scheduler.py) where the RPC matrix of test_rpc_devices does not
reach: weights moved by --override-tensor off the devices their layer suggests, LayerNorm
models split between the CPU and a device, and the alignment of each compute buffer, which an
RPC load cannot judge (its devices align to 32 bytes like the CPU) and is derived here from
ggml's source instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.conftest import fixture_path
from tests.rpc_servers import RpcSession
from tests.test_rpc_devices import E320, UNTIED, assert_every_buffer_matches, compute, load, rpc

__all__ = ["rpc"]  # the two-server fixture, used by name below

GIB = 1 << 30
MIB = 1 << 20

# LayerNorm models (build_norm's LLM_NORM: a ggml_norm opens each block) split between the CPU
# and a device by -ngl: every block's nodes belong to their own layer's device
LAYER_NORM_SPLITS: dict[str, tuple[str, dict[str, Any]]] = {
    "cohere2-ngl-2": ("cohere2", {"n_gpu_layers": 2}),
    "cohere2-ngl-3": ("cohere2", {"n_gpu_layers": 3}),
    "falcon-ngl-2": ("falcon", {"n_gpu_layers": 2}),
    "gptneox-ngl-2": ("gptneox", {"n_gpu_layers": 2}),
    "gptneox-ubatch-16-ngl-2": ("gptneox", {"n_gpu_layers": 2, "n_ubatch": 16}),
    "starcoder2-ngl-1": ("starcoder2", {"n_gpu_layers": 1}),
    "starcoder2-ngl-2": ("starcoder2", {"n_gpu_layers": 2}),
    "starcoder2-no-kv-offload": ("starcoder2", {"offload_kqv": False}),
}


@pytest.mark.parametrize("case", sorted(LAYER_NORM_SPLITS))
def test_layer_norm_blocks_run_on_their_layers_device(rpc: RpcSession, case: str) -> None:
    """Each block's nodes on its layer's device, the output norm left to pass 2 (graph_get_cb
    pins a block's "norm" only, il != -1), every buffer as llama.cpp logs it."""
    stem, fields = LAYER_NORM_SPLITS[case]
    log, _raw, prediction = load(rpc, fixture_path(f"zoo/{stem}.gguf"), **fields)
    assert_every_buffer_matches(log, prediction)


def _server(rpc: RpcSession, index: int) -> str:
    return f"RPC0[{rpc.endpoints[index]}]"


@pytest.mark.parametrize("path,server", [(E320, 1), (E320, 0), (UNTIED, 0),
                                         (fixture_path("zoo/qwen3.gguf"), 1),
                                         (fixture_path("zoo/gemma3.gguf"), 1)])
def test_token_embd_on_a_server(rpc: RpcSession, path: Any, server: int) -> None:
    """-ot token_embd.weight=<server>: the input GET_ROWS follows its weight to that server
    (ggml_backend_sched_backend_id_from_cur), the first block's pinned norm stays on block 0's
    device; every buffer matches the load's."""
    override = rf"token_embd\.weight={_server(rpc, server)}"
    log, raw, prediction = load(rpc, path, override_tensor=override)
    assert f"buffer type overridden to {_server(rpc, server)}" in raw
    assert_every_buffer_matches(log, prediction)


TIED = fixture_path("tiny-llama-tied-q4_k_m.gguf")


@pytest.mark.parametrize("server", [0, 1])
def test_a_tied_heads_override_moves_its_duplicate_too(rpc: RpcSession, server: int) -> None:
    """A tied model's output head is token_embd.weight created again (TENSOR_DUPLICATED) under
    the same name, so -ot token_embd.weight=<server> moves the head as well
    (llama_model_loader::create_tensor matches the override against tn.str()); the head's
    matmul then runs where that copy lives."""
    override = rf"token_embd\.weight={_server(rpc, server)}"
    log, raw, prediction = load(rpc, TIED, override_tensor=override)
    assert raw.count(f"buffer type overridden to {_server(rpc, server)}") == 2
    assert_every_buffer_matches(log, prediction)


def test_output_norm_on_the_host_between_two_servers(rpc: RpcSession) -> None:
    """token_embd on the second server and output_norm.weight on the CPU: the output norm's
    MUL runs on the CPU, next to its weight, between the last block and the head."""
    override = rf"token_embd\.weight={_server(rpc, 1)},output_norm\.weight=CPU"
    log, _raw, prediction = load(rpc, E320, override_tensor=override)
    assert_every_buffer_matches(log, prediction)


# e320 at n_ubatch 16, every layer on the devices, two of them: pipeline parallelism (four
# copies of every graph input), only the token GET_ROWS on the CPU (token_embd is an input
# layer tensor). The CPU backend's compute buffer holds, aligned to 32 bytes each: four copies
# of inp_tokens (4 x 16), inp_pos (4 x 16), k_idxs (8 x 16), v_idxs (8 x 16, flash attention),
# the f16 mask (2 x 512 cells x 16), out_ids (4 x 16) and the unused inp_embd (4 x 320 x 16),
# then the GET_ROWS output (4 x 320 x 16); nothing is freed before that last allocation.
E320_UB16_INPUTS = 64 + 64 + 128 + 128 + 2 * 512 * 16 + 64 + 4 * 320 * 16
E320_UB16_HOST = 4 * E320_UB16_INPUTS + 4 * 320 * 16


def test_host_compute_buffer_of_a_pipelined_load_by_hand(rpc: RpcSession) -> None:
    """The figure above is the CPU compute buffer a real two-server load logs (0.1619 MiB)."""
    log, _raw, prediction = load(rpc, E320, n_ubatch=16)
    assert_every_buffer_matches(log, prediction)
    assert compute(log)["CPU"] == round(E320_UB16_HOST / MIB, 4)
    assert [b.n_bytes for b in prediction.buffers if b.kind == "compute" and b.buffer == "CPU"
            ] == [E320_UB16_HOST]


def _cuda_compute(path: Any, **fields: Any) -> dict[str, int]:
    settings = LlamaSettings(**{"n_ctx": 512, **fields})
    prediction = predict_memory(read_gguf(str(path)), settings)
    return {b.buffer: b.n_bytes for b in prediction.buffers if b.kind == "compute"}


def test_cuda_host_compute_buffer_aligns_to_32_bytes() -> None:
    """The same load on two CUDA devices: the CPU backend's compute buffer type is CUDA_Host,
    whose get_alignment is the CPU buffer type's (ggml-cuda.cu,
    ggml_backend_cuda_host_buffer_type: TENSOR_ALIGNMENT, 32, ggml-impl.h), and the host runs
    the same nodes, so it holds exactly the figure derived by hand above (with 128-byte
    alignment each 64-byte input would take 128: 768 bytes more)."""
    buffers = _cuda_compute(E320, n_ubatch=16, gpu_capacities=(8 * GIB, 8 * GIB))
    assert buffers["CUDA_Host"] == E320_UB16_HOST


@pytest.mark.parametrize("fields", [{"n_gpu_layers": 1}, {"n_gpu_layers": 2},
                                    {"n_ubatch": 16}, {"offload_kqv": False}])
def test_cuda_device_compute_buffers_align_to_128_bytes(fields: dict[str, Any]) -> None:
    """ggml_dyn_tallocr_alloc (ggml-alloc.c) rounds every allocation up to the buffer type's
    alignment, so the high-water mark of a CUDA device's compute buffer is a multiple of
    ggml_backend_cuda_buffer_type_get_alignment's 128 (ggml-cuda.cu)."""
    buffers = _cuda_compute(E320, gpu_capacities=(8 * GIB, 8 * GIB), **fields)
    devices = {name: n_bytes for name, n_bytes in buffers.items() if name.startswith("CUDA")
               and name != "CUDA_Host"}
    assert devices and all(n_bytes % 128 == 0 for n_bytes in devices.values()), devices


@pytest.mark.parametrize("path,pattern", [
    (E320, r"blk\.0\.attn_(q|k|v|output)\.weight"),
    # the fused QKV matmul runs on the other server, and its V view, read back on block 0's
    # server, is copied at its strided size (255.6 KiB, not the contiguous 64 KiB nor wqkv's
    # 256 KiB: 384 bytes decide whether the FFN fits a hole, 1.4453 MiB against 1.6949)
    (fixture_path("zoo/phi3.gguf"), r"blk\.0\.attn_(qkv|output)\.weight"),
    (fixture_path("zoo/qwen3moe.gguf"), r"blk\.1\.ffn_gate_inp\.weight"),
])
def test_attention_weights_on_the_other_server(rpc: RpcSession, path: Any, pattern: str) -> None:
    """Block 0's attention weights (separate, or phi3's fused QKV) or a MoE router moved by -ot
    to the server that does not hold the block: each matmul runs where its weight is (pass 1,
    ggml_backend_sched_backend_id_from_cur), so the block splits around it."""
    log, raw, prediction = load(rpc, path, override_tensor=f"{pattern}={_server(rpc, 1)}")
    assert f"buffer type overridden to {_server(rpc, 1)}" in raw
    assert_every_buffer_matches(log, prediction)


MODELS = sorted(fixture_path("zoo").glob("*.gguf")) + sorted(fixture_path(".").glob("*.gguf"))


@pytest.mark.parametrize("path", MODELS, ids=lambda path: path.stem)
def test_every_weight_a_graph_reads_is_a_tensor_of_the_file(
        monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
    """Each node that reads a weight names its tensor (by the graph's GraphBuilder.weight_of,
    a role, or a model-level name), and that tensor is in the file's placement: pass 1 of
    ggml_backend_sched_split_graph puts the node where that tensor's buffer is, so an -ot
    override of any one tensor moves exactly its readers (a weight named wrongly would be
    taken to live with its layer). Two servers, every layer offloaded."""
    from gguf_inspect.llamacpp import memory, scheduler
    from gguf_inspect.llamacpp.compute_graph import build_graph

    seen: list[Any] = []
    original = memory.gpu_compute_buffers

    def spy(shape: Any, plan: Any) -> Any:
        seen.append((shape, plan))
        return original(shape, plan)

    monkeypatch.setattr(memory, "gpu_compute_buffers", spy)
    predict_memory(read_gguf(str(path)), LlamaSettings(
        n_ctx=512, rpc="127.0.0.1:1,127.0.0.1:2", gpu_capacities=(GIB, GIB)))
    shape, plan = seen[-1]
    nodes, _ = build_graph(shape)
    readers = [(node, source) for node in nodes for source in node.srcs
               if source.external and source.name == "weight"]
    assert readers
    unnamed = {(node.name, node.layer, scheduler.weight_name(node, source, plan))
               for node, source in readers
               if scheduler.weight_name(node, source, plan) not in plan.weights}
    assert unnamed == set()
