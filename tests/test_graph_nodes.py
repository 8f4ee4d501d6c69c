"""GraphBuilder lists a graph's inputs in the order ggml_visit_parents (ggml.c) first visits
them, which is the order ggml_gallocr_alloc_graph_impl (ggml-alloc.c) allocates the graph's
leafs before any node. Found by comparing ggml-alloc's own trace (benchmarks/alloc_trace.py)
on a quantized cache: the rotation input, a matmul's first source, comes before the positions
read inside its second source's subtree, although ROPE, the positions' reader, runs first."""

from __future__ import annotations

from gguf_inspect.llamacpp.compute_graph import graph_inputs
from gguf_inspect.llamacpp.graph_nodes import GraphBuilder, Node, hadamard


def _rotated_graph() -> tuple[list[Node], Node, Node, Node]:
    graph = GraphBuilder(n_embd=4)
    tokens = Node("inp_tokens", "NONE", 64, is_input=True)
    positions = Node("inp_pos", "NONE", 64, is_input=True)
    rotation = Node("k_rot", "NONE", 256, is_input=True)
    rows = graph.add("embd", "GET_ROWS", 64, graph.weight, tokens)
    graph.expand(rows)
    roped = graph.add("Qrope", "ROPE", 64, graph.view(rows), positions)
    graph.expand(hadamard(graph, roped, rotation, 64))
    return graph.nodes, tokens, positions, rotation


def test_inputs_come_in_the_walks_first_visit_order() -> None:
    nodes, tokens, positions, rotation = _rotated_graph()
    assert [node.op for node in nodes] == ["GET_ROWS", "VIEW", "ROPE", "VIEW", "MUL_MAT"]
    # first use would say positions (ROPE) before the rotation (the MUL_MAT after it)
    assert graph_inputs(nodes) == [tokens, rotation, positions]
    unused = Node("inp_embd", "NONE", 64, is_input=True)
    assert graph_inputs(nodes, (unused,)) == [tokens, unused, rotation, positions]


def test_nodes_no_builder_walked_keep_first_use_order() -> None:
    tokens = Node("inp_tokens", "NONE", 64, is_input=True)
    positions = Node("inp_pos", "NONE", 64, is_input=True)
    first = Node("a", "ROPE", 64, (tokens, positions))
    assert graph_inputs([first]) == [tokens, positions]


def test_without_a_rotation_hadamard_is_the_identity() -> None:
    graph = GraphBuilder(n_embd=4)
    x = graph.add("x", "MUL_MAT", 16, graph.weight, graph.weight)
    assert hadamard(graph, x, None, 16) is x


def test_every_node_carries_the_layer_whose_code_built_it() -> None:
    """The scheduler finds a node's weights and cache by its layer (llama.cpp's cb il), not by
    the node's op: a LayerNorm stack starts its layer with NORM, not RMS_NORM."""
    graph = GraphBuilder(n_embd=4)
    embd = graph.add("embd", "GET_ROWS", 64, graph.weight)
    graph.layer = 0
    norm = graph.add("norm", "NORM", 64, embd)
    reshaped = graph.view(norm)
    graph.layer = 1
    head = graph.add("result_output", "MUL_MAT", 64, graph.weight, reshaped)
    assert [node.layer for node in (embd, norm, reshaped, head)] == [-1, 0, 0, 1]
    assert Node("inp_tokens", "NONE", 64, is_input=True).layer == -1
