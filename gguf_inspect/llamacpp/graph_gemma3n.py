"""Gemma 3n's prompt-processing graph node by node on ``compute_graph``'s ``GraphBuilder``:
``llama_model_gemma3n::graph`` (src/models/gemma3n.cpp): the per-layer token embeddings and
their projection (``build_inp_per_layer``, ``project_per_layer_inputs``), the altup streams
(``altup_predict``, ``altup_correct``, the magnitudes of ``calc_magnitude``), laurel, gemma's
normed attention over the sliding-window / full caches, the FFN with activation sparsity
(``gaussian_topk`` on the first ``n_layer_sparsity`` layers, models/models.h) and the
soft-capped logits. Shapes as the ggml ops size them (ggml/src/ggml.c).

Layers from ``n_layer_kv_from_start`` (20) on hold no KV of their own (``hparams.has_kv``):
they compute Q alone and attend over the cache of their kind (sliding-window or full).
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, f16_casts, hadamard, soft_cap

N_LAYER_SPARSITY = 10  # llama_model_gemma3n::graph::n_layer_sparsity (models/models.h)


@dataclass(frozen=True)
class Gemma3nShape:
    """llama_hparams' fixed gemma3n widths (n_altup, n_embd_altup, laurel_rank), n_ff and the
    first layer that reuses an earlier layer's KV (n_layer_kv_from_start)."""

    n_altup: int
    n_embd_altup: int
    laurel_rank: int
    n_ff: int
    n_layer_kv_from_start: int


@dataclass(frozen=True)
class LayerAttention:
    """One layer's attention widths and the inputs of the cache it reads."""

    q_width: int
    kv_width: int
    n_head: int
    n_kv: int
    k_idxs: Node
    v_idxs: Node
    mask: Node
    k_rot: Node | None
    v_rot: Node | None
    has_kv: bool = True  # il < n_layer_kv_from_start: the layer writes its own K and V
    f32: tuple[bool, bool] = (False, False)  # K's and V's cache type is f32


def build_gemma3n_graph(n_embd: int, n_vocab: int, tokens: int, n_outputs: int,
                        gemma: Gemma3nShape, attention: list[LayerAttention],
                        flash_attn: bool) -> tuple[list[Node], tuple[Node, ...]]:
    """The graph's nodes in llama.cpp's order, and its unused input (``inp_embd``)."""
    graph = GraphBuilder(n_embd)
    add, view, weight = graph.add, graph.view, graph.weight
    width, altups = n_embd * tokens, gemma.n_altup
    inp_l = add("embd", "GET_ROWS", width, weight,
                Node("inp_tokens", "NONE", 4 * tokens, is_input=True))
    graph.expand(inp_l)  # build_inp_embd
    inp_l = add("inp_scaled", "SCALE", width, inp_l)
    inp_pos = Node("inp_pos", "NONE", 4 * tokens, is_input=True)
    per_layer = _per_layer_inputs(graph, inp_l, gemma, len(attention), tokens)
    target = _magnitude(graph, inp_l, tokens)
    repeated = add("inp_repeated", "REPEAT", width * (altups - 1), inp_l)
    added = add("altup_added", "MUL_MAT", width * (altups - 1), weight, repeated)
    added = add("altup_div", "DIV", width * (altups - 1),
                add("altup_mul", "MUL", width * (altups - 1), added, target),
                _magnitude(graph, added, tokens * (altups - 1)))
    inp_l = add("inp_stacked", "CONCAT", width * altups, inp_l, added)
    for il, layer in enumerate(attention):
        graph.layer = il
        inp_l = _layer(graph, inp_l, il, layer, gemma, per_layer, inp_pos, tokens, flash_attn)
    graph.layer = len(attention)  # the output head
    # the first stream and the others, each a view of the stack (copied on its own when the
    # head runs on another device)
    target = _magnitude(graph, view(inp_l, floats=width), tokens)
    unembd = add("altup_unembd", "MUL_MAT", width * (altups - 1), weight,
                 view(inp_l, floats=width * (altups - 1)))
    magnitude = _magnitude(graph, unembd, tokens * (altups - 1))
    unembd = add("altup_unembd_div", "DIV", width * (altups - 1),
                 add("altup_unembd_mul", "MUL", width * (altups - 1), unembd, target), magnitude)
    cur = view(inp_l, floats=width)
    for _ in range(altups - 1):
        cur = add("unembd_sum", "ADD", width, cur, view(unembd))
    cur = add("unembd_merged", "SCALE", width, cur)
    out_ids = Node("out_ids", "NONE", 4 * n_outputs, is_input=True)
    cur = add("out_rows", "GET_ROWS", n_embd * n_outputs, cur, out_ids)
    result_norm = graph.rms_norm(cur, n_embd * n_outputs, tensor="output_norm.weight")
    result_norm.is_output = True
    logits = add("result_output", "MUL_MAT", n_vocab * n_outputs, weight, result_norm)
    logits = soft_cap(graph, logits, n_vocab * n_outputs)
    logits.is_output = True
    graph.expand(logits)
    return graph.nodes, (Node("inp_embd", "NONE", 4 * width, is_input=True),)


