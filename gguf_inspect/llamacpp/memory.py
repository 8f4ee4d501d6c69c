"""The llama.cpp memory model: which buffers llama.cpp allocates for a GGUF and how big each is.

Shared by ``gguf-inspect vram`` (will it fit?) and ``gguf-inspect runtime`` (prove it against the
real log). Every rule is read from the llama.cpp source vendored in llama-cpp-python 0.3.36
(``vendor/llama.cpp``); each function names the file and function it follows. Model, KV-cache
and output buffers are exact; the compute buffer (the graph allocator's peak) has no closed form
and is an estimate, flagged ``exact=False``.

Nothing here touches bytes or formats text: input is a parsed ``GGUFFile`` and a
``MemoryConfig``; output is a ``MemoryPrediction``.
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from gguf_inspect.llamacpp.summary import vocab_size
from gguf_inspect.core.constants import GGML_TYPES, ggml_type_from_name, row_bytes
from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import ArrayValue, GGUFFile, TensorInfo

# ---- public contract (shared with the runtime comparison) -------------------------------------


@dataclass(frozen=True)
class MemoryConfig:
    """What llama.cpp is asked for. Defaults follow ``llama_context_default_params`` and
    ``llama_model_default_params`` (llama-context.cpp / llama-model.cpp) except ``n_ctx``
    (4096, the audit's default) and ``n_gpu_layers`` (0, llama-cpp-python's ``Llama`` default)."""

    n_ctx: int | None = 4096  # None or 0 -> the model's trained context
    n_batch: int = 2048
    n_ubatch: int = 512
    n_parallel: int = 1  # n_seq_max
    kv_unified: bool = False
    cache_type_k: str = "f16"  # ggml type names
    cache_type_v: str = "f16"
    flash_attn: str = "auto"  # "on" | "off" | "auto"
    swa_full: bool = True
    use_mmap: bool = True
    n_gpu_layers: int = 0  # -1 = all
    gpu_capacities: tuple[int, ...] = ()  # bytes per GPU; () means CPU only
    offload_kqv: bool = True
    cpu_repack: bool = True  # CPU_REPACK buffers (x86 AVX2 rules) on CPU-only builds
    cpu_avx512: bool | None = None  # None: read /proc/cpuinfo (Q2_K repacks only with AVX512)
    cpu_amx: bool | None = None  # None: read /proc/cpuinfo (AMX-INT8 + AVX512-VNNI: AMX buffers)
    embeddings: bool = False  # llama_context_params.embeddings: adds n_embd floats per output


@dataclass(frozen=True)
class BufferEstimate:
    device: str  # "host", "gpu0", "gpu1", ...
    buffer: str  # llama.cpp's buffer name as the log prints it: "CPU_Mapped", "CUDA0", ...
    kind: str  # "model" | "kv" | "output" | "compute" | "recurrent"
    n_bytes: int
    exact: bool  # False for estimates (compute buffer)


@dataclass(frozen=True)
class KVCacheEstimate:
    name: str  # "" for the (non-SWA) main cache, "SWA" for the sliding-window cache
    cells: int
    layers: int
    n_seqs: int  # streams (1 when unified)
    type_k: str
    type_v: str
    k_bytes: int
    v_bytes: int

    @property
    def n_bytes(self) -> int:
        return self.k_bytes + self.v_bytes


@dataclass(frozen=True)
class ResolvedContext:
    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    n_seq_max: int
    flash_attn: bool
    kv_unified: bool
    swa_full: bool
    type_k: str
    type_v: str
    n_ctx_train: int | None


@dataclass(frozen=True)
class MemoryPrediction:
    context: ResolvedContext
    buffers: tuple[BufferEstimate, ...]
    kv_caches: tuple[KVCacheEstimate, ...]
    notes: tuple[str, ...]  # assumptions and "not modelled" lines
    # Set when memory llama.cpp allocates is left out (recurrent state): the buffers are then a
    # lower bound, and a fit can be refuted but never confirmed.
    unmodelled: str | None = None

    def device_total(self, device: str, kind: str | None = None) -> int:
        return sum(b.n_bytes for b in self.buffers
                   if b.device == device and (kind is None or b.kind == kind))

    @property
    def devices(self) -> tuple[str, ...]:
        """"host" first, then the GPUs in index order, each once."""
        seen = {b.device for b in self.buffers} | {"host"}
        return tuple(sorted(seen, key=lambda d: (d != "host", int(d[3:]) if d != "host" else 0)))


# ---- constants read from the source -----------------------------------------------------------

CPU_ALIGNMENT = 32  # TENSOR_ALIGNMENT, ggml-impl.h; CPU and CPU_REPACK buffer types
CUDA_ALIGNMENT = 128  # ggml_backend_cuda_buffer_type_get_alignment, ggml-cuda.cu
CUDA_MATRIX_ROW_PADDING = 512  # MATRIX_ROW_PADDING, ggml-cuda/common.cuh
CTX_PAD = 256  # GGML_PAD(n_ctx, 256) in llama_context::llama_context, llama-context.cpp
HOST = "host"

# llm_arch_is_recurrent / llm_arch_is_hybrid (llama-arch.cpp)
RECURRENT_ARCHS = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})
HYBRID_ARCHS = frozenset({
    "jamba", "falcon-h1", "plamo2", "granitehybrid", "lfm2", "lfm2moe", "nemotron_h",
    "nemotron_h_moe", "qwen3next", "kimi-linear", "bailingmoe3", "kimi-k3", "glm5-next",
    "qwen35", "qwen35moe", "qwen4exp", "deepseek4", "minimax-01"})
# llama_model::create_memory (llama-model.cpp): these make no memory module at all.
NO_MEMORY_ARCHS = frozenset({
    "bert", "jina-bert-v2", "jina-bert-v3", "nomic-bert", "nomic-bert-moe", "neo-bert",
    "eurobert", "wavtokenizer-dec", "modern-bert", "gemma-embedding", "dream", "llada",
    "llada-moe", "rnd1"})


@dataclass(frozen=True)
class SwaRule:
    """One architecture's sliding-window setup from its ``load_arch_hparams`` (src/models/*.cpp).

    ``n_pattern``/``dense_first`` feed ``llama_hparams::set_swa_pattern``; ``default_window`` is
    the window assumed when the key is absent (None: the key is required); ``needs_window`` means
    SWA is on only when ``{arch}.attention.sliding_window`` is present and > 0."""

    n_pattern: int
    dense_first: bool = False
    default_window: int | None = None
    needs_window: bool = False
    min_layers: int | None = None  # exaone4: SWA only for the 64-layer (32B) model


SWA_RULES: dict[str, SwaRule] = {
    "gemma2": SwaRule(2, default_window=4096),  # models/gemma2.cpp
    "gemma3": SwaRule(6, needs_window=True),  # models/gemma3.cpp
    "gemma3n": SwaRule(5),  # models/gemma3n.cpp
    "gemma-embedding": SwaRule(6),  # models/gemma-embedding.cpp
    "cohere2": SwaRule(4),  # models/cohere2.cpp
    "cohere2moe": SwaRule(4, dense_first=True),  # models/cohere2moe.cpp
    "gpt-oss": SwaRule(2),  # models/openai-moe.cpp
    "llama4": SwaRule(4, default_window=8192),  # models/llama4.cpp (chunked attention)
    "olmo2": SwaRule(4, needs_window=True),  # models/olmo2.cpp
    "exaone4": SwaRule(4, default_window=4096, min_layers=64),  # models/exaone4.cpp
    "exaone-moe": SwaRule(4, default_window=128),  # models/exaone-moe.cpp
    "plamo3": SwaRule(8, needs_window=True),  # models/plamo3.cpp
    "afmoe": SwaRule(4, needs_window=True),  # models/afmoe.cpp
    "mellum": SwaRule(4, needs_window=True),  # models/mellum.cpp
    "smallthinker": SwaRule(4, dense_first=True, default_window=4096, needs_window=True),
    "laguna": SwaRule(4, dense_first=True, needs_window=True),  # models/laguna.cpp
    "muse-glimmer": SwaRule(4),  # models/muse-glimmer.cpp
    "modern-bert": SwaRule(3, dense_first=True),  # models/modern-bert.cpp
}
# Graphs with gemma's extra norms (src/models/gemma2.cpp, gemma3.cpp) for the compute estimate.
GEMMA_GRAPH_ARCHS = frozenset({"gemma2", "gemma3"})
# Architectures whose window comes only from the per-layer array (models/gemma4.cpp).
SWA_ARRAY_ARCHS = frozenset({"gemma4"})

# Tensor roles from LLM_TENSOR_INFOS (llama-arch.cpp): the input layer, the output layer, and
# the ops that decide CPU_REPACK eligibility (only MUL_MAT on 2-D and MUL_MAT_ID on 3-D weights).
INPUT_TENSORS = frozenset({"token_embd", "position_embd", "token_types", "per_layer_token_embd"})
OUTPUT_TENSORS = frozenset({
    "output", "output_norm", "cls", "cls.output", "cls.norm", "dense_2", "dense_3",
    "token_embd_norm", "altup_proj", "altup_unembd_proj", "nextn.post_projection"})
NOT_MATMUL_SUFFIXES = ("ple_conv1d", "attn_compressor_ape", "attn_sinks", "ffn.act", "ssm_conv1d",
                       "ssm_a", "time_mix_first", "attn_rel_b", "conv1d", "conv1", "conv2", "dw",
                       "shortconv.conv", "indexer_compressor_ape", "ffn_gate_tid2eid",
                       "nextn.embed_tokens", "rope_freqs", "rope_factors_long",
                       "rope_factors_short")
MATMUL_ID_SUFFIXES = ("_exps", "_chexps")
_BLOCK = re.compile(r"^(?:enc\.|dec\.)?blk\.(\d+)\.")

# ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type, x86 branches: type -> (needs AVX512)
X86_REPACK_TYPES = {"q4_0": False, "q4_K": False, "iq4_nl": False, "mxfp4": False, "q2_K": True}


def pad(value: int, alignment: int) -> int:
    """GGML_PAD (ggml.h): round up to a multiple of ``alignment``."""
    return (value + alignment - 1) // alignment * alignment


def float32(value: float) -> float:
    """Round to IEEE single precision, as the C++ ``float`` arithmetic does."""
    return struct.unpack("f", struct.pack("f", value))[0]


@lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str]:
    """This machine's CPU flags (/proc/cpuinfo), which a native ggml build compiles in."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def host_has_avx512() -> bool:
    """Whether this machine's CPU has AVX512F."""
    return "avx512f" in host_cpu_flags()


