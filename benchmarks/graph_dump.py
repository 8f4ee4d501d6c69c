"""Two node lists side by side for one model and one set of llama.cpp settings: llama.cpp's own
prompt-processing graph (``GGML_SCHED_DEBUG=2`` on a real CPU load) and the compute estimate's
(``compute_graph.build_graph``), each with op, name and size, for comparing a graph node by node.

    PYTHONPATH=. python benchmarks/graph_dump.py fixtures/zoo/olmo2.gguf '{"n_parallel": 8}' runtime
    PYTHONPATH=. python benchmarks/graph_dump.py fixtures/zoo/olmo2.gguf '{"n_parallel": 8}' ours

``runtime`` prints the graph dump numbered ``index`` (default 1: the scheduler prints one per
reserve; they share a structure) and the logged compute buffer; ``ours`` prints the estimate's
nodes and peak. Needs llama-cpp-python for ``runtime``.
"""

from __future__ import annotations

import json
import os
import re
import sys


def runtime_nodes(model: str, settings: dict, index: int) -> None:
    os.environ["GGML_SCHED_DEBUG"] = "2"
    from gguf_inspect.llamacpp.runtime import capture_load
    from gguf_inspect.llamacpp.settings import LlamaSettings

    log = capture_load(model, LlamaSettings(**settings)).raw_log
    parts = log.split("## SPLIT #0")
    print(f"{len(parts) - 1} graphs", file=sys.stderr)
    for line in parts[index].splitlines():
        match = re.match(r"node #\s*(\d+) \(\s*(\S+)\):\s+(\S+) \(\s*(\S+)\) \[.*?\] use=(\d+),"
                         r"c=\d+:(.*)", line)
        if match:
            sources = re.findall(r"\s+(\S+) \(\s*(\S+)\) \[", match.group(6))
            print(f"{match.group(1):>4} {match.group(2):12} {match.group(3):24} "
                  f"{match.group(4):>6} <- " + ", ".join(f"{n}({s})" for n, s in sources))
        elif line.startswith("node #"):
            print(line[:200])
    for line in log.splitlines():
        if "compute buffer size" in line:
            print(line, file=sys.stderr)


def our_nodes(model: str, settings: dict) -> None:
    import gguf_inspect.llamacpp.memory as memory
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.compute_graph import build_graph, peak_bytes
    from gguf_inspect.llamacpp.settings import LlamaSettings

    def show(shape, alignment: int) -> int:  # stands in for estimate_compute_bytes
        nodes, unused = build_graph(shape)
        for index, node in enumerate(nodes):
            sources = ", ".join(f"{s.name}({s.n_bytes / 1024:.1f}K)" for s in node.srcs)
            print(f"{index:4} {node.op:14} {node.name:24} {node.n_bytes / 1024:8.1f}K <- {sources}")
        nodes, unused = build_graph(shape)
        peak = peak_bytes(nodes, alignment, unused)
        print(f"peak {peak / 2**20:.4f} MiB", file=sys.stderr)
        return peak

    memory.estimate_compute_bytes = show
    memory.predict_memory(read_gguf(model), LlamaSettings(**settings))


def main() -> None:
    model = sys.argv[1]
    settings = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    which = sys.argv[3] if len(sys.argv) > 3 else "runtime"
    if which == "runtime":
        runtime_nodes(model, settings, int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    else:
        our_nodes(model, settings)


if __name__ == "__main__":
    main()
