"""The hyperparameters llama.cpp reads from a GGUF header, checked as its loader checks them.

Follows ``llama_model_base::load_hparams`` (src/llama-model.cpp), ``llama_model_loader::get_key``
/ ``get_key_or_arr`` (src/llama-model-loader.cpp: per-layer keys are a scalar or one value per
layer, uint32 each), ``LLAMA_MAX_LAYERS`` (src/llama-hparams.h) and each architecture's
sliding-window setup (``load_arch_hparams`` in src/models/*.cpp, ``llama_hparams::set_swa_pattern``
in src/llama-hparams.cpp). Shared by the memory model and ``scan``: a header llama.cpp's loader
would refuse is refused here, with a FormatError naming the file, the key and the value, before
any size is computed from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gguf_inspect.core.errors import FormatError
from gguf_inspect.core.model import ArrayValue, GGUFFile
from gguf_inspect.llamacpp.loader_keys import ARCH_REQUIRED, BASE_REQUIRED
from gguf_inspect.llamacpp.summary import vocab_size

# llama_model_loader::get_key<uint32_t>: the hyperparameter keys are uint32 in llama.cpp.
UINT32_MAX = (1 << 32) - 1


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
# Architectures whose load_arch_tensors creates no output head at all (src/models/bert.cpp and
# the other encoders): no LLM_TENSOR_OUTPUT, and no tied copy of token_embd either.
NO_OUTPUT_HEAD_ARCHS = frozenset({
    "bert", "jina-bert-v2", "jina-bert-v3", "nomic-bert", "nomic-bert-moe", "neo-bert",
    "eurobert", "modern-bert"})
# load_hparams (llama-model.cpp) reads {arch}.attention.causal (default true); these
# architectures' load_arch_hparams force it off (src/models/dream.cpp, llada.cpp, ...).
NON_CAUSAL_ARCHS = frozenset({"dream", "gemma-embedding", "llada", "llada-moe"})
# Hybrids whose recurrent layers are those without KV heads (is_recr_impl[il] = n_head_kv(il)
# == 0 in models/lfm2.cpp, lfm2moe.cpp, granite-hybrid.cpp, jamba.cpp, plamo2.cpp).
HYBRID_BY_KV_HEADS = frozenset({"lfm2", "lfm2moe", "granitehybrid", "jamba", "plamo2"})
# Hybrids whose recurrent layers have neither KV heads nor an FFN, and whose memory filters
# leave the FFN and MoE layers out of both caches (models/nemotron-h.cpp load_arch_hparams;
# llama_model::create_memory's filter_attn / filter_recr; nemotron_h_moe shares the file).
NEMOTRON_H_ARCHS = frozenset({"nemotron_h", "nemotron_h_moe"})
# The hybrids and recurrent models whose state the memory model sizes (recurrent_layers).
MODELLED_RECURRENT = (RECURRENT_ARCHS | HYBRID_BY_KV_HEADS | NEMOTRON_H_ARCHS
                      | {"falcon-h1", "qwen3next"})



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
    causal_attn: bool = True  # llama_hparams::causal_attn
    is_mla: bool = False  # llama_hparams::is_mla: the *_mla head lengths are both set
    is_recurrent: tuple[bool, ...] = ()  # llama_hparams::is_recr(il); () when none
    n_embd_r: int = 0  # llama_hparams::n_embd_r: recurrent state row (conv / token shift)
    n_embd_s: int = 0  # llama_hparams::n_embd_s: recurrent state row (ssm / wkv)

    @property
    def n_layer_main(self) -> int:
        """llama_hparams::n_layer(): the trunk, without the NextN/MTP blocks."""
        return self.n_layer - self.n_layer_nextn

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

    def kv_source(self, il: int) -> int:
        """The layer whose KV cache layer ``il`` reads: its own, or for a layer without one
        the last earlier layer of its kind (llama_model::create_memory's ``reuse`` for gemma3n
        and gemma4: n_layer_kv_from_start - (2 if SWA else 1))."""
        if self.has_kv(il):
            return il
        return self.n_layer_kv_from_start - (2 if self.is_swa[il] else 1)

    @property
    def any_swa(self) -> bool:
        return any(self.is_swa)


# src/llama-hparams.h: per-layer hyperparameters are fixed arrays of this many layers, and
# llama_model_loader::get_key_or_arr throws when block_count is larger.
LLAMA_MAX_LAYERS = 512
LLAMA_MAX_EXPERTS = 1024  # src/llama-hparams.h


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refuse(gguf: GGUFFile, key: str, value: object, why: str) -> FormatError:
    entry = gguf.metadata.get(key)
    return FormatError(f"{key} = {value}: {why}", path=gguf.path,
                       offset=entry.offset if entry is not None else None)


def _checked(gguf: GGUFFile, key: str, value: int) -> int:
    """A uint32 hyperparameter: llama.cpp's loader refuses the key when it is not one."""
    if not 0 <= value <= UINT32_MAX:
        raise _refuse(gguf, key, value, "llama.cpp reads this key as a uint32 "
                                        "(llama_model_loader::get_key) and refuses the model")
    return value


