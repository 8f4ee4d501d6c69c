"""The state-space mixers of llama.cpp's recurrent and hybrid graphs, node by node on
``compute_graph``'s ``GraphBuilder``: ``build_mamba_layer`` and ``build_mamba2_layer``
(src/models/mamba-base.cpp) with the state reads and writes of ``build_rs``
(src/llama-graph.cpp), sized as ``ggml_ssm_conv`` and ``ggml_ssm_scan`` (ggml/src/ggml.c) size
their results.

At ``sched_reserve`` the recurrent memory is a full context (``llama_memory_recurrent_context``
with ``is_full``): ``n_rs`` is the whole state size, the head 0 and ``rs_z`` 0, so each
``build_rs`` zeroes one row in place, gathers the ubatch's ``n_seqs`` rows and copies the
other ``n_rs - n_seqs`` back (GET_ROWS, then a CPY into the cache: a view that owns nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, row_part

MAMBA, MAMBA2, SHORTCONV = "mamba", "mamba2", "shortconv"


@dataclass(frozen=True)
class SsmShape:
    """The SSM widths (llama_hparams ssm_d_conv, ssm_d_inner, ssm_d_state, ssm_dt_rank,
    ssm_n_group; for Mamba2 the time-step rank is the head count) and the state rows."""

    n_embd_r: int  # llama_hparams::n_embd_r: the conv state row
    n_embd_s: int  # llama_hparams::n_embd_s: the ssm state row
    # the widths a mixer reads (rwkv7's own graph reads only the two rows above; lfm2's short
    # convolution d_conv and d_inner too)
    d_conv: int = 0
    d_inner: int = 0
    d_state: int = 0
    dt_rank: int = 0
    n_group: int = 1
    # the recurrent memory's size (mem_size): rows build_rs reads and writes back; the
    # context's, set by memory.graph_shape (max(1, n_seq_max))
    n_rs: int = 1
    dt_b_c_rms: bool = False  # Mamba1 variants (FalconMamba) norm dt, B and C


@dataclass
class StateInputs:
    """build_rs_inp_impl: one i32 input ``rs_s_copy`` of n_rs rows, and its two views
    ``s_copy_main`` (the ubatch's n_seqs rows) and ``s_copy_extra`` (the rest), made once for
    the graph (every layer's build_rs reads the same two tensors: a device that reads them
    copies each once), by the first read_states."""

    s_copy: Node
    main: Node | None = None
    extra: Node | None = None


def state_inputs(ssm: SsmShape) -> StateInputs:
    return StateInputs(Node("rs_s_copy", "NONE", 4 * ssm.n_rs, is_input=True))


def read_states(graph: GraphBuilder, ssm: SsmShape, inputs: StateInputs, cache: Node,
                 width: int, n_seqs: int, gather: Callable[[Node, Node], Node]) -> Node:
    """build_rs: zero one row (ggml_scale_inplace on a view of the cache), gather the
    ubatch's rows (``gather``: GET_ROWS, or SSM_SCAN for the ssm states), copy the rest."""
    states = graph.view(cache, "states", floats=width * ssm.n_rs)  # the layer's whole state
    graph.expand(graph.add("state_zero", "SCALE", 0, graph.view(states), view_of=cache))
    if inputs.main is None or inputs.extra is None:
        # ggml_view_1d: n_seqs ids from the first, then n_rs - n_seqs after them
        inputs.main = graph.view(inputs.s_copy, "s_copy_main", floats=n_seqs)
        inputs.extra = graph.view(inputs.s_copy, "s_copy_extra", floats=ssm.n_rs - n_seqs)
    rows = gather(states, inputs.main)
    graph.expand(rows)
    extra = graph.add("states_extra", "GET_ROWS", width * (ssm.n_rs - n_seqs), states,
                      inputs.extra)
    graph.expand(graph.add("states_extra_cpy", "CPY", 0, extra, graph.view(cache),
                           view_of=cache))
    return rows


def _state_caches() -> tuple[Node, Node]:
    """The layer's r (conv) and s (ssm) state tensors: in the RS buffers, not the graph's
    (named "cache" like the KV cache, which the scheduler places the same way)."""
    return (Node("cache", "NONE", 0, external=True), Node("cache", "NONE", 0, external=True))


def store_state(graph: GraphBuilder, source: Node, cache: Node, floats: int | None = None
                ) -> None:
    """ggml_cpy of a view (``floats``: the part of ``source`` it spans, when partial) into a
    view of the state cache, expanded at once."""
    graph.expand(graph.add("state_store", "CPY", 0, graph.view(source, floats=floats),
                           graph.view(cache), view_of=cache))


def ssm_mixer(graph: GraphBuilder, x: Node, ssm: SsmShape, kind: str, tokens: int,
              n_seqs: int, inputs: StateInputs) -> Node:
    """One Mamba (``kind`` "mamba") or Mamba2 ("mamba2") mixer over ``tokens`` rows of the
    normed input ``x``: the layer's output, n_embd x tokens."""
    if kind == MAMBA2:
        return _mamba2(graph, x, ssm, tokens, n_seqs, inputs)
    if kind == SHORTCONV:
        return _shortconv(graph, x, ssm, tokens, n_seqs, inputs)
    return _mamba(graph, x, ssm, tokens, n_seqs, inputs)


def _conv(graph: GraphBuilder, ssm: SsmShape, inputs: StateInputs, cache: Node, xin: Node,
          width: int, tokens: int, n_seqs: int) -> Node:
    """The conv state joined to the ubatch's columns (CONCAT), the last d_conv - 1 columns
    stored back, ggml_ssm_conv ({width, n_seq_tokens, n_seqs}), its bias and SILU."""
    gathered = read_states(graph, ssm, inputs, cache, ssm.n_embd_r, n_seqs,
                            lambda states, ids: graph.add("conv_states", "GET_ROWS",
                                                          ssm.n_embd_r * n_seqs, states, ids))
    per_seq = tokens // n_seqs
    conv_x = graph.add("conv_x", "CONCAT", (ssm.d_conv - 1 + per_seq) * width * n_seqs,
                       graph.view(gathered), graph.view(xin))
    # the last d_conv - 1 columns of each of the width * n_seqs rows
    store_state(graph, conv_x, cache,
                row_part(width * n_seqs, ssm.d_conv - 1 + per_seq, ssm.d_conv - 1))
    out = graph.add("ssm_conv", "SSM_CONV", width * tokens, conv_x,
                    graph.weight_of("ssm_conv1d.weight"))
    out = graph.add("ssm_conv_b", "ADD", width * tokens, out, graph.weight_of("ssm_conv1d.bias"))
    return graph.add("ssm_conv_silu", "UNARY", width * tokens, out)


def _scan(graph: GraphBuilder, ssm: SsmShape, inputs: StateInputs, cache: Node, x: Node,
          dt: Node, b: Node, c: Node, tokens: int, n_seqs: int) -> Node:
    """ggml_ssm_scan through build_rs: y and the final states in one f32 tensor
    (d_inner per token, then d_state * d_inner per sequence, K = 1), the states stored."""
    floats = ssm.d_inner * tokens + ssm.d_state * ssm.d_inner * n_seqs
    y_ssm = read_states(graph, ssm, inputs, cache, ssm.n_embd_s, n_seqs,
                         lambda states, ids: graph.add("ssm_scan", "SSM_SCAN", floats,
                                                       graph.view(states), x, dt,
                                                       graph.weight_of("ssm_a"), b, c, ids))
    store_state(graph, y_ssm, cache, ssm.d_state * ssm.d_inner * n_seqs)  # the states part
    return y_ssm


def _mamba(graph: GraphBuilder, x: Node, ssm: SsmShape, tokens: int, n_seqs: int,
           inputs: StateInputs) -> Node:
    """build_mamba_layer: x and z halves of ssm_in, dt, B and C from ssm_x (dt made
    contiguous, or the three normed), dt through ssm_dt."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    conv_cache, ssm_cache = _state_caches()
    d_inner = ssm.d_inner
    xz = add("ssm_in", "MUL_MAT", 2 * d_inner * tokens, weight("ssm_in.weight"), view(x))
    half = row_part(tokens, 2 * d_inner, d_inner)  # x and z: each row's halves
    conv = _conv(graph, ssm, inputs, conv_cache, view(xz, "x", floats=half), d_inner, tokens,
                 n_seqs)
    x_db_width = ssm.dt_rank + 2 * ssm.d_state
    x_db = add("ssm_x", "MUL_MAT", x_db_width * tokens, weight("ssm_x.weight"), conv)
    state_part = row_part(tokens, x_db_width, ssm.d_state)
    b, c = view(x_db, "B", floats=state_part), view(x_db, "C", floats=state_part)
    dt = view(x_db, "dt", floats=row_part(tokens, x_db_width, ssm.dt_rank))
    if ssm.dt_b_c_rms:  # build_norm of the views without a weight: the mamba loader makes no
        # ssm_dt_norm / ssm_b_norm / ssm_c_norm (models/mamba-base.cpp build_mamba_layer)
        dt = graph.rms_norm(dt, ssm.dt_rank * tokens, weighted=False)
        b, c = (graph.rms_norm(part, ssm.d_state * tokens, weighted=False) for part in (b, c))
    else:
        dt = add("dt_cont", "CONT", ssm.dt_rank * tokens, dt)
    dt = add("ssm_dt", "MUL_MAT", d_inner * tokens, weight("ssm_dt.weight"), dt)
    dt = add("ssm_dt_b", "ADD", d_inner * tokens, dt, weight("ssm_dt.bias"))
    y_ssm = _scan(graph, ssm, inputs, ssm_cache, view(conv), dt, b, c, tokens, n_seqs)
    y = _gate(graph, y_ssm, conv, view(xz, "z", floats=half), d_inner, tokens)
    out = add("ssm_out", "MUL_MAT", graph.n_embd * tokens, weight("ssm_out.weight"), y)
    return view(out)  # ggml_reshape_2d back to {n_embd, n_tokens}


def _mamba2(graph: GraphBuilder, x: Node, ssm: SsmShape, tokens: int, n_seqs: int,
            inputs: StateInputs) -> Node:
    """build_mamba2_layer: z, xBC and dt from one ssm_in; heads of d_inner / dt_rank; the
    grouped RMS norm before ssm_out."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    conv_cache, ssm_cache = _state_caches()
    d_inner, n_head = ssm.d_inner, ssm.dt_rank
    groups = ssm.n_group * ssm.d_state
    xbc_width = d_inner + 2 * groups
    width = d_inner + xbc_width + n_head  # z, xBC and dt: each row's parts
    zxbcdt = add("ssm_in", "MUL_MAT", width * tokens, weight("ssm_in.weight"), x)
    xbc = _conv(graph, ssm, inputs, conv_cache,
                view(zxbcdt, "xBC", floats=row_part(tokens, width, xbc_width)), xbc_width,
                tokens, n_seqs)
    x_heads = view(xbc, "x", floats=row_part(tokens, xbc_width, d_inner))
    b = view(xbc, "B", floats=row_part(tokens, xbc_width, groups))
    c = view(xbc, "C", floats=row_part(tokens, xbc_width, groups))
    dt = add("dt_cont", "CONT", n_head * tokens,
             view(zxbcdt, "dt", floats=row_part(tokens, width, n_head)))
    dt = add("ssm_dt_b", "ADD", n_head * tokens, dt, weight("ssm_dt.bias"))
    y_ssm = _scan(graph, ssm, inputs, ssm_cache, x_heads, dt, b, c, tokens, n_seqs)
    y = _gate(graph, y_ssm, x_heads, view(zxbcdt, "z", floats=row_part(tokens, width, d_inner)),
              d_inner, tokens)
    # the grouped RMS norm of a reshape (never in place): every Mamba2 loader modelled here
    # requires ssm_norm (mamba2.cpp, granite-hybrid.cpp, nemotron-h.cpp)
    y = graph.rms_norm(view(y), d_inner * tokens, tensor="ssm_norm.weight")
    return add("ssm_out", "MUL_MAT", graph.n_embd * tokens, weight("ssm_out.weight"), view(y))


def _gate(graph: GraphBuilder, y_ssm: Node, x: Node, z: Node, d_inner: int,
          tokens: int) -> Node:
    """y + x * D, then ggml_swiglu_split(ggml_cont(z), y): the CONT is the GLU's first
    source, so it is listed before the MUL and ADD."""
    add = graph.add
    z_cont = add("z_cont", "CONT", d_inner * tokens, z)
    skip = add("y_skip", "MUL", d_inner * tokens, x, graph.weight_of("ssm_d"))
    # y: the first d_inner * tokens floats of the scan's output (the states follow)
    y = add("y_add_d", "ADD", d_inner * tokens, graph.view(y_ssm, "y", floats=d_inner * tokens),
            skip)
    return add("y_gated", "GLU", d_inner * tokens, z_cont, y)


def _shortconv(graph: GraphBuilder, x: Node, ssm: SsmShape, tokens: int, n_seqs: int,
               inputs: StateInputs) -> Node:
    """build_shortconv_block (models/lfm2.cpp): b, c and x thirds of in_proj; b * x joined to
    the conv state (CONCAT, the last l_cache - 1 columns stored back: one slot, n_rs_seq 0),
    ggml_ssm_conv, c times it (in place over the conv) and out_proj."""
    add, view, weight = graph.add, graph.view, graph.weight_of
    width = ssm.d_inner  # n_embd
    bcx = add("in_proj", "MUL_MAT", 3 * width * tokens, weight("shortconv.in_proj.weight"),
              view(x))
    third = row_part(tokens, 3 * width, width)  # b, c and x: each row's thirds
    b, c, x_part = (view(bcx, name, floats=third) for name in ("b", "c", "x"))
    bx = add("bx", "MUL", width * tokens, b, x_part)
    cache = Node("cache", "NONE", 0, external=True)
    conv_rs = read_states(graph, ssm, inputs, cache, ssm.n_embd_r, n_seqs,
                           lambda states, ids: graph.add("conv_states", "GET_ROWS",
                                                         ssm.n_embd_r * n_seqs, states, ids))
    per_seq = tokens // n_seqs
    joined = add("conv_x", "CONCAT", (ssm.d_conv - 1 + per_seq) * width * n_seqs,
                 view(conv_rs), view(bx))
    # the last d_conv - 1 columns of each of the width * n_seqs rows (conv_snap)
    store_state(graph, joined, cache,
                row_part(width * n_seqs, ssm.d_conv - 1 + per_seq, ssm.d_conv - 1))
    conv = add("conv", "SSM_CONV", width * tokens, joined, weight("shortconv.conv.weight"))
    y = add("conv_gated", "MUL", width * tokens, c, conv)
    return view(add("out_proj", "MUL_MAT", graph.n_embd * tokens,
                    weight("shortconv.out_proj.weight"), y))
