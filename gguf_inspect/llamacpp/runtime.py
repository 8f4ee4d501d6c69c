"""Load a model and a context through llama-cpp-python (no generation) and keep llama.cpp's whole
load log, caught through llama.cpp's own log callback.

Why a callback and not stderr redirection: llama-cpp-python installs its own callback at import,
and with ``verbose=False`` it points the C file descriptors at /dev/null, so redirecting stderr
can lose everything. ``llama_log_set`` hands us every message, at every level, whatever the
Python side is set to. The previous callback is put back afterwards.

Uses the C API directly (``llama_model_load_from_file`` / ``llama_init_from_model``) rather than
the ``Llama`` class: the class overrides some of llama.cpp's defaults and does not expose all of
the context parameters (``swa_full``, ``kv_unified``) the comparison needs to set.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass
from typing import Any

from gguf_inspect.llamacpp.load_log import LogRecord, join_fragments
from gguf_inspect.core.constants import ggml_type_from_name
from gguf_inspect.core.errors import RuntimeUnavailableError, SourceError, UsageError
from gguf_inspect.llamacpp.settings import (
    LlamaSettings,
    all_overrides,
    parse_tensor_split,
    rpc_servers,
)

# What is missing is llama-cpp-python at the version pinned in pyproject.toml's "runtime" extra.
# Never "pip install gguf-inspect": that name on PyPI is an unrelated project; this one installs
# from its checkout.
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
INSTALL_HINT = (f"pip install '{LLAMA_CPP_PYTHON}' into this environment (or, in a checkout of "
                "this project: pip install -e '.[runtime]'); without a cached wheel it builds "
                "llama.cpp, which needs a C++ compiler and cmake")
FLASH_ATTN_TYPES = {"auto": -1, "off": 0, "on": 1}  # enum llama_flash_attn_type
SPLIT_MODES = {"none": 0, "layer": 1, "row": 2}  # enum llama_split_mode
LOAD_MODE_NONE, LOAD_MODE_MMAP = 0, 1  # enum llama_load_mode
UNLIMITED_CONTEXT = 0  # n_ctx = 0: "from model", i.e. the trained context length


@dataclass(frozen=True)
class RuntimeCapture:
    """What one load told us: the log, and the exact figures the C API reports beside it."""

    raw_log: str  # every fragment, concatenated exactly as llama.cpp wrote it
    records: tuple[LogRecord, ...]  # the same, joined into whole lines with their level
    model_size: int  # llama_model_size: exact tensor bytes
    model_n_params: int  # llama_model_n_params: exact element count
    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    n_seq_max: int
    library: str  # "llama-cpp-python 0.3.36"
    # What loading the extra files (LoRA adapters, a projector) logged, kept apart from the
    # model's load log: mtmd's "compute buffer size" lines are not the context's.
    extras_log: str = ""
    # The draft model's own load (--model-draft), captured the same way; its log is not in
    # raw_log (a saved log holds one model's load).
    draft: "RuntimeCapture | None" = None


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a RuntimeUnavailableError that says how to install it."""
    try:
        import llama_cpp
    except ImportError as error:
        raise RuntimeUnavailableError(
            f"llama-cpp-python is not installed ({error}); install it with: {INSTALL_HINT}"
        ) from None
    return llama_cpp


class LogCatcher:
    """Installs a llama.cpp log callback for the duration of a ``with`` block.

    The ctypes callback object is kept on the instance: ctypes does not keep it alive for C,
    and a collected callback crashes the process on the next log message.
    """

    def __init__(self, llama_cpp: Any) -> None:
        self._llama_cpp = llama_cpp
        self.fragments: list[tuple[int, str]] = []
        self._callback = llama_cpp.llama_log_callback(self._receive)
        self._previous_callback = llama_cpp.llama_log_callback()
        self._previous_user_data = ctypes.c_void_p()

    @property
    def callback(self) -> Any:
        """The ctypes callback (for a library with its own log setter, like mtmd)."""
        return self._callback

    def _receive(self, level: int, text: bytes | None, _user_data: Any) -> None:
        # Never raise into C: decode leniently (strings from the file may be any bytes).
        self.fragments.append((int(level), (text or b"").decode("utf-8", errors="replace")))

    def __enter__(self) -> "LogCatcher":
        self._llama_cpp.llama_log_get(ctypes.byref(self._previous_callback),
                                      ctypes.byref(self._previous_user_data))
        self._llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._llama_cpp.llama_log_set(self._previous_callback, self._previous_user_data)


