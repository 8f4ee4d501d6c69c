"""``gguf-inspect vram``: size and GPU parsing, the audit's searches, and the command end to end
(table, markdown, JSON contract of issue 4, exit codes 0 fits / 1 does not / 2 usage)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gguf_inspect.llamacpp.devices import GPU, KNOWN_GPUS_MIB, parse_gpus, parse_size
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.reports.vram import audit
from gguf_inspect.cli import app
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.source import LocalFileSource
from tests.conftest import fixture_path, write_gguf

GIB = 1 << 30
MIB = 1 << 20
UNTIED = str(fixture_path("tiny-llama-untied-q4_k_m.gguf"))
GEMMA = str(fixture_path("tiny-gemma3-swa-q4_k_m.gguf"))
runner = CliRunner()


def vram(*args: str):
    return runner.invoke(app, ["vram", *args])


def load(path: str):
    source = LocalFileSource(path)
    try:
        return read_gguf_source(source)
    finally:
        source.close()


# ---- parsing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("24GiB", 24 * GIB), ("24GB", 24 * 10**9), ("8000MiB", 8000 * MIB), ("1.5GiB", 3 * GIB // 2),
    ("512 MiB", 512 * MIB), ("1TiB", 1 << 40), ("4096", 4096),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "24XB", "-1GiB", "24 GiB extra"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_gpus_names_sizes_and_counts() -> None:
    # Named cards carry nvidia-smi's memory.total (pasted in public issue threads), not the
    # nameplate: an RTX 4090 shows 24564MiB, an A100 80GB 81920MiB, an RTX 3090 24576MiB.
    assert parse_gpus("rtx4090") == (GPU("rtx4090", 24564 * MIB),)
    assert parse_gpus("A100-80G") == (GPU("a100-80g", 81920 * MIB),)
    assert parse_gpus("rtx3090,12GiB") == (GPU("rtx3090", 24576 * MIB), GPU("12GiB", 12 * GIB))
    assert parse_gpus("2xl4") == (GPU("l4", 23034 * MIB),) * 2
    assert parse_gpus("2x8GiB") == (GPU("8GiB", 8 * GIB),) * 2
    assert {"rtx3090", "rtx4090", "a100-40g", "a100-80g", "h100-80g", "l4", "t4"} <= set(
        KNOWN_GPUS_MIB)
    with pytest.raises(ValueError, match="unknown GPU"):
        parse_gpus("voodoo2")
    with pytest.raises(ValueError):
        parse_gpus("rtx4090,,t4")


def test_no_named_card_claims_more_than_its_nameplate() -> None:
    # The driver reserves memory: memory.total is at most the marketed size in GiB.
    nameplate_gib = {"t4": 16, "l4": 24, "h100-80g": 80, "h200": 141, "rtx5090": 32}
    for name, gib in nameplate_gib.items():
        assert KNOWN_GPUS_MIB[name] * MIB <= gib * GIB


# ---- the searches -------------------------------------------------------------------------------

def gpu_bytes(model, config: LlamaSettings) -> int:
    """The oracle of the searches: every buffer the prediction puts on gpu0, summed here (not
    with the audit's own fits_gpus)."""
    return sum(b.n_bytes for b in predict_memory(model, config).buffers if b.device == "gpu0")


def test_a_model_that_exactly_fills_the_card_fits() -> None:
    model = load(UNTIED)
    total = gpu_bytes(model, LlamaSettings(n_gpu_layers=-1, gpu_capacities=(GIB,)))
    config = LlamaSettings(n_gpu_layers=-1)
    assert audit(model, config, (GPU("exact", total),)).fits is True
    assert audit(model, config, (GPU("one byte short", total - 1),)).fits is False
    assert audit(model, config, (GPU("with headroom", total + 10),), headroom=10).fits is True
    assert audit(model, config, (GPU("with headroom", total + 10),), headroom=11).fits is False


def test_max_gpu_layers_is_the_edge_of_fitting() -> None:
    """The reported --ngl fits and no larger count does (checked with the memory model).

    The card is 10 MiB, not 6: with llama.cpp's default ``op_offload`` the host layers' matmuls
    run on the GPU even at --ngl 0 (ggml_backend_sched_backend_id_from_cur, "1.off"), so this
    model's GPU compute buffer alone is over 6 MiB at every --ngl and nothing would fit. For the
    same reason fitting is not monotone in --ngl, so every larger count is checked, not only
    the next one."""
    model = load(UNTIED)
    gpus = (GPU("small", 10 * MIB),)
    report = audit(model, LlamaSettings(n_gpu_layers=-1), gpus)
    assert report.fits is False
    best = report.max_gpu_layers
    assert best is not None and 0 <= best < 3

    def fits(ngl: int) -> bool:
        config = LlamaSettings(n_gpu_layers=ngl, gpu_capacities=(10 * MIB,))
        return gpu_bytes(model, config) <= 10 * MIB

    assert fits(best) and not any(fits(ngl) for ngl in range(best + 1, 4))


def test_max_context_is_the_edge_of_fitting() -> None:
    model = load(UNTIED)
    gpus = (GPU("small", 6 * MIB),)
    report = audit(model, LlamaSettings(n_ctx=4096, n_gpu_layers=-1), gpus)
    assert report.max_ctx is not None and report.max_ctx % 256 == 0

    def fits(n_ctx: int) -> bool:
        config = LlamaSettings(n_ctx=n_ctx, n_gpu_layers=-1, gpu_capacities=(6 * MIB,))
        return gpu_bytes(model, config) <= 6 * MIB

    assert report.max_ctx < 2048  # below the trained maximum: the edge itself is tested
    assert fits(report.max_ctx) and not fits(report.max_ctx + 256)


def _synthetic(**keywords):
    from tests.test_memory import synthetic

    return synthetic(**keywords)


def test_a_trained_maximum_off_the_256_grid_is_tested_itself() -> None:
    """n_ctx_train 2000 is padded to 2048 by llama.cpp: when 2000 does not fit, the answer is
    the multiple of 256 below it that does, never 2000 unchecked."""
    model = _synthetic(n_layer=4, n_embd=512, extra={"llama.context_length": 2000})

    def total(n_ctx: int) -> int:
        prediction = predict_memory(model, LlamaSettings(n_ctx=n_ctx, n_gpu_layers=-1,
                                                        gpu_capacities=(1 << 40,)))
        return prediction.device_total("gpu0")

    capacity = (total(1792) + total(2000)) // 2  # 1792 fits, 2000 (as 2048) does not
    gpus = (GPU("between", capacity),)
    report = audit(model, LlamaSettings(n_ctx=2000), gpus)
    assert report.max_ctx == 1792
    roomy = audit(model, LlamaSettings(n_ctx=2000), (GPU("roomy", 1 << 40),))
    assert roomy.max_ctx == 2000


def test_plan_rows_below_a_long_trained_maximum_are_each_an_edge() -> None:
    """Each row's --ngl fits and no larger count does. The card is 170 MiB, not 24: with
    llama.cpp's default ``op_offload`` the GPU runs the host layers' large-batch matmuls and the
    attention that follows them (ggml_backend_sched's "1.off", then pass 2's expansion), so
    even --ngl 0 needs a GPU compute buffer that grows with the context (32 MiB at 4096 here);
    at 24 MiB no row would fit anything. Fitting is not monotone in --ngl (--ngl 0 and 1 need
    the same), so every larger count is checked, not only the next one."""
    model = _synthetic(n_layer=8, n_embd=512, extra={"llama.context_length": 40000})
    capacity = 170 * MIB
    gpus = (GPU("small", capacity),)
    report = audit(model, LlamaSettings(), gpus, plan=True)
    assert [row.n_ctx for row in report.plan] == [4096, 8192, 16384, 32768, 40000]

    def fits(n_ctx: int, ngl: int) -> bool:
        config = LlamaSettings(n_ctx=n_ctx, n_gpu_layers=ngl, gpu_capacities=(capacity,))
        return gpu_bytes(model, config) <= capacity

    for row in report.plan:
        assert row.max_gpu_layers is not None and fits(row.n_ctx, row.max_gpu_layers)
        assert not any(fits(row.n_ctx, ngl) for ngl in range(row.max_gpu_layers + 1, 10))
    assert len({row.max_gpu_layers for row in report.plan}) > 1  # the grid really varies


def _recurrent_model(path) -> str:
    import gguf
    import numpy as np

    # a hybrid whose recurrent state is not modelled (not in hparams.MODELLED_RECURRENT), with
    # the keys llama.cpp requires of it (models/minimax-01.cpp)
    writer = gguf.GGUFWriter(str(path), "minimax-01")
    writer.add_block_count(2)
    writer.add_embedding_length(64)
    writer.add_context_length(4096)
    writer.add_float32("minimax-01.attention.layer_norm_rms_epsilon", 1e-5)
    writer.add_float32("minimax-01.residual_scale", 1.0)
    writer.add_tensor("token_embd.weight", np.zeros((128, 64), dtype=np.float16))
    for block in range(2):
        writer.add_tensor(f"blk.{block}.ssm_in.weight", np.zeros((256, 64), dtype=np.float16))
    write_gguf(writer)
    return str(path)


def test_recurrent_state_makes_the_verdict_cannot_tell_and_the_gate_fail(tmp_path) -> None:
    model = _recurrent_model(tmp_path / "hybrid.gguf")
    roomy = vram(model, "--gpu", "24GiB", "--json")
    document = json.loads(roomy.output)
    assert roomy.exit_code == 1  # fails closed: a CI gate must not pass what it cannot show
    assert document["fits"] is None and "not modelled" in document["unmodelled"]
    assert document["max_ctx"] is None and document["max_gpu_layers"] is None
    assert "CANNOT TELL" in vram(model, "--gpu", "24GiB").output
    tiny = json.loads(vram(model, "--gpu", "1KiB", "--json").output)
    assert tiny["fits"] is False  # the weights alone already exceed it: that much is certain
    assert vram(model).exit_code == 0  # no GPU: nothing to gate


def test_headroom_is_kept_free() -> None:
    model = load(UNTIED)
    roomy = audit(model, LlamaSettings(n_gpu_layers=-1), (GPU("g", 1 * GIB),))
    assert roomy.fits is True
    squeezed = audit(model, LlamaSettings(n_gpu_layers=-1), (GPU("g", 1 * GIB),),
                     headroom=1 * GIB - 1 * MIB)
    assert squeezed.fits is False


# ---- the command --------------------------------------------------------------------------------

def test_json_contract_without_gpu() -> None:
    result = vram(UNTIED, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["schema_version"] == 1
    assert {"config", "devices", "kv_cache", "fits", "max_gpu_layers", "max_ctx",
            "assumptions"} <= set(document)
    assert document["fits"] is None and document["max_gpu_layers"] is None
    assert document["max_ctx"] is None
    (host,) = document["devices"]
    assert set(host) == {"name", "capacity_bytes", "weights_bytes", "kv_bytes", "output_bytes",
                         "compute_bytes", "total_bytes"}
    assert host["name"] == "host" and host["capacity_bytes"] is None
    assert host["total_bytes"] == sum(host[key] for key in (
        "weights_bytes", "kv_bytes", "output_bytes", "compute_bytes"))
    kv = document["kv_cache"]
    assert set(kv) >= {"bytes", "k_bytes", "v_bytes", "cells", "layers", "caches"}
    # llama.cpp's log for this fixture at n_ctx 4096: K (f16) 2.00 MiB, V (f16) 2.00 MiB
    assert (kv["k_bytes"], kv["v_bytes"], kv["cells"], kv["layers"]) == (
        2 * MIB, 2 * MIB, 4096, 2)
    config = document["config"]
    assert (config["n_ctx"], config["n_batch"], config["n_ubatch"], config["n_parallel"]) == (
        4096, 2048, 512, 1)
    assert config["n_gpu_layers"] == 0  # no device: llama.cpp offloads nothing
    # every default the command filled in is stated
    assumed = " ".join(document["assumptions"])
    for name in ("n_ctx", "n_batch", "n_ubatch", "n_parallel", "cache_type_k", "cache_type_v",
                 "flash_attn", "swa_full", "use_mmap", "n_gpu_layers", "headroom"):
        assert f"{name} = " in assumed


def test_explicit_options_are_not_listed_as_assumed() -> None:
    document = json.loads(vram(UNTIED, "--json", "--ctx", "1000", "--batch", "512").output)
    assumed = " ".join(document["assumptions"])
    assert "n_ctx = " not in assumed and "n_batch = " not in assumed
    assert document["config"]["n_ctx"] == 1024  # padded to 256 like llama.cpp


def test_does_not_fit_exits_1_with_the_largest_ngl() -> None:
    """10 MiB, not 6: with llama.cpp's default ``op_offload`` the GPU compute buffer of this
    model is over 6 MiB at every --ngl (the host layers' matmuls run on the GPU too), so at 6 MiB
    there is no largest --ngl to report."""
    result = vram(UNTIED, "--gpu", "10MiB", "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert document["fits"] is False
    assert isinstance(document["max_gpu_layers"], int)
    assert [device["name"] for device in document["devices"]] == ["host", "gpu0"]
    assert document["devices"][1]["capacity_bytes"] == 10 * MIB


def test_fits_exits_0_on_a_named_card() -> None:
    result = vram(UNTIED, "--gpu", "rtx4090")
    assert result.exit_code == 0, result.output
    assert "FITS" in result.output and "gpu0 (rtx4090)" in result.output
    assert "[" in result.output and "W" in result.output  # the bar chart


def test_longest_context_says_when_the_search_stopped_at_the_trained_maximum() -> None:
    roomy = vram(UNTIED, "--gpu", "rtx4090")  # 24 GiB: every context up to 2048 fits
    assert "max n_ctx at full offload  2048: the trained maximum" in roomy.output
    tight = json.loads(vram(UNTIED, "--gpu", "6MiB", "--json").output)
    assert tight["max_ctx"] < 2048
    assert f"{tight['max_ctx']} (trained maximum 2048)" in vram(UNTIED, "--gpu", "6MiB").output


def test_two_gpus_split_the_layers() -> None:
    """llama-model.cpp load_tensors: with two equal cards the split points are [0.5, 1.0] and
    layer il (of 6 blocks + the output layer, act_gpu_layers 7) goes to the first card whose
    split point exceeds il / 7: blocks 0-3 on gpu0, blocks 4-5 and the output on gpu1. KV per
    layer: K and V, 64-wide (head 64 x 1 KV head), f16, 4096 cells = 1 MiB."""
    import gguf

    document = json.loads(vram(GEMMA, "--gpu", "rtx3090,rtx3090", "--json").output)
    devices = {d["name"]: d for d in document["devices"]}
    assert (devices["gpu0"]["kv_bytes"], devices["gpu1"]["kv_bytes"]) == (4 * MIB, 2 * MIB)
    # gpu0's CUDA0 buffer: blocks 0-3, each tensor + CUDA's row padding to 512 columns for
    # quantized types (ggml_backend_cuda_buffer_type_get_alloc_size), aligned to 128.
    expected = 0
    for tensor in gguf.GGUFReader(GEMMA).tensors:
        if not tensor.name.startswith(("blk.0.", "blk.1.", "blk.2.", "blk.3.")):
            continue
        size = int(tensor.n_bytes)
        block, type_size = gguf.GGML_QUANT_SIZES[tensor.tensor_type]
        if block > 1 and int(tensor.shape[0]) % 512:
            size += (512 - int(tensor.shape[0]) % 512) // block * type_size
        expected += (size + 127) // 128 * 128
    assert devices["gpu0"]["weights_bytes"] == expected
    assert devices["gpu1"]["weights_bytes"] > 0
    assert document["fits"] is True


def test_markdown_and_plan() -> None:
    result = vram(GEMMA, "--gpu", "1GiB", "--plan", "--markdown")
    assert result.exit_code == 0, result.output
    assert "| device" in result.output
    assert "### plan" in result.output
    document = json.loads(vram(GEMMA, "--gpu", "1GiB", "--plan", "--json").output)
    assert [row["n_ctx"] for row in document["plan"]] == [2048]  # trained maximum 2048
    assert document["plan"][0]["fits_full_offload"] is True


def test_sliding_window_caches_in_the_audit() -> None:
    document = json.loads(vram(GEMMA, "--json", "--no-swa-full", "--parallel", "2").output)
    caches = document["kv_cache"]["caches"]
    assert [(c["name"], c["cells"], c["layers"]) for c in caches] == [("", 2048, 1),
                                                                       ("SWA", 768, 5)]


@pytest.mark.parametrize("args", [
    ["--gpu", "voodoo2"], ["--gpu", "24GiB", "--headroom", "lots"], ["--gpu", "0"],
    ["--gpu", "8GiB,0MiB"],
    ["--flash-attn", "maybe"], ["--cache-type-k", "q9_9"],
    ["--cache-type-v", "q8_0", "--flash-attn", "off"],  # llama.cpp refuses this context
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert vram(UNTIED, *args).exit_code == 2


def test_missing_file_exits_4(tmp_path) -> None:
    assert vram(str(tmp_path / "absent.gguf")).exit_code == 4


def test_same_numbers_in_every_format() -> None:
    """The table's buffer rows print the exact bytes the JSON carries."""
    document = json.loads(vram(UNTIED, "--json").output)
    table = vram(UNTIED).output
    markdown = vram(UNTIED, "--markdown").output
    for item in document["buffers"]:
        assert f"{item['bytes']:,}" in table
        assert f"{item['bytes']:,}" in markdown


def test_kv_unified_flag_reaches_both_audit_and_runtime_and_llama_cpp_agrees() -> None:
    """--kv-unified (llama.cpp's -kvu): one stream for all sequences; the SWA cache holds
    n_swa x n_seq_max + n_ubatch cells (llama_kv_cache_iswa). The runtime is the judge."""
    args = ["--parallel", "3", "--no-swa-full", "--kv-unified", "--json"]
    audit_document = json.loads(vram(GEMMA, *args).output)
    assert audit_document["config"]["kv_unified"] is True
    caches = {cache["name"]: cache for cache in audit_document["kv_cache"]["caches"]}
    assert caches["SWA"]["n_seqs"] == 1  # one stream, not three
    runtime = runner.invoke(app, ["runtime", GEMMA, *args])
    assert runtime.exit_code == 0, runtime.output
    document = json.loads(runtime.stdout)
    assert document["config"]["kv_unified"] is True and document["all_match"] is True
    cells = {check["quantity"]: check["runtime"] for check in document["checks"]}
    assert cells["SWA KV cache cells"] == caches["SWA"]["cells"]
    assert cells["KV cache cells"] == caches[""]["cells"]


def test_unified_cache_reserve_rounds_tokens_to_the_sequences_like_llama_cpp() -> None:
    """graph_reserve (llama-context.cpp) rounds the 512-token reserve up to a multiple of
    n_seq_max (513 for 3 sequences) whether or not the cache is unified: the compute estimate
    must then equal the runtime's figure at the log's 0.0001 MiB."""
    result = runner.invoke(app, ["runtime", UNTIED, "--parallel", "3", "--kv-unified", "--json"])
    assert result.exit_code == 0, result.output
    checks = {check["quantity"]: check for check in json.loads(result.stdout)["checks"]}
    compute = checks["CPU compute buffer"]
    assert round(compute["predicted"], 4) == round(compute["runtime"], 4)


@pytest.mark.parametrize("stem, args, rule", [
    ("deepseek2-mla", ["--cache-type-k", "q8_0", "--flash-attn", "on"],
     "an MLA model needs one K and V cache type (q8_0 and f16 given)"),
    ("deepseek2-mla", ["--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--flash-attn", "on"],
     "(blocks of 32) does not divide the K head size 48"),
    ("gemma3n", ["--cache-type-k", "q8_0"], "(blocks of 32) does not divide the K head size 16"),
])
def test_a_context_llama_cpp_refuses_for_the_model_exits_2(stem: str, args: list[str],
                                                              rule: str) -> None:
    """The model-dependent refusals of llama_init_from_model (an MLA model's K and V types, a
    quantized K block that does not divide the heads with flash attention on or auto: the
    real runtime refuses these, tests/test_zoo.py) end the audit with exit 2, naming the file
    and the rule; nothing is audited."""
    result = vram(str(fixture_path(f"zoo/{stem}.gguf")), *args)
    assert result.exit_code == 2, result.output
    assert rule in result.output and "llama.cpp refuses this context" in result.output
