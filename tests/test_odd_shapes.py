"""Tensors of legal but unexpected shapes (0, 1 or 3 dimensions where llama.cpp wants 2):
every command answers with a report or one ``error:`` line, never a crash.

The files are made from a valid fixture by rewriting one tensor's n_dims and ne in its header
entry (located with gguf-py's parser) and re-padding the header to the alignment, so the data
section is the fixture's own.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.constants import ExitCode
from tests.conftest import fixture_path

SOURCE = fixture_path("tiny-llama-untied-f16.gguf")

SHAPES = {
    "embedding-0d": ("token_embd.weight", []),
    "embedding-1d": ("token_embd.weight", [256 * 384]),
    "embedding-3d": ("token_embd.weight", [256, 96, 4]),
    "output-1d": ("output.weight", [256 * 384]),
    "attention-0d": ("blk.0.attn_q.weight", []),
    "norm-0d": ("output_norm.weight", []),
}


def reshape(source: Path, tensor_name: str, new_ne: list[int], target: Path) -> None:
    reader = gguf.GGUFReader(source)
    raw = source.read_bytes()
    entry = next(tensor.field for tensor in reader.tensors if tensor.name == tensor_name)
    starts = [entry.offset]
    for part in entry.parts:
        starts.append(starts[-1] + part.nbytes)
    dims_start, dims_end = starts[2], starts[4]  # parts: name length, name, n_dims, ne, type...
    new_dims = struct.pack("<I", len(new_ne)) + b"".join(struct.pack("<Q", n) for n in new_ne)
    last = reader.tensors[-1].field
    infos_end = last.offset + sum(part.nbytes for part in last.parts)
    header = raw[:dims_start] + new_dims + raw[dims_end:infos_end]
    alignment = 32  # the fixture has no general.alignment key: GGUF's default
    padding = b"\0" * (-len(header) % alignment)
    target.write_bytes(header + padding + raw[reader.data_offset:])


@pytest.fixture(scope="module", params=sorted(SHAPES))
def odd_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tensor_name, new_ne = SHAPES[request.param]
    path = tmp_path_factory.mktemp("odd") / f"{request.param}.gguf"
    reshape(SOURCE, tensor_name, new_ne, path)
    return path


def test_the_rewritten_header_is_what_gguf_py_reads(odd_file: Path) -> None:
    tensor_name, new_ne = SHAPES[odd_file.stem]
    tensor = next(t for t in gguf.GGUFReader(odd_file).tensors if t.name == tensor_name)
    assert [int(n) for n in tensor.shape] == (new_ne or [])


COMMANDS = [
    ["{f}", "--embeddings", "--tensors"],
    ["scan", "{f}"],
    ["embed", "{f}", "--stats"],
    ["embed", "{f}", "--analogy", "king", "man", "woman"],
    ["vram", "{f}", "--gpu", "8GiB"],
    ["vram", "{f}"],
    ["validate", "--data", "{f}"],
    ["diff", str(SOURCE), "{f}", "--values", "all"],
]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words[:2]))
def test_every_command_reports_or_refuses_in_one_line(odd_file: Path, words: list[str]) -> None:
    result = CliRunner().invoke(app, [word.format(f=odd_file) for word in words])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (ExitCode.OK, ExitCode.DIFFERS, ExitCode.INVALID), result.output
    if result.exit_code == ExitCode.INVALID and words[0] not in ("scan", "validate"):
        error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and str(odd_file) in error_lines[0], result.stderr
        assert "out of range" not in error_lines[0]


def test_a_0_dim_embedding_is_reported_as_ggml_sees_it_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "embedding-0d.gguf"
    reshape(SOURCE, "token_embd.weight", [], path)
    result = CliRunner().invoke(app, [str(path), "--embeddings", "--json"])
    assert result.exit_code == ExitCode.OK, result.output
    report = json.loads(result.stdout)
    # ggml treats the missing dimensions as 1: one value, 2 bytes in f16.
    assert (report["embeddings"]["n_vocab"], report["embeddings"]["n_embd"]) == (1, 1)
    assert report["embeddings"]["n_bytes"] == 2
    assert any("0 dimension(s)" in warning for warning in report["embeddings"]["warnings"])


@pytest.mark.parametrize("shape", [name for name in SHAPES if name.startswith("embedding")])
def test_embed_refuses_a_non_matrix_embedding_naming_the_tensor(shape: str,
                                                                tmp_path: Path) -> None:
    path = tmp_path / f"{shape}.gguf"
    reshape(SOURCE, *SHAPES[shape], path)
    result = CliRunner().invoke(app, ["embed", str(path), "--stats"])
    assert result.exit_code == ExitCode.INVALID
    assert "token_embd.weight has" in result.stderr and "not the 2 of" in result.stderr
