"""Split models: shards written by gguf-py's GGUFWriter (``split_max_tensors``), merged into one
model, checked against gguf-py (per-shard tensors and bytes) and against llama.cpp, which loads
the same shards (model size and parameter count) and refuses the same broken sets."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import gguf
import pytest
from typer.testing import CliRunner

from gguf_inspect.llamacpp.summary import summarize
from gguf_inspect.reports.validate import validate_file
from gguf_inspect.cli import app
from gguf_inspect.core.errors import FormatError
from gguf_inspect.gguf.open import open_source, read_gguf, read_header
from gguf_inspect.gguf.tensor_data import read_tensor_bytes
from gguf_inspect.gguf.split import SplitError, parse_shard_name, shard_group
from tests.conftest import fixture_path
from tests.range_server import RangeServer
from tests.split_fixtures import write_split

FIXTURE = fixture_path("tiny-llama-untied-q4_k_m.gguf")
N_SHARDS = 3  # 21 tensors, at most 8 per shard


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    paths = write_split(FIXTURE, tmp_path_factory.mktemp("split"), max_tensors=8, stem="tiny")
    assert [path.name for path in paths] == [f"tiny-0000{n}-of-00003.gguf" for n in (1, 2, 3)]
    return paths


@pytest.fixture
def shard_copy(shards: list[Path], tmp_path: Path) -> list[Path]:
    """A private copy of the shards, to break."""
    return [Path(shutil.copy(path, tmp_path / path.name)) for path in shards]


def test_shard_names_follow_llama_split_path() -> None:
    shard = parse_shard_name("models/m-00002-of-00004.gguf")
    assert shard is not None and (shard.number, shard.count) == (2, 4)
    assert shard.sibling(4) == "models/m-00004-of-00004.gguf"
    url = parse_shard_name("https://h.example/a/m-00001-of-00002.gguf?download=1")
    assert url is not None
    assert url.sibling(2) == "https://h.example/a/m-00002-of-00002.gguf?download=1"
    assert parse_shard_name("m-00003-of-00002.gguf") is None
    assert parse_shard_name("m-1-of-2.gguf") is None
    assert parse_shard_name("model.gguf") is None
    assert shard_group("d/m-00001-of-00003.gguf") == shard_group("d/m-00003-of-00003.gguf")


@pytest.mark.parametrize("given", [0, 1, 2])
def test_any_shard_opens_the_whole_model_as_gguf_py_sees_it(shards: list[Path],
                                                            given: int) -> None:
    merged = read_gguf(shards[given])
    expected = {}
    for number, path in enumerate(shards):
        for tensor in gguf.GGUFReader(path).tensors:
            expected[tensor.name] = (number, tuple(int(d) for d in tensor.shape),
                                     int(tensor.tensor_type), int(tensor.n_bytes))
    assert {t.name: (t.shard, t.ne, t.type_id, t.n_bytes) for t in merged.tensors} == expected
    assert merged.file_size == sum(path.stat().st_size for path in shards)
    assert merged.path == str(shards[given])
    # Totals over all shards equal the unsplit file's.
    original, combined = summarize(read_gguf(FIXTURE)), summarize(merged)
    assert (combined.n_params, combined.tensor_bytes, combined.file_type, combined.type_counts) == (
        original.n_params, original.tensor_bytes, original.file_type, original.type_counts)
    assert merged.value("general.name") == read_gguf(FIXTURE).value("general.name")


def test_tensor_data_of_every_shard_reads_through_the_merged_source(shards: list[Path]) -> None:
    source = open_source(shards[0])
    try:
        merged = read_header(source)
        for path in shards:
            for expected in gguf.GGUFReader(path).tensors:
                data = read_tensor_bytes(source, merged.tensor(expected.name))
                assert data == expected.data.tobytes(), expected.name
    finally:
        source.close()


def test_llama_cpp_loads_the_shards_with_the_same_totals(shards: list[Path]) -> None:
    import llama_cpp

    summary = summarize(read_gguf(shards[1]))
    llm = llama_cpp.Llama(model_path=str(shards[0]), vocab_only=False, n_ctx=64, verbose=False)
    try:
        assert llama_cpp.llama_model_size(llm.model) == summary.tensor_bytes
        assert llama_cpp.llama_model_n_params(llm.model) == summary.n_params
        assert llm.n_vocab() == summary.n_vocab
    finally:
        llm.close()


def test_missing_shard_is_exit_3(shard_copy: list[Path]) -> None:
    shard_copy[1].unlink()
    with pytest.raises(SplitError, match="missing shard 2 of 3"):
        read_gguf(shard_copy[0])
    result = CliRunner().invoke(app, [str(shard_copy[2])])
    assert result.exit_code == 3
    assert "missing shard 2 of 3" in result.stderr


def test_shards_in_the_wrong_place_are_refused(shard_copy: list[Path]) -> None:
    second, third = shard_copy[1], shard_copy[2]
    temporary = second.with_suffix(".tmp")
    second.rename(temporary)
    third.rename(second)
    temporary.rename(third)
    with pytest.raises(SplitError, match="split.no is 2 but the name makes it shard 1"):
        read_gguf(shard_copy[0])


def _patch_int_value(path: Path, key: str, fmt: str, delta: int) -> None:
    """Change the scalar value of ``key`` in place (it follows the key and its u32 type)."""
    data = bytearray(path.read_bytes())
    encoded = key.encode()
    at = data.index(struct.pack("<Q", len(encoded)) + encoded) + 8 + len(encoded) + 4
    (value,) = struct.unpack_from(fmt, data, at)
    struct.pack_into(fmt, data, at, value + delta)
    path.write_bytes(bytes(data))


def test_wrong_split_tensors_count_is_refused_like_llama_cpp(shard_copy: list[Path]) -> None:
    import llama_cpp

    _patch_int_value(shard_copy[0], "split.tensors.count", "<i", 1)
    with pytest.raises(SplitError, match="split.tensors.count is 22 but the 3 shards hold 21"):
        read_gguf(shard_copy[0])
    with pytest.raises(ValueError):  # llama.cpp: "corrupted model: 22 tensors expected"
        llama_cpp.Llama(model_path=str(shard_copy[0]), n_ctx=64, verbose=False)


def test_wrong_split_count_in_a_later_shard_is_refused(shard_copy: list[Path]) -> None:
    _patch_int_value(shard_copy[2], "split.count", "<H", 1)
    with pytest.raises(SplitError, match="split.count is 4 here but 3"):
        read_gguf(shard_copy[1])
    assert issubclass(SplitError, FormatError)


def test_name_and_header_disagreeing_on_the_count_is_refused(shard_copy: list[Path],
                                                             tmp_path: Path) -> None:
    renamed = tmp_path / "tiny-00001-of-00002.gguf"
    shard_copy[0].rename(renamed)
    with pytest.raises(SplitError, match="the name says 2 shards but split.count is 3"):
        read_gguf(renamed)


def test_a_whole_file_named_like_a_shard_is_just_that_file(tmp_path: Path) -> None:
    lone = Path(shutil.copy(FIXTURE, tmp_path / "lone-00001-of-00002.gguf"))
    model = read_gguf(lone)
    assert model.tensors == read_gguf(FIXTURE).tensors
    assert model.file_size == FIXTURE.stat().st_size


def test_remote_shards_merge_like_local_ones(shards: list[Path]) -> None:
    with RangeServer(shards[0].parent) as server:
        remote = read_gguf(server.url(shards[2].name))
    local = read_gguf(shards[0])
    assert remote.tensors == local.tensors
    assert remote.file_size == local.file_size


def test_missing_remote_shard_is_exit_3(shard_copy: list[Path]) -> None:
    shard_copy[2].unlink()
    with RangeServer(shard_copy[0].parent) as server:
        result = CliRunner().invoke(app, [server.url(shard_copy[0].name), "--json"])
    assert result.exit_code == 3
    assert "missing shard 3 of 3" in result.stderr


# ---- validate and listings: each shard on its own terms ------------------------------------------

def _oracle_tensors(shards: list[Path]) -> dict[str, tuple[int, int, int, int]]:
    """Per tensor (gguf-py on each shard file): shard (1-based), the start of its header entry
    and of its data (absolute offsets inside that shard), and its bytes."""
    return {tensor.name: (number, int(tensor.field.offset), int(tensor.data_offset),
                          int(tensor.n_bytes))
            for number, path in enumerate(shards, start=1)
            for tensor in gguf.GGUFReader(path).tensors}


def test_a_valid_split_model_validates_with_no_problem(shards: list[Path]) -> None:
    # gguf-py's writer packs every shard's tensors from that shard's own data offset; llama.cpp
    # loads these shards (test above), so nothing may be flagged, with or without --data.
    for given in shards:
        report = validate_file(str(given), data=True)
        assert report.problems == () and report.valid, report.problems
        assert report.files == tuple(str(path) for path in shards)
        assert sum(check.n_elements for check in report.tensors if check.checked) == sum(
            int(tensor.n_elements) for path in shards for tensor in gguf.GGUFReader(path).tensors)
    result = CliRunner().invoke(app, ["validate", str(shards[0])])
    assert result.exit_code == 0
    assert "warnings                 0" in result.stdout and "shards read              3" in (
        result.stdout)


def test_tensor_offsets_are_inside_the_shard_that_holds_them(shards: list[Path]) -> None:
    expected = _oracle_tensors(shards)
    assert all(offset + n_bytes <= shards[shard - 1].stat().st_size
               for shard, _, offset, n_bytes in expected.values())
    result = CliRunner().invoke(app, [str(shards[1]), "--tensors", "--json"])
    assert result.exit_code == 0
    listed = {t["name"]: (t["shard"], t["offset"]) for t in json.loads(result.stdout)["tensors"]}
    assert listed == {name: (shard, offset) for name, (shard, _, offset, _) in expected.items()}
    table = CliRunner().invoke(app, [str(shards[1]), "--tensors"]).stdout
    name, (shard, _, offset, _) = next((name, facts) for name, facts in expected.items()
                                       if facts[0] == 2)
    row = next(line for line in table.splitlines() if line.startswith(name + " "))
    assert row.split()[-2:] == [str(offset), str(shard)]
    # The merged source still reads each tensor's bytes from the right shard.
    merged = read_gguf(shards[1])
    assert all(merged.tensor(name).file_offset == offset
               for name, (_, _, offset, _) in expected.items())


def test_a_cut_shard_is_named_with_offsets_inside_it(shards: list[Path],
                                                     shard_copy: list[Path]) -> None:
    cut = 5000
    with open(shard_copy[2], "r+b") as handle:
        handle.truncate(cut)
    past = [(entry, data, data + n_bytes)
            for _, (shard, entry, data, n_bytes) in sorted(
                _oracle_tensors(shards).items(), key=lambda item: item[1][2])
            if shard == 3 and data + n_bytes > cut]
    assert len(past) == 5
    # issue 18: one problem for the cut, with both sizes, naming the tensor the cut falls in
    # (was: one problem per tensor past the end)
    entry, start, end = past[0]
    implied = max(end for _, _, end in past)
    expected = [(str(shard_copy[2]), entry, f"truncated: {cut:,} of {implied:,} bytes (the size "
                 f"the header implies): tensor data [{start}, {end}) (and 4 more of the 5 "
                 "tensors) runs past the end of the file")]
    report = validate_file(str(shard_copy[0]), data=True)
    assert not report.valid
    assert [(p.file, p.offset, p.message) for p in report.problems] == expected
    assert all(p.offset < cut for p in report.problems)
    result = CliRunner().invoke(app, ["validate", "--json", str(shard_copy[1])])
    assert result.exit_code == 3
    assert {p["file"] for p in json.loads(result.stdout)["problems"]} == {str(shard_copy[2])}
    table = CliRunner().invoke(app, ["validate", str(shard_copy[0])]).stdout
    assert f"{shard_copy[2]}  " in table  # a file column for a split model
    # The plain command stops at the first, named the same way.
    plain = CliRunner().invoke(app, [str(shard_copy[0])])
    assert plain.exit_code == 3
    assert plain.stderr.startswith(f"error: {shard_copy[2]}: {expected[0][2]} at byte "
                                   f"{expected[0][1]} ")


def test_packing_and_data_problems_name_their_shard(shards: list[Path],
                                                   shard_copy: list[Path]) -> None:
    # In shard 2 two tensors of the same size trade data offsets (llama.cpp wants header order:
    # a warning at the first, against shard 2's own data offset), and the f32 norm gets a NaN.
    oracle = gguf.GGUFReader(shards[1])
    by_size: dict[int, list[gguf.ReaderTensor]] = {}
    for tensor in oracle.tensors:
        by_size.setdefault(int(tensor.n_bytes), []).append(tensor)
    first, second = next(group for group in by_size.values() if len(group) >= 2)[:2]
    norm = next(t for t in oracle.tensors if t.tensor_type == gguf.GGMLQuantizationType.F32)
    data = bytearray(shard_copy[1].read_bytes())
    base = int(oracle.data_offset)
    for tensor, other in ((first, second), (second, first)):
        offset_part = int(tensor.field.offset) + sum(part.nbytes for part in tensor.field.parts[:5])
        struct.pack_into("<Q", data, offset_part, int(other.data_offset) - base)
    struct.pack_into("<f", data, int(norm.data_offset), float("nan"))
    shard_copy[1].write_bytes(bytes(data))
    report = validate_file(str(shard_copy[0]), data=True)
    assert [(p.severity, p.kind, p.file, p.offset, p.field) for p in report.problems] == [
        ("warning", "llama.cpp", str(shard_copy[1]), int(first.field.offset),
         f"{first.name} offset"),
        ("error", "data", str(shard_copy[1]), int(norm.data_offset), norm.name)]
    assert f"llama.cpp expects it at byte {int(first.data_offset)}" in report.problems[0].message


def test_every_broken_shard_is_listed_with_its_file(shards: list[Path],
                                                    shard_copy: list[Path]) -> None:
    # Shard 2 gone and shard 3's header cut inside its fourth tensor entry: validate lists
    # both, in shard order; the plain command names the first.
    shard_copy[1].unlink()
    fourth = gguf.GGUFReader(shards[2]).tensors[3].field
    cut = int(fourth.offset) + 8 + 5  # inside the name, after its 8-byte length
    shard_copy[2].write_bytes(shards[2].read_bytes()[:cut])
    report = validate_file(str(shard_copy[0]))
    assert not report.valid and not report.header_read
    assert [(p.file, p.message) for p in report.problems][0] == (
        str(shard_copy[1]), "missing shard 2 of 3")
    last = report.problems[1]
    assert (last.file, last.kind, last.offset) == (str(shard_copy[2]), "truncated",
                                                   int(fourth.offset))
    assert len(report.problems) == 2
    plain = CliRunner().invoke(app, [str(shard_copy[0])])
    assert plain.exit_code == 3 and "missing shard 2 of 3" in plain.stderr
