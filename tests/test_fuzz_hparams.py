"""The hyperparameter and rendering fuzz (``benchmarks/fuzz.py --hparams``): a short seeded run
in CI, and the cases it found, each replayed as a test.

Found by the fuzz: a per-layer array of float32 (a NaN among them) reached ``int()`` in the
memory model (a ValueError traceback in vram and scan); llama.cpp's
``llama_model_loader::get_arr`` (src/llama-model-loader.cpp) throws "has wrong array element
type" for anything but bool/uint32/int32 items, and so does gguf-inspect now. An empty per-layer
array crashed the summary's renderer (``min()`` of nothing).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from gguf_inspect.commands.inspect import run_inspect
from gguf_inspect.commands.scan import run_scan
from gguf_inspect.commands.vram import VramOptions, run_vram
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import FormatError

import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
HARNESS = load_script("fuzz_hparams", ROOT / "benchmarks" / "fuzz_hparams.py")
SEEDS = {seed.path.name: seed for seed in HARNESS.load_header_seeds()}


def _write(tmp_path: Path, seed_name: str, key: str, encoded: bytes) -> str:
    seed = SEEDS[seed_name]
    path = tmp_path / "case.gguf"
    path.write_bytes(HARNESS.with_entries(seed, {f"{seed.architecture}.{key}": encoded}))
    return str(path)


def test_a_short_hparams_run_has_no_findings() -> None:
    tally = HARNESS.hparam_range(seed=3, first=0, count=25)
    assert tally.cases == 25 and tally.commands == 250
    assert not tally.findings, tally.findings
    assert tally.max_peak[0] < HARNESS.MEMORY_LIMIT


def test_the_case_builder_replays_from_seed_and_index() -> None:
    seeds = list(SEEDS.values())
    first = HARNESS.build_case(seeds[0], random.Random("hparams:1:5"))
    assert first == HARNESS.build_case(seeds[0], random.Random("hparams:1:5"))


@pytest.mark.parametrize("item_type, values", [(HARNESS.F32, [float("nan"), 2.5]),
                                               (HARNESS.U64, [128, 128])])
def test_a_per_layer_array_of_another_type_is_refused(tmp_path: Path, item_type: int,
                                                      values: list) -> None:
    key = "feed_forward_length"
    path = _write(tmp_path, "starcoder2.gguf", key,
                  HARNESS.entry(f"starcoder2.{key}", HARNESS.ARRAY, values, item_type))
    with pytest.raises(FormatError, match="wrong array element type"):
        run_vram(path, "table", VramOptions())
    text, code = run_scan([path], "json")
    [failure] = json.loads(text)["failures"]
    assert code == ExitCode.INVALID and "wrong array element type" in failure["error"]


def test_an_empty_per_layer_array_renders(tmp_path: Path) -> None:
    key = "attention.head_count_kv"
    path = _write(tmp_path, "tiny-llama-tied-q8_0.gguf", key,
                  HARNESS.entry(f"llama.{key}", HARNESS.ARRAY, [], HARNESS.U32))
    for output_format in ("table", "markdown"):
        text, code = run_inspect(path, output_format)
        assert code == ExitCode.OK and "empty per-layer array" in text
