"""Issue 18 item 8, the smaller things a new user hit: histogram labels that collapse, "moved"
rows that did not move, headers over no rows, -0.0%, float32 values printed as their float64
expansion, a sort by a hidden column, a CPU-only --ngl that contradicts its assumption line, the
README's exit-code table, and a --help that cuts its own text or hides what a value may be.
Expected values come from numpy, gguf-py, os.stat or llama.cpp's own source (common/arg.cpp)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.llamacpp.load_log import PrintedSize
from gguf_inspect.render.embed import edge_labels, format_drift
from gguf_inspect.reports.runtime import _estimate_check
from tests.conftest import FIXTURES, fixture_path, write_gguf

ROOT = Path(__file__).resolve().parent.parent
MODEL = fixture_path("tiny-llama-tied-q8_0.gguf")
OTHER = fixture_path("tiny-llama-tied-f16.gguf")
MIB = 1 << 20
# common/arg.cpp kv_cache_types (llama.cpp bundled with llama-cpp-python 0.3.36)
LLAMA_CPP_CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


def invoke(*args: str, columns: int = 100) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def write_model(path: Path, rows: np.ndarray, extra: dict[str, object] | None = None) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_embedding_length(rows.shape[1])
    writer.add_context_length(32)
    writer.add_head_count(1)
    writer.add_token_list([f"t{index}" for index in range(rows.shape[0])])
    for key, value in (extra or {}).items():
        if isinstance(value, np.float64):
            writer.add_float64(key, float(value))
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_float32(key, float(value))  # type: ignore[arg-type]
    writer.add_tensor("token_embd.weight", rows.astype(np.float32))
    write_gguf(writer)
    return path


# ---- embed --stats: histogram labels ------------------------------------------------------------

def test_histogram_labels_tell_close_bins_apart(tmp_path: Path) -> None:
    # 64 rows whose norms lie in [1.028, 1.028 + 6.3e-5]: every edge reads 1.028 at 4 digits.
    direction = np.ones(8) / np.sqrt(8)
    rows = np.array([direction * (1.028 + index * 1e-6) for index in range(64)])
    model = write_model(tmp_path / "close.gguf", rows)
    code, out, err = invoke("embed", str(model), "--stats")
    assert code == 0, err
    labels = re.findall(r"^(\S+) \.\. (\S+)\s+\d", out, re.MULTILINE)
    norms = np.linalg.norm(rows.astype(np.float32).astype(np.float64), axis=1)
    _, edges = np.histogram(norms, bins=len(labels))
    assert len(labels) >= 2
    lows, highs = [low for low, _ in labels], [high for _, high in labels]
    assert len(set(lows)) == len(lows)  # no two bins read alike
    assert lows[1:] == highs[:-1]  # each bin starts where the one before ends
    shown = [float(text) for text in lows + highs[-1:]]
    assert shown == sorted(shown)
    spacing = edges[1] - edges[0]
    assert all(abs(value - edge) < spacing / 2 for value, edge in zip(shown, edges))


def test_edge_labels_keep_four_digits_when_they_suffice() -> None:
    assert edge_labels([0.7, 0.7206, 0.7411]) == ["0.7", "0.7206", "0.7411"]
    assert edge_labels([1.02800, 1.02801, 1.02802]) == ["1.028", "1.02801", "1.02802"]


# ---- embed --stats --vs: rows that moved ---------------------------------------------------------

def test_identical_files_list_no_moved_rows() -> None:
    code, out, err = invoke("embed", str(MODEL), "--stats", "--vs", str(MODEL))
    assert code == 0, err
    tail = out.split("== rows that moved most ==")[1]
    assert tail.strip().startswith("none: every row's cosine A~B is 1")
    assert "cosine A~B\n" not in tail  # no table
    _, as_json, _ = invoke("embed", str(MODEL), "--stats", "--vs", str(MODEL), "--json")
    assert json.loads(as_json)["drift"]["moved_most"] == []


def test_rows_that_moved_read_below_one() -> None:
    code, out, err = invoke("embed", str(MODEL), "--stats", "--vs", str(OTHER))
    assert code == 0, err
    cosines = re.findall(r"^'.*?'\s+\d+\s+([0-9.]+)$", out.split("rows that moved most")[1],
                         re.MULTILINE)
    assert cosines and all(float(value) < 1 for value in cosines)
    assert format_drift(0.99999997) == "0.99999997"  # not 1.000000
    assert format_drift(1.0) == "1.000000"


# ---- sections with no rows -------------------------------------------------------------------------

def test_empty_sections_print_no_headers_in_any_format() -> None:
    for output in ([], ["--markdown"]):
        code, out, err = invoke("diff", str(MODEL), str(MODEL), *output)
        assert code == 0, err
        assert "(none)" in out
        assert not re.search(r"\bchange\b", out)  # the tensors' and keys' column, no header
    code, out, _ = invoke("scan", str(ROOT / "no-such-folder"))
    assert code == 4
    assert "models (0" not in out  # the failure says it; no empty models table


# ---- -0.0% -------------------------------------------------------------------------------------------

def test_a_tiny_negative_difference_reads_plus_zero() -> None:
    runtime = [PrintedSize(100.0, "MiB", 2)]
    nearly = _estimate_check("compute", int(99.99 * MIB), runtime)  # -0.01%
    assert nearly.note == "+0.0%"
    below = _estimate_check("compute", int(99.8 * MIB), runtime)  # -0.2%
    assert below.note == "-0.2%"


# ---- floats for people --------------------------------------------------------------------------------

def test_float32_metadata_reads_as_written(tmp_path: Path) -> None:
    model = write_model(tmp_path / "eps.gguf", np.ones((4, 8)), {
        "llama.attention.layer_norm_rms_epsilon": 1e-6, "test.tenth": 0.1,
        "test.double": np.float64(0.1), "test.scales": [0.1, 1e-6, 3.0]})
    code, out, err = invoke(str(model), "--metadata", "--full", columns=200)
    assert code == 0, err
    rows = {line.split()[0]: line.split(None, 2)[2] for line in out.splitlines()
            if line.startswith(("llama.", "test."))}
    assert rows["llama.attention.layer_norm_rms_epsilon"] == "1e-06"
    assert rows["test.tenth"] == "0.1"
    assert rows["test.double"] == "0.1"
    reader = gguf.GGUFReader(model)  # gguf-py: the array is float32 on disk
    assert reader.fields["test.scales"].types[-1] == gguf.GGUFValueType.FLOAT32
    assert rows["test.scales"] == "[3] 0.1, 1e-06, 3.0"
    assert "9.99999997" not in out and "0.10000000149" not in out
    _, as_json, _ = invoke(str(model), "--metadata", "--json")
    values = {item["key"]: item["value"] for item in json.loads(as_json)["metadata"]}
    assert values["llama.attention.layer_norm_rms_epsilon"] == float(np.float32(1e-6))  # exact
    _, diff, _ = invoke("diff", str(MODEL), str(model), columns=200)
    assert "1e-06" in diff and "9.99999997" not in diff


# ---- scan --sort file-size --------------------------------------------------------------------------

def test_scan_sorted_by_file_size_shows_the_size() -> None:
    code, out, err = invoke("scan", str(FIXTURES), "--sort", "file-size", columns=400)
    assert code == 0, err
    lines = out.splitlines()
    header = lines[1]
    assert header.rstrip().endswith("size")
    sizes = [line.rsplit(None, 2)[-2] for line in lines[3:] if line.endswith(" MiB")]
    files = sorted(FIXTURES.glob("*.gguf"), key=lambda path: path.stat().st_size)
    assert sizes == [f"{path.stat().st_size / MIB:.2f}" for path in files]
    _, other, _ = invoke("scan", str(FIXTURES), "--sort", "params", columns=400)
    assert not other.splitlines()[1].rstrip().endswith(" size")  # only when it sorts


# ---- vram without a GPU ---------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "asked"), [([], "all (-1)"), (["--ngl", "2"], "2")])
def test_cpu_only_vram_says_what_was_asked_and_that_nothing_is_offloaded(
        given: list[str], asked: str) -> None:
    blocks = int(gguf.GGUFReader(MODEL).fields["llama.block_count"].parts[-1][0])
    code, out, err = invoke("vram", str(MODEL), *given, columns=200)
    assert code == 0, err
    assert (f"--ngl                 {asked}, but 0 of {blocks + 1} offloaded: no GPU (CPU only)"
            in out)
    assert f"--ngl 0 of {blocks + 1}" not in out
    assert "no --gpu given: host memory only (no layer offloaded)" in out


# ---- the README's exit codes ----------------------------------------------------------------------

def test_readme_exit_code_table_matches_diff() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Exit codes")[1].split("\n\n")[1]
    row_0, row_1 = table.splitlines()[2:4]
    assert "`diff` without `--exit-code` exits 0 even when the files differ" in row_0
    assert "`diff --exit-code` found a difference" in row_1
    assert invoke("diff", str(MODEL), str(OTHER))[0] == 0
    assert invoke("diff", str(MODEL), str(OTHER), "--exit-code")[0] == 1


# ---- --help ---------------------------------------------------------------------------------------------

COMMANDS = ["inspect", "validate", "audit", "diff", "embed", "runtime", "vram", "scan"]


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_at_80_columns_cuts_nothing(command: list[str]) -> None:
    code, out, _ = invoke(*command, "--help", columns=80)
    assert code == 0
    assert "\u2026" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    if not command:  # the command list: whole short helps, none ending in "..."
        listed = out.split("Commands:")[1].strip().splitlines()
        assert len(listed) == len(COMMANDS)
        assert not any(line.rstrip().endswith("...") for line in listed)
    if command == ["vram"]:
        assert "4k/8k/16k/32k/trained" in out


@pytest.mark.parametrize("command", ["inspect", "validate", "audit", "diff", "embed", "vram",
                                     "runtime"])
def test_help_says_a_model_may_be_a_url(command: str) -> None:
    out = invoke(command, "--help", columns=200)[1]
    assert "hf://" in out and "http(s)://" in out


def test_help_lists_cache_types_and_gpu_names_and_the_error_does_too() -> None:
    from gguf_inspect.llamacpp.devices import KNOWN_GPUS_MIB

    out = " ".join(invoke("vram", "--help", columns=200)[1].split())
    assert ", ".join(LLAMA_CPP_CACHE_TYPES) in out
    assert all(name in out for name in KNOWN_GPUS_MIB)
    code, _, err = invoke("vram", str(MODEL), "--cache-type-k", "q9_9")
    assert code == 2
    assert ", ".join(LLAMA_CPP_CACHE_TYPES) in " ".join(err.split())
    code, _, err = invoke("vram", str(MODEL), "--gpu", "rtx9999")
    assert code == 2
    assert "rtx4090" in err and "h100-80g" in err
