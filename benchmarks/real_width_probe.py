"""The memory model at real widths: header-true, data-sparse twins of deployed architectures
(their real hidden sizes, head layouts, expert counts and vocabularies, but 2-6 blocks), each
loaded in llama.cpp through llama-cpp-python on this CPU at issue 13's four configurations, with
every exact quantity and the compute estimate compared (``gguf-inspect runtime``'s comparison).

The zoo (fixtures/zoo/) proves the rules at tiny widths; this shows the same errors hold where
buffers are large, alignment and fragmentation matter less and vocabularies dominate the head.
Tensor data is a hole in a sparse file (zeros: nothing is computed at load), so each twin takes
a few MB of disk whatever its apparent size; files go to a temporary folder, removed after.

    PYTHONPATH=. python benchmarks/real_width_probe.py [--only llama31-8b ...] > table.md

Needs llama-cpp-python. Prints one Markdown table: model x configuration, the compute estimate's
error, and whether every exact row (model, KV cache, RS, output buffers, model facts) matched.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from gguf_inspect.commands.runtime import compare_runtime  # noqa: E402
from gguf_inspect.reports.runtime import ESTIMATE, MATCH  # noqa: E402


def _load_zoo() -> Any:
    """fixtures/zoo.py (a script, not a package): its metadata typing and vocabulary are the
    ones the twins share with the zoo."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo", ROOT / "fixtures" / "zoo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["zoo"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ZOO = _load_zoo()

Q = gguf.GGMLQuantizationType
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ctx 1000, parallel 2, FA off": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "off"},
    "ctx 1000, parallel 2, FA on": {"n_ctx": 1000, "n_parallel": 2, "flash_attn": "on"},
    "parallel 8, no swa_full": {"n_parallel": 8, "swa_full": False},
}
# tensors stored f32 whatever the file type (norms, SSM parameters, routers, MLA's k_b/v_b,
# which the CPU backend multiplies only as floats)
F32_PARTS = ("norm.weight", "ssm_conv1d", "ssm_a", "ssm_d", "ssm_dt.bias", "gate_inp",
             "exp_probs_b", ".bias", "attn_k_b", "attn_v_b", "sinks", "_lerp")


class Twin:
    """One architecture at real widths: ``{arch}.*`` keys and tensors (ggml ne)."""

    def __init__(self, stem: str, arch: str, n_vocab: int, **keys: Any) -> None:
        self.stem, self.arch, self.n_vocab, self.keys = stem, arch, n_vocab, keys
        self.tensors: dict[str, tuple[int, ...]] = {}
        self.extra_keys: dict[str, Any] = {}

    def add(self, name: str, *ne: int) -> None:
        self.tensors[name] = ne


def _type(name: str, ne: tuple[int, ...]) -> Any:
    """Q4_K where the rows allow it (256-element blocks), else Q8_0, else F16; f32 parts and
    1-D tensors f32, as a Q4_K_M file stores them."""
    if len([n for n in ne if n > 1]) <= 1 or any(part in name for part in F32_PARTS):
        return Q.F32
    if name.endswith(("output.weight", "ffn_down.weight", "attn_v.weight")) and ne[0] % 256 == 0:
        return Q.Q6_K
    return Q.Q4_K if ne[0] % 256 == 0 else Q.Q8_0 if ne[0] % 32 == 0 else Q.F16


def _keys(n_layer: int, n_embd: int, n_ff: int | list[int], n_head: int,
          n_head_kv: int | list[int], context: int, rope: int, **more: Any) -> dict[str, Any]:
    keys = {"context_length": context, "embedding_length": n_embd, "block_count": n_layer,
            "feed_forward_length": n_ff, "attention.head_count": n_head,
            "attention.head_count_kv": n_head_kv, "rope.dimension_count": rope,
            "attention.layer_norm_rms_epsilon": 1e-6}
    keys.update(more)
    return keys


def _attention(twin: Twin, i: int, n_embd: int, q: int, kv: int, qk_norm: int = 0) -> None:
    p = f"blk.{i}."
    twin.add(p + "attn_q.weight", n_embd, q)
    twin.add(p + "attn_k.weight", n_embd, kv)
    twin.add(p + "attn_v.weight", n_embd, kv)
    twin.add(p + "attn_output.weight", q, n_embd)
    if qk_norm:
        twin.add(p + "attn_q_norm.weight", qk_norm)
        twin.add(p + "attn_k_norm.weight", qk_norm)


