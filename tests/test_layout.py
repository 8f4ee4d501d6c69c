"""The package's shape, checked from its source text: layers depend one way only, no import
cycle between modules (imports inside functions included), llama_cpp imported only by the runtime
module, typer only by the CLI, and no module over 500 lines.

Read with ``ast`` so that nothing is imported (an import-time cycle hidden by a deferred import
would not show up by importing).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gguf_inspect"
MAX_LINES = 500

# Lower layers never import higher ones. The package root (the public API) and __main__ sit on
# top, beside the CLI.
LAYERS = ("core", "gguf", "llamacpp", "reports", "render", "commands", "cli", "api")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """Every module of the package or outside it that ``path`` imports, at any depth."""
    found: set[str] = set()
    inside = PACKAGE in path.resolve().parents
    own = module_name(path) if inside else ""
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def internal_imports(path: Path) -> set[str]:
    return {name for name in imported_modules(path) if name in MODULES}


def layer_of(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return LAYERS.index("api")
    return LAYERS.index(parts[1])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_depend_one_way(module: str) -> None:
    upward = [other for other in internal_imports(MODULES[module])
              if layer_of(other) > layer_of(module)]
    assert upward == [], f"{module} imports a higher layer: {upward}"


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each cycle found by a depth-first walk, as the modules along it (first one repeated)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        trail = trail + [module]
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                cycles.append(trail[trail.index(other):] + [other])
            elif other not in state:
                visit(other, trail)
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return cycles


def test_no_import_cycle() -> None:
    graph = {module: internal_imports(path) - {module} for module, path in MODULES.items()}
    assert find_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("library, allowed", [
    ("llama_cpp", {"gguf_inspect.llamacpp.runtime"}),
    ("typer", {"gguf_inspect.cli", "gguf_inspect.cli.plumbing"}),
])
def test_third_party_runtime_and_cli_libraries_stay_in_their_module(library: str,
                                                                     allowed: set[str]) -> None:
    users = {module for module, path in MODULES.items()
             if any(name == library or name.startswith(library + ".")
                    for name in imported_modules(path))}
    assert users <= allowed


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_500_lines(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_states_its_job(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{module} has no module docstring"


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The walker itself: a function-level import is an import."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from gguf_inspect.cli import main\n", encoding="utf-8")
    assert "gguf_inspect.cli" in imported_modules(path)
