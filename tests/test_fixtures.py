"""The committed fixtures are exactly what the committed build script makes (llama.cpp's own
quantizer included): rebuilding into a temporary folder gives byte-identical files."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from tests.conftest import FIXTURES


def _load_build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fixtures_build", FIXTURES / "build.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rebuilding_the_fixtures_gives_identical_bytes(tmp_path: Path) -> None:
    written = _load_build_script().build(tmp_path)
    assert written, "the build script wrote nothing"
    for path in written:
        committed = FIXTURES / path.relative_to(tmp_path)  # companions/ keeps its folder
        assert committed.exists(), f"{path.name} is built but not committed"
        assert _digest(path) == _digest(committed), f"{path.name} differs from its rebuild"


def test_every_committed_model_is_built_by_the_script(tmp_path: Path) -> None:
    built = {path.name for path in _load_build_script().build(tmp_path)}
    committed = {path.name for path in FIXTURES.glob("*.gguf")}
    assert committed <= built, f"committed but not built by fixtures/build.py: {committed - built}"
