"""The feed-forward blocks of llama.cpp's graphs, node by node: ``build_ffn`` and
``build_moe_ffn`` (src/llama-graph.cpp), on the ``GraphBuilder`` of ``compute_graph``.

Sizes are ggml_nbytes of each op's result (f32 activations, i32 expert ids); the node order is
the one ``ggml_build_forward_expand`` gives (a depth-first walk of each expanded tensor's
sources, first source first), so the builders only expand where llama.cpp does.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, row_part


@dataclass(frozen=True)
class MoeLayout:
    """What ``build_moe_ffn``'s node list depends on, as each model's graph calls it."""

    n_expert: int
    n_expert_used: int
    n_ff_exp: int  # each expert's width
    n_ff_shexp: int = 0  # the shared expert's width (build_ffn beside the experts), 0: none
    gating: str = "softmax"  # LLAMA_EXPERT_GATING_FUNC_TYPE_*: softmax, sigmoid, softmax_weight
    norm_w: bool = True  # weights divided by their sum (SUM_ROWS, CLAMP, DIV)
    w_scale: bool = False  # SCALE of the weights (expert_weights_scale not 0 or 1)
    probs_bias: bool = False  # exp_probs_b: selection probabilities biased (ADD)
    gate_inp_bias: bool = False  # router bias (ADD on the logits)
    expert_bias: bool = False  # up/gate/down expert biases (ADD_ID)
    # LLM_ARCH_LLAMA4: experts chosen from the logits (not the sigmoid), and the input repeated
    # per chosen expert and weighted before the expert matmuls instead of after them
    weight_before_ffn: bool = False
    # LLM_FFN_RELU_SQR without gate experts (nemotron-h.cpp): up, RELU, SQR, down; its shared
    # expert is an ungated ReLU^2 build_ffn too
    relu_sqr: bool = False
    # moe_latent_size (nemotron-h.cpp, Nemotron 3 Super): the experts read ffn_latent_down's
    # projection of the input and write this width, which ffn_latent_up projects back
    latent: int = 0


def dense_ffn(graph: GraphBuilder, x: Node, width: int, rows: int, gated: bool = True,
              bias: bool = False, fused: bool = False, relu_sqr: bool = False,
              shared: bool = False) -> Node:
    """build_ffn with a parallel gate (SILU/GELU GLU) or, ungated, up then an in-place
    activation; biases are in-place ADDs. ``fused``: LLM_FFN_SWIGLU, one up matmul twice as
    wide that ggml_swiglu halves (phi3). ``relu_sqr``: LLM_FFN_RELU_SQR, ggml_relu then
    ggml_sqr, both in place (nemotron-h). ``shared``: a MoE's shared expert, whose weights are
    ffn_{up,gate,down}_shexp."""
    def weight(tensor: str) -> Node:
        return graph.weight_of(f"{tensor}_shexp.weight") if shared else graph.weight

    if fused:
        up = graph.add("ffn_up", "MUL_MAT", 2 * width * rows, graph.weight, x)
        act = graph.add("ffn_swiglu", "GLU", width * rows, up)
        return graph.add("ffn_out", "MUL_MAT", graph.n_embd * rows, graph.weight, act)
    up = graph.add("ffn_up", "MUL_MAT", width * rows, weight("ffn_up"), x)
    if bias:
        up = graph.add("ffn_up_b", "ADD", width * rows, up, graph.weight)
    if gated:
        gate = graph.add("ffn_gate", "MUL_MAT", width * rows, weight("ffn_gate"), x)
        act = graph.add("ffn_glu", "GLU", width * rows, gate, up)
    else:
        act = graph.add("ffn_act", "UNARY", width * rows, up)
        if relu_sqr:
            act = graph.add("ffn_sqr", "SQR", width * rows, act)
    out = graph.add("ffn_out", "MUL_MAT", graph.n_embd * rows, weight("ffn_down"), act)
    if bias:
        out = graph.add("ffn_out_b", "ADD", graph.n_embd * rows, out, graph.weight)
    return out


def moe_ffn(graph: GraphBuilder, x: Node, layout: MoeLayout, rows: int) -> Node:
    """build_moe_ffn: router, top-k, weights, expert matmuls (MUL_MAT_ID), weighted sum; with
    ``latent`` between nemotron-h.cpp's latent projections, and the shared expert beside it."""
    n_expert, used, n_embd = layout.n_expert, layout.n_expert_used, graph.n_embd
    logits = graph.add("ffn_moe_logits", "MUL_MAT", n_expert * rows, graph.weight, x)
    if layout.gate_inp_bias:
        logits = graph.add("ffn_moe_logits_biased", "ADD", n_expert * rows, logits,
                           graph.weight_of("ffn_gate_inp.bias"))
    probs = {"softmax": lambda: graph.add("ffn_moe_probs", "SOFT_MAX", n_expert * rows, logits),
             "sigmoid": lambda: graph.add("ffn_moe_probs", "UNARY", n_expert * rows, logits),
             }.get(layout.gating, lambda: logits)()
    selection = logits if layout.weight_before_ffn else probs
    if layout.probs_bias:
        selection = graph.add("ffn_moe_probs_biased", "ADD", n_expert * rows, probs,
                              graph.weight_of("exp_probs_b.bias"))
    argsort = graph.add("ffn_moe_argsort", "ARGSORT", n_expert * rows, selection)
    # the first n_expert_used ids of each row (ggml_view_2d of the argsort): a partial view
    topk = graph.view(argsort, "ffn_moe_topk", floats=row_part(rows, n_expert, used))
    weights = graph.add("ffn_moe_weights", "GET_ROWS", used * rows, graph.view(probs), topk)
    if layout.gating == "softmax_weight":
        weights = graph.add("ffn_moe_weights_softmax", "SOFT_MAX", used * rows,
                            graph.view(weights))
        weights = graph.view(weights)
    if layout.norm_w:
        flat = graph.view(weights)
        total = graph.add("ffn_moe_weights_sum", "SUM_ROWS", rows, flat)
        total = graph.add("ffn_moe_weights_sum_clamped", "CLAMP", rows, total)
        weights = graph.view(graph.add("ffn_moe_weights_norm", "DIV", used * rows, flat, total))
    if layout.w_scale:
        weights = graph.add("ffn_moe_weights_scaled", "SCALE", used * rows, weights)
    graph.expand(weights)
    # the experts' input: x, or its latent projection (nemotron-h.cpp's inp_latent)
    inner = x if not layout.latent else graph.add(
        "ffn_latent_down", "MUL_MAT", layout.latent * rows,
        graph.weight_of("ffn_latent_down.weight"), x)
    out = _experts(graph, inner, layout, weights, topk, rows)
    if layout.latent:
        out = graph.add("ffn_latent_up", "MUL_MAT", n_embd * rows,
                        graph.weight_of("ffn_latent_up.weight"), out)
    if layout.n_ff_shexp:
        shared = dense_ffn(graph, x, layout.n_ff_shexp, rows, gated=not layout.relu_sqr,
                           relu_sqr=layout.relu_sqr, shared=True)
        out = graph.add("ffn_out", "ADD", n_embd * rows, out, shared)
    return out


