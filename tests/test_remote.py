"""HTTP(S) Range reads against a local server on 127.0.0.1 (never the internet): bytes fetched,
one kept-alive connection, redirects, servers that ignore Range or fail for a while, Hugging
Face URLs and the token. Byte counts come from the server, not from the client's counters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from gguf_inspect.cli import app
from gguf_inspect.core.errors import SourceError
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.gguf.reader import read_gguf_source
from gguf_inspect.gguf.tensor_data import read_tensor_bytes
from gguf_inspect.gguf.remote import (
    HTTPOptions,
    HTTPRangeSource,
    RemoteFileMissingError,
    redact_url,
    resolve_url,
)
from tests.conftest import FIXTURES, fixture_path, write_gguf
from tests.range_server import RangeServer

MIB = 1 << 20
FIXTURE = fixture_path("tiny-llama-untied-q4_k_m.gguf")
QUICK = HTTPOptions(backoff=0.0)
BIG_VOCAB = 150_000
BLOB_BYTES = 1024 * 1024 * 2  # the big-header model's one f16 tensor


@pytest.fixture(scope="module")
def big_header_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose header (a 150k-token vocabulary) is several MiB, followed by 2 MiB of data:
    the reads must grow past 1 MiB without over-reading and without touching the data."""
    path = tmp_path_factory.mktemp("big") / "big-vocab.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_token_list([f"tok{index:07d}" for index in range(BIG_VOCAB)])
    writer.add_token_scores([0.0] * BIG_VOCAB)
    writer.add_token_types([1] * BIG_VOCAB)
    writer.add_tensor("blob.weight", np.zeros((1024, 1024), dtype=np.float16))
    write_gguf(writer)
    return path


def header_size(path: Path) -> int:
    """Where the tensor data starts, by gguf-py (the oracle, not our reader)."""
    return int(gguf.GGUFReader(path).data_offset)


def test_fixture_header_over_http_matches_local_read_and_fetches_little() -> None:
    with RangeServer(FIXTURES) as server:
        source = HTTPRangeSource(server.url(FIXTURE.name))
        remote = read_gguf_source(source)
        source.close()
        sent = server.log.bytes_sent
    local = read_gguf(FIXTURE)
    assert remote.tensors == local.tensors
    assert remote.metadata == local.metadata
    assert remote.file_size == FIXTURE.stat().st_size
    assert sent <= header_size(FIXTURE) + MIB
    assert sent < FIXTURE.stat().st_size
    assert source.bytes_fetched == sent


def test_big_header_fetches_at_most_header_plus_one_mib_on_one_connection(
        big_header_model: Path) -> None:
    # The file is the header then the one 2 MiB tensor (aligned, so no padding after it);
    # gguf-py's reader would take seconds on this vocabulary.
    header = big_header_model.stat().st_size - BLOB_BYTES
    assert header > 3 * MIB  # the reads must grow several times
    with RangeServer(big_header_model.parent) as server:
        with HTTPRangeSource(server.url(big_header_model.name)) as source:
            model = read_gguf_source(source)
        sent, log = server.log.bytes_sent, server.log
    assert model.value("tokenizer.ggml.tokens").count == BIG_VOCAB
    assert header <= sent <= header + MIB
    assert len(log.requests) > 4  # growing chunks, not one big read
    assert log.connections == 1  # kept alive across all of them
    ranges = [seen.range for seen in log.requests]
    assert ranges[0] == f"bytes=0-{64 * 1024 - 1}"


def test_tensor_bytes_read_over_http_equal_gguf_py() -> None:
    oracle = gguf.GGUFReader(FIXTURE)
    with RangeServer(FIXTURES) as server:
        with HTTPRangeSource(server.url(FIXTURE.name)) as source:
            model = read_gguf_source(source)
            for expected in oracle.tensors[:3]:
                data = read_tensor_bytes(source, model.tensor(expected.name))
                assert data == expected.data.tobytes()


def test_redirect_is_followed_once_then_the_final_url_is_used(big_header_model: Path) -> None:
    with RangeServer(big_header_model.parent) as server:
        with HTTPRangeSource(server.url(big_header_model.name, redirect=True)) as source:
            read_gguf_source(source)
        paths = [seen.path for seen in server.log.requests]
    assert paths[0].startswith("/redirect/")
    assert all(path.startswith("/files/") for path in paths[1:])
    assert len(paths) > 3


