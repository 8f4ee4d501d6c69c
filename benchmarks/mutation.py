"""Mutation testing of the modules that restate llama.cpp's rules, the reader's bounds and the
escaping, each against its own test files only (the whole suite is too slow to run per mutant).

Uses mutmut (the ``dev`` extra). For each module it copies the repository into a scratch folder,
writes a ``[tool.mutmut]`` section naming that one module and its tests, runs ``mutmut run``,
and reads ``mutmut results``. It prints the score per module, lists the surviving mutants, and
writes the figures to ``benchmarks/mutation-scores.json``.

    python benchmarks/mutation.py                       # every module in MODULES
    python benchmarks/mutation.py recipe.py text.py     # modules whose path ends so
    python benchmarks/mutation.py --show-survivors      # also print each survivor's diff
    python benchmarks/mutation.py hparams.py --keep /tmp/mutation      # resumable
    python benchmarks/mutation.py hparams.py --keep /tmp/mutation --rerun-survivors \
        --also tests/test_zoo.py                        # the survivors against a slow oracle

The table below is the only list to edit when a module is split or added.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module -> the test files that pin it (a glob each, relative to the repository root). Each list
# is the fastest set that still judges the module against an independent oracle: mutmut runs,
# per mutant, only the tests of these files that reached the mutated function.
# the zoo's real-load comparisons (every architecture, four configurations; llama.cpp's answers
# kept between mutants: seconds, unlike test_zoo's graph-dump tests, which build llama.cpp)
ZOO_LOADS = ["tests/test_zoo.py::test_every_exact_quantity_matches_llama_cpp",
             "tests/test_zoo.py::test_compute_estimate_within_its_tolerance"]
MODULES: dict[str, list[str]] = {
    # llama.cpp's quantizer is the oracle; its answers are kept between mutants (see ANSWERS)
    "gguf_inspect/llamacpp/recipe.py": ["tests/test_recipe_quantizer.py", "tests/test_embeddings.py"],
    # the memory rules: hand-derived figures and llama.cpp's source (test_memory*), real loads
    # of every fixture (test_runtime_compare: llama.cpp's captures are kept between mutants,
    # see RUNTIME_ANSWERS), the 26 architectures of the zoo (test_zoo: hybrids, MLA, NextN),
    # GPU layouts (test_gpu_deployments).
    "gguf_inspect/llamacpp/cpu_buffers.py": ["tests/test_memory_rules.py", "tests/test_memory.py",
                                             "tests/test_runtime_compare.py"],
    "gguf_inspect/llamacpp/kv_cache.py": ["tests/test_memory_rules.py", "tests/test_memory.py",
                                          "tests/test_runtime_compare.py", *ZOO_LOADS,
                                          "tests/test_gpu_deployments.py",
                                          "tests/test_rpc_devices.py"],
    # placement, hparams, settings: too many mutants to run the real-load comparisons on each;
    # a fast first run, then its survivors again with --also tests/test_runtime_compare.py
    # tests/test_zoo.py --rerun-survivors
    "gguf_inspect/llamacpp/placement.py": ["tests/test_memory_rules.py", "tests/test_memory.py",
                                           "tests/test_gpu_deployments.py", "tests/test_vram.py",
                                           "tests/test_rpc_devices.py"],
    "gguf_inspect/llamacpp/hparams.py": ["tests/test_memory_rules.py", "tests/test_memory.py",
                                         "tests/test_hparams_rules.py"],
    "gguf_inspect/llamacpp/settings.py": ["tests/test_settings.py", "tests/test_memory_rules.py",
                                          "tests/test_memory.py", "tests/test_settings_aliases.py",
                                          "tests/test_gpu_deployments.py"],
    # predict_memory is reached by every test; the real loads (the CPU fixtures, the zoo, the
    # RPC devices) are seconds with llama.cpp's answers kept
    "gguf_inspect/llamacpp/memory.py": ["tests/test_memory_rules.py", "tests/test_memory.py",
                                        "tests/test_gpu_deployments.py", "tests/test_vram.py",
                                        *ZOO_LOADS, "tests/test_runtime_compare.py",
                                        "tests/test_rpc_devices.py",
                                        "tests/test_cuda_public_logs.py"],
    # the compute graph, node by node: every zoo architecture's compute buffer against llama.cpp's
    # (exact to its 0.0001 MiB, answers kept), ggml-alloc's own trace of its graph (every
    # placement, in-place reuse and free: test_compute_trace) and hand-built graphs: seconds a
    # mutant (mutant_effects.py --traces judges survivors of older runs by the trace); then the
    # survivors with --also tests/test_compute_sweep.py tests/test_compute_wide.py
    # tests/test_runtime_compare.py tests/test_rpc_devices.py (more shapes, the zoo at other
    # widths, the fixtures' real loads, the multi-device splits) --rerun-survivors, or, faster
    # on two cores, benchmarks/mutant_effects.py on the survivors (what each changes, and
    # whether a real load at a tested shape tells it apart)
    **{f"gguf_inspect/llamacpp/{name}.py": [*ZOO_LOADS, "tests/test_compute_trace.py",
                                            "tests/test_memory.py", "tests/test_graph_nodes.py",
                                            "tests/test_graph_ssm.py"]
       for name in ("compute_graph", "graph_layout", "graph_arch", "graph_nodes", "graph_ffn",
                    "graph_mla", "graph_ssm", "graph_rwkv", "graph_qwen3next", "graph_gemma3n")},
    # the per-device compute buffers (ggml_backend_sched): GPU layouts from llama.cpp's source
    # (test_fit and test_vram reach it too, but as many predictions per test: too slow per
    # mutant, and no independent oracle of the splits)
    "gguf_inspect/llamacpp/scheduler.py": ["tests/test_rpc_devices.py",
                                           "tests/test_scheduler_assignments.py",
                                           "tests/test_scheduler.py",
                                           "tests/test_scheduler_graph_copy.py",
                                           "tests/test_gpu_deployments.py",
                                           "tests/test_cuda_public_logs.py"],
    # the recurrent state's layers and rows (create_memory's filters, llama_memory_recurrent):
    # the zoo's hybrids and recurrent models loaded for real (RS buffers, KV cache layers)
    "gguf_inspect/llamacpp/recurrent.py": ["tests/test_recurrent.py", "tests/test_memory.py",
                                           "tests/test_hparams_rules.py", *ZOO_LOADS,
                                           "tests/test_runtime_compare.py"],
    # llama.cpp's automatic fit (common/fit.cpp) replayed on the memory model: its rules by
    # hand from the source (llama-cpp-python does not expose common/, so no real run)
    "gguf_inspect/llamacpp/fit.py": ["tests/test_fit.py", "tests/test_fit_steps.py"],
    "gguf_inspect/llamacpp/fit_layers.py": ["tests/test_fit_layers.py", "tests/test_fit.py"],
    # the RPC device kind (buffer names, alignment, no host buffer, no op_offload)
    "gguf_inspect/llamacpp/backends.py": ["tests/test_rpc_devices.py", "tests/test_memory_rules.py",
                                          "tests/test_gpu_deployments.py"],
    "gguf_inspect/llamacpp/names.py": ["tests/test_roles.py"],
    "gguf_inspect/llamacpp/summary.py": ["tests/test_summary.py"],
    "gguf_inspect/llamacpp/load_log.py": ["tests/test_runtime_log.py",
                                          "tests/test_load_log_lines.py"],
    "gguf_inspect/llamacpp/devices.py": ["tests/test_devices.py", "tests/test_vram.py"],
    "gguf_inspect/gguf/reader.py": ["tests/test_reader_bounds.py", "tests/test_reader_malformed.py",
                                    "tests/test_reader.py", "tests/test_reader_fields.py",
                                    "tests/test_reader_fast_path.py"],
    # tensor bytes of one file, of a split model's shards and of a remote file
    "gguf_inspect/gguf/tensor_data.py": ["tests/test_tensor_data.py", "tests/test_split.py", "tests/test_remote.py",
                                         "tests/test_dequant.py", "tests/test_reader_malformed.py"],
    # the cursor on its own bytes; the reader's bound tests drive it through real headers
    "gguf_inspect/gguf/cursor.py": ["tests/test_cursor.py", "tests/test_reader_bounds.py"],
    "gguf_inspect/render/text.py": ["tests/test_escaping.py", "tests/test_safe_output.py",
                                    "tests/test_text.py"],
}
COPIED = ("gguf_inspect", "tests", "fixtures", "benchmarks", "pyproject.toml", "README.md")
RESULT = re.compile(r"^\s*(?P<name>\S+):\s*(?P<status>[a-z ]+?)\s*$")
SCORES = ROOT / "benchmarks" / "mutation-scores.json"
# llama.cpp's quantizer answers for tests/test_recipe_quantizer.py, kept across mutants and runs
ANSWERS = Path(tempfile.gettempdir()) / "gguf-inspect-quantizer-answers"
# llama.cpp's real-load captures for the runtime comparisons (tests/conftest.py keeps them)
RUNTIME_ANSWERS = Path(tempfile.gettempdir()) / "gguf-inspect-runtime-answers"


def _scratch_copy(module: str, tests: list[str], into: Path) -> None:
    for name in COPIED:
        source = ROOT / name
        shutil.rmtree(into / name, ignore_errors=True)  # a kept folder gets today's files
        if source.is_dir():
            shutil.copytree(source, into / name,
                            ignore=shutil.ignore_patterns("__pycache__", "mutants", "*.pyc"))
        else:
            shutil.copy2(source, into / name)
    text = (into / "pyproject.toml").read_text()
    # every other module is copied unmutated (only_mutate would leave them out of mutants/, and
    # an installed copy of the package would then be imported in their place)
    others = sorted(str(p.relative_to(into)) for p in (into / "gguf_inspect").rglob("*.py")
                    if str(p.relative_to(into)) != module)
    text += ("\n[tool.mutmut]\n"
             'source_paths = ["gguf_inspect"]\n'
             f"do_not_mutate = {json.dumps(others)}\n"
             f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
             'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
             'also_copy = ["tests", "fixtures", "benchmarks"]\n')
    (into / "pyproject.toml").write_text(text)


def run_module(module: str, tests: list[str], children: int, show: bool,
               keep: Path | None, rerun_survivors: bool) -> dict[str, object]:
    """Mutate ``module`` in a scratch folder (``keep``/<module> to resume there) and judge it."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
            return _judge(module, tests, children, show, Path(scratch), False)
    where = keep / module.replace("/", "-")
    where.mkdir(parents=True, exist_ok=True)
    return _judge(module, tests, children, show, where, rerun_survivors)


