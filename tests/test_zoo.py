"""The architecture zoo against llama.cpp itself: every tiny model in fixtures/zoo/ (one per
architecture people deploy), loaded for real at the four configurations of issue 13, must show
``match`` on every exact quantity: model facts, context, model buffers, KV caches (MLA without
a V cache, NextN/MTP blocks skipped, none for encoders), recurrent state (RS buffers) and the
output buffer. The compute buffer is an estimate, held to 1% of llama.cpp's for every
architecture whose graph is modelled node by node, and to the measured error of the rest.

The oracle is llama.cpp's own load log and C API through llama-cpp-python; the zoo itself is
rebuilt by fixtures/zoo.py and must come out byte-identical.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from gguf_inspect.commands.runtime import compare_runtime
from gguf_inspect.reports.runtime import MATCH, RuntimeComparison
from tests.conftest import FIXTURES, load_script
from tests.test_runtime_compare import assert_all_exact

ZOO = FIXTURES / "zoo"
ZOO_MODELS = sorted(ZOO.glob("*.gguf"))

# Issue 13's configurations (LlamaSettings fields, as the CLI flags set them).
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ctx-1000-parallel-2-flash-off": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "off"},
    "ctx-1000-parallel-2-flash-on": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "on"},
    "parallel-8-no-swa-full": {"n_parallel": 8, "swa_full": False},
}

needs_runtime = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                   reason="llama-cpp-python is not installed")


@lru_cache(maxsize=None)
def _comparison(model: Path, configuration: str) -> RuntimeComparison:
    return compare_runtime(str(model), CONFIGURATIONS[configuration])


def _differing(comparison: RuntimeComparison) -> list[str]:
    return [f"{c.quantity}: predicted {c.predicted!r}, runtime {c.runtime!r} ({c.note})"
            for c in comparison.checks if c.exact and c.status != MATCH]


def test_the_zoo_covers_the_issue_architectures() -> None:
    stems = {path.stem for path in ZOO_MODELS}
    for stem in ("qwen2", "qwen3", "qwen3moe", "phi3", "gpt-oss", "deepseek2-mla", "glm4moe",
                 "glm4moe-mtp", "gemma2", "gemma3", "llama4", "mistral3", "granite",
                 "granitemoe", "olmo2", "olmo2-swa", "cohere2", "starcoder2", "gptneox",
                 "falcon", "bert", "nomic-bert", "mamba", "mamba2", "lfm2", "granitehybrid",
                 "nemotron_h", "nemotron_h_moe", "rwkv7", "qwen3next", "gemma3n"):
        assert stem in stems, f"fixtures/zoo/{stem}.gguf missing: run python fixtures/zoo.py"


def test_every_zoo_file_is_small() -> None:
    for path in ZOO_MODELS:
        assert path.stat().st_size < 600_000, path


def test_zoo_rebuilds_byte_identical(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(FIXTURES / "zoo.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for path in ZOO_MODELS:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


@needs_runtime
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
@pytest.mark.parametrize("model", ZOO_MODELS, ids=lambda path: path.stem)
def test_every_exact_quantity_matches_llama_cpp(model: Path, configuration: str) -> None:
    comparison = _comparison(model, configuration)
    assert not _differing(comparison), "\n".join(_differing(comparison))
    # exact bytes where the C API has them (llama_model_size); the buffers exist only as
    # "%8.2f MiB" log lines and are compared at that precision
    size = {c.quantity: c for c in comparison.checks}["tensor bytes (llama_model_size)"]
    assert size.unit == "B" and size.predicted == size.runtime > 0
    assert not any("CANNOT TELL" in note or "not modelled, KV cache" in note
                   for note in comparison.notes)


# The compute estimate's error bound per zoo model, over the four configurations. 1% where the
# graph is modelled node by node (compute_graph, graph_ffn, graph_layout, graph_arch); the
# rest reuse the llama graph and are bounded by the error measured with
# benchmarks/zoo_compute.py (README).
NODE_BY_NODE = ("qwen2", "qwen3", "qwen3moe", "phi3", "gpt-oss", "glm4moe", "glm4moe-mtp",
                "gemma2", "gemma3", "mistral3", "granite", "granitemoe", "starcoder2",
                "gptneox", "falcon", "lfm2", "olmo2", "olmo2-swa", "cohere2", "llama4",
                "bert", "nomic-bert", "deepseek2-mla", "mamba", "mamba2", "granitehybrid",
                "nemotron_h", "nemotron_h_moe", "rwkv7", "qwen3next", "gemma3n")
ROUGH_TOLERANCE: dict[str, float] = {}


def test_every_zoo_model_has_a_compute_tolerance() -> None:
    assert {p.stem for p in ZOO_MODELS} == set(NODE_BY_NODE) | set(ROUGH_TOLERANCE)


@needs_runtime
@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
@pytest.mark.parametrize("model", ZOO_MODELS, ids=lambda path: path.stem)
def test_compute_estimate_within_its_tolerance(model: Path, configuration: str) -> None:
    (compute,) = [c for c in _comparison(model, configuration).checks
                  if c.quantity.endswith("compute buffer")]
    if model.stem in NODE_BY_NODE:  # exact: to the 0.0001 MiB of llama.cpp's teardown line
        assert abs(compute.predicted - compute.runtime) < 0.00006, (
            f"{model.stem} {configuration}: predicted {compute.predicted:.4f} MiB, llama.cpp "
            f"{compute.runtime:.4f} MiB ({compute.note})")
        return
    tolerance = ROUGH_TOLERANCE[model.stem]
    relative = abs(compute.predicted - compute.runtime) / compute.runtime
    assert relative <= tolerance, (
        f"{model.stem} {configuration}: predicted {compute.predicted:.4f} MiB, llama.cpp "
        f"{compute.runtime:.4f} MiB ({compute.note}); tolerance {tolerance:.0%}")


@needs_runtime
@pytest.mark.parametrize("model", ZOO_MODELS, ids=lambda path: path.stem)
def test_the_comparison_sees_every_memory_kind(model: Path) -> None:
    """The log's buffers are all compared: a model, an output and a compute row, and the KV
    cache or RS buffer rows the architecture has (none for encoders)."""
    quantities = {check.quantity for check in _comparison(model, "defaults").checks}
    assert any(q.endswith("model buffer") for q in quantities)
    assert any(q.endswith("output buffer") for q in quantities)
    assert any(q.endswith("compute buffer") for q in quantities)
    recurrent = model.stem in ("mamba", "mamba2", "lfm2", "granitehybrid", "nemotron_h",
                               "nemotron_h_moe", "rwkv7", "qwen3next")
    attention = model.stem not in ("mamba", "mamba2", "bert", "nomic-bert", "rwkv7")
    assert any(q.endswith("RS buffer") for q in quantities) == recurrent
    assert any("KV cache" in q for q in quantities) == attention


# ---- encoders: no output head (src/models/bert.cpp creates none) ------------------------------

@pytest.mark.parametrize("stem", ["bert", "nomic-bert"])
def test_encoders_have_no_tied_head(stem: str) -> None:
    """``--embeddings`` does not call an encoder's embedding tied, places no GPU copy of it, and
    ``vram`` puts none of token_embd on a GPU even with every layer offloaded."""
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.memory import predict_memory
    from gguf_inspect.llamacpp.settings import LlamaSettings
    from gguf_inspect.reports.embeddings import analyze_embeddings

    gguf = read_gguf(str(ZOO / f"{stem}.gguf"))
    report = analyze_embeddings(gguf)
    assert not report.tied_output and not report.has_output_head
    assert report.placement.tied_gpu_copy_bytes is None
    settings = LlamaSettings(n_gpu_layers=-1, gpu_capacities=(1 << 34,))
    gpu_model = sum(b.n_bytes for b in predict_memory(gguf, settings).buffers
                    if b.kind == "model" and b.device != "host")
    embedding = gguf.tensor("token_embd.weight")
    layers = sum(t.n_bytes for t in gguf.tensors if t.name.startswith("blk."))
    assert gpu_model < layers + embedding.n_bytes  # the blocks only, no copy of token_embd


def test_llama_has_a_tied_head() -> None:
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.reports.embeddings import analyze_embeddings

    report = analyze_embeddings(read_gguf(str(FIXTURES / "tiny-llama-tied-q8_0.gguf")))
    assert report.tied_output and report.has_output_head


def test_vram_counts_the_recurrent_state_on_the_gpu() -> None:
    """With every layer offloaded a hybrid's RS buffers land on the GPU and count in its total."""
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.memory import predict_memory
    from gguf_inspect.llamacpp.settings import LlamaSettings
    from gguf_inspect.reports.vram import device_usage
    from gguf_inspect.llamacpp.devices import GPU

    gguf = read_gguf(str(ZOO / "granitehybrid.gguf"))
    settings = LlamaSettings(n_gpu_layers=-1, gpu_capacities=(1 << 34,), n_parallel=4)
    prediction = predict_memory(gguf, settings)
    state = [b for b in prediction.buffers if b.kind == "recurrent"]
    # two Mamba2 layers, 4 cells, f32: r = (d_conv-1) * (d_inner + 2*n_group*d_state) and
    # s = d_state * d_inner floats per cell (llama_hparams::n_embd_r / n_embd_s)
    r_row, s_row = 3 * (128 + 2 * 16), 16 * 128
    assert [(b.buffer, b.n_bytes) for b in state] == [("CUDA0", 2 * 4 * 4 * (r_row + s_row))]
    gpu = device_usage(prediction, (GPU("test", 1 << 34),))[1]
    assert gpu.kv_bytes == prediction.device_total("gpu0", "kv") + state[0].n_bytes


