"""Tensor bytes after the header (gguf/tensor_data.py): whole tensors and slices against gguf-py's
reader, and a file that ends inside a tensor's data named by its path, the byte where it ends
(the tensor's absolute data offset plus what could be read) and the tensor, for a single file and
for the shard of a split model that holds the tensor."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import gguf
import pytest

from gguf_inspect.core.errors import TruncatedError
from gguf_inspect.gguf.open import open_model
from gguf_inspect.gguf.tensor_data import read_tensor_bytes
from tests.conftest import fixture_path
from tests.split_fixtures import write_split

FIXTURE = fixture_path("tiny-llama-untied-q8_0.gguf")


def _last_tensor(path: Path) -> tuple[str, int]:
    """The name and absolute data offset of the tensor whose data comes last, as plain values:
    gguf-py's reader maps the file, and a mapping must not outlive the file's truncation."""
    last = max(gguf.GGUFReader(path).tensors, key=lambda t: t.data_offset)
    return last.name, int(last.data_offset)


def test_whole_tensors_and_slices_are_gguf_pys_bytes() -> None:
    raw = next(t for t in gguf.GGUFReader(FIXTURE).tensors
               if t.name == "blk.0.attn_q.weight").data.tobytes()
    with open_model(FIXTURE) as model:
        tensor = model.file.tensor("blk.0.attn_q.weight")
        assert read_tensor_bytes(model.source, tensor) == raw
        assert read_tensor_bytes(model.source, tensor, start=34) == raw[34:]  # to the end
        assert read_tensor_bytes(model.source, tensor, start=34, length=68) == raw[34:102]


def test_a_file_cut_inside_a_tensor_names_path_byte_and_tensor(tmp_path: Path) -> None:
    """The header was read whole; the file then shrinks (a copy still being written) to 10
    bytes into the last tensor's data: the refusal is at that byte of that file."""
    path = tmp_path / "cut.gguf"
    shutil.copy(FIXTURE, path)
    name, data_offset = _last_tensor(path)
    with open_model(path) as model:
        tensor = model.file.tensor(name)
        os.truncate(path, data_offset + 10)
        with pytest.raises(TruncatedError) as whole:
            read_tensor_bytes(model.source, tensor)
        with pytest.raises(TruncatedError) as sliced:
            read_tensor_bytes(model.source, tensor, start=4, length=20)
    for refusal in (whole.value, sliced.value):
        assert refusal.message == "file ends inside tensor data"
        assert (refusal.path, refusal.field) == (str(path), name)
        assert refusal.offset == data_offset + 10


def test_a_cut_shard_is_named_as_the_shard(tmp_path: Path) -> None:
    shards = write_split(fixture_path("tiny-llama-untied-q4_k_m.gguf"), tmp_path,
                         max_tensors=8, stem="tiny")
    name, data_offset = _last_tensor(shards[1])
    with open_model(shards[0]) as model:
        tensor = model.file.tensor(name)
        os.truncate(shards[1], data_offset + 3)
        with pytest.raises(TruncatedError) as refused:
            read_tensor_bytes(model.source, tensor)
    assert (refused.value.path, refused.value.field) == (str(shards[1]), name)
    assert refused.value.offset == data_offset + 3  # the byte inside that shard
