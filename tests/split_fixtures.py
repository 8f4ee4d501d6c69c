"""Split models for the tests, written by gguf-py's GGUFWriter (``split_max_tensors``), the
writer llama.cpp's convert scripts use, from a committed fixture (as ``gguf-split`` would)."""

from __future__ import annotations

from pathlib import Path

import gguf

from tests.conftest import write_gguf


def write_split(fixture: Path, out_dir: Path, max_tensors: int, stem: str | None = None,
                ) -> list[Path]:
    """Re-write ``fixture`` as shards of at most ``max_tensors`` tensors; the shard paths."""
    reader = gguf.GGUFReader(fixture)
    architecture = reader.get_field("general.architecture").contents()
    stem = stem or fixture.stem
    writer = gguf.GGUFWriter(out_dir / f"{stem}.gguf", architecture,
                             split_max_tensors=max_tensors)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # the header fields, and the key the writer adds itself
        item_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], item_type)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    write_gguf(writer)
    return sorted(out_dir.glob(f"{stem}-*-of-*.gguf"))
