"""Our predictions against llama.cpp itself: every fixture, loaded for real under several
configurations, must show ``match`` on every exact quantity.

The oracle is the runtime: llama.cpp's own load log and C API (llama_model_size,
llama_model_n_params, llama_n_ctx ...), captured through llama-cpp-python. The compute buffer is
an estimate and only has to be present; every other row must match.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.reports.runtime import (
    ESTIMATE,
    MATCH,
    RuntimeComparison,
    config_from_log,
    llama_params_text,
    printed_value,
)
from gguf_inspect.llamacpp.load_log import PrintedSize, parse_load_log, split_log_text
from gguf_inspect.commands.runtime import compare_runtime
from tests.conftest import ALL_FIXTURES, FIXTURES, fixture_path, load_script

DATA = Path(__file__).resolve().parent / "data"
SWA = fixture_path("tiny-gemma3-swa-q4_k_m.gguf")
UNTIED = fixture_path("tiny-llama-untied-q4_k_m.gguf")

# The configurations of the issue, each a set of LlamaSettings fields (what the CLI flags set).
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ctx-1000": {"n_ctx": 1000},  # not a multiple of 256: padded to 1024
    "3-sequences": {"n_ctx": 3000, "n_parallel": 3},
    "q8_0-kv-flash-on": {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attn": "on"},
    "q4_0-k-flash-off": {"cache_type_k": "q4_0", "flash_attn": "off"},
    "no-mmap": {"use_mmap": False},
}
# Sliding-window rules need their own cases: without swa_full the SWA cache is
# PAD(min(n_ctx_seq, n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256) cells.
SWA_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "no-swa-full": {"swa_full": False},
    "no-swa-full-2-sequences": {"swa_full": False, "n_parallel": 2},
    "no-swa-full-unified": {"swa_full": False, "n_parallel": 2, "kv_unified": True},
    "no-swa-full-small-ubatch": {"swa_full": False, "n_ubatch": 100, "n_ctx": 2000},
    # n_swa 128, n_ubatch 64: 128 * 1 + 64 -> 256 cells per stream, 128 * 3 + 64 -> 512 when
    # the three sequences share one unified cache (the window times n_seq_max)
    "no-swa-full-3-sequences-small-ubatch": {"swa_full": False, "n_parallel": 3, "n_ubatch": 64,
                                             "n_ctx": 6144},
    "no-swa-full-3-sequences-unified-small-ubatch": {"swa_full": False, "n_parallel": 3,
                                                     "n_ubatch": 64, "n_ctx": 6144,
                                                     "kv_unified": True},
    "no-swa-full-q8_0-flash-off": {"swa_full": False, "cache_type_k": "q8_0", "flash_attn": "off"},
    # Small contexts without flash attention: the attention phase no longer dominates the
    # compute buffer, so the per-cache k/v index inputs (one set per cache) and gemma3's in-place
    # Q rope decide the peak (once 13% low at n_ctx 256).
    "ctx-256-flash-off": {"n_ctx": 256, "flash_attn": "off"},
    "ctx-512-flash-off": {"n_ctx": 512, "flash_attn": "off"},
    "no-swa-full-ctx-256-flash-off": {"swa_full": False, "n_ctx": 256, "flash_attn": "off"},
    "no-swa-full-ctx-512-flash-off": {"swa_full": False, "n_ctx": 512, "flash_attn": "off"},
}


@lru_cache(maxsize=None)
def _compare_cached(model: Path, settings: tuple[tuple[str, Any], ...]) -> RuntimeComparison:
    return compare_runtime(str(model), dict(settings))


def comparison_for(model: Path, settings: dict[str, Any]) -> RuntimeComparison:
    """One real load per (model, settings) for the whole module: the tests share it."""
    return _compare_cached(model, tuple(sorted(settings.items())))


def differing(comparison: RuntimeComparison) -> list[str]:
    return [f"{c.quantity}: predicted {c.predicted!r}, runtime {c.runtime!r} ({c.note})"
            for c in comparison.checks if c.exact and c.status != MATCH]


def quantities(comparison: RuntimeComparison) -> set[str]:
    return {check.quantity for check in comparison.checks}


@pytest.mark.parametrize("settings", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
@pytest.mark.parametrize("model", ALL_FIXTURES, ids=lambda path: path.name)
def test_every_exact_quantity_matches_the_runtime(model: Path, settings: dict[str, Any]) -> None:
    comparison = comparison_for(model, settings)
    assert not differing(comparison), "\n".join(differing(comparison))
    # Not vacuous: the checks cover the model facts, the buffers and the KV cache.
    assert {"n_embd", "n_vocab", "n_layer", "n_ctx_train", "file type", "model params",
            "tensor bytes (llama_model_size)", "n_ctx", "KV cache cells", "KV cache K",
            "KV cache V", "KV cache CPU buffer", "CPU output buffer"} <= quantities(comparison)
    # Exact bytes where llama.cpp's C API gives them: llama_model_size (tensor bytes) and
    # llama_model_n_params. Every buffer (model, KV, output, compute) exists only as a log
    # line in MiB with two decimals (llama-model.cpp load_tensors, llama-kv-cache.cpp,
    # llama-context.cpp "%8.2f MiB"): no C API returns a buffer's bytes, and
    # llama_state_get_size counts only used cells. Those rows compare at that precision.
    by_quantity = {c.quantity: c for c in comparison.checks}
    size = by_quantity["tensor bytes (llama_model_size)"]
    assert size.unit == "B" and size.predicted == size.runtime and size.runtime > 0
    params = by_quantity["model params (llama_model_n_params)"]
    assert params.predicted == params.runtime > 0
    model_buffers = [c for c in comparison.checks if c.quantity.endswith("model buffer")]
    assert model_buffers and all(c.runtime is not None for c in model_buffers)
    (compute,) = [c for c in comparison.checks if c.quantity == "CPU compute buffer"]
    assert compute.status == ESTIMATE and compute.note.endswith("%")


@pytest.mark.parametrize("settings", SWA_CONFIGURATIONS.values(), ids=SWA_CONFIGURATIONS.keys())
def test_sliding_window_caches_match_the_runtime(settings: dict[str, Any]) -> None:
    comparison = comparison_for(SWA, settings)
    assert not differing(comparison), "\n".join(differing(comparison))
    assert {"KV cache cells", "SWA KV cache cells", "SWA KV cache layers",
            "SWA KV cache size", "SWA KV cache CPU buffer"} <= quantities(comparison)


COMPUTE_TOLERANCE = 0.10  # issue "Pre-deployment memory audit": compute buffer within 10%
ALL_CASES = [(model, settings) for model in ALL_FIXTURES for settings in CONFIGURATIONS.values()]
ALL_CASES += [(SWA, settings) for settings in SWA_CONFIGURATIONS.values()]


@pytest.mark.parametrize(("model", "settings"), ALL_CASES,
                         ids=[f"{m.name}-{'-'.join(f'{k}={v}' for k, v in s.items()) or 'defaults'}"
                              for m, s in ALL_CASES])
def test_compute_buffer_estimate_is_within_ten_percent(model: Path,
                                                       settings: dict[str, Any]) -> None:
    """The compute buffer is an estimate (memory.compute_buffers, simulated by compute_graph);
    the memory audit promises it within 10% of the runtime's sched_reserve figure."""
    (compute,) = [c for c in comparison_for(model, settings).checks
                  if c.quantity == "CPU compute buffer"]
    relative = abs(compute.predicted - compute.runtime) / compute.runtime
    assert relative <= COMPUTE_TOLERANCE, (
        f"memory.compute_buffers predicts {compute.predicted:.4f} MiB, llama.cpp reserved "
        f"{compute.runtime:.4f} MiB ({compute.note}) for {model.name} with {settings}")
    # held tighter than promised: to the 0.0001 MiB of llama.cpp's teardown line
    assert abs(compute.predicted - compute.runtime) < 0.00006, (
        f"{model.name} {settings}: {compute.predicted:.4f} != {compute.runtime:.4f} MiB")


