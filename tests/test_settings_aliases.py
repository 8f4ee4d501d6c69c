"""llama.cpp's short flags (common/arg.cpp of the pinned llama.cpp: ``-c``, ``-ngl``, ``-ot``,
``-ts``, ``-ncmoe``, ``-nkvo`` ...) are the same options as gguf-inspect's long ones, on every
command that takes the settings table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.llamacpp.settings import SETTINGS
from tests.test_vram import UNTIED

# Each setting's short spellings as common/arg.cpp (llama.cpp b-version vendored in
# llama-cpp-python 0.3.36) declares them in its common_arg({...}) lists; the settings absent
# here have none (--swa-full, --no-mmap, --no-op-offload); --embedding is llama.cpp's other
# spelling of --embeddings ("--embedding, --embeddings"), which fit_command prints.
ARG_CPP_SHORT_FLAGS = {
    "n_ctx": ("-c",), "n_gpu_layers": ("-ngl",), "n_batch": ("-b",), "n_ubatch": ("-ub",),
    "n_parallel": ("-np",), "cache_type_k": ("-ctk",), "cache_type_v": ("-ctv",),
    "flash_attn": ("-fa",), "kv_unified": ("-kvu/-no-kvu",), "n_cpu_moe": ("-ncmoe",),
    "override_tensor": ("-ot",), "tensor_split": ("-ts",), "split_mode": ("-sm",),
    "main_gpu": ("-mg",), "offload_kqv": ("-nkvo",), "cpu_repack": ("-nr",),  # arg.cpp:2423
    "embeddings": ("--embedding",),
}


def test_every_row_offers_exactly_llama_cpps_short_flags() -> None:
    assert {row.name: row.aliases for row in SETTINGS if row.aliases} == ARG_CPP_SHORT_FLAGS
    for row in SETTINGS:  # and each is one the row's llama.cpp spelling names
        for alias in row.aliases:
            assert alias.split("/")[0] in row.llama_flag.replace(",", " ").split(), row.name


def _vram_json(*arguments: str) -> dict:
    result = CliRunner().invoke(app, ["vram", UNTIED, "--gpu", "1GiB,1GiB", "--json",
                                      *arguments])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


LONG = ["--ctx", "1024", "--ngl", "3", "--batch", "256", "--ubatch", "128", "--parallel", "2",
        "--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--flash-attn", "on",
        "--kv-unified", "--n-cpu-moe", "1", "--override-tensor", "ffn_down=CPU",
        "--tensor-split", "3,1", "--split-mode", "layer", "--main-gpu", "1", "--no-kv-offload"]
SHORT = ["-c", "1024", "-ngl", "3", "-b", "256", "-ub", "128", "-np", "2", "-ctk", "q8_0",
         "-ctv", "q8_0", "-fa", "on", "-kvu", "-ncmoe", "1", "-ot", "ffn_down=CPU", "-ts", "3,1",
         "-sm", "layer", "-mg", "1", "-nkvo"]


def test_short_flags_give_the_same_audit_as_the_long_ones() -> None:
    long, short = _vram_json(*LONG), _vram_json(*SHORT)
    assert short == long
    config = short["config"]
    assert (config["n_ctx"], config["n_batch"], config["n_ubatch"], config["n_parallel"],
            config["kv_unified"], config["tensor_split"], config["offload_kqv"]) == (
        1024, 256, 128, 2, True, "3,1", False)
    assert short != _vram_json()  # the flags did something


def test_no_kvu_turns_the_unified_cache_off() -> None:
    assert _vram_json("-no-kvu")["config"]["kv_unified"] is False
    assert _vram_json("-kvu")["config"]["kv_unified"] is True


@pytest.mark.parametrize("command", ["vram", "runtime"])
def test_the_short_flags_are_in_the_help(command: str) -> None:
    text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
    for flag in ("-ngl", "-ot", "-ts", "-ncmoe", "-nkvo", "-fa", "-ctk", "-sm", "-mg"):
        # click's plain help writes "-ngl, --ngl" (issue 18: rich's table cut help at 80 columns)
        assert f" {flag} " in text or f" {flag}, " in text, flag
