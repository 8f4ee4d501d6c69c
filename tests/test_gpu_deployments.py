"""GPU deployment options (issue 14's Done-when figures) on the Llama-3.1-8B shape and a small
MoE shape, from first principles and llama.cpp 0.3.36's source: layer placement
(llama_model_base::load_tensors), tensor buffer overrides (llama_model_loader::create_tensor,
common/arg.cpp's --n-cpu-moe patterns), KV placement (llama_kv_cache: a CPU buffer without
offload_kqv), ggml_backend_sched's per-device compute buffers and op_offload. No GPU needed:
these are predictions, checked against the rules, not against a CUDA load."""

from __future__ import annotations

import json
import math
import re

from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.constants import GGML_TYPE_BY_NAME
from gguf_inspect.llamacpp.memory import predict_memory
from gguf_inspect.llamacpp.placement import place_tensors, placement_for
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from gguf_inspect.llamacpp.settings import LlamaSettings
from tests.gpu_shapes import LLAMA31_8B, MOE, llama31_8b, small_moe

GIB = 1 << 30
MIB = 1 << 20
TWO_24 = (24 * GIB, 24 * GIB)


def compute(prediction, device: str) -> int:
    return prediction.device_total(device, "compute")


def test_two_gpus_each_charged_their_own_share_of_the_compute() -> None:
    """Two 24 GiB cards at n_ctx 8192: gpu0 holds blocks and no output head, so its compute
    buffer is below the one-GPU figure (whose peak is the logits: n_vocab x n_ubatch x 4
    bytes), and the two together stay under twice it, although pipeline parallelism
    (llama_context: two devices, all layers offloaded, layer split) copies each split input
    GGML_SCHED_MAX_COPIES = 4 times (gpu0 receives the embeddings and the mask: 4 x 16 MiB)."""
    model = llama31_8b()
    one = predict_memory(model, LlamaSettings(n_ctx=8192, gpu_capacities=(24 * GIB,)))
    two = predict_memory(model, LlamaSettings(n_ctx=8192, gpu_capacities=TWO_24))
    logits = LLAMA31_8B["n_vocab"] * 512 * 4
    assert compute(one, "gpu0") > logits  # the one-GPU peak holds the logits
    assert compute(two, "gpu0") < compute(one, "gpu0")
    assert compute(two, "gpu1") > logits  # the output head is on the last GPU
    assert compute(two, "gpu0") + compute(two, "gpu1") < 2 * compute(one, "gpu0")


def test_partial_offload_needs_a_larger_gpu_compute_buffer_than_full_offload() -> None:
    """--ngl 16: the 16 host blocks' large-batch matmuls run on the GPU (op_offload, "1.off" in
    ggml_backend_sched_backend_id_from_cur), which copies each host weight in; the largest,
    ffn_down's q4_K 14336 x 4096, is 31.5 MiB, more than the whole compute buffer of a full
    offload at a 32-token ubatch (whose logits are 128256 x 32 x 4 bytes: 15.7 MiB). With
    --no-op-offload the host blocks stay on the host, and the GPU's buffer is the full
    offload's. (At a 512-token ubatch the 250 MiB of logits are the peak either way: each weight
    copy is a split input of its own, freed once its matmul is done.)"""
    model = llama31_8b()
    fields = {"n_ctx": 8192, "n_ubatch": 32, "gpu_capacities": (24 * GIB,)}
    full = predict_memory(model, LlamaSettings(**fields))
    partial = predict_memory(model, LlamaSettings(n_gpu_layers=16, **fields))
    kept = predict_memory(model, LlamaSettings(n_gpu_layers=16, op_offload=False, **fields))
    ffn_weight = 14_336 * 4096 // 256 * GGML_TYPE_BY_NAME["q4_k"].type_size
    assert ffn_weight == 31.5 * MIB
    assert compute(full, "gpu0") > LLAMA31_8B["n_vocab"] * 32 * 4
    assert compute(partial, "gpu0") > ffn_weight > compute(full, "gpu0")
    # each host weight starts a split of its own (need_new_split in ggml_backend_sched_split_graph),
    # so its copy is freed before the next matmul's is allocated: never two FFN weights at once
    assert compute(partial, "gpu0") < 2 * ffn_weight
    assert compute(kept, "gpu0") == compute(full, "gpu0")


