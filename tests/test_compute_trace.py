"""The compute estimate's graph and allocator against llama.cpp's own, event by event.

Every zoo architecture and tiny fixture, at the 12 shapes of the zoo's and the sweep's real-load
tests, and the zoo at three other widths (with quantized caches at two) are loaded for real with
ggml-alloc.c's trace turned on (benchmarks/alloc_trace.py builds it from the copy in
tests/data/ggml-alloc and preloads it; all cases in one process, about 30 s). Each node of the
prompt-processing graph (its op and its sources) and each placement, in-place reuse and free
(kind, offset and size) must be the estimate's (build_graph's nodes through
compute_graph.DynamicAllocator), in order.

Why: the compute buffer is only the peak of this trace. A node of the wrong size, an op missing
or added, a tensor freed too early or too late, or reused in place where llama.cpp does not, can
leave the peak where it was; mutation testing found over a thousand such changes to the graph
modules that no compared buffer noticed. This trace notices them. Building it found graphs
right in bytes but wrong in nodes: Q/K/V biases (qwen2, glm4moe) and per-head Q/K norms (qwen3,
qwen3moe, gemma3, lfm2) left out as in-place no-ops, gemma2 with gemma3's norms but without its
soft-capping, nemotron-h's ReLU^2 without its SQR, gpt-oss's attention without its sinks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, LOADED_KEY_DROPS, ROOT, load_script, unavailable
from tests.test_compute_sweep import SWEEP
from tests.test_compute_wide import QUANTIZED_SHAPES
from tests.test_compute_wide import SHAPES as WIDE_SHAPES
from tests.test_zoo import CONFIGURATIONS

alloc_trace = load_script("alloc_trace", ROOT / "benchmarks" / "alloc_trace.py")

# every shape of the zoo's and the sweep's real-load tests, on the zoo and the tiny llamas, and
# f32 caches (-ctk f32 -ctv f32): flash attention casts each K and V view to F16 first
# (build_attn_mha: ggml_cast), and without it V's transposing copy keeps f32's bytes
F32_CACHES = {f"f32-cache-flash-{mode}": {"cache_type_k": "f32", "cache_type_v": "f32",
                                          "flash_attn": mode} for mode in ("on", "off")}
SHAPES = {**CONFIGURATIONS, **SWEEP, **F32_CACHES}
MODELS = [("zoo", path.stem) for path in sorted((FIXTURES / "zoo").glob("*.gguf"))] + [
    ("fixtures", path.stem) for path in sorted(FIXTURES.glob("*.gguf"))]
# the zoo at other widths (tests/conftest.py WIDTHS) at test_compute_wide's shapes, and the
# quantized caches' rotations, which need heads of 64 or 128; deepseek2-mla's latent head (48)
# takes no 32-value block, as llama.cpp says
WIDE_STEMS = [stem for folder, stem in MODELS if folder == "zoo"]
QUANTIZABLE = [stem for stem in WIDE_STEMS if stem != "deepseek2-mla"]
CASES = [(folder, stem, shape) for folder, stem in MODELS for shape in SHAPES] + [
    (width, stem, shape) for width in ("e512", "ff1024") for stem in WIDE_STEMS
    for shape in WIDE_SHAPES] + [
    ("e256", stem, "defaults") for stem in WIDE_STEMS] + [
    (width, stem, shape) for width in ("e256", "e512") for stem in QUANTIZABLE
    for shape in QUANTIZED_SHAPES]
# zoo models with a key that changes their graph (fixtures/zoo.py variants)
VARIANTS = [model.stem for model in load_script("zoo", FIXTURES / "zoo.py").variants()]
CASES += [("variants", stem, shape) for stem in VARIANTS
          for shape in ("defaults", "ctx-1000-parallel-2-flash-off")]
# zoo models without one header key that llama.cpp loads all the same (its default for the key;
# tests/test_loader_refusals.py), with flash attention and without
CASES += [("dropped", stem, shape) for stem in sorted(LOADED_KEY_DROPS)
          for shape in ("defaults", "ctx-1000-parallel-2-flash-off")]


@pytest.fixture(scope="session")
def traced_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_traced_library(tmp_path_factory.mktemp("alloc-trace") / "libtrace.so")


def build_traced_library(library: Path, buffers: bool = False) -> Path:
    """The traced ggml-alloc.c built into ``library`` (alloc_trace.build), or the reason it
    cannot be (a skip, a failure under CI)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the traced allocator is preloaded with LD_PRELOAD (Linux)")
    if importlib.util.find_spec("llama_cpp") is None:
        unavailable("llama-cpp-python is not installed")
    installed = importlib.metadata.version("llama-cpp-python")
    if installed != alloc_trace.SHIPPED_VERSION:
        unavailable(f"tests/data/ggml-alloc is llama-cpp-python {alloc_trace.SHIPPED_VERSION}'s "
                     f"ggml-alloc.c; {installed} is installed")
    if shutil.which("cc") is None:
        unavailable("no C compiler (cc) to build the traced ggml-alloc.c")
    return alloc_trace.build(library=library, buffers=buffers)


