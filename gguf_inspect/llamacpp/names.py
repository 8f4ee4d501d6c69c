"""Tensor roles: which part of the network a tensor belongs to, judged from its llama.cpp name.

Reports that group tensors (diff) share this one classifier, so a tensor is "attention v" or
"output head" the same way everywhere; the memory model (placement) and the summary share its
block-name parser. Names follow llama.cpp's tensor table
(``LLM_TENSOR_NAMES`` in ``src/llama-arch.cpp``): ``[prefix.]blk.N.<base>.weight`` for per-layer
tensors, ``<base>.weight`` for global ones. Pure string work: no numpy, safe on the header path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    """One role: a stable key (used in JSON) and the words shown to people."""

    key: str
    label: str


# Report order: the embedding and the output head first, then a layer's path through the block.
ROLES: tuple[Role, ...] = (
    Role("token_embd", "token embedding"),
    Role("output", "output head"),
    Role("attn_q", "attention q"),
    Role("attn_k", "attention k"),
    Role("attn_v", "attention v"),
    Role("attn_qkv", "attention qkv (fused)"),
    Role("attn_output", "attention output"),
    Role("ffn_gate", "FFN gate"),
    Role("ffn_up", "FFN up"),
    Role("ffn_down", "FFN down"),
    Role("experts", "experts (MoE)"),
    Role("norm", "norms"),
    Role("other", "other"),
)
ROLE_BY_KEY: dict[str, Role] = {role.key: role for role in ROLES}
ROLE_ORDER: dict[str, int] = {role.key: index for index, role in enumerate(ROLES)}

# Global tensors and per-layer base names with a fixed role (llama-arch.cpp spellings).
_EXACT_ROLES: dict[str, str] = {
    "token_embd": "token_embd", "per_layer_token_embd": "token_embd",
    "output": "output",
    "attn_q": "attn_q", "attn_q_a": "attn_q", "attn_q_b": "attn_q",  # q_a/q_b: low-rank q (MLA)
    "attn_k": "attn_k", "attn_k_b": "attn_k",
    "attn_v": "attn_v", "attn_v_b": "attn_v",
    "attn_qkv": "attn_qkv", "attn_kv": "attn_qkv", "attn_kv_a_mqa": "attn_qkv",
    "attn_kv_b": "attn_qkv",
    "attn_output": "attn_output", "attn_o": "attn_output",
    "attn_output_a": "attn_output", "attn_output_b": "attn_output",
    "ffn_gate": "ffn_gate", "ffn_up": "ffn_up", "ffn_down": "ffn_down",
}
# The one block-name pattern of the package: ``[prefix.]blk.N.`` (enc./dec. for T5, v. ...).
_BLOCK_PREFIX = re.compile(r"^(?P<prefix>(?:.*\.)?)blk\.(?P<layer>\d+)\.")
# Expert tensors: stacked (ffn_up_exps), shared (ffn_up_shexp), chunked (ffn_up_chexps), the
# router (ffn_gate_inp, exp_probs_b), the latent projections around the experts (ffn_latent_down
# and _up: nemotron-h.cpp's LatentMoE) and the old one-tensor-per-expert layout (ffn_up.3).
_EXPERT = re.compile(r"_(?:ch)?exps$|_shexp$|^ffn_gate_inp|^exp_probs_b|^ffn_latent_(?:down|up)$|"
                     r"^ffn_gate_tid2eid$|^ffn_(?:gate|up|down)\.\d+$")


def base_name(name: str) -> str:
    """The name without block prefix and ``.weight``/``.bias``: ``blk.3.attn_q.weight`` is
    ``attn_q``."""
    base = _BLOCK_PREFIX.sub("", name)  # anchored at ^: one match at most
    for suffix in (".weight", ".bias"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def layer_index(name: str, prefixed: bool = True) -> int | None:
    """The block number of a per-layer tensor (``blk.N.``), None for global tensors. With
    ``prefixed=False`` only a name that starts with ``blk.`` counts, as llama-model-loader.h's
    ``weight_name_comparer`` reads it (``sscanf(name, "blk.%d.")``)."""
    match = _BLOCK_PREFIX.match(name)
    if match is None or (match.group("prefix") and not prefixed):
        return None
    return int(match.group("layer"))


def tensor_role(name: str) -> str:
    """The role key of a tensor name (a key of ``ROLE_BY_KEY``)."""
    base = base_name(name)
    exact = _EXACT_ROLES.get(base)
    if exact is not None:
        return exact
    if "norm" in base:  # attn_norm, ffn_norm, output_norm, attn_q_norm, token_embd_norm, ...
        return "norm"
    if _EXPERT.search(base):
        return "experts"
    return "other"


def role_label(key: str) -> str:
    return ROLE_BY_KEY[key].label


def role_sort_key(name: str) -> tuple[int, int, str]:
    """Sort tensors by role (report order), then by block number (globals first), then name."""
    layer = layer_index(name)
    return (ROLE_ORDER[tensor_role(name)], -1 if layer is None else layer, name)