def test_ngl_0_still_has_a_gpu_compute_buffer_with_op_offload() -> None:
    """A CUDA build keeps the GPU backend at --ngl 0 (llama_model_load_from_splits adds every
    GPU device), so the host weights' matmuls still run there; without op_offload nothing does."""
    model = llama31_8b()
    on = predict_memory(model, LlamaSettings(n_gpu_layers=0, gpu_capacities=(24 * GIB,)))
    off = predict_memory(model, LlamaSettings(n_gpu_layers=0, op_offload=False,
                                              gpu_capacities=(24 * GIB,)))
    assert compute(on, "gpu0") > 0 and on.device_total("gpu0", "model") == 0
    assert off.device_total("gpu0") == 0


def test_no_kv_offload_puts_the_whole_kv_cache_on_the_host() -> None:
    """offload_kqv false: every layer's K and V in a CPU buffer (llama_kv_cache's buft is
    ggml_backend_cpu_buffer_type unless offloading): 32 layers x 8192 cells x 1024 x 2 x f16."""
    model = llama31_8b()
    prediction = predict_memory(model, LlamaSettings(n_ctx=8192, offload_kqv=False,
                                                     gpu_capacities=(24 * GIB,)))
    kv = [buffer for buffer in prediction.buffers if buffer.kind == "kv"]
    assert [(buffer.device, buffer.buffer) for buffer in kv] == [("host", "CPU")]
    assert kv[0].n_bytes == 32 * 8192 * 1024 * 2 * 2
    assert prediction.device_total("gpu0", "kv") == 0


def test_tensor_split_3_1_gives_gpu0_three_quarters_of_the_layers() -> None:
    """33 offloaded layers (32 blocks and the output head), split points [0.75, 1.0]: layer il
    goes to upper_bound(splits, il / 33), so gpu0 takes il < 0.75 x 33 = 24.75: 25 layers."""
    model = llama31_8b()
    settings = LlamaSettings(n_ctx=8192, tensor_split="3,1", gpu_capacities=TWO_24)
    layers = placement_for(32, settings).layer_device
    expected = math.ceil(0.75 * 33)
    assert layers.count("gpu0") == expected == 25
    assert layers[:25] == ("gpu0",) * 25 and layers[25:] == ("gpu1",) * 8
    prediction = predict_memory(model, settings)
    assert prediction.device_total("gpu0", "kv") == 25 * 8192 * 1024 * 2 * 2


def test_n_cpu_moe_1_moves_exactly_block_0s_experts_to_the_host() -> None:
    """--n-cpu-moe 1 adds the override blk\\.0\\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU: the
    host gains exactly block 0's three expert tensors (mmap: CPU_Mapped, their file bytes) and
    the GPU loses them with CUDA's row padding."""
    model = small_moe()
    settings = LlamaSettings(gpu_capacities=(24 * GIB,))
    before = place_tensors(model, read_hyperparameters(model), placement_for(MOE["n_layer"], settings),
                           settings)
    moved = LlamaSettings(n_cpu_moe=1, gpu_capacities=(24 * GIB,))
    after = place_tensors(model, read_hyperparameters(model), placement_for(MOE["n_layer"], moved),
                          moved)
    changed = {a.tensor.name for a, b in zip(before, after) if a.device != b.device}
    assert changed == {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight",
                       "blk.0.ffn_down_exps.weight"}
    experts = sum(model.tensor(name).n_bytes for name in changed)
    old = predict_memory(model, settings)
    new = predict_memory(model, moved)
    host_gain = new.device_total("host", "model") - old.device_total("host", "model")
    gpu_loss = old.device_total("gpu0", "model") - new.device_total("gpu0", "model")
    # With mmap the host buffer is the mapped file range from its first tensor to its last
    # (get_mapping_range in load_tensors): it now runs from token_embd to the end of block 0's
    # last expert tensor, so it also spans block 0's other tensors, which stay on the GPU.
    embd, down = model.tensor("token_embd.weight"), model.tensor("blk.0.ffn_down_exps.weight")
    assert host_gain == (down.offset + down.n_bytes) - (embd.offset + embd.n_bytes)
    assert experts <= gpu_loss <= experts + 3 * (512 * 210 + 128)  # padded rows, alignment