def host_has_amx() -> bool:
    """Whether a native build here has the AMX buffer type: ggml-cpu/amx/amx.cpp compiles it
    only with __AMX_INT8__ and __AVX512VNNI__ (-march=native on a CPU with both flags)."""
    return {"amx_int8", "avx512_vnni"} <= host_cpu_flags()


# ---- hyperparameters (llama_model_base::load_hparams, llama-model.cpp) ------------------------


@dataclass(frozen=True)
class Hyperparameters:
    """The subset of ``llama_hparams`` the memory model needs, per layer where llama.cpp is."""

    arch: str
    n_layer: int  # n_layer_all (block_count)
    n_layer_nextn: int
    n_embd: int
    n_vocab: int
    n_ctx_train: int | None
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    n_ff: tuple[int, ...]
    head_k: tuple[int, ...]  # n_embd_head_k(il)
    head_v: tuple[int, ...]
    is_swa: tuple[bool, ...]
    n_swa: int
    n_layer_kv_from_start: int  # -1: every layer has its own KV

    @property
    def n_embd_k_gqa(self) -> tuple[int, ...]:
        """llama_hparams::n_embd_k_gqa(il) = n_embd_head_k(il) * n_head_kv(il)."""
        return tuple(k * h for k, h in zip(self.head_k, self.n_head_kv))

    @property
    def n_embd_v_gqa(self) -> tuple[int, ...]:
        return tuple(v * h for v, h in zip(self.head_v, self.n_head_kv))

    def has_kv(self, il: int) -> bool:
        """llama_hparams::has_kv (llama-hparams.cpp)."""
        return self.n_layer_kv_from_start < 0 or il < self.n_layer_kv_from_start

    @property
    def any_swa(self) -> bool:
        return any(self.is_swa)


