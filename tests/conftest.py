"""Shared test helpers: where the committed fixtures live, and small builders of GGUF bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
# Files that load beside a model (a LoRA adapter, a projector) are not models: the model-wide
# tests leave them out, tests/test_extras.py takes them.
COMPANION_FIXTURES = sorted(path for path in FIXTURES.glob("*.gguf")
                            if "-lora-" in path.name or "-mmproj-" in path.name)
ALL_FIXTURES = sorted(set(FIXTURES.glob("*.gguf")) - set(COMPANION_FIXTURES))


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"missing fixture {path}: run python fixtures/build.py"
    return path


@pytest.fixture(params=ALL_FIXTURES, ids=lambda p: p.name)
def any_fixture(request: pytest.FixtureRequest) -> Path:
    """Each committed fixture model in turn."""
    return request.param
