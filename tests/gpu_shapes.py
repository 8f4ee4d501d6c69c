"""Header-only twins of real model shapes for the GPU deployment tests (no tensor data: the
memory model reads only the header). Built with ``tests.test_memory.synthetic``."""

from __future__ import annotations

from gguf_inspect.core.model import GGUFFile
from tests.test_memory import synthetic

LLAMA31_8B = {"n_vocab": 128_256, "n_embd": 4096, "n_layer": 32, "n_ff": 14_336, "n_head": 32,
              "n_head_kv": 8, "head_dim": 128}


def llama31_8b() -> GGUFFile:
    """The Llama-3.1-8B shape, Q4_K_M types as benchmarks/header_bench.py writes them (q4_K
    weights, q6_K attn_v and output)."""
    shape = LLAMA31_8B
    n_embd, n_ff, n_q = shape["n_embd"], shape["n_ff"], shape["head_dim"] * shape["n_head"]
    n_kv = shape["head_dim"] * shape["n_head_kv"]
    tensors = [("token_embd.weight", (n_embd, shape["n_vocab"]), "q4_K")]
    for block in range(shape["n_layer"]):
        prefix = f"blk.{block}."
        tensors += [(prefix + "attn_norm.weight", (n_embd,), "f32"),
                    (prefix + "attn_q.weight", (n_embd, n_q), "q4_K"),
                    (prefix + "attn_k.weight", (n_embd, n_kv), "q4_K"),
                    (prefix + "attn_v.weight", (n_embd, n_kv), "q6_K"),
                    (prefix + "attn_output.weight", (n_q, n_embd), "q4_K"),
                    (prefix + "ffn_norm.weight", (n_embd,), "f32"),
                    (prefix + "ffn_gate.weight", (n_embd, n_ff), "q4_K"),
                    (prefix + "ffn_up.weight", (n_embd, n_ff), "q4_K"),
                    (prefix + "ffn_down.weight", (n_ff, n_embd), "q4_K")]
    tensors += [("output_norm.weight", (n_embd,), "f32"),
                ("output.weight", (n_embd, shape["n_vocab"]), "q6_K")]
    extra = {"llama.context_length": 131_072, "llama.attention.head_count": shape["n_head"],
             "llama.attention.head_count_kv": shape["n_head_kv"],
             "llama.feed_forward_length": n_ff, "llama.rope.dimension_count": 128,
             "llama.attention.layer_norm_rms_epsilon": 1e-5}
    return synthetic("llama", shape["n_layer"], n_embd, shape["n_vocab"], extra, tensors)


MOE = {"n_layer": 4, "n_embd": 1024, "n_expert": 8, "n_expert_used": 2, "n_ff_exp": 512,
       "n_vocab": 4096}


