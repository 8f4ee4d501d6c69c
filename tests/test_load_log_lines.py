"""The load-log parser, one llama.cpp line at a time.

Each line is written from the LLAMA_LOG format string it quotes (llama.cpp 0.3.36's vendored
source, file named per test), or an older build's wording kept in tests/data: the expected value
is what that line says, never what the parser was seen to return.
"""

from __future__ import annotations

import pytest

from gguf_inspect.llamacpp.load_log import (
    LoggedDevice,
    LogRecord,
    error_lines,
    parse_load_log,
    split_log_text,
)


def parse(text: str):
    return parse_load_log(split_log_text(text))


# ---- llama_context's constructor (src/llama-context.cpp) --------------------------------------

def test_kv_unified_true_and_false() -> None:
    # LLAMA_LOG_INFO("%s: kv_unified            = %s\n", ..., cparams.kv_unified ? "true" : "false")
    assert parse("llama_context: kv_unified            = true\n").context.kv_unified is True
    assert parse("llama_context: kv_unified            = false\n").context.kv_unified is False


def test_older_flash_attn_is_printed_as_a_number() -> None:
    # Older builds: "llama_new_context_with_model: flash_attn = 0" (tests/data/runtime-older-*.log),
    # i.e. "%d" of the bool: 1 is enabled.
    context = parse("llama_new_context_with_model: flash_attn = 1\n").context
    assert (context.flash_attn_requested, context.flash_attn) == ("enabled", True)


def test_flash_attn_forced_on_before_the_context_fails() -> None:
    # llama_init_from_model: "%s: enabling flash_attn since it is required for quantized V cache\n",
    # then the constructor throws before its parameter lines ("n_ctx_seq == 0") and
    # llama_init_from_model logs "%s: failed to initialize the context: %s\n".
    log = parse("llama_init_from_model: enabling flash_attn since it is required for quantized V "
                "cache\n"
                "llama_init_from_model: failed to initialize the context: n_ctx_seq == 0\n")
    assert log.context.flash_attn is True
    assert log.context.flash_attn_requested is None  # the "flash_attn = ..." line never came
    assert log.errors == ("llama_init_from_model: failed to initialize the context: "
                          "n_ctx_seq == 0",)


def test_full_size_swa_cache_warning() -> None:
    # src/llama-kv-cache-iswa.cpp: "%s: using full-size SWA cache (ref: %s)\n" (swa_full), then
    # "creating non-SWA KV cache" and "creating     SWA KV cache", each followed by its cache.
    log = parse(
        "llama_kv_cache_iswa: using full-size SWA cache (ref: https://github.com/ggml-org/llama.cpp"
        "/pull/13194#issuecomment-2868343055)\n"
        "llama_kv_cache_iswa: creating non-SWA KV cache, size = 4096 cells\n"
        "llama_kv_cache:        CPU KV buffer size =     4.00 MiB\n"
        "llama_kv_cache: size =    4.00 MiB (  4096 cells,   1 layers,  1/1 seqs), "
        "K (f16):    2.00 MiB, V (f16):    2.00 MiB\n"
        "llama_kv_cache_iswa: creating     SWA KV cache, size = 4096 cells\n"
        "llama_kv_cache:        CPU KV buffer size =    20.00 MiB\n"
        "llama_kv_cache: size =   20.00 MiB (  4096 cells,   5 layers,  1/1 seqs), "
        "K (f16):   10.00 MiB, V (f16):   10.00 MiB\n")
    assert log.context.swa_full is True
    assert [(cache.name, cache.cells) for cache in log.kv_caches] == [("", 4096), ("SWA", 4096)]


# ---- load_tensors (src/llama-model.cpp) ------------------------------------------------------

@pytest.mark.parametrize(("line", "use_mmap"), [
    # "%s: loading model tensors, this can take a while... (load_mode = %s)\n" with
    # llama_load_mode_name (src/llama.cpp): use_mmap for MMAP and MMAP_MLOCK
    # (llama_model_loader's constructor, src/llama-model-loader.cpp).
    ("load_tensors: loading model tensors, this can take a while... (load_mode = none)", False),
    ("load_tensors: loading model tensors, this can take a while... (load_mode = mlock)", False),
    ("load_tensors: loading model tensors, this can take a while... (load_mode = mmap+mlock)",
     True),
    # Older builds: "(mmap = %s)" with ml.use_mmap ? "true" : "false".
    ("llm_load_tensors: loading model tensors, this can take a while... (mmap = true)", True),
    ("llm_load_tensors: loading model tensors, this can take a while... (mmap = false)", False),
], ids=["none", "mlock", "mmap+mlock", "older-true", "older-false"])
def test_load_mode_tells_whether_the_file_is_mapped(line: str, use_mmap: bool) -> None:
    assert parse(line + "\n").context.use_mmap is use_mmap


# ---- llama_prepare_model_devices (src/llama.cpp) ---------------------------------------------

def test_devices_in_their_order() -> None:
    # "%s: using device %s (%s) (%s) - %zu MiB free\n": name, description, device id (a PCI bus id
    # or "unknown id"), free memory.
    log = parse("llama_prepare_model_devices: using device CUDA0 (NVIDIA H200) (0000:01:00.0) - "
                "142597 MiB free\n"
                "llama_prepare_model_devices: using device RPC0 (127.0.0.1:50052) (unknown id) - "
                "1000 MiB free\n")
    assert log.devices == (LoggedDevice("CUDA0", "NVIDIA H200", 142597),
                           LoggedDevice("RPC0", "127.0.0.1:50052", 1000))


# ---- errors and damaged lines -----------------------------------------------------------------

def test_error_loading_model_leads_even_after_an_earlier_error() -> None:
    # A missing file: gguf_init_from_file "%s: failed to open GGUF file '%s' (%s)\n"
    # (ggml/src/gguf.cpp), then llama_model_load "%s: error loading model: %s\n" and
    # llama_model_load_from_file_impl "%s: failed to load model\n" (src/llama.cpp).
    records = (
        LogRecord(4, "gguf_init_from_file: failed to open GGUF file 'x.gguf' (No such file or "
                     "directory)"),
        LogRecord(4, "llama_model_load: error loading model: llama_model_loader: failed to load "
                     "model from x.gguf"),
        LogRecord(4, "llama_model_load_from_file_impl: failed to load model"),
    )
    assert error_lines(records) == (records[1].text, records[0].text, records[2].text)


def test_a_line_cut_short_gives_no_number() -> None:
    # A pasted log cut mid-line: "print_info: n_embd = %u" without its number.
    assert parse("print_info: n_embd                = \n").n_embd is None