def _ffn(twin: Twin, i: int, n_embd: int, n_ff: int, gate: bool = True) -> None:
    p = f"blk.{i}."
    twin.add(p + "ffn_up.weight", n_embd, n_ff)
    twin.add(p + "ffn_down.weight", n_ff, n_embd)
    if gate:
        twin.add(p + "ffn_gate.weight", n_embd, n_ff)


def _experts(twin: Twin, i: int, n_embd: int, n_expert: int, n_ff_exp: int,
             shared: int = 0) -> None:
    p = f"blk.{i}."
    twin.add(p + "ffn_gate_inp.weight", n_embd, n_expert)
    for name in ("ffn_gate_exps", "ffn_up_exps"):
        twin.add(p + name + ".weight", n_embd, n_ff_exp, n_expert)
    twin.add(p + "ffn_down_exps.weight", n_ff_exp, n_embd, n_expert)
    if shared:
        twin.add(p + "ffn_gate_shexp.weight", n_embd, shared)
        twin.add(p + "ffn_up_shexp.weight", n_embd, shared)
        twin.add(p + "ffn_down_shexp.weight", shared, n_embd)


def _head(twin: Twin, n_embd: int, output: bool = True) -> None:
    twin.add("token_embd.weight", n_embd, twin.n_vocab)
    twin.add("output_norm.weight", n_embd)
    if output:
        twin.add("output.weight", n_embd, twin.n_vocab)


def llama31_8b() -> Twin:
    """Llama-3.1-8B: 4096 wide, GQA 32/8 of 128, FFN 14336, 128,256 tokens; 2 blocks."""
    twin = Twin("llama31-8b", "llama", 128_256,
                **_keys(2, 4096, 14_336, 32, 8, 131_072, 128, **{"rope.freq_base": 500_000.0}))
    _head(twin, 4096)
    for i in range(2):
        twin.add(f"blk.{i}.attn_norm.weight", 4096)
        twin.add(f"blk.{i}.ffn_norm.weight", 4096)
        _attention(twin, i, 4096, 32 * 128, 8 * 128)
        _ffn(twin, i, 4096, 14_336)
    return twin


def qwen3_30b_a3b() -> Twin:
    """Qwen3-30B-A3B: 2048 wide, 32/4 heads of 128, 128 experts (8 used) of 768, 151,936
    tokens; 2 blocks."""
    twin = Twin("qwen3-30b-a3b", "qwen3moe", 151_936, **_keys(
        2, 2048, 6144, 32, 4, 40_960, 128, expert_count=128, expert_used_count=8,
        expert_feed_forward_length=768, **{"attention.key_length": 128,
                                           "attention.value_length": 128}))
    _head(twin, 2048)
    for i in range(2):
        twin.add(f"blk.{i}.attn_norm.weight", 2048)
        twin.add(f"blk.{i}.ffn_norm.weight", 2048)
        _attention(twin, i, 2048, 32 * 128, 4 * 128, qk_norm=128)
        _experts(twin, i, 2048, 128, 768)
    return twin


def gemma3_1b() -> Twin:
    """Gemma-3-1B: 1152 wide, 4/1 heads of 256, FFN 6912, 262,144 tokens, sliding window 512;
    6 blocks (five sliding-window layers and one global, the model's pattern)."""
    twin = Twin("gemma3-1b", "gemma3", 262_144, **_keys(
        6, 1152, 6912, 4, 1, 32_768, 256, **{"attention.key_length": 256,
                                              "attention.value_length": 256,
                                              "attention.sliding_window": 512}))
    _head(twin, 1152, output=False)
    for i in range(6):
        for norm in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            twin.add(f"blk.{i}.{norm}.weight", 1152)
        _attention(twin, i, 1152, 4 * 256, 256, qk_norm=256)
        _ffn(twin, i, 1152, 6912)
    return twin


