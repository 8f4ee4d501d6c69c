"""Each device's compute buffer, placement by placement: the multi-device scheduler's allocator
against llama.cpp's own, for every two-server case of tests/test_rpc_devices.py.

test_rpc_devices compares each compute buffer's size (the log's four decimals of a MiB) and
test_scheduler_assignments each node's device; a split input copied at the wrong size, a copy
made once where llama.cpp makes two, or a tensor freed too early on a server can leave both
unchanged. Here the load runs with ggml-alloc.c's trace on (benchmarks/alloc_trace.py, built
with ``buffers=True`` so that each placement, in-place reuse and free says which backend's
buffer it is in) LD_PRELOADed into the worker that loads through the servers, and the last
graph reserved is compared with ``alloc_trace.our_device_traces`` (scheduler.split_compute_bytes)
buffer by buffer: the same allocs and frees (offset and size) and reuses, in the same order.

A buffer's id is its backend's place in the scheduler: the model's devices in the order the
log's ``using device`` lines give them (llama_prepare_model_devices; ``--split-mode none``
keeps only the main one), then the CPU (llama_context::llama_context).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from typing import Iterator

import pytest

from gguf_inspect.llamacpp.load_log import LoadLog, parse_load_log, split_log_text
from gguf_inspect.reports.runtime import rpc_capacities
from tests.rpc_servers import CAPTURE_STDERR, RpcSession
from tests.test_compute_trace import alloc_trace, build_traced_library
from tests.test_rpc_devices import CASES, _session, case_settings, rpc_cases

@pytest.fixture(scope="module")
def traced_rpc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcSession]:
    """Two servers, loaded through by a worker started with the traced allocator preloaded;
    its answers are kept apart from the other RPC tests', under the traced source's hash."""
    library = build_traced_library(tmp_path_factory.mktemp("rpc-trace") / "libtrace.so",
                                   buffers=True)
    source = library.with_suffix(".c").read_bytes()
    saved = {name: os.environ.get(name) for name in ("LD_PRELOAD", CAPTURE_STDERR)}
    os.environ["LD_PRELOAD"] = str(library)
    os.environ[CAPTURE_STDERR] = "1"
    try:
        yield from _session(2, kind="alloc-trace-" + hashlib.sha256(source).hexdigest()[:16])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def buffer_devices(log: LoadLog, endpoints: list[str]) -> list[str]:
    """Each buffer id's device as the estimate names it: "gpuN" for the server given N-th to
    --rpc, in the log's device order, then "host"."""
    return [f"gpu{endpoints.index(device.description)}" for device in log.devices] + ["host"]


@pytest.mark.parametrize("case", rpc_cases("traces"))
def test_every_placement_on_every_device_is_llama_cpps(traced_rpc: RpcSession,
                                                        case: str) -> None:
    path, fields = CASES[case]
    settings = case_settings(traced_rpc.endpoints, fields)
    capture, trace = traced_rpc.capture(str(path), settings)
    log = parse_load_log(capture.records)
    graphs = alloc_trace.split_graphs(alloc_trace.normalise_c_trace(trace))
    assert graphs, "no allocator trace: was the traced library preloaded?"
    theirs = alloc_trace.by_buffer(graphs[-1])
    devices = buffer_devices(log, traced_rpc.endpoints)
    assert set(theirs) <= set(range(len(devices)))
    ours = alloc_trace.our_device_traces(str(path), replace(
        settings, gpu_capacities=rpc_capacities(log, tuple(traced_rpc.endpoints))))
    assert set(ours) <= set(devices)
    for buffer, device in enumerate(devices):
        runtime, mine = theirs.get(buffer, []), ours.get(device, [])
        assert [event.key for event in alloc_trace.placements(mine)] == [
            event.key for event in alloc_trace.placements(runtime)], \
            f"{device}: " + alloc_trace.first_divergence(runtime, mine)


def test_a_buffer_is_named_by_the_logs_device_order() -> None:
    """--split-mode none keeps only the main device: buffer 0 is then the second server."""
    endpoints = ["127.0.0.1:1", "127.0.0.1:2"]
    assert buffer_devices(_log(["127.0.0.1:2"]), endpoints) == ["gpu1", "host"]
    assert buffer_devices(_log(endpoints[::-1]), endpoints) == ["gpu1", "gpu0", "host"]


def _log(servers: list[str]) -> LoadLog:
    """A log whose ``using device`` lines (llama_prepare_model_devices' format) name these."""
    return parse_load_log(split_log_text("\n".join(
        f"llama_prepare_model_devices: using device RPC0 ({server}) (unknown id) - 7 MiB free"
        for server in servers)))
