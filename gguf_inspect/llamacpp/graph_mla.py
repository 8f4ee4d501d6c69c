"""Multi-head latent attention's Q, K and V as ``models/deepseek2.cpp`` builds them when the
cache holds the compressed latent (``is_mla``: the absorption optimisation), node by node on
``compute_graph``'s ``GraphBuilder``.

Q is projected through a low-rank bottleneck (``wq_a``, its norm, ``wq_b``; one ``wq`` for the
lite models), split into a no-rope and a rope part; the no-rope part is absorbed into the latent
space by ``wk_b``. K is the normed latent ``kv_cmpr`` joined to its roped part; V is the latent
itself (a view of the K cache in ``build_attn``, decompressed after attention by ``wv_b``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, row_part


@dataclass(frozen=True)
class MlaShape:
    """The MLA widths (llama_hparams n_lora_q, n_lora_kv, n_rot, n_embd_head_k_mla/_v_mla)."""

    n_lora_q: int  # 0: a lite model, one wq matmul
    n_lora_kv: int
    n_rot: int
    head_k: int  # n_embd_head_k_mla: no-rope plus rope part of each Q head
    head_v: int  # n_embd_head_v_mla: each head's width after wv_b


def _latent(graph: GraphBuilder, x: Node, mla: MlaShape, n_head: int, tokens: int,
            inp_pos: Node, norm: Callable[..., Node]) -> tuple[Node, Node, Node]:
    """What both branches of models/deepseek2.cpp build first: Q (through the Q LoRA, or one
    wq for the lite models), the roped k_pe and the normed latent kv_cmpr."""
    add, view, weight = graph.add, graph.view, graph.weight
    if mla.n_lora_q:
        q = add("q_a", "MUL_MAT", mla.n_lora_q * tokens, weight, x)
        q = add("q", "MUL_MAT", mla.head_k * n_head * tokens, weight,
                norm(q, mla.n_lora_q, role="attn_q_a_norm"))
    else:
        q = add("q_lite", "MUL_MAT", mla.head_k * n_head * tokens, weight, x)  # wq
    latent = mla.n_lora_kv + mla.n_rot
    kv_cmpr_pe = add("kv_cmpr_pe", "MUL_MAT", latent * tokens, weight, x)
    # the views are partial: each row's rope part or the rest (ggml_view_3d)
    k_pe = add("k_pe", "ROPE", mla.n_rot * tokens,
               view(kv_cmpr_pe, floats=row_part(tokens, latent, mla.n_rot)), inp_pos)
    # RMS_NORM of a view: never in place
    kv_cmpr = norm(view(kv_cmpr_pe, floats=row_part(tokens, latent, mla.n_lora_kv)),
                   mla.n_lora_kv, role="attn_kv_a_norm")
    return q, k_pe, kv_cmpr


def mla_qkv(graph: GraphBuilder, x: Node, mla: MlaShape, n_head: int, tokens: int,
            inp_pos: Node, norm: Callable[..., Node]) -> tuple[Node, Node, Node]:
    """Qcur, Kcur and Vcur of one layer (models/deepseek2.cpp, the ``is_mla`` branch)."""
    add, view, weight = graph.add, graph.view, graph.weight
    q, k_pe, kv_cmpr = _latent(graph, x, mla, n_head, tokens, inp_pos, norm)
    latent = mla.n_lora_kv + mla.n_rot
    heads = n_head * tokens
    q_pe = add("q_pe", "ROPE", mla.n_rot * heads,
               view(q, floats=row_part(heads, mla.head_k, mla.n_rot)), inp_pos)
    absorbed = add("q_nope_absorbed", "MUL_MAT", mla.n_lora_kv * heads, weight,
                   view(q, floats=row_part(heads, mla.head_k, mla.head_k - mla.n_rot)))
    q_cur = add("Qcur", "CONCAT", latent * n_head * tokens, view(absorbed), q_pe)
    v_cur = view(kv_cmpr, "Vcur")
    k_cur = add("Kcur", "CONCAT", latent * tokens, v_cur, k_pe)
    return q_cur, k_cur, v_cur


def mla_legacy_qkv(graph: GraphBuilder, x: Node, mla: MlaShape, n_head: int, tokens: int,
                   inp_pos: Node, norm: Callable[..., Node]) -> tuple[Node, Node, Node]:
    """Qcur, Kcur and Vcur of one layer of a DeepSeek-V2 file converted before llama.cpp's MLA
    (models/deepseek2.cpp, ``is_mla`` false): the normed latent is decompressed by attn_kv_b
    into each head's no-rope K and its V (made contiguous), Q is roped on its trailing n_rot
    values (ggml_rope_set_offset: the same ROPE node), and K joins the no-rope part to the
    roped k_pe repeated for every head; build_attn then runs plain MHA over the cache."""
    add, view = graph.add, graph.view
    q, k_pe, kv_cmpr = _latent(graph, x, mla, n_head, tokens, inp_pos, norm)
    nope, heads = mla.head_k - mla.n_rot, n_head * tokens
    kv = add("kv", "MUL_MAT", (nope + mla.head_v) * heads,
             graph.weight_of("attn_kv_b.weight"), kv_cmpr)
    k_nope = view(kv, "k_nope_view", floats=row_part(heads, nope + mla.head_v, nope))
    v_cur = add("Vcur_cont", "CONT", mla.head_v * heads,
                view(kv, "Vcur_view", floats=row_part(heads, nope + mla.head_v, mla.head_v)))
    q_cur = add("Qcur", "ROPE", mla.head_k * heads, view(q), inp_pos)
    k_cur = add("Kcur", "CONCAT", mla.head_k * heads, k_nope,
                add("k_pe_repeat", "REPEAT", mla.n_rot * heads, k_pe))
    return q_cur, k_cur, v_cur