SMALL_CONTEXT_FLASH_OFF = [name for name in SWA_CONFIGURATIONS if name.endswith("-flash-off")
                           and "ctx-" in name]


@pytest.mark.parametrize("name", SMALL_CONTEXT_FLASH_OFF)
def test_gemma_compute_estimate_is_tight_at_small_contexts_without_flash_attention(
        name: str) -> None:
    """Tighter than the 10% promise: these loads were 4-13% low while the graph shared one set
    of k/v index inputs between gemma3's two caches and kept its Q rope out of place."""
    (compute,) = [c for c in comparison_for(SWA, SWA_CONFIGURATIONS[name]).checks
                  if c.quantity == "CPU compute buffer"]
    assert abs(compute.predicted - compute.runtime) / compute.runtime <= 0.01, (
        f"predicted {compute.predicted:.4f} MiB, llama.cpp {compute.runtime:.4f} MiB ({name})")


def test_the_sliding_window_cache_is_smaller_without_swa_full() -> None:
    """Checks the runtime's own figures (not ours): gemma3's window 128 + n_ubatch 512 -> 768."""
    by_quantity = {c.quantity: c for c in comparison_for(SWA, {"swa_full": False}).checks}
    assert by_quantity["SWA KV cache cells"].runtime == 768
    assert by_quantity["SWA KV cache layers"].runtime == 5  # blocks 0-4; block 5 is full
    assert by_quantity["KV cache layers"].runtime == 1
    assert by_quantity["KV cache cells"].runtime == 4096


