"""What a failed HTTP request means, in one line (the host, what failed, what to try), and
whether trying the same request again can help.

``requests`` wraps urllib3's errors, which wrap the socket's: the one line comes from the
innermost cause (a DNS answer, a refused connection, a certificate), never from urllib3's
``HTTPConnectionPool(host=..., port=...): Max retries exceeded ...`` text, which is long, repeats
the URL and is cut mid-word by any length cap.

Not retried, because the same request meets the same answer a second later:
- a host name that does not resolve: the system resolver has already retried (resolv.conf's
  ``attempts``/``timeout``) before answering, so our retries only multiplied its wait (4.6-5 s
  for ``hf://`` offline); a rerun costs the user one command;
- a connection refused by a loopback address: the machine itself says nothing listens on that
  port, and a server being started would not be up within the retries' 3.5 s. A remote host's
  refusal is retried: a load balancer or a restarting server behind one refuses for a moment;
- a certificate that does not verify, an invalid URL, a redirect loop, a malformed status line.
Timeouts, resets and bodies cut short are retried.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from gguf_inspect.gguf.source import redact_url

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_DETAIL_LIMIT = 120  # characters of a cause's own text, cut at a word


@dataclass(frozen=True)
class NetworkFailure:
    """One failed request: the line to print and whether another try may succeed."""

    message: str
    retry: bool


def explain(error: BaseException, url: str) -> NetworkFailure:
    """The one line and retry decision for ``error``, raised by a request to ``url`` (the URL
    the failing request really went to, after redirects, when ``requests`` says so)."""
    import requests

    url = getattr(getattr(error, "request", None), "url", None) or url
    host, port = _host_and_port(url)
    causes = _causes(error)
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                          requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
        return NetworkFailure(f"invalid URL: {_detail(error)}", False)
    if isinstance(error, requests.TooManyRedirects):
        return NetworkFailure(f"{host} redirects in a loop (TooManyRedirects: {_detail(error)}); "
                              "check the URL", False)
    resolution = _first(causes, socket.gaierror)
    if resolution is not None:
        reason = resolution.strerror or _detail(resolution)
        return NetworkFailure(
            f"cannot look up the host {host} ({reason}): check the name and the network "
            "connection, or give the path of a downloaded copy", False)
    refused = _first(causes, ConnectionRefusedError)
    if refused is not None:
        loopback = host in LOOPBACK_HOSTS
        hint = "start the server, or check the port" if loopback else "check the port"
        return NetworkFailure(f"{host} port {port} refused the connection (nothing listens "
                              f"there): {hint}", not loopback)
    certificate = _first(causes, ssl.SSLCertVerificationError)
    if certificate is not None:
        reason = getattr(certificate, "verify_message", None) or _detail(certificate)
        return NetworkFailure(f"the TLS certificate of {host} does not verify ({reason}): check "
                              "the host name, or the system's certificate store", False)
    status_line = next((cause for cause in causes if isinstance(cause, http.client.HTTPException)
                        and not isinstance(cause, (http.client.RemoteDisconnected,
                                                   http.client.IncompleteRead))), None)
    if status_line is not None:  # BadStatusLine, LineTooLong: not an HTTP server, or a broken one
        return NetworkFailure(f"{host} port {port} did not answer in HTTP "
                              f"({type(status_line).__name__}: {_detail(status_line)})", False)
    if isinstance(error, requests.ConnectTimeout):
        return NetworkFailure(f"no connection to {host} port {port} in time (ConnectTimeout): "
                              "check the network, a proxy or a firewall", True)
    if isinstance(error, requests.Timeout):
        return NetworkFailure(f"{host} stopped sending (ReadTimeout)", True)
    if isinstance(error, requests.exceptions.ProxyError):
        return NetworkFailure(f"the proxy failed on the way to {host} ({_innermost(causes)}): "
                              "check HTTPS_PROXY / HTTP_PROXY", True)
    return NetworkFailure(f"the connection to {host} port {port} failed "
                          f"({_innermost(causes)})", True)


def _host_and_port(url: str) -> tuple[str, int | str]:
    try:
        parts = urlsplit(url)
        port: int | str = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return redact_url(url), "?"
    return parts.hostname or "?", port


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and every exception inside it (args, ``reason``, ``__cause__``), outermost
    first; requests wraps urllib3's MaxRetryError, which wraps the socket's error."""
    found: list[BaseException] = []
    pending = [error]
    while pending and len(found) < 16:
        cause = pending.pop(0)
        if any(cause is seen for seen in found):
            continue
        found.append(cause)
        pending += [arg for arg in getattr(cause, "args", ()) if isinstance(arg, BaseException)]
        for name in ("reason", "__cause__", "__context__"):
            inner = getattr(cause, name, None)
            if isinstance(inner, BaseException):
                pending.append(inner)
    return found


def _first(causes: list[BaseException], kind: type[BaseException]) -> BaseException | None:
    return next((cause for cause in causes if isinstance(cause, kind)), None)


def _innermost(causes: list[BaseException]) -> str:
    """The deepest cause as ``Class: text`` (a reset, a body cut short)."""
    cause = causes[-1]
    if isinstance(cause, OSError) and cause.strerror:
        return f"{type(cause).__name__}: {cause.strerror}"
    text = _detail(cause)
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _detail(error: BaseException) -> str:
    """An exception's own text: the first line, without a URL's password, cut at a word
    with an ellipsis rather than mid-word."""
    lines = str(error).splitlines()
    text = redact_url(lines[0].strip()) if lines else ""
    if len(text) > _DETAIL_LIMIT:
        text = text[:_DETAIL_LIMIT].rsplit(" ", 1)[0] + "…"
    return text