def uint32_key(gguf: GGUFFile, suffix: str) -> int | None:
    """``{arch}.{suffix}`` as an integer in uint32 range, None when absent or not an integer."""
    value = _int(gguf.arch_value(suffix))
    if value is None:
        return None
    return _checked(gguf, f"{gguf.architecture}.{suffix}", value)


PER_LAYER_ITEM_TYPES = frozenset({4, 5, 7})  # uint32, int32, bool (GGUF value type ids)


def _per_layer(gguf: GGUFFile, suffix: str, n_layer: int,
               default: tuple[int, ...]) -> tuple[int, ...]:
    """llama_model_loader::get_key_or_arr: a scalar for every layer, or one value per layer."""
    value = gguf.arch_value(suffix)
    if isinstance(value, ArrayValue):
        items = value.items if value.items is not None else ()
        key = f"{gguf.architecture}.{suffix}"
        if value.item_type not in PER_LAYER_ITEM_TYPES:
            # llama_model_loader::get_arr (src/llama-model-loader.cpp) takes bool, uint32 and
            # int32 items for a uint32 array and throws on any other type (a float32 NaN too).
            raise FormatError(f"{key} has wrong array element type {value.item_type_name}",
                              path=gguf.path, offset=gguf.metadata[key].offset, field=key)
        if value.count != n_layer:  # llama.cpp refuses the model the same way
            # the count, not the decoded items: an array longer than the reader decodes
            # eagerly has no items, and was reported as "0 entries"
            raise FormatError(f"{value.count} entries where llama.cpp expects one per layer "
                              f"({n_layer})", path=gguf.path, offset=gguf.metadata[key].offset,
                              field=key)
        key = f"{gguf.architecture}.{suffix}"
        return tuple(_checked(gguf, key, int(item)) for item in items)
    scalar = uint32_key(gguf, suffix)
    return (scalar,) * n_layer if scalar is not None else default


