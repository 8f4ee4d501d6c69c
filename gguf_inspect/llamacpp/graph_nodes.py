"""The tensors of a llama.cpp graph as the compute estimate sees them (``Node``: size, sources,
view base, allocator state) and ``GraphBuilder``, which lists them in the order
``ggml_build_forward_expand`` (ggml.c) puts them in the graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class Node:
    name: str
    op: str
    n_bytes: int
    srcs: tuple[Node, ...] = ()
    view_src: Node | None = None
    is_input: bool = False
    is_output: bool = False
    external: bool = False  # weights and KV cache: live in their own buffers
    # allocator state
    n_children: int = field(default=0, repr=False)
    n_views: int = field(default=0, repr=False)
    allocated: bool = field(default=False, repr=False)
    offset: int = field(default=-1, repr=False)
    # an input's place in the graph's leafs (ggml_visit_parents: first visited, first listed)
    visit: int = field(default=-1, repr=False)
    # the layer whose code built it (the il of llama.cpp's cb): -1 before the first block, the
    # number of layers for the output head; the scheduler reads a layer's weights and cache
    layer: int = field(default=-1, repr=False)
    # a view's own ggml_nbytes when it covers part of its base (-1: all of it); the scheduler
    # copies a view read across devices at this size (ggml_dup_tensor_layout of the view)
    view_bytes: int = field(default=-1, repr=False)
    # a weight leaf's tensor within its block ("ffn_up_shexp.weight", "ssm_a"); empty: the
    # scheduler finds the weight by the reading node's name (scheduler.WEIGHT_ROLES)
    tensor: str = field(default="", repr=False)



class GraphBuilder:
    """Tensors as llama.cpp's graph code creates them, and the node list as
    ``ggml_build_forward_expand`` fills it: ``ggml_visit_parents_graph`` (ggml.c) walks each
    expanded tensor's sources depth first, first source first, and appends every op node once,
    after its sources; leafs (weights, inputs, the caches) are not nodes."""

    def __init__(self, n_embd: int) -> None:
        self.n_embd = n_embd
        self.nodes: list[Node] = []
        self.weight = Node("weight", "NONE", 0, external=True)
        self._weights: dict[str, Node] = {}
        self._seen: set[int] = set()
        self._leafs = 0
        self.layer = -1  # stamped on every node added: set by the builder's layer loop

    def add(self, name: str, op: str, floats: int, *srcs: Node,
            view_of: Node | None = None) -> Node:
        return Node(name, op, 0 if view_of is not None else 4 * floats, tuple(srcs),
                    view_src=view_of, layer=self.layer)

    def weight_of(self, tensor: str) -> Node:
        """The weight leaf of ``tensor`` (its name within the block): the scheduler places a
        node that reads it by that tensor's device (an -ot override can move one tensor)."""
        if tensor not in self._weights:
            self._weights[tensor] = Node("weight", "NONE", 0, external=True, tensor=tensor)
        return self._weights[tensor]

    def rms_norm(self, x: Node, floats: int, weighted: bool = True,
                 role: str = "norm_w", tensor: str = "") -> Node:
        """build_norm with LLM_NORM_RMS: RMS_NORM, then the weight (MUL, named ``role``: the
        scheduler places it by that weight, or by ``tensor`` when given) unless ``weighted``
        is off (gemma3n's V norm)."""
        out = self.add("norm", "RMS_NORM", floats, x)
        if not weighted:
            return out
        return self.add(role, "MUL", floats, out, self.weight_of(tensor) if tensor else self.weight)

    def view(self, node: Node, name: str | None = None, floats: int | None = None) -> Node:
        """A view, reshape or permute: a node that owns no memory; its view_src is the
        tensor that does (ggml_view_impl follows a view of a view to its base); ``floats``
        when it covers only part of it (its ggml_nbytes, from its first element to its last).
        A view of such a partial view spans the same bytes (ggml_view keeps its strides)."""
        out = self.add(name or node.name + "(view)", "VIEW", 0, node,
                       view_of=node.view_src or node)
        if floats is not None:
            out.view_bytes = 4 * floats
        elif node.op == "VIEW":
            out.view_bytes = node.view_bytes
        return out

    def expand(self, root: Node) -> None:
        stack: list[tuple[Node, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                if id(node) in self._seen:
                    continue
                self._seen.add(id(node))
            if index < len(node.srcs):
                stack.append((node, index + 1))
                stack.append((node.srcs[index], 0))
            elif node.op != "NONE":
                self.nodes.append(node)
            elif node.is_input:  # numbered once: _seen keeps a node from a second visit
                node.visit, self._leafs = self._leafs, self._leafs + 1


def row_part(rows: int, row_width: int, width: int) -> int:
    """The floats that a view of ``width`` values of each of ``rows`` rows of ``row_width``
    spans (ggml_nbytes: from its first element to its last, wherever in the row it starts):
    what the multi-device scheduler copies when another device reads it
    (ggml_dup_tensor_layout keeps the view's strides)."""
    return (rows - 1) * row_width + width


def soft_cap(graph: GraphBuilder, logits: Node, floats: int) -> Node:
    """Soft-capping: ggml_scale by 1/cap, ggml_tanh, ggml_scale by cap, each in place over the
    last; of the logits (models/gemma2.cpp, gemma3.cpp, gemma3n.cpp) and, without flash
    attention, of KQ (build_attn_mha's attn_soft_cap, gemma2)."""
    for op in ("SCALE", "UNARY", "SCALE"):
        logits = graph.add("softcap", op, floats, logits)
    return logits


def f16_casts(graph: GraphBuilder, cache: Node, f32: tuple[bool, bool], k_values: int,
              v_values: int) -> tuple[Node, Node]:
    """build_attn_mha with flash attention (llama-graph.cpp): an f32 K or V cache view is cast
    to F16 first (ggml_cast: a CPY of ``k_values``/``v_values`` halves, two bytes each), K
    then V; the cache itself where it is not f32 (``f32``: K's and V's type is f32)."""
    keys = graph.add("k_f16", "CPY", k_values // 2, cache) if f32[0] else cache
    values = graph.add("v_f16", "CPY", v_values // 2, cache) if f32[1] else cache
    return keys, values


def hadamard(graph: GraphBuilder, x: Node, rot: Node | None, floats: int) -> Node:
    """llama_mul_mat_hadamard (llama-impl.h): a quantized cache's rotation, the input ``rot``
    times ``x`` reshaped (x is contiguous wherever it is used); without ``rot``, x itself."""
    if rot is None:
        return x
    return graph.add(x.name + "_rot", "MUL_MAT", floats, rot, graph.view(x))
