"""HTTP(S) byte source: read a remote GGUF header with Range requests instead of downloading it.

One ``requests`` session per source keeps one connection alive across the reader's growing
reads (64 KiB first, doubling to 1 MiB, through the ``read_ahead`` hint), so bytes fetched for a
header stay within the header size plus 1 MiB. Redirects are followed; each request has
timeouts, and one overall deadline bounds everything done for one location (``HTTPOptions.deadline``,
the CLI's ``--timeout``), however slowly a server trickles its headers or body; connection
failures, timeouts, broken bodies and 429/5xx answers are retried a few times with backoff, what
cannot get better by trying again (a host name that does not resolve, a refused loopback port, an
invalid URL, a redirect loop, a bad status line) is not; network_errors.py words each failure as
one line and says why each is or is not retried.
A server that ignores Range (200 with the whole body, as ``python -m http.server``) is detected:
a small body is kept whole; of a larger one that announces its size, the first
``whole_body_cap`` bytes are kept from the answer already open (enough for most headers) and the
rest is never downloaded: a read past them fails with a clear error.

Hugging Face: ``hf://OWNER/REPO[@REVISION]/PATH`` and ``https://huggingface.co/.../blob/...``
page links resolve to the ``/resolve/`` download URL (``HF_ENDPOINT`` overrides the host), and
``HF_TOKEN``, when set, goes as a bearer header to the Hugging Face host only, over https only
(or to a loopback address, which never leaves the machine), and is never printed; a password in
a URL is never printed either.

``requests`` is imported lazily: inspecting a local file never pays for it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from gguf_inspect.core.errors import SourceError
from gguf_inspect.gguf.network_errors import LOOPBACK_HOSTS, explain
from gguf_inspect.gguf.source import redact_url, remote_deadline

__all__ = ["HTTPOptions", "HTTPRangeSource", "RemoteFileMissingError", "redact_url",
           "resolve_url"]

if TYPE_CHECKING:  # pragma: no cover
    import requests

DEFAULT_HF_ENDPOINT = "https://huggingface.co"
HF_HOSTS = frozenset({"huggingface.co", "hf.co"})
FIRST_READ = 64 << 10
LARGEST_READ = 1 << 20  # the most the reader may over-read past a header
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MISSING_STATUSES = frozenset({404, 410})
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)
_BODY_PIECE = 64 << 10
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class HTTPOptions:
    """Network settings; the defaults suit a public CDN, tests shrink the waits."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    attempts: int = 4  # one try plus three retries on transient failures
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_retry_after: float = 10.0  # cap on a server's Retry-After
    whole_body_cap: int = 4 << 20  # bytes read from a server that ignores Range before giving up
    # seconds for the whole location, every request and retry; None: the process-wide one
    deadline: float | None = None



class RemoteFileMissingError(SourceError):
    """The server answered 404 or 410: there is no file at that URL."""


@dataclass(frozen=True)
class ResolvedURL:
    """Where to send requests, and whether the Hugging Face token belongs there."""

    url: str
    hugging_face: bool


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_HF_ENDPOINT).rstrip("/")


def resolve_url(location: str) -> ResolvedURL:
    """The download URL of a location: ``hf://`` and Hugging Face ``/blob/`` links rewritten."""
    if location.lower().startswith("hf://"):
        return ResolvedURL(_resolve_hf_scheme(location), True)
    try:
        parts = urlsplit(location)
        parts.port  # noqa: B018 - raises on a port that is not a number below 65536
    except ValueError as error:  # "Invalid IPv6 URL", a bad port: one line, not a traceback
        raise SourceError(f"invalid URL: {redact_url(str(error))}",
                          path=redact_url(location)) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SourceError("not an http(s):// or hf:// URL", path=redact_url(location))
    if not _is_hf_host(parts.netloc):
        return ResolvedURL(location, False)
    segments = parts.path.split("/")
    # /OWNER/REPO/blob/REV/PATH or /datasets|spaces/OWNER/REPO/blob/REV/PATH
    blob_at = 4 if len(segments) > 1 and segments[1] in ("datasets", "spaces") else 3
    if len(segments) > blob_at + 2 and segments[blob_at] == "blob":
        segments[blob_at] = "resolve"
        parts = parts._replace(path="/".join(segments))
    return ResolvedURL(urlunsplit(parts), True)