# src/llama-hparams.h: per-layer hyperparameters are fixed arrays of this many layers, and
# llama_model_loader::get_key_or_arr throws when block_count is larger.
LLAMA_MAX_LAYERS = 512


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _per_layer(gguf: GGUFFile, suffix: str, n_layer: int,
               default: tuple[int, ...]) -> tuple[int, ...]:
    """llama_model_loader::get_key_or_arr: a scalar for every layer, or one value per layer."""
    value = gguf.arch_value(suffix)
    if isinstance(value, ArrayValue):
        items = value.items if value.items is not None else ()
        if len(items) != n_layer:  # llama.cpp refuses the model the same way
            key = f"{gguf.architecture}.{suffix}"
            raise FormatError(f"{len(items)} entries where llama.cpp expects one per layer "
                              f"({n_layer})", path=gguf.path, offset=gguf.metadata[key].offset,
                              field=key)
        return tuple(int(item) for item in items)
    scalar = _int(value)
    return (scalar,) * n_layer if scalar is not None else default


def _swa_layers(gguf: GGUFFile, arch: str, n_layer: int,
                n_nextn: int) -> tuple[tuple[bool, ...], int]:
    """Which layers use the sliding window, and the window: the arch's ``load_arch_hparams``
    plus ``llama_model_base::load_swa_pattern`` and ``llama_hparams::set_swa_pattern``."""
    window = _int(gguf.arch_value("attention.sliding_window"))
    pattern = gguf.arch_value("attention.sliding_window_pattern")
    none = (False,) * n_layer
    if arch in SWA_ARRAY_ARCHS:
        rule: SwaRule | None = SwaRule(0)
    else:
        rule = SWA_RULES.get(arch)
    if rule is None:
        return none, 0
    if rule.min_layers is not None and n_layer - n_nextn != rule.min_layers:
        return none, 0
    if rule.needs_window and not window:
        return none, 0
    window = window if window is not None else rule.default_window
    if not window:
        return none, 0
    if isinstance(pattern, ArrayValue) and pattern.items is not None:
        flags = tuple(bool(item) for item in pattern.items)
        return (flags + none)[:n_layer], window
    n_pattern = _int(pattern) if _int(pattern) is not None else rule.n_pattern
    n_main = n_layer - n_nextn
    flags = []
    for il in range(n_layer):
        if il >= n_main:
            flags.append(False)
        elif rule.dense_first:
            flags.append(n_pattern == 0 or il % n_pattern != 0)
        else:
            flags.append(n_pattern == 0 or il % n_pattern < n_pattern - 1)
    return tuple(flags), window


