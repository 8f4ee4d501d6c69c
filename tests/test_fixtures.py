"""The committed fixtures are exactly what the committed build script makes (llama.cpp's own
quantizer included): rebuilding into a temporary folder gives byte-identical files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import FIXTURES, load_script


def _build(out: Path) -> list[Path]:
    """Run fixtures/build.py into ``out``; the files it wrote."""
    return load_script("fixtures_build", FIXTURES / "build.py").build(out)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rebuilding_the_fixtures_gives_identical_bytes(tmp_path: Path) -> None:
    written = _build(tmp_path)
    assert written, "the build script wrote nothing"
    for path in written:
        committed = FIXTURES / path.relative_to(tmp_path)  # companions/ keeps its folder
        assert committed.exists(), f"{path.name} is built but not committed"
        assert _digest(path) == _digest(committed), f"{path.name} differs from its rebuild"


def test_every_committed_model_is_built_by_the_script(tmp_path: Path) -> None:
    built = {path.name for path in _build(tmp_path)}
    committed = {path.name for path in FIXTURES.glob("*.gguf")}
    assert committed <= built, f"committed but not built by fixtures/build.py: {committed - built}"
