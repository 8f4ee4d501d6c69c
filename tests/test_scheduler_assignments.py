"""Which device runs each node of the graph: llama.cpp's scheduler against llamacpp/scheduler.py,
node by node, for every two-server case of tests/test_rpc_devices.py.

With ``GGML_SCHED_DEBUG=2`` ggml_backend_sched_print_assignments (ggml-backend.cpp) lists each
split of a real load's graph, its backend and the nodes it runs (views left out). The
compute buffers compared in test_rpc_devices are sums over those splits; this compares the
assignment itself, which the scheduler decides from a node's weights, its layer, its name
(norms pinned to their layer, the attention pinned to the host) and pass 2's expansion: a
node put on the wrong device with the buffers unchanged shows here. The node lists are the same
on both sides (tests/test_compute_trace.py holds them to llama.cpp's on the CPU)."""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pytest

from gguf_inspect.llamacpp import scheduler
from tests.rpc_servers import RpcSession
from tests.test_rpc_devices import CASES, _session, rpc_cases, load

SPLIT = re.compile(r"## SPLIT #(\d+): (\S+) #")
NODE = re.compile(r"node #\s*\d+ \(\s*\S+\):")


@pytest.fixture(scope="module")
def debug_rpc() -> Iterator[RpcSession]:
    """Two servers, loaded through by a worker started with GGML_SCHED_DEBUG=2 (read when the
    scheduler is made), whose answers are kept apart from test_rpc_devices' (kind
    "sched-debug")."""
    previous = os.environ.get("GGML_SCHED_DEBUG")
    os.environ["GGML_SCHED_DEBUG"] = "2"
    try:
        yield from _session(2, kind="sched-debug")
    finally:
        if previous is None:
            os.environ.pop("GGML_SCHED_DEBUG", None)
        else:
            os.environ["GGML_SCHED_DEBUG"] = previous


def llama_cpp_assignment(raw_log: str, endpoints: list[str]) -> list[str]:
    """The device of each node of the last graph printed, as the estimate names devices:
    "host" for the CPU, "gpuN" for the server given N-th to --rpc."""
    graphs: list[list[str]] = []
    backend = ""
    for line in raw_log.splitlines():
        if match := SPLIT.match(line):
            if match[1] == "0":
                graphs.append([])
            backend = match[2]
        elif NODE.match(line) and graphs:
            graphs[-1].append(backend)
    names = {"CPU": "host", **{f"RPC0[{endpoint}]": f"gpu{index}"
                               for index, endpoint in enumerate(endpoints)}}
    return [names.get(device, device) for device in (graphs[-1] if graphs else [])]


@pytest.mark.parametrize("case", rpc_cases("assignments"))
def test_each_node_runs_where_llama_cpp_runs_it(debug_rpc: RpcSession, case: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ours: list[list[tuple[str, str, str]]] = []
    assign = scheduler._assign

    def recorded(nodes: list[Any], *args: Any) -> dict[int, str]:
        devices = assign(nodes, *args)
        ours.append([(node.op, node.name, devices[id(node)]) for node in nodes
                     if node.op != "VIEW"])
        return devices

    monkeypatch.setattr(scheduler, "_assign", recorded)
    path, fields = CASES[case]
    _, raw_log, _ = load(debug_rpc, path, **fields)
    theirs = llama_cpp_assignment(raw_log, debug_rpc.endpoints)
    mine = [device for _, _, device in ours[-1]]
    assert len(mine) == len(theirs)
    wrong = [(index, ours[-1][index], theirs[index]) for index in range(len(mine))
             if mine[index] != theirs[index]]
    assert wrong == [], f"{len(wrong)} nodes on another device (index, ours, llama.cpp's)"