def read_hyperparameters(gguf: GGUFFile) -> Hyperparameters:
    """The attention shape per layer, as ``llama_model_base::load_hparams`` fills it."""
    arch = gguf.architecture or ""
    n_layer = _int(gguf.arch_value("block_count"))
    n_embd = _int(gguf.arch_value("embedding_length"))
    for suffix, value in (("block_count", n_layer), ("embedding_length", n_embd)):
        if not value or value < 0:
            raise FormatError("missing, zero or negative: llama.cpp needs it to lay out memory",
                              path=gguf.path, field=f"{arch}.{suffix}")
    if n_layer > LLAMA_MAX_LAYERS:  # llama.cpp refuses it too; and it bounds our per-layer work
        raise FormatError(f"block_count {n_layer} is more than llama.cpp's LLAMA_MAX_LAYERS "
                          f"({LLAMA_MAX_LAYERS})", path=gguf.path, field=f"{arch}.block_count")
    n_nextn = _int(gguf.arch_value("nextn_predict_layers")) or 0
    n_head = _per_layer(gguf, "attention.head_count", n_layer, (0,) * n_layer)
    n_head_kv = _per_layer(gguf, "attention.head_count_kv", n_layer, n_head)
    head0 = n_embd // n_head[0] if n_head[0] else 0
    head_k_full = _int(gguf.arch_value("attention.key_length")) or head0 if n_head[0] else 0
    head_v_full = _int(gguf.arch_value("attention.value_length")) or head0 if n_head[0] else 0
    head_k_swa = _int(gguf.arch_value("attention.key_length_swa")) or head_k_full
    head_v_swa = _int(gguf.arch_value("attention.value_length_swa")) or head_v_full
    is_swa, n_swa = _swa_layers(gguf, arch, n_layer, n_nextn)
    kv_from_start = -1
    if arch == "gemma3n":  # models/gemma3n.cpp: later layers reuse the KV of layers 18/19
        kv_from_start = 20
    elif arch == "gemma4":  # models/gemma4.cpp: the last shared_kv_layers reuse earlier KV
        kv_from_start = n_layer - (_int(gguf.arch_value("attention.shared_kv_layers")) or 0)
    return Hyperparameters(
        arch=arch, n_layer=n_layer, n_layer_nextn=n_nextn, n_embd=n_embd,
        n_vocab=vocab_size(gguf) or 0,
        n_ctx_train=_int(gguf.arch_value("context_length")),
        n_head=n_head, n_head_kv=n_head_kv,
        n_ff=_per_layer(gguf, "feed_forward_length", n_layer, (0,) * n_layer),
        head_k=tuple(head_k_swa if s else head_k_full for s in is_swa),
        head_v=tuple(head_v_swa if s else head_v_full for s in is_swa),
        is_swa=is_swa, n_swa=n_swa, n_layer_kv_from_start=kv_from_start)


# ---- context parameters (llama_context::llama_context, llama-context.cpp) ---------------------


