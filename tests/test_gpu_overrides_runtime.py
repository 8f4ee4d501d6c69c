"""``--override-tensor`` and ``--n-cpu-moe`` on real CPU loads through llama-cpp-python 0.3.36.

On a CPU-only build an override to CPU picks again from the CPU buffer list
(llama_model_loader::create_tensor: ``select_weight_buft(..., buft_list_cpu)``), so the buffers do
not change; what a CPU load does show is which tensors matched: one debug line per tensor,
"tensor NAME (N MiB TYPE) buffer type overridden to BUFT", and, with mmap, one warning. Those
lines are checked against the patterns (std::regex_search; Python's ``re.search`` here) and the
buffer each names against the placement the memory model predicts."""

from __future__ import annotations

import re

import pytest

from gguf_inspect.core.errors import UsageError
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.placement import place_tensors, placement_for
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.conftest import fixture_path

pytest.importorskip("llama_cpp")

from gguf_inspect.llamacpp.runtime import capture_load  # noqa: E402
from tests.test_runtime_compare import comparison_for, differing  # noqa: E402

UNTIED = fixture_path("tiny-llama-untied-q4_k_m.gguf")
OVERRIDDEN = re.compile(r"tensor (\S+) \(\d+ MiB \w+\) buffer type overridden to (\S+)")
PATTERNS = r"ffn_down=CPU,blk\.1\.attn_(q|k)=CPU"


def _overridden(settings: LlamaSettings) -> dict[str, str]:
    capture = capture_load(str(UNTIED), settings)
    return {match.group(1): match.group(2)
            for record in capture.records for match in [OVERRIDDEN.search(record.text)] if match}


def test_the_overridden_tensors_are_the_ones_the_patterns_match() -> None:
    settings = LlamaSettings(n_ctx=512, override_tensor=PATTERNS)
    seen = _overridden(settings)
    model = read_gguf(str(UNTIED))
    expected = {name for name in (t.name for t in model.tensors)
                if re.search("ffn_down", name) or re.search(r"blk\.1\.attn_(q|k)", name)}
    assert set(seen) == expected and len(expected) == 4
    hparams = read_hyperparameters(model)
    placed = {item.tensor.name: item.buffer for item in place_tensors(
        model, hparams, placement_for(hparams.n_layer, settings), settings)}
    # the same CPU-list choice: llama.cpp logs the buffer type (AMX, CPU_REPACK or CPU, by
    # this CPU's flags), the estimate names the buffer, which for CPU under mmap is CPU_Mapped
    buffer_type = {"CPU_Mapped": "CPU"}
    assert {name: buffer_type.get(placed[name], placed[name]) for name in seen} == seen


def test_a_cpu_override_changes_no_buffer_and_the_prediction_still_matches() -> None:
    comparison = comparison_for(UNTIED, {"n_ctx": 512, "override_tensor": PATTERNS})
    assert differing(comparison) == []


def test_n_cpu_moe_on_a_dense_model_overrides_nothing() -> None:
    """--n-cpu-moe's patterns name ffn_*_exps tensors: a dense model has none."""
    assert _overridden(LlamaSettings(n_ctx=512, n_cpu_moe=2)) == {}


def test_a_buffer_this_build_lacks_is_refused() -> None:
    """common/arg.cpp lists only the devices present: CUDA0 on a CPU-only build is unknown."""
    with pytest.raises(UsageError, match="unknown buffer type CUDA0"):
        capture_load(str(UNTIED), LlamaSettings(n_ctx=512, override_tensor="ffn_down=CUDA0"))


# ---- --tensor-split on a real load -------------------------------------------------------------

LAYER_DEVICE = re.compile(r"load_tensors: layer +(\d+) assigned to device (\S+),")


def test_tensor_split_reaches_the_model_params() -> None:
    """common/arg.cpp's layout: llama_max_devices() floats, the shares first, zeros after."""
    import llama_cpp

    from gguf_inspect.llamacpp.runtime import _model_params, _tensor_split

    split = _tensor_split(llama_cpp, LlamaSettings(tensor_split="3,1"))
    params = _model_params(llama_cpp, LlamaSettings(tensor_split="3,1"), None, split)
    max_devices = llama_cpp.llama_max_devices()
    assert [params.tensor_split[i] for i in range(max_devices)] == [3.0, 1.0] + [0.0] * (
        max_devices - 2)
    assert _tensor_split(llama_cpp, LlamaSettings()) is None  # not given: split by free memory


def test_tensor_split_on_a_cpu_build_changes_nothing() -> None:
    """Without a GPU device llama_model::load_tensors has no split points to compute: every
    layer and the output are "assigned to device CPU" and the buffers match the prediction,
    which (no GPU) ignores the shares too. What a CPU load can show is only that."""
    capture = capture_load(str(UNTIED), LlamaSettings(n_ctx=512, tensor_split="3,1"))
    devices = {int(match.group(1)): match.group(2) for record in capture.records
               for match in [LAYER_DEVICE.search(record.text)] if match}
    n_layer = read_hyperparameters(read_gguf(str(UNTIED))).n_layer
    assert devices == {layer: "CPU" for layer in range(n_layer + 1)}  # + the output layer
    assert differing(comparison_for(UNTIED, {"n_ctx": 512, "tensor_split": "3,1"})) == []


def test_as_many_shares_as_llama_max_devices_are_refused() -> None:
    """common/arg.cpp: "got N input configs, but system only has M devices" for N >= M."""
    import llama_cpp

    shares = ",".join(["1"] * llama_cpp.llama_max_devices())
    with pytest.raises(UsageError, match="input configs"):
        capture_load(str(UNTIED), LlamaSettings(n_ctx=512, tensor_split=shares))
