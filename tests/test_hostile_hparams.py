"""Hostile hyperparameters (issue 20, items 3 and 4): values llama.cpp's loader refuses are
refused with one line naming the file, the key and the value, exit 3, quickly.

The model is llama.cpp's loader: ``llama_model_loader::get_key<uint32_t>`` (src/llama-model-
loader.cpp) reads these keys as uint32 and throws on anything else, ``load_hparams``
(src/llama-model.cpp) asserts ``0 < block_count <= LLAMA_MAX_LAYERS`` (512, src/llama-hparams.h),
and ``get_key_or_arr`` throws when a per-layer array does not have one entry per layer. Files
are written by gguf-py's GGUFWriter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from tests.conftest import loader_required, write_gguf

U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
# A hostile count makes a careless loop run for hours: run_cli's 60 s timeout fails such a test
# without the test reading the clock (a refused header is milliseconds of work).


def write_model(path: Path, overrides: dict[str, tuple[str, object]], arch: str = "llama",
                ) -> Path:
    """A tiny header (2 layers, n_embd 64, 4 heads) with ``overrides``: key -> (GGUFWriter
    add_* kind, value); a key named in ``overrides`` replaces the default one."""
    keys: dict[str, tuple[str, object]] = {f"{arch}.{name}": spec for name, spec in (
        ("block_count", ("uint32", 2)), ("embedding_length", ("uint32", 64)),
        ("attention.head_count", ("uint32", 4)), ("attention.head_count_kv", ("uint32", 2)),
        ("feed_forward_length", ("uint32", 128)), ("context_length", ("uint32", 256)))}
    keys = {**{key: ("uint32", 0) for key in loader_required(arch)}, **keys, **overrides}
    writer = gguf.GGUFWriter(str(path), arch)
    for key, (kind, value) in keys.items():
        getattr(writer, f"add_{kind}")(key, value)
    writer.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    writer.add_tensor("blk.1.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    write_gguf(writer)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gguf_inspect", *args], capture_output=True,
                          text=True, timeout=60)


# (key, GGUFWriter kind, value, extra vram arguments): one case per hostile value class.
REFUSED = [
    ("llama.attention.key_length", "uint64", U64_MAX, ()),
    ("llama.attention.head_count_kv", "uint64", U64_MAX, ()),
    ("llama.embedding_length", "uint64", U64_MAX, ()),
    ("llama.vocab_size", "uint64", U64_MAX, ()),
    ("llama.attention.head_count", "int64", I64_MIN, ()),
    ("llama.context_length", "int64", I64_MIN, ("--ctx", "0")),
    ("llama.attention.head_count_kv", "int32", -1, ()),
    ("llama.feed_forward_length", "int64", -5, ()),
    ("llama.attention.value_length", "uint64", 1 << 32, ()),
    # read only for architectures with a window rule (gemma2: models/gemma2.cpp)
    ("gemma2.attention.sliding_window", "int32", -4096, ()),
]


@pytest.mark.parametrize(("key", "kind", "value", "extra"), REFUSED,
                         ids=[f"{key.split('.', 1)[1]}={value}" for key, _, value, _ in REFUSED])
def test_out_of_range_hyperparameters_are_one_line_exit_3(
        tmp_path: Path, key: str, kind: str, value: int, extra: tuple[str, ...]) -> None:
    path = write_model(tmp_path / "hostile.gguf", {key: (kind, value)}, key.split(".")[0])
    for args in (["vram", str(path), *extra], ["vram", str(path), "--gpu", "24GiB", *extra]):
        result = run_cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 3, result.stderr
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(f"error: {path}: {key} = {value}:"), lines[0]
        assert result.stdout == ""


def test_largest_uint32_values_llama_cpp_accepts_give_sizes_not_tracebacks(tmp_path: Path) -> None:
    """2^32-1 is a valid uint32: llama.cpp's loader takes it (the allocation fails later), so
    the audit sizes it: huge, positive, fast, and "does not fit"."""
    path = write_model(tmp_path / "huge.gguf", {
        "llama.attention.key_length": ("uint32", (1 << 32) - 1),
        "llama.attention.head_count_kv": ("uint32", (1 << 32) - 1)})
    result = run_cli("vram", str(path), "--gpu", "24GiB", "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    # K per layer: key_length x head_count_kv values of 2 bytes per cell, 4096 cells, 2 layers
    assert document["kv_cache"]["caches"][0]["k_bytes"] == ((1 << 32) - 1) ** 2 * 2 * 4096 * 2


def test_more_layers_than_llama_max_layers_is_one_line(tmp_path: Path) -> None:
    path = write_model(tmp_path / "deep.gguf", {"llama.block_count": ("uint32", (1 << 32) - 1)})
    result = run_cli("vram", str(path))
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1
    assert "LLAMA_MAX_LAYERS" in result.stderr


@pytest.mark.parametrize("block_count", [(1 << 32) - 1, U64_MAX, 1 << 27])
def test_one_hostile_file_is_a_failure_row_and_the_scan_goes_on(
        tmp_path: Path, block_count: int) -> None:
    """Issue 20 item 4: the 512-layer cap applies in scan's KV estimate too (it reads the same
    hyperparameters as the memory model), so a bad file is a listed failure, not a crash."""
    good = write_model(tmp_path / "a-good.gguf", {})
    kind = "uint64" if block_count > (1 << 32) - 1 else "uint32"
    bad = write_model(tmp_path / "b-bad.gguf", {"llama.block_count": (kind, block_count)})
    result = run_cli("scan", str(tmp_path), "--json")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert [Path(row["location"]).name for row in document["models"]] == [good.name]
    (failure,) = document["failures"]
    assert Path(failure["location"]) == bad and failure["exit_code"] == 3
    assert "block_count" in failure["error"]
