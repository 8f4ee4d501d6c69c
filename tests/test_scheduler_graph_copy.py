"""The scheduler's graph copy and device plan (llamacpp/scheduler.py: _graph_copy,
_external_source, device_plan, gpu_compute_buffers) against real llama.cpp loads through two RPC
servers where a CPU-only machine can show it, else against llama.cpp's source with the expected
figure derived by hand.

The RPC loads cover what the matrix of tests/test_rpc_devices.py leaves out: K and V cache views
of different sizes copied off a host KV cache (a q8_0 K cache beside an f16 V cache), sliding-
window views shorter than the context, a first graph node already on a GPU (token_embd
overridden to a server), a partial offload whose output is read again by the host, and the
architectures whose blocks open with a LayerNorm (their layers were counted from the wrong node).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp import memory, scheduler
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.placement import HOST
from gguf_inspect.llamacpp.scheduler import DevicePlan, gpu_compute_buffers
from gguf_inspect.llamacpp.compute_graph import GraphShape
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.conftest import fixture_path
from tests.rpc_servers import RpcSession
from tests.test_rpc_devices import E320, SWA, UNTIED, assert_every_buffer_matches, load, rpc

__all__ = ["rpc"]  # the two-server fixture, used by the loads below

GIB = 1 << 30
TWO_GPUS = (16 * GIB, 16 * GIB)

RPC_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    # the K view is q8_0, the V view f16: each copy to the layer's device has its own size
    # (flash attention reads K first, then V; without it "kq" reads K and "kqv" reads V)
    "e320-no-kv-offload-q8_0-keys": (E320, {"offload_kqv": False, "flash_attn": "on",
                                            "cache_type_k": "q8_0"}),
    "e320-no-kv-offload-q8_0-keys-flash-off": (E320, {"offload_kqv": False, "flash_attn": "off",
                                                      "cache_type_k": "q8_0"}),
    # 4096 cells in the full cache, 128 + 512 rounded up to 768 in the sliding-window one (at
    # 2048 the views' sizes do not reach the peaks)
    "swa-4096-no-swa-full-no-kv-offload": (SWA, {"n_ctx": 4096, "swa_full": False,
                                                 "offload_kqv": False}),
    # the host reads the output of a layer on the server, which must outlive its last reader
    "zoo-gpt-oss-ngl-1": (fixture_path("zoo/gpt-oss.gguf"), {"n_gpu_layers": 1}),
    # (the LayerNorm models, each block's nodes in its own layer: test_rpc_devices' CASES)
}


@pytest.mark.parametrize("case", sorted(RPC_CASES))
def test_every_buffer_of_an_rpc_load_is_predicted(rpc: RpcSession, case: str) -> None:
    path, fields = RPC_CASES[case]
    log, _raw, prediction = load(rpc, path, **fields)
    assert_every_buffer_matches(log, prediction)


def test_the_host_compute_buffer_is_the_hosts(rpc: RpcSession) -> None:
    """The CPU backend's compute buffer belongs to the host device: the log's CPU compute line
    is what the prediction puts on "host"."""
    log, _raw, prediction = load(rpc, E320)
    (cpu,) = [buffer for buffer in log.compute_buffers if buffer.buffer == "CPU"]
    assert prediction.device_total(HOST, "compute") / (1 << 20) == pytest.approx(
        cpu.size.value, abs=0.5 * 10 ** -cpu.size.decimals)


# ---- llama.cpp's source, without a runtime ----------------------------------------------------


def _plan(monkeypatch: pytest.MonkeyPatch, path: Any, **fields: Any) -> DevicePlan:
    """The DevicePlan predict_memory hands to the scheduler for these settings."""
    seen: list[DevicePlan] = []
    original = memory.gpu_compute_buffers

    def spy(shape: GraphShape, plan: DevicePlan) -> Any:
        seen.append(plan)
        return original(shape, plan)

    monkeypatch.setattr(memory, "gpu_compute_buffers", spy)
    predict_memory(read_gguf(str(path)), LlamaSettings(**{"n_ctx": 512, **fields}))
    (plan,) = seen
    return plan


def test_a_host_weight_is_copied_at_the_first_gpus_allocation_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With -ngl 0 on CUDA a large-batch matmul is offloaded to CUDA0 and its host weight copied
    into CUDA0's compute buffer (ggml_backend_sched_split_graph), sized by CUDA's buffer type:
    ggml_nbytes plus ggml_row_size(type, 512 - ne0 % 512) for a quantized tensor
    (ggml_backend_cuda_buffer_type_get_alloc_size, ggml-cuda.cu). E320's output.weight: q8_0
    (32 elements in 34 bytes), 320 x 384: 384 * 10 * 34 = 130560 bytes, plus 192 / 32 * 34."""
    plan = _plan(monkeypatch, E320, gpu_capacities=TWO_GPUS, n_gpu_layers=0)
    assert plan.weights["output.weight"] == (HOST, 384 * 10 * 34 + 6 * 34)


