"""Which feed-forward block each layer of an architecture's graph builds, read from the header
the way each model's ``load_arch_hparams`` reads it (src/models/<arch>.cpp): the mixture of
experts ``build_moe_ffn`` is called with (gating, weight normalisation, biases, shared experts)
and the layers that call it (leading dense blocks, interleaved MoE layers).

Also the attention and norm placement each model's graph uses (olmo2, cohere2, llama4, the
bert encoders, deepseek2's MLA). Only architectures whose graph was compared node by node
against llama.cpp's own (``GGML_SCHED_DEBUG=2``, benchmarks/graph_dump.py) are listed; the
others keep the dense llama graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gguf_inspect.core.model import GGUFFile
from gguf_inspect.llamacpp.graph_ffn import MoeLayout
from gguf_inspect.llamacpp.graph_gemma3n import Gemma3nShape
from gguf_inspect.llamacpp.graph_mla import MlaShape
from gguf_inspect.llamacpp.graph_qwen3next import DeltaNetShape
from gguf_inspect.llamacpp.graph_rwkv import RwkvShape
from gguf_inspect.llamacpp.graph_ssm import MAMBA, MAMBA2, SHORTCONV, SsmShape
from gguf_inspect.llamacpp.hparams import NEMOTRON_H_ARCHS, Hyperparameters, uint32_key

# llama_expert_gating_func_type (llama-hparams.h): 0 none, 1 softmax, 2 sigmoid,
# 3 softmax_weight
GATING = {1: "softmax", 2: "sigmoid", 3: "softmax_weight"}
# gemma3n's n_altup 4, n_embd_altup 256 and laurel_rank 64 are llama_hparams' fixed defaults
# (llama-hparams.h), read from no key; n_layer_kv_from_start (20) is hparams'


@dataclass(frozen=True)
class GraphLayout:
    moe: tuple[bool, ...] = ()
    moe_layout: MoeLayout | None = None
    layer_norm: bool = False
    bias: bool = False
    qkv_bias: bool = False
    attn_sinks: bool = False
    ffn_gated: bool = True
    ffn_fused: bool = False
    fused_qkv: bool = False
    residual: str = "sequential"
    attn_residual_first: bool = False
    ffn_residual_first: bool = False
    late_out_rows: str = ""
    norm_bias: bool = True
    ffn_norm_tensor: str = "ffn_norm"
    output_norm_tensor: str = "output_norm"
    pre_norm: bool = True
    post_norm: bool = False
    qk_norm: str = ""
    rope_layers: tuple[bool, ...] = ()
    attn_scale: bool = False
    logit_scale: bool = False
    logit_softcap: bool = False
    attn_softcap: bool = False
    embd_scale: bool = False
    residual_scale: bool = False
    q_scale: bool = False
    encoder: bool = False
    type_embd: bool = False
    pos_embd: bool = False
    mla: MlaShape | None = None
    mla_legacy: MlaShape | None = None
    mixers: tuple[str, ...] = ()
    ssm: SsmShape | None = None
    ffn: bool = True
    rwkv: RwkvShape | None = None
    delta: DeltaNetShape | None = None
    gemma3n: Gemma3nShape | None = None


# Dense graphs that differ from llama's (models/<arch>.cpp): LayerNorm with biases, ungated GELU
# MLPs, a fused wqkv, parallel attention and FFN.
DENSE = {
    "starcoder2": GraphLayout(layer_norm=True, bias=True, ffn_gated=False),
    "falcon": GraphLayout(layer_norm=True, ffn_gated=False, fused_qkv=True, residual="falcon"),
    "gptneox": GraphLayout(layer_norm=True, bias=True, ffn_gated=False, fused_qkv=True,
                           residual="neox"),
    # models/phi3.cpp: the FFN's residual add reads the residual first (ggml_add(residual, cur))
    "phi3": GraphLayout(fused_qkv=True, ffn_fused=True, q_scale=True,
                        ffn_residual_first=True),
    # models/olmo2.cpp: no pre-norms; Q and K normed whole before the reshape; post-norms
    "olmo2": GraphLayout(pre_norm=False, post_norm=True, qk_norm="full"),
}


def _scaled(gguf: GGUFFile) -> bool:
    """expert_weights_scale set and not 1: build_moe_ffn scales the weights (SCALE). Only the
    loaders that read the key ask (LLM_KV_EXPERT_WEIGHTS_SCALE: models/deepseek2.cpp and
    glm4-moe.cpp, through _lead_moe, and nemotron-h.cpp); the other MoE graphs modelled here
    (qwen3moe, llama4, gpt-oss, granite, qwen3next) keep llama_hparams' 0, whatever the file
    says, so their layouts leave w_scale off."""
    scale = gguf.arch_value("expert_weights_scale")
    return isinstance(scale, float) and scale not in (0.0, 1.0)


def graph_layout(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """The graph's layout for this architecture, with the attention nodes every builder adds
    for the tensors the file has (``_attention_by_tensors``)."""
    return _attention_by_tensors(gguf, _arch_layout(gguf, hparams))


def _attention_by_tensors(gguf: GGUFFile, layout: GraphLayout) -> GraphLayout:
    """llm_graph_context::build_qkv (llama-graph.cpp) adds Q, K and V biases when the layer
    has them (qwen2, glm4moe); qwen3.cpp, gemma3.cpp, lfm2.cpp and glm4-moe.cpp build_norm the
    reshaped Q and K with attn_q_norm / attn_k_norm before ROPE (gemma2.cpp has no such norm);
    openai-moe.cpp passes attn_sinks to build_attn, which adds it to the attention op."""
    names = {tensor.name.split(".", 2)[-1] for tensor in gguf.tensors
             if tensor.name.startswith("blk.")}
    if "attn_q.bias" in names:  # (a layout with every bias has these too)
        layout = replace(layout, qkv_bias=True)
    if "attn_sinks.weight" in names:
        layout = replace(layout, attn_sinks=True)
    if "attn_q_norm.weight" in names and not layout.qk_norm:
        layout = replace(layout, qk_norm="head")
    return layout


def _arch_layout(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    arch, n_layer = hparams.arch, hparams.n_layer_main
    if arch in DENSE:
        return DENSE[arch]
    if arch == "cohere2":
        # models/cohere2.cpp: bias-free LayerNorm, FFN beside attention on attn_norm, ROPE on
        # the sliding-window layers only, the logits scaled when logit_scale is set
        return GraphLayout(layer_norm=True, norm_bias=False, residual="cohere",
                           rope_layers=hparams.is_swa[:n_layer],
                           logit_scale=bool(gguf.arch_value("logit_scale", 0.0)))
    if arch == "llama4":
        return _llama4(gguf, hparams)
    if arch in ("gemma2", "gemma3"):
        # models/gemma2.cpp soft-caps the logits always, gemma3.cpp when
        # final_logit_softcapping is set (llm_build_gemma3: if f_final_logit_softcapping);
        # gemma2.cpp's load_hparams sets attn_soft_cap, which build_attn_mha reads
        return GraphLayout(logit_softcap=arch == "gemma2" or bool(
            gguf.arch_value("final_logit_softcapping", 0.0)), attn_softcap=arch == "gemma2")
    if arch in ("bert", "nomic-bert"):
        # models/bert.cpp: BERT has biases everywhere, an ungated GELU FFN and learned
        # positions; nomic-bert a fused wqkv without biases, rope and a SwiGLU FFN
        bert = arch == "bert"
        # (the encoder's LayerNorms are built as such whatever layer_norm says)
        return GraphLayout(bias=bert, ffn_gated=not bert, fused_qkv=not bert,
                           rope_layers=(not bert,) * n_layer, encoder=True, pre_norm=False,
                           type_embd=any(t.name == "token_types.weight" for t in gguf.tensors),
                           pos_embd=bert)
    if arch == "deepseek2":
        return _deepseek2(gguf, hparams)
    if arch in (MAMBA, MAMBA2):  # models/mamba.cpp: the mixer and the residual, no FFN
        return GraphLayout(mixers=(arch,) * n_layer, ssm=_ssm_shape(gguf, hparams), ffn=False)
    if arch == "rwkv7" and hparams.n_embd_s:
        return _rwkv7(gguf, hparams)
    if arch == "qwen3next" and hparams.n_embd_s:
        return _qwen3next(gguf, hparams)
    if arch == "gemma3n":  # models/gemma3n.cpp: its own graph (graph_gemma3n)
        return GraphLayout(gemma3n=Gemma3nShape(
            n_altup=4, n_embd_altup=256, laurel_rank=64,
            n_ff=hparams.n_ff[0] if hparams.n_ff else 0,
            n_layer_kv_from_start=hparams.n_layer_kv_from_start))
    if arch == "lfm2":
        # models/lfm2.cpp: short convolutions on the recurrent layers, attention on the others;
        # both residual ADDs read the residual first
        mixers = tuple(SHORTCONV if recurrent else "" for recurrent in hparams.is_recurrent)
        l_cache = uint32_key(gguf, "shortconv.l_cache") or 0
        ssm = SsmShape(hparams.n_embd_r, hparams.n_embd_s, d_conv=l_cache,
                       d_inner=hparams.n_embd)
        return GraphLayout(mixers=mixers[:n_layer], ssm=ssm, attn_residual_first=True,
                           ffn_residual_first=True,
                           # LLM_TENSOR_OUTPUT_NORM_LFM2 is named "token_embd_norm"
                           # (models/lfm2.cpp:39, llama-arch.cpp)
                           output_norm_tensor="token_embd_norm")
    if arch in NEMOTRON_H_ARCHS:
        return _nemotron_h(gguf, hparams)
    if arch == "granitehybrid":
        # models/granite-hybrid.cpp: Mamba2 on the recurrent layers, attention on the others,
        # then granite's FFN (build_layer_ffn: dense, or softmax MoE with a shared expert)
        mixers = tuple(MAMBA2 if recurrent else "" for recurrent in hparams.is_recurrent)
        moe, layout = _granite_moe(gguf, hparams)
        return GraphLayout(moe, layout, mixers=mixers[:n_layer], ssm=_ssm_shape(gguf, hparams),
                           **_granite_scales(gguf, arch))
    if arch in ("granite", "granitemoe"):  # models/granite.cpp (granitemoe uses its graph)
        return GraphLayout(*_granite_moe(gguf, hparams), **_granite_scales(gguf, arch))
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = uint32_key(gguf, "expert_used_count") or 0
    if not n_expert or not used:
        return GraphLayout()
    n_ff_exp = uint32_key(gguf, "expert_feed_forward_length") or 0
    if arch == "qwen3moe":
        # models/qwen3moe.cpp: softmax gating, weights normalised
        return GraphLayout((True,) * n_layer, MoeLayout(n_expert, used, n_ff_exp))
    if arch == "glm4moe":
        # models/glm4-moe.cpp: sigmoid gating by default, exp_probs_b always
        # the FFN's pre-norm is attn_post_norm (post_attention_norm, models/glm4-moe.cpp:72)
        return GraphLayout(*_lead_moe(gguf, n_layer, default_gating=2),
                           ffn_norm_tensor="post_attention_norm")
    if arch == "gpt-oss":
        # models/openai-moe.cpp: router and expert biases, softmax over the chosen weights;
        # q/k/v and output biases when present (build_qkv); the output rows gathered after
        # the whole stack (embeddings_nextn_masked is false by default, llama-context.cpp)
        return GraphLayout((True,) * n_layer, MoeLayout(
            n_expert, used, n_ff_exp, gating="softmax_weight", norm_w=False,
            gate_inp_bias=True, expert_bias=True),
            bias=any(t.name.endswith(".attn_q.bias") for t in gguf.tensors),
            late_out_rows="stack",
            # the FFN's pre-norm is attn_post_norm (models/openai-moe.cpp:37)
            ffn_norm_tensor="post_attention_norm")
    return GraphLayout()


def _llama4(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """models/llama4.cpp: every n_moe_layer_step-th layer MoE (sigmoid gating, weights applied
    before the experts, a shared expert n_ff_exp wide); every n_no_rope_layer_step-th layer
    (4, or n_layer when sliding_window is 0) without rope, its Q scaled by inp_attn_scale
    instead; use_kq_norm (weightless RMS_NORM after rope) unless the 128-expert model."""
    n_layer = hparams.n_layer_main
    n_expert = uint32_key(gguf, "expert_count") or 0
    step = uint32_key(gguf, "interleave_moe_layer_step") or 0
    moe = tuple(bool(n_expert) and step > 0 and (il + 1) % step == 0 for il in range(n_layer))
    no_rope_step = n_layer if gguf.arch_value("attention.sliding_window") == 0 else 4
    n_ff_exp = uint32_key(gguf, "expert_feed_forward_length") or 0
    layout = MoeLayout(n_expert, uint32_key(gguf, "expert_used_count") or 0, n_ff_exp,
                       n_ff_shexp=n_ff_exp, gating="sigmoid", norm_w=False,
                       weight_before_ffn=True) if n_expert else None
    return GraphLayout(moe if n_expert else (), layout,
                       qk_norm="rope" if n_expert != 128 else "",
                       rope_layers=tuple((il + 1) % no_rope_step != 0 for il in range(n_layer)),
                       attn_scale=True)


def _lead_moe(gguf: GGUFFile, n_layer: int, default_gating: int
              ) -> tuple[tuple[bool, ...], MoeLayout | None]:
    """glm4-moe.cpp and deepseek2.cpp: MoE from layer n_layer_dense_lead on, gating from
    expert_gating_func, expert_weights_norm, a shared expert n_ff_exp * n_expert_shared wide,
    exp_probs_b when the file has it."""
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = uint32_key(gguf, "expert_used_count") or 0
    if not n_expert or not used:
        return (), None
    lead = uint32_key(gguf, "leading_dense_block_count") or 0
    n_ff_exp = uint32_key(gguf, "expert_feed_forward_length") or 0
    gating = GATING.get(uint32_key(gguf, "expert_gating_func") or default_gating, "softmax")
    norm_w = bool(gguf.arch_value("expert_weights_norm", False))
    shared = n_ff_exp * (uint32_key(gguf, "expert_shared_count") or 0)
    probs_bias = any(t.name.endswith(".exp_probs_b.bias") for t in gguf.tensors)
    return tuple(il >= lead for il in range(n_layer)), MoeLayout(
        n_expert, used, n_ff_exp, n_ff_shexp=shared, gating=gating, norm_w=norm_w,
        w_scale=_scaled(gguf), probs_bias=probs_bias)


def _deepseek2(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """models/deepseek2.cpp: softmax gating by default; the latent attention of graph_mla,
    with is_mla the cache holding the latent (mla), without it (a file converted before MLA:
    attn_kv_b) the latent decompressed into an ordinary cache (mla_legacy), K and V heads
    key_length and value_length wide."""
    moe, layout = _lead_moe(gguf, hparams.n_layer_main, default_gating=1)
    # n_embd_head_k_mla() / _v_mla() (llama-hparams.cpp): with is_mla the *_mla lengths (both
    # set), else n_embd_head_k / _v (key_length and value_length, or their defaults)
    if hparams.is_mla:
        head_k = uint32_key(gguf, "attention.key_length_mla") or 0
        head_v = uint32_key(gguf, "attention.value_length_mla") or 0
    else:
        head_k, head_v = hparams.head_k[0], hparams.head_v[0]
    shape = MlaShape(n_lora_q=uint32_key(gguf, "attention.q_lora_rank") or 0,
                     n_lora_kv=uint32_key(gguf, "attention.kv_lora_rank") or 0,
                     n_rot=uint32_key(gguf, "rope.dimension_count") or 0,
                     head_k=head_k, head_v=head_v)
    if hparams.is_mla:
        return GraphLayout(moe, layout, mla=shape)
    return GraphLayout(moe, layout, mla_legacy=shape)


def _nemotron_h(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """models/nemotron-h.cpp (nemotron_h and nemotron_h_moe): each layer is Mamba2, attention
    without rope, or an FFN alone ("ffn"), then the residual ADD; the output norm over every
    token, then the output rows. The FFN (build_ffn_layer) is an ungated ReLU^2 MLP, or, with
    experts, build_moe_ffn with the router's logits computed beside it (sigmoid gating,
    exp_probs_b, expert_weights_norm and _scale as read by load_arch_hparams, ungated ReLU^2
    experts moe_latent_size wide between ffn_latent_down and ffn_latent_up when set) plus an
    ungated ReLU^2 shared expert."""
    n_layer = hparams.n_layer_main
    mixers = tuple(MAMBA2 if recurrent else "" if not n_ff else "ffn"
                   for recurrent, n_ff in zip(hparams.is_recurrent, hparams.n_ff))[:n_layer]
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = uint32_key(gguf, "expert_used_count") or 0
    layout = None
    if n_expert and used:
        # load_arch_tensors: n_ff_exp, or n_ff(i) / n_expert_used(i) for files without it
        # (the FFN layers' n_ff: the Mamba2 and attention layers have none)
        n_ff_exp = uint32_key(gguf, "expert_feed_forward_length") or max(hparams.n_ff) // used
        layout = MoeLayout(n_expert, used, n_ff_exp,
                           n_ff_shexp=uint32_key(gguf, "expert_shared_feed_forward_length") or 0,
                           gating="sigmoid", norm_w=bool(gguf.arch_value("expert_weights_norm",
                                                                          False)),
                           w_scale=_scaled(gguf), probs_bias=True, relu_sqr=True,
                           latent=uint32_key(gguf, "moe_latent_size") or 0)
    return GraphLayout(tuple(mixer == "ffn" and layout is not None for mixer in mixers),
                       layout, mixers=mixers, ssm=_ssm_shape(gguf, hparams), ffn=False,
                       rope_layers=(False,) * n_layer, late_out_rows="norm")


def _granite_moe(gguf: GGUFFile, hparams: Hyperparameters
                 ) -> tuple[tuple[bool, ...], MoeLayout | None]:
    """models/granite.cpp and granite-hybrid.cpp: softmax gating, weights normalised, experts
    feed_forward_length wide, an optional shared expert; none without experts."""
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = uint32_key(gguf, "expert_used_count") or 0
    if not n_expert or not used:
        return (), None
    shared = uint32_key(gguf, "expert_shared_feed_forward_length") or 0
    return (True,) * hparams.n_layer_main, MoeLayout(
        n_expert, used, hparams.n_ff[0], n_ff_shexp=shared)


def _granite_scales(gguf: GGUFFile, arch: str) -> dict[str, bool]:
    """The granite family's SCALE nodes: build_inp_embd (llama-graph.cpp) scales the
    embeddings when f_embedding_scale is set; build_layer_ffn (models/granite.cpp,
    granite-hybrid.cpp) scales the attention and the FFN output by f_residual_scale when set;
    granite.cpp's graph scales the logits always, granite-hybrid.cpp's when f_logit_scale is
    set. In place on one device, they matter once the graph is split between devices."""
    return {"embd_scale": bool(gguf.arch_value("embedding_scale", 0.0)),
            "residual_scale": bool(gguf.arch_value("residual_scale", 0.0)),
            "logit_scale": arch != "granitehybrid" or bool(gguf.arch_value("logit_scale", 0.0))}


def _ssm_shape(gguf: GGUFFile, hparams: Hyperparameters) -> SsmShape:
    """The ssm.* keys load_arch_hparams reads (mamba.cpp, mamba2.cpp, granite-hybrid.cpp);
    n_rs, the memory's size, is the context's (compute_buffers sets it)."""
    return SsmShape(d_conv=uint32_key(gguf, "ssm.conv_kernel") or 0,
                    d_inner=uint32_key(gguf, "ssm.inner_size") or 0,
                    d_state=uint32_key(gguf, "ssm.state_size") or 0,
                    dt_rank=uint32_key(gguf, "ssm.time_step_rank") or 0,
                    n_group=uint32_key(gguf, "ssm.group_count") or 1,
                    n_embd_r=hparams.n_embd_r, n_embd_s=hparams.n_embd_s,
                    dt_b_c_rms=bool(gguf.arch_value("ssm.dt_b_c_rms", False)))


def _rwkv7(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """models/rwkv7.cpp: its own graph (graph_rwkv); the state rows are the token shift (r)
    and the wkv state (s), n_rs set by compute_buffers like the SSMs'."""
    rwkv = RwkvShape(head_size=uint32_key(gguf, "wkv.head_size") or 0,
                     n_lora_decay=uint32_key(gguf, "attention.decay_lora_rank") or 0,
                     n_lora_iclr=uint32_key(gguf, "attention.iclr_lora_rank") or 0,
                     n_lora_value_res_mix=uint32_key(
                         gguf, "attention.value_residual_mix_lora_rank") or 0,
                     n_lora_gate=uint32_key(gguf, "attention.gate_lora_rank") or 0,
                     n_ff=hparams.n_ff[0] if hparams.n_ff else 0)
    return GraphLayout(ssm=SsmShape(hparams.n_embd_r, hparams.n_embd_s), rwkv=rwkv)