# ---- graph layouts read from the header (models/<arch>.cpp) -----------------------------------

def _layout(stem: str):
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.graph_layout import graph_layout
    from gguf_inspect.llamacpp.hparams import read_hyperparameters

    gguf = read_gguf(str(ZOO / f"{stem}.gguf"))
    return graph_layout(gguf, read_hyperparameters(gguf))


def test_deepseek2_mla_widths_come_from_the_header() -> None:
    """The zoo file's keys: q_lora_rank 48, kv_lora_rank 32, rope.dimension_count 16,
    key_length_mla 32, value_length_mla 16; one leading dense block, then MoE."""
    from gguf_inspect.llamacpp.graph_mla import MlaShape

    layout = _layout("deepseek2-mla")
    assert layout.mla == MlaShape(n_lora_q=48, n_lora_kv=32, n_rot=16, head_k=32, head_v=16)
    assert layout.moe == (False, True)


def test_llama4_and_cohere2_rope_layers() -> None:
    """llama4: every 4th layer without rope (n_no_rope_layer_step 4), MoE every 2nd
    (interleave_moe_layer_step 2); cohere2: rope on the sliding-window layers only (3 of 4)."""
    llama4 = _layout("llama4")
    assert llama4.rope_layers == (True, True, True, False)
    assert llama4.moe == (False, True, False, True)
    assert llama4.moe_layout is not None and llama4.moe_layout.weight_before_ffn
    assert _layout("cohere2").rope_layers == (True, True, True, False)


