"""Shared test helpers: where the committed fixtures live, small builders of GGUF bytes, and
the loader of the scripts in benchmarks/ and fixtures/."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
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


def load_script(name: str, path: Path) -> ModuleType:
    """benchmarks/ and fixtures/ hold scripts, not packages: load one by path as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    assert path.exists(), f"missing fixture {path}: run python fixtures/build.py"
    return path


@pytest.fixture(params=ALL_FIXTURES, ids=lambda p: p.name)
def any_fixture(request: pytest.FixtureRequest) -> Path:
    """Each committed fixture model in turn."""
    return request.param
