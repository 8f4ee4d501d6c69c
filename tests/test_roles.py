"""Tests of the tensor-role classifier against llama.cpp's own tensor names (src/llama-arch.cpp)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import gguf
import pytest

from gguf_inspect.llamacpp.names import (
    ROLE_BY_KEY,
    ROLES,
    base_name,
    layer_index,
    role_label,
    role_sort_key,
    tensor_role,
)
from tests.conftest import ALL_FIXTURES, fixture_path

# (name as llama.cpp writes it, expected role): one or more per role, spellings from
# LLM_TENSOR_NAMES in llama-arch.cpp.
NAMED_ROLES = [
    ("token_embd.weight", "token_embd"),
    ("per_layer_token_embd.weight", "token_embd"),
    ("output.weight", "output"),
    ("output.bias", "output"),
    ("blk.0.attn_q.weight", "attn_q"),
    ("blk.31.attn_q.bias", "attn_q"),
    ("blk.2.attn_q_a.weight", "attn_q"),  # DeepSeek MLA: low-rank q
    ("blk.2.attn_q_b.weight", "attn_q"),
    ("blk.0.attn_k.weight", "attn_k"),
    ("blk.2.attn_k_b.weight", "attn_k"),
    ("blk.0.attn_v.weight", "attn_v"),
    ("blk.2.attn_v_b.weight", "attn_v"),
    ("blk.0.attn_qkv.weight", "attn_qkv"),
    ("blk.2.attn_kv_a_mqa.weight", "attn_qkv"),
    ("blk.2.attn_kv_b.weight", "attn_qkv"),
    ("blk.0.attn_output.weight", "attn_output"),
    ("enc.blk.0.attn_o.weight", "attn_output"),  # T5 encoder
    ("blk.0.ffn_gate.weight", "ffn_gate"),
    ("blk.0.ffn_up.weight", "ffn_up"),
    ("blk.0.ffn_down.weight", "ffn_down"),
    ("dec.blk.5.ffn_down.weight", "ffn_down"),
    ("v.blk.0.attn_q.weight", "attn_q"),  # a vision tower's blocks
    ("blk.3.ffn_gate_exps.weight", "experts"),
    ("blk.3.ffn_up_exps.weight", "experts"),
    ("blk.3.ffn_down_exps.weight", "experts"),
    ("blk.3.ffn_gate_up_exps.weight", "experts"),
    ("blk.3.ffn_down_chexps.weight", "experts"),
    ("blk.3.ffn_up_shexp.weight", "experts"),
    ("blk.3.ffn_gate_inp.weight", "experts"),  # the router
    ("blk.3.ffn_gate_inp_shexp.weight", "experts"),
    ("blk.3.exp_probs_b.bias", "experts"),
    # Nemotron 3 Super's LatentMoE: the experts' input and output projections
    ("blk.3.ffn_latent_down.weight", "experts"),
    ("blk.3.ffn_latent_up.weight", "experts"),
    ("blk.3.ffn_gate.7.weight", "experts"),  # old Mixtral layout: one tensor per expert
    ("blk.0.attn_norm.weight", "norm"),
    ("blk.0.attn_norm.bias", "norm"),
    ("blk.0.ffn_norm.weight", "norm"),
    ("blk.0.attn_q_norm.weight", "norm"),
    ("blk.2.attn_q_a_norm.weight", "norm"),
    ("blk.0.post_attention_norm.weight", "norm"),
    ("blk.3.ffn_norm_exps.weight", "norm"),
    ("output_norm.weight", "norm"),
    ("token_embd_norm.weight", "norm"),
    ("rope_freqs.weight", "other"),
    ("blk.0.attn_sinks.weight", "other"),
    ("blk.0.ssm_in.weight", "other"),
    ("position_embd.weight", "other"),
]


@pytest.mark.parametrize(("name", "role"), NAMED_ROLES, ids=[n for n, _ in NAMED_ROLES])
def test_llama_cpp_names_get_their_role(name: str, role: str) -> None:
    assert tensor_role(name) == role


def test_every_role_is_named_and_covered() -> None:
    assert [role.key for role in ROLES][:2] == ["token_embd", "output"]
    assert {role for _, role in NAMED_ROLES} == set(ROLE_BY_KEY)
    assert role_label("output") == "output head"
    assert all(role.label for role in ROLES)


def test_base_name_and_layer_index() -> None:
    assert base_name("blk.12.attn_q.weight") == "attn_q"
    assert base_name("v.blk.0.ffn_up.bias") == "ffn_up"
    assert base_name("token_embd.weight") == "token_embd"
    assert base_name("rope_freqs") == "rope_freqs"
    assert layer_index("blk.12.attn_q.weight") == 12
    assert layer_index("enc.blk.3.attn_o.weight") == 3
    assert layer_index("output.weight") is None


def test_sort_key_puts_embedding_and_head_first_and_blocks_in_numeric_order() -> None:
    names = ["blk.10.attn_q.weight", "output_norm.weight", "blk.2.attn_q.weight",
             "output.weight", "blk.0.attn_norm.weight", "token_embd.weight"]
    assert sorted(names, key=role_sort_key) == [
        "token_embd.weight", "output.weight", "blk.2.attn_q.weight", "blk.10.attn_q.weight",
        "output_norm.weight", "blk.0.attn_norm.weight"]


@pytest.mark.parametrize("name", ["tiny-llama-untied-f16.gguf", "tiny-llama-tied-q4_k_m.gguf"])
def test_fixture_tensors_per_role(name: str) -> None:
    """The tiny llamas (2 blocks, see fixtures/build.py) as gguf-py lists their tensors."""
    names = [tensor.name for tensor in gguf.GGUFReader(fixture_path(name)).tensors]
    counts = Counter(tensor_role(n) for n in names)
    expected = {"token_embd": 1, "attn_q": 2, "attn_k": 2, "attn_v": 2, "attn_output": 2,
                "ffn_gate": 2, "ffn_up": 2, "ffn_down": 2, "norm": 5}
    if "untied" in name:
        expected["output"] = 1
    assert counts == expected


# Every tensor name the fixtures carry, with its role from LLM_TENSOR_NAMES (llama-arch.cpp):
# none of them is "other", so a classifier that lost a rule fails here.
FIXTURE_ROLES = {
    "token_embd": "token_embd", "output": "output", "output_norm": "norm", "attn_norm": "norm",
    "attn_q": "attn_q", "attn_k": "attn_k", "attn_v": "attn_v", "attn_output": "attn_output",
    "attn_q_norm": "norm", "attn_k_norm": "norm", "post_attention_norm": "norm",
    "ffn_norm": "norm", "post_ffw_norm": "norm", "ffn_gate": "ffn_gate", "ffn_up": "ffn_up",
    "ffn_down": "ffn_down",
}


def test_every_fixture_tensor_has_its_llama_cpp_role() -> None:
    seen = set()
    for path in ALL_FIXTURES:
        for tensor in gguf.GGUFReader(path).tensors:
            stem = tensor.name.removesuffix(".weight").split(".")[-1]
            assert tensor_role(tensor.name) == FIXTURE_ROLES[stem], tensor.name
            seen.add(stem)
    assert seen == set(FIXTURE_ROLES)  # the table is not stale either


def test_roles_module_stays_off_numpy() -> None:
    """Reusable by header-only commands: importing it must not pull in numpy or gguf."""
    code = ("import sys, gguf_inspect.llamacpp.names; "
            "sys.exit(int('numpy' in sys.modules or 'gguf' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
