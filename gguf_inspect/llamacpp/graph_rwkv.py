"""RWKV-7's prompt-processing graph node by node on ``compute_graph``'s ``GraphBuilder``:
``llama_model_rwkv7::graph`` (src/models/rwkv7.cpp) with ``build_rwkv7_time_mix`` and
``build_rwkv7_channel_mix`` (src/models/rwkv7-base.cpp), the token shift loaded and stored by
``build_rwkv_token_shift_load`` / ``_store`` and the wkv state by ``build_rs``
(src/llama-graph.cpp), sized as ``ggml_rwkv_wkv7`` (ggml/src/ggml.c) sizes its result.

Unary ops (tanh, sigmoid, exp, relu, neg) are ``UNARY`` nodes, which ggml-alloc may run in
place; NORM, L2_NORM, CONCAT, REPEAT, SUM_ROWS and RWKV_WKV7 never are.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node
from gguf_inspect.llamacpp.graph_ssm import SsmShape, StateInputs, read_states, state_inputs


@dataclass(frozen=True)
class RwkvShape:
    """The widths rwkv7's load_arch_hparams reads: wkv head size and the LoRA ranks of the
    decay (w), in-context learning rate (a), value residual (v) and gate (g); the FFN width."""

    head_size: int
    n_lora_decay: int
    n_lora_iclr: int
    n_lora_value_res_mix: int
    n_lora_gate: int
    n_ff: int


def build_rwkv7_graph(n_embd: int, n_vocab: int, n_layer: int, tokens: int, n_seqs: int,
                      n_outputs: int, rwkv: RwkvShape, ssm: SsmShape
                      ) -> tuple[list[Node], tuple[Node, ...]]:
    """The graph's nodes in llama.cpp's order, and its unused input (``inp_embd``)."""
    graph = GraphBuilder(n_embd)
    add, view = graph.add, graph.view
    inp_tokens = Node("inp_tokens", "NONE", 4 * tokens, is_input=True)
    out_ids = Node("out_ids", "NONE", 4 * n_outputs, is_input=True)
    inp_l = add("embd", "GET_ROWS", n_embd * tokens, graph.weight, inp_tokens)
    graph.expand(inp_l)  # build_inp_embd
    # tok_norm, expanded by its first use; built as layer 0's (build_norm(..., 0),
    # models/rwkv7.cpp:133): its NORM is pinned with layer 0's norms
    graph.layer = 0
    inp_l = _layer_norm(graph, inp_l, n_embd * tokens, "token_embd_norm")
    state = state_inputs(ssm)
    first_value: Node | None = None
    for il in range(n_layer):
        graph.layer = il
        last = il == n_layer - 1
        # one reshape of the layer's input, read by attn_norm and by the residual ADD (copied
        # once when read on another device)
        inp_l = view(inp_l)
        token_shift = _load(graph, ssm, state, ssm.n_embd_r, n_seqs, "token_shift")
        att_norm = _layer_norm(graph, inp_l, n_embd * tokens, "attn_norm")
        # ggml_view_3d's partial views (a row per sequence; all but each sequence's last
        # token): sized, since a view read on another device is copied at its own size
        row, prefix = n_embd * n_seqs, n_embd * (tokens - n_seqs)
        x_prev = add("x_prev", "CONCAT", n_embd * tokens, view(token_shift, floats=row),
                     view(att_norm, floats=prefix))
        cur, first_value = _time_mix(graph, state, att_norm, x_prev, first_value, rwkv, ssm,
                                     n_embd, tokens, n_seqs)
        ffn_inp = add("ffn_inp", "ADD", n_embd * tokens, view(cur), inp_l)
        ffn_norm = _layer_norm(graph, ffn_inp, n_embd * tokens, "attn_norm_2")
        x_prev = add("x_prev", "CONCAT", n_embd * tokens, view(token_shift, floats=row),
                     view(ffn_norm, floats=prefix))
        shifted = add("token_shift", "CONCAT", 2 * n_embd * n_seqs, view(att_norm, floats=row),
                      view(ffn_norm, floats=row))
        cache = Node("cache", "NONE", 0, external=True)
        graph.expand(add("token_shift_store", "CPY", 0, view(shifted), view(cache),
                         view_of=cache))
        ffn_inp, ffn_norm, x_prev = view(ffn_inp), view(ffn_norm), view(x_prev)
        rows = n_outputs if last else tokens
        if last:  # build_inp_out_ids: the rows that produce outputs
            ffn_inp = add("ffn_inp_rows", "GET_ROWS", n_embd * rows, ffn_inp, out_ids)
            ffn_norm = add("ffn_norm_rows", "GET_ROWS", n_embd * rows, ffn_norm, out_ids)
            x_prev = add("x_prev_rows", "GET_ROWS", n_embd * rows, x_prev, out_ids)
        cur = _channel_mix(graph, ffn_norm, x_prev, rwkv.n_ff, n_embd, rows)
        inp_l = add("l_out", "ADD", n_embd * rows, cur, ffn_inp)
    graph.layer = n_layer  # the output head
    result_norm = _layer_norm(graph, inp_l, n_embd * n_outputs, "output_norm")
    result_norm.is_output = True
    logits = add("result_output", "MUL_MAT", n_vocab * n_outputs, graph.weight, result_norm)
    logits.is_output = True
    graph.expand(logits)
    return graph.nodes, (Node("inp_embd", "NONE", 4 * n_embd * tokens, is_input=True),)


def _layer_norm(graph: GraphBuilder, x: Node, floats: int, tensor: str) -> Node:
    """build_norm with LLM_NORM: NORM, the weight (MUL), the bias (ADD); ``tensor`` names
    both (``<tensor>.weight``, ``<tensor>.bias``)."""
    out = graph.add("norm_w", "MUL", floats, graph.add("norm", "NORM", floats, x),
                    graph.weight_of(f"{tensor}.weight"))
    return graph.add("norm_b", "ADD", floats, out, graph.weight_of(f"{tensor}.bias"))


def _load(graph: GraphBuilder, ssm: SsmShape, state: StateInputs, width: int, n_seqs: int,
          name: str) -> Node:
    """build_rs over one state tensor of the layer: its ubatch rows gathered (GET_ROWS)."""
    cache = Node("cache", "NONE", 0, external=True)
    return read_states(graph, ssm, state, cache, width, n_seqs,
                        lambda states, ids: graph.add(name, "GET_ROWS", width * n_seqs,
                                                      states, ids))


def _lora(graph: GraphBuilder, x: Node, rank: int, width: int, tokens: int,
          activation: bool, letter: str) -> Node:
    """w2 @ act(w1 @ x) (tanh for the decay, none for a and v, sigmoid for the gate), the
    weights time_mix_{letter}1 and time_mix_{letter}2."""
    low = graph.add("lora_1", "MUL_MAT", rank * tokens,
                    graph.weight_of(f"time_mix_{letter}1.weight"), x)
    if activation:
        low = graph.add("lora_act", "UNARY", rank * tokens, low)
    return graph.add("lora_2", "MUL_MAT", width * tokens,
                     graph.weight_of(f"time_mix_{letter}2.weight"), low)


def _time_mix(graph: GraphBuilder, state: StateInputs, cur: Node, x_prev: Node,
              first_value: Node | None, rwkv: RwkvShape, ssm: SsmShape, n_embd: int,
              tokens: int, n_seqs: int) -> tuple[Node, Node]:
    """build_rwkv7_time_mix: the layer's output (before its reshape) and the first layer's v."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    width = n_embd * tokens
    sx = add("sx", "REPEAT", 6 * width, add("sx", "SUB", width, x_prev, cur))
    xxx = add("xxx", "ADD", 6 * width,
              add("xxx", "MUL", 6 * width, sx, weight("time_mix_lerp_fused.weight")), cur)
    # ggml_view_2d of one n_embd x n_tokens slice each: a device that reads one copies it alone
    xr, xw, xk, xv, xa, xg = (view(xxx, name, floats=width)
                              for name in ("xr", "xw", "xk", "xv", "xa", "xg"))
    r = add("r", "MUL_MAT", width, weight("time_mix_receptance.weight"), xr)
    w = add("w", "ADD", width, _lora(graph, xw, rwkv.n_lora_decay, n_embd, tokens, True, "w"),
            weight("time_mix_w0.weight"))
    w = add("w_exp", "UNARY", width, add("w_scale", "SCALE", width,
                                         add("w_sigmoid", "UNARY", width, w)))
    k = add("k", "MUL_MAT", width, weight("time_mix_key.weight"), xk)
    v = add("v", "MUL_MAT", width, weight("time_mix_value.weight"), xv)
    if first_value is None:
        first_value = v
    else:  # the value residual: v + (v_first - v) * sigmoid(v2 @ v1 @ xv + v0)
        mix = add("v_mix", "ADD", width, _lora(graph, xv, rwkv.n_lora_value_res_mix, n_embd,
                                               tokens, False, "v"),
                  weight("time_mix_v0.weight"))
        v = add("v_res", "ADD", width, v, add("v_mul", "MUL", width,
                                              add("v_sub", "SUB", width, first_value, v),
                                              add("v_sig", "UNARY", width, mix)))
    g = _lora(graph, xg, rwkv.n_lora_gate, n_embd, tokens, True, "g")
    a = add("a", "ADD", width, _lora(graph, xa, rwkv.n_lora_iclr, n_embd, tokens, False, "a"),
            weight("time_mix_a0.weight"))
    a = add("a_sigmoid", "UNARY", width, a)
    kk = add("kk", "L2_NORM", width,
             view(add("kk", "MUL", width, k, weight("time_mix_k_k.weight"))))
    ka = add("ka", "MUL", width, k, weight("time_mix_k_a.weight"))
    k = add("k_mixed", "ADD", width, k, add("k_sub", "SUB", width,
                                             add("a_ka", "MUL", width, a, ka), ka))
    # r, w, k, v and a reshaped into heads once (ggml_reshape_3d), read by the WKV and after
    r, w, k, v, a = (view(node) for node in (r, w, k, v, a))
    wkv_state = _load(graph, ssm, state, ssm.n_embd_s, n_seqs, "wkv_state")
    wkv = add("wkv", "RWKV_WKV7", width + ssm.n_embd_s * n_seqs, r, w, k, v,
              add("kk_neg", "UNARY", width, kk), add("kk_a", "MUL", width, kk, a), wkv_state)
    cache = Node("cache", "NONE", 0, external=True)
    # the output's two parts (ggml_view_1d): the tokens' values, then the states stored
    graph.expand(add("wkv_store", "CPY", 0, view(wkv, floats=ssm.n_embd_s * n_seqs),
                     view(cache), view_of=cache))
    cur = add("ln", "NORM", width, view(wkv, floats=width))  # the group norm of the heads
    cur = add("ln_b", "ADD", width,
              add("ln_w", "MUL", width, view(cur), weight("time_mix_ln.weight")),
              weight("time_mix_ln.bias"))
    kr = add("kr", "MUL", width, add("kr", "MUL", width, k, r), weight("time_mix_r_k.weight"))
    rk = add("rk", "SUM_ROWS", n_embd // rwkv.head_size * tokens, kr)
    cur = add("wkv_out", "ADD", width, cur, view(add("v_rk", "MUL", width, v, rk)))
    cur = add("gated", "MUL", width, cur, g)
    return add("time_mix_out", "MUL_MAT", width, weight("time_mix_output.weight"), cur), \
        first_value


def _channel_mix(graph: GraphBuilder, cur: Node, x_prev: Node, n_ff: int, n_embd: int,
                 rows: int) -> Node:
    """build_rwkv7_channel_mix: value @ relu(key @ (cur + (x_prev - cur) * lerp_k))^2."""
    add, weight = graph.add, graph.weight_of
    sx = add("sx", "SUB", n_embd * rows, x_prev, cur)
    xk = add("xk", "ADD", n_embd * rows,
             add("xk", "MUL", n_embd * rows, sx, weight("channel_mix_lerp_k.weight")), cur)
    k = add("k", "MUL_MAT", n_ff * rows, weight("channel_mix_key.weight"), xk)
    k = add("k_sqr", "SQR", n_ff * rows, add("k_relu", "UNARY", n_ff * rows, k))
    return add("channel_mix_out", "MUL_MAT", n_embd * rows, weight("channel_mix_value.weight"), k)
