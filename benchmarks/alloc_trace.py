"""llama.cpp's own graph allocator, traced, against the compute estimate's, for debugging a
compute-buffer difference down to the first tensor placed at a different offset.

ggml-alloc.c (ggml_gallocr, the allocator that sizes every compute buffer) prints each placement,
reuse and free through ``AT_PRINTF``, a macro compiled out in release builds. ``build`` recompiles
that one file from the source vendored in the pinned llama-cpp-python's sdist with the macro
pointed at stderr, as a small shared library; ``runtime`` loads a model for real with that
library ``LD_PRELOAD``ed ahead of libggml-base (its ggml_gallocr_* symbols win) and keeps the
trace of the last graph reserved (the prompt-processing graph that sizes the buffer); ``ours``
prints the same trace from ``compute_graph.peak_bytes`` (``DynamicAllocator``); ``compare`` runs
both and shows where they first place or free at different offsets::

    python benchmarks/alloc_trace.py build
    PYTHONPATH=. python benchmarks/alloc_trace.py compare fixtures/zoo/lfm2.gguf '{"n_parallel": 8}'
    PYTHONPATH=. python benchmarks/alloc_trace.py runtime fixtures/zoo/lfm2.gguf > /tmp/c.txt
    PYTHONPATH=. python benchmarks/alloc_trace.py ours fixtures/zoo/lfm2.gguf > /tmp/ours.txt

Traces are normalised to one event a line: ``alloc NAME BYTES @ OFFSET`` (BYTES aligned, as
ggml_dyn_tallocr_alloc prints them), ``inplace NAME <- PARENT`` (a node reusing its parent's
memory: ggml_gallocr_allocate_node) and ``free NAME @ OFFSET (BYTES)``. Only allocs and frees
are compared, by kind, offset and size: tensor names differ (ours name inputs by role, not as
llama.cpp's graph builders do). ``build`` needs a C compiler; it compiles the copy of
ggml-alloc.c shipped in tests/data/ggml-alloc (the pinned llama-cpp-python's, unchanged) unless
``--source`` names an unpacked sdist (``pip download --no-deps --no-binary :all:
llama-cpp-python==0.3.36``). ``runtime`` and ``compare`` need llama-cpp-python. Linux only
(``LD_PRELOAD``). The parsing and comparison are pure functions, tested on a committed trace
sample (tests/test_alloc_trace.py); tests/test_compute_trace.py compares whole traces of real
loads of every zoo architecture.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
LIBRARY = OUT / "libggml-alloc-trace.so"
# ggml-alloc.c and its includes as the pinned llama-cpp-python ships them (tests/data/ggml-alloc/
# README.md), so that building needs neither the sdist nor a network
SHIPPED_SOURCE = ROOT / "tests" / "data" / "ggml-alloc"
SHIPPED_VERSION = "0.3.36"
QUIET_PRINTF = "#define AT_PRINTF(...)\n"
LOUD_PRINTF = "#define AT_PRINTF(...) fprintf(stderr, __VA_ARGS__)\n"
# ggml_gallocr_alloc_graph_impl's "exec:" line names each node and its sources; the traced copy
# also prints their addresses (names repeat: a layer's Qcur-0 is a MUL_MAT, an ADD and a ROPE)
# and the op's name rather than its description (GLU and UNARY, as the estimate calls them)
EXEC_PRINTS = (
    ('AT_PRINTF("exec: %s (%s) <= ", ggml_op_desc(node), node->name);',
     'AT_PRINTF("exec: %s (%s) @%p <= ", ggml_op_name(node->op), node->name, (void *) node);'),
    ('AT_PRINTF("%s", parent->name);', 'AT_PRINTF("%s @%p", parent->name, (void *) parent);'),
)
# with several buffers (one per backend of the multi-device scheduler) the traced copy built with
# ``buffers=True`` also says which buffer each placement, reuse and free is in: a "buffer N" line
# before it (ggml_gallocr_allocate_node and ggml_gallocr_free_node know the buffer id; the
# allocator's own "allocating" line does not)
BUFFER_PRINTS = (
    ("        hn->allocated = true;\n        assert(hn->addr.offset == 0);\n",
     "        hn->allocated = true;\n        assert(hn->addr.offset == 0);\n"
     '        AT_PRINTF("buffer %d\\n", buffer_id);\n'),
    ('    AT_PRINTF("%s: freeing %s at', '    AT_PRINTF("buffer %d\\n", buffer_id);\n'
                                        '    AT_PRINTF("%s: freeing %s at'),
)
VIEW_OPS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"})

_ALLOCATING = re.compile(r"ggml_dyn_tallocr_alloc: allocating (.*) \((\d+) bytes\) - "
                         r"block -?\d+, offset (\d+)")
# names may hold spaces (llama.cpp names a CONT of a view " (reshaped) (view) (cont)")
_REUSING = re.compile(r"reusing (?:view )?parent (.*) for (.*)$")
_EXEC = re.compile(r"exec: (\S+) \((.*)\) @(\S+) <= (.*)$")
_SOURCE = re.compile(r"(.*?) @(0x[0-9a-f]+|\(nil\))(?:, |$)")
_BUFFER = re.compile(r"buffer (\d+)$")
_FREEING = re.compile(r"ggml_gallocr_free_node: freeing (.*) at \{chunk=\d+, offset=(\d+)\} "
                      r"\((\d+) bytes")


# ---- pure parts: parse, split, compare ---------------------------------------------------------


def debug_source(release_source: str, buffers: bool = False) -> str:
    """ggml-alloc.c with its AT_PRINTF trace on (the release build defines it empty); with
    ``buffers``, each event preceded by the buffer it is in (BUFFER_PRINTS)."""
    if QUIET_PRINTF not in release_source:
        raise ValueError("ggml-alloc.c no longer defines AT_PRINTF(...) empty: update the tool")
    for release, traced in EXEC_PRINTS + (BUFFER_PRINTS if buffers else ()):
        if release not in release_source:
            raise ValueError(f"ggml-alloc.c no longer prints {release}: update the tool")
        release_source = release_source.replace(release, traced, 1)
    return release_source.replace(QUIET_PRINTF, LOUD_PRINTF, 1)


def normalise_c_trace(text: str) -> list[str]:
    """ggml-alloc.c's AT_PRINTF lines as normalised events, every graph of the run in order."""
    events = []
    for line in text.splitlines():
        if match := _ALLOCATING.match(line):
            events.append(f"alloc {match[1]} {match[2]} @ {match[3]}")
        elif match := _REUSING.match(line):
            events.append(f"inplace {match[2]} <- {match[1]}")
        elif match := _FREEING.match(line):
            events.append(f"free {match[1]} @ {match[2]} ({match[3]})")
        elif match := _BUFFER.match(line):
            events.append(f"buffer {match[1]}")
        elif match := _EXEC.match(line):
            sources = "|".join(f"{name}@{address}" for name, address in _SOURCE.findall(match[4]))
            events.append(f"exec {match[1]} {match[3]} <= {sources}")
    return events