def test_encoders_have_no_cache_and_no_head_in_the_graph() -> None:
    """models/bert.cpp: the graph's last node is the last layer's LayerNorm (t_embd), no
    result_output; no SET_ROWS (no cache)."""
    import gguf_inspect.llamacpp.memory as memory
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.compute_graph import build_graph
    from gguf_inspect.llamacpp.settings import LlamaSettings

    shapes = []
    original = memory.estimate_compute_bytes
    memory.estimate_compute_bytes = lambda shape, alignment: shapes.append(shape) or 0
    try:
        memory.predict_memory(read_gguf(str(ZOO / "bert.gguf")), LlamaSettings())
    finally:
        memory.estimate_compute_bytes = original
    nodes, _ = build_graph(shapes[0])
    assert not any(node.op == "SET_ROWS" for node in nodes)
    assert nodes[-1].is_output and nodes[-1].op == "ADD"  # the LayerNorm's bias
    assert not any(node.name == "result_output" for node in nodes)


# ---- quantized caches: the architectures with graph modules of their own ----------------------

@needs_runtime
@pytest.mark.parametrize(("stem", "cache"), [
    ("gemma3n-e2b", "q8_0"), ("gemma3n-e2b", "q4_0"), ("qwen3next-80b-a3b", "q8_0"),
    ("qwen3next-80b-a3b", "q4_0"), ("gemma3n-e2b-22", "q8_0")])
