"""The memory model against llama.cpp on a large vocabulary, where the output buffer and the
logits dominate: the tiny fixtures (384 tokens) print a 0.00 MiB output buffer, which proves
nothing.

The model is written here, header-true and data-sparse (every key and tensor info of a
100,000-token llama; the weights are a hole in a sparse file, zeros to llama.cpp), with the
SentencePiece tokenizer of the committed fixtures, then loaded for real through llama-cpp-python.
Oracles: llama.cpp's own log and C API, and first principles for the output buffer
(``llama_context::output_reserve``: one float per vocabulary entry per output, n_seq_max outputs
at init) and for the logits that the compute buffer must hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gguf_inspect.reports.runtime import MATCH, RuntimeComparison
from gguf_inspect.commands.runtime import compare_runtime
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
N_VOCAB = 100_000  # not a power of two: the printed MiB are rounded, not exact
N_EMBD = 256
N_UBATCH = 512  # llama_context_default_params
MIB = 1 << 20
COMPUTE_TOLERANCE = 0.10  # as in test_runtime_compare: the compute buffer is an estimate

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "3-sequences": {"n_parallel": 3},
    "ctx-1000-flash-off": {"n_ctx": 1000, "flash_attn": "off"},  # padded to 1024
}


@pytest.fixture(scope="module")
def large_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block llama with 100,000 tokens, untied (token_embd and output both vocab-sized)."""
    bench = load_script("header_bench", ROOT / "benchmarks" / "header_bench.py")
    build = load_script("fixtures_build", ROOT / "fixtures" / "build.py")
    q8_0 = bench.Q.Q8_0
    shape = bench.Shape("large-vocab", "llama", N_VOCAB, N_EMBD, n_layer=2, n_ff=512, n_head=2,
                        n_head_kv=1, tokenizer="llama", n_merges=0, weight_type=q8_0,
                        embedding_type=q8_0, tied=False, value_type=q8_0, output_type=q8_0,
                        context_length=4096)
    path = tmp_path_factory.mktemp("large-vocab") / "large-vocab-q8_0.gguf"
    bench.write_sparse_model(shape, path, lambda writer: build.add_tokenizer(writer, N_VOCAB))
    return path


def _differing(comparison: RuntimeComparison) -> list[str]:
    return [f"{c.quantity}: predicted {c.predicted!r}, runtime {c.runtime!r} ({c.note})"
            for c in comparison.checks if c.exact and c.status != MATCH]


def _check(comparison: RuntimeComparison, quantity: str) -> Any:
    (check,) = [c for c in comparison.checks if c.quantity == quantity]
    return check


def test_the_model_is_sparse_on_disk(large_vocab_model: Path) -> None:
    stat = large_vocab_model.stat()
    two_vocab_matrices = 2 * N_VOCAB * N_EMBD // 32 * 34  # token_embd + output, Q8_0 blocks
    assert stat.st_size > two_vocab_matrices
    assert stat.st_blocks * 512 < stat.st_size // 4  # the weights are a hole


@pytest.mark.parametrize("settings", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
def test_large_vocabulary_matches_the_runtime(large_vocab_model: Path,
                                              settings: dict[str, Any]) -> None:
    comparison = compare_runtime(str(large_vocab_model), settings)
    assert not _differing(comparison), "\n".join(_differing(comparison))
    assert _check(comparison, "n_vocab").runtime == N_VOCAB

    # The output buffer: 4 bytes per logit, n_vocab logits per output, n_seq_max outputs.
    n_outputs = settings.get("n_parallel", 1)
    expected_mib = round(4 * N_VOCAB * n_outputs / MIB, 2)
    output = _check(comparison, "CPU output buffer")
    assert expected_mib >= 0.38  # visibly non-zero at the log's two decimals
    assert output.runtime == expected_mib and output.predicted == expected_mib

    # The compute buffer holds the worst-case logits (every ubatch token an output) at least.
    compute = _check(comparison, "CPU compute buffer")
    logits_mib = 4 * N_VOCAB * N_UBATCH / MIB
    assert compute.runtime >= logits_mib
    relative = abs(compute.predicted - compute.runtime) / compute.runtime
    assert relative <= COMPUTE_TOLERANCE, (
        f"predicted {compute.predicted} MiB, llama.cpp reserved {compute.runtime} MiB")
