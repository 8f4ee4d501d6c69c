"""The Mamba and Mamba2 mixers of the compute estimate (llamacpp/graph_ssm.py): the layer
choice read from the header, and the sizes of the state-space nodes from first principles
(ggml_ssm_conv: {width, n_seq_tokens, n_seqs}; ggml_ssm_scan: y then K final states per
sequence, f32; build_rs: n_seqs rows gathered, n_rs - n_seqs copied back)."""

from __future__ import annotations

from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.llamacpp.compute_graph import GraphShape, build_graph
from gguf_inspect.llamacpp.graph_layout import graph_layout
from gguf_inspect.llamacpp.graph_ssm import SsmShape
from gguf_inspect.llamacpp.hparams import read_hyperparameters
from tests.conftest import FIXTURES

ZOO = FIXTURES / "zoo"


def _layout(stem: str):
    gguf = read_gguf(str(ZOO / f"{stem}.gguf"))
    return graph_layout(gguf, read_hyperparameters(gguf))


def test_mamba_layers_are_mixers_without_ffn() -> None:
    """fixtures/zoo.py writes mamba with n_embd 64, d_inner 128, d_state 16, d_conv 4,
    dt_rank 4 and two blocks; models/mamba.cpp builds no FFN."""
    layout = _layout("mamba")
    assert layout.mixers == ("mamba", "mamba") and not layout.ffn
    assert layout.ssm is not None
    assert (layout.ssm.d_inner, layout.ssm.d_state, layout.ssm.d_conv, layout.ssm.dt_rank) == (
        128, 16, 4, 4)


def test_granitehybrid_picks_mamba2_on_recurrent_layers() -> None:
    """Layers 0 and 2 have no KV heads (recurrent), 1 and 3 attend; every layer has an FFN."""
    layout = _layout("granitehybrid")
    assert layout.mixers == ("mamba2", "", "mamba2", "") and layout.ffn
    assert layout.ssm is not None and layout.ssm.n_group == 1


def _mamba2_graph(n_tokens: int, n_seqs: int, n_rs: int):
    d_inner, d_state, d_conv, n_head, n_group, n_embd = 128, 16, 4, 8, 1, 64
    conv_width = d_inner + 2 * n_group * d_state
    ssm = SsmShape(d_conv=d_conv, d_inner=d_inner, d_state=d_state, dt_rank=n_head,
                   n_group=n_group, n_embd_r=(d_conv - 1) * conv_width,
                   n_embd_s=d_state * d_inner, n_rs=n_rs)
    shape = GraphShape(n_tokens=n_tokens, n_outputs=n_tokens, n_embd=n_embd, n_ff=(0,),
                       n_head=(0,), n_head_kv=(0,), head_k=(0,), head_v=(0,), n_vocab=100,
                       n_kv=(0,), is_swa=(False,), n_stream=n_seqs, n_seqs=n_seqs,
                       flash_attn=False, gemma=False, v_width_max=0, mixers=("mamba2",),
                       ssm=ssm, ffn=False)
    nodes, _ = build_graph(shape)
    return nodes, ssm, conv_width


def test_mamba2_node_sizes_follow_ggml() -> None:
    tokens, n_seqs, n_rs = 512, 2, 4
    nodes, ssm, conv_width = _mamba2_graph(tokens, n_seqs, n_rs)
    by_op: dict[str, list[int]] = {}
    for node in nodes:
        by_op.setdefault(node.op, []).append(node.n_bytes)
    per_seq = tokens // n_seqs
    assert by_op["CONCAT"] == [4 * (ssm.d_conv - 1 + per_seq) * conv_width * n_seqs]
    assert by_op["SSM_CONV"] == [4 * conv_width * tokens]
    assert by_op["SSM_SCAN"] == [4 * (ssm.d_inner * tokens + ssm.d_state * ssm.d_inner * n_seqs)]
    # build_rs: the conv rows of the ubatch's sequences, then the other rows of each state
    assert sorted(by_op["GET_ROWS"]) == sorted([
        4 * 64 * tokens,  # token embeddings
        4 * ssm.n_embd_r * n_seqs, 4 * ssm.n_embd_r * (n_rs - n_seqs),
        4 * ssm.n_embd_s * (n_rs - n_seqs),
        4 * 64 * tokens, 4 * 64 * tokens])  # the last layer's output rows and residual
    # state writes are views of the cache, and no attention is built
    assert all(size == 0 for size in by_op["CPY"]) and len(by_op["CPY"]) == 4
    assert not {"SET_ROWS", "SOFT_MAX", "FLASH_ATTN_EXT"} & by_op.keys()


def test_the_state_zeroing_reads_before_the_projection() -> None:
    """build_rs expands its reads as it is called: the conv state's GET_ROWS precede ssm_in in
    the node list, as llama.cpp's GGML_SCHED_DEBUG dump lists them."""
    nodes, _, _ = _mamba2_graph(64, 1, 1)
    names = [node.name for node in nodes]
    assert names.index("conv_states") < names.index("ssm_in") < names.index("conv_x")
