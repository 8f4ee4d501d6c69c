"""What a surviving mutant of the compute-graph modules changes, for judging it: the node list
``build_graph`` returns and the predicted buffers, over every fixture model (the zoo and the
tiny llamas) at the zoo's and the sweep's shapes and at more shapes (``MORE_SHAPES``); where a
prediction moves, a real load at that shape (llama.cpp's answers kept, tests/conftest.py) says
whether the unmutated prediction is exact there and the mutant's is not: a shape that kills it.

    CI=1 python benchmarks/mutant_effects.py /tmp/mutation/gguf_inspect-llamacpp-compute_graph.py \\
        gguf_inspect.llamacpp.compute_graph.x_build_graph__mutmut_636 ... [--full]

The first argument is a ``benchmarks/mutation.py --keep`` folder: its ``mutants/`` holds the
mutated module, whose functions pick the mutant named in ``MUTANT_UNDER_TEST`` at each call
(mutmut's trampoline), so one process judges every mutant. Prints one JSON line a mutant:
``graph`` (how many (model, shape) pairs' node lists change, and which models and shapes),
``prediction`` (the same for the predicted buffers) and ``kills`` (a shape where llama.cpp's real load tells them apart, or null).
A mutant that changes neither on any pair is equivalent on every fixture; one that changes the
graph only is not killed by any compute buffer these fixtures reach.

``--traces`` judges the mutants as tests/test_compute_trace.py does instead: for each of its
cases (the defaults first), whether the mutant's allocator trace (every placement, reuse and
free, and each node's op and sources) differs from llama.cpp's where the unmutated one's does
not; one JSON line a mutant, ``trace_kills`` naming the first such case (or null). llama.cpp's traces come from the kept answers (run the
test once with GGUF_INSPECT_RUNTIME_ANSWERS set); a mutant that raises counts as killed (the
test fails), one that runs past 60 s too (as mutmut counts a timeout).

``--assignments`` and ``--rpc-traces`` judge by the two-server RPC tests instead, case by case:
tests/test_scheduler_assignments.py (each node's device) and tests/test_rpc_traces.py (each
device's placements, reuses and frees); one JSON line a mutant, ``assignment_kills`` or
``rpc_trace_kills`` naming the first case the unmutated module passes and the mutant fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MORE_SHAPES: dict[str, dict[str, Any]] = {
    "ubatch-2048-ctx-8192": {"n_ctx": 8192, "n_batch": 2048, "n_ubatch": 2048},
    "ubatch-3-ctx-128-flash-off": {"n_ctx": 128, "n_ubatch": 3, "flash_attn": "off"},
    "ubatch-2-flash-off": {"n_ctx": 512, "n_ubatch": 2, "flash_attn": "off"},
    "parallel-4-ctx-2048-flash-off": {"n_ctx": 2048, "n_parallel": 4, "flash_attn": "off"},
    "ctx-64-ubatch-64": {"n_ctx": 64, "n_ubatch": 64},
    "ctx-64-ubatch-64-flash-off": {"n_ctx": 64, "n_ubatch": 64, "flash_attn": "off"},
    "q8-cache-ubatch-16": {"n_ctx": 256, "n_ubatch": 16, "cache_type_k": "q8_0",
                           "cache_type_v": "q8_0", "flash_attn": "on"},
    "q8-k-flash-off-ubatch-9": {"n_ctx": 256, "n_ubatch": 9, "cache_type_k": "q8_0",
                                "flash_attn": "off"},
    "embeddings-ubatch-5-flash-off": {"n_ctx": 512, "n_ubatch": 5, "embeddings": True,
                                      "flash_attn": "off"},
    "ubatch-1024-flash-off": {"n_ctx": 1024, "n_ubatch": 1024, "n_batch": 1024,
                              "flash_attn": "off"},
    "ubatch-128-parallel-2-flash-off": {"n_ctx": 256, "n_ubatch": 128, "n_parallel": 2,
                                        "flash_attn": "off"},
    # tests/test_zoo.py::test_own_graphs_follow_a_quantized_cache's settings (its real-width
    # twins: benchmarks/real_width_probe.py)
    "twin-q8-cache": {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attn": "on"},
    "twin-q4-k-q8-v": {"cache_type_k": "q4_0", "cache_type_v": "q8_0", "flash_attn": "on"},
}


def _setup(keep: Path) -> None:
    # the mutated package first; the tests (and their kept llama.cpp answers) from this checkout
    sys.path.insert(0, str(keep / "mutants"))
    import gguf_inspect  # noqa: F401  (the mutated copy: its submodules load from there too)

    sys.path.insert(0, str(ROOT))  # then today's tests, not the folder's copy of them
    os.environ.setdefault("GGUF_INSPECT_RUNTIME_ANSWERS", "/tmp/gguf-inspect-runtime-answers")
    import tests.conftest  # noqa: F401  (keeps llama.cpp's answers between runs)


def _forget() -> None:
    """Every functools cache of the package cleared, as tests/conftest.py does before each test
    (whose version matches modules by their file under this checkout; the mutated package
    here lives in the keep folder, so it matches by name)."""
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("gguf_inspect"):
            for value in list(vars(module).values()):
                if hasattr(value, "cache_clear"):
                    value.cache_clear()


def _label(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def _summary(pairs: list[tuple[Path, str]]) -> dict[str, Any]:
    return {"pairs": len(pairs), "models": sorted({_label(path) for path, _ in pairs}),
            "shapes": sorted({shape for _, shape in pairs})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keep", type=Path, help="a benchmarks/mutation.py --keep module folder")
    parser.add_argument("mutants", nargs="+")
    parser.add_argument("--full", action="store_true",
                        help="predict every buffer again per mutant (for mutants of the code "
                             "that makes the graph's shape: graph_layout, memory); by default "
                             "the shapes the unmutated code made are rebuilt and allocated")
    parser.add_argument("--models", type=Path, action="append", default=[],
                        help="another folder of models to judge on (e.g. a widened zoo)")
    parser.add_argument("--shape", action="append", default=[],
                        help="judge at these shapes only (names of the tables below)")
    parser.add_argument("--stem", action="append", default=[],
                        help="judge on the models of these names only (e.g. the architectures "
                             "that reach the mutated module)")
    parser.add_argument("--tolerance", type=float, default=0.00006,
                        help="the test's own compute tolerance in MiB (test_zoo's quantized-cache "
                             "twins: 0.00015)")
    parser.add_argument("--no-fixtures", action="store_true",
                        help="only the --models folders, not the zoo and the tiny llamas")
    parser.add_argument("--traces", action="store_true",
                        help="judge by tests/test_compute_trace.py's allocator traces instead")
    parser.add_argument("--assignments", action="store_true",
                        help="judge by tests/test_scheduler_assignments.py instead (each node's "
                             "device in the two-server RPC loads; llama.cpp's answers kept)")
    parser.add_argument("--rpc-traces", action="store_true",
                        help="judge by tests/test_rpc_traces.py instead (every device's "
                             "placements in the two-server RPC loads; llama.cpp's kept)")
    parser.add_argument("--cases", default="",
                        help="only the cases whose label holds this (e.g. 'variants/' with "
                             "--traces, 'q8k' with --rpc-traces: the ones added since a first "
                             "judging)")
    args = parser.parse_args()
    _setup(args.keep)
    if args.traces:
        judge_traces(args.mutants, args.cases)
        return
    if args.assignments:
        judge_assignments(args.mutants, args.cases)
        return
    if args.rpc_traces:
        judge_rpc_traces(args.mutants, args.cases)
        return
    from gguf_inspect.commands.runtime import compare_runtime
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp import compute_graph, memory, scheduler
    from gguf_inspect.llamacpp.settings import resolve_settings
    from tests.test_compute_sweep import SWEEP
    from tests.test_compute_wide import QUANTIZED_SHAPES
    from tests.test_runtime_compare import assert_all_exact
    from tests.test_zoo import CONFIGURATIONS

    shapes = {name: values for name, values in {**CONFIGURATIONS, **SWEEP, **QUANTIZED_SHAPES,
                                                **MORE_SHAPES}.items()
              if not args.shape or name in args.shape}
    folders = [*([] if args.no_fixtures else [ROOT / "fixtures" / "zoo", ROOT / "fixtures"]),
               *args.models]
    models = {path: read_gguf(str(path)) for folder in folders
              for path in sorted(folder.glob("*.gguf")) if not args.stem or path.stem in args.stem}
    build, estimate = compute_graph.build_graph, compute_graph.estimate_compute_bytes
    graphs: list[str] = []
    made: dict[tuple[Path, str], tuple[Any, int]] = {}  # the graph shape each pair made
    current: list[tuple[Path, str]] = []

    def recorded(shape: Any) -> Any:
        nodes, unused = build(shape)
        graphs.append(_serialized(nodes, unused))
        return nodes, unused

    def recording_estimate(shape: Any, alignment: int) -> int:
        if current:  # not during a real-load comparison
            made[current[0]] = (shape, alignment)
        return estimate(shape, alignment)

    compute_graph.build_graph = scheduler.build_graph = recorded
    memory.estimate_compute_bytes = recording_estimate

    def predicted(key: tuple[Path, str]) -> tuple[str, str]:
        _forget()
        graphs.clear()
        try:
            if args.full or key not in made:
                current[:] = [key]
                prediction = memory.predict_memory(models[key[0]],
                                                   resolve_settings(shapes[key[1]])[0])
                current.clear()
                outcome = repr([(b.device, b.buffer, b.kind, b.n_bytes)
                                for b in prediction.buffers])
            else:
                outcome = repr(estimate(*made[key]))
        except Exception as error:  # a mutant may break the model: that is an effect too
            current.clear()
            outcome = f"{type(error).__name__}: {error}"
        return outcome, "".join(graphs)

    def exact(key: tuple[Path, str]) -> bool:
        """The test's check: every exact figure matches and the compute buffer is within the
        tolerance (assert_all_exact's 0.00006 MiB unless --tolerance says the test's own)."""
        _forget()
        try:
            assert_all_exact(compare_runtime(str(key[0]), shapes[key[1]]), args.tolerance)
            return True
        except Exception:  # a wrong figure, or a mutant that crashes: the test fails either way
            return False

    keys = [(path, name) for path in models for name in shapes]
    os.environ["MUTANT_UNDER_TEST"] = ""
    base = {key: predicted(key) for key in keys}
    if not args.full:  # the fast path compares compute peaks, not whole predictions
        base = {key: predicted(key) for key in keys}
    base_exact: dict[tuple[Path, str], bool] = {}
    for mutant in args.mutants:
        os.environ["MUTANT_UNDER_TEST"] = mutant
        seen = {key: predicted(key) for key in keys}
        moved = [key for key in keys if base[key][0] != seen[key][0]]
        graph = [key for key in keys if base[key][1] != seen[key][1]]
        kills = None
        for key in moved[:4]:  # a real load each: the first few are enough
            os.environ["MUTANT_UNDER_TEST"] = ""
            if key not in base_exact:
                base_exact[key] = exact(key)
            os.environ["MUTANT_UNDER_TEST"] = mutant
            if base_exact[key] and not exact(key):
                kills = f"{_label(key[0])} {key[1]}"
                break
        print(json.dumps({"mutant": mutant.rsplit(".", 1)[-1], "graph": _summary(graph),
                          "prediction": _summary(moved), "kills": kills}), flush=True)


def judge_traces(mutants: list[str], only: str = "") -> None:
    """Each mutant against tests/test_compute_trace.py's cases (see the module's docstring)."""
    from tests import test_compute_trace as trace_test
    from tests.conftest import write_wide_zoo

    wide = write_wide_zoo(Path(tempfile.mkdtemp(prefix="mutant-traces-")))
    kept = Path(os.environ["GGUF_INSPECT_RUNTIME_ANSWERS"])
    alloc_trace = trace_test.alloc_trace
    cases = []
    # the defaults first: most mutants that a case tells apart, one of those does
    for folder, stem, shape in sorted(trace_test.CASES, key=lambda case: case[2] != "defaults"):
        if only not in f"{folder}/{stem} {shape}":
            continue
        model, settings = trace_test._model(wide, folder, stem), trace_test._settings(folder, shape)
        saved = kept / trace_test._answer_key(model, settings)
        cases.append((f"{folder}/{stem} {shape}", str(model), settings,
                      alloc_trace.comparable(json.loads(saved.read_text()))))

    def same(model: str, settings: dict[str, Any], runtime: Any) -> bool:
        try:
            return alloc_trace.comparable(alloc_trace.our_trace(model, settings)) == runtime
        except TimeoutError:
            raise
        except Exception:  # the test fails on a mutant that raises
            return False

    os.environ["MUTANT_UNDER_TEST"] = ""
    base: dict[str, bool] = {}
    reach: dict[str, set[str]] = {}  # a mutated function -> the cases that call it

    for label, model, settings, runtime in cases:
        sys.setprofile(_recorder(reach, label))
        try:
            base[label] = same(model, settings, runtime)
        finally:
            sys.setprofile(None)
    print(f"the unmutated module's trace is llama.cpp's in {sum(base.values())} of {len(base)} "
          "cases (only those can tell a mutant apart)", file=sys.stderr)

    def timed_out(*_: Any) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, timed_out)
    for mutant in mutants:
        os.environ["MUTANT_UNDER_TEST"] = mutant
        signal.alarm(60)
        reached = reach.get(re.sub(r"\d+$", "", mutant.rsplit(".", 1)[-1]), set())
        try:  # only the cases that call the mutated function can tell it apart
            kills = next((label for label, model, settings, runtime in cases
                          if label in reached and base[label]
                          and not same(model, settings, runtime)), None)
        except TimeoutError:
            kills = "timeout"
        signal.alarm(0)
        print(json.dumps({"mutant": mutant.rsplit(".", 1)[-1], "trace_kills": kills,
                          "cases_reached": len(reached)}), flush=True)


def judge_assignments(mutants: list[str], only: str = "") -> None:
    """Each mutant against tests/test_scheduler_assignments.py: the test itself, case by case,
    on a session whose servers start only for an answer not kept (GGUF_INSPECT_RUNTIME_ANSWERS)."""
    from tests import test_scheduler_assignments as assignments

    session = next(iter(assignments.debug_rpc.__wrapped__()))  # the fixture's body
    test = assignments.test_each_node_runs_where_llama_cpp_runs_it

    def run(case: str) -> None:
        import pytest

        with pytest.MonkeyPatch.context() as monkeypatch:
            test(session, case, monkeypatch)

    _judge_cases(mutants, [case for case in sorted(assignments.CASES) if only in case], run,
                 "assignment_kills")


def judge_rpc_traces(mutants: list[str], only: str = "") -> None:
    """Each mutant against tests/test_rpc_traces.py (every device's placements in the
    two-server RPC loads), case by case, llama.cpp's traces kept as the test keeps them."""
    from tests import test_rpc_traces as traces

    class Folders:  # what the fixture asks of pytest's tmp_path_factory
        @staticmethod
        def mktemp(name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name))

    session = next(iter(traces.traced_rpc.__wrapped__(Folders())))  # the fixture's body
    test = traces.test_every_placement_on_every_device_is_llama_cpps
    _judge_cases(mutants, [case for case in sorted(traces.CASES) if only in case],
                 lambda case: test(session, case), "rpc_trace_kills")


