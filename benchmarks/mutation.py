"""Mutation testing of the modules that restate llama.cpp's rules, the reader's bounds and the
escaping, each against its own test files only (the whole suite is too slow to run per mutant).

Uses mutmut (the ``dev`` extra). For each module it copies the repository into a scratch folder,
writes a ``[tool.mutmut]`` section naming that one module and its tests, runs ``mutmut run``,
and reads ``mutmut results``. It prints the score per module, lists the surviving mutants, and
writes the figures to ``benchmarks/mutation-scores.json``.

    python benchmarks/mutation.py                       # every module in MODULES
    python benchmarks/mutation.py recipe.py text.py     # modules whose path ends so
    python benchmarks/mutation.py --show-survivors      # also print each survivor's diff

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

# module -> the test files that pin it (a glob each, relative to the repository root)
MODULES: dict[str, list[str]] = {
    "gguf_inspect/llamacpp/recipe.py": ["tests/test_recipe_quantizer.py", "tests/test_embeddings.py"],
    "gguf_inspect/llamacpp/memory.py": ["tests/test_memory.py", "tests/test_memory_rules.py"],
    "gguf_inspect/llamacpp/compute_graph.py": ["tests/test_memory.py"],
    "gguf_inspect/llamacpp/names.py": ["tests/test_roles.py"],
    "gguf_inspect/llamacpp/summary.py": ["tests/test_summary.py"],
    "gguf_inspect/llamacpp/load_log.py": ["tests/test_runtime_log.py"],
    "gguf_inspect/llamacpp/devices.py": ["tests/test_vram.py"],
    "gguf_inspect/gguf/reader.py": ["tests/test_reader.py", "tests/test_reader_malformed.py",
                                    "tests/test_reader_bounds.py"],
    "gguf_inspect/gguf/cursor.py": ["tests/test_reader.py", "tests/test_reader_malformed.py",
                                    "tests/test_reader_bounds.py"],
    "gguf_inspect/render/text.py": ["tests/test_escaping.py", "tests/test_safe_output.py"],
}
COPIED = ("gguf_inspect", "tests", "fixtures", "benchmarks", "pyproject.toml", "README.md")
RESULT = re.compile(r"^\s*(?P<name>\S+):\s*(?P<status>[a-z ]+?)\s*$")
SCORES = ROOT / "benchmarks" / "mutation-scores.json"


def _scratch_copy(module: str, tests: list[str], into: Path) -> None:
    for name in COPIED:
        source = ROOT / name
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


def run_module(module: str, tests: list[str], children: int, show: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        where = Path(scratch)
        _scratch_copy(module, tests, where)
        # mutmut imports the package from mutants/; name it first, ahead of any installed copy
        env = dict(os.environ, PYTHONPATH=str(where / "mutants"))
        (where / "mutants").mkdir()  # made now: Python skips a sys.path entry missing at start
        run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                              str(children)], cwd=where, env=env, capture_output=True, text=True)
        listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                                 cwd=where, env=env, capture_output=True, text=True).stdout
        statuses: dict[str, str] = {}
        for line in listing.splitlines():
            match = RESULT.match(line)
            if match:
                statuses[match["name"]] = match["status"]
        survivors = sorted(n for n, s in statuses.items() if s in ("survived", "no tests"))
        diffs = {}
        if show:
            for name in survivors:
                diffs[name] = subprocess.run([sys.executable, "-m", "mutmut", "show", name],
                                             cwd=where, env=env, capture_output=True,
                                             text=True).stdout
    killed = sum(1 for s in statuses.values() if s == "killed")
    total = len(statuses)
    if not total:
        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
    return {"module": module, "tests": tests, "mutants": total, "killed": killed,
            "score": round(killed / total, 4) if total else None,
            "survivors": survivors, "diffs": diffs,
            "other": {n: s for n, s in statuses.items() if s not in ("killed", "survived")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="run the modules whose path ends with these")
    parser.add_argument("--children", type=int, default=2, help="parallel mutant runs")
    parser.add_argument("--show-survivors", action="store_true")
    args = parser.parse_args()
    chosen = {m: t for m, t in MODULES.items()
              if not args.only or any(m.endswith(o) for o in args.only)}
    previous = json.loads(SCORES.read_text()) if SCORES.exists() else {}
    for module, tests in chosen.items():
        result = run_module(module, tests, args.children, args.show_survivors)
        print(f"{module}: {result['killed']}/{result['mutants']} killed "
              f"(score {result['score']}), survivors: {len(result['survivors'])}", flush=True)
        for name in result["survivors"]:
            print(f"  {name}")
            if name in result["diffs"]:
                print("    " + result["diffs"][name].replace("\n", "\n    "))
        previous[module] = {k: v for k, v in result.items() if k != "diffs"}
    SCORES.write_text(json.dumps(previous, indent=2) + "\n")


if __name__ == "__main__":
    main()