def _swa_layers(gguf: GGUFFile, arch: str, n_layer: int,
                n_nextn: int) -> tuple[tuple[bool, ...], int]:
    """Which layers use the sliding window, and the window: the arch's ``load_arch_hparams``
    plus ``llama_model_base::load_swa_pattern`` and ``llama_hparams::set_swa_pattern``."""
    window = uint32_key(gguf, "attention.sliding_window")
    pattern = gguf.arch_value("attention.sliding_window_pattern")
    none = (False,) * n_layer
    if arch in SWA_ARRAY_ARCHS:
        key = f"{arch}.attention.sliding_window_pattern"
        if not isinstance(pattern, ArrayValue):
            # models/gemma4.cpp load_arch_hparams: ml.get_arr(SLIDING_WINDOW_PATTERN, ...) is
            # required, so llama.cpp refuses a header without the per-layer array
            raise FormatError("missing: llama.cpp requires this per-layer array for "
                              f"{arch} (get_arr in load_arch_hparams)", path=gguf.path, field=key)
        if pattern.count > LLAMA_MAX_LAYERS:  # get_arr into std::array<_, LLAMA_MAX_LAYERS>
            raise FormatError(f"array length {pattern.count} exceeds max {LLAMA_MAX_LAYERS}: "
                              "llama.cpp refuses the model (llama_model_loader::get_arr)",
                              path=gguf.path, offset=gguf.metadata[key].offset, field=key)
        # (so the array is always decoded, EAGER_ARRAY_LIMIT being larger: the flags below)
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
    n_pattern = uint32_key(gguf, "attention.sliding_window_pattern")
    n_pattern = n_pattern if n_pattern is not None else rule.n_pattern
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
    arch = gguf.architecture
    if not arch:  # llama_model_create: "unknown model architecture: ''" (src/llama-model.cpp)
        raise FormatError("missing or empty: llama.cpp refuses an unknown model architecture",
                          path=gguf.path, field="general.architecture")
    n_layer = _int(gguf.arch_value("block_count"))
    n_embd = _int(gguf.arch_value("embedding_length"))
    for suffix, value in (("block_count", n_layer), ("embedding_length", n_embd)):
        if not value or value < 0:
            raise FormatError("missing, zero or negative: llama.cpp needs it to lay out memory",
                              path=gguf.path, field=f"{arch}.{suffix}")
    if n_layer > LLAMA_MAX_LAYERS:  # llama.cpp refuses it too; and it bounds our per-layer work
        raise FormatError(f"block_count {n_layer} is more than llama.cpp's LLAMA_MAX_LAYERS "
                          f"({LLAMA_MAX_LAYERS})", path=gguf.path, field=f"{arch}.block_count")
    n_embd = _checked(gguf, f"{arch}.embedding_length", n_embd)
    _refuse_missing_keys(gguf, base_required(arch))
    _refuse_expert_counts(gguf, arch, n_layer)
    n_nextn = uint32_key(gguf, "nextn_predict_layers") or 0
    if n_nextn > n_layer:  # load_hparams: GGML_ASSERT(n_layer_nextn <= n_layer_all)
        raise _refuse(gguf, f"{arch}.nextn_predict_layers", n_nextn,
                      f"more than block_count ({n_layer}): llama.cpp refuses the model")
    n_head = _per_layer(gguf, "attention.head_count", n_layer, (0,) * n_layer)
    n_head_kv = _per_layer(gguf, "attention.head_count_kv", n_layer, n_head)
    head0 = n_embd // n_head[0] if n_head[0] else 0
    head_k_full = uint32_key(gguf, "attention.key_length") or head0 if n_head[0] else 0
    head_v_full = uint32_key(gguf, "attention.value_length") or head0 if n_head[0] else 0
    head_k_swa = uint32_key(gguf, "attention.key_length_swa") or head_k_full
    head_v_swa = uint32_key(gguf, "attention.value_length_swa") or head_v_full
    lite = arch == "deepseek2" and _deepseek2_lite(gguf, n_layer - n_nextn)
    _refuse_missing_keys(gguf, arch_required(arch, lite))
    is_swa, n_swa = _swa_layers(gguf, arch, n_layer, n_nextn)
    kv_from_start = -1
    if arch == "gemma3n":  # models/gemma3n.cpp: later layers reuse the KV of layers 18/19
        kv_from_start = 20
    elif arch == "gemma4":  # models/gemma4.cpp: the last shared_kv_layers reuse earlier KV
        kv_from_start = n_layer - (uint32_key(gguf, "attention.shared_kv_layers") or 0)
    return Hyperparameters(
        arch=arch, n_layer=n_layer, n_layer_nextn=n_nextn, n_embd=n_embd,
        n_vocab=_vocab_size(gguf),
        n_ctx_train=uint32_key(gguf, "context_length"),
        n_head=n_head, n_head_kv=n_head_kv,
        n_ff=_per_layer(gguf, "feed_forward_length", n_layer, (0,) * n_layer),
        head_k=tuple(head_k_swa if s else head_k_full for s in is_swa),
        head_v=tuple(head_v_swa if s else head_v_full for s in is_swa),
        is_swa=is_swa, n_swa=n_swa, n_layer_kv_from_start=kv_from_start,
        causal_attn=_causal(gguf, arch), is_mla=bool(
            uint32_key(gguf, "attention.key_length_mla")
            and uint32_key(gguf, "attention.value_length_mla")),
        **_recurrent_state(gguf, arch, n_layer, n_nextn, n_head_kv))


