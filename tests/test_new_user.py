"""Issue 18: what a new user hit on real models and real terminals (items 2, 3, 4, 6 and 7; item
1 is tests/test_word_resolution.py). Expected sizes come from gguf-py or the file itself."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.llamacpp import runtime
from tests.conftest import FIXTURES, fixture_path, write_gguf

MODEL = fixture_path("tiny-llama-tied-q8_0.gguf")
OTHER = fixture_path("tiny-llama-tied-q4_k_m.gguf")


def _implied_size(path: Path) -> int:
    """Where the last tensor's data ends, by gguf-py (the oracle)."""
    reader = gguf.GGUFReader(path)
    return max(int(tensor.data_offset) + int(tensor.n_bytes) for tensor in reader.tensors)


@pytest.mark.parametrize("command", [[], ["validate"], ["vram"], ["embed", "--stats"],
                                     ["diff", str(MODEL)]])
def test_a_cut_file_is_called_truncated_with_both_sizes(tmp_path: Path,
                                                          command: list[str]) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(MODEL.read_bytes()[:300_000])
    args = command[:1] + [str(cut)] + command[1:] if command else [str(cut)]
    result = CliRunner().invoke(app, args)
    output = result.stdout + result.stderr
    assert f"truncated: 300,000 of {_implied_size(MODEL):,} bytes" in output
    assert output.count("runs past the end") == 1  # one line, not one per tensor


@pytest.mark.parametrize("command", [[str(MODEL), "--embeddings"], [str(MODEL), "--metadata"],
                                     ["vram", str(MODEL)], ["scan", str(FIXTURES)],
                                     ["diff", str(MODEL), str(OTHER)]])
def test_default_tables_fit_100_columns(command: list[str]) -> None:
    result = CliRunner().invoke(app, command, env={"COLUMNS": "100"})
    assert result.exit_code in (0, 1), result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 100
    wide = CliRunner().invoke(app, command, env={"COLUMNS": "400"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 100  # it was cut to fit


def test_json_and_full_are_never_cut() -> None:
    full = CliRunner().invoke(app, [str(MODEL), "--metadata", "--full"], env={"COLUMNS": "100"})
    assert max(len(line) for line in full.stdout.splitlines()) > 100
    assert "\u2026" not in full.stdout
    as_json = CliRunner().invoke(app, [str(MODEL), "--metadata", "--json"],
                                 env={"COLUMNS": "100"})
    assert "\u2026" not in as_json.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_python_http_server_serves_a_header(tmp_path: Path) -> None:
    """``python -m http.server`` ignores Range; the header comes from its one answer."""
    big = tmp_path / "model.gguf"  # a small header, then 8 MiB of data: past the 4 MiB kept
    writer = gguf.GGUFWriter(big, "llama")
    writer.add_tensor("blob.weight", np.zeros((2048, 1024), dtype=np.float32))
    write_gguf(writer)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        result = CliRunner().invoke(app, [f"http://127.0.0.1:{port}/model.gguf", "--json",
                                          "--timeout", "20"])
    finally:
        server.terminate()
        server.wait(10)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["file"]["file_size"] == big.stat().st_size


def test_install_hints_name_llama_cpp_python_not_another_project() -> None:
    assert "gguf-inspect[" not in runtime.INSTALL_HINT
    assert "llama-cpp-python==0.3.36" in runtime.INSTALL_HINT
    assert "cmake" in runtime.INSTALL_HINT
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "'gguf-inspect[runtime]'" not in readme
    assert "virtual environment" in readme and "cmake" in readme


def test_vram_warns_past_the_trained_context() -> None:
    trained = gguf.GGUFReader(MODEL).get_field("llama.context_length").contents()
    result = CliRunner().invoke(app, ["vram", str(MODEL), "--ctx", str(trained * 2), "--json"])
    warning = json.loads(result.stdout)["context_warning"]
    assert f"exceeds the trained maximum {trained}" in warning and "rope scaling" in warning
    within = CliRunner().invoke(app, ["vram", str(MODEL), "--ctx", str(trained), "--json"])
    assert json.loads(within.stdout)["context_warning"] is None
    table = CliRunner().invoke(app, ["vram", str(MODEL), "--ctx", str(trained * 2)]).stdout
    assert "exceeds the trained maximum" in table.split("== verdict ==")[1]
