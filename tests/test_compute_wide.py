"""The compute graph against llama.cpp on the zoo at three other widths: n_embd 256 (head 64),
n_embd 512 (head 128) and an FFN 1024 wide at n_embd 64. Each is a real load whose CPU compute
buffer must match llama.cpp's teardown line to its 0.0001 MiB.

Why: at the zoo's own widths (n_embd 64, FFN 128) the peak of most graphs falls at the
384-token output head, so a node inside the blocks (an in-place ROPE or norm, a bias, the
order of a residual add) can be modelled wrongly without any compared figure moving. Mutation
testing showed it: benchmarks/mutant_effects.py found these widths put the peak inside the
attention and FFN blocks, where 19 of compute_graph.py's surviving mutants then fail.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import pytest

from gguf_inspect.commands.runtime import compare_runtime
from gguf_inspect.reports.runtime import RuntimeComparison
from tests.conftest import FIXTURES, WIDTHS
from tests.test_compute_sweep import SWEEP
from tests.test_runtime_compare import assert_all_exact
from tests.test_zoo import CONFIGURATIONS

SHAPES = {name: {**CONFIGURATIONS, **SWEEP}[name] for name in (
    "defaults", "ctx-1000-parallel-2-flash-off", "ctx-256-flash-off", "ubatch-7-ctx-300",
    "ubatch-13-3-sequences")}
STEMS = sorted(path.stem for path in (FIXTURES / "zoo").glob("*.gguf"))
# quantized caches, which the zoo's 16-wide heads cannot hold (a 32-value block must divide the
# head): the Hadamard rotations around attention (K by 64 at head 64, by 128 at head 128; V by
# 64), none for the encoders, which have no cache. deepseek2-mla's latent head (48) stays
# narrow: llama.cpp refuses it ("K cache type q8_0 with block size 32 does not divide 48").
QUANTIZED_SHAPES = {
    "q8-cache": {"n_ctx": 512, "cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attn": "on"},
    "q4-k-q8-v-ubatch-7": {"n_ctx": 300, "n_ubatch": 7, "cache_type_k": "q4_0",
                           "cache_type_v": "q8_0", "flash_attn": "on"},
    "q8-k-flash-off": {"n_ctx": 256, "cache_type_k": "q8_0", "flash_attn": "off"},
}

needs_runtime = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                   reason="llama-cpp-python is not installed")


@lru_cache(maxsize=None)
def _comparison(path: Path, shape: str) -> RuntimeComparison:
    return compare_runtime(str(path), {**SHAPES, **QUANTIZED_SHAPES}[shape])


def test_the_widths_are_what_they_say(wide_zoo: Path) -> None:
    """The widened files hold the widths asked for (read back by gguf-py, not by us)."""
    import gguf

    for width, (n_embd, head_size, n_ff) in WIDTHS.items():
        reader = gguf.GGUFReader(wide_zoo / width / "qwen3.gguf")
        ne = {tensor.name: list(tensor.shape) for tensor in reader.tensors}  # ggml's ne order
        assert ne["blk.0.attn_q.weight"] == [n_embd, 4 * head_size]
        assert ne["blk.0.ffn_up.weight"] == [n_embd, n_ff]


@needs_runtime
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("width", list(WIDTHS))
def test_compute_buffer_matches_at_other_widths(wide_zoo: Path, width: str, stem: str,
                                                shape: str) -> None:
    assert_all_exact(_comparison(wide_zoo / width / f"{stem}.gguf", shape))


@needs_runtime
@pytest.mark.parametrize("shape", list(QUANTIZED_SHAPES))
@pytest.mark.parametrize("stem", [stem for stem in STEMS if stem != "deepseek2-mla"])
@pytest.mark.parametrize("width", ["e256", "e512"])
def test_quantized_caches_at_other_widths(wide_zoo: Path, width: str, stem: str,
                                          shape: str) -> None:
    assert_all_exact(_comparison(wide_zoo / width / f"{stem}.gguf", shape))