# ---- saved logs (--from-log): no llama-cpp-python needed --------------------------------------

def test_saved_current_log_of_a_sliding_window_model_matches() -> None:
    comparison = compare_runtime(str(SWA), {},
                                 from_log=str(DATA / "runtime-current-gemma3-swa.log"))
    assert comparison.log_style == "current"
    assert not differing(comparison), "\n".join(differing(comparison))
    assert comparison.config["n_seq_max"] == 2 and comparison.config["swa_full"] is False


def test_saved_older_log_matches() -> None:
    model = fixture_path("tiny-llama-untied-q8_0.gguf")
    comparison = compare_runtime(str(model), {},
                                 from_log=str(DATA / "runtime-older-untied-q8_0.log"))
    assert comparison.log_style == "older"
    assert not differing(comparison), "\n".join(differing(comparison))
    assert {"KV cache cells", "KV cache size", "CPU_Mapped model buffer"} <= quantities(comparison)


def test_a_wrong_setting_shows_as_differs() -> None:
    """The log was made with n_ctx 4096; predicting for 8192 must fail on the KV cache."""
    model = fixture_path("tiny-llama-untied-q8_0.gguf")
    comparison = compare_runtime(str(model), {"n_ctx": 8192},
                                 from_log=str(DATA / "runtime-older-untied-q8_0.log"))
    assert not comparison.all_match
    wrong = {c.quantity for c in comparison.checks if c.exact and c.status != MATCH}
    assert {"n_ctx", "KV cache cells", "KV cache size", "KV cache CPU buffer"} <= wrong


def test_a_saved_log_of_another_model_differs() -> None:
    comparison = compare_runtime(str(UNTIED), {},
                                 from_log=str(DATA / "runtime-current-gemma3-swa.log"))
    wrong = {c.quantity for c in comparison.checks if c.exact and c.status != MATCH}
    assert {"n_embd", "n_layer", "CPU_Mapped model buffer"} <= wrong


# ---- printed precision ------------------------------------------------------------------------

def test_predictions_are_rounded_like_the_log() -> None:
    two_decimals = PrintedSize(0.0, "MiB", 2)
    assert printed_value(577_536, two_decimals) == 0.55  # 0.5508 MiB
    assert printed_value(4_919_808_000, PrintedSize(0.0, "GiB", 2)) == 4.58  # 4.5819 GiB
    assert printed_value(6_830_080, PrintedSize(0.0, "MiB", 4)) == 6.5137


# ---- the command as a user runs it ------------------------------------------------------------