def _model(wide_zoo: Path, folder: str, stem: str) -> Path:
    where = {"zoo": FIXTURES / "zoo", "fixtures": FIXTURES}.get(folder, wide_zoo / folder)
    return where / f"{stem}.gguf"


def _settings(folder: str, shape: str) -> dict[str, Any]:  # shape names are unique
    return {**SHAPES, **QUANTIZED_SHAPES}[shape]


@lru_cache(maxsize=1)
def _traced_source() -> bytes:
    source = alloc_trace.SHIPPED_SOURCE / "ggml" / "src" / "ggml-alloc.c"
    return alloc_trace.debug_source(source.read_text()).encode()


def _answer_key(model: Path, settings: dict[str, Any]) -> str:
    """llama.cpp's trace depends on the file, the settings and the traced allocator only."""
    return "alloc-trace-" + hashlib.sha256(
        model.read_bytes() + json.dumps(settings, sort_keys=True).encode()
        + _traced_source()).hexdigest()


@pytest.fixture(scope="session")
def runtime_traces(traced_library: Path, wide_zoo: Path) -> dict[tuple[str, str, str], list[str]]:
    """llama.cpp's trace for every case, loaded in one process; kept between runs in
    GGUF_INSPECT_RUNTIME_ANSWERS when set (benchmarks/mutation.py: they do not change with our
    code), as tests/conftest.py keeps the other real loads."""
    answers = os.environ.get("GGUF_INSPECT_RUNTIME_ANSWERS")
    kept = Path(answers) if answers else None
    loads = {case: (_model(wide_zoo, case[0], case[1]), _settings(case[0], case[2]))
             for case in CASES}
    saved = {case: kept / _answer_key(*load) for case, load in loads.items()} if kept else {}
    traces = {case: json.loads(saved[case].read_text()) for case in saved
              if saved[case].exists()}
    missing = [case for case in CASES if case not in traces]
    loaded = alloc_trace.runtime_traces([(str(loads[case][0]), loads[case][1])
                                         for case in missing], traced_library) if missing else []
    for case, trace in zip(missing, loaded):
        traces[case] = trace
        if kept is not None:
            kept.mkdir(parents=True, exist_ok=True)
            saved[case].write_text(json.dumps(trace))
    return traces


@pytest.mark.parametrize("folder, stem, shape", CASES)
def test_every_node_placement_and_free_is_llama_cpps(runtime_traces: dict, wide_zoo: Path,
                                                      folder: str, stem: str, shape: str) -> None:
    runtime = runtime_traces[(folder, stem, shape)]
    ours = alloc_trace.our_trace(str(_model(wide_zoo, folder, stem)), _settings(folder, shape))
    assert [event.key for event in alloc_trace.placements(ours)] == [
        event.key for event in alloc_trace.placements(runtime)], \
        alloc_trace.first_divergence(runtime, ours)
    # and the graph itself: each node's op and sources (views followed to what they view)
    theirs, mine = alloc_trace.structure(runtime), alloc_trace.structure(ours)
    index = next((i for i, pair in enumerate(zip(theirs, mine)) if pair[0] != pair[1]),
                 min(len(theirs), len(mine)))
    assert mine == theirs, f"node {index}: llama.cpp {theirs[index:index + 3]}, " \
                           f"ours {mine[index:index + 3]}"


def test_a_missing_reuse_is_a_difference() -> None:
    """The comparison sees in-place reuses, not only allocations: a graph that leaves out an
    in-place node (a bias ADD) allocates and frees exactly as before."""
    runtime = ["alloc q 64 @ 0", "inplace q_b <- q", "free q_b @ 0 (60)"]
    ours = ["alloc q 64 @ 0", "free q @ 0 (60)"]
    assert [e.key for e in alloc_trace.placements(runtime)] != [
        e.key for e in alloc_trace.placements(ours)]
    assert alloc_trace.first_divergence(runtime, ours).startswith("diverge at event 1")
