"""``gguf-inspect scan``: rows checked against first principles (block sizes, head counts),
gguf-py and llama.cpp's own KV-cache log; failures listed, sorting, folders, split sets, and
remote URLs read concurrently within the bound."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import gguf
import pytest
from typer.testing import CliRunner

from gguf_inspect.reports.scan import SORT_KEYS, kv_cache_bytes, scan_row, sort_rows
from gguf_inspect.cli import app
from gguf_inspect.commands.scan import find_models, run_scan
from gguf_inspect.gguf.open import read_gguf
from tests.conftest import ALL_FIXTURES, FIXTURES, fixture_path
from tests.range_server import RangeServer
from tests.split_fixtures import write_split

MIB = 1 << 20
KV_LOG = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells")


def scan_json(*args: str) -> tuple[dict, int, str]:
    result = CliRunner().invoke(app, ["scan", *args, "--json"])
    return json.loads(result.stdout), result.exit_code, result.stderr


def rows_by_name(document: dict) -> dict[str, dict]:
    return {Path(row["location"]).name: row for row in document["models"]}


def test_kv_cache_from_first_principles() -> None:
    # tiny llama (fixtures/build.py): n_embd 256, 4 heads -> head size 64, 2 KV heads, 2 layers;
    # K and V, f16 (2 bytes), 1024 tokens.
    untied = read_gguf(fixture_path("tiny-llama-untied-q8_0.gguf"))
    assert kv_cache_bytes(untied) == 1024 * 2 * 2 * (64 * 2) * 2 == MIB
    # e320: n_embd 320, 5 heads -> head size 64, 1 KV head, 2 layers.
    e320 = read_gguf(fixture_path("tiny-llama-e320-q4_k_m.gguf"))
    assert kv_cache_bytes(e320) == 1024 * 2 * 2 * (64 * 1) * 2
    assert kv_cache_bytes(e320, n_tokens=4096) == 4 * kv_cache_bytes(e320)


@pytest.mark.parametrize("name", ["tiny-llama-untied-q4_k_m.gguf", "tiny-llama-e320-q4_k_m.gguf",
                                  "tiny-gemma3-swa-q4_k_m.gguf"])
def test_kv_cache_matches_llama_cpp_log(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    import llama_cpp

    path = fixture_path(name)
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=1024, verbose=True)
    llm.close()
    log = capsys.readouterr().err
    caches = KV_LOG.findall(log)  # one line per cache: gemma3 has a global and a SWA one
    assert caches and all(cells == "1024" for _, cells in caches)
    logged_mib = sum(float(size) for size, _ in caches)
    assert kv_cache_bytes(read_gguf(path)) / MIB == pytest.approx(logged_mib, abs=0.006)


def test_rows_of_the_fixtures() -> None:
    document, code, _ = scan_json(str(FIXTURES))
    assert code == 0
    assert document["schema_version"] == 1
    rows = rows_by_name(document)
    assert set(rows) == {path.name for path in ALL_FIXTURES}
    for path in ALL_FIXTURES:
        row, oracle = rows[path.name], gguf.GGUFReader(path)
        tensors = {tensor.name: tensor for tensor in oracle.tensors}
        assert row["tensor_bytes"] == sum(int(t.n_bytes) for t in oracle.tensors)
        assert row["n_params"] == sum(int(t.n_elements) for t in oracle.tensors)
        assert row["file_size"] == path.stat().st_size
        assert row["architecture"] == oracle.get_field("general.architecture").contents()
        assert row["n_shards"] == 1
        embedding = tensors.get("token_embd.weight")
        if embedding is None:
            assert row["embedding_type"] is None and row["tied_output"] is None
            continue
        assert row["embedding_type"] == embedding.tensor_type.name.lower().replace("_k", "_K")
        assert row["embedding_bytes"] == int(embedding.n_bytes)
        assert row["embedding_f16_bytes"] == 2 * int(embedding.n_elements)
        assert row["tied_output"] == ("output.weight" not in tensors)
    # Ratio to f16 from block sizes: q8_0 34 B / 32 weights, q4_K 144 B / 256, q6_K 210 B / 256.
    assert rows["tiny-llama-untied-f16.gguf"]["embedding_ratio_to_f16"] == 1.0
    assert rows["tiny-llama-untied-q8_0.gguf"]["embedding_ratio_to_f16"] == 34 / 64
    assert rows["tiny-llama-untied-q4_k_m.gguf"]["embedding_ratio_to_f16"] == 144 / 512
    assert rows["tiny-llama-tied-q4_k_m.gguf"]["embedding_ratio_to_f16"] == 210 / 512
    assert set(document["models"][0]) == {
        "location", "architecture", "name", "n_params", "file_type", "embedding_type",
        "embedding_bytes", "embedding_f16_bytes", "embedding_ratio_to_f16", "tied_output",
        "kv_cache_bytes_per_1k_tokens", "tensor_bytes", "file_size", "n_shards", "template",
        "template_error"}


def test_bad_files_are_listed_and_the_scan_goes_on(tmp_path: Path) -> None:
    good = Path(shutil.copy(fixture_path("tiny-llama-tied-q8_0.gguf"), tmp_path / "good.gguf"))
    (tmp_path / "truncated.gguf").write_bytes(good.read_bytes()[:1000])
    (tmp_path / "not-gguf.gguf").write_bytes(b"hello world, not a model at all")
    document, code, _ = scan_json(str(tmp_path), str(tmp_path / "missing.gguf"))
    assert [Path(row["location"]).name for row in document["models"]] == ["good.gguf"]
    failures = {Path(f["location"]).name: f for f in document["failures"]}
    assert set(failures) == {"truncated.gguf", "not-gguf.gguf", "missing.gguf"}
    assert failures["missing.gguf"]["exit_code"] == 4
    assert failures["truncated.gguf"]["exit_code"] == 3
    assert "not a GGUF file" in failures["not-gguf.gguf"]["error"]
    assert code == 3  # any invalid file makes the scan exit 3


def test_only_io_failures_exit_4(tmp_path: Path) -> None:
    _, code, _ = scan_json(str(fixture_path("tiny-llama-tied-q8_0.gguf")),
                           str(tmp_path / "missing.gguf"))
    assert code == 4


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_every_sort_key_orders_rows(key: str) -> None:
    document, _, _ = scan_json(str(FIXTURES), "--sort", key)
    field = {"params": "n_params", "file-type": "file_type", "embedding-type": "embedding_type",
             "embedding-bytes": "embedding_bytes", "embedding-ratio": "embedding_ratio_to_f16",
             "kv-cache": "kv_cache_bytes_per_1k_tokens", "tensor-bytes": "tensor_bytes",
             "file-size": "file_size"}.get(key, key)
    values = [row[field] for row in document["models"]]
    assert values == sorted(values)
    reversed_document, _, _ = scan_json(str(FIXTURES), "--sort", key, "--reverse")
    assert [row[field] for row in reversed_document["models"]] == sorted(values, reverse=True)


def test_unknown_sort_key_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["scan", str(FIXTURES), "--sort", "colour"])
    assert result.exit_code == 2


def test_rows_without_a_value_sort_last() -> None:
    row = scan_row("x", read_gguf(fixture_path("tiny-llama-tied-q8_0.gguf")))
    blank = replace(row, location="y", kv_cache_bytes_per_1k_tokens=None)
    assert [r.location for r in sort_rows([blank, row], "kv-cache")] == ["x", "y"]
    assert [r.location for r in sort_rows([blank, row], "kv-cache", reverse=True)] == ["x", "y"]


def test_folders_recursion_and_split_sets(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(fixture_path("tiny-llama-tied-q8_0.gguf"), tmp_path / "top.gguf")
    shards = write_split(fixture_path("tiny-llama-untied-q4_k_m.gguf"), nested, 8, stem="deep")
    assert [Path(p).name for p in find_models([str(tmp_path)])] == ["top.gguf"]
    found = find_models([str(tmp_path)], recursive=True)
    assert [Path(p).name for p in found] == ["deep-00001-of-00003.gguf", "top.gguf"]
    document, code, _ = scan_json(str(tmp_path), "--recursive")
    assert code == 0
    split_row = rows_by_name(document)["deep-00001-of-00003.gguf"]
    assert split_row["n_shards"] == 3
    assert split_row["file_size"] == sum(path.stat().st_size for path in shards)
    unsplit = rows_by_name(scan_json(str(fixture_path("tiny-llama-untied-q4_k_m.gguf")))[0])
    assert split_row["tensor_bytes"] == unsplit["tiny-llama-untied-q4_k_m.gguf"]["tensor_bytes"]


def test_remote_urls_are_read_concurrently_within_the_bound() -> None:
    names = [path.name for path in ALL_FIXTURES]
    with RangeServer(FIXTURES, overlap=2) as server:
        urls = [server.url(name) for name in names]
        result = CliRunner().invoke(app, ["scan", *urls, "--jobs", "3", "--json"])
        most = server.log.most_in_flight
    assert result.exit_code == 0, result.stderr
    assert 1 < most <= 3
    document = json.loads(result.stdout)
    assert [row["location"] for row in document["models"]] == sorted(urls)
    local = rows_by_name(scan_json(str(FIXTURES))[0])
    for row in document["models"]:
        expected = dict(local[Path(row["location"]).name], location=row["location"])
        assert row == expected
    progress = result.stderr.splitlines()
    assert len(progress) == len(names)
    assert progress[-1].startswith(f"scan [{len(names)}/{len(names)}] ok: ")


def test_table_output_escapes_and_lists_failures(tmp_path: Path) -> None:
    text, code = run_scan([str(fixture_path("tiny-llama-untied-q4_k_m.gguf")),
                           str(tmp_path / "gone\x1b[31m.gguf")], "table")
    assert code == 4
    assert "\x1b" not in text
    assert "== could not read (1) ==" in text
    assert "Q4_K - Medium" in text and "28.12%" in text
