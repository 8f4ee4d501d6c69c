"""The architectures whose prompt-processing graph shares too little with the llama graph of
``compute_graph.build_graph`` to be a variant of it, each built by its own module:
rwkv7 (graph_rwkv), qwen3next (graph_qwen3next) and gemma3n (graph_gemma3n).

``shape`` is a ``compute_graph.GraphShape`` and ``caches`` its per-cache inputs (``Cache``,
keyed by is-SWA); they are not imported here because compute_graph imports this module.
"""

from __future__ import annotations

from typing import Any

from gguf_inspect.llamacpp.graph_gemma3n import LayerAttention, build_gemma3n_graph
from gguf_inspect.llamacpp.graph_nodes import Node
from gguf_inspect.llamacpp.graph_qwen3next import AttentionShape, build_qwen3next_graph
from gguf_inspect.llamacpp.graph_rwkv import build_rwkv7_graph

Graph = tuple[list[Node], tuple[Node, ...]]


def own_graph(shape: Any, tokens: int, n_seqs: int, caches: dict[bool, Any]) -> Graph | None:
    """The architecture's own graph, or None where the llama graph's variants apply."""
    if shape.rwkv is not None and shape.ssm is not None:
        return build_rwkv7_graph(shape.n_embd, shape.n_vocab, len(shape.n_head), tokens,
                                 n_seqs, shape.n_outputs, shape.rwkv, shape.ssm)
    if shape.delta is not None and shape.ssm is not None and shape.moe_layout is not None:
        il = next((il for il, mixer in enumerate(shape.mixers) if not mixer), 0)
        cache = caches[False]
        attention = AttentionShape(shape.n_head[il], shape.n_head_kv[il], shape.head_k[il],
                                   shape.n_kv[il], shape.flash_attn, cache.k_idxs,
                                   cache.v_idxs, cache.mask, cache.k_rot, cache.v_rot,
                                   shape.kv_f32)
        return build_qwen3next_graph(shape.n_embd, shape.n_vocab, tokens, n_seqs,
                                     shape.n_outputs, tuple(map(bool, shape.mixers)), attention,
                                     shape.delta, shape.ssm, shape.moe_layout)
    if shape.gemma3n is not None:
        layers = [LayerAttention(q_width=shape.head_k[il] * shape.n_head[il],
                                 kv_width=shape.head_k[il] * shape.n_head_kv[il],
                                 n_head=shape.n_head[il], n_kv=shape.n_kv[il],
                                 k_idxs=caches[swa].k_idxs, v_idxs=caches[swa].v_idxs,
                                 mask=caches[swa].mask, k_rot=caches[swa].k_rot,
                                 v_rot=caches[swa].v_rot,
                                 has_kv=not 0 <= shape.gemma3n.n_layer_kv_from_start <= il,
                                 f32=shape.kv_f32)
                  for il, swa in enumerate(shape.is_swa)]
        return build_gemma3n_graph(shape.n_embd, shape.n_vocab, tokens, shape.n_outputs,
                                   shape.gemma3n, layers, shape.flash_attn)
    return None