def _magnitude(graph: GraphBuilder, x: Node, rows: int) -> Node:
    """calc_magnitude: sqrt(sum_rows(x^2)), one value per row."""
    squares = graph.add("sqr", "SQR", rows * graph.n_embd, x)
    return graph.add("sqrt", "SQRT", rows, graph.add("sum_rows", "SUM_ROWS", rows, squares))


def _per_layer_inputs(graph: GraphBuilder, inp_l: Node, gemma: Gemma3nShape, n_layer: int,
                      tokens: int) -> Node:
    """build_inp_per_layer (its own token input, expanded at once) and
    project_per_layer_inputs: [n_embd_altup, n_tokens, n_layer], made contiguous."""
    add, view = graph.add, graph.view
    floats = gemma.n_embd_altup * n_layer * tokens
    tokens_input = Node("inp_per_layer_tokens", "NONE", 4 * tokens, is_input=True)
    selected = add("inp_per_layer_selected", "SCALE", floats,
                   view(add("per_layer_rows", "GET_ROWS", floats, graph.weight, tokens_input)))
    graph.expand(selected)
    projected = add("per_layer_proj", "SCALE", floats,
                    add("per_layer_mm", "MUL_MAT", floats, graph.weight, inp_l))
    projected = graph.rms_norm(view(projected), floats, role="per_layer_norm")
    summed = add("inp_per_layer", "SCALE", floats,
                 add("inp_per_layer_sum", "ADD", floats, projected, selected))
    return add("inp_per_layer_cont", "CONT", floats, view(summed))


def _modalities(graph: GraphBuilder, x: Node, altups: int, tokens: int) -> Node:
    """altup_compute_router_modalities: tanh(router @ (rms_norm(x) * w / n_embd))."""
    scaled = graph.add("router_scaled", "SCALE", graph.n_embd * tokens, graph.rms_norm(
        x, graph.n_embd * tokens, tensor="altup_router_norm.weight"))
    routed = graph.add("router", "MUL_MAT", altups * tokens,
                       graph.weight_of("altup_router.weight"), scaled)
    return graph.add("modalities", "UNARY", altups * tokens, routed)