def split_graphs(events: list[str]) -> list[list[str]]:
    """The events cut into one list per reserved graph. Every graph starts from an empty
    allocator (ggml_dyn_tallocr_reset) with the same first input, so a graph begins at each
    allocation of the run's first tensor name at offset 0."""
    first = next((event.split()[1] for event in events if event.startswith("alloc ")), None)
    if first is None:
        return [events] if events else []
    starts = [index for index, event in enumerate(events)
              if event.startswith(f"alloc {first} ") and event.endswith(" @ 0")]
    # a "buffer N" line belongs to the placement after it
    starts = [index - 1 if index and events[index - 1].startswith("buffer ") else index
              for index in starts]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [events[start:end] for start, end in zip(starts, [*starts[1:], len(events)])]


def by_buffer(events: list[str]) -> dict[int, list[str]]:
    """A graph's placements, reuses and frees by the buffer each is in (a trace of the library
    built with ``buffers=True``: each such event follows its "buffer N" line)."""
    found: dict[int, list[str]] = {}
    buffer = None
    for event in events:
        if event.startswith("buffer "):
            buffer = int(event.split()[1])
        elif event.split()[0] in ("alloc", "inplace", "free") and buffer is not None:
            found.setdefault(buffer, []).append(event)
            buffer = None
    return found


@dataclass(frozen=True)
class Event:
    """One placement or free, reduced to what two traces are compared on (not the tensor's
    name: the estimate names inputs by role, not as llama.cpp's graph builders do)."""
    kind: str  # "alloc", "free" or "inplace" (which has no offset or size of its own: -1, 0)
    offset: int
    n_bytes: int  # as printed: aligned for an alloc (ggml_dyn_tallocr_alloc), not for a free
    line: str

    @property
    def key(self) -> tuple[str, int, int]:
        return self.kind, self.offset, self.n_bytes