def deepseek2_lite() -> Twin:
    """DeepSeek-V2-Lite as the converter writes MLA: 2048 wide, 16 heads, kv_lora_rank 512,
    rope 64, no-rope 128, v_head 128, one dense block then 64 experts (6 used) of 1408 with two
    shared, 102,400 tokens; 3 blocks. llama.cpp takes only a 26- or 27-block model for the lite
    one (models/deepseek2.cpp, is_lite), so Q goes through DeepSeek-V2's q_lora_rank 1536."""
    kv_lora, rope, nope, v_head, n_head, q_lora = 512, 64, 128, 128, 16, 1536
    twin = Twin("deepseek2-lite", "deepseek2", 102_400, **_keys(
        3, 2048, 10_944, n_head, 1, 163_840, rope, expert_count=64, expert_used_count=6,
        expert_feed_forward_length=1408, expert_shared_count=2, leading_dense_block_count=1,
        expert_weights_scale=1.0, **{
            "attention.kv_lora_rank": kv_lora, "attention.q_lora_rank": q_lora, "attention.key_length": kv_lora + rope,
            "attention.value_length": kv_lora, "attention.key_length_mla": nope + rope,
            "attention.value_length_mla": v_head}))
    _head(twin, 2048)
    for i in range(3):
        p = f"blk.{i}."
        twin.add(p + "attn_norm.weight", 2048)
        twin.add(p + "ffn_norm.weight", 2048)
        twin.add(p + "attn_kv_a_norm.weight", kv_lora)
        twin.add(p + "attn_q_a_norm.weight", q_lora)
        twin.add(p + "attn_q_a.weight", 2048, q_lora)
        twin.add(p + "attn_q_b.weight", q_lora, n_head * (nope + rope))
        twin.add(p + "attn_kv_a_mqa.weight", 2048, kv_lora + rope)
        twin.add(p + "attn_k_b.weight", nope, kv_lora, n_head)
        twin.add(p + "attn_v_b.weight", kv_lora, v_head, n_head)
        twin.add(p + "attn_output.weight", n_head * v_head, 2048)
        if i == 0:
            _ffn(twin, i, 2048, 10_944)
        else:
            _experts(twin, i, 2048, 64, 1408, shared=2 * 1408)
    return twin


def bert_base() -> Twin:
    """bert-base-uncased: 768 wide, 12 heads, FFN 3072, 30,522 tokens, 512 positions;
    2 blocks."""
    keys = _keys(2, 768, 3072, 12, 12, 512, 64, **{"attention.causal": False, "pooling_type": 1})
    keys["attention.layer_norm_epsilon"] = keys.pop("attention.layer_norm_rms_epsilon")
    twin = Twin("bert-base", "bert", 30_522, **keys)
    twin.extra_keys["tokenizer.ggml.token_type_count"] = 2
    twin.add("token_embd.weight", 768, twin.n_vocab)
    twin.add("token_types.weight", 768, 2)
    twin.add("position_embd.weight", 768, 512)
    twin.add("token_embd_norm.weight", 768)
    twin.add("token_embd_norm.bias", 768)
    for i in range(2):
        p = f"blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            twin.add(p + name + ".weight", 768, 768)
            twin.add(p + name + ".bias", 768)
        for norm in ("attn_output_norm", "layer_output_norm"):
            twin.add(p + norm + ".weight", 768)
            twin.add(p + norm + ".bias", 768)
        _ffn(twin, i, 768, 3072, gate=False)
        twin.add(p + "ffn_up.bias", 3072)
        twin.add(p + "ffn_down.bias", 768)
    return twin