class BufferOverride(ctypes.Structure):
    """struct llama_model_tensor_buft_override (include/llama.h)."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def _libggml() -> Any:
    """The libggml that libllama uses: beside it when LLAMA_CPP_LIB_PATH points llama-cpp-python
    at another build (a CUDA one), else the copy libllama loaded, found by its soname
    (RTLD_NOLOAD: only an already loaded library). llama-cpp-python's own handle (``_ggml``)
    opens libggml.so, a separate copy of the file in its wheel, with its own device registry:
    RPC servers registered there would never reach the model load."""
    override = os.environ.get("LLAMA_CPP_LIB_PATH")
    if override:
        return ctypes.CDLL(os.path.join(override, "libggml.so"))
    import_llama_cpp()  # loads libllama, and with it its libggml
    from llama_cpp import _ggml  # llama-cpp-python's handle on libggml (not re-exported)

    folder = os.path.dirname(_ggml.libggml._name)
    for name in sorted(os.listdir(folder)):
        if re.fullmatch(r"libggml\.so\.\d+", name):
            try:
                return ctypes.CDLL(name, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_GLOBAL)
            except OSError:
                break
    return _ggml.libggml


def _buffer_types() -> dict[str, int]:
    """Each device's buffer type by name, as parse_tensor_buffer_overrides (common/arg.cpp)
    lists them: ``CPU`` on a CPU-only build, ``CUDA0`` ... with CUDA, ``RPC0[host:port]`` for
    each registered RPC server."""
    ggml = _libggml()
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_buffer_type.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_buffer_type.restype = ctypes.c_void_p
    ggml.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_buft_name.restype = ctypes.c_char_p
    types = {}
    for index in range(ggml.ggml_backend_dev_count()):
        buft = ggml.ggml_backend_dev_buffer_type(ggml.ggml_backend_dev_get(index))
        if buft:
            types[ggml.ggml_backend_buft_name(buft).decode()] = buft
    return types


def rpc_supported() -> bool:
    """Whether this llama-cpp-python was built with the RPC backend (llama_supports_rpc)."""
    return bool(import_llama_cpp().llama_supports_rpc())


_REGISTERED_RPC: set[str] = set()  # endpoints registered in this process (never undone)
GGML_BACKEND_DEVICE_TYPE_CPU = 0  # enum ggml_backend_dev_type


def _rpc_proc(ggml: Any, name: str, signature: Any) -> Any:
    """A function of the RPC backend by ggml_backend_reg_get_proc_address, as common/arg.cpp
    finds them; RuntimeUnavailableError when this build has no RPC backend."""
    ggml.ggml_backend_reg_by_name.argtypes = [ctypes.c_char_p]
    ggml.ggml_backend_reg_by_name.restype = ctypes.c_void_p
    ggml.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ggml.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    registry = ggml.ggml_backend_reg_by_name(b"RPC")
    address = registry and ggml.ggml_backend_reg_get_proc_address(registry, name.encode())
    if not address:
        raise RuntimeUnavailableError("this llama-cpp-python has no RPC backend: reinstall it "
                                      "with CMAKE_ARGS=\"-DGGML_RPC=ON\" and --no-cache-dir")
    return signature(address)


def add_rpc_devices(servers: tuple[str, ...]) -> None:
    """Register each server's devices, as add_rpc_devices (common/arg.cpp) does for --rpc:
    ggml_backend_rpc_add_server, then ggml_backend_register, before the model loads. Once per
    endpoint and process (registering twice would list its devices twice); it cannot be undone,
    so every later load in this process sees them. An unreachable server is refused here:
    ggml-rpc aborts the process on a failed connection."""
    import socket

    ggml = _libggml()
    add_server = _rpc_proc(ggml, "ggml_backend_rpc_add_server",
                           ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p))
    ggml.ggml_backend_register.argtypes = [ctypes.c_void_p]
    for server in (server for server in servers if server not in _REGISTERED_RPC):
        host, _colon, port = server.partition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as error:
            raise RuntimeUnavailableError(f"RPC server {server} unreachable: {error}") from None
        registry = add_server(server.encode())
        if not registry:
            raise RuntimeUnavailableError(f"RPC server {server} reports no device")
        ggml.ggml_backend_register(registry)
        _REGISTERED_RPC.add(server)


def serve_rpc(endpoint: str, n_threads: int = 1) -> None:
    """Serve this machine's CPU device on ``endpoint`` (host:port) as llama.cpp's rpc-server
    does, through ggml_backend_rpc_start_server (ggml-rpc.h); never returns."""
    ggml = _libggml()
    start = _rpc_proc(ggml, "ggml_backend_rpc_start_server", ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p)))
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    devices = (ctypes.c_void_p * 1)(ggml.ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU))
    start(endpoint.encode(), None, n_threads, 1, devices)


def _overrides(llama_cpp: Any, config: LlamaSettings) -> Any:
    """The NULL-terminated override array of ``-ot`` and ``--n-cpu-moe`` (None when there are
    none); a buffer name this build lacks is refused as common/arg.cpp refuses it."""
    overrides = all_overrides(config)
    if not overrides:
        return None
    types = _buffer_types()
    array = (BufferOverride * (len(overrides) + 1))()
    for slot, (pattern, buffer) in zip(array, overrides):
        if buffer not in types:
            raise UsageError(f"unknown buffer type {buffer} (--override-tensor); this build has "
                             f"{', '.join(sorted(types))}")
        slot.pattern, slot.buft = pattern.encode(), types[buffer]
    return array


def _tensor_split(llama_cpp: Any, config: LlamaSettings) -> Any:
    """``--tensor-split`` as common/arg.cpp hands it over: llama_max_devices() floats, the
    shares first and zeros after (None when not given: split by free memory). As arg.cpp, it
    refuses as many shares as llama_max_devices() or more. A CPU-only build has no GPU device,
    so llama_model::load_tensors never reads it there."""
    shares = parse_tensor_split(config.tensor_split)
    if not shares:
        return None
    max_devices = llama_cpp.llama_max_devices()
    if len(shares) >= max_devices:
        raise UsageError(f"--tensor-split: got {len(shares)} input configs, but system only has "
                         f"{max_devices} devices (llama.cpp's own limit)")
    return (ctypes.c_float * max_devices)(*shares)


def _model_params(llama_cpp: Any, config: LlamaSettings, overrides: Any = None,
                  tensor_split: Any = None) -> Any:
    """llama_model_params for ``config``; ``overrides`` and ``tensor_split`` are arrays the
    caller keeps alive until the load returns (llama.cpp borrows them)."""
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = config.n_gpu_layers
    params.load_mode = LOAD_MODE_MMAP if config.use_mmap else LOAD_MODE_NONE
    params.use_extra_bufts = config.cpu_repack
    params.split_mode = SPLIT_MODES[config.split_mode]
    params.main_gpu = config.main_gpu
    if overrides is not None:  # the array outlives the load: the caller holds it
        params.tensor_buft_overrides = ctypes.cast(overrides, ctypes.c_void_p)
    if tensor_split is not None:
        params.tensor_split = ctypes.cast(tensor_split, ctypes.POINTER(ctypes.c_float))
    return params


def _context_params(llama_cpp: Any, config: LlamaSettings) -> Any:
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = UNLIMITED_CONTEXT if config.n_ctx is None else config.n_ctx
    params.n_batch = config.n_batch
    params.n_ubatch = config.n_ubatch
    params.n_seq_max = config.n_parallel
    params.type_k = ggml_type_from_name(config.cache_type_k).type_id
    params.type_v = ggml_type_from_name(config.cache_type_v).type_id
    params.flash_attn_type = FLASH_ATTN_TYPES[config.flash_attn]
    params.swa_full = config.swa_full
    params.kv_unified = config.kv_unified
    params.offload_kqv = config.offload_kqv
    params.op_offload = config.op_offload
    params.embeddings = config.embeddings
    params.n_threads = params.n_threads_batch = 1  # nothing is computed; keep it light
    return params


def _refusal(path: str, what: str, fragments: list[tuple[int, str]]) -> RuntimeUnavailableError:
    """llama.cpp's own error line (the most specific one) as the message of the failure; the
    raw log travels with the error (``raw_log``) so ``--log`` can still save it."""
    from gguf_inspect.llamacpp.load_log import error_lines

    errors = error_lines(join_fragments(fragments))
    reason = errors[0] if errors else f"llama.cpp could not {what} (no error line in its log)"
    error = RuntimeUnavailableError(f"llama.cpp refused the model: {reason}", path=path)
    error.raw_log = "".join(text for _level, text in fragments)  # type: ignore[attr-defined]
    return error


def _load_extras(llama_cpp: Any, model: Any, loras: tuple[tuple[str, float], ...],
                 mmproj: str | None, fragments: list[tuple[int, str]]) -> None:
    """LoRA adapters through ``llama_adapter_lora_init`` (freed with the model) and a projector
    through mtmd's ``mtmd_init_from_file`` on the CPU (warmup on: that is when the vision
    compute buffer is reserved), freed at once."""
    for lora_path, _scale in loras:
        if not os.path.isfile(lora_path):
            raise SourceError("no such file (the runtime needs a local file)", path=lora_path)
        if not llama_cpp.llama_adapter_lora_init(model, lora_path.encode()):
            raise _refusal(lora_path, "load the LoRA adapter", fragments)
    if mmproj is None:
        return
    if not os.path.isfile(mmproj):
        raise SourceError("no such file (the runtime needs a local file)", path=mmproj)
    from llama_cpp import mtmd_cpp

    params = mtmd_cpp.mtmd_context_params_default()
    params.use_gpu = False
    params.print_timings = False
    params.n_threads = 1
    # mtmd and clip log through their own callback (mtmd_log_set), not llama_log_set's
    catcher = LogCatcher(llama_cpp)
    catcher.fragments = fragments
    mtmd_cpp.mtmd_log_set(catcher.callback, ctypes.c_void_p(0))
    try:
        context = mtmd_cpp.mtmd_init_from_file(mmproj.encode(), model, params)
    finally:
        mtmd_cpp.mtmd_log_set(llama_cpp.llama_log_callback(), ctypes.c_void_p(0))
    if not context:
        raise _refusal(mmproj, "load the projector", fragments)
    mtmd_cpp.mtmd_free(context)


def _load_model(llama_cpp: Any, path: str, config: LlamaSettings,
                fragments: list[tuple[int, str]]) -> Any:
    """llama_model_load_from_file with ``config``'s model parameters; the refusal on failure."""
    if not os.path.isfile(path):  # llama.cpp reads local files only
        raise SourceError("no such file (the runtime needs a local file)", path=path)
    if config.rpc:
        add_rpc_devices(rpc_servers(config.rpc))
    overrides = _overrides(llama_cpp, config)
    tensor_split = _tensor_split(llama_cpp, config)
    model = llama_cpp.llama_model_load_from_file(
        path.encode(), _model_params(llama_cpp, config, overrides, tensor_split))
    if not model:
        raise _refusal(path, "load the model", fragments)
    return model