def _resolve_hf_scheme(location: str) -> str:
    rest = location[len("hf://"):]
    kind = ""
    for prefix in ("datasets/", "spaces/"):
        if rest.startswith(prefix):
            kind, rest = prefix, rest[len(prefix):]
    pieces = rest.split("/", 2)
    if len(pieces) < 3 or not all(pieces):
        raise SourceError("an hf:// URL reads hf://OWNER/REPO[@REVISION]/PATH", path=location)
    owner, repo, path = pieces
    repo, _, revision = repo.partition("@")
    revision = quote(unquote(revision or "main"), safe="")
    return f"{hf_endpoint()}/{kind}{owner}/{repo}/resolve/{revision}/{path}"


def _is_hf_host(netloc: str) -> bool:
    host = netloc.rpartition("@")[2].lower()
    return host in HF_HOSTS or host == urlsplit(hf_endpoint()).netloc.lower()


def token_allowed(url: str) -> bool:
    """A credential may travel to ``url`` only over https, or to a loopback address over http
    (such a request never leaves the machine: a local mirror, the tests' server)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return True
    return parts.scheme.lower() == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


class HTTPRangeSource:
    """A remote file read with HTTP Range requests (a ``ByteSource``).

    Opening fetches the first 64 KiB, which also gives the total size (``Content-Range``).
    ``bytes_fetched`` and ``requests_made`` count what went over the network.
    """

    read_ahead = (FIRST_READ, LARGEST_READ)

    def __init__(self, location: str, options: HTTPOptions | None = None) -> None:
        import requests  # lazy: only remote locations pay for it

        self.name = redact_url(location)
        self.options = options or HTTPOptions()
        resolved = resolve_url(location)
        self._url = resolved.url
        self._hugging_face = resolved.hugging_face
        token = os.environ.get("HF_TOKEN", "").strip() if resolved.hugging_face else ""
        if not token_allowed(resolved.url):
            token = ""  # never over plain http: anyone on the path would read it
        # Sent on requests to the Hugging Face host only; requests drops it on a redirect to
        # another host (the CDN), and it is never part of any message.
        self._auth_host = urlsplit(resolved.url).netloc.lower() if token else None
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = requests.Session()
        self._seconds = self.options.deadline or remote_deadline()
        self._deadline = time.monotonic() + self._seconds
        self.bytes_fetched = 0
        self.requests_made = 0
        self._cache_start = 0
        self._cache = b""
        self._retry_after: str | None = None
        self._prefix_only = False  # True: a server without Range sent the first bytes only
        self.size = 0
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ---- ByteSource ---------------------------------------------------------------------------

    def read_at(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        cached_from = offset - self._cache_start
        if 0 <= cached_from and cached_from + length <= len(self._cache):
            return self._cache[cached_from:cached_from + length]
        if self._prefix_only:  # a server without Range: only the prefix it sent exists here
            raise self.beyond_prefix(offset, length)
        data = self._fetch_range(offset, length)
        self._cache_start, self._cache = offset, data
        return data

    @property
    def readable_end(self) -> int | None:
        """Where the readable bytes end when only a prefix was sent (None: anywhere)."""
        return len(self._cache) if self._prefix_only else None

    def beyond_prefix(self, offset: int, length: int) -> SourceError:
        """The error for bytes past what a server without Range support sent."""
        return SourceError(
            f"the server ignores HTTP Range requests, so only the first {len(self._cache):,} "
            f"of {self.size:,} bytes were read (from its one answer) and bytes "
            f"[{offset:,}, {offset + length:,}) are out of reach. Use a server that supports "
            "Range (llama.cpp's or Hugging Face's do), or download the file",
            path=self.name, offset=offset)

    def close(self) -> None:
        if not getattr(self, "_timed_out", False):  # a request may still use it in its thread
            self._session.close()

    def __enter__(self) -> "HTTPRangeSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- requests -----------------------------------------------------------------------------

    def _open(self) -> None:
        self._exchange(f"bytes=0-{FIRST_READ - 1}", 0, self._take_first_answer)

    def _take_first_answer(self, response: "requests.Response") -> None:
        if response.status_code == 200:
            self._take_whole_body(response)
            return
        if response.status_code == 416:  # an empty file has no byte 0
            self.size = self._content_range(response, 0, allow_empty=True)[1]
            return
        self._check_status(response, 0)
        start, total = self._content_range(response, 0)
        if start != 0:
            raise SourceError(f"the server sent bytes from {start} instead", path=self.name,
                              offset=0)
        self._cache = self._read_body(response, min(FIRST_READ, total), 0)
        self.size = total

    def _fetch_range(self, offset: int, length: int) -> bytes:
        def take(response: "requests.Response") -> bytes:
            if response.status_code == 200:
                raise SourceError("the server stopped honouring HTTP Range requests",
                                  path=self.name, offset=offset)
            self._check_status(response, offset)
            start, total = self._content_range(response, offset)
            if total != self.size:
                raise SourceError(f"the remote file changed size while being read ({self.size} "
                                  f"then {total} bytes)", path=self.name, offset=offset)
            if start != offset:
                raise SourceError(f"the server sent bytes from {start} instead",
                                  path=self.name, offset=offset)
            return self._read_body(response, length, offset)

        return self._exchange(f"bytes={offset}-{offset + length - 1}", offset, take)

    def _exchange(self, byte_range: str, offset: int,
                  take: Callable[["requests.Response"], _Result]) -> _Result:
        """One ranged GET answered by ``take``, retried on transient failures.

        Hand-written rather than urllib3's ``Retry``: that one retries the request but not a
        body that breaks off midway, and both are worth a retry here.
        """
        import requests

        problem, tries = "", 0
        for attempt in range(self.options.attempts):
            if attempt:
                delay = self._retry_delay(attempt)
                if time.monotonic() + delay >= self._deadline:  # no time for another try
                    raise SourceError(f"no complete answer within the {self._seconds:g} s "
                                      f"deadline (--timeout); last try: {problem}",
                                      path=self.name)
                time.sleep(delay)
            self.requests_made += 1
            tries += 1
            self._retry_after = None
            try:
                transient, outcome = self._within_deadline(
                    lambda: self._attempt(byte_range, take))
            except (requests.RequestException, OSError) as error:
                failure = explain(error, self._url)
                if not failure.retry:
                    raise SourceError(failure.message, path=self.name) from None
                problem = failure.message
                continue
            if not transient:
                return outcome  # type: ignore[return-value]
            problem = str(outcome)
        raise SourceError(f"giving up after {tries} attempts: {problem}", path=self.name)

    def _attempt(self, byte_range: str, take: Callable[["requests.Response"], _Result],
                 ) -> tuple[bool, object]:
        """One request: (True, problem) for a transient answer, else (False, what take made)."""
        remaining = max(0.001, self._deadline - time.monotonic())
        with self._session.get(
                self._url, headers={"Range": byte_range, **self._headers_for(self._url)},
                timeout=(min(self.options.connect_timeout, remaining),
                         min(self.options.read_timeout, remaining)),
                stream=True, allow_redirects=True) as response:
            if response.status_code in TRANSIENT_STATUSES:
                self._retry_after = response.headers.get("Retry-After")
                return True, f"HTTP {response.status_code}"
            result = take(response)
            self._follow(response)
            return False, result

    def _within_deadline(self, work: Callable[[], _Result]) -> _Result:
        """``work()``, given up on at the location's deadline.

        Socket timeouts bound each wait, not a server that sends a byte every few seconds (in
        the headers or the body), so the request runs in a daemon thread the caller stops
        waiting for; an abandoned one ends with its socket's timeout or the process."""
        remaining = self._deadline - time.monotonic()
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["result"] = work()
            except BaseException as error:  # handed to the waiting thread
                outcome["error"] = error

        if remaining > 0:
            worker = threading.Thread(target=run, name="gguf-inspect-http", daemon=True)
            worker.start()
            worker.join(remaining)
            if not worker.is_alive():
                if "error" in outcome:
                    raise outcome["error"]  # type: ignore[misc]
                return outcome["result"]  # type: ignore[return-value]
        self._timed_out = True
        raise SourceError(f"no complete answer within the {self._seconds:g} s "
                          "deadline (--timeout)", path=self.name)

    def _retry_delay(self, attempt: int) -> float:
        """Exponential backoff, or the server's Retry-After (in seconds) when it asks for more."""
        delay = self.options.backoff * 2 ** (attempt - 1)
        if self._retry_after and self._retry_after.strip().isdigit():
            delay = max(delay, min(float(self._retry_after), self.options.max_retry_after))
        return delay

    def _headers_for(self, url: str) -> dict[str, str]:
        if self._auth_host and urlsplit(url).netloc.lower() == self._auth_host:
            return self._auth
        return {}

    def _follow(self, response: "requests.Response") -> None:
        """After a redirect, ask the final URL directly (one round trip per read, not two)."""
        if response.history and response.status_code == 206:
            self._url = response.url

    def _check_status(self, response: "requests.Response", offset: int) -> None:
        status = response.status_code
        if status == 206:
            return
        if status in MISSING_STATUSES:
            raise RemoteFileMissingError(f"no such remote file (HTTP {status})", path=self.name)
        if status in (401, 403):
            hint = ""
            if self._hugging_face:
                hint = ("; the HF_TOKEN set has no access to it" if self._auth else
                        "; set HF_TOKEN for a gated or private repository")
            raise SourceError(f"access denied (HTTP {status}){hint}", path=self.name)
        raise SourceError(f"unexpected HTTP {status} {response.reason or ''}".rstrip(),
                          path=self.name, offset=offset)

    def _content_range(self, response: "requests.Response", offset: int,
                       allow_empty: bool = False) -> tuple[int, int]:
        """(first byte sent, total size) from ``Content-Range``."""
        header = response.headers.get("Content-Range", "")
        match = _CONTENT_RANGE.fullmatch(header.strip())
        if not match or match.group(3) == "*" or (match.group(1) is None and not allow_empty):
            raise SourceError(f"unusable Content-Range {header!r} in a range answer",
                              path=self.name, offset=offset)
        start = int(match.group(1)) if match.group(1) is not None else 0
        return start, int(match.group(3))

    def _read_body(self, response: "requests.Response", length: int, offset: int) -> bytes:
        """Exactly ``length`` bytes of a 206 body; a short, long or broken body is an I/O error.

        The body is read to its end so the connection goes back to the pool, kept alive.
        """
        pieces: list[bytes] = []
        received = 0
        for piece in response.iter_content(_BODY_PIECE):  # network errors: retried by caller
            pieces.append(piece)
            received += len(piece)
            self.bytes_fetched += len(piece)
            if received > length:
                raise SourceError(f"the server sent more than the {length} bytes asked for",
                                  path=self.name, offset=offset)
        if received < length:
            raise SourceError(f"the server sent {received} of {length} requested bytes",
                              path=self.name, offset=offset + received)
        return b"".join(pieces)

    def _take_whole_body(self, response: "requests.Response") -> None:
        """A server that ignores Range: keep a small file whole; of a big one that says its
        size, keep the first ``whole_body_cap`` bytes (a header usually fits) and stop there;
        one that does not say its size cannot be bounded-checked, so it is refused."""
        cap = self.options.whole_body_cap
        declared = response.headers.get("Content-Length", "")
        announced = int(declared) if declared.isdigit() else None
        pieces: list[bytes] = []
        received = 0
        for piece in response.iter_content(_BODY_PIECE):
            pieces.append(piece)
            received += len(piece)
            self.bytes_fetched += len(piece)
            if received >= cap and announced is not None and announced > cap:
                break  # the connection is closed unread past here, not downloaded
            if received > cap:
                raise SourceError(
                    f"the server ignores HTTP Range requests and does not say the file's size; "
                    f"stopped after {received:,} bytes. Use a server that supports Range, or "
                    "download the file", path=self.name)
        self._cache = b"".join(pieces)[:cap]
        self._cache_start = 0
        self.size = len(self._cache)
        if announced is not None and announced > len(self._cache):
            self._prefix_only, self.size = True, announced

