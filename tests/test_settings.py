"""The settings table and its value rules (llamacpp/settings.py), called directly: each check's
accepted values and refusal text, the help and assumption lines the CLI and ``vram`` print from
the table, and how a command line's values are laid over the defaults.

Expected values come from llama.cpp's own CLI (common/arg.cpp of llama-cpp-python 0.3.36's
vendored source: kv_cache_types, parse_tensor_buffer_overrides, --tensor-split, --rpc) and from
the defaults named in the table's source column; the texts are the user-visible contract.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gguf_inspect.llamacpp.settings import (
    KV_CACHE_TYPES,
    SETTING_BY_NAME,
    LlamaSettings,
    all_overrides,
    cache_type_name,
    check_flash_attn,
    check_rpc,
    check_split_mode,
    check_tensor_split,
    context_refusal,
    given_settings,
    parse_overrides,
    parse_tensor_split,
    resolve_settings,
)


def refusal(check, value: str) -> str:
    with pytest.raises(ValueError) as raised:
        check(value)
    return str(raised.value)


def test_cache_types_are_llama_cpps_list_by_ggml_name() -> None:
    """common/arg.cpp kv_cache_types: f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0 q5_1."""
    assert KV_CACHE_TYPES == ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0",
                              "q5_1")
    assert cache_type_name("Q8_0") == "q8_0"
    assert refusal(cache_type_name, "q4_k") == (
        "unsupported cache type 'q4_k': llama.cpp takes "
        "f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1")


@pytest.mark.parametrize("check, good, bad, message", [
    (check_flash_attn, ("on", "off", "auto"), "yes", "expected on, off or auto, got 'yes'"),
    (check_split_mode, ("none", "layer", "row"), "tensor",
     "expected none, layer or row, got 'tensor'"),
])
def test_word_choices_and_their_refusals(check, good, bad, message) -> None:
    assert [check(value) for value in good] == list(good)
    assert refusal(check, bad) == message


def test_tensor_split_shares() -> None:
    """Split on , or / as common/arg.cpp does; a zero share is a GPU without layers (llama.cpp
    takes it), fractions are shares too; all zero, negative or NaN shares are refused."""
    assert parse_tensor_split("3,1") == (3.0, 1.0)
    assert parse_tensor_split("3/1") == (3.0, 1.0)
    assert parse_tensor_split("  ") == ()
    assert check_tensor_split("0,1") == "0,1"
    assert check_tensor_split("0.5,0.5") == "0.5,0.5"
    assert check_tensor_split("0.25,1") == "0.25,1"
    assert refusal(check_tensor_split, "0,0") == "expected shares like 3,1, got '0,0'"
    assert refusal(check_tensor_split, "") == "expected shares like 3,1, got ''"
    assert refusal(check_tensor_split, "3,x") == "expected shares like 3,1, got '3,x'"
    assert refusal(check_tensor_split, "-1,2") == "shares cannot be negative: '-1,2'"
    assert refusal(check_tensor_split, "nan,1") == "shares cannot be negative: 'nan,1'"


def test_overrides_split_at_the_first_equals_sign() -> None:
    """parse_tensor_buffer_overrides: split on commas, then at the FIRST '=' (find('=')), so a
    pattern cannot hold '=' and 'a=b=CPU' names the buffer 'b=CPU', which does not exist."""
    assert parse_overrides("ffn_.*_exps=CPU,blk\\.1\\.=CUDA1,,x=RPC0[127.0.0.1:50052]") == (
        ("ffn_.*_exps", "CPU"), ("blk\\.1\\.", "CUDA1"), ("x", "RPC0[127.0.0.1:50052]"))
    assert refusal(parse_overrides, "a=b=CPU").startswith("unknown buffer type 'b=CPU' (CPU, ")
    assert refusal(parse_overrides, "exps") == "expected PATTERN=BUFFER, got 'exps'"
    assert refusal(parse_overrides, "x=GPU0") == (
        "unknown buffer type 'GPU0' (CPU, CUDA0, CUDA1 ..., RPC0[host:port] with --rpc)")
    assert refusal(parse_overrides, "(=CPU").startswith("not a regular expression: '(' (")


def test_n_cpu_moe_adds_one_cpu_pattern_per_layer_after_the_given_overrides() -> None:
    """llm_add_n_cpu_ffn_overrides: blk.{il}.ffn_(up|down|gate|gate_up)_(ch|)exps to CPU."""
    settings = LlamaSettings(override_tensor="attn=CPU", n_cpu_moe=2)
    assert all_overrides(settings) == (
        ("attn", "CPU"),
        (r"blk\.0\.ffn_(up|down|gate|gate_up)_(ch|)exps", "CPU"),
        (r"blk\.1\.ffn_(up|down|gate|gate_up)_(ch|)exps", "CPU"))


def test_rpc_servers_are_host_and_port() -> None:
    assert check_rpc(" 127.0.0.1:50052, ,host:1") == "127.0.0.1:50052,host:1"
    assert refusal(check_rpc, " , ") == "no RPC servers specified"
    assert refusal(check_rpc, "host") == "expected host:port, got 'host'"
    assert refusal(check_rpc, ":50052") == "expected host:port, got ':50052'"
    assert refusal(check_rpc, "host:port") == "expected host:port, got 'host:port'"
    # parse_endpoint (ggml-rpc.cpp) splits at the FIRST colon: "a:b:1" has the port "b:1"
    assert refusal(check_rpc, "a:b:1") == "expected host:port, got 'a:b:1'"


def test_a_quantized_v_cache_needs_flash_attention() -> None:
    """llama_context::llama_context: a quantized type_v without flash attention throws."""
    assert context_refusal(LlamaSettings(cache_type_v="q8_0", flash_attn="off")) == (
        "a quantized V cache needs flash attention")
    assert context_refusal(LlamaSettings(cache_type_v="q8_0", flash_attn="auto")) is None
    assert context_refusal(LlamaSettings(cache_type_v="f16", flash_attn="off")) is None
    assert context_refusal(LlamaSettings(cache_type_k="q8_0", flash_attn="off")) is None


def test_help_texts_name_the_default() -> None:
    assert SETTING_BY_NAME["n_ubatch"].help_text() == "n_ubatch (default 512)."
    assert SETTING_BY_NAME["swa_full"].help_text() == (
        "Full-size sliding-window cache (default on).")
    assert SETTING_BY_NAME["use_mmap"].help_text() == "Read the weights, no mmap."


def test_assumption_lines_show_the_default_and_its_source() -> None:
    assert SETTING_BY_NAME["n_ubatch"].assumption() == (
        "n_ubatch = 512 (llama_context_default_params)")
    assert SETTING_BY_NAME["n_gpu_layers"].assumption() == (
        "n_gpu_layers = all (-1) (llama_model_default_params: all layers)")
    assert SETTING_BY_NAME["n_cpu_moe"].given_line(2) == (
        "n_cpu_moe = 2 (as given: -ncmoe, --n-cpu-moe)")
    assert SETTING_BY_NAME["rpc"].given_line("h:1") == "rpc = h:1 (as given: --rpc)"


def test_given_values_are_checked_normalised_and_unknown_names_refused() -> None:
    assert given_settings({"cache_type_k": "Q8_0", "n_ctx": None, "n_ubatch": 256}) == {
        "cache_type_k": "q8_0", "n_ubatch": 256}
    assert refusal(given_settings, {"n_ctx": 1, "n_threads": 4, "rope": 2}) == (
        "not a llama.cpp setting: n_threads, rope")


def test_resolve_lays_given_values_over_the_defaults_and_lists_the_rest() -> None:
    """One line per row not given (deployment options: one per row given), in table order."""
    settings, assumed = resolve_settings({"n_ctx": 8192, "n_cpu_moe": 1})
    assert (settings.n_ctx, settings.n_cpu_moe, settings.n_ubatch) == (8192, 1, 512)
    assert not any(line.startswith("n_ctx =") for line in assumed)
    assert assumed[0] == "n_gpu_layers = all (-1) (llama_model_default_params: all layers)"
    assert assumed[-1] == "n_cpu_moe = 1 (as given: -ncmoe, --n-cpu-moe)"
    assert not any(line.startswith("override_tensor") for line in assumed)


def test_the_model_dependent_refusals_of_llama_init_from_model() -> None:
    """llama-context.cpp:3835-3870: MLA needs type_k == type_v; with flash attention not off
    (on, or auto), a quantized K or V cache's block must divide every layer's head size
    (q8_0 and q4_0: 32, q4_K: 256); without flash attention K is not checked."""
    q8k = LlamaSettings(cache_type_k="q8_0")
    assert context_refusal(q8k, head_k=(64, 64), head_v=(64, 64)) is None
    assert context_refusal(q8k, head_k=(64, 80), head_v=(64, 80)) == (
        "the K cache type q8_0 (blocks of 32) does not divide the K head size 80")
    assert context_refusal(replace(q8k, flash_attn="off"), head_k=(80,), head_v=(80,)) is None
    q4v = LlamaSettings(cache_type_v="q4_K", flash_attn="on")
    assert context_refusal(q4v, head_k=(128,), head_v=(128,)) == (
        "the V cache type q4_K (blocks of 256) does not divide the V head size 128")
    assert context_refusal(LlamaSettings(cache_type_k="q8_0", cache_type_v="f16"),
                           is_mla=True) == (
        "an MLA model needs one K and V cache type (q8_0 and f16 given)")
    assert context_refusal(LlamaSettings(cache_type_k="q8_0", cache_type_v="q8_0"),
                           head_k=(576,), head_v=(512,), is_mla=True) is None
