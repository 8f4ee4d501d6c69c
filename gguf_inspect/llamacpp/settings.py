"""llama.cpp's context and model parameters: one defaults table and the one settings object.

Every parameter the memory model and a live load take is a row of ``SETTINGS``: its field name,
gguf-inspect's option, llama.cpp's own flag (common/arg.cpp, where it has one), the default and
where that default comes from (``llama_context_default_params`` in src/llama-context.cpp,
``llama_model_default_params`` in src/llama-model.cpp), and the help text. The CLI's help, the
assumption lines ``vram`` prints and the defaults of ``LlamaSettings`` all read this table.

``resolve_settings`` turns what was given on a command line into a checked ``LlamaSettings`` for
``vram`` and ``runtime`` alike; the value rules (flash attention on|off|auto, cache type names,
a quantized V cache needs flash attention) live here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from gguf_inspect.core.constants import ggml_type_from_name

FLASH_ATTN_VALUES = ("on", "off", "auto")
SPLIT_MODES = ("none", "layer", "row")  # enum llama_split_mode (LLAMA_SPLIT_MODE_*)
# llm_add_n_cpu_ffn_overrides with LLM_FFN_EXPS_REGEX (common/common.h): one pattern per layer
N_CPU_MOE_PATTERN = r"blk\.{layer}\.ffn_(up|down|gate|gate_up)_(ch|)exps"


# The cache types llama.cpp's tools take for -ctk / -ctv (common/arg.cpp kv_cache_types).
KV_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


def cache_type_name(value: str) -> str:
    """A KV cache type llama.cpp takes (common/arg.cpp kv_cache_type_from_str), by its ggml
    name; ValueError listing them otherwise."""
    if value.lower() not in KV_CACHE_TYPES:
        raise ValueError(f"unsupported cache type {value!r}: llama.cpp takes "
                         f"{', '.join(KV_CACHE_TYPES)}")
    return ggml_type_from_name(value).name


def check_flash_attn(value: str) -> str:
    """``on``, ``off`` or ``auto`` (enum llama_flash_attn_type); ValueError otherwise."""
    if value not in FLASH_ATTN_VALUES:
        raise ValueError(f"expected on, off or auto, got {value!r}")
    return value


def check_split_mode(value: str) -> str:
    """``none``, ``layer`` or ``row`` (--split-mode); ValueError otherwise."""
    if value not in SPLIT_MODES:
        raise ValueError(f"expected none, layer or row, got {value!r}")
    return value


def check_tensor_split(value: str) -> str:
    """``3,1``: non-negative shares, one per GPU, not all zero (parsed as common/arg.cpp
    does: split on , or /)."""
    shares = parse_tensor_split(value)
    if not shares or sum(shares) <= 0:
        raise ValueError(f"expected shares like 3,1, got {value!r}")
    return ",".join(f"{share:g}" for share in shares)


def parse_tensor_split(value: str) -> tuple[float, ...]:
    """The shares of ``--tensor-split`` (an empty string: none given); ValueError."""
    if not value.strip():
        return ()
    try:
        shares = tuple(float(part) for part in re.split(r"[,/]", value))
    except ValueError:
        raise ValueError(f"expected shares like 3,1, got {value!r}") from None
    if any(share < 0 or share != share for share in shares):
        raise ValueError(f"shares cannot be negative: {value!r}")
    return shares


def parse_overrides(value: str) -> tuple[tuple[str, str], ...]:
    """``PATTERN=BUFFER,...`` as parse_tensor_buffer_overrides (common/arg.cpp) splits it:
    on commas, then at the first ``=``. The buffer is a device's buffer type name (CPU, CUDA0
    ...); the pattern is a regex searched in the tensor name."""
    overrides = []
    for item in (part for part in value.split(",") if part):
        pattern, equals, buffer = item.partition("=")
        if not equals:
            raise ValueError(f"expected PATTERN=BUFFER, got {item!r}")
        if buffer != "CPU" and re.fullmatch(r"CUDA\d+|RPC\d+\[[^\]]+\]", buffer) is None:
            raise ValueError(f"unknown buffer type {buffer!r} (CPU, CUDA0, CUDA1 ..., "
                             "RPC0[host:port] with --rpc)")
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression: {pattern!r} ({error})") from None
        overrides.append((pattern, buffer))
    return tuple(overrides)


def rpc_servers(value: str) -> tuple[str, ...]:
    """``--rpc host:port,...`` split on commas as add_rpc_devices (common/arg.cpp) splits it;
    empty entries are dropped. An empty string: no RPC server."""
    return tuple(server.strip() for server in value.split(",") if server.strip())


def check_rpc(value: str) -> str:
    """Each server a ``host:port`` (parse_endpoint, ggml-rpc.cpp: the host before the first
    colon, a port number after it); ValueError otherwise."""
    servers = rpc_servers(value)
    if not servers:
        raise ValueError("no RPC servers specified")
    for server in servers:
        host, colon, port = server.partition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {server!r}")
    return ",".join(servers)


def check_overrides(value: str) -> str:
    parse_overrides(value)
    return value


def all_overrides(settings: "LlamaSettings") -> tuple[tuple[str, str], ...]:
    """The tensor buffer overrides in the order llama.cpp tries them (the first match wins,
    llama_model_loader::create_tensor): ``-ot`` and ``--n-cpu-moe`` in command-line order; here
    ``-ot`` first, then one CPU pattern per layer below ``--n-cpu-moe``."""
    moe = tuple((N_CPU_MOE_PATTERN.format(layer=il), "CPU") for il in range(settings.n_cpu_moe))
    return parse_overrides(settings.override_tensor) + moe


@dataclass(frozen=True)
class Setting:
    """One row of the defaults table."""

    name: str  # the LlamaSettings field
    option: str  # gguf-inspect's option ("--x/--no-x" for a switch)
    llama_flag: str | None  # llama.cpp's spelling (common/arg.cpp), None when it has none
    default: Any
    source: str  # where the default comes from
    help: str
    shown: str | None = None  # how the default reads in an assumption line (else the value)
    help_default: str | None = None  # how it reads in the help text (else the value)
    minimum: int | None = None  # the smallest value llama.cpp takes
    metavar: str | None = None
    check: Callable[[str], str] | None = None  # normalises a given value; ValueError if bad
    # False for the deployment options (--n-cpu-moe, -ot ...): a line only when they are set
    assumed_by_default: bool = True
    # llama.cpp's short spellings (common/arg.cpp), offered as the same option; "-kvu/-no-kvu"
    # for an on/off pair
    aliases: tuple[str, ...] = ()
    # llama-server's own default (common_params, common/common.h) where it differs from
    # ``default`` (llama_context_default_params'): what a printed llama-server command can omit
    server_default: Any = None

    @property
    def llama_server_default(self) -> Any:
        return self.default if self.server_default is None else self.server_default

    @property
    def off_switch(self) -> bool:
        """A flag that turns a default-on setting off (``--no-mmap``)."""
        return self.default is True and "/" not in self.option

    def help_text(self) -> str:
        """The option's help: the row's text and its default."""
        if self.off_switch:
            return f"{self.help}."
        return f"{self.help} (default {self.help_default or self.default})."

    def assumption(self) -> str:
        """The line ``vram`` prints when the default was filled in."""
        shown = self.shown if self.shown is not None else self.default
        return f"{self.name} = {shown} ({self.source})"

    def given_line(self, value: Any) -> str:
        """The assumption line of a deployment option that was set."""
        return f"{self.name} = {value} (as given: {self.llama_flag or self.option})"


# In the order vram lists its assumptions.
SETTINGS: tuple[Setting, ...] = (
    Setting("n_ctx", "--ctx", "-c, --ctx-size", 4096,
            "gguf-inspect's audit default (the plan shows the trained maximum)",
            "Context length, 0 for the trained length", minimum=0, aliases=("-c",)),
    Setting("n_gpu_layers", "--ngl", "-ngl, --n-gpu-layers", -1,
            "llama_model_default_params: all layers",
            "Layers to offload, the output head counting as one (-1 all, as "
            "llama_model_default_params)", shown="all (-1)", aliases=("-ngl",)),
    Setting("n_batch", "--batch", "-b, --batch-size", 2048, "llama_context_default_params",
            "n_batch", minimum=1, aliases=("-b",)),
    Setting("n_ubatch", "--ubatch", "-ub, --ubatch-size", 512, "llama_context_default_params",
            "n_ubatch", minimum=1, aliases=("-ub",)),
    Setting("n_parallel", "--parallel", "-np, --parallel", 1,
            "llama_context_default_params n_seq_max", "Sequences (n_seq_max)", minimum=1,
            aliases=("-np",)),
    Setting("cache_type_k", "--cache-type-k", "-ctk, --cache-type-k", "f16",
            "llama_context_default_params type_k", f"K cache type: {', '.join(KV_CACHE_TYPES)}",
            metavar="TYPE", check=cache_type_name, aliases=("-ctk",)),
    Setting("cache_type_v", "--cache-type-v", "-ctv, --cache-type-v", "f16",
            "llama_context_default_params type_v", "V cache type, as K", metavar="TYPE",
            check=cache_type_name, aliases=("-ctv",)),
    Setting("flash_attn", "--flash-attn", "-fa, --flash-attn", "auto",
            "llama_context_default_params flash_attn_type", "Flash attention",
            metavar="on|off|auto", check=check_flash_attn, aliases=("-fa",)),
    Setting("swa_full", "--swa-full/--no-swa-full", "--swa-full", True,
            "llama_context_default_params", "Full-size sliding-window cache", help_default="on",
            server_default=False),  # common/common.h:574: swa_full = false
    Setting("kv_unified", "--kv-unified/--no-kv-unified", "-kvu, --kv-unified", False,
            "llama_context_default_params",
            "One KV buffer shared by all sequences, as llama.cpp's --kv-unified",
            help_default="off", aliases=("-kvu/-no-kvu",)),
    Setting("use_mmap", "--no-mmap", "--no-mmap", True,
            "llama_model_default_params (load_mode auto: mmap)", "Read the weights, no mmap"),
    # Deployment options (common/arg.cpp): listed as assumptions only when given.
    Setting("n_cpu_moe", "--n-cpu-moe", "-ncmoe, --n-cpu-moe", 0, "common_params",
            "Keep the MoE expert weights of the first N layers in host memory", minimum=0,
            assumed_by_default=False, aliases=("-ncmoe",)),
    Setting("override_tensor", "--override-tensor", "-ot, --override-tensor", "",
            "common_params tensor_buft_overrides",
            "PATTERN=BUFFER[,...]: tensors whose name matches the regex go to BUFFER "
            "(CPU, CUDA0, CUDA1 ..., RPC0[host:port] with --rpc)", help_default="none",
            metavar="PATTERN=BUFFER,...",
            check=check_overrides, assumed_by_default=False, aliases=("-ot",)),
    # The devices are the RPC servers' (one CPU device each); --gpu then gives each server's
    # free memory, in the same order (what llama.cpp splits the layers by).
    Setting("rpc", "--rpc", "--rpc", "", "common_params (no RPC server)",
            "Comma-separated RPC servers (host:port), each serving one CPU device, that take the "
            "offloaded layers as llama.cpp's --rpc; --gpu gives each server's free memory",
            help_default="none", metavar="SERVERS", check=check_rpc, assumed_by_default=False),
    Setting("tensor_split", "--tensor-split", "-ts, --tensor-split", "",
            "llama_model_default_params tensor_split (split by free memory)",
            "Share of the layers per GPU, e.g. 3,1", help_default="by GPU memory",
            metavar="N0,N1,...", check=check_tensor_split, assumed_by_default=False,
            aliases=("-ts",)),
    Setting("split_mode", "--split-mode", "-sm, --split-mode", "layer",
            "llama_model_default_params split_mode", "How layers spread over GPUs",
            metavar="none|layer|row", check=check_split_mode, assumed_by_default=False,
            aliases=("-sm",)),
    Setting("main_gpu", "--main-gpu", "-mg, --main-gpu", 0,
            "llama_model_default_params main_gpu",
            "The GPU used with --split-mode none (and for row-split results)", minimum=0,
            assumed_by_default=False, aliases=("-mg",)),
    Setting("offload_kqv", "--no-kv-offload", "-nkvo, --no-kv-offload", True,
            "llama_context_default_params offload_kqv",
            "Keep the KV cache in host memory", assumed_by_default=False, aliases=("-nkvo",)),
    Setting("op_offload", "--no-op-offload", "--no-op-offload", True,
            "llama_context_default_params op_offload",
            "Run no large-batch matmul of a host weight on a GPU (ggml_backend_sched "
            "op_offload off)", assumed_by_default=False),
    Setting("cpu_repack", "--no-repack", "-nr, --no-repack", True,
            "common_params (weight repacking enabled)",
            "Keep host weights in their file layout: no CPU_REPACK or AMX buffers "
            "(llama_model_params.use_extra_bufts off)", assumed_by_default=False,
            aliases=("-nr",)),
    Setting("embeddings", "--embeddings/--no-embeddings", "--embedding, --embeddings", False,
            "llama_context_default_params embeddings",
            "An embedding server: the output buffer also holds n_embd floats per output",
            help_default="off", assumed_by_default=False, aliases=("--embedding",)),
)
SETTING_BY_NAME: dict[str, Setting] = {row.name: row for row in SETTINGS}


def _default(name: str) -> Any:
    return SETTING_BY_NAME[name].default


@dataclass(frozen=True)
class LlamaSettings:
    """What llama.cpp is asked for: the table's parameters, then what the machine adds.

    The table's defaults are llama.cpp's own except ``n_ctx`` (4096, the audit's default;
    llama.cpp's is 512). ``n_ctx`` None or 0 means the model's trained context."""

    n_ctx: int | None = _default("n_ctx")
    n_batch: int = _default("n_batch")
    n_ubatch: int = _default("n_ubatch")
    n_parallel: int = _default("n_parallel")  # n_seq_max
    kv_unified: bool = _default("kv_unified")
    cache_type_k: str = _default("cache_type_k")  # ggml type names
    cache_type_v: str = _default("cache_type_v")
    flash_attn: str = _default("flash_attn")  # "on" | "off" | "auto"
    swa_full: bool = _default("swa_full")
    use_mmap: bool = _default("use_mmap")
    n_gpu_layers: int = _default("n_gpu_layers")  # -1 = all
    n_cpu_moe: int = _default("n_cpu_moe")
    override_tensor: str = _default("override_tensor")  # PATTERN=BUFFER,...
    rpc: str = _default("rpc")  # "host:port,..."; "" uses the build's own GPUs
    tensor_split: str = _default("tensor_split")  # "3,1"; "" splits by GPU memory
    split_mode: str = _default("split_mode")  # none | layer | row
    main_gpu: int = _default("main_gpu")
    offload_kqv: bool = _default("offload_kqv")  # False: --no-kv-offload
    op_offload: bool = _default("op_offload")  # False: --no-op-offload
    embeddings: bool = _default("embeddings")  # adds n_embd floats per output
    # CPU_REPACK / AMX buffers on CPU-only builds (x86 AVX2 rules); False: --no-repack (a
    # saved log's buffers say it too)
    cpu_repack: bool = _default("cpu_repack")
    # Not command-line parameters: what the machine (or a saved log) says.
    gpu_capacities: tuple[int, ...] = ()  # bytes per GPU; () means CPU only
    cpu_avx512: bool | None = None  # None: read /proc/cpuinfo (Q2_K repacks only with AVX512)
    cpu_amx: bool | None = None  # None: read /proc/cpuinfo (AMX-INT8 + AVX512-VNNI: AMX buffers)


def flash_attn_enabled(settings: LlamaSettings) -> bool:
    """``auto`` resolves to on when every layer's device runs FLASH_ATTN_EXT
    (llama_context::resolve_fused_ops): the CPU and CUDA backends both do."""
    return check_flash_attn(settings.flash_attn) != "off"


def context_refusal(settings: LlamaSettings, head_k: tuple[int, ...] = (),
                    head_v: tuple[int, ...] = (), is_mla: bool = False) -> str | None:
    """Why llama_init_from_model (llama-context.cpp:3835-3870) refuses this context, None when
    it does not, in its order: an MLA model with different K and V cache types; a quantized V
    cache with flash attention off (auto turns it on); with flash attention not off, a
    quantized K (V) cache whose block does not divide some layer's K (V) head size
    (``head_k``/``head_v``: n_embd_head_k(il)/n_embd_head_v(il); () without a model)."""
    type_k = ggml_type_from_name(settings.cache_type_k)
    type_v = ggml_type_from_name(settings.cache_type_v)
    if is_mla and type_k != type_v:
        return (f"an MLA model needs one K and V cache type ({type_k.name} and {type_v.name} "
                "given)")
    if type_v.is_quantized and not flash_attn_enabled(settings):
        return "a quantized V cache needs flash attention"
    if not flash_attn_enabled(settings):
        return None
    for cache, cache_type, heads in (("K", type_k, head_k), ("V", type_v, head_v)):
        head = next((head for head in heads if head % cache_type.block_size), None)
        if cache_type.is_quantized and head is not None:
            return (f"the {cache} cache type {cache_type.name} (blocks of "
                    f"{cache_type.block_size}) does not divide the {cache} head size {head}")
    return None


def given_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The table's parameters a command line set (None: not given), checked and normalised."""
    given = {name: value for name, value in values.items() if value is not None}
    unknown = set(given) - set(SETTING_BY_NAME)
    if unknown:
        raise ValueError(f"not a llama.cpp setting: {', '.join(sorted(unknown))}")
    for name, value in given.items():
        check = SETTING_BY_NAME[name].check
        if check is not None:
            given[name] = check(str(value))
    return given


def resolve_settings(values: Mapping[str, Any], base: LlamaSettings | None = None,
                     ) -> tuple[LlamaSettings, tuple[str, ...]]:
    """``base`` (the table's defaults) with what was given laid over it, and one assumption
    line per table row that was not given (a deployment option: that was given), in table
    order."""
    given = given_settings(values)
    assumed = tuple(row.given_line(given[row.name]) if row.name in given else row.assumption()
                    for row in SETTINGS if row.assumed_by_default != (row.name in given))
    return replace(base or LlamaSettings(), **given), assumed