def test_override_tensor_to_a_gpu_and_to_cpu() -> None:
    """-ot: the first matching pattern wins (std::regex_search over the tensor name)."""
    model = llama31_8b()
    settings = LlamaSettings(n_gpu_layers=0, override_tensor=r"blk\.3\.attn_q=CUDA1,attn_q=CPU",
                             gpu_capacities=TWO_24)
    placed = {item.tensor.name: item.device
              for item in place_tensors(model, read_hyperparameters(model),
                                        placement_for(32, settings), settings)}
    assert placed["blk.3.attn_q.weight"] == "gpu1"
    assert all(device == "host" for name, device in placed.items()
               if not name.startswith("blk.3.attn_q"))


def test_split_mode_none_keeps_every_layer_on_the_main_gpu() -> None:
    settings = LlamaSettings(split_mode="none", main_gpu=1, gpu_capacities=TWO_24)
    assert set(placement_for(32, settings).layer_device) == {"gpu1"}


def test_deployment_options_reach_the_json_contract_and_the_assumptions(tmp_path) -> None:
    from tests.test_vram import UNTIED

    result = CliRunner().invoke(app, [
        "vram", UNTIED, "--gpu", "1GiB,1GiB", "--tensor-split", "3,1", "--override-tensor",
        "ffn_down=CPU", "--no-kv-offload", "--no-op-offload", "--n-cpu-moe", "1",
        "--split-mode", "layer", "--main-gpu", "1", "--embeddings", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    config = document["config"]
    assert (config["tensor_split"], config["override_tensor"], config["offload_kqv"],
            config["op_offload"], config["n_cpu_moe"], config["main_gpu"],
            config["embeddings"]) == ("3,1", "ffn_down=CPU", False, False, 1, 1, True)
    assumed = "\n".join(document["assumptions"])
    for name in ("tensor_split", "override_tensor", "offload_kqv", "op_offload", "n_cpu_moe",
                 "main_gpu", "embeddings"):
        assert re.search(rf"^{name} = .*\(as given", assumed, re.MULTILINE), name
    assert {device["name"] for device in document["devices"]} == {"host", "gpu0", "gpu1"}
    assert all(buffer["buffer"] != "CUDA0" or buffer["kind"] != "kv"
               for buffer in document["buffers"])
    plain = json.loads(CliRunner().invoke(app, ["vram", UNTIED, "--json"]).output)
    assert "as given" not in "\n".join(plain["assumptions"])


def test_the_output_buffer_is_pinned_only_when_the_head_is_on_a_gpu() -> None:
    """llama_context::output_reserve (llama-context.cpp:2196): the logits buffer takes the host
    buffer type of the output layer's device (CUDA_Host for a CUDA GPU); with the head on the
    CPU that device has none, so it is a CPU buffer. -ngl offloads from the last layer, the head
    (llama_model_base::load_tensors: i_gpu_start = n_layer + 1 - n_gpu_layers), so only -ngl 0
    keeps the head on the CPU."""
    model = llama31_8b()

    def output(n_gpu_layers: int) -> list[str]:
        prediction = predict_memory(model, LlamaSettings(n_gpu_layers=n_gpu_layers,
                                                         gpu_capacities=(24 * GIB,)))
        return [buffer.buffer for buffer in prediction.buffers if buffer.kind == "output"]

    assert output(-1) == ["CUDA_Host"]  # all 33 layers: the head on the GPU
    assert output(1) == ["CUDA_Host"]  # one layer offloaded: the head
    assert output(0) == ["CPU"]