def placements(events: list[str]) -> list[Event]:
    """The allocs and frees that move memory (zero-byte tensors take no room and are dropped),
    and the in-place reuses (a node given its parent's memory instead of an allocation)."""
    kept = []
    for line in events:
        kind = line.split()[0]
        if kind == "inplace":
            kept.append(Event(kind, -1, 0, line))
        elif kind == "alloc" and not line.split()[-3] == "0":
            kept.append(Event(kind, int(line.rsplit("@ ", 1)[1]), int(line.split()[-3]), line))
        elif kind == "free" and not line.endswith("(0)"):
            offset, n_bytes = re.search(r"@ (\d+) \((\d+)\)$", line).groups()
            kept.append(Event(kind, int(offset), int(n_bytes), line))
    return kept


def structure(events: list[str]) -> list[tuple[str, tuple[Any, ...]]]:
    """The graph's nodes from its ``exec`` events, views left out: each node's op and its
    sources, a source being an earlier node (by index, through any views), a graph input (a
    leaf the allocator placed: its name has an ``alloc`` event) or external (a weight, a cache).
    The ``exec`` events are the traced ggml-alloc.c's (EXEC_PRINTS) or ``our_trace``'s."""
    allocated = {line.rsplit(" ", 3)[0].split(" ", 1)[1] for line in events
                 if line.startswith("alloc ")}
    seen: dict[str, Any] = {}
    nodes: list[tuple[str, tuple[Any, ...]]] = []

    def source(entry: str) -> Any:
        name, address = entry.rsplit("@", 1)
        return seen.get(address, "input" if name in allocated else "external")

    for line in events:
        if not line.startswith("exec "):
            continue
        head, _, sources = line.partition(" <= ")
        op, address = head.split()[1:3]
        # ggml_cast makes a CPY whose destination (src[1]) is the node itself: left out
        refs = tuple(source(entry) for entry in sources.split("|")
                     if entry and entry.rsplit("@", 1)[1] != address)
        if op in VIEW_OPS:
            seen[address] = refs[0] if refs else "external"
        else:
            seen[address] = len(nodes)
            nodes.append((op, refs))
    return nodes


def comparable(events: list[str]) -> tuple[list[tuple[str, int, int]], list[tuple[str, Any]]]:
    """What tests/test_compute_trace.py holds equal between two traces: the placements (kind,
    offset, size) and the node structure."""
    return [event.key for event in placements(events)], structure(events)


def peak(events: list[str]) -> int:
    """The highest end of any allocation: the compute buffer the graph needs."""
    ends = [int(line.rsplit("@ ", 1)[1]) + int(line.split()[-3])
            for line in events if line.startswith("alloc ")]
    return max(ends, default=0)


def first_divergence(runtime: list[str], ours: list[str], context: int = 8) -> str:
    """Where the two traces first place or free a different size or at a different offset, side
    by side with the events around it; or that they agree, with the counts and both peaks."""
    left, right = placements(runtime), placements(ours)
    for index, (a, b) in enumerate(zip(left, right)):
        if a.key != b.key:
            rows = [f"diverge at event {index} (llama.cpp | ours)"]
            for row in range(max(0, index - context), min(len(left), len(right), index + 6)):
                mark = ">" if row == index else " "
                rows.append(f"{mark} {left[row].line:60} | {right[row].line}")
            return "\n".join(rows)
    verdict = "same" if len(left) == len(right) else "same prefix, different lengths"
    return (f"{verdict}: {len(left)} vs {len(right)} events; peak {peak(runtime)} vs "
            f"{peak(ours)} bytes")


# ---- the steps that need a compiler, the sdist or llama.cpp ----------------------------------