def small_moe(n_layer: int = MOE["n_layer"], context_length: int = 4096,
              n_expert: int = MOE["n_expert"]) -> GGUFFile:
    """A Qwen3-MoE-like shape, four blocks (or ``n_layer``) of eight experts (or ``n_expert``,
    stacked ``ffn_*_exps`` tensors)."""
    shape = {**MOE, "n_layer": n_layer, "n_expert": n_expert,
             "n_expert_used": min(MOE["n_expert_used"], n_expert)}
    n_embd, n_ff, n_expert = shape["n_embd"], shape["n_ff_exp"], shape["n_expert"]
    tensors = [("token_embd.weight", (n_embd, shape["n_vocab"]), "q8_0")]
    for block in range(shape["n_layer"]):
        prefix = f"blk.{block}."
        tensors += [(prefix + "attn_norm.weight", (n_embd,), "f32"),
                    (prefix + "attn_q.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "attn_k.weight", (n_embd, 256), "q8_0"),
                    (prefix + "attn_v.weight", (n_embd, 256), "q8_0"),
                    (prefix + "attn_output.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "ffn_norm.weight", (n_embd,), "f32"),
                    (prefix + "ffn_gate_inp.weight", (n_embd, n_expert), "f32"),
                    (prefix + "ffn_gate_exps.weight", (n_embd, n_ff, n_expert), "q4_K"),
                    (prefix + "ffn_up_exps.weight", (n_embd, n_ff, n_expert), "q4_K"),
                    (prefix + "ffn_down_exps.weight", (n_ff, n_embd, n_expert), "q6_K")]
    tensors += [("output_norm.weight", (n_embd,), "f32"),
                ("output.weight", (n_embd, shape["n_vocab"]), "q8_0")]
    extra = {"qwen3moe.attention.head_count": 8, "qwen3moe.attention.head_count_kv": 2,
             "qwen3moe.expert_count": n_expert, "qwen3moe.expert_used_count": shape["n_expert_used"],
             "qwen3moe.expert_feed_forward_length": n_ff, "qwen3moe.attention.key_length": 128,
             "qwen3moe.attention.value_length": 128, "qwen3moe.context_length": context_length}
    return synthetic("qwen3moe", shape["n_layer"], n_embd, shape["n_vocab"], extra, tensors)


def qwen2(shape: dict) -> GGUFFile:
    """A Qwen2 shape (biased q/k/v, tied output head: no output.weight) from a public log's
    own metadata lines (tests/data/cuda_load_logs.json); Q4_K_M-like types, which the KV,
    output and full-offload compute buffers do not depend on."""
    n_embd, n_ff, n_kv = shape["n_embd"], shape["n_ff"], 128 * shape["n_head_kv"]
    tensors = [("token_embd.weight", (n_embd, shape["n_vocab"]), "q4_K")]
    for block in range(shape["n_layer"]):
        prefix = f"blk.{block}."
        tensors += [(prefix + "attn_norm.weight", (n_embd,), "f32"),
                    (prefix + "attn_q.weight", (n_embd, n_embd), "q4_K"),
                    (prefix + "attn_q.bias", (n_embd,), "f32"),
                    (prefix + "attn_k.weight", (n_embd, n_kv), "q4_K"),
                    (prefix + "attn_k.bias", (n_kv,), "f32"),
                    (prefix + "attn_v.weight", (n_embd, n_kv), "q6_K"),
                    (prefix + "attn_v.bias", (n_kv,), "f32"),
                    (prefix + "attn_output.weight", (n_embd, n_embd), "q4_K"),
                    (prefix + "ffn_norm.weight", (n_embd,), "f32"),
                    (prefix + "ffn_gate.weight", (n_embd, n_ff), "q4_K"),
                    (prefix + "ffn_up.weight", (n_embd, n_ff), "q4_K"),
                    (prefix + "ffn_down.weight", (n_ff, n_embd), "q6_K")]
    tensors += [("output_norm.weight", (n_embd,), "f32")]
    extra = {"qwen2.context_length": 32_768, "qwen2.attention.head_count": shape["n_head"],
             "qwen2.attention.head_count_kv": shape["n_head_kv"],
             "qwen2.feed_forward_length": n_ff, "qwen2.attention.layer_norm_rms_epsilon": 1e-6}
    return synthetic("qwen2", shape["n_layer"], n_embd, shape["n_vocab"], extra, tensors)


def mha(n_layer: int, n_embd: int, n_vocab: int = 32_000) -> GGUFFile:
    """A plain multi-head llama shape (as many KV heads as heads, 128 wide)."""
    n_head = n_embd // 128
    tensors = [("token_embd.weight", (n_embd, n_vocab), "q8_0")]
    for block in range(n_layer):
        prefix = f"blk.{block}."
        tensors += [(prefix + "attn_norm.weight", (n_embd,), "f32"),
                    (prefix + "attn_q.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "attn_k.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "attn_v.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "attn_output.weight", (n_embd, n_embd), "q8_0"),
                    (prefix + "ffn_norm.weight", (n_embd,), "f32"),
                    (prefix + "ffn_gate.weight", (n_embd, 256), "q8_0"),
                    (prefix + "ffn_up.weight", (n_embd, 256), "q8_0"),
                    (prefix + "ffn_down.weight", (256, n_embd), "q8_0")]
    tensors += [("output_norm.weight", (n_embd,), "f32"),
                ("output.weight", (n_embd, n_vocab), "q8_0")]
    extra = {"llama.attention.head_count": n_head, "llama.attention.head_count_kv": n_head,
             "llama.feed_forward_length": 256, "llama.rope.dimension_count": 128}
    return synthetic("llama", n_layer, n_embd, n_vocab, extra, tensors)
