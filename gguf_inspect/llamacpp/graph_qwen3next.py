"""Qwen3-Next's prompt-processing graph node by node on ``compute_graph``'s ``GraphBuilder``:
``llama_model_qwen3next::graph`` (src/models/qwen3next.cpp): gated delta-net layers
(``build_layer_attn_linear``, with ``build_conv_state`` and ``build_recurrent_attn`` of
src/models/delta-net-base.cpp on the fused ``ggml_gated_delta_net`` path the CPU backend
supports), gated full-attention layers (``build_layer_attn``: Q twice as wide, its second half
the sigmoid gate), each followed by ``build_layer_ffn`` (``build_moe_ffn`` plus a shared expert
scaled by a sigmoid gate); the output norm over every token is ``t_h_nextn`` and the output
rows are gathered after it (``embeddings_nextn_masked`` false by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_ffn import MoeLayout, dense_ffn, moe_ffn
from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, f16_casts, hadamard, row_part
from gguf_inspect.llamacpp.graph_ssm import (SsmShape, StateInputs, read_states, state_inputs,
                                             store_state)


@dataclass(frozen=True)
class DeltaNetShape:
    """load_arch_hparams' ssm.* widths as the delta net reads them: head_k = head_v =
    ssm_d_state, n_k_heads = ssm_n_group, n_v_heads = ssm_dt_rank; and the shared expert."""

    head_dim: int
    n_k_heads: int
    n_v_heads: int
    d_conv: int
    n_ff_shexp: int


@dataclass(frozen=True)
class AttentionShape:
    """One full-attention layer's widths and its cache's inputs (build_inp_mem_hybrid: row
    indices, the mask over n_kv cells, a quantized cache's rotations)."""

    n_head: int
    n_head_kv: int
    head_dim: int
    n_kv: int
    flash_attn: bool
    k_idxs: Node
    v_idxs: Node
    mask: Node
    k_rot: Node | None
    v_rot: Node | None
    f32: tuple[bool, bool] = (False, False)  # K's and V's cache type is f32


def build_qwen3next_graph(n_embd: int, n_vocab: int, tokens: int, n_seqs: int, n_outputs: int,
                          recurrent: tuple[bool, ...], attention: AttentionShape,
                          delta: DeltaNetShape, ssm: SsmShape, moe: MoeLayout
                          ) -> tuple[list[Node], tuple[Node, ...]]:
    """The graph's nodes in llama.cpp's order, and its unused input (``inp_embd``)."""
    graph = GraphBuilder(n_embd)
    add = graph.add
    inp_tokens = Node("inp_tokens", "NONE", 4 * tokens, is_input=True)
    inp_pos = Node("inp_pos", "NONE", 4 * tokens, is_input=True)
    out_ids = Node("out_ids", "NONE", 4 * n_outputs, is_input=True)
    inp_l = add("embd", "GET_ROWS", n_embd * tokens, graph.weight, inp_tokens)
    graph.expand(inp_l)  # build_inp_embd
    state = state_inputs(ssm)
    for il, is_recurrent in enumerate(recurrent):
        graph.layer = il
        attn_norm = graph.rms_norm(inp_l, n_embd * tokens, tensor="attn_norm.weight")
        graph.expand(attn_norm)
        if is_recurrent:
            cur = graph.view(_delta_net(graph, attn_norm, delta, ssm, state, tokens, n_seqs))
        else:
            cur = _gated_attention(graph, attn_norm, attention, inp_pos, tokens)
        residual = add("attn_residual", "ADD", n_embd * tokens, cur, inp_l)
        ffn_out = _ffn(graph, graph.rms_norm(residual, n_embd * tokens,
                                             tensor="post_attention_norm.weight"),
                       moe, delta, tokens)
        inp_l = add("l_out", "ADD", n_embd * tokens, ffn_out, residual)
    graph.layer = len(recurrent)  # the output head
    h_nextn = graph.rms_norm(inp_l, n_embd * tokens, tensor="output_norm.weight")
    h_nextn.is_output = True
    result_norm = add("result_norm", "GET_ROWS", n_embd * n_outputs, h_nextn, out_ids)
    result_norm.is_output = True
    logits = add("result_output", "MUL_MAT", n_vocab * n_outputs, graph.weight, result_norm)
    logits.is_output = True
    graph.expand(logits)
    return graph.nodes, (Node("inp_embd", "NONE", 4 * n_embd * tokens, is_input=True),)


def _gated_attention(graph: GraphBuilder, x: Node, shape: AttentionShape, inp_pos: Node,
                     tokens: int) -> Node:
    """build_layer_attn: Q+gate, K and V matmuls; Q and K normed then roped; build_attn (with
    a quantized cache's rotations); the attention times sigmoid(gate), then wo."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    q_width = shape.head_dim * shape.n_head
    kv_width = shape.head_dim * shape.n_head_kv
    q_full = add("Qcur_full", "MUL_MAT", 2 * q_width * tokens, weight("attn_q.weight"), x)
    k = add("Kcur", "MUL_MAT", kv_width * tokens, weight("attn_k.weight"), x)
    v = add("Vcur", "MUL_MAT", kv_width * tokens, weight("attn_v.weight"), x)
    # the query and gate halves of each head's row: two views, each spanning all but one
    # head's worth of the matmul (what another device copies)
    half = row_part(shape.n_head * tokens, 2 * shape.head_dim, shape.head_dim)
    q = add("Qrope", "ROPE", q_width * tokens, graph.rms_norm(
        view(q_full, floats=half), q_width * tokens, tensor="attn_q_norm.weight"), inp_pos)
    k = add("Krope", "ROPE", kv_width * tokens, graph.rms_norm(
        view(k), kv_width * tokens, tensor="attn_k_norm.weight"), inp_pos)
    q = hadamard(graph, q, shape.k_rot, q_width * tokens)
    k = hadamard(graph, k, shape.k_rot, kv_width * tokens)
    v = hadamard(graph, v, shape.v_rot, kv_width * tokens)
    cache = Node("cache", "NONE", 0, external=True)
    for part in (q, v, k):  # llm_graph_input_attn_kv: q, v, k expanded, then the writes
        graph.expand(part)
    graph.expand(add("set_k", "SET_ROWS", 0, view(k), shape.k_idxs, cache, view_of=cache))
    graph.expand(add("set_v", "SET_ROWS", 0, view(v), shape.v_idxs, cache, view_of=cache))
    if shape.flash_attn:
        keys, values = f16_casts(graph, cache, shape.f32, shape.n_kv * kv_width,
                                 shape.n_kv * kv_width)
        attn = add("fattn", "FLASH_ATTN_EXT", q_width * tokens, view(q), keys, values,
                   shape.mask)
    else:
        scores = shape.n_kv * tokens * shape.n_head
        kq = add("kq", "MUL_MAT", scores, cache, view(q))
        kq = add("kq_soft_max", "SOFT_MAX", scores, kq, shape.mask)
        attn = add("kqv_out", "CONT", q_width * tokens,
                   view(add("kqv", "MUL_MAT", q_width * tokens, cache, kq)))
    graph.expand(attn)
    if shape.v_rot is not None:  # the rotation undone: a reshape of its matmul
        attn = view(hadamard(graph, attn, shape.v_rot, q_width * tokens))
    elif shape.flash_attn:  # build_attn_mha reshapes the flash-attention result (a view)
        attn = view(attn)
    gate = add("gate", "UNARY", q_width * tokens,
               add("gate_cont", "CONT", q_width * tokens, view(q_full, floats=half)))
    return add("attn_output", "MUL_MAT", graph.n_embd * tokens, weight("attn_output.weight"),
               add("attn_gated", "MUL", q_width * tokens, attn, gate))


def _delta_net(graph: GraphBuilder, x: Node, delta: DeltaNetShape, ssm: SsmShape,
               state: StateInputs, tokens: int, n_seqs: int) -> Node:
    """build_layer_attn_linear (the wqkv / wqkv_gate path) up to ssm_out."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    key_dim = delta.head_dim * delta.n_k_heads
    value_dim = delta.head_dim * delta.n_v_heads
    conv_dim = 2 * key_dim + value_dim
    qkv = add("qkv_mixed", "MUL_MAT", conv_dim * tokens, weight("attn_qkv.weight"), x)
    z = add("z", "MUL_MAT", value_dim * tokens, weight("attn_gate.weight"), x)
    ba = add("mixed_ba", "MUL_MAT", 2 * delta.n_v_heads * tokens, weight("ssm_ba.weight"), x)
    heads = delta.n_v_heads * tokens
    # b and a: the halves of each key head's 2 * n_v_heads / n_k_heads values (ggml_view_4d)
    per_group = delta.n_v_heads // delta.n_k_heads
    half = row_part(delta.n_k_heads * tokens, 2 * per_group, per_group)
    beta = add("beta", "UNARY", heads, add("b", "CONT", heads, view(ba, floats=half)))
    alpha = add("alpha_b", "ADD", heads, add("a", "CONT", heads, view(ba, floats=half)),
                weight("ssm_dt.bias"))
    gate = add("gate", "MUL", heads, add("a_softplus", "UNARY", heads, alpha), weight("ssm_a"))
    conv_cache, ssm_cache = (Node("cache", "NONE", 0, external=True) for _ in range(2))
    conv_states = read_states(graph, ssm, state, conv_cache, ssm.n_embd_r, n_seqs,
                               lambda states, ids: add("conv_states", "GET_ROWS",
                                                       ssm.n_embd_r * n_seqs, states, ids))
    per_seq = tokens // n_seqs
    conv_input = add("conv_input", "CONCAT", (delta.d_conv - 1 + per_seq) * conv_dim * n_seqs,
                     view(conv_states), view(qkv))
    # the last d_conv - 1 columns of each of the conv_dim * n_seqs rows
    store_state(graph, conv_input, conv_cache,
                row_part(conv_dim * n_seqs, delta.d_conv - 1 + per_seq, delta.d_conv - 1))
    states = read_states(graph, ssm, state, ssm_cache, ssm.n_embd_s, n_seqs,
                          lambda rows, ids: add("ssm_states", "GET_ROWS",
                                                ssm.n_embd_s * n_seqs, rows, ids))
    conv = add("conv_silu", "UNARY", conv_dim * tokens,
               add("conv_output_raw", "SSM_CONV", conv_dim * tokens, conv_input,
                   weight("ssm_conv1d.weight")))
    # q, k and v: each row's parts of the conv output (ggml_view_4d)
    q, k = (_l2_norm(graph, view(conv, floats=row_part(tokens, conv_dim, key_dim)),
                     key_dim * tokens) for _ in range(2))
    if delta.n_k_heads != delta.n_v_heads:  # repeat-interleave the key heads
        q = add("q_repeated", "REPEAT", delta.head_dim * delta.n_v_heads * tokens, view(q))
        k = add("k_repeated", "REPEAT", delta.head_dim * delta.n_v_heads * tokens, view(k))
    out = add("gated_delta_net", "GATED_DELTA_NET",
              value_dim * tokens + delta.head_dim * value_dim * n_seqs,
              view(q), view(k), view(conv, floats=row_part(tokens, conv_dim, value_dim)),
              view(gate), view(beta), view(states))
    store_state(graph, out, ssm_cache, delta.head_dim * value_dim * n_seqs)  # the states part
    normed = graph.rms_norm(view(out), value_dim * tokens, tensor="ssm_norm.weight")
    gated = add("norm_gated", "MUL", value_dim * tokens, normed,
                add("z_silu", "UNARY", value_dim * tokens, view(z)))
    return add("linear_attn_out", "MUL_MAT", graph.n_embd * tokens, weight("ssm_out.weight"),
               view(gated))


def _l2_norm(graph: GraphBuilder, x: Node, floats: int) -> Node:
    """build_gdn_l2_norm (models.h): ggml_scale of ggml_rms_norm."""
    return graph.add("l2_scaled", "SCALE", floats, graph.add("l2_norm", "RMS_NORM", floats, x))


def _ffn(graph: GraphBuilder, x: Node, moe: MoeLayout, delta: DeltaNetShape,
         tokens: int) -> Node:
    """build_layer_ffn: the routed experts, then the shared expert times sigmoid(its gate)."""
    add = graph.add
    routed = moe_ffn(graph, x, moe, tokens)
    if not delta.n_ff_shexp:
        return routed
    shared = dense_ffn(graph, x, delta.n_ff_shexp, tokens, shared=True)
    gate = add("shared_gate", "UNARY", tokens, add(
        "shared_gate_mm", "MUL_MAT", tokens, graph.weight_of("ffn_gate_inp_shexp.weight"), x))
    return add("ffn_out", "ADD", graph.n_embd * tokens, routed,
               add("ffn_shexp_gated", "MUL", graph.n_embd * tokens, shared, gate))
