"""Shared test helpers: where the committed fixtures live, and small builders of GGUF bytes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import gguf

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
ALL_FIXTURES = sorted(FIXTURES.glob("*.gguf"))


def write_gguf(writer: gguf.GGUFWriter) -> None:
    """Write a GGUFWriter's header, metadata and tensors, and close it: the end of every
    GGUF file a test builds."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"missing fixture {path}: run python fixtures/build.py"
    return path


@pytest.fixture(params=ALL_FIXTURES, ids=lambda p: p.name)
def any_fixture(request: pytest.FixtureRequest) -> Path:
    """Each committed fixture model in turn."""
    return request.param
