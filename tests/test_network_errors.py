"""Issue 18 item 5: a network failure is one clear line (the host, what failed, what to try), and
a failure that cannot get better is not retried. No real network: host names are resolved by a
monkeypatched ``socket.getaddrinfo`` (``.invalid`` never resolves, RFC 6761), refused
connections go to a loopback port nothing listens on."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.errors import SourceError
from gguf_inspect.gguf.network_errors import explain
from gguf_inspect.gguf.remote import HTTPOptions, HTTPRangeSource

URLLIB3_NOISE = ("HTTPConnectionPool", "HTTPSConnectionPool", "Max retries", "Caused by",
                 "at byte", "giving up")


@pytest.fixture
def requests_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the client makes, counted on its way out."""
    sent: list[str] = []
    original = requests.Session.get

    def counted(self: requests.Session, url: str, **kwargs: object) -> requests.Response:
        sent.append(url)
        return original(self, url, **kwargs)

    monkeypatch.setattr(requests.Session, "get", counted)
    return sent


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A machine without DNS: every name but the loopback ones fails to resolve, as getaddrinfo
    fails offline (EAI_NONAME, "Name or service not known")."""
    looked_up: list[str] = []
    original = socket.getaddrinfo

    def resolve(host: str, *args: object, **kwargs: object) -> object:
        if host in ("127.0.0.1", "localhost", "::1"):
            return original(host, *args, **kwargs)  # type: ignore[arg-type]
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return looked_up


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    for noise in URLLIB3_NOISE:
        assert noise not in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("location", "host"), [("hf://owner/repo/model.gguf", "huggingface.co"),
                                                ("https://models.invalid/m.gguf",
                                                 "models.invalid")])
def test_a_host_that_does_not_resolve_is_one_line_and_tried_once(
        location: str, host: str, offline: list[str], requests_sent: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    result = CliRunner().invoke(app, [location])
    assert result.exit_code == 4
    assert _one_line(result.stderr) == (
        f"error: {location}: cannot look up the host {host} (Name or service not known): "
        "check the name and the network connection, or give the path of a downloaded copy")
    assert len(requests_sent) == 1  # no retries: the resolver already retried before answering
    assert offline == [host]


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_loopback_port_is_one_line_and_tried_once(requests_sent: list[str]) -> None:
    port = _free_loopback_port()  # closed again: nothing listens there
    location = f"http://127.0.0.1:{port}/m.gguf"
    result = CliRunner().invoke(app, [location])
    assert result.exit_code == 4
    assert _one_line(result.stderr) == (
        f"error: {location}: 127.0.0.1 port {port} refused the connection (nothing listens "
        "there): start the server, or check the port")
    assert len(requests_sent) == 1


def test_a_refused_remote_port_is_retried_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    # A remote refusal can be a restarting server behind a load balancer: worth a retry.
    tries: list[str] = []

    def refuse(self: requests.Session, url: str, **kwargs: object) -> None:
        tries.append(url)
        raise requests.ConnectionError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(requests.Session, "get", refuse)
    with pytest.raises(SourceError) as raised:
        HTTPRangeSource("https://models.example/m.gguf", HTTPOptions(backoff=0.0))
    assert str(raised.value) == (
        "https://models.example/m.gguf: giving up after 4 attempts: models.example port 443 "
        "refused the connection (nothing listens there): check the port")
    assert len(tries) == 4


@pytest.mark.parametrize(("error", "retry", "words"), [
    (requests.ConnectionError(socket.gaierror(socket.EAI_AGAIN,
                                              "Temporary failure in name resolution")),
     False, "cannot look up the host example.org (Temporary failure in name resolution)"),
    (requests.exceptions.SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
     False, "the TLS certificate of example.org does not verify"),
    (requests.ConnectTimeout("timed out"), True, "no connection to example.org port 443 in time"),
    (requests.ReadTimeout("Read timed out."), True, "example.org stopped sending (ReadTimeout)"),
    (requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer")), True,
     "the connection to example.org port 443 failed (ConnectionResetError: Connection reset by "
     "peer)"),
])
def test_each_kind_of_failure_has_its_words_and_retry_decision(
        error: BaseException, retry: bool, words: str) -> None:
    failure = explain(error, "https://example.org/m.gguf")
    assert failure.retry is retry
    assert words in failure.message


def test_a_long_cause_is_cut_at_a_word_not_mid_message() -> None:
    error = requests.ConnectionError(RuntimeError("word " * 100))
    message = explain(error, "https://example.org/m.gguf").message
    assert message.endswith("word…)")
    assert len(message) < 200