def test_server_ignoring_range_keeps_the_first_bytes_and_refuses_past_them() -> None:
    # issue 18: the header is read from the one open answer (was: refused at once, "stopped
    # after 0 bytes"); what lies past the kept prefix is refused with both sizes.
    cap = header_size(FIXTURE) + 1000
    with RangeServer(FIXTURES, honour_range=False) as server:
        with HTTPRangeSource(server.url(FIXTURE.name), HTTPOptions(whole_body_cap=cap)) as source:
            model = read_gguf_source(source)
            assert model.tensors == read_gguf(FIXTURE).tensors
            last = max(model.tensors, key=lambda tensor: tensor.offset)
            with pytest.raises(SourceError, match="ignores HTTP Range") as caught:
                read_tensor_bytes(source, last)
            assert source.bytes_fetched <= cap + 64 * 1024  # one piece past the cap at most
        assert f"{FIXTURE.stat().st_size:,}" in str(caught.value)
        assert f"first {cap:,}" in str(caught.value)
        assert len(server.log.requests) == 1  # detected at once, no retries


def test_server_ignoring_range_with_a_small_file_is_read_from_the_one_answer() -> None:
    with RangeServer(FIXTURES, honour_range=False) as server:
        with HTTPRangeSource(server.url(FIXTURE.name)) as source:
            model = read_gguf_source(source)
            assert source.requests_made == 1
    assert model.tensors == read_gguf(FIXTURE).tensors


def test_cli_reads_a_header_from_a_range_ignoring_server(big_header_model: Path) -> None:
    # issue 18: a header inside the first 4 MiB is read (was: exit 4); the data past it is
    # out of reach, exit 4 with the reason.
    assert header_size(big_header_model) < HTTPOptions().whole_body_cap
    with RangeServer(big_header_model.parent, honour_range=False) as server:
        result = CliRunner().invoke(app, [server.url(big_header_model.name)])
        assert result.exit_code == 0, result.stderr
        values = CliRunner().invoke(app, ["validate", "--data", server.url(big_header_model.name)])
    assert values.exit_code in (3, 4)
    assert "ignores HTTP Range" in values.stdout + values.stderr


def test_transient_failures_are_retried() -> None:
    # Two 503 answers, then a body that breaks off midway, then success.
    with RangeServer(FIXTURES, fail_first=2, break_first=1) as server:
        with HTTPRangeSource(server.url(FIXTURE.name), QUICK) as source:
            model = read_gguf_source(source)
            assert source.requests_made == 4
        assert len(server.log.requests) == 4
    assert model.tensors == read_gguf(FIXTURE).tensors


def test_persistent_failure_gives_up_after_a_bounded_number_of_requests() -> None:
    with RangeServer(FIXTURES, fail_first=1000) as server:
        with pytest.raises(SourceError, match="giving up after 4 attempts: HTTP 503"):
            HTTPRangeSource(server.url(FIXTURE.name), QUICK)
        assert len(server.log.requests) == 4


def test_a_server_that_does_not_answer_times_out() -> None:
    with RangeServer(FIXTURES, silent=True) as server:
        with pytest.raises(SourceError, match="giving up after 2 attempts: .*Timeout"):
            HTTPRangeSource(server.url(FIXTURE.name),
                            HTTPOptions(read_timeout=0.1, attempts=2, backoff=0.0))


def test_missing_remote_file_is_an_io_error() -> None:
    with RangeServer(FIXTURES) as server:
        with pytest.raises(RemoteFileMissingError, match="HTTP 404"):
            HTTPRangeSource(server.url("no-such.gguf"))
        result = CliRunner().invoke(app, [server.url("no-such.gguf")])
    assert result.exit_code == 4
    assert "no such remote file" in result.stderr


def test_connection_refused_is_an_io_error() -> None:
    # Issue 18 item 5: a refused loopback port is not retried (it was four tries); one line.
    with RangeServer(FIXTURES) as server:
        url = server.url(FIXTURE.name)
    with pytest.raises(SourceError, match="refused the connection") as raised:
        HTTPRangeSource(url, QUICK)
    assert "giving up" not in str(raised.value)


def test_every_model_command_takes_a_url() -> None:
    with RangeServer(FIXTURES) as server:
        result = CliRunner().invoke(app, [server.url(FIXTURE.name), "--embeddings", "--json"])
    assert result.exit_code == 0, result.stderr
    local = CliRunner().invoke(app, [str(FIXTURE), "--embeddings", "--json"])
    remote_doc, local_doc = json.loads(result.stdout), json.loads(local.stdout)
    assert remote_doc["embeddings"] == local_doc["embeddings"]
    assert remote_doc["model"] == local_doc["model"]