def _mutmut(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # mutmut imports the package from mutants/; name it first, ahead of any installed copy
    ANSWERS.mkdir(exist_ok=True)
    RUNTIME_ANSWERS.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(where / "mutants"),
               GGUF_INSPECT_QUANTIZER_ANSWERS=str(ANSWERS),
               GGUF_INSPECT_RUNTIME_ANSWERS=str(RUNTIME_ANSWERS))
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=where, env=env,
                          capture_output=True, text=True)


def _statuses(where: Path) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for line in _mutmut(where, "results", "--all", "true").stdout.splitlines():
        match = RESULT.match(line)
        if match:
            statuses[match["name"]] = match["status"]
    return statuses


def _source_commit(module: str) -> str:
    """The last commit that changed the module (the run mutates the working tree: a module with
    uncommitted changes is marked so)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    commit = git("log", "-1", "--format=%h", "--", module).strip()
    return commit + ("+changes" if git("status", "--porcelain", "--", module).strip() else "")


def _judge(module: str, tests: list[str], children: int, show: bool, where: Path,
           rerun_survivors: bool) -> dict[str, object]:
    earlier = _statuses(where) if (where / "mutants").exists() else {}
    source = _source_commit(module)  # what the scratch copy below mutates
    _scratch_copy(module, tests, where)
    # which tests reach which function is measured again: tests may have been added since
    (where / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    (where / "mutants").mkdir(exist_ok=True)  # made now: Python skips a missing sys.path entry
    again = sorted(n for n, s in earlier.items() if s in ("survived", "no tests", "timeout"))
    run = _mutmut(where, "run", "--max-children", str(children),
                  *(again if rerun_survivors else []))
    statuses = _statuses(where)
    survivors = sorted(n for n, s in statuses.items() if s in ("survived", "no tests"))
    diffs = {name: _mutmut(where, "show", name).stdout for name in survivors} if show else {}
    # a mutant that makes the tests run past mutmut's time limit (an endless loop) is caught too
    killed = sum(1 for s in statuses.values() if s in ("killed", "timeout"))
    total = len(statuses)
    if not total:
        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
    return {"module": module, "tests": tests, "source": source,
            "mutants": total, "killed": killed,
            "score": round(killed / total, 4) if total else None,
            "survivors": survivors, "diffs": diffs,
            "other": {n: s for n, s in statuses.items() if s not in ("killed", "survived")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run the modules whose path ends with these")
    parser.add_argument("--children", type=int, default=2, help="parallel mutant runs")
    parser.add_argument("--show-survivors", action="store_true")
    parser.add_argument("--keep", type=Path, help="work in DIR/<module> and resume there: "
                        "mutants already judged keep their result")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="with --keep: judge the earlier survivors again (after new tests)")
    parser.add_argument("--also", action="append", default=[], metavar="TESTS",
                        help="add these test files to the module's (e.g. a slow oracle for "
                             "the survivors of a first, fast run: with --rerun-survivors)")
    args = parser.parse_args()
    chosen = {m: t + args.also for m, t in MODULES.items()
              if not args.only or any(m.endswith(o) for o in args.only)}
    for module, tests in chosen.items():
        result = run_module(module, tests, args.children, args.show_survivors, args.keep,
                            args.rerun_survivors)
        print(f"{module}: {result['killed']}/{result['mutants']} killed "
              f"(score {result['score']}), survivors: {len(result['survivors'])}", flush=True)
        for name in result["survivors"]:
            print(f"  {name}")
            if name in result["diffs"]:
                print("    " + result["diffs"][name].replace("\n", "\n    "))
        # read again and written per module: another run may have written its modules since
        previous = json.loads(SCORES.read_text()) if SCORES.exists() else {}
        previous[module] = {k: v for k, v in result.items() if k != "diffs"}
        SCORES.write_text(json.dumps(previous, indent=2) + "\n")


if __name__ == "__main__":
    main()