def test_own_graphs_follow_a_quantized_cache(stem: str, cache: str, tmp_path: Path) -> None:
    """A quantized K/V cache adds Hadamard rotations around build_attn (llama_mul_mat_hadamard);
    graph_gemma3n and graph_qwen3next have them. Checked on real-width twins
    (benchmarks/real_width_probe.py): the zoo's 16-wide heads cannot be stored in 32-value
    blocks, which llama.cpp refuses. ``gemma3n-e2b-22`` has 22 blocks: the last two hold no
    KV of their own (n_layer_kv_from_start 20) and attend over the caches of earlier ones."""
    real_width_probe = load_script("real_width_probe",
                                   FIXTURES.parent / "benchmarks" / "real_width_probe.py")
    if stem == "gemma3n-e2b-22":
        twin = real_width_probe.gemma3n_e2b(n_layer=22)
    else:
        twin = real_width_probe.TWINS[stem]()
    if stem.startswith("qwen3next"):  # 16 experts of the 512: the same graph, less to map
        twin.keys["expert_count"] = 16
        twin.tensors = {name: ne[:-1] + (16,) if "_exps" in name or "gate_inp.weight" in name
                        else ne for name, ne in twin.tensors.items()}
    path = tmp_path / f"{stem}.gguf"
    real_width_probe.write_twin(twin, path)
    comparison = compare_runtime(str(path), {"cache_type_k": cache, "cache_type_v": "q8_0",
                                             "flash_attn": "on"})
    # exact at the log's 0.0001 MiB (the llama graph's rotations miss these by 0.8-1.4%)
    assert_all_exact(comparison, tolerance=0.00015)


@needs_runtime
@pytest.mark.parametrize("path", [ZOO / "gemma3n.gguf", FIXTURES / "tiny-llama-tied-f16.gguf"],
                         ids=lambda path: path.stem)
def test_a_tied_head_in_the_embeddings_buffer_type(path: Path) -> None:
    """Without mmap and without extra buffer types (--no-repack: no AMX, no CPU_REPACK, which
    would take the head's matmul weight on a CPU that has them), the tied head and tok_embd
    land in one buffer type (CPU).
    llama's create_tensor finds tok_embd there and reuses it (one copy); gemma3n creates the
    head first (models/gemma3n.cpp:28-34), so tok_embd is a second tensor: two copies. Each
    token_embd is over the log's 0.005 MiB rounding, so llama.cpp's CPU model buffer tells the
    two apart."""
    from gguf_inspect.gguf.open import read_gguf

    assert read_gguf(str(path)).tensor("token_embd.weight").n_bytes > 0.01 * (1 << 20)
    comparison = compare_runtime(str(path), {"use_mmap": False, "cpu_repack": False})
    assert not _differing(comparison), "\n".join(_differing(comparison))
    assert "CPU model buffer" in {check.quantity for check in comparison.checks}


@needs_runtime
@pytest.mark.parametrize("stem, fields, expected", [
    # gemma3n's heads are 16 wide: a q8_0 K cache (blocks of 32) needs flash attention off
    ("gemma3n", {"cache_type_k": "q8_0"}, "K cache type q8_0 with block size 32 does not "
                                          "divide n_embd_head_k=16"),
    ("deepseek2-mla", {"cache_type_k": "q8_0", "flash_attn": "on"},
     "model does not support different K (q8_0) and V (f16) cache types"),
    # the same types: K's heads (kv_lora_rank + rope, 48) take no block of 32, V's (32) do
    ("deepseek2-mla", {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attn": "on"},
     "K cache type q8_0 with block size 32 does not divide n_embd_head_k=48"),
])
def test_llama_cpp_refuses_the_contexts_we_refuse(stem: str, fields: dict[str, Any],
                                                  expected: str) -> None:
    """The refusals of llama_init_from_model that depend on the model, from a real load: the
    runtime refuses with its own words, and the prediction's notes name the same rule (read
    from the model's head sizes and MLA flag); with flash attention off (gemma3n) llama.cpp
    makes the context and so do we."""
    from gguf_inspect.core.errors import RuntimeUnavailableError
    from gguf_inspect.gguf.open import read_gguf
    from gguf_inspect.llamacpp.memory import predict_memory
    from gguf_inspect.llamacpp.settings import LlamaSettings

    def refusals(settings: dict[str, Any]) -> list[str]:
        notes = predict_memory(read_gguf(str(ZOO / f"{stem}.gguf")),
                               LlamaSettings(**settings)).notes
        return [note for note in notes if note.endswith("llama.cpp refuses this context")]

    with pytest.raises(RuntimeUnavailableError, match=re.escape(expected)):
        compare_runtime(str(ZOO / f"{stem}.gguf"), fields)
    (refusal,) = refusals(fields)
    assert ("MLA" in refusal) == ("different" in expected)
    if stem == "gemma3n":
        off = {**fields, "flash_attn": "off"}
        assert refusals(off) == []
        assert not _differing(compare_runtime(str(ZOO / f"{stem}.gguf"), off))
