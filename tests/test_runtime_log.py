"""The load-log parser, on saved excerpts in the current and the older format.

The oracle of each expected value is the excerpt's own text (tests/data/runtime-*.log, see
tests/data/runtime-logs.md for where each came from): these tests check that the parser reads
what the line says, not what our memory model predicts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gguf_inspect.llamacpp.load_log import (
    LoadLog,
    LogRecord,
    PrintedSize,
    error_lines,
    join_fragments,
    parse_load_log,
    split_log_text,
)

DATA = Path(__file__).resolve().parent / "data"


def parse_file(name: str) -> LoadLog:
    return parse_load_log(split_log_text((DATA / name).read_text(encoding="utf-8")))


def mib(text: str) -> PrintedSize:
    value, unit = text.split()
    return PrintedSize(float(value), unit, len(value.split(".")[1]))


# ---- joining the callback's fragments ---------------------------------------------------------

def test_fragments_without_newline_are_joined_into_one_line() -> None:
    fragments = [(2, "llama_context: n_ctx"), (5, "     = 4096"), (5, "\n")]
    assert join_fragments(fragments) == (LogRecord(2, "llama_context: n_ctx     = 4096"),)


def test_progress_dots_are_closed_by_the_next_message() -> None:
    # llama.cpp prints loading progress as level-5 dots without a newline, then a new message.
    fragments = [(2, "load_tensors: CPU_Mapped model buffer size =     0.55 MiB\n"),
                 (5, "."), (5, "."), (5, "."),
                 (1, "repack: repack tensor blk.0.attn_q.weight with q4_K_8x8\n"),
                 (5, ".\n")]
    assert join_fragments(fragments) == (
        LogRecord(2, "load_tensors: CPU_Mapped model buffer size =     0.55 MiB"),
        LogRecord(2, "..."),  # continuation takes the level of the message it continues
        LogRecord(1, "repack: repack tensor blk.0.attn_q.weight with q4_K_8x8"),
        LogRecord(1, "."),
    )


def test_one_fragment_with_several_lines_is_split() -> None:
    records = join_fragments([(3, "first\nsecond\nthird")])
    assert records == (LogRecord(3, "first"), LogRecord(3, "second"), LogRecord(3, "third"))


def test_a_leading_continuation_has_no_level() -> None:
    assert join_fragments([(5, "..\n")]) == (LogRecord(None, ".."),)


# ---- the current format (a real capture of fixtures/tiny-llama-untied-q4_k_m.gguf) ------------

@pytest.fixture
def current() -> LoadLog:
    return parse_file("runtime-current-untied-q4_k_m.log")


def test_current_model_facts(current: LoadLog) -> None:
    assert current.style == "current"
    assert (current.n_embd, current.n_vocab, current.n_layer, current.n_ctx_train) == (
        256, 384, 2, 2048)
    assert current.file_type == "Q4_K - Medium"
    assert current.file_size == mib("0.58 MiB")
    assert current.bits_per_weight == "4.95"
    assert current.model_params == "984.32 K"
    assert current.type_counts == (("f32", 5), ("q4_K", 13), ("q6_K", 3))


def test_current_buffers(current: LoadLog) -> None:
    assert [(b.buffer, b.kind, b.size) for b in current.model_buffers] == [
        ("CPU_Mapped", "model", mib("0.55 MiB")), ("CPU_REPACK", "model", mib("0.37 MiB"))]
    assert [(b.buffer, b.size) for b in current.output_buffers] == [("CPU", mib("0.00 MiB"))]
    # The teardown line repeats the compute buffer with four decimals: the finer one is kept.
    assert [(b.buffer, b.size) for b in current.compute_buffers] == [
        ("CPU", mib("6.5137 MiB"))]


def test_current_kv_cache(current: LoadLog) -> None:
    (cache,) = current.kv_caches
    assert (cache.name, cache.cells, cache.layers, cache.n_seqs, cache.n_streams) == (
        "", 4096, 2, 1, 1)
    assert (cache.type_k, cache.type_v) == ("f16", "f16")
    assert (cache.size, cache.k_size, cache.v_size) == (
        mib("4.00 MiB"), mib("2.00 MiB"), mib("2.00 MiB"))
    assert [(b.buffer, b.kind, b.size) for b in cache.buffers] == [
        ("CPU", "kv", mib("4.00 MiB"))]


def test_current_context(current: LoadLog) -> None:
    context = current.context
    assert (context.n_seq_max, context.n_ctx, context.n_ctx_seq, context.n_batch,
            context.n_ubatch) == (1, 4096, 4096, 2048, 512)
    assert context.flash_attn_requested == "auto"
    assert context.flash_attn is True  # "resolve_fused_ops: Flash Attention enabled"
    assert context.kv_unified is False
    assert context.use_mmap is True  # "(load_mode = mmap)"
    assert context.swa_full is None  # no sliding-window cache in this model
    assert current.errors == ()


# ---- the current format, a sliding-window model (fixtures/tiny-gemma3-swa-q4_k_m.gguf) --------

def test_sliding_window_model_has_two_caches_in_log_order() -> None:
    log = parse_file("runtime-current-gemma3-swa.log")
    main, swa = log.kv_caches
    assert (main.name, main.cells, main.layers, main.n_seqs, main.n_streams) == (
        "", 2048, 1, 2, 2)
    assert (swa.name, swa.cells, swa.layers, swa.n_seqs, swa.n_streams) == ("SWA", 768, 5, 2, 2)
    assert (main.size, swa.size) == (mib("1.00 MiB"), mib("1.88 MiB"))
    assert [b.size for b in main.buffers] == [mib("1.00 MiB")]
    assert [b.size for b in swa.buffers] == [mib("1.88 MiB")]
    assert log.context.swa_full is False  # no "using full-size SWA cache" warning
    assert (log.context.n_seq_max, log.context.n_ctx_seq) == (2, 2048)


# ---- the older format -------------------------------------------------------------------------

def test_older_format_on_a_gpu_machine() -> None:
    log = parse_file("runtime-older-llama3-8b-cuda.log")
    assert log.style == "older"
    assert (log.n_embd, log.n_vocab, log.n_layer, log.n_ctx_train) == (4096, 128256, 32, 8192)
    assert log.file_type == "Q4_K - Medium"  # "model ftype"
    assert log.file_size == mib("4.58 GiB")  # "model size", in GiB above 1 GiB
    assert (log.bits_per_weight, log.model_params) == ("4.89", "8.03 B")
    assert log.type_counts == (("f32", 65), ("q4_K", 193), ("q6_K", 33))
    # "llm_load_tensors: CPU buffer size" (no "model" word) are model buffers.
    assert [(b.buffer, b.size) for b in log.model_buffers] == [
        ("CPU", mib("281.81 MiB")), ("CUDA0", mib("4403.49 MiB"))]
    (cache,) = log.kv_caches  # "KV self size": no cell or layer counts in this format
    assert (cache.cells, cache.layers, cache.n_seqs) == (None, None, None)
    assert (cache.size, cache.k_size, cache.v_size) == (
        mib("1024.00 MiB"), mib("512.00 MiB"), mib("512.00 MiB"))
    assert [(b.buffer, b.size) for b in cache.buffers] == [("CUDA0", mib("1024.00 MiB"))]
    assert [(b.buffer, b.size) for b in log.output_buffers] == [("CUDA_Host", mib("0.49 MiB"))]
    assert [(b.buffer, b.size) for b in log.compute_buffers] == [
        ("CUDA0", mib("560.00 MiB")), ("CUDA_Host", mib("24.01 MiB"))]
    assert (log.context.n_ctx, log.context.n_batch, log.context.n_ubatch) == (8192, 2048, 512)
    assert (log.context.flash_attn_requested, log.context.flash_attn) == ("disabled", False)
    assert log.context.gpu_layers == (33, 33)


def test_older_format_kv_init_line_gives_cells_and_layers() -> None:
    log = parse_file("runtime-older-untied-q8_0.log")
    assert log.style == "older"
    (cache,) = log.kv_caches
    assert (cache.cells, cache.layers) == (4096, 2)  # llama_kv_cache_init: kv_size = 4096 ...
    assert log.context.n_ctx_seq == 4096  # "n_ctx_per_seq" in that format
    assert [(b.buffer, b.size) for b in log.model_buffers] == [("CPU_Mapped", mib("1.00 MiB"))]


# ---- decorations and errors -------------------------------------------------------------------

def test_llama_server_timestamps_and_dots_are_ignored() -> None:
    log = parse_load_log(split_log_text(
        "0.00.039.148 I print_info: n_embd                = 4096\n"
        "......load_tensors:        CPU_Mapped model buffer size =   100.25 MiB\n"))
    assert log.n_embd == 4096
    assert [(b.buffer, b.size) for b in log.model_buffers] == [
        ("CPU_Mapped", mib("100.25 MiB"))]


def test_error_lines_from_levels_and_from_words() -> None:
    captured = (LogRecord(2, "llama_model_loader: loaded meta data"),
                LogRecord(4, "llama_model_load_from_file_impl: failed to load model"),
                LogRecord(4, "llama_model_load: error loading model: unknown model "
                             "architecture: 'nonesuch'"))
    assert error_lines(captured)[0] == ("llama_model_load: error loading model: unknown model "
                                        "architecture: 'nonesuch'")
    saved = split_log_text("print_info: n_embd = 8\n"
                           "llama_init_from_model: quantized V cache requires flash_attn to be "
                           "enabled\n")
    assert error_lines(saved) == ("llama_init_from_model: quantized V cache requires flash_attn "
                                  "to be enabled",)


def test_an_unrelated_text_parses_to_nothing() -> None:
    log = parse_load_log(split_log_text("hello\nworld: no figures here\n"))
    assert log.style == "unknown"
    assert (log.n_embd, log.file_size, log.model_buffers, log.kv_caches) == (None, None, (), ())


def test_recurrent_state_buffers_are_their_own_kind() -> None:
    # The format strings of llama-memory-recurrent.cpp (llama_memory_recurrent's constructor).
    log = parse_load_log(split_log_text(
        "llama_memory_recurrent:        CPU RS buffer size =    16.50 MiB\n"
        "llama_memory_recurrent: size =   16.50 MiB (     1 cells,  48 layers,  1 seqs  0 rs_seq),"
        " R (f32):    0.50 MiB, S (f32):   16.00 MiB, P (f32):    0.00 MiB\n"))
    assert [(b.buffer, b.kind, b.size) for b in log.recurrent_buffers] == [
        ("CPU", "recurrent", mib("16.50 MiB"))]
    assert log.kv_caches == ()  # the R/S summary is not a KV cache line


def test_the_2025_wording_between_the_two_formats() -> None:
    # Builds of mid-2025 (before llama_kv_cache and sched_reserve): llama_kv_cache_unified*,
    # n_ctx_per_seq, a single seq count, and flash attention resolved by llama_context itself.
    log = parse_load_log(split_log_text(
        "llama_context: n_seq_max     = 1\n"
        "llama_context: n_ctx         = 4096\n"
        "llama_context: n_ctx_per_seq = 4096\n"
        "llama_context: flash_attn    = auto\n"
        "llama_context: Flash Attention was auto, set to enabled\n"
        "llama_kv_cache_unified_iswa: creating non-SWA KV cache, size = 4096 cells\n"
        "llama_kv_cache_unified:        CPU KV buffer size =    32.00 MiB\n"
        "llama_kv_cache_unified: size =   32.00 MiB (  4096 cells,   4 layers,  1 seqs), "
        "K (f16):   16.00 MiB, V (f16):   16.00 MiB\n"
        "llama_kv_cache_unified_iswa: creating     SWA KV cache, size = 1024 cells\n"
        "llama_kv_cache_unified:        CPU KV buffer size =    40.00 MiB\n"
        "llama_kv_cache_unified: size =   40.00 MiB (  1024 cells,  20 layers,  1 seqs), "
        "K (f16):   20.00 MiB, V (f16):   20.00 MiB\n"
        "llama_context:        CPU compute buffer size =   300.01 MiB\n"))
    assert log.context.n_ctx_seq == 4096
    assert (log.context.flash_attn_requested, log.context.flash_attn) == ("auto", True)
    assert [(c.name, c.cells, c.layers, c.n_seqs, c.n_streams) for c in log.kv_caches] == [
        ("", 4096, 4, 1, None), ("SWA", 1024, 20, 1, None)]
    assert [b.size for c in log.kv_caches for b in c.buffers] == [mib("32.00 MiB"),
                                                                  mib("40.00 MiB")]
    assert [(b.buffer, b.size) for b in log.compute_buffers] == [("CPU", mib("300.01 MiB"))]


def test_only_the_first_model_load_is_read() -> None:
    first = (DATA / "runtime-current-untied-q4_k_m.log").read_text(encoding="utf-8")
    second = (DATA / "runtime-current-gemma3-swa.log").read_text(encoding="utf-8")
    log = parse_load_log(split_log_text(first + second))  # e.g. a server loading a draft model
    assert (log.n_embd, log.n_layer) == (256, 2)
    assert log.type_counts == (("f32", 5), ("q4_K", 13), ("q6_K", 3))
    assert len(log.kv_caches) == 1
