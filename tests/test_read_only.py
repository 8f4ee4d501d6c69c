"""Models are only ever read. Every command runs on read-only copies (files 0444 in a 0555
folder); each must leave the model's sha256 and mtime unchanged, add nothing next to it, and
never open anything in that folder for writing (checked on ``os.open`` and ``open`` themselves,
since a root user would get past the permission bits)."""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from tests.conftest import fixture_path

RUNNER = CliRunner()
MODEL = "tiny-llama-untied-q8_0.gguf"
OTHER = "tiny-llama-untied-q4_k_m.gguf"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

# Each command with the arguments a user would give it; {model}, {other}, {folder} are filled in.
INVOCATIONS = {
    "inspect": [["{model}"], ["{model}", "--embeddings"], ["{model}", "--metadata", "--full"],
                ["{model}", "--tensors"], ["{model}", "--embeddings", "--json"],
                ["{model}", "--markdown"]],
    "validate": [["validate", "{model}"], ["validate", "--data", "{model}"]],
    "diff": [["diff", "{model}", "{other}"]],
    "embed": [["embed", "{model}", "--stats"]],
    "vram": [["vram", "{model}"]],
    "scan": [["scan", "{folder}"]],
    "runtime": [["runtime", "{model}", "--ctx", "256"]],
}


def _registered_commands() -> list[str]:
    return [info.name or info.callback.__name__ for info in app.registered_commands]


def _all_invocations() -> list[list[str]]:
    """The list above, plus ``COMMAND {model}`` for any command added since it was written."""
    invocations = [args for group in INVOCATIONS.values() for args in group]
    invocations += [[name, "{model}"] for name in _registered_commands()
                    if name not in INVOCATIONS]
    return invocations


@pytest.fixture(scope="module")
def read_only_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("read-only")
    for name in (MODEL, OTHER):
        shutil.copy(fixture_path(name), folder / name)
        os.chmod(folder / name, 0o444)
    os.chmod(folder, 0o555)
    yield folder
    os.chmod(folder, 0o755)  # let pytest clean up


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
            for path in sorted(folder.iterdir())}


@pytest.fixture
def write_attempts(monkeypatch: pytest.MonkeyPatch, read_only_folder: Path) -> list[str]:
    """Every attempt to open something in the model folder with a writing mode or flag."""
    attempts: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def inside(path: Any) -> bool:
        try:
            return Path(os.fsdecode(path)).resolve().parent == read_only_folder.resolve()
        except (TypeError, ValueError):  # file descriptors, odd objects: not a path
            return False

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & WRITE_FLAGS and inside(path):
            attempts.append(f"os.open({path!r}, {flags:#o})")
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(flag in mode for flag in "wax+") and inside(file):
            attempts.append(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_os_open)
    monkeypatch.setattr(builtins, "open", guarded_open)
    return attempts


@pytest.mark.parametrize("arguments", _all_invocations(), ids=" ".join)
def test_command_leaves_the_model_untouched(read_only_folder: Path, write_attempts: list[str],
                                            arguments: list[str]) -> None:
    before = _snapshot(read_only_folder)
    filled = [argument.format(model=read_only_folder / MODEL, other=read_only_folder / OTHER,
                              folder=read_only_folder) for argument in arguments]
    result = RUNNER.invoke(app, filled)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    known = arguments[0] in INVOCATIONS or arguments[0] == "{model}"
    if known:
        assert result.exit_code in (0, 1), result.output  # 1: differs / does not fit
    assert _snapshot(read_only_folder) == before  # same files, same hashes, same mtimes
    assert write_attempts == []


def test_files_really_are_read_only(read_only_folder: Path) -> None:
    for path in read_only_folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert stat.S_IMODE(read_only_folder.stat().st_mode) == 0o555


def test_the_write_guard_sees_a_write(read_only_folder: Path, write_attempts: list[str]) -> None:
    probe = read_only_folder / "probe.txt"
    try:
        with open(probe, "w"):
            pass
    except PermissionError:  # not root: the folder's permission bits stop it first
        pass
    finally:
        if probe.exists():
            os.chmod(read_only_folder, 0o755)
            probe.unlink()
            os.chmod(read_only_folder, 0o555)
    assert write_attempts == [f"open({probe!r}, 'w')"]
