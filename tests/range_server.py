"""A local HTTP/1.1 file server for the remote tests: 127.0.0.1 only, in a thread, no internet.

Written for the tests rather than taken from ``http.server``'s ``SimpleHTTPRequestHandler``,
which ignores Range. It serves the files of one folder under ``/files/NAME`` and can:
honour Range (206) or ignore it (200 with the whole body), answer 503 to the first requests,
break off the first bodies midway, redirect ``/redirect/NAME`` to ``/files/NAME``, map
Hugging Face ``/OWNER/REPO/resolve/REVISION/NAME`` paths to the folder (or redirect them to
another server, as the Hub redirects to its CDN), demand a token, answer slowly, hold every
answer until the test ends (a server that never answers), or hold the first answers until N
requests are in flight at once (a deterministic overlap: no test waits on a clock to see
concurrency); and, as a hostile server would, trickle its headers or body a byte at a time, send
a garbage status line, redirect ``/loop/NAME`` to itself forever, send a body that never ends, or
redirect ``/redirect/NAME`` to another server (another host, for the credential tests).
It counts what it really sent and how many requests it served at once, an oracle independent
of the client's own counters.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_HF_PATH = re.compile(r"^/(?:datasets/)?[^/]+/[^/]+/resolve/[^/]+/(?P<name>.+)$")


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    range: str | None
    authorization: str | None


@dataclass
class ServerLog:
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    bytes_sent: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        with self.server.log.lock:
            self.server.log.connections += 1

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        log = self.server.log
        with log.lock:
            log.requests.append(Seen(self.path, self.headers.get("Range"),
                                     self.headers.get("Authorization")))
            number = len(log.requests)
            log.in_flight += 1
            log.most_in_flight = max(log.most_in_flight, log.in_flight)
            log.changed.notify_all()
            # a safety cap only, so that a broken test cannot hang the suite
            log.changed.wait_for(lambda: log.most_in_flight >= self.server.config.overlap,
                                 timeout=30)
        try:
            if self.server.config.silent:
                self.server.released.wait(timeout=30)
                self.close_connection = True
                return
            self._answer(number)
        finally:
            with log.lock:
                log.in_flight -= 1

    def _answer(self, number: int) -> None:
        config = self.server.config
        path = unquote(urlsplit(self.path).path)
        if config.bad_status:
            self.wfile.write(b"HTTP/1.1 2OO NOT A STATUS\r\n\r\n")
            self.close_connection = True
            return
        if config.slow_headers:  # one byte of a never-ending header every slow_headers seconds
            self.close_connection = True
            try:
                self.wfile.write(b"HTTP/1.1 206 Partial Content\r\nX-Slow: ")
                while not self.server.stopping:
                    self.wfile.write(b"a")
                    self.wfile.flush()
                    time.sleep(config.slow_headers)
            except OSError:
                pass
            return
        if path.startswith("/loop/"):
            self._send_empty(302, {"Location": path})
            return
        if number <= config.fail_first:
            self._send_empty(503, {"Retry-After": "0"})
            return
        if config.token is not None and self.headers.get("Authorization") != (
                f"Bearer {config.token}"):
            self._send_empty(401)
            return
        hub_path = _HF_PATH.match(path)
        if config.cdn is not None and hub_path:
            self._send_empty(302, {"Location": f"{config.cdn}/files/{hub_path['name']}"})
            return
        if path.startswith("/redirect/"):
            base = config.elsewhere or ""  # another server: a redirect to another host
            self._send_empty(302, {"Location": f"{base}/files/" + path[len("/redirect/"):]})
            return
        target = self._target(path)
        if target is None or not target.is_file():
            self._send_empty(404)
            return
        data = target.read_bytes()
        match = _RANGE.fullmatch(self.headers.get("Range", "") or "")
        if not config.honour_range or match is None:
            self._send_body(200, data, {})
            return
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data):
            self._send_empty(416, {"Content-Range": f"bytes */{len(data)}"})
            return
        body = data[start:end + 1]
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        broken = number <= config.fail_first + config.break_first
        self._send_body(206, body, headers, broken=broken)

    def _target(self, path: str) -> Path | None:
        root = self.server.config.root
        if path.startswith("/files/"):
            return root / path[len("/files/"):]
        match = _HF_PATH.match(path)
        return root / match.group("name") if match else None

    def _send_empty(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_body(self, status: int, body: bytes, headers: dict[str, str],
                   broken: bool = False) -> None:
        if self.server.config.endless:
            self._send_endless(status, body, headers)
            return
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if broken:  # half the promised body, then hang up
            body = body[:len(body) // 2]
            self.close_connection = True
        if self.server.config.trickle:  # one byte every trickle seconds, however long it takes
            self.close_connection = True
            try:
                for index in range(len(body)):
                    if self.server.stopping:
                        return
                    self.wfile.write(body[index:index + 1])
                    self.wfile.flush()
                    time.sleep(self.server.config.trickle)
            except OSError:
                pass
            return
        try:
            for start in range(0, len(body), 64 << 10):
                piece = body[start:start + (64 << 10)]
                # Counted before the write: once written, the client may read it and the test
                # look at the count before this thread runs again.
                with self.server.log.lock:
                    self.server.log.bytes_sent += len(piece)
                self.wfile.write(piece)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            self.close_connection = True


    def _send_endless(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """A body that never ends: no Content-Length, the bytes asked for, then zeros until the
        client hangs up (or the test ends)."""
        self.close_connection = True
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        zeros = bytes(64 << 10)
        try:
            self.wfile.write(body)
            while not self.server.stopping:
                self.wfile.write(zeros)
        except OSError:  # the client stopped reading
            pass


@dataclass
class ServerConfig:
    root: Path
    honour_range: bool = True
    fail_first: int = 0  # the first N requests get 503
    break_first: int = 0  # the next N range answers break off midway
    token: str | None = None  # demand "Authorization: Bearer TOKEN"
    cdn: str | None = None  # redirect Hugging Face paths to this base URL's /files/
    trickle: float = 0.0  # seconds between the body's bytes (0: send at once)
    slow_headers: float = 0.0  # seconds between the bytes of an endless header (0: off)
    bad_status: bool = False  # answer every request with a malformed status line
    silent: bool = False  # answer nothing until the server closes
    endless: bool = False  # bodies without Content-Length that never end
    elsewhere: str | None = None  # redirect /redirect/NAME to this base URL's /files/NAME
    overlap: int = 0  # hold each answer until this many requests have been in flight at once


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stopping = False
    config: ServerConfig
    log: ServerLog
    released: threading.Event


class RangeServer:
    """``with RangeServer(folder) as server: server.url("model.gguf")``."""

    def __init__(self, root: Path, **options: object) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.config = ServerConfig(root=Path(root), **options)  # type: ignore[arg-type]
        self._server.log = ServerLog()
        self._server.released = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def log(self) -> ServerLog:
        return self._server.log

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str, redirect: bool = False) -> str:
        return f"{self.base}/{'redirect' if redirect else 'files'}/{name}"

    def __enter__(self) -> "RangeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stopping = True  # ends trickling answers
        self._server.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