def _context_sizes(llama_cpp: Any, model: Any, path: str, config: LlamaSettings,
                   fragments: list[tuple[int, str]]) -> tuple[int, ...]:
    """Create one context (its buffers are logged), read its sizes and free it: n_ctx,
    n_ctx_seq, n_batch, n_ubatch, n_seq_max."""
    context = llama_cpp.llama_init_from_model(model, _context_params(llama_cpp, config))
    if not context:
        raise _refusal(path, "create the context", fragments)
    sizes = (llama_cpp.llama_n_ctx(context), llama_cpp.llama_n_ctx_seq(context),
             llama_cpp.llama_n_batch(context), llama_cpp.llama_n_ubatch(context),
             llama_cpp.llama_n_seq_max(context))
    # Freeing the context logs the compute buffers again, with four decimals.
    llama_cpp.llama_free(context)
    return sizes


def _capture(llama_cpp: Any, fragments: list[tuple[int, str]], start: int, end: int,
             model_figures: tuple[int, int], sizes: tuple[int, ...], extras_end: int,
             draft: "RuntimeCapture | None" = None) -> RuntimeCapture:
    return RuntimeCapture(
        raw_log="".join(text for _level, text in fragments[start:extras_end]),
        records=join_fragments(fragments[start:end]),
        model_size=model_figures[0], model_n_params=model_figures[1],
        n_ctx=sizes[0], n_ctx_seq=sizes[1], n_batch=sizes[2], n_ubatch=sizes[3],
        n_seq_max=sizes[4],
        library=f"llama-cpp-python {getattr(llama_cpp, '__version__', '?')}",
        extras_log="".join(text for _level, text in fragments[end:extras_end]), draft=draft)