def _layer(graph: GraphBuilder, inp_l: Node, il: int, layer: LayerAttention,
           gemma: Gemma3nShape, per_layer: Node, inp_pos: Node, tokens: int,
           flash_attn: bool) -> Node:
    add, view, weight = graph.add, graph.view, graph.weight
    width, altups = graph.n_embd * tokens, gemma.n_altup
    # altup_predict
    coefs = add("all_coefs", "MUL_MAT", altups * altups * tokens,
                graph.weight_of("altup_predict_coef.weight"),
                _modalities(graph, view(inp_l, floats=width), altups, tokens))
    permuted = add("cur_permuted", "CONT", width * altups, view(inp_l))
    predictions = add("predictions", "MUL_MAT", width * altups, permuted, view(coefs))
    predictions = add("predictions", "ADD", width * altups,
                      add("predictions_cont", "CONT", width * altups, view(predictions)), inp_l)
    active = view(predictions)
    cur = graph.rms_norm(active, width, tensor="attn_norm.weight")
    laurel = add("laurel_r", "MUL_MAT", width, graph.weight_of("laurel_r.weight"),
                 add("laurel_l", "MUL_MAT", gemma.laurel_rank * tokens,
                     graph.weight_of("laurel_l.weight"), cur))
    laurel = add("laurel_out", "ADD", width,
                 graph.rms_norm(laurel, width, tensor="laurel_post_norm.weight"), cur)
    cur = _attention(graph, cur, layer, inp_pos, tokens, flash_attn)
    cur = add("attn_gated", "ADD", width,
              graph.rms_norm(cur, width, tensor="post_attention_norm.weight"), view(predictions))
    attn_laurel = add("attn_laurel", "SCALE", width, add("attn_laurel", "ADD", width, cur,
                                                         laurel))
    cur = _ffn(graph, graph.rms_norm(attn_laurel, width, tensor="ffn_norm.weight"), gemma.n_ff,
               tokens, il < N_LAYER_SPARSITY)
    activated = add("attn_ffw_laurel_gated", "ADD", width,
                    graph.rms_norm(cur, width, tensor="post_ffw_norm.weight"), attn_laurel)
    # altup_correct
    modalities = _modalities(graph, activated, altups, tokens)
    innovation = add("innovation", "SUB", width, activated, view(predictions))
    coefs = add("correct_coefs", "SCALE", altups * tokens,
                add("correct_coefs", "MUL_MAT", altups * tokens,
                    graph.weight_of("altup_correct_coef.weight"), modalities))
    coefs = add("correct_coefs_cont", "CONT", altups * tokens, view(coefs))
    corrected = add("corrected", "MUL", width * altups,
                    add("innovation_repeated", "REPEAT", width * altups, innovation), coefs)
    corrected = add("corrected", "ADD", width * altups, corrected, predictions)
    # the first prediction through the per-layer input, added to the other streams; each reads
    # a view of part of its tensor (the active stream, the other streams, this layer's slice
    # of the per-layer input), copied alone at its size when read on another device
    first = add("first_prediction", "MUL", width, view(corrected, floats=width),
                graph.weight_of("altup_correct_scale.weight"))
    first = add("first_gelu", "UNARY", gemma.n_embd_altup * tokens,
                add("inp_gate", "MUL_MAT", gemma.n_embd_altup * tokens,
                    graph.weight_of("inp_gate.weight"), first))
    first = add("first_scaled", "MUL", gemma.n_embd_altup * tokens, first,
                view(per_layer, floats=gemma.n_embd_altup * tokens))
    first = graph.rms_norm(add("per_layer_proj", "MUL_MAT", width, graph.weight_of("proj.weight"),
                               first), width, tensor="post_norm.weight")
    rest = add("corrected_rest", "ADD", width * (altups - 1),
               view(corrected, floats=width * (altups - 1)), first)
    return add("l_out", "CONCAT", width * altups, view(corrected, floats=width), rest)