def resolve_context(hparams: Hyperparameters, config: MemoryConfig) -> ResolvedContext:
    """n_ctx, n_ctx_seq, n_batch, n_ubatch as the llama_context constructor derives them."""
    n_ctx_train = hparams.n_ctx_train
    requested = config.n_ctx or n_ctx_train
    if not requested:  # llama_init_from_model refuses the same way
        raise FormatError("n_ctx is 0 and the model has no context_length",
                          field="context_length")
    n_seq_max = max(1, config.n_parallel)
    n_ctx = pad(requested, CTX_PAD)
    if config.kv_unified:
        n_ctx_seq = n_ctx
    else:
        n_ctx_seq = pad(n_ctx // n_seq_max, CTX_PAD)
        n_ctx = n_ctx_seq * n_seq_max  # "n_ctx is not divisible by n_seq_max - rounding"
    # n_batch is capped by the requested (unpadded) n_ctx: cparams.n_ctx is padded only later
    n_batch = min(requested, config.n_batch)
    n_ubatch = min(n_batch, config.n_ubatch or config.n_batch)
    type_k = ggml_type_from_name(config.cache_type_k).name
    type_v = ggml_type_from_name(config.cache_type_v).name
    return ResolvedContext(
        n_ctx=n_ctx, n_ctx_seq=n_ctx_seq, n_batch=n_batch, n_ubatch=n_ubatch,
        n_seq_max=n_seq_max, flash_attn=_flash_attn_enabled(config), kv_unified=config.kv_unified,
        swa_full=config.swa_full, type_k=type_k, type_v=type_v, n_ctx_train=n_ctx_train)


def _flash_attn_enabled(config: MemoryConfig) -> bool:
    """``auto`` resolves to on when every layer's device runs FLASH_ATTN_EXT
    (llama_context::resolve_fused_ops): the CPU and CUDA backends both do."""
    if config.flash_attn not in ("on", "off", "auto"):
        raise ValueError(f"flash_attn must be on, off or auto, not {config.flash_attn!r}")
    return config.flash_attn != "off"


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


def place_layers(n_layer: int, n_gpu_layers: int, gpu_capacities: tuple[int, ...]) -> Placement:
    """Layers ``il >= i_gpu_start`` go to a GPU, chosen by ``upper_bound`` over the cumulative
    split normalised by free memory (load_tensors's ``get_layer_buft_list``); the output layer
    is pseudo-layer ``n_layer``, so it is the first thing offloaded."""
    if not gpu_capacities:
        return Placement((HOST,) * (n_layer + 1))
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


def _split_points(capacities: tuple[int, ...]) -> list[float]:
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


def _base_name(name: str) -> str:
    stem = _BLOCK.sub("", name)
    for suffix in (".weight", ".bias"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _layer_of(tensor: TensorInfo, n_layer: int) -> int:
    """The layer index whose device holds the tensor: -1 input, n_layer output, else the block."""
    match = _BLOCK.match(tensor.name)
    if match:
        return int(match.group(1))
    base = _base_name(tensor.name)
    if base in INPUT_TENSORS:
        return -1
    if base in OUTPUT_TENSORS:
        return n_layer
    return 0  # e.g. rope_freqs: created for layer 0 (and shared by the others)


def _matmul_dims(tensor: TensorInfo) -> int | None:
    """The n_dims a repack buffer accepts for this tensor's op, None when it is not a matmul."""
    base = _base_name(tensor.name)
    if tensor.name.endswith(".bias") or base in INPUT_TENSORS:
        return None
    if any(base.endswith(suffix) for suffix in NOT_MATMUL_SUFFIXES):
        return None
    if base.endswith("_norm") or base.endswith(".norm"):
        return None
    return 3 if any(base.endswith(suffix) for suffix in MATMUL_ID_SUFFIXES) else 2


def _n_dims(tensor: TensorInfo) -> int:
    """ggml_n_dims: trailing dimensions of size 1 do not count."""
    dims = len(tensor.ne)
    while dims > 1 and tensor.ne[dims - 1] == 1:
        dims -= 1
    return max(dims, 1)  # a 0-dim tensor counts as 1-D, as in ggml


# ggml::cpu::amx::extra_buffer_type::supports_op (ggml-cpu/amx/amx.cpp): the row length a
# MUL_MAT weight's type needs in the AMX buffer (TILE_K = 32, QK_K = 256; f16 is kept unpacked).
AMX_ROW_MULTIPLE = {"q4_0": 32, "q4_1": 32, "q8_0": 32, "q4_K": 256, "q5_K": 256, "q6_K": 256,
                    "iq4_xs": 256, "f16": 16}
AMX_OUTPUT_MULTIPLE = 2 * 16  # op->ne[0] % (TILE_N * 2): the weight's ne[1]
# get_row_size<TB, BLOCK_K> (ggml-cpu/amx/mmq.cpp): bytes the packed layout adds per block.
AMX_EXTRA_PER_BLOCK = {"q8_0": 4, "q4_K": 4, "q5_K": 4, "iq4_xs": 2}


def amx_supports(tensor: TensorInfo, matmul_dims: int | None) -> bool:
    """The AMX buffer takes a MUL_MAT weight (not MUL_MAT_ID) of an AMX type whose ne[0] is a
    multiple of the type's tile and whose ne[1] is a multiple of 32."""
    multiple = AMX_ROW_MULTIPLE.get(tensor.type_name)
    if matmul_dims != 2 or multiple is None or len(tensor.ne) < 2:
        return False
    return tensor.dim(0) % multiple == 0 and tensor.dim(1) % AMX_OUTPUT_MULTIPLE == 0


def amx_alloc_size(tensor: TensorInfo) -> int:
    """ggml_backend_amx_get_alloc_size (ggml-cpu/amx/mmq.cpp): for a type with AMX kernels,
    ne[1] packed rows of get_row_size(ne[0]) bytes; f16 (no packing) its ggml_nbytes."""
    extra = AMX_EXTRA_PER_BLOCK.get(tensor.type_name, 0)
    if tensor.type_name == "f16":
        return tensor.n_bytes
    ggml_type = GGML_TYPES[tensor.type_id]
    blocks = tensor.dim(0) // ggml_type.block_size
    return tensor.dim(1) * (blocks * ggml_type.type_size + blocks * extra)


def repacks(tensor: TensorInfo, matmul_dims: int | None, avx512: bool) -> bool:
    """ggml_repack_get_optimal_repack_type (ggml-cpu/repack.cpp, x86) plus the extra buffer's
    supports_op: MUL_MAT on a 2-D weight or MUL_MAT_ID on a 3-D one, a repackable type, and
    ne[1] % 8 == 0."""
    if matmul_dims is None or _n_dims(tensor) != matmul_dims or len(tensor.ne) < 2:
        return False
    needs_avx512 = X86_REPACK_TYPES.get(tensor.type_name)
    if needs_avx512 is None or (needs_avx512 and not avx512):
        return False
    return tensor.dim(1) % 8 == 0


def place_tensors(gguf: GGUFFile, hparams: Hyperparameters, placement: Placement,
                  config: MemoryConfig) -> list[TensorPlacement]:
    """The buffer type of every weight (llama_model_loader::create_tensor's ``buft_for_tensor``).

    CPU-only build: the CPU list is [CPU_REPACK, CPU] (make_cpu_buft_list); a GPU build puts the
    first GPU's host buffer (CUDA_Host) first, which with mmap is swapped for plain CPU ("avoid
    using a host buffer when using mmap"), so repacking never happens there. A tied embedding
    (no output.weight) is requested again as the output head (TENSOR_DUPLICATED): it costs a
    second copy only when that lands in a different buffer type."""
    avx512 = host_has_avx512() if config.cpu_avx512 is None else config.cpu_avx512
    amx = host_has_amx() if config.cpu_amx is None else config.cpu_amx
    gpu_build = bool(config.gpu_capacities)
    # use_extra_bufts: ggml_backend_cpu_get_extra_buffer_types lists AMX before CPU_REPACK.
    use_repack = config.cpu_repack and not gpu_build

    def buffer_for(tensor: TensorInfo, device: str, matmul_dims: int | None) -> str:
        if device != HOST:
            return f"CUDA{device[3:]}"
        if use_repack and amx and amx_supports(tensor, matmul_dims):
            return "AMX"
        if use_repack and repacks(tensor, matmul_dims, avx512):
            return "CPU_REPACK"
        if gpu_build and not config.use_mmap:
            return "CUDA_Host"
        return "CPU_Mapped" if config.use_mmap else "CPU"

    placed = []
    for tensor in gguf.tensors:
        layer = _layer_of(tensor, hparams.n_layer)
        device = HOST if layer < 0 else placement.device_of_layer(min(layer, hparams.n_layer))
        buffer = buffer_for(tensor, device, _matmul_dims(tensor))
        placed.append(TensorPlacement(tensor, device, buffer))
    embedding = gguf.tensor("token_embd.weight")
    if embedding is not None and gguf.tensor("output.weight") is None:
        device = placement.output_device
        buffer = buffer_for(embedding, device, 2)
        input_buffer = next(p.buffer for p in placed if p.tensor is embedding)
        if buffer != input_buffer:
            placed.append(TensorPlacement(embedding, device, buffer, duplicate=True))
    return placed


def _alloc_size(tensor: TensorInfo, buffer: str) -> int:
    """ggml_backend_buft_get_alloc_size: ggml_nbytes, plus for CUDA the quantized-row padding
    (ggml_backend_cuda_buffer_type_get_alloc_size, ggml-cuda.cu); AMX's packed layout."""
    if buffer == "AMX":
        return amx_alloc_size(tensor)
    size = tensor.n_bytes
    if buffer.startswith("CUDA") and buffer != "CUDA_Host":
        size += cuda_row_padding(tensor.type_id, tensor.row_length)
    return size


def cuda_row_padding(type_id: int, ne0: int) -> int:
    """Extra bytes CUDA reserves after a quantized tensor whose rows are not a multiple of 512."""
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None or not ggml_type.is_quantized or ne0 % CUDA_MATRIX_ROW_PADDING == 0:
        return 0
    return row_bytes(type_id, CUDA_MATRIX_ROW_PADDING - ne0 % CUDA_MATRIX_ROW_PADDING)


def buffer_alignment(buffer: str) -> int:
    return CUDA_ALIGNMENT if buffer.startswith("CUDA") and buffer != "CUDA_Host" else CPU_ALIGNMENT


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
            size = sum(pad(_alloc_size(item.tensor, name), alignment) for item in items)
        buffers.append(BufferEstimate(items[0].device, name, "model", size, True))
    return buffers


# ---- KV cache (llama_kv_cache::llama_kv_cache, llama-kv-cache*.cpp) ---------------------------


def kv_caches(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
              config: MemoryConfig) -> tuple[list[KVCacheEstimate], list[BufferEstimate]]:
    """The KV caches and their buffers. iSWA models get two caches, non-SWA first
    (llama_kv_cache_iswa): SWA cells = PAD(min(n_ctx_seq, n_swa * (unified ? n_seq_max : 1)
    + n_ubatch), 256), or full size with swa_full. Per layer K is [n_embd_k_gqa(il), cells,
    n_stream]; without flash attention V uses the widest n_embd_v_gqa (TAG_V_CACHE_VARIABLE)."""
    cells = context.n_ctx_seq
    groups: list[tuple[str, int, Callable[[int], bool]]]
    if hparams.any_swa:
        swa_cells = cells if context.swa_full else pad(
            min(cells, hparams.n_swa * (context.n_seq_max if context.kv_unified else 1)
                + context.n_ubatch), CTX_PAD)
        groups = [("", cells, lambda il: not hparams.is_swa[il]),
                  ("SWA", swa_cells, lambda il: hparams.is_swa[il])]
    else:
        groups = [("", cells, lambda il: True)]
    n_stream = 1 if context.kv_unified else context.n_seq_max
    type_k = ggml_type_from_name(context.type_k)
    type_v = ggml_type_from_name(context.type_v)
    v_trans = not context.flash_attn
    v_widths = hparams.n_embd_v_gqa
    n_main = hparams.n_layer - hparams.n_layer_nextn
    caches, buffers = [], []
    for name, size, keep in groups:
        k_total = v_total = layers = 0
        per_buffer: dict[tuple[str, str], int] = {}
        for il in range(hparams.n_layer):
            if not hparams.has_kv(il) or not keep(il):
                continue
            if hparams.n_layer_nextn and il >= n_main:
                continue  # create_memory's filter: the NextN/MTP block has no KV in the trunk
            k_width = hparams.n_embd_k_gqa[il]
            v_width = max(v_widths) if v_trans else v_widths[il]
            k_bytes = row_bytes(type_k.type_id, k_width) * size * n_stream
            v_bytes = row_bytes(type_v.type_id, v_width) * size * n_stream
            device = placement.device_of_layer(il) if config.offload_kqv else HOST
            buffer = "CPU" if device == HOST else f"CUDA{device[3:]}"
            alignment = buffer_alignment(buffer)
            k_alloc = k_bytes + (cuda_row_padding(type_k.type_id, k_width) if device != HOST else 0)
            v_alloc = v_bytes + (cuda_row_padding(type_v.type_id, v_width) if device != HOST else 0)
            key = (device, buffer)
            padded = pad(k_alloc, alignment) + pad(v_alloc, alignment)
            per_buffer[key] = per_buffer.get(key, 0) + padded
            k_total += k_bytes
            v_total += v_bytes
            layers += 1
        caches.append(KVCacheEstimate(name, size, layers, n_stream, type_k.name, type_v.name,
                                      k_total, v_total))
        # each cache allocates its own buffers, one per buffer type in name order
        buffers += [BufferEstimate(device, buffer, "kv", n_bytes, True)
                    for (device, buffer), n_bytes in sorted(per_buffer.items(),
                                                           key=lambda item: item[0][1])]
    return caches, buffers


# ---- output buffer (llama_context::output_reserve, llama-context.cpp) -------------------------


def output_buffer(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
                  config: MemoryConfig) -> BufferEstimate:
    """At init: ``output_reserve(n_seq_max)`` floats for n_vocab logits (+ n_embd embeddings
    when requested) per output, in the output device's host buffer (CUDA_Host) or CPU."""
    n_outputs = context.n_seq_max
    floats = hparams.n_vocab * n_outputs + (hparams.n_embd * n_outputs if config.embeddings else 0)
    on_gpu = placement.output_device != HOST
    return BufferEstimate(HOST, "CUDA_Host" if on_gpu else "CPU", "output", 4 * floats, True)


# ---- compute buffer (sched_reserve, llama-context.cpp): an estimate ---------------------------


def rotation_size(cache_type: str, head_sizes: tuple[int, ...], largest: bool) -> int:
    """The Hadamard rotation llama.cpp applies around a quantized cache (llama_kv_cache's
    attn_rot_k / attn_rot_v and build_input_k_rot / _v_rot, llama-kv-cache.cpp): only when every
    layer has the same head size and it is a multiple of 64. K uses the largest power of two
    (from 64) dividing the head size, V always 64. 0 when there is none."""
    heads = set(head_sizes)
    if not ggml_type_from_name(cache_type).is_quantized or len(heads) != 1:
        return 0
    head = heads.pop()
    if head % 64:
        return 0
    size = 64
    while largest and head % (size * 2) == 0:
        size *= 2
    return size


def compute_buffers(hparams: Hyperparameters, context: ResolvedContext, placement: Placement,
                    caches: list[KVCacheEstimate]) -> list[BufferEstimate]:
    """The graph allocator's peak for the worst-case ubatch (sched_reserve: n_tokens =
    min(n_ctx, n_ubatch), every token an output), simulated by ``compute_graph``: an estimate.
    With GPUs each GPU holding layers gets one such buffer (CUDA<i>), and the host keeps a
    CUDA_Host buffer for the graph inputs and the token rows gathered on the CPU."""
    from gguf_inspect.llamacpp.compute_graph import (
        GraphShape,
        estimate_compute_bytes,
        estimate_split_compute_bytes,
    )

    n_tokens = min(context.n_ctx, context.n_ubatch)
    cells = {cache.name: cache.cells for cache in caches}
    main = cells.get("", context.n_ctx_seq)
    n_kv = tuple(cells.get("SWA", main) if swa else main for swa in hparams.is_swa)
    shape = GraphShape(
        n_tokens=n_tokens, n_outputs=n_tokens, n_embd=hparams.n_embd, n_ff=hparams.n_ff,
        n_head=hparams.n_head, n_head_kv=hparams.n_head_kv, head_k=hparams.head_k,
        head_v=hparams.head_v, n_vocab=hparams.n_vocab, n_kv=n_kv, is_swa=hparams.is_swa,
        n_stream=1 if context.kv_unified else context.n_seq_max, n_seqs=context.n_seq_max,
        flash_attn=context.flash_attn, gemma=hparams.arch in GEMMA_GRAPH_ARCHS,
        v_width_max=max(hparams.n_embd_v_gqa, default=0),
        k_rot=rotation_size(context.type_k, hparams.head_k, largest=True),
        v_rot=rotation_size(context.type_v, hparams.head_v, largest=False))
    gpus = sorted({d for d in placement.layer_device if d != HOST})
    if not gpus:
        return [BufferEstimate(HOST, "CPU", "compute",
                               estimate_compute_bytes(shape, CPU_ALIGNMENT), False)]
    on_gpu, host_part = estimate_split_compute_bytes(shape, CUDA_ALIGNMENT, CPU_ALIGNMENT)
    buffers = [BufferEstimate(gpu, f"CUDA{gpu[3:]}", "compute", on_gpu, False) for gpu in gpus]
    buffers.append(BufferEstimate(HOST, "CUDA_Host", "compute", host_part, False))
    return buffers


# ---- the whole prediction ---------------------------------------------------------------------


def predict_memory(gguf: GGUFFile, config: MemoryConfig) -> MemoryPrediction:
    """Every buffer llama.cpp would allocate for this model under ``config``."""
    hparams = read_hyperparameters(gguf)
    context = resolve_context(hparams, config)
    placement = place_layers(hparams.n_layer, config.n_gpu_layers, config.gpu_capacities)
    notes = _notes(hparams, context, config)
    buffers = model_buffers(place_tensors(gguf, hparams, placement, config))
    caches: list[KVCacheEstimate] = []
    unmodelled = None
    if hparams.arch in RECURRENT_ARCHS or hparams.arch in HYBRID_ARCHS:
        unmodelled = (f"{hparams.arch} keeps recurrent state (llama-memory-recurrent.cpp): "
                      "not modelled, KV cache and state left out")
        notes.append(unmodelled)
    elif hparams.arch in NO_MEMORY_ARCHS:
        notes.append(f"{hparams.arch} has no KV cache (llama_model::create_memory)")
    else:
        caches, kv_buffers = kv_caches(hparams, context, placement, config)
        buffers += kv_buffers
    buffers.append(output_buffer(hparams, context, placement, config))
    buffers += compute_buffers(hparams, context, placement, caches)
    return MemoryPrediction(context, tuple(buffers), tuple(caches), tuple(notes), unmodelled)


def _notes(hparams: Hyperparameters, context: ResolvedContext, config: MemoryConfig) -> list[str]:
    notes = ["compute buffer is an estimate of the graph allocator's peak (not exact)"]
    if not context.flash_attn and ggml_type_from_name(context.type_v).is_quantized:
        notes.append("a quantized V cache needs flash attention: llama.cpp refuses this context")
    if config.flash_attn == "auto":
        notes.append("flash_attn auto resolved to on (the CPU and CUDA backends support it)")
    if hparams.arch in ("gemma3n", "gemma4"):
        notes.append("layers that reuse another layer's KV cache hold none of their own")
    if config.gpu_capacities:
        notes.append("GPU buffers follow the CUDA backend's rules (128-byte alignment, "
                     "quantized rows padded to 512); other backends differ")
        notes.append("each GPU holding layers is given the whole graph's compute estimate "
                     "(an upper bound when layers are split); the CUDA context itself "
                     "(a few hundred MiB) is not counted: use --headroom")
        notes.append("with layers left on the host, llama.cpp may still run their large-batch "
                     "matmuls on the GPU (op_offload); that extra compute buffer is not modelled")
    return notes
