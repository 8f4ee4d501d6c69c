"""Files that load beside a model: a LoRA adapter, a draft model, a multimodal projector.

Expected figures come from first principles (tensor shapes and ggml's padding, read with
gguf-py), and from llama.cpp's and mtmd's own load logs through llama-cpp-python."""

from __future__ import annotations

import json
from dataclasses import replace

import gguf
import pytest

from gguf_inspect.commands.runtime import compare_runtime
from gguf_inspect.commands.vram import VramOptions, run_vram
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.companions import describe_companion, parse_lora_option, read_lora, read_projector
from gguf_inspect.llamacpp.extras import ExtraFiles, extra_loads
from gguf_inspect.llamacpp.projector import vision_graph
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.reports.vram import audit
from gguf_inspect.llamacpp.devices import parse_gpus
from tests.conftest import fixture_path

MODEL = str(fixture_path("tiny-llama-untied-f16.gguf"))
LORA = str(fixture_path("companions/tiny-llama-untied-lora-f16.gguf"))
MMPROJ = str(fixture_path("companions/tiny-clip-mlp-mmproj-f16.gguf"))
DRAFT = str(fixture_path("tiny-llama-planted-q8_0.gguf"))
CPU_ALIGN = 32  # TENSOR_ALIGNMENT (ggml-impl.h)


