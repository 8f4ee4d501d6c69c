"""The compute graph against llama.cpp over more shapes than the zoo's four configurations:
every zoo architecture at small and odd ubatches, small contexts without flash attention, three
sequences in one unified cache and a long context with a short ubatch. Each is a real load
(llama.cpp's answers kept between runs, tests/conftest.py), and the CPU compute buffer must
match llama.cpp's teardown line to its 0.0001 MiB.

Why so many: the graph model's rules (in-place reuse, which inputs exist, what each node's size
depends on) show in the allocator's peak only for some shapes; mutation testing
(benchmarks/mutation.py) found rules that the four configurations never exercised.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from gguf_inspect.commands.runtime import compare_runtime
from gguf_inspect.reports.runtime import RuntimeComparison
from tests.conftest import FIXTURES
from tests.test_runtime_compare import assert_all_exact

ZOO_MODELS = sorted((FIXTURES / "zoo").glob("*.gguf"))

SWEEP: dict[str, dict[str, Any]] = {
    "ubatch-1": {"n_ctx": 512, "n_ubatch": 1},
    "ubatch-7-ctx-300": {"n_ctx": 300, "n_ubatch": 7},
    "ctx-256-flash-off": {"n_ctx": 256, "flash_attn": "off"},
    "ubatch-64-ctx-4096-flash-off": {"n_ctx": 4096, "n_ubatch": 64, "flash_attn": "off"},
    "3-sequences-unified": {"n_ctx": 1536, "n_parallel": 3, "kv_unified": True},
    "3-sequences-unified-flash-off": {"n_ctx": 1536, "n_parallel": 3, "kv_unified": True,
                                      "flash_attn": "off"},
    "ubatch-32-2-sequences-no-swa-full": {"n_ctx": 1024, "n_batch": 32, "n_ubatch": 32,
                                          "n_parallel": 2, "swa_full": False},
    # an odd ubatch over three separate sequences: found by benchmarks/mutant_effects.py, the
    # one shape where nemotron_h's FFN-only layers and the residual order move the peak
    "ubatch-13-3-sequences": {"n_ctx": 768, "n_ubatch": 13, "n_parallel": 3},
}

# The sweep found one rule the zoo's configurations never showed: an encoder's attention spans
# the ubatch rounded up to a multiple of the sequences (three sequences: bert and nomic-bert were
# 0.0001-0.01 MiB under until llamacpp/memory.py rounded it as graph_reserve does).

needs_runtime = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                   reason="llama-cpp-python is not installed")


@lru_cache(maxsize=None)
def _comparison(model: Path, case: str) -> RuntimeComparison:
    return compare_runtime(str(model), SWEEP[case])


@needs_runtime
@pytest.mark.parametrize("case", list(SWEEP))
@pytest.mark.parametrize("model", ZOO_MODELS, ids=lambda path: path.stem)
def test_compute_buffer_matches_over_the_sweep(model: Path, case: str) -> None:
    assert_all_exact(_comparison(model, case))