def _load_draft(llama_cpp: Any, draft: tuple[str, LlamaSettings],
                fragments: list[tuple[int, str]]) -> RuntimeCapture:
    """The draft model as llama-server loads it (common_speculative_init_from_params): a second
    model with its own context, under the draft's settings."""
    path, config = draft
    start = len(fragments)
    model = _load_model(llama_cpp, path, config, fragments)
    try:
        sizes = _context_sizes(llama_cpp, model, path, config, fragments)
        figures = (llama_cpp.llama_model_size(model), llama_cpp.llama_model_n_params(model))
    finally:
        llama_cpp.llama_model_free(model)
    end = len(fragments)
    return _capture(llama_cpp, fragments, start, end, figures, sizes, end)


def capture_load(path: str, config: LlamaSettings, loras: tuple[tuple[str, float], ...] = (),
                 mmproj: str | None = None, draft: tuple[str, LlamaSettings] | None = None,
                 ) -> RuntimeCapture:
    """Load ``path`` and one context as ``config`` says (then the LoRA adapters and the
    projector, if given), free everything, and return the whole log; then the ``draft`` model
    (its path and settings), if given, with its own context, as ``RuntimeCapture.draft``.

    Raises RuntimeUnavailableError when llama-cpp-python is missing or llama.cpp refuses the
    model or the context (the message carries llama.cpp's own error line).
    """
    if not os.path.isfile(path):  # llama.cpp reads local files only
        raise SourceError("no such file (the runtime needs a local file)", path=path)
    llama_cpp = import_llama_cpp()
    catcher = LogCatcher(llama_cpp)
    with catcher:
        llama_cpp.llama_backend_init()
        model = _load_model(llama_cpp, path, config, catcher.fragments)
        try:
            sizes = _context_sizes(llama_cpp, model, path, config, catcher.fragments)
            main_end = len(catcher.fragments)
            _load_extras(llama_cpp, model, loras, mmproj, catcher.fragments)
            figures = (llama_cpp.llama_model_size(model), llama_cpp.llama_model_n_params(model))
        finally:
            llama_cpp.llama_model_free(model)
        extras_end = len(catcher.fragments)
        draft_capture = None if draft is None else _load_draft(llama_cpp, draft,
                                                               catcher.fragments)
    return _capture(llama_cpp, catcher.fragments, 0, main_end, figures, sizes, extras_end,
                    draft_capture)