def installed_library_folder() -> Path:
    """Where llama-cpp-python keeps libggml-base.so (found without importing llama_cpp)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        raise SystemExit("llama-cpp-python is not installed in this Python")
    return Path(spec.origin).parent / "lib"


def build(source: Path = SHIPPED_SOURCE, compiler: str = "cc",
          library: Path = LIBRARY, buffers: bool = False) -> Path:
    """Compile the traced ggml-alloc.c into ``library``, linked against the installed
    libggml-base.so (the ggml and backend functions it calls). ``source`` holds ``ggml/``
    (tests/data/ggml-alloc) or is an unpacked sdist (``vendor/llama.cpp/ggml/``); ``buffers``:
    each event says its buffer (debug_source)."""
    ggml = source / "ggml" if (source / "ggml").is_dir() else source / "vendor/llama.cpp/ggml"
    installed = installed_library_folder()
    library.parent.mkdir(parents=True, exist_ok=True)
    traced = library.with_suffix(".c")
    traced.write_text(debug_source((ggml / "src" / "ggml-alloc.c").read_text(), buffers))
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", f"-I{ggml / 'include'}",
                    f"-I{ggml / 'src'}", str(traced), "-o", str(library), f"-L{installed}",
                    "-lggml-base", f"-Wl,-rpath,{installed}"], check=True)
    return library


CASE_MARK = "@@alloc-trace case "


def runtime_traces(cases: list[tuple[str, dict]], library: Path = LIBRARY) -> list[list[str]]:
    """The last graph llama.cpp reserves for each (model, settings) case, traced by the
    preloaded allocator: one process loads them all (``load`` with several cases), marking on
    stderr where each case starts (the trace's own lines go to stderr unbuffered, in order)."""
    if not library.exists():
        raise SystemExit(f"{library} missing: run `python {__file__} build`")
    environment = {**os.environ, "LD_PRELOAD": str(library)}
    loaded = subprocess.run([sys.executable, __file__, "load-many"],
                            input=json.dumps([[model, settings] for model, settings in cases]),
                            env=environment, capture_output=True, text=True, check=True)
    traces = []
    for index, text in enumerate(loaded.stderr.split(CASE_MARK)[1:]):
        graphs = split_graphs(normalise_c_trace(text))
        if not graphs:
            raise SystemExit(f"no allocator trace for {cases[index]}: was the library preloaded?")
        traces.append(graphs[-1])
    if len(traces) != len(cases):
        raise SystemExit(f"{len(traces)} traces for {len(cases)} cases:\n{loaded.stderr[-2000:]}")
    return traces


def runtime_trace(model: str, settings: dict, library: Path = LIBRARY) -> list[str]:
    """The last graph llama.cpp reserves for ``model``, traced by the preloaded allocator."""
    return runtime_traces([(model, settings)], library)[0]


def load_many(cases: list[list]) -> None:
    """The real loads (run under LD_PRELOAD by runtime_traces), each after its mark."""
    for index, (model, settings) in enumerate(cases):
        os.write(2, f"{CASE_MARK}{index}\n".encode())
        load(model, settings)


def load(model: str, settings: dict) -> None:
    """The real load (run under LD_PRELOAD by runtime_trace); prints the logged compute buffer."""
    from gguf_inspect.llamacpp.runtime import capture_load
    from gguf_inspect.llamacpp.settings import resolve_settings

    log = capture_load(model, resolve_settings(settings)[0]).raw_log
    print(" ".join(line.strip() for line in log.splitlines() if "compute buffer size" in line))


def our_trace(model: str, settings: dict) -> list[str]:
    """compute_graph.peak_bytes's placements for the graph predict_memory estimates."""
    import gguf_inspect.llamacpp.compute_graph as compute_graph
    import gguf_inspect.llamacpp.memory as memory
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.settings import resolve_settings

    events: list[str] = []
    allocate, free = compute_graph._allocate, compute_graph._free

    def traced_allocate(allocator: compute_graph.DynamicAllocator, node) -> None:
        was_allocated = node.allocated
        allocate(allocator, node)
        if was_allocated or not node.allocated:
            return
        parent = next((p for p in node.srcs if p.offset == node.offset and not p.allocated
                       and p.view_src is None and p.offset >= 0), None)
        if parent is not None and node.op in compute_graph.INPLACE_OPS:
            events.append(f"inplace {node.name} <- {parent.name}")
        else:
            events.append(f"alloc {node.name} {allocator.aligned(node.n_bytes)} @ {node.offset}")

    def traced_free(allocator: compute_graph.DynamicAllocator, node) -> None:
        if not node.is_output:  # the size unaligned, as ggml_gallocr_free_node prints it
            events.append(f"free {node.name} @ {node.offset} ({node.n_bytes})")
        free(allocator, node)

    def traced_estimate(shape: compute_graph.GraphShape, alignment: int) -> int:
        events.clear()
        nodes, unused_inputs = compute_graph.build_graph(shape)
        peak_bytes = compute_graph.peak_bytes(nodes, alignment, unused_inputs)
        for node in nodes:  # the "exec" lines, as the traced ggml-alloc.c prints them
            sources = "|".join(f"{source.name}@{id(source):#x}" for source in node.srcs)
            events.append(f"exec {node.op} {id(node):#x} <= {sources}")
        return peak_bytes

    estimate = memory.estimate_compute_bytes
    compute_graph._allocate, compute_graph._free = traced_allocate, traced_free
    memory.estimate_compute_bytes = traced_estimate
    try:
        memory.predict_memory(read_gguf(model), resolve_settings(settings)[0])
    finally:
        compute_graph._allocate, compute_graph._free = allocate, free
        memory.estimate_compute_bytes = estimate
    return list(events)


def our_device_traces(model: str, settings: Any) -> dict[str, list[str]]:
    """The multi-device scheduler's placements (scheduler.split_compute_bytes), by device
    ("gpu0", "gpu1", ..., "host"), for the graph predict_memory splits under ``settings`` (a
    LlamaSettings): in-place reuses, allocs (aligned) and frees (unaligned), as ggml-alloc.c
    prints them for each buffer."""
    import gguf_inspect.llamacpp.memory as memory
    import gguf_inspect.llamacpp.scheduler as scheduler
    from gguf_inspect.gguf.open import read_gguf

    events: dict[str, list[str]] = {}
    allocate, free, split = scheduler._allocate, scheduler._free, scheduler.split_compute_bytes

    def traced_allocate(item: Any, allocator: Any) -> None:
        before = item.offset
        allocate(item, allocator)
        if before != -1 or item.offset < 0:
            return
        taken = any(parent.offset == -3 for parent in item.srcs)
        events.setdefault(item.device, []).append(
            f"inplace {item.node.name} <- parent" if taken
            else f"alloc {item.node.name} {allocator.aligned(item.node.n_bytes)} @ {item.offset}")

    def traced_free(item: Any, allocator: Any) -> None:
        if not item.keep and item.offset >= 0:
            events.setdefault(item.device, []).append(
                f"free {item.node.name} @ {item.offset} ({item.node.n_bytes})")
        free(item, allocator)

    def traced_split(*arguments: Any, **keywords: Any) -> dict[str, int]:
        events.clear()  # the last graph split counts, as the last one llama.cpp reserves
        return split(*arguments, **keywords)

    scheduler._allocate, scheduler._free = traced_allocate, traced_free
    scheduler.split_compute_bytes = traced_split
    try:
        memory.predict_memory(read_gguf(model), settings)
    finally:
        scheduler._allocate, scheduler._free = allocate, free
        scheduler.split_compute_bytes = split
    return {device: list(found) for device, found in events.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    built = steps.add_parser("build", help="compile the traced ggml-alloc.c into benchmarks/out/")
    built.add_argument("--source", type=Path, default=SHIPPED_SOURCE,
                       help="a folder holding ggml/, or an unpacked llama-cpp-python sdist "
                            "(default: the copy shipped in tests/data/ggml-alloc)")
    built.add_argument("--compiler", default="cc")
    for name in ("compare", "runtime", "ours", "load"):
        step = steps.add_parser(name)
        step.add_argument("model")
        step.add_argument("settings", nargs="?", default="{}",
                          help="LlamaSettings fields as JSON, e.g. '{\"n_parallel\": 8}'")
    steps.add_parser("load-many", help="(internal) load the [model, settings] cases on stdin")
    arguments = parser.parse_args()
    if arguments.step == "load-many":
        load_many(json.load(sys.stdin))
        return
    if arguments.step == "build":
        print(build(arguments.source, arguments.compiler))
        return
    settings = json.loads(arguments.settings)
    if arguments.step == "load":
        load(arguments.model, settings)
    elif arguments.step == "runtime":
        print("\n".join(runtime_trace(arguments.model, settings)))
    elif arguments.step == "ours":
        print("\n".join(our_trace(arguments.model, settings)))
    else:
        print(first_divergence(runtime_trace(arguments.model, settings),
                               our_trace(arguments.model, settings)))


if __name__ == "__main__":
    main()