def test_a_tied_output_reads_the_token_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tied head's matmul reads token_embd.weight (llama-model.cpp: output = token_embd,
    TENSOR_DUPLICATED); with -ngl 0 that is the host tensor itself, copied to CUDA0 at CUDA's
    size. The SWA fixture's token_embd: 128 x 262 q8_0 (6 blocks of 34 bytes for 192 pad)."""
    model = read_gguf(str(SWA))
    embedding = next(t for t in model.tensors if t.name == "token_embd.weight")
    assert embedding.type_id == 8 and embedding.ne[0] == 128  # q8_0, 128-wide rows
    plan = _plan(monkeypatch, SWA, gpu_capacities=TWO_GPUS, n_gpu_layers=0)
    expected = embedding.ne[1] * 128 // 32 * 34 + (512 - 128) // 32 * 34
    assert plan.weights["output:tied"] == (HOST, expected)


def test_split_mode_none_keeps_only_the_main_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """--split-mode none leaves the model one device, the main GPU (llama_model_load_from_file:
    "remove all except the main GPU", src/llama.cpp), so the context has no CUDA0 backend: the
    host weights' offloaded matmuls run on CUDA1 and only CUDA1 and the host get compute
    buffers."""
    settings = {"gpu_capacities": TWO_GPUS, "split_mode": "none", "main_gpu": 1,
                "n_gpu_layers": 1}
    assert _plan(monkeypatch, E320, **settings).first_gpu == "gpu1"
    prediction = predict_memory(read_gguf(str(E320)), LlamaSettings(n_ctx=512, **settings))
    compute = [buffer.buffer for buffer in prediction.buffers if buffer.kind == "compute"]
    assert compute == ["CUDA1", "CUDA_Host"]


@pytest.mark.parametrize("fields,pinned", [
    ({"n_gpu_layers": 0}, False),  # 0 > 2 is false and the batch is 512
    ({"n_gpu_layers": 2}, False),  # n_gpu_layers() == n_layer: the output stays on the CPU
    ({"n_gpu_layers": 3}, True),  # the output layer too: full offload
    ({"n_gpu_layers": -1}, True),  # -1: n_layer_all + 1 (llama_model::n_gpu_layers)
    ({"n_gpu_layers": 0, "n_ubatch": 31}, True),  # ubatch.n_tokens < 32
])
def test_norms_are_pinned_at_full_offload_or_a_small_batch(
        monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], pinned: bool) -> None:
    """llama_context::graph_get_cb (src/llama-context.cpp): full_offload = model.n_gpu_layers()
    > n_layer_all, and each "norm" is set to its layer's backend when ubatch.n_tokens < 32 or
    full_offload. E320 has two layers."""
    plan = _plan(monkeypatch, E320, gpu_capacities=TWO_GPUS, **fields)
    assert plan.pin_norms is pinned