class RuntimeTokenizer:
    """The model's own tokenizer, through llama-cpp-python with a vocabulary-only load.

    Loaded on first use and only then (importing llama.cpp costs time); ``unavailable`` says why
    it could not be used. Call ``close`` to free the llama.cpp model.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.unavailable: str | None = None
        self._llama_cpp: Any = None  # the llama_cpp module, once imported
        self._model: Any = None
        self._vocab: Any = None

    def _load(self) -> bool:
        if self._vocab is not None:
            return True
        if self.unavailable is not None:
            return False
        if not os.path.isfile(self.path):
            self.unavailable = ("the model's own tokenizer needs a local file (llama.cpp loads "
                                "it from disk); on a URL, words in the vocabulary, \" word\", "
                                "=piece and token ids still work")
            return False
        try:
            import llama_cpp
        except ImportError:
            self.unavailable = ("llama-cpp-python is not installed, so the model's own tokenizer "
                                f"was not tried (pip install '{LLAMA_CPP_PYTHON}')")
            return False
        import logging

        # llama-cpp-python routes llama.cpp's log through this logger; a vocabulary load is
        # not worth the dozens of lines it prints.
        logger = logging.getLogger("llama-cpp-python")
        previous_level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            params = llama_cpp.llama_model_default_params()
            params.vocab_only = True
            model = llama_cpp.llama_model_load_from_file(self.path.encode(), params)
        finally:
            logger.setLevel(previous_level)
        if not model:
            self.unavailable = "llama.cpp could not load this file's tokenizer"
            return False
        self._llama_cpp, self._model = llama_cpp, model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        return True

    def tokenize(self, text: str) -> list[int] | None:
        """Token ids for ``text`` (no BOS, specials not parsed); None when unavailable."""
        if not self._load():
            return None
        llama_cpp = self._llama_cpp
        data = text.encode("utf-8")
        capacity = len(data) + 8  # never more tokens than bytes, plus a BOS/space prefix
        buffer = (llama_cpp.llama_token * capacity)()
        count = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity,
                                         False, False)
        if count < 0:  # too small: llama.cpp returns minus the count it needs
            buffer = (llama_cpp.llama_token * -count)()
            count = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, -count,
                                             False, False)
        return list(buffer[:max(count, 0)])

    def close(self) -> None:
        if self._model is not None:
            self._llama_cpp.llama_model_free(self._model)
            self._model = self._vocab = None