def base_required(arch: str) -> tuple[str, ...]:
    """The keys llama_model_base::load_hparams requires of every architecture (loader_keys)."""
    return tuple(key.replace("%s", arch) for key in BASE_REQUIRED)


def arch_required(arch: str, deepseek2_lite: bool) -> tuple[str, ...]:
    """The keys the architecture's load_arch_hparams requires (loader_keys), and deepseek2's Q
    LoRA rank, which models/deepseek2.cpp reads only ``if (!is_lite)``."""
    required = ARCH_REQUIRED.get(arch, ())
    if arch == "deepseek2" and not deepseek2_lite:
        required += ("%s.attention.q_lora_rank",)
    return tuple(key.replace("%s", arch) for key in required)


def _refuse_missing_keys(gguf: GGUFFile, required: tuple[str, ...]) -> None:
    """llama_model_loader::get_key throws "key not found in model" for a required key that the
    header lacks."""
    for key in required:
        if key not in gguf.metadata:
            raise FormatError("missing: llama.cpp's loader requires this key and refuses the "
                              "model without it (\"key not found in model\")", path=gguf.path,
                              field=key)


def _deepseek2_lite(gguf: GGUFFile, n_layer_main: int) -> bool:
    """models/deepseek2.cpp load_arch_hparams: is_lite, by n_layer() and n_vocab."""
    n_vocab = uint32_key(gguf, "vocab_size")  # else the token list's length (get_arr_n)
    if n_vocab is None:
        tokens = gguf.value("tokenizer.ggml.tokens")
        n_vocab = tokens.count if isinstance(tokens, ArrayValue) else 0
    return n_layer_main in (26, 27) or (n_layer_main == 48 and n_vocab == 128256)


def _refuse_expert_counts(gguf: GGUFFile, arch: str, n_layer: int) -> None:
    """The GGML_ASSERTs of llama_model_base::load_hparams on the expert counts: llama.cpp aborts
    the process on a header that breaks one, so refuse it first."""
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = max(_per_layer(gguf, "expert_used_count", n_layer, (0,)), default=0)
    groups = uint32_key(gguf, "expert_group_count") or 0
    group_used = uint32_key(gguf, "expert_group_used_count") or 0
    broken = [
        (n_expert > LLAMA_MAX_EXPERTS, "expert_count", f"more than {LLAMA_MAX_EXPERTS}"),
        (used > n_expert, "expert_used_count", f"more than expert_count ({n_expert})"),
        (n_expert > 0 and used == 0, "expert_used_count", "zero or missing with experts"),
        (n_expert > 0 and groups >= n_expert, "expert_group_count", "not below expert_count"),
        (n_expert > 0 and groups > 1 and n_expert % groups != 0, "expert_group_count",
         "does not divide expert_count"),
        (n_expert > 0 and groups > 1 and not 0 < group_used < groups,
         "expert_group_used_count", "not between 0 and expert_group_count"),
        (n_expert == 0 and groups != 0, "expert_group_count", "set without experts")]
    for fails, suffix, why in broken:
        if fails:
            key = f"{arch}.{suffix}"
            raise _refuse(gguf, key, gguf.metadata[key].value if key in gguf.metadata
                          else "(missing)", f"{why}: llama.cpp aborts loading the model "
                          "(GGML_ASSERT in llama_model_base::load_hparams)")