def _padded_bytes(path: str, align: int) -> int:
    """Every tensor's bytes (gguf-py), each padded to the buffer alignment."""
    return sum(-(-int(t.n_bytes) // align) * align for t in gguf.GGUFReader(path).tensors)


def _loads(files: ExtraFiles, settings: LlamaSettings = LlamaSettings()):  # type: ignore[no-untyped-def]
    return {load.role: load for load in extra_loads(read_gguf(MODEL), settings, files)}


def test_lora_buffer_is_the_pairs_bytes_on_the_cpu() -> None:
    load = _loads(ExtraFiles(loras=((read_gguf(LORA), 1.0),)))["lora"]
    assert [(b.device, b.buffer, b.kind) for b in load.buffers] == [("host", "CPU", "lora")]
    assert load.n_bytes == _padded_bytes(LORA, CPU_ALIGN)


def test_lora_follows_its_layers_onto_the_gpu() -> None:
    settings = LlamaSettings(gpu_capacities=(8 << 30,))
    load = _loads(ExtraFiles(loras=((read_gguf(LORA), 1.0),)), settings)["lora"]
    assert [(b.device, b.buffer) for b in load.buffers] == [("gpu0", "CUDA0")]
    # --ngl 2 of 3: block 0 stays on the host, block 1 and the head go to the GPU
    partial = _loads(ExtraFiles(loras=((read_gguf(LORA), 1.0),)),
                     replace(settings, n_gpu_layers=2))["lora"]
    assert {b.buffer: b.n_bytes for b in partial.buffers} == {
        "CPU": _padded_bytes(LORA, CPU_ALIGN) // 2, "CUDA0": _padded_bytes(LORA, 128) // 2}


def test_lora_option_spelling() -> None:
    assert parse_lora_option("a.gguf:0.5,b.gguf") == (("a.gguf", 0.5), ("b.gguf", 1.0))
    assert read_lora(read_gguf(LORA)).alpha == 8.0


def test_lora_for_another_architecture_is_refused() -> None:
    gemma = read_gguf(str(fixture_path("tiny-gemma3-swa-q4_k_m.gguf")))
    with pytest.raises(ValueError, match="arch mismatch"):
        extra_loads(gemma, LlamaSettings(), ExtraFiles(loras=((read_gguf(LORA), 1.0),)))


def test_draft_has_its_own_kv_cache_at_the_target_context() -> None:
    load = _loads(ExtraFiles(draft=read_gguf(DRAFT)), LlamaSettings(n_ctx=4096))["draft"]
    kv = sum(b.n_bytes for b in load.buffers if b.kind == "draft_kv")
    # tiny-llama-planted: 2 layers, 1 KV head of 64 / 2 = 32, f16 K and V, 4096 cells
    assert kv == 2 * 4096 * 32 * 2 * 2
    model = sum(b.n_bytes for b in load.buffers if b.kind == "draft_model")
    assert model > 0 and any(b.kind == "draft_compute" for b in load.buffers)


def test_projector_goes_to_the_gpu_unless_told_not_to() -> None:
    projector = read_gguf(MMPROJ)
    gpu = LlamaSettings(gpu_capacities=(8 << 30,))
    on_gpu = _loads(ExtraFiles(mmproj=projector), gpu)["mmproj"]
    assert {b.device for b in on_gpu.buffers} == {"gpu0"}
    on_cpu = _loads(ExtraFiles(mmproj=projector, mmproj_offload=False), gpu)["mmproj"]
    assert {b.device for b in on_cpu.buffers} == {"host"}
    weights = next(b for b in on_cpu.buffers if b.kind == "mmproj")
    assert weights.n_bytes == _padded_bytes(MMPROJ, CPU_ALIGN)


def test_vision_graph_has_the_nodes_mtmd_reports() -> None:
    # reserve_compute_meta logged "graph splits = 1, nodes = 53" for this projector
    assert len(vision_graph(read_projector(read_gguf(MMPROJ)))) == 53


def test_vram_adds_the_extras_to_the_devices_and_buffers() -> None:
    gpus = parse_gpus("8GiB")
    base = audit(read_gguf(MODEL), LlamaSettings(), gpus)
    files = ExtraFiles(loras=((read_gguf(LORA), 1.0),), draft=read_gguf(DRAFT),
                       mmproj=read_gguf(MMPROJ))
    both = audit(read_gguf(MODEL), LlamaSettings(), gpus, extras=files)
    added = sum(load.n_bytes for load in both.extras)
    assert sum(u.total_bytes for u in both.devices) == sum(u.total_bytes for u in base.devices) + added
    text, code = run_vram(MODEL, "json", VramOptions(
        gpu="8GiB", lora=LORA, model_draft=DRAFT, mmproj=MMPROJ, mmproj_offload=False))
    document = json.loads(text)
    kinds = {item["kind"] for item in document["buffers"]}
    assert {"lora", "draft_model", "draft_kv", "mmproj", "mmproj_compute"} <= kinds
    assert [extra["role"] for extra in document["extras"]] == ["lora", "draft", "mmproj"]
    assert code == 0



def test_inspect_says_what_a_companion_is() -> None:
    adapter = describe_companion(read_gguf(LORA))
    projector = describe_companion(read_gguf(MMPROJ))
    assert adapter is not None and adapter.kind == "adapter"
    assert projector is not None and projector.kind == "mmproj"
    assert describe_companion(read_gguf(MODEL)) is None


def test_runtime_matches_llama_cpp_for_lora_and_projector() -> None:
    pytest.importorskip("llama_cpp")
    comparison = compare_runtime(MODEL, {}, lora=LORA, mmproj=MMPROJ)
    extra = {c.quantity: c for c in comparison.checks
             if c.quantity.startswith(("LoRA", "projector"))}
    # Only MiB lines exist for these: the LoRA buffer is "%8.2f MiB" (llama-adapter.cpp,
    # llama_adapter_lora_init_impl) and the projector's size "%.2f MiB" (tools/mtmd/clip.cpp,
    # clip_model_loader); neither llama.h nor mtmd.h returns their bytes. The model's own
    # bytes are exact (llama_model_size).
    # one LoRA buffer, named by the base weights' buffer type, which depends on the CPU (AMX,
    # CPU_REPACK or CPU_Mapped): a wrong name would leave a prediction and a runtime row apart
    (lora,) = [check for name, check in extra.items() if name.startswith("LoRA buffer")]
    assert lora.quantity.endswith("(tiny-llama-untied-lora-f16.gguf)")
    assert lora.status == "match" and lora.predicted == lora.runtime
    assert extra["projector model size (sum of tensor bytes)"].status == "match"
    size = {c.quantity: c for c in comparison.checks}["tensor bytes (llama_model_size)"]
    assert size.unit == "B" and size.predicted == size.runtime > 0
    compute = extra["projector compute buffer CPU"]
    assert compute.runtime is not None and abs(compute.predicted - compute.runtime) <= 0.01 * compute.runtime
    assert comparison.all_match


def test_the_fit_verdict_counts_the_extras() -> None:
    gpus = parse_gpus("8GiB")
    base = audit(read_gguf(MODEL), LlamaSettings(), gpus)
    headroom = gpus[0].capacity_bytes - base.devices[1].total_bytes  # exactly full without extras
    assert audit(read_gguf(MODEL), LlamaSettings(), gpus, headroom).fits is True
    files = ExtraFiles(mmproj=read_gguf(MMPROJ))
    assert audit(read_gguf(MODEL), LlamaSettings(), gpus, headroom, extras=files).fits is False
