"""Where every weight goes: layers split over the GPUs, each tensor's buffer type, and the size
of each model buffer.

Follows ``llama_model_base::load_tensors`` (src/llama-model.cpp: ``get_layer_buft_list``, the
float32 split over free memory), ``llama_model_loader::create_tensor`` (``buft_for_tensor``; which weights the CPU's
AMX and CPU_REPACK buffers take is ``cpu_buffers``), the CUDA backend's
alignment and row padding (ggml-cuda.cu) and ``ggml_backend_alloc_ctx_tensors_from_buft``
(ggml-alloc.c). Also the small shared helpers of the memory model (GGML_PAD, float32, the
``BufferEstimate`` record).
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass

from gguf_inspect.core.constants import GGML_TYPES, row_bytes
from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.llamacpp.backends import (
    CPU_ALIGNMENT,
    CUDA_ALIGNMENT,
    buffer_device,
    device_buffer,
    host_buffer,
    is_cuda_device_buffer,
)
from gguf_inspect.llamacpp.cpu_buffers import amx_alloc_size, amx_supports, host_has_amx, host_has_avx512, repacks
from gguf_inspect.llamacpp.hparams import NO_OUTPUT_HEAD_ARCHS, Hyperparameters
from gguf_inspect.llamacpp.names import base_name, layer_index
from gguf_inspect.llamacpp.settings import LlamaSettings, all_overrides, parse_tensor_split

CUDA_MATRIX_ROW_PADDING = 512  # MATRIX_ROW_PADDING, ggml-cuda/common.cuh
HOST = "host"

# Tensor roles from LLM_TENSOR_INFOS (llama-arch.cpp): the input layer, the output layer, and
# the ops that decide CPU_REPACK eligibility (only MUL_MAT on 2-D and MUL_MAT_ID on 3-D weights).
# token_embd_norm is a repeating-layer tensor that load_arch_tensors creates for block 0 ("do
# the norms on the first layer (not the input layer)"): it lives on layer 0's device.
INPUT_TENSORS = frozenset({"token_embd", "position_embd", "token_types", "per_layer_token_embd"})
OUTPUT_TENSORS = frozenset({
    "output", "output_norm", "cls", "cls.output", "cls.norm", "dense_2", "dense_3",
    "altup_proj", "altup_unembd_proj", "nextn.post_projection"})
# lfm2's output norm is named "token_embd_norm" (LLM_TENSOR_OUTPUT_NORM_LFM2, a tensor of the
# output layer: llama-arch.cpp; models/lfm2.cpp:39, lfm2moe.cpp), elsewhere that name is the
# input LayerNorm, created as block 0's (tn(LLM_TENSOR_TOKEN_EMBD_NORM, "weight", 0))
LFM2_ARCHS = frozenset({"lfm2", "lfm2moe"})
NOT_MATMUL_SUFFIXES = ("ple_conv1d", "attn_compressor_ape", "attn_sinks", "ffn.act", "ssm_conv1d",
                       "ssm_a", "time_mix_first", "attn_rel_b", "conv1d", "conv1", "conv2", "dw",
                       "shortconv.conv", "indexer_compressor_ape", "ffn_gate_tid2eid",
                       "nextn.embed_tokens", "rope_freqs", "rope_factors_long",
                       "rope_factors_short")
MATMUL_ID_SUFFIXES = ("_exps", "_chexps")


def pad(value: int, alignment: int) -> int:
    """GGML_PAD (ggml.h): round up to a multiple of ``alignment``."""
    return (value + alignment - 1) // alignment * alignment


def float32(value: float) -> float:
    """Round to IEEE single precision, as the C++ ``float`` arithmetic does."""
    return struct.unpack("f", struct.pack("f", value))[0]




@dataclass(frozen=True)
class BufferEstimate:
    device: str  # "host", "gpu0", "gpu1", ...
    buffer: str  # llama.cpp's buffer name as the log prints it: "CPU_Mapped", "CUDA0", ...
    kind: str  # "model" | "kv" | "output" | "compute" | "recurrent"
    n_bytes: int
    exact: bool  # False for estimates (compute buffer)



# ---- device placement (llama_model_base::load_tensors, llama-model.cpp) -----------------------


@dataclass(frozen=True)
class Placement:
    """Which device each layer lives on; ``layer_device[n_layer]`` is the output pseudo-layer."""

    layer_device: tuple[str, ...]

    def device_of_layer(self, il: int) -> str:
        return self.layer_device[il]

    @property
    def output_device(self) -> str:
        return self.layer_device[-1]


def place_layers(n_layer: int, n_gpu_layers: int, gpu_capacities: tuple[int, ...],
                 tensor_split: tuple[float, ...] = (), split_mode: str = "layer",
                 main_gpu: int = 0) -> Placement:
    """Layers ``il >= i_gpu_start`` go to a GPU, chosen by ``upper_bound`` over the cumulative
    split normalised by free memory, or by ``--tensor-split`` when it is given and not all zero
    (load_tensors's ``get_layer_buft_list``); the output layer is pseudo-layer ``n_layer``, so
    it is the first thing offloaded. ``--split-mode none`` keeps only the main GPU
    (llama_model_load_from_splits, src/llama.cpp: ``model->devices`` becomes ``main_gpu``)."""
    if not gpu_capacities:
        return Placement((HOST,) * (n_layer + 1))
    if split_mode == "none":
        if main_gpu >= len(gpu_capacities):  # llama.cpp: "invalid value for main_gpu"
            raise ValueError(f"--main-gpu {main_gpu}: there are {len(gpu_capacities)} GPU(s)")
        single = place_layers(n_layer, n_gpu_layers, (1,))
        return Placement(tuple(HOST if device == HOST else f"gpu{main_gpu}"
                               for device in single.layer_device))
    shares = tensor_split[:len(gpu_capacities)]
    if shares and any(shares):  # missing trailing shares are 0 (tensor_split[] is zeroed)
        gpu_capacities = shares + (0.0,) * (len(gpu_capacities) - len(shares))
    ngl = n_gpu_layers if n_gpu_layers >= 0 else n_layer + 1  # llama_model::n_gpu_layers
    i_gpu_start = max(n_layer + 1 - ngl, 0)
    act_gpu_layers = min(ngl, n_layer + 1)
    splits = _split_points(gpu_capacities)
    devices = []
    for il in range(n_layer + 1):
        if il < i_gpu_start or il - i_gpu_start >= act_gpu_layers:
            devices.append(HOST)
            continue
        fraction = float32(float32(il - i_gpu_start) / act_gpu_layers)
        devices.append(f"gpu{bisect.bisect_right(splits, fraction)}")
    return Placement(tuple(devices))


def _split_points(capacities: tuple[float, ...]) -> list[float]:
    """The cumulative, normalised split as float32, like load_tensors's ``splits`` vector."""
    running = 0.0
    cumulative = []
    for capacity in capacities:
        running = float32(running + float32(capacity))
        cumulative.append(running)
    return [float32(value / running) for value in cumulative]


@dataclass(frozen=True)
class TensorPlacement:
    tensor: TensorInfo
    device: str
    buffer: str
    duplicate: bool = False  # the tied output copy of token_embd


# Architectures whose load_arch_tensors creates the tied head (TENSOR_DUPLICATED) before
# tok_embd (models/gemma3n.cpp:28-34, models/gemma4.cpp:50-56): create_tensor reuses a
# duplicate only when the original is already in the same buffer type's context, so here the
# input embedding is a second tensor even in the same buffer (a second copy, but in a mapped
# buffer, whose size is the tensors' file range).
HEAD_BEFORE_EMBEDDING_ARCHS = frozenset({"gemma3n", "gemma4"})


def _layer_of(tensor: TensorInfo, n_layer: int, arch: str) -> int:
    """The layer index whose device holds the tensor: -1 input, n_layer output, else the block."""
    layer = layer_index(tensor.name)
    if layer is not None:
        return layer
    base = base_name(tensor.name)
    if base in INPUT_TENSORS:
        return -1
    if base in OUTPUT_TENSORS or (base == "token_embd_norm" and arch in LFM2_ARCHS):
        return n_layer
    return 0  # e.g. rope_freqs: created for layer 0 (and shared by the others)


def _matmul_dims(tensor: TensorInfo) -> int | None:
    """The n_dims a repack buffer accepts for this tensor's op, None when it is not a matmul."""
    base = base_name(tensor.name)
    if tensor.name.endswith(".bias") or base in INPUT_TENSORS:
        return None
    if any(base.endswith(suffix) for suffix in NOT_MATMUL_SUFFIXES):
        return None
    if base.endswith("_norm") or base.endswith(".norm"):
        return None
    return 3 if any(base.endswith(suffix) for suffix in MATMUL_ID_SUFFIXES) else 2


def placement_for(n_layer: int, settings: LlamaSettings) -> Placement:
    """``place_layers`` with the settings' GPUs, split and main GPU."""
    return place_layers(n_layer, settings.n_gpu_layers, settings.gpu_capacities,
                        parse_tensor_split(settings.tensor_split), settings.split_mode,
                        settings.main_gpu)


def override_device(name: str, overrides: tuple[tuple[str, str], ...],
                    settings: LlamaSettings) -> str | None:
    """The device a tensor buffer override sends ``name`` to, None when none matches: the
    first pattern found by ``std::regex_search`` wins (llama_model_loader::create_tensor).
    Buffer names are the devices' own (parse_tensor_buffer_overrides, common/arg.cpp lists
    only the devices present: a CUDA buffer on a CPU-only build is refused)."""
    for pattern, buffer in overrides:
        if re.search(pattern, name) is not None:
            return buffer_device(buffer, settings)
    return None


def place_tensors(gguf: GGUFFile, hparams: Hyperparameters, placement: Placement,
                  settings: LlamaSettings) -> list[TensorPlacement]:
    """The buffer type of every weight (llama_model_loader::create_tensor's ``buft_for_tensor``).

    CPU-only build: the CPU list is [AMX, CPU_REPACK, CPU] (make_cpu_buft_list; AMX only on a
    CPU that has it); a CUDA build puts the
    first GPU's host buffer (CUDA_Host) first, which with mmap is swapped for plain CPU ("avoid
    using a host buffer when using mmap"), so repacking never happens there. RPC devices have
    no host buffer type: their host weights are placed as on a CPU-only build. A tied embedding
    (no output.weight) is requested again as the output head (TENSOR_DUPLICATED): it costs a
    second copy only when that lands in a different buffer type (or, for gemma3n and gemma4,
    which create the head first, always).

    A tensor buffer override (``-ot``, ``--n-cpu-moe``) to CPU picks from the CPU list again
    (``select_weight_buft(..., buft_list_cpu)``, so on a CPU-only build it changes nothing);
    to a GPU it takes that GPU's buffer."""
    overrides = all_overrides(settings)
    avx512 = host_has_avx512() if settings.cpu_avx512 is None else settings.cpu_avx512
    amx = host_has_amx() if settings.cpu_amx is None else settings.cpu_amx
    pinned = host_buffer(settings)
    # use_extra_bufts: ggml_backend_cpu_get_extra_buffer_types lists AMX before CPU_REPACK.
    use_repack = settings.cpu_repack and pinned is None

    def buffer_for(tensor: TensorInfo, device: str, matmul_dims: int | None) -> str:
        if device != HOST:
            return device_buffer(settings, device)
        if use_repack and amx and amx_supports(tensor, matmul_dims):
            return "AMX"
        if use_repack and repacks(tensor, matmul_dims, avx512):
            return "CPU_REPACK"
        if pinned is not None and not settings.use_mmap:
            return pinned
        return "CPU_Mapped" if settings.use_mmap else "CPU"

    placed = []
    for tensor in gguf.tensors:
        if skipped_by_loader(tensor, hparams):
            continue
        layer = _layer_of(tensor, hparams.n_layer, hparams.arch)
        device = HOST if layer < 0 else placement.device_of_layer(min(layer, hparams.n_layer))
        if overrides:
            device = override_device(tensor.name, overrides, settings) or device
        buffer = buffer_for(tensor, device, _matmul_dims(tensor))
        placed.append(TensorPlacement(tensor, device, buffer))
    embedding = gguf.tensor("token_embd.weight")
    if (embedding is not None and gguf.tensor("output.weight") is None
            and hparams.arch not in NO_OUTPUT_HEAD_ARCHS):
        device = placement.output_device
        if overrides:  # the duplicate is created under its own name, token_embd.weight, and
            # create_tensor matches -ot patterns against that name (llama-model-loader.cpp)
            device = override_device(embedding.name, overrides, settings) or device
        buffer = buffer_for(embedding, device, 2)
        input_buffer = next(p.buffer for p in placed if p.tensor is embedding)
        if buffer != input_buffer or hparams.arch in HEAD_BEFORE_EMBEDDING_ARCHS:
            placed.append(TensorPlacement(embedding, device, buffer, duplicate=True))
    return placed


def skipped_by_loader(tensor: TensorInfo, hparams: Hyperparameters) -> bool:
    """A tensor of a block at or past n_layer() = n_layer_all - n_layer_nextn: in no buffer.
    The MTP architectures' load_arch_tensors flag those blocks TENSOR_SKIP (``ml.load_mtp`` is
    false by default, llama_model_default_params); every other architecture's loop stops at
    n_layer() (LLAMA_LOAD_LOCALS, src/llama-model.h) and never creates them, and its load then
    fails ("wrong number of tensors", llama_model_loader::done_getting_tensors)."""
    if not hparams.n_layer_nextn:
        return False
    layer = layer_index(tensor.name)
    return layer is not None and layer >= hparams.n_layer_main


def alloc_size(tensor: TensorInfo, buffer: str) -> int:
    """ggml_backend_buft_get_alloc_size: ggml_nbytes, plus for CUDA the quantized-row padding
    (ggml_backend_cuda_buffer_type_get_alloc_size, ggml-cuda.cu); AMX's packed layout. An RPC
    buffer asks its server (ggml_backend_rpc_buffer_type_get_alloc_size), and a CPU server
    answers ggml_nbytes."""
    if buffer == "AMX":
        return amx_alloc_size(tensor)
    size = tensor.n_bytes
    if is_cuda_device_buffer(buffer):
        size += cuda_row_padding(tensor.type_id, tensor.row_length)
    return size


def cuda_row_padding(type_id: int, ne0: int) -> int:
    """Extra bytes CUDA reserves after a quantized tensor whose rows are not a multiple of 512."""
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None or not ggml_type.is_quantized or ne0 % CUDA_MATRIX_ROW_PADDING == 0:
        return 0
    return row_bytes(type_id, CUDA_MATRIX_ROW_PADDING - ne0 % CUDA_MATRIX_ROW_PADDING)


def buffer_alignment(buffer: str) -> int:
    """CUDA's 128 for a CUDA device buffer; 32 for the host buffers and for an RPC server's
    CPU buffer type (rpc_server::get_alignment answers TENSOR_ALIGNMENT)."""
    return CUDA_ALIGNMENT if is_cuda_device_buffer(buffer) else CPU_ALIGNMENT


def model_buffers(placed: list[TensorPlacement]) -> list[BufferEstimate]:
    """One buffer per buffer type, printed in name order (ctx_map's strcmp comparator,
    llama-model-loader.h). CPU_Mapped spans the tensors' file range (get_mapping_range, one
    file); every other buffer sums PAD(alloc_size, alignment)
    (ggml_backend_alloc_ctx_tensors_from_buft_impl, ggml-alloc.c)."""
    by_buffer: dict[str, list[TensorPlacement]] = {}
    for item in placed:
        by_buffer.setdefault(item.buffer, []).append(item)
    buffers = []
    for name in sorted(by_buffer):
        items = by_buffer[name]
        if name == "CPU_Mapped":
            first = min(item.tensor.offset for item in items)
            last = max(item.tensor.offset + item.tensor.n_bytes for item in items)
            size = last - first
        else:
            alignment = buffer_alignment(name)
            size = sum(pad(alloc_size(item.tensor, name), alignment) for item in items)
        buffers.append(BufferEstimate(items[0].device, name, "model", size, True))
    return buffers

