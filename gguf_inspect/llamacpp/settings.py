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

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from gguf_inspect.core.constants import ggml_type_from_name

FLASH_ATTN_VALUES = ("on", "off", "auto")


def cache_type_name(value: str) -> str:
    """A KV cache type llama.cpp knows (f16, q8_0, q4_0 ...), by its ggml name; ValueError."""
    return ggml_type_from_name(value).name


def check_flash_attn(value: str) -> str:
    """``on``, ``off`` or ``auto`` (enum llama_flash_attn_type); ValueError otherwise."""
    if value not in FLASH_ATTN_VALUES:
        raise ValueError(f"expected on, off or auto, got {value!r}")
    return value


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


# In the order vram lists its assumptions.
SETTINGS: tuple[Setting, ...] = (
    Setting("n_ctx", "--ctx", "-c, --ctx-size", 4096,
            "gguf-inspect's audit default (the plan shows the trained maximum)",
            "Context length, 0 for the trained length", minimum=0),
    Setting("n_gpu_layers", "--ngl", "-ngl, --n-gpu-layers", -1,
            "llama_model_default_params: all layers",
            "Layers to offload, the output head counting as one (-1 all, as "
            "llama_model_default_params)", shown="all (-1)"),
    Setting("n_batch", "--batch", "-b, --batch-size", 2048, "llama_context_default_params",
            "n_batch", minimum=1),
    Setting("n_ubatch", "--ubatch", "-ub, --ubatch-size", 512, "llama_context_default_params",
            "n_ubatch", minimum=1),
    Setting("n_parallel", "--parallel", "-np, --parallel", 1,
            "llama_context_default_params n_seq_max", "Sequences (n_seq_max)", minimum=1),
    Setting("cache_type_k", "--cache-type-k", "-ctk, --cache-type-k", "f16",
            "llama_context_default_params type_k", "K cache type",
            check=cache_type_name),
    Setting("cache_type_v", "--cache-type-v", "-ctv, --cache-type-v", "f16",
            "llama_context_default_params type_v", "V cache type",
            check=cache_type_name),
    Setting("flash_attn", "--flash-attn", "-fa, --flash-attn", "auto",
            "llama_context_default_params flash_attn_type", "Flash attention",
            metavar="on|off|auto", check=check_flash_attn),
    Setting("swa_full", "--swa-full/--no-swa-full", "--swa-full", True,
            "llama_context_default_params", "Full-size sliding-window cache", help_default="on"),
    Setting("kv_unified", "--kv-unified/--no-kv-unified", "-kvu, --kv-unified", False,
            "llama_context_default_params",
            "One KV buffer shared by all sequences, as llama.cpp's --kv-unified",
            help_default="off"),
    Setting("use_mmap", "--no-mmap", "--no-mmap", True,
            "llama_model_default_params (load_mode auto: mmap)", "Read the weights, no mmap"),
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
    # Not command-line parameters: what the machine (or a saved log) says.
    gpu_capacities: tuple[int, ...] = ()  # bytes per GPU; () means CPU only
    offload_kqv: bool = True  # llama_context_default_params
    cpu_repack: bool = True  # CPU_REPACK buffers (x86 AVX2 rules) on CPU-only builds
    cpu_avx512: bool | None = None  # None: read /proc/cpuinfo (Q2_K repacks only with AVX512)
    cpu_amx: bool | None = None  # None: read /proc/cpuinfo (AMX-INT8 + AVX512-VNNI: AMX buffers)
    embeddings: bool = False  # llama_context_params.embeddings: adds n_embd floats per output


def flash_attn_enabled(settings: LlamaSettings) -> bool:
    """``auto`` resolves to on when every layer's device runs FLASH_ATTN_EXT
    (llama_context::resolve_fused_ops): the CPU and CUDA backends both do."""
    return check_flash_attn(settings.flash_attn) != "off"


def context_refusal(settings: LlamaSettings) -> str | None:
    """Why llama.cpp refuses this context, None when it does not: llama_context::llama_context
    throws "quantized V cache was requested, but this requires Flash Attention"."""
    quantized_v = ggml_type_from_name(settings.cache_type_v).is_quantized
    if quantized_v and not flash_attn_enabled(settings):
        return "a quantized V cache needs flash attention"
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
    line per table row that was not given, in table order."""
    given = given_settings(values)
    assumed = tuple(row.assumption() for row in SETTINGS if row.name not in given)
    return replace(base or LlamaSettings(), **given), assumed