def _experts(graph: GraphBuilder, x: Node, layout: MoeLayout, weights: Node, topk: Node,
             rows: int) -> Node:
    """build_moe_ffn after the weights: the chosen experts' matmuls on ``x`` (MUL_MAT_ID), the
    activation, the weighting and the sum of the chosen experts' outputs."""
    used, n_embd = layout.n_expert_used, layout.latent or graph.n_embd
    cur = graph.view(x)
    if layout.weight_before_ffn:  # ggml_repeat_4d to [n_embd, used, rows], then MUL
        repeated = graph.add("ffn_moe_repeat", "REPEAT", n_embd * used * rows, cur)
        cur = graph.add("ffn_moe_weighted", "MUL", n_embd * used * rows, repeated, weights)
    width = layout.n_ff_exp * used * rows
    up = graph.add("ffn_moe_up", "MUL_MAT_ID", width, graph.weight, cur, topk)
    if layout.expert_bias:
        up = graph.add("ffn_moe_up_biased", "ADD_ID", width, up,
                       graph.weight_of("ffn_up_exps.bias"), topk)
    if layout.relu_sqr:  # no gate experts: ggml_relu, then ggml_sqr of up
        act = graph.add("ffn_moe_relu_sqr", "SQR", width,
                        graph.add("ffn_moe_relu", "UNARY", width, up))
    else:  # gate experts: build_moe_ffn's GLU of gate and up
        gate = graph.add("ffn_moe_gate", "MUL_MAT_ID", width, graph.weight, cur, topk)
        if layout.expert_bias:
            gate = graph.add("ffn_moe_gate_biased", "ADD_ID", width, gate,
                             graph.weight_of("ffn_gate_exps.bias"), topk)
        act = graph.add("ffn_moe_glu", "GLU", width, gate, up)
    experts = graph.add("ffn_moe_down", "MUL_MAT_ID", n_embd * used * rows, graph.weight, act,
                        topk)
    if layout.expert_bias:
        experts = graph.add("ffn_moe_down_biased", "ADD_ID", n_embd * used * rows, experts,
                            graph.weight_of("ffn_down_exps.bias"), topk)
    if not layout.weight_before_ffn:
        experts = graph.add("ffn_moe_weighted", "MUL", n_embd * used * rows, experts, weights)
    graph.expand(experts)
    slices = [graph.view(experts) for _ in range(used)]
    for piece in slices:  # "order the views before the adds"
        graph.expand(piece)
    out = slices[0]
    for piece in slices[1:]:
        out = graph.add("ffn_moe_out", "ADD", n_embd * rows, out, piece)
        graph.expand(out)
    if used == 1:  # a lone view is made contiguous
        out = graph.add("ffn_moe_out", "CONT", n_embd * rows, out)
    return out