@pytest.mark.parametrize(("location", "expected"), [
    ("hf://owner/repo/model.gguf", "https://huggingface.co/owner/repo/resolve/main/model.gguf"),
    ("hf://owner/repo@v1.0/sub/dir/m.gguf",
     "https://huggingface.co/owner/repo/resolve/v1.0/sub/dir/m.gguf"),
    ("hf://owner/repo@refs%2Fpr%2F3/m.gguf",
     "https://huggingface.co/owner/repo/resolve/refs%2Fpr%2F3/m.gguf"),
    ("hf://datasets/owner/data/m.gguf",
     "https://huggingface.co/datasets/owner/data/resolve/main/m.gguf"),
    ("https://huggingface.co/owner/repo/blob/main/q/m-Q4_K_M.gguf",
     "https://huggingface.co/owner/repo/resolve/main/q/m-Q4_K_M.gguf"),
    ("https://huggingface.co/owner/repo/blob/main/m.gguf?download=true",
     "https://huggingface.co/owner/repo/resolve/main/m.gguf?download=true"),
    ("https://hf.co/datasets/owner/data/blob/abc123/m.gguf",
     "https://hf.co/datasets/owner/data/resolve/abc123/m.gguf"),
    ("https://huggingface.co/owner/repo/resolve/main/m.gguf",
     "https://huggingface.co/owner/repo/resolve/main/m.gguf"),
])
def test_hugging_face_locations_resolve_to_download_urls(
        location: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    resolved = resolve_url(location)
    assert resolved.url == expected
    assert resolved.hugging_face


def test_other_urls_are_left_alone_and_get_no_token() -> None:
    resolved = resolve_url("https://example.com/owner/repo/blob/main/m.gguf")
    assert resolved.url == "https://example.com/owner/repo/blob/main/m.gguf"
    assert not resolved.hugging_face


@pytest.mark.parametrize("location", ["hf://owner/repo", "hf://owner//m.gguf", "ftp://x/m.gguf"])
def test_malformed_locations_are_source_errors(location: str) -> None:
    with pytest.raises(SourceError):
        resolve_url(location)


def test_credentials_in_a_url_are_not_shown() -> None:
    assert redact_url("https://user:pw@host.example/m.gguf") == "https://host.example/m.gguf"


TOKEN = "hf_test_secret_token_123"


def test_hf_token_goes_to_the_hub_only_and_is_never_printed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The "Hub" demands the token and redirects to a "CDN" on another host (localhost vs
    # 127.0.0.1), as huggingface.co redirects to its storage: the CDN must never see the token.
    with RangeServer(FIXTURES) as cdn:
        cdn_base = cdn.base.replace("127.0.0.1", "localhost")
        with RangeServer(FIXTURES, token=TOKEN, cdn=cdn_base) as hub:
            monkeypatch.setenv("HF_ENDPOINT", hub.base)
            monkeypatch.setenv("HF_TOKEN", TOKEN)
            location = f"hf://owner/repo/{FIXTURE.name}"
            result = CliRunner().invoke(app, [location, "--metadata", "--full"])
            assert result.exit_code == 0, result.stderr
            assert [seen.authorization for seen in hub.log.requests] == [f"Bearer {TOKEN}"]
            assert cdn.log.requests and all(seen.authorization is None
                                            for seen in cdn.log.requests)
            assert TOKEN not in result.stdout + result.stderr
            monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_456")
            denied = CliRunner().invoke(app, [location])
    assert denied.exit_code == 4
    assert "HTTP 401" in denied.stderr
    assert "hf_wrong_token_456" not in denied.stdout + denied.stderr


def test_token_is_not_sent_to_other_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    with RangeServer(FIXTURES) as server:
        with HTTPRangeSource(server.url(FIXTURE.name)) as source:
            read_gguf_source(source)
        assert all(seen.authorization is None for seen in server.log.requests)


def test_local_inspection_does_not_import_requests() -> None:
    code = ("import sys; from gguf_inspect.commands.inspect import run_inspect; "
            "from gguf_inspect.reports.inspect import InspectOptions; "
            f"run_inspect({str(FIXTURE)!r}, 'table', InspectOptions(embeddings=True)); "
            "print('requests' in sys.modules, 'urllib3' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
