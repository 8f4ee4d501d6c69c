"""Loading through llama-cpp-python and catching llama.cpp's log through its callback.

The oracle is llama.cpp itself: what its C API reports (llama_model_size, llama_n_ctx) and the
lines it logs. These tests load the tiny fixtures for real (well under a second each).
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from tests.conftest import fixture_path, write_gguf
from gguf_inspect.llamacpp.cpu_buffers import host_has_amx
from gguf_inspect.llamacpp.settings import LlamaSettings
from gguf_inspect.core.errors import RuntimeUnavailableError, SourceError
from gguf_inspect.llamacpp.runtime import INSTALL_HINT, RuntimeCapture, capture_load

UNTIED = str(fixture_path("tiny-llama-untied-q4_k_m.gguf"))


@pytest.fixture(scope="module")
def capture() -> RuntimeCapture:
    return capture_load(UNTIED, LlamaSettings(n_ctx=5000, n_parallel=2))


def test_the_whole_log_is_caught_at_every_level(capture: RuntimeCapture) -> None:
    levels = {record.level for record in capture.records}
    # debug (per-layer lines), info, and a warning: n_ctx_seq 2560 > n_ctx_train 2048
    assert {1, 2, 3} <= levels
    texts = [record.text for record in capture.records]
    assert any(text.startswith("print_info: file size") for text in texts)
    assert any(text.startswith("load_tensors:   CPU_Mapped model buffer size") for text in texts)
    assert any(text.startswith("sched_reserve:") for text in texts)
    assert all("\n" not in text for text in texts)
    # The raw log keeps llama.cpp's own text, fragments unsplit (what --log saves).
    assert all(text in capture.raw_log for text in texts)
    # Dots still glued to the next message: the repack line of whichever extra buffer type this
    # CPU has (AMX before CPU_REPACK, ggml_backend_cpu_get_extra_buffer_types).
    repack_line = (".ggml_backend_amx_buffer_set_tensor: amx repack tensor" if host_has_amx()
                   else ".repack: repack tensor")
    assert repack_line in capture.raw_log
    assert "llama_kv_cache: size = " in capture.raw_log


def test_exact_figures_come_from_the_c_api(capture: RuntimeCapture) -> None:
    reader = gguf.GGUFReader(UNTIED)
    assert capture.model_size == sum(int(t.n_bytes) for t in reader.tensors)
    assert capture.model_n_params == sum(int(t.n_elements) for t in reader.tensors)
    # n_ctx 5000 -> 5120 (a multiple of 256), split over 2 sequences: 2560 each.
    assert (capture.n_ctx, capture.n_ctx_seq, capture.n_seq_max) == (5120, 2560, 2)
    assert (capture.n_batch, capture.n_ubatch) == (2048, 512)
    assert capture.library.startswith("llama-cpp-python ")


def test_the_previous_log_callback_is_put_back(capture: RuntimeCapture) -> None:
    import llama_cpp

    def current() -> int | None:
        callback, user_data = llama_cpp.llama_log_callback(), ctypes.c_void_p()
        llama_cpp.llama_log_get(ctypes.byref(callback), ctypes.byref(user_data))
        return ctypes.cast(callback, ctypes.c_void_p).value

    before = current()
    capture_load(UNTIED, LlamaSettings(n_ctx=256))
    assert current() == before


def test_missing_llama_cpp_python_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(RuntimeUnavailableError) as caught:
        capture_load(UNTIED, LlamaSettings())
    assert "llama-cpp-python is not installed" in str(caught.value)
    assert INSTALL_HINT in str(caught.value)


def test_a_refused_context_reports_llama_cpps_own_error_line() -> None:
    with pytest.raises(RuntimeUnavailableError) as caught:
        capture_load(UNTIED, LlamaSettings(cache_type_v="q8_0", flash_attn="off"))
    assert "quantized V cache requires flash_attn to be enabled" in str(caught.value)
    assert "print_info: file size" in caught.value.raw_log  # type: ignore[attr-defined]


def test_a_refused_model_reports_llama_cpps_own_error_line(tmp_path: Path) -> None:
    path = tmp_path / "unknown-arch.gguf"
    writer = gguf.GGUFWriter(str(path), "nonesuch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    write_gguf(writer)
    with pytest.raises(RuntimeUnavailableError) as caught:
        capture_load(str(path), LlamaSettings())
    assert "error loading model: unknown model architecture: 'nonesuch'" in str(caught.value)


def test_a_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        capture_load(str(tmp_path / "absent.gguf"), LlamaSettings())