def mamba2_2_7b() -> Twin:
    """Mamba2-2.7B: 2560 wide, d_inner 5120, d_state 128, 80 heads, one group, conv 4,
    50,288 tokens; 2 blocks."""
    d_inner, d_state, n_head, n_group, d_conv = 5120, 128, 80, 1, 4
    conv = d_inner + 2 * n_group * d_state
    twin = Twin("mamba2-2.7b", "mamba2", 50_288, **{
        "context_length": 1_048_576, "embedding_length": 2560, "block_count": 2,
        "feed_forward_length": 0, "attention.head_count": 0,
        "attention.layer_norm_rms_epsilon": 1e-5, "ssm.conv_kernel": d_conv,
        "ssm.inner_size": d_inner, "ssm.state_size": d_state, "ssm.time_step_rank": n_head,
        "ssm.group_count": n_group})
    _head(twin, 2560)
    for i in range(2):
        p = f"blk.{i}."
        twin.add(p + "attn_norm.weight", 2560)
        twin.add(p + "ssm_in.weight", 2560, d_inner + conv + n_head)
        twin.add(p + "ssm_conv1d.weight", d_conv, conv)
        twin.add(p + "ssm_conv1d.bias", conv)
        twin.add(p + "ssm_dt.bias", n_head)
        twin.add(p + "ssm_a", 1, n_head)
        twin.add(p + "ssm_d", 1, n_head)
        twin.add(p + "ssm_norm.weight", d_inner // n_group, n_group)
        twin.add(p + "ssm_out.weight", d_inner, 2560)
    return twin


def phi3_mini() -> Twin:
    """Phi-3-mini-4k: 3072 wide, 32 heads of 96 (no GQA) in one fused wqkv, a fused gate/up
    of 2 x 8192, 32,064 tokens; 2 blocks."""
    twin = Twin("phi3-mini", "phi3", 32_064, **_keys(2, 3072, 8192, 32, 32, 4096, 96))
    _head(twin, 3072)
    for i in range(2):
        p = f"blk.{i}."
        twin.add(p + "attn_norm.weight", 3072)
        twin.add(p + "ffn_norm.weight", 3072)
        twin.add(p + "attn_qkv.weight", 3072, 3 * 3072)
        twin.add(p + "attn_output.weight", 3072, 3072)
        twin.add(p + "ffn_up.weight", 3072, 2 * 8192)
        twin.add(p + "ffn_down.weight", 8192, 3072)
    return twin


def gpt_oss_20b() -> Twin:
    """gpt-oss-20b: 2880 wide, 64/8 heads of 64 with sinks and biases, 32 experts (4 used) of
    2880 with biases, sliding window 128 on every other layer, 201,088 tokens; 2 blocks."""
    n_embd, n_expert, n_ff = 2880, 32, 2880
    twin = Twin("gpt-oss-20b", "gpt-oss", 201_088, **_keys(
        2, n_embd, n_ff, 64, 8, 131_072, 64, expert_count=n_expert, expert_used_count=4,
        expert_feed_forward_length=n_ff, **{"attention.key_length": 64,
                                            "attention.value_length": 64,
                                            "attention.sliding_window": 128}))
    _head(twin, n_embd)
    for i in range(2):
        p = f"blk.{i}."
        twin.add(p + "attn_norm.weight", n_embd)
        twin.add(p + "post_attention_norm.weight", n_embd)
        _attention(twin, i, n_embd, 64 * 64, 8 * 64)
        for name, width in (("attn_q", 64 * 64), ("attn_k", 8 * 64), ("attn_v", 8 * 64),
                            ("attn_output", n_embd)):
            twin.add(p + name + ".bias", width)
        twin.add(p + "attn_sinks.weight", 64)
        _experts(twin, i, n_embd, n_expert, n_ff)
        twin.add(p + "ffn_gate_inp.bias", n_expert)
        twin.add(p + "ffn_gate_exps.bias", n_ff, n_expert)
        twin.add(p + "ffn_up_exps.bias", n_ff, n_expert)
        twin.add(p + "ffn_down_exps.bias", n_embd, n_expert)
    return twin


def rwkv7_1_5b() -> Twin:
    """RWKV7-World3-1.5B: 2048 wide, wkv heads of 64, FFN 8192, LoRA ranks 96/96/64/256 (decay,
    in-context learning rate, value residual, gate), 65,536 tokens; 2 blocks."""
    n_embd, lora = 2048, {"decay": 96, "iclr": 96, "value_residual_mix": 64, "gate": 256}
    twin = Twin("rwkv7-1.5b", "rwkv7", 65_536, **{
        "context_length": 1_048_576, "embedding_length": n_embd, "block_count": 2,
        "feed_forward_length": 8192, "attention.head_count": 0,
        "attention.layer_norm_epsilon": 1e-5, "wkv.head_size": 64, "token_shift_count": 2,
        **{f"attention.{name}_lora_rank": rank for name, rank in lora.items()}})
    _head(twin, n_embd)
    for name in ("output_norm.bias", "token_embd_norm.weight", "token_embd_norm.bias"):
        twin.add(name, n_embd)
    for i in range(2):
        p = f"blk.{i}."
        for name in ("attn_norm", "attn_norm_2", "time_mix_ln"):
            for part in ("weight", "bias"):
                twin.add(f"{p}{name}.{part}", n_embd)
        for letter, rank in (("w", lora["decay"]), ("a", lora["iclr"]),
                             ("v", lora["iclr"] if i == 0 else lora["value_residual_mix"])):
            twin.add(p + f"time_mix_{letter}0.weight", n_embd)
            twin.add(p + f"time_mix_{letter}1.weight", n_embd, rank)
            twin.add(p + f"time_mix_{letter}2.weight", rank, n_embd)
        twin.add(p + "time_mix_g1.weight", n_embd, lora["gate"])
        twin.add(p + "time_mix_g2.weight", lora["gate"], n_embd)
        twin.add(p + "time_mix_lerp_fused.weight", n_embd, 1, 1, 6)
        for name in ("k_k", "k_a", "r_k"):
            twin.add(p + f"time_mix_{name}.weight", n_embd)
        for name in ("key", "value", "receptance", "output"):
            twin.add(p + f"time_mix_{name}.weight", n_embd, n_embd)
        twin.add(p + "channel_mix_lerp_k.weight", n_embd, 1, 1)
        twin.add(p + "channel_mix_key.weight", n_embd, 8192)
        twin.add(p + "channel_mix_value.weight", 8192, n_embd)
    return twin


def qwen3next_80b_a3b() -> Twin:
    """Qwen3-Next-80B-A3B: 2048 wide, attention 16/2 heads of 256, delta net 16/32 heads of 128,
    512 experts (10 used) of 512, shared 512, 151,936 tokens; 2 blocks, one of each kind."""
    n_embd, n_expert, head, k_heads, v_heads = 2048, 512, 128, 16, 32
    key_dim, value_dim = head * k_heads, head * v_heads
    twin = Twin("qwen3next-80b-a3b", "qwen3next", 151_936, **_keys(
        2, n_embd, 5120, 16, 2, 262_144, 64, expert_count=n_expert, expert_used_count=10,
        expert_feed_forward_length=512, expert_shared_feed_forward_length=512,
        full_attention_interval=2, **{
            "attention.key_length": 256, "attention.value_length": 256,
            "ssm.conv_kernel": 4, "ssm.inner_size": value_dim, "ssm.state_size": head,
            "ssm.time_step_rank": v_heads, "ssm.group_count": k_heads}))
    _head(twin, n_embd)
    for i in range(2):
        p = f"blk.{i}."
        for name in ("attn_norm", "post_attention_norm"):
            twin.add(p + name + ".weight", n_embd)
        if i == 1:
            _attention(twin, i, n_embd, 2 * 16 * 256, 2 * 256, qk_norm=256)
            twin.tensors[p + "attn_output.weight"] = (16 * 256, n_embd)
        else:
            conv = 2 * key_dim + value_dim
            for name, ne in (("attn_qkv.weight", (n_embd, conv)),
                             ("attn_gate.weight", (n_embd, value_dim)),
                             ("ssm_conv1d.weight", (4, conv)), ("ssm_dt.bias", (v_heads,)),
                             ("ssm_a", (v_heads,)), ("ssm_ba.weight", (n_embd, 2 * v_heads)),
                             ("ssm_norm.weight", (head,)), ("ssm_out.weight", (value_dim, n_embd))):
                twin.add(p + name, *ne)
        _experts(twin, i, n_embd, n_expert, 512, shared=512)
        twin.add(p + "ffn_gate_inp_shexp.weight", n_embd)
    return twin


def gemma3n_e2b(n_layer: int = 5) -> Twin:
    """Gemma-3n-E2B: 2048 wide, 8/2 heads of 256, FFN 8192, per-layer inputs of 256, sliding
    window 512 on four layers of five, 262,400 tokens; 5 blocks (from 21, later layers share KV)."""
    n_embd, per_layer = 2048, 256
    twin = Twin("gemma3n-e2b", "gemma3n", 262_400, **_keys(
        n_layer, n_embd, 8192, 8, 2, 32_768, 256, **{
            "attention.key_length": 256, "attention.value_length": 256,
            "attention.sliding_window": 512, "final_logit_softcapping": 30.0}))
    _head(twin, n_embd, output=False)
    for name in ("altup_proj", "altup_unembd_proj"):
        twin.add(name + ".weight", n_embd, n_embd, 3)
    twin.add("per_layer_token_embd.weight", per_layer * n_layer, twin.n_vocab)
    twin.add("per_layer_model_proj.weight", n_embd, per_layer * n_layer)
    twin.add("per_layer_proj_norm.weight", per_layer)
    for i in range(n_layer):
        p = f"blk.{i}."
        for name in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm",
                     "post_norm", "altup_correct_scale", "altup_router_norm",
                     "laurel_post_norm"):
            twin.add(p + name + ".weight", n_embd)
        _attention(twin, i, n_embd, 8 * 256, 2 * 256, qk_norm=256)
        _ffn(twin, i, n_embd, 8192)
        twin.add(p + "inp_gate.weight", n_embd, per_layer)
        twin.add(p + "proj.weight", per_layer, n_embd)
        for name, ne in (("altup_correct_coef", (4, 4)), ("altup_predict_coef", (4, 16)),
                         ("altup_router", (n_embd, 4)), ("laurel_l", (n_embd, 64)),
                         ("laurel_r", (64, n_embd))):
            twin.add(p + name + ".weight", *ne)
    return twin