def _judge_cases(mutants: list[str], cases: list[str], run: Any, key: str) -> None:
    """One JSON line a mutant: ``key`` names the first case the unmutated module passes and
    the mutant fails (a wrong answer, or an exception), or null; only the cases that call the
    mutated function (recorded on the unmutated run, as judge_traces does) are run."""
    def passes(case: str) -> bool:
        _forget()
        try:
            run(case)
            return True
        except Exception:  # the test fails on it
            return False

    os.environ["MUTANT_UNDER_TEST"] = ""
    base: dict[str, bool] = {}
    reach: dict[str, set[str]] = {}  # a mutated function -> the cases that call it
    for case in cases:
        sys.setprofile(_recorder(reach, case))
        try:
            base[case] = passes(case)
        finally:
            sys.setprofile(None)
    print(f"the unmutated module passes {sum(base.values())} of {len(base)} cases",
          file=sys.stderr)
    for mutant in mutants:
        os.environ["MUTANT_UNDER_TEST"] = mutant
        reached = reach.get(re.sub(r"\d+$", "", mutant.rsplit(".", 1)[-1]), set())
        kills = next((case for case in base
                      if case in reached and base[case] and not passes(case)), None)
        print(json.dumps({"mutant": mutant.rsplit(".", 1)[-1], key: kills,
                          "cases_reached": len(reached)}), flush=True)


def _recorder(reach: dict[str, set[str]], label: str) -> Any:
    """A profile function noting each mutated function called (mutmut's unmutated copy,
    ``<name>__mutmut_orig``) under ``label``."""
    def profile(frame: Any, event: str, _: Any) -> None:
        name = frame.f_code.co_name
        if event == "call" and name.endswith("__mutmut_orig"):
            reach.setdefault(name[:-len("orig")], set()).add(label)
    return profile


def _serialized(nodes: list[Any], unused: tuple[Any, ...]) -> str:
    """The node list with sources as indices into it (or a leaf's name, op and size)."""
    index = {id(node): i for i, node in enumerate(nodes)}

    def ref(node: Any) -> Any:
        return None if node is None else index.get(id(node), (node.name, node.op, node.n_bytes))

    return repr(([(n.name, n.op, n.n_bytes, tuple(map(ref, n.srcs)), ref(n.view_src),
                   n.is_input, n.is_output, n.layer, n.view_bytes) for n in nodes],
                 [ref(n) for n in unused]))


if __name__ == "__main__":
    main()