def run_cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = (f"{prelude}import sys; from gguf_inspect.cli import main; "
            "sys.argv[0] = 'gguf-inspect'; main()")
    return subprocess.run([sys.executable, "-c", code, "runtime", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_json_contract_and_log_round_trip(tmp_path: Path) -> None:
    log = tmp_path / "load.log"
    result = run_cli(str(SWA), "--ctx", "1000", "--parallel", "2", "--no-swa-full", "--json",
                     "--log", str(log))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    assert document["all_match"] is True
    assert {"n_ctx", "n_ctx_seq", "n_batch", "n_ubatch", "n_seq_max", "flash_attn",
            "kv_unified", "swa_full", "type_k", "type_v"} <= set(document["config"])
    assert (document["config"]["n_ctx"], document["config"]["n_ctx_seq"]) == (1024, 512)
    for check in document["checks"]:
        assert {"quantity", "unit", "predicted", "runtime", "status"} <= set(check)
        assert check["status"] in ("match", "differs", "estimate")
    assert "llama_kv_cache_iswa: creating     SWA KV cache" in log.read_text()
    # The saved raw log compares the same way without loading anything.
    again = run_cli(str(SWA), "--from-log", str(log), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["all_match"] is True


def test_cli_exit_1_when_an_exact_quantity_differs() -> None:
    model = fixture_path("tiny-llama-untied-q8_0.gguf")
    result = run_cli(str(model), "--from-log", str(DATA / "runtime-older-untied-q8_0.log"),
                     "--ctx", "8192")
    assert result.returncode == 1, result.stderr
    assert "differ from the runtime" in result.stdout


def test_cli_exit_5_with_llama_cpps_error_line() -> None:
    result = run_cli(str(UNTIED), "--cache-type-v", "q4_0", "--flash-attn", "off")
    assert result.returncode == 5
    assert "quantized V cache requires flash_attn to be enabled" in result.stderr


def test_cli_exit_5_without_llama_cpp_python() -> None:
    result = run_cli(str(UNTIED), prelude="import sys; sys.modules['llama_cpp'] = None; ")
    assert result.returncode == 5
    assert "pip install" in result.stderr and "llama-cpp-python" in result.stderr


def test_cli_from_log_works_without_llama_cpp_python() -> None:
    result = run_cli(str(SWA), "--from-log", str(DATA / "runtime-current-gemma3-swa.log"),
                     prelude="import sys; sys.modules['llama_cpp'] = None; ")
    assert result.returncode == 0, result.stderr
    assert "all" in result.stdout and "exact quantities match the runtime" in result.stdout


def test_cli_rejects_an_unknown_cache_type() -> None:
    result = run_cli(str(UNTIED), "--cache-type-k", "q3_z")
    assert result.returncode == 2


def test_older_logs_name_the_mapped_buffer_cpu(tmp_path: Path) -> None:
    older = (DATA / "runtime-older-untied-q8_0.log").read_text()
    log = tmp_path / "older-cpu.log"
    log.write_text(older.replace("CPU_Mapped model buffer size", "CPU buffer size"))
    comparison = compare_runtime(str(fixture_path("tiny-llama-untied-q8_0.gguf")), {},
                                 from_log=str(log))
    assert not differing(comparison), "\n".join(differing(comparison))
    assert "CPU model buffer" in quantities(comparison)
    assert any("CPU_Mapped" in note for note in comparison.notes)


def test_model_params_are_printed_like_llama_cpp() -> None:
    # The figures llama.cpp printed for these element counts (the fixture's log; Llama-3-8B's).
    assert llama_params_text(984_320) == "984.32 K"
    assert llama_params_text(8_030_261_248) == "8.03 B"
    assert llama_params_text(1_000_000) == "1.00 M"


def test_gpu_settings_are_read_from_a_gpu_log() -> None:
    log = parse_load_log(split_log_text(
        (DATA / "runtime-older-llama3-8b-cuda.log").read_text(encoding="utf-8")))
    config, notes = config_from_log(log, LlamaSettings())
    assert config.gpu_capacities == (1,)  # one CUDA0 buffer
    assert config.n_gpu_layers == 33  # "offloaded 33/33 layers to GPU"
    assert (config.n_ctx, config.flash_attn, config.cache_type_k) == (8192, "off", "f16")
    assert any("CUDA0" in note for note in notes)


def test_cli_a_file_that_is_not_a_load_log_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\nnothing from llama.cpp here\n")
    result = run_cli(str(UNTIED), "--from-log", str(text))
    assert result.returncode == 3
    assert "not a llama.cpp load log" in result.stderr


# ---- rules only some shapes reach: exact against a real load -----------------------------------
def assert_all_exact(comparison: RuntimeComparison, tolerance: float = 0.00006) -> None:
    """Every exact quantity matches, and the compute buffer too, to the 0.0001 MiB of
    llama.cpp's teardown line (``tolerance``: both sides rounded, a wider one)."""
    assert not differing(comparison), "\n".join(differing(comparison))
    (compute,) = [c for c in comparison.checks if c.quantity.endswith("compute buffer")]
    assert abs(compute.predicted - compute.runtime) < tolerance, (compute.predicted,
                                                                    compute.runtime)


def _wide_heads(folder: Path) -> Path:
    """A tiny llama with 128-wide heads (n_embd 256, 2 heads): the only fixture shape where K's
    Hadamard rotation (the largest power of two from 64 dividing the head, 128) differs from
    V's (always 64), llama-kv-cache.cpp attn_rot_k / attn_rot_v."""
    build = load_script("fixtures_build", FIXTURES.parent / "fixtures" / "build.py")
    path = folder / "tiny-llama-head128-f16.gguf"
    if not path.exists():
        build.write_source(build.TinySpec("tiny-llama-head128", n_embd=256, n_head=2,
                                          n_head_kv=1, n_ff=256, tied=False, seed=9), path)
    return path


@pytest.fixture(scope="module")
def wide_heads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wide_heads(tmp_path_factory.mktemp("head128"))


@pytest.mark.parametrize("settings", [
    {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attn": "on"},
    {"cache_type_k": "q4_0", "cache_type_v": "f16", "flash_attn": "on"},
    {"cache_type_k": "f16", "cache_type_v": "q8_0", "flash_attn": "on"},
    {"cache_type_k": "q8_0", "flash_attn": "off"},
], ids=["k-q8_0-v-q8_0", "k-q4_0", "v-q8_0", "k-q8_0-flash-off"])
def test_quantized_cache_rotations_of_wide_heads(wide_heads: Path, settings: dict[str, Any]
                                                 ) -> None:
    """Each quantized cache adds its rotation's matrix and products to the graph: K rotates
    by 128 here, V by 64; the compute buffer is exact to llama.cpp's teardown line."""
    comparison = comparison_for(wide_heads, settings)
    assert_all_exact(comparison)


@pytest.mark.parametrize("settings", [
    {"n_parallel": 9, "n_ctx": 4608},  # past 8 sequences: the state's rows leave one alignment
    {"n_parallel": 40, "n_ctx": 20480},
    {"n_parallel": 3, "n_ctx": 1536, "kv_unified": True, "flash_attn": "off"},
    {"n_parallel": 3, "n_ctx": 1536, "flash_attn": "off"},
], ids=["9-sequences", "40-sequences", "3-sequences-unified", "3-sequences"])
@pytest.mark.parametrize("stem", ["mamba", "rwkv7", "granitehybrid", "qwen3", "deepseek2-mla"])
def test_many_sequences_match_the_runtime(stem: str, settings: dict[str, Any]) -> None:
    """The recurrent state holds max(1, n_seq_max) rows (llama_memory_recurrent's mem_size) and
    a split cache one stream per sequence (n_stream, llama_kv_cache), which MLA without flash
    attention reads whole (the ggml_cont of V, a view of the K cache): both reach the graph."""
    comparison = comparison_for(fixture_path(f"zoo/{stem}.gguf"), settings)
    assert_all_exact(comparison)


@pytest.mark.parametrize("unified", [False, True], ids=["3-streams", "unified"])
def test_mla_without_flash_attention_copies_every_streams_values(unified: bool) -> None:
    """MLA's V is a view of the K cache; without flash attention build_attn_mha makes it
    contiguous (ggml_cont of the transposed view) across every stream: 3 streams of 16384
    cells, or one unified stream of 49152. Long enough that the copy no longer fits a hole."""
    settings = {"n_parallel": 3, "n_ctx": 3 * 16384, "n_ubatch": 32, "flash_attn": "off",
                "kv_unified": unified}
    comparison = comparison_for(fixture_path("zoo/deepseek2-mla.gguf"), settings)
    assert_all_exact(comparison)


@pytest.mark.parametrize("n_ubatch", [1, 4])
@pytest.mark.parametrize("stem", ["mamba", "mamba2", "granitehybrid", "nemotron_h",
                                  "nemotron_h_moe"])
def test_one_sequence_copies_no_other_state_rows(stem: str, n_ubatch: int) -> None:
    """With one sequence the recurrent memory has max(1, n_seq_max) = 1 row per layer, all of
    it the ubatch's: build_rs copies back zero extra rows. A small ubatch leaves no hole that an
    extra row's copy would fit in."""
    comparison = comparison_for(fixture_path(f"zoo/{stem}.gguf"),
                                {"n_ctx": 512, "n_ubatch": n_ubatch})
    assert_all_exact(comparison)
