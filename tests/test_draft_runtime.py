"""``runtime --model-draft``: the draft loaded for real through llama-cpp-python as a second model
with its own context at the target's context length (common_speculative_init_from_params,
llama-server), and compared buffer by buffer as the main model is.

Expected figures: the draft's KV cache from first principles (its header read with gguf-py:
layers x cells x n_embd_k_gqa x 2 bytes for f16, K and V), and llama.cpp's own log."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.errors import UsageError
from gguf_inspect.commands.runtime import compare_runtime
from tests.conftest import fixture_path

pytest.importorskip("llama_cpp")

MODEL = str(fixture_path("tiny-llama-untied-f16.gguf"))
DRAFT = str(fixture_path("tiny-llama-planted-q8_0.gguf"))
SAVED_LOG = str(Path(__file__).parent / "data" / "runtime-current-untied-q4_k_m.log")
MIB = 1 << 20


def _draft_kv_bytes(n_ctx: int) -> int:
    """K and V, f16, every layer: n_layer x n_ctx x (head_dim x n_head_kv) x 2 bytes, twice."""
    fields = gguf.GGUFReader(DRAFT).fields

    def value(key: str) -> int:
        field = fields[key]
        return int(field.parts[field.data[0]][0])

    n_layer, n_embd = value("llama.block_count"), value("llama.embedding_length")
    n_head = value("llama.attention.head_count")
    n_head_kv = value("llama.attention.head_count_kv")
    return 2 * n_layer * n_ctx * (n_embd // n_head * n_head_kv) * 2


def _draft(comparison):  # type: ignore[no-untyped-def]
    return {check.quantity.removeprefix("draft "): check for check in comparison.checks
            if check.quantity.startswith("draft ")}


def test_the_draft_loads_as_a_second_model_and_every_exact_figure_matches() -> None:
    comparison = compare_runtime(MODEL, {"n_ctx": 1024}, model_draft=DRAFT)
    draft = _draft(comparison)
    assert comparison.all_match
    assert draft["n_ctx"].runtime == 1024  # the target's context
    assert draft["KV cache size"].runtime == round(_draft_kv_bytes(1024) / MIB, 2)
    kinds = {name for name in draft if name.endswith(("model buffer", "KV cache CPU buffer",
                                                      "compute buffer"))}
    assert {"CPU_Mapped model buffer", "KV cache CPU buffer", "CPU compute buffer"} <= kinds
    compute = draft["CPU compute buffer"]
    assert compute.status == "estimate" and compute.runtime is not None
    assert abs(compute.predicted - compute.runtime) <= 0.01 * compute.runtime
    # the main model's checks are all still there, unprefixed
    assert "KV cache size" in {check.quantity for check in comparison.checks}


def test_the_draft_follows_the_targets_context_not_its_own_default() -> None:
    """n_ctx 0 asks for the target's trained length; the draft gets that resolved length."""
    comparison = compare_runtime(MODEL, {"n_ctx": 0}, model_draft=DRAFT)
    target_n_ctx = next(c.runtime for c in comparison.checks if c.quantity == "n_ctx")
    assert _draft(comparison)["n_ctx"].runtime == target_n_ctx
    assert comparison.all_match


def test_the_cli_takes_md_and_ngld() -> None:
    result = CliRunner().invoke(app, ["runtime", MODEL, "-c", "512", "-md", DRAFT, "-ngld", "0",
                                      "--json"])
    assert result.exit_code == 0, result.output
    quantities = {check["quantity"] for check in json.loads(result.output)["checks"]}
    assert "draft KV cache CPU buffer" in quantities


def test_a_saved_log_cannot_stand_for_the_draft() -> None:
    with pytest.raises(UsageError, match="live load"):
        compare_runtime(MODEL, {}, from_log=SAVED_LOG, model_draft=DRAFT)
