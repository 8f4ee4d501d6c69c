"""Predictions against figures from public CUDA load logs (tests/data/cuda_load_logs.json: the
figures restated with each log's address and llama.cpp build; no log text is kept). The model
shapes are the logs' own metadata lines, built as header-only twins; the expected numbers are
the logs'. Where a log predates a llama.cpp change that matters, the data file says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.gpu_shapes import mha, qwen2

LOGS = {log["id"]: log for log in json.loads(
    (Path(__file__).parent / "data" / "cuda_load_logs.json").read_text())["logs"]}
MIB = 1 << 20
GIB = 1 << 30


def _printed(n_bytes: int) -> float:
    return round(n_bytes / MIB, 2)


def _buffers(prediction, kind: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    totals: dict[str, int] = {}
    for item in prediction.buffers:
        if item.kind == kind:
            totals[item.buffer] = totals.get(item.buffer, 0) + item.n_bytes
    return {name: _printed(n_bytes) for name, n_bytes in totals.items()}


def test_every_log_names_its_source_and_build() -> None:
    for log in LOGS.values():
        assert log["source"].startswith("https://github.com/") and log["llama_cpp"]
        assert log["buffers"] and log["predates"]


def test_qwen25_3b_full_offload_kv_output_and_gpu_compute() -> None:
    log = LOGS["qwen25-3b-full-offload"]
    settings = log["settings"]
    prediction = predict_memory(qwen2(log["shape"]), LlamaSettings(
        n_ctx=settings["n_ctx"], n_ubatch=settings["n_ubatch"],
        flash_attn=settings["flash_attn"], gpu_capacities=(24 * GIB,)))
    logged = log["buffers"]
    assert _buffers(prediction, "kv") == {"CUDA0": logged["CUDA0 KV"]}
    cache = prediction.kv_caches[0]
    assert (_printed(cache.k_bytes), _printed(cache.v_bytes)) == (logged["KV K"], logged["KV V"])
    assert _buffers(prediction, "output") == {"CUDA_Host": logged["CUDA_Host output"]}
    # the GPU's compute buffer, the logits at the output head (n_vocab x n_ubatch floats) and
    # what rides with them, to the printed 0.01 MiB
    assert _buffers(prediction, "compute")["CUDA0"] == logged["CUDA0 compute"]


@pytest.mark.xfail(reason="the host compute buffer of build 4701 is 5 MiB below 0.3.36's "
                          "prediction (tests/data/cuda_load_logs.json, not_compared)",
                   strict=True)
def test_qwen25_3b_host_compute() -> None:
    log = LOGS["qwen25-3b-full-offload"]
    prediction = predict_memory(qwen2(log["shape"]), LlamaSettings(
        n_ctx=4096, flash_attn="off", gpu_capacities=(24 * GIB,)))
    assert _buffers(prediction, "compute")["CUDA_Host"] == log["buffers"]["CUDA_Host compute"]


def test_two_gpus_kv_split_by_layers() -> None:
    """128 MiB of f16 KV per layer at n_ctx 4096 (8192 x 4096 x 2 bytes, K and V); with the
    12 layers the CUDA0 figure implies on CUDA0 (--tensor-split 27,73: 41 x 0.27 = 11.07, so
    blocks 0..11), each GPU's KV buffer is the log's."""
    log = LOGS["40-layer-mha-two-gpus"]
    shape, logged = log["shape"], log["buffers"]
    prediction = predict_memory(mha(shape["n_layer"], shape["n_embd_kv"]), LlamaSettings(
        n_ctx=4096, tensor_split="27,73", gpu_capacities=(12 * GIB, 24 * GIB)))
    assert _buffers(prediction, "kv") == {"CUDA0": logged["CUDA0 KV"],
                                          "CUDA1": logged["CUDA1 KV"]}
    cache = prediction.kv_caches[0]
    assert (_printed(cache.k_bytes), _printed(cache.v_bytes)) == (logged["KV K"], logged["KV V"])