TWINS: dict[str, Callable[[], Twin]] = {
    "llama31-8b": llama31_8b, "qwen3-30b-a3b": qwen3_30b_a3b, "gemma3-1b": gemma3_1b,
    "deepseek2-lite": deepseek2_lite, "bert-base": bert_base, "mamba2-2.7b": mamba2_2_7b,
    "phi3-mini": phi3_mini, "gpt-oss-20b": gpt_oss_20b, "rwkv7-1.5b": rwkv7_1_5b,
    "qwen3next-80b-a3b": qwen3next_80b_a3b, "gemma3n-e2b": gemma3n_e2b}


def _add_tokenizer(writer: gguf.GGUFWriter, n_vocab: int) -> None:
    """fixtures/zoo.py's SentencePiece-style vocabulary at the real size: specials, 256 byte
    tokens, <|endoftext|> (llama_vocab::impl::load looks it up for phi3), then words."""
    tokens = ZOO.vocabulary(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([-float(index) for index in range(n_vocab)])
    writer.add_token_types([gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * 2
                           + [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.CONTROL]
                           + [gguf.TokenType.NORMAL] * (n_vocab - 260))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)


def write_twin(twin: Twin, path: Path) -> int:
    """Every key and tensor info; the data a hole (os.truncate past the header). Returns the
    apparent size."""
    writer = gguf.GGUFWriter(str(path), twin.arch)
    writer.add_name(twin.stem)
    writer.add_file_type(15)  # MOSTLY_Q4_K_M
    for suffix, value in twin.keys.items():
        ZOO.add_key(writer, f"{twin.arch}.{suffix}", value)
    _add_tokenizer(writer, twin.n_vocab)
    for key, value in twin.extra_keys.items():
        ZOO.add_key(writer, key, value)
    data = 0
    for name, ne in twin.tensors.items():
        qtype = _type(name, ne)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        n_bytes = ne[0] // block * size * math.prod(ne[1:])
        writer.add_tensor_info(name, tuple(reversed(ne)), np.dtype(np.float32), n_bytes,
                               raw_dtype=qtype)
        data += -(-n_bytes // 32) * 32  # GGUF_DEFAULT_ALIGNMENT
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    size = -(-path.stat().st_size // 32) * 32 + data
    os.truncate(path, size)
    return size


def probe(twin: Twin, folder: Path) -> str:
    """One table row: per configuration the compute estimate's error, then whether every
    exact row matched (the differing ones named)."""
    path = folder / f"{twin.stem}.gguf"
    apparent = write_twin(twin, path)
    cells, differing = [], []
    try:
        for label, settings in CONFIGURATIONS.items():
            comparison = compare_runtime(str(path), settings)
            differing += [f"{label}: {c.quantity} {c.predicted!r} vs {c.runtime!r}"
                          for c in comparison.checks if c.exact and c.status != MATCH]
            cells.append(", ".join(c.note for c in comparison.checks
                                   if c.status == ESTIMATE) or "-")
    finally:
        path.unlink()
    for line in differing:
        print(f"{twin.stem}: {line}", file=sys.stderr)
    exact = "yes" if not differing else f"NO ({len(differing)})"
    size = f"{apparent / 2**30:.2f} GiB"
    return f"| {twin.stem} ({size}) | {' | '.join(cells)} | {exact} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(TWINS), help="twins to probe")
    parser.add_argument("--write", type=Path, metavar="DIR",
                        help="only write the twins into DIR (for benchmarks/graph_dump.py)")
    args = parser.parse_args(argv)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for stem, build in TWINS.items():
            if not args.only or stem in args.only:
                write_twin(build(), args.write / f"{stem}.gguf")
        return 0
    print("| model (apparent size) | " + " | ".join(CONFIGURATIONS) + " | exact rows match |")
    print("|" + "---|" * (len(CONFIGURATIONS) + 2))
    with tempfile.TemporaryDirectory(prefix="real-width-") as folder:
        for stem, build in TWINS.items():
            if args.only and stem not in args.only:
                continue
            print(probe(build(), Path(folder)))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
