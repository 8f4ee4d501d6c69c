"""RPC servers on 127.0.0.1 for the tests: each a child process serving this machine's CPU
device through llama.cpp's RPC backend (gguf_inspect.llamacpp.runtime.serve_rpc), so a CPU-only
machine gets "GPUs" whose real load log can be compared with the memory model.

Registering RPC servers is permanent for a process (ggml's device registry has no removal), and
every later load in that process would use them; so the loads run in one spawned worker
process (``RpcLoader``), never in the test process itself.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class RpcServers:
    """``count`` servers started at once; ``endpoints`` in start order; ``stop`` ends them."""

    def __init__(self, count: int, endpoints: list[str] | None = None) -> None:
        self.endpoints: list[str] = []
        self._processes: list[subprocess.Popen[bytes]] = []
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        for index in range(count):
            endpoint = endpoints[index] if endpoints else f"127.0.0.1:{free_port()}"
            code = ("from gguf_inspect.llamacpp.runtime import serve_rpc; "
                    f"serve_rpc({endpoint!r})")
            self._processes.append(subprocess.Popen(
                [sys.executable, "-c", code], cwd=ROOT, env=environment,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.endpoints.append(endpoint)
        deadline = time.monotonic() + START_TIMEOUT_S
        for endpoint, process in zip(self.endpoints, self._processes):
            port = int(endpoint.rpartition(":")[2])
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"RPC server {endpoint} did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self._processes:  # only the processes started here, by their id
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# set in the environment a worker is spawned with: each load answers (capture, what the process
# wrote to stderr meanwhile): a traced ggml-alloc.c LD_PRELOADed there prints its trace to stderr
CAPTURE_STDERR = "GGUF_INSPECT_CAPTURE_STDERR"


def _capture(path: str, settings: Any) -> Any:
    """In the worker: one load through the registered servers; an error travels as text."""
    from gguf_inspect.llamacpp.runtime import capture_load

    if os.environ.get(CAPTURE_STDERR):
        return _with_stderr(capture_load, path, settings)
    try:
        return capture_load(path, settings)
    except Exception as error:  # pickling a project error may lose its fields: send the text
        return f"{type(error).__name__}: {error}"


def _with_stderr(load: Any, path: str, settings: Any) -> Any:
    """``load(path, settings)`` with file descriptor 2 sent to a file meanwhile (C code writes
    there unbuffered): (its result, the text written), or the error as text."""
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            result = load(path, settings)
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return result, sink.read().decode("utf-8", "replace")


class RpcLoader:
    """One spawned worker process that makes every RPC load of a test module."""

    def __init__(self) -> None:
        self._pool = multiprocessing.get_context("spawn").Pool(1)

    def capture(self, path: str, settings: Any) -> Any:
        """The RuntimeCapture of loading ``path`` under ``settings`` (``settings.rpc`` names
        the servers); AssertionError with llama.cpp's reason when the load fails."""
        result = self._pool.apply(_capture, (path, settings))
        assert not isinstance(result, str), result
        return result

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()


class RpcSession:
    """Two RPC servers and the worker that loads through them, started on the first load.

    With ``answers`` (a folder: GGUF_INSPECT_RUNTIME_ANSWERS, set by benchmarks/mutation.py)
    each capture is kept there, keyed by the file's bytes and the settings (the endpoints
    included), and the endpoints themselves are kept too, so a later run (the next mutant)
    asks the same questions and gets llama.cpp's answers without starting a server: llama.cpp's
    answers do not depend on our code."""

    def __init__(self, answers: Path | None = None, count: int = 2) -> None:
        self.answers, self.count = answers, count
        self._servers: RpcServers | None = None
        self._loader: RpcLoader | None = None
        saved = answers / "rpc-endpoints" if answers is not None else None
        if saved is not None and saved.exists():
            self.endpoints = saved.read_text().split()
        else:
            self.endpoints = [f"127.0.0.1:{free_port()}" for _ in range(count)]
            if saved is not None:
                saved.write_text(" ".join(self.endpoints))

    def capture(self, path: str, settings: Any) -> Any:
        """llama.cpp's RuntimeCapture of loading ``path`` under ``settings``."""
        kept = self._kept(path, settings)
        if kept is not None and kept.exists():
            return pickle.loads(kept.read_bytes())
        if self._servers is None:
            self._servers = RpcServers(self.count, self.endpoints)
            self._loader = RpcLoader()
        assert self._loader is not None
        capture = self._loader.capture(path, settings)
        if kept is not None:
            partial = kept.with_suffix(f".{os.getpid()}")
            partial.write_bytes(pickle.dumps(capture))
            partial.replace(kept)
        return capture

    def _kept(self, path: str, settings: Any) -> Path | None:
        if self.answers is None:
            return None
        key = hashlib.sha256(b"rpc" + repr(settings).encode() + Path(path).read_bytes())
        return self.answers / key.hexdigest()

    def close(self) -> None:
        if self._loader is not None:
            self._loader.close()
        if self._servers is not None:
            self._servers.stop()