def test_pipelined_inputs_and_copies_are_never_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With n_copies = 4 every copy of a graph input (the original among them) and every copy
    of a split input is flagged input and output (ggml_backend_sched_split_graph,
    ggml-backend.cpp: ggml_set_input / ggml_set_output "prevent ggml-alloc from overwriting the
    tensor"), so none of the leafs allocated first is ever freed."""
    captured: list[list[scheduler.Placed]] = []
    original = scheduler._graph_copy

    def spy(*args: Any) -> Any:
        order, leafs = original(*args)
        captured.append(leafs)
        return order, leafs

    monkeypatch.setattr(scheduler, "_graph_copy", spy)
    prediction = predict_memory(read_gguf(str(UNTIED)), LlamaSettings(
        n_ctx=512, rpc="10.0.0.2:1,10.0.0.3:1", gpu_capacities=TWO_GPUS))
    assert prediction.buffers  # two servers at full offload: pipeline parallelism
    (leafs,) = captured
    inputs = [leaf for leaf in leafs if leaf.device == HOST]
    copies = [leaf for leaf in leafs if leaf.device != HOST]
    assert len(inputs) % 4 == 0 and inputs and len(copies) % 4 == 0 and copies
    assert [leaf.keep for leaf in leafs] == [True] * len(leafs)


# ---- gpu_compute_buffers ----------------------------------------------------------------------


def _shape() -> GraphShape:
    """A small dense graph (one layer) to run a hand-made plan over."""
    return GraphShape(n_tokens=32, n_outputs=32, n_embd=64, n_ff=(128,), n_head=(2,),
                      n_head_kv=(1,), head_k=(32,), head_v=(32,), n_vocab=100, n_kv=(256,),
                      is_swa=(False,), n_stream=1, flash_attn=True, gemma=False,
                      v_width_max=32)


def _hand_plan(**fields: Any) -> DevicePlan:
    """One layer on gpu2, the output head on gpu10, the KV cache with the layer."""
    return DevicePlan(layer_device=("gpu2", "gpu10"), kv_device=("gpu2",),
                      kv_view_bytes=((256 * 32 * 2, 256 * 32 * 2),), weights={},
                      first_gpu="gpu2", op_offload=False, **fields)


def test_compute_buffers_in_device_order_then_the_host() -> None:
    """llama_context prints a compute buffer per backend in the backends' order, CUDA2 before
    CUDA10 (device index, not the name's text), then the CPU backend's; every one an estimate
    (exact False, "estimate" in the report)."""
    buffers = gpu_compute_buffers(_shape(), _hand_plan())
    assert [(b.device, b.buffer, b.kind) for b in buffers] == [
        ("gpu2", "CUDA2", "compute"), ("gpu10", "CUDA10", "compute"), (HOST, "CUDA_Host", "compute")]
    assert [b.exact for b in buffers] == [False, False, False]
    assert all(b.n_bytes > 0 for b in buffers)


def test_compute_buffers_take_the_plans_buffer_names() -> None:
    names = {"gpu2": "RPC0[10.0.0.2:1]", "gpu10": "RPC0[10.0.0.3:1]"}
    buffers = gpu_compute_buffers(_shape(), replace(_hand_plan(device_buffers=names),
                                                    host_buffer="CPU"))
    assert [b.buffer for b in buffers] == ["RPC0[10.0.0.2:1]", "RPC0[10.0.0.3:1]", "CPU"]


def test_a_recurrent_models_compute_buffers(rpc: RpcSession) -> None:
    """Mamba has no KV cache (no "" cache cells: each layer's views default to n_ctx_seq); its
    compute buffers match the load's, pipelined over both servers (its recurrent state buffer
    is an open gap of tests/test_rpc_devices.py, so only the compute lines are compared)."""
    log, raw, prediction = load(rpc, fixture_path("zoo/mamba.gguf"))
    assert "pipeline parallelism enabled" in raw
    theirs = {buffer.buffer: buffer.size for buffer in log.compute_buffers}
    ours = {buffer.buffer: buffer.n_bytes for buffer in prediction.buffers
            if buffer.kind == "compute"}
    assert set(ours) == set(theirs)
    for name, size in theirs.items():
        assert ours[name] / (1 << 20) == pytest.approx(size.value, abs=0.5 * 10 ** -size.decimals)