def _qwen3next(gguf: GGUFFile, hparams: Hyperparameters) -> GraphLayout:
    """models/qwen3next.cpp: its own graph (graph_qwen3next); softmax gating with the weights
    normalised, the shared expert expert_shared_feed_forward_length wide (else n_ff)."""
    n_layer = hparams.n_layer_main
    n_expert = uint32_key(gguf, "expert_count") or 0
    used = uint32_key(gguf, "expert_used_count") or 0
    n_ff_exp = uint32_key(gguf, "expert_feed_forward_length") or 0
    if not n_expert or not used:  # load_arch_tensors refuses a model without experts
        return GraphLayout()
    shared = uint32_key(gguf, "expert_shared_feed_forward_length") or hparams.n_ff[0]
    ssm = _ssm_shape(gguf, hparams)
    delta = DeltaNetShape(head_dim=ssm.d_state, n_k_heads=ssm.n_group,
                          n_v_heads=ssm.dt_rank, d_conv=ssm.d_conv, n_ff_shexp=shared)
    mixers = tuple("delta" if recurrent else "" for recurrent in hparams.is_recurrent)
    return GraphLayout((True,) * n_layer, MoeLayout(n_expert, used, n_ff_exp),
                       mixers=mixers[:n_layer], ssm=ssm, delta=delta)