def _causal(gguf: GGUFFile, arch: str) -> bool:
    """load_hparams: ``{arch}.attention.causal`` (default true), forced off for some archs."""
    value = gguf.arch_value("attention.causal")
    return arch not in NON_CAUSAL_ARCHS and (value if isinstance(value, bool) else True)


def _recurrent_layers(gguf: GGUFFile, arch: str, n_layer: int, n_nextn: int,
                      n_head_kv: tuple[int, ...]) -> tuple[bool, ...]:
    """llama_hparams::is_recr_impl as each architecture's load_arch_hparams fills it."""
    n_main = n_layer - n_nextn
    if arch in RECURRENT_ARCHS or arch == "falcon-h1":
        return (True,) * n_layer
    if arch in HYBRID_BY_KV_HEADS:
        return tuple(heads == 0 for heads in n_head_kv)
    n_ff = _per_layer(gguf, "feed_forward_length", n_layer, (0,) * n_layer)
    if arch in NEMOTRON_H_ARCHS:  # models/nemotron-h.cpp
        return tuple(il < n_main and n_head_kv[il] == 0 and n_ff[il] == 0
                     for il in range(n_layer))
    if arch == "qwen3next":  # models/qwen3next.cpp: an array, or every interval-th is attention
        flags = gguf.arch_value("attention.recurrent_layers")
        if isinstance(flags, ArrayValue) and flags.items is not None:
            return tuple(bool(item) for item in flags.items)[:n_layer]
        interval = uint32_key(gguf, "full_attention_interval") or 4
        return tuple(il < n_main and (il + 1) % interval != 0 for il in range(n_layer))
    return ()


def _recurrent_state(gguf: GGUFFile, arch: str, n_layer: int, n_nextn: int,
                     n_head_kv: tuple[int, ...]) -> dict[str, Any]:
    """The recurrent layers and the widths of their state rows: llama_hparams::n_embd_r and
    n_embd_s (llama-hparams.cpp) for RWKV (token shift, wkv), LFM2 (short conv) and Mamba."""
    flags = _recurrent_layers(gguf, arch, n_layer, n_nextn, n_head_kv)
    if not flags:
        return {}
    n_embd = uint32_key(gguf, "embedding_length") or 0
    wkv_head = uint32_key(gguf, "wkv.head_size") or 0
    l_cache = uint32_key(gguf, "shortconv.l_cache") or 0
    d_conv = uint32_key(gguf, "ssm.conv_kernel") or 0
    d_inner = uint32_key(gguf, "ssm.inner_size") or 0
    d_state = uint32_key(gguf, "ssm.state_size") or 0
    n_group = uint32_key(gguf, "ssm.group_count") or 0
    if wkv_head:
        token_shift = uint32_key(gguf, "token_shift_count")
        n_embd_r = (2 if token_shift is None else token_shift) * n_embd
        n_embd_s = n_embd * wkv_head
    elif l_cache:
        n_embd_r, n_embd_s = n_embd * (l_cache - 1), d_state * d_inner
    else:
        n_embd_r = max(d_conv - 1, 0) * (d_inner + 2 * n_group * d_state)
        n_embd_s = d_state * d_inner
    return {"is_recurrent": flags, "n_embd_r": n_embd_r, "n_embd_s": n_embd_s}



def _vocab_size(gguf: GGUFFile) -> int:
    """n_vocab (llama_vocab: a uint32 token count), 0 when the header does not say."""
    uint32_key(gguf, "vocab_size")  # the declared size, refused when out of range
    n_vocab = vocab_size(gguf) or 0
    if n_vocab > UINT32_MAX:
        raise _refuse(gguf, "tokenizer.ggml.tokens", f"{n_vocab} tokens",
                      "llama.cpp counts tokens in a uint32 and refuses the vocabulary")
    return n_vocab
