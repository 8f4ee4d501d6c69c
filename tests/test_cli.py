"""The default command end to end, as a user runs it: formats, JSON contract, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from tests.conftest import fixture_path, write_gguf

UNTIED = fixture_path("tiny-llama-untied-q4_k_m.gguf")
TIED = fixture_path("tiny-llama-tied-q4_k_m.gguf")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gguf_inspect", *args], capture_output=True,
                          text=True, timeout=60)


def test_json_contract_of_embeddings_report() -> None:
    result = run_cli(str(TIED), "--embeddings", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert set(document["file"]) >= {"path", "gguf_version", "file_size", "n_tensors", "n_kv",
                                     "alignment", "data_offset"}
    assert set(document["model"]) >= {"architecture", "name", "file_type", "n_params",
                                      "tensor_bytes", "bits_per_weight", "n_vocab", "n_embd",
                                      "n_layer", "context_length"}
    oracle = gguf.GGUFReader(TIED)
    assert document["file"]["file_size"] == TIED.stat().st_size
    assert document["file"]["n_tensors"] == len(oracle.tensors)
    assert document["file"]["data_offset"] == oracle.data_offset
    assert document["model"]["tensor_bytes"] == sum(int(t.n_bytes) for t in oracle.tensors)
    assert document["model"]["file_type"] == "Q4_K - Medium"
    embeddings = document["embeddings"]
    assert set(embeddings) >= {"tensor", "type", "ne", "n_vocab", "n_embd", "n_bytes",
                               "bits_per_weight", "f16_bytes", "ratio_to_f16",
                               "share_of_tensor_bytes", "tied_output", "output", "verdict",
                               "placement"}
    assert embeddings["type"] == "q6_K" and embeddings["tied_output"] is True
    assert embeddings["n_bytes"] == 384 * 256 // 256 * 210
    assert embeddings["f16_bytes"] == 384 * 256 * 2
    assert embeddings["output"] is None
    assert document["type_counts"] == {"f32": 5, "q4_K": 12, "q6_K": 3}


def test_table_output_names_the_facts() -> None:
    result = run_cli(str(UNTIED), "--embeddings")
    assert result.returncode == 0, result.stderr
    assert "Q4_K - Medium" in result.stdout
    assert "token_embd.weight" in result.stdout and "output.weight" in result.stdout
    assert f"{384 * 256 // 256 * 144:,}" in result.stdout  # q4_K embedding bytes
    assert "host memory" in result.stdout


def test_markdown_output_is_tables() -> None:
    result = run_cli(str(UNTIED), "--embeddings", "--markdown")
    assert result.returncode == 0
    assert "### token embedding" in result.stdout
    assert "| input embedding" in result.stdout


def test_metadata_and_tensor_listing() -> None:
    result = run_cli(str(UNTIED), "--metadata", "--tensors", "--filter", "blk.1.*", "--json")
    document = json.loads(result.stdout)
    tokens = next(item for item in document["metadata"] if item["key"] == "tokenizer.ggml.tokens")
    assert tokens["count"] == 384 and not tokens["complete"] and tokens["value"][0] == "<unk>"
    assert {t["name"] for t in document["tensors"]} == {
        t.name for t in gguf.GGUFReader(UNTIED).tensors if t.name.startswith("blk.1.")}
    full = json.loads(run_cli(str(UNTIED), "--metadata", "--full", "--json").stdout)
    tokens = next(item for item in full["metadata"] if item["key"] == "tokenizer.ggml.tokens")
    assert tokens["complete"] and len(tokens["value"]) == 384


@pytest.mark.parametrize("args, code, fragment", [
    (["missing.gguf"], 4, "cannot open"),
    ([str(UNTIED), "--json", "--markdown"], 2, ""),
    ([str(UNTIED), "--no-such-option"], 2, ""),
    ([str(UNTIED), "--full"], 2, "needs --metadata"),  # not silently ignored
    ([str(UNTIED), "--filter", "blk.*"], 2, "needs --tensors"),
])
def test_exit_codes(args: list[str], code: int, fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == code
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_file_is_one_line_and_exit_3(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(UNTIED.read_bytes()[:5000])
    result = run_cli(str(path), "--embeddings")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}:") and "at byte" in lines[0]
    traced = run_cli(str(path), "--traceback")
    assert traced.returncode == 3 and "Traceback" in traced.stderr


def test_control_characters_from_metadata_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "hostile.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("evil\x1b[2J\x1b]0;pwned\x07name\u202e")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float16))
    write_gguf(writer)
    for fmt in ([], ["--markdown"]):
        result = run_cli(str(path), "--embeddings", "--metadata", *fmt)
        assert result.returncode == 0
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\u202e" not in result.stdout
        assert "\\x1b" in result.stdout and "\\u202e" in result.stdout
    document = json.loads(run_cli(str(path), "--json").stdout)
    assert document["model"]["name"] == "evil\x1b[2J\x1b]0;pwned\x07name\u202e"


def test_subcommand_names_are_not_taken_for_models() -> None:
    result = run_cli("--help")
    assert result.returncode == 0 and "inspect" in result.stdout


def test_version_names_the_libraries_whose_rules_we_follow() -> None:
    from importlib import metadata

    import gguf_inspect

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"gguf-inspect {gguf_inspect.__version__} ")
    assert f"gguf {metadata.version('gguf')}" in result.stdout
    assert "llama-cpp-python " in result.stdout


def test_tensor_listing_of_a_split_model_names_each_shard(tmp_path: Path) -> None:
    from tests.split_fixtures import write_split

    shards = write_split(UNTIED, tmp_path, max_tensors=8)
    document = json.loads(run_cli(str(shards[1]), "--tensors", "--json").stdout)
    per_shard = [len(gguf.GGUFReader(path).tensors) for path in shards]
    counted = [sum(1 for t in document["tensors"] if t["shard"] == number)
               for number in range(1, len(shards) + 1)]
    assert counted == per_shard
    table = run_cli(str(shards[0]), "--tensors").stdout
    assert "shard" in table.splitlines()[table.splitlines().index("== tensors ==") + 1]


def test_the_header_only_path_stays_light() -> None:
    # numpy + gguf-py cost ~300 ms of imports: the summary and --embeddings never need them.
    probe = ("import sys\nfrom gguf_inspect.cli import app\n"
             f"sys.argv = ['gguf-inspect', {str(UNTIED)!r}, '--embeddings', '--metadata']\n"
             "code = 0\ntry:\n    app()\nexcept SystemExit as exit:\n    code = exit.code\n"
             "heavy = sorted(m for m in ('numpy', 'gguf', 'requests', 'llama_cpp') "
             "if m in sys.modules)\nsys.stderr.write(repr((code, heavy)))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    # the run succeeded (exit 0) and loaded none of the heavy modules
    assert result.stderr.strip().endswith("(0, [])"), result.stderr
    assert "token_embd" in result.stdout


def test_the_header_only_path_loads_neither_the_memory_model_nor_the_http_code() -> None:
    """The summary needs the reader and the renderers: not the compute graph simulation, the
    LoRA/projector sizing, nor gguf/remote.py (whose ssl and http imports cost ~30 ms)."""
    probe = ("import sys\nfrom gguf_inspect.cli import main\n"
             f"try:\n    main([{str(UNTIED)!r}, '--embeddings'])\nexcept SystemExit:\n    pass\n"
             "names = ('gguf_inspect.llamacpp.memory', 'gguf_inspect.llamacpp.compute_graph', "
             "'gguf_inspect.llamacpp.adapters', 'gguf_inspect.llamacpp.projector', "
             "'gguf_inspect.gguf.remote', 'ssl', 'jinja2')\n"
             "sys.stderr.write(repr(sorted(m for m in names if m in sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.stderr.strip().endswith("[]"), result.stderr