def _attention(graph: GraphBuilder, x: Node, layer: LayerAttention, inp_pos: Node,
               tokens: int, flash_attn: bool) -> Node:
    """build_qkv, Q and K normed then roped, V RMS-normed without a weight, build_attn (a
    quantized cache's rotations; the sliding-window input: q, k, v expanded, then the cache
    writes) and wo."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    q = add("Qcur", "MUL_MAT", layer.q_width * tokens, weight("attn_q.weight"), x)
    q = add("Qrope", "ROPE", layer.q_width * tokens,
            graph.rms_norm(view(q), layer.q_width * tokens, tensor="attn_q_norm.weight"),
            inp_pos)
    q = hadamard(graph, q, layer.k_rot, layer.q_width * tokens)
    cache = Node("cache", "NONE", 0, external=True)
    if layer.has_kv:
        k = add("Kcur", "MUL_MAT", layer.kv_width * tokens, weight("attn_k.weight"), x)
        v = add("Vcur", "MUL_MAT", layer.kv_width * tokens, weight("attn_v.weight"), x)
        k = add("Krope", "ROPE", layer.kv_width * tokens,
                graph.rms_norm(view(k), layer.kv_width * tokens, tensor="attn_k_norm.weight"),
                inp_pos)
        v = graph.rms_norm(view(v), layer.kv_width * tokens, weighted=False)
        k = hadamard(graph, k, layer.k_rot, layer.kv_width * tokens)
        v = hadamard(graph, v, layer.v_rot, layer.kv_width * tokens)
        for part in (q, k, v):
            graph.expand(part)
        graph.expand(add("set_k", "SET_ROWS", 0, view(k), layer.k_idxs, cache, view_of=cache))
        graph.expand(add("set_v", "SET_ROWS", 0, view(v), layer.v_idxs, cache, view_of=cache))
    else:  # Q alone, over the cache an earlier layer of the same kind wrote
        graph.expand(q)
    if flash_attn:
        view_values = layer.n_kv * layer.kv_width  # each cache view: every cell's K (or V)
        keys, values = f16_casts(graph, cache, layer.f32, view_values, view_values)
        attn = add("fattn", "FLASH_ATTN_EXT", layer.q_width * tokens, view(q), keys, values,
                   layer.mask)
    else:
        scores = layer.n_kv * tokens * layer.n_head
        kq = add("kq_soft_max", "SOFT_MAX", scores,
                 add("kq", "MUL_MAT", scores, cache, view(q)), layer.mask)
        attn = add("kqv_out", "CONT", layer.q_width * tokens,
                   view(add("kqv", "MUL_MAT", layer.q_width * tokens, cache, kq)))
    graph.expand(attn)
    attn = hadamard(graph, attn, layer.v_rot, layer.q_width * tokens)
    return add("attn_out", "MUL_MAT", graph.n_embd * tokens, weight("attn_output.weight"),
               view(attn))


def _ffn(graph: GraphBuilder, x: Node, n_ff: int, tokens: int, sparse: bool) -> Node:
    """up and gate; gaussian_topk on the gate (sparse layers); gelu(gate) * up; down."""
    add, weight = graph.add, graph.weight_of
    floats = n_ff * tokens
    up = add("ffn_up", "MUL_MAT", floats, weight("ffn_up.weight"), x)
    gate = add("ffn_gate", "MUL_MAT", floats, weight("ffn_gate.weight"), x)
    if sparse:  # relu(x - (mean + std * f_sparsity_std_mul))
        mean = add("mean", "MEAN", tokens, gate)
        spread = add("sum_rows", "SUM_ROWS", tokens,
                     add("sqr", "SQR", floats, add("centered", "SUB", floats, gate, mean)))
        std = add("std", "SQRT", tokens, add("variance", "SCALE", tokens, spread))
        cutoff = add("cutoff", "ADD", tokens, mean, add("std_scaled", "SCALE", tokens, std))
        gate = add("sparse", "UNARY", floats, add("sparse_sub", "SUB", floats, gate, cutoff))
    gate = add("ffn_gelu", "UNARY", floats, gate)
    return add("ffn_out", "MUL_MAT", graph.n_embd * tokens, weight("ffn_down.weight"),
               add("ffn_mul", "MUL", floats, up, gate))
