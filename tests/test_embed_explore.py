"""Tests of reports/embed.py (and its renderer and command): planted analogies, cosine
math against numpy, word resolution for SentencePiece and GPT-2 vocabularies, the JSON contract.

Oracles: the planted fixture's construction (fixtures/build.py: king = R + M, queen = R + F, ...),
gguf-py's GGUFReader for the rows (f16 as stored; Q8_0 through gguf.quants), numpy float64 for
every cosine, and llama.cpp's own tokenizer for the expected token splits.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import fixture_path
from gguf_inspect.reports.embed import (
    EmbeddingModel,
    EmbedQuery,
    MultiTokenWordError,
    QueryError,
    UnknownWordError,
    Vocabulary,
    analogy,
    embedding_stats,
    explore_models,
    nearest,
    open_embedding_model,
    resolve_word,
    token_row,
)
from gguf_inspect.cli import app
from gguf_inspect.commands.embed import StderrProgress, run_embed
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.gguf import open as gguf_open
from gguf_inspect.llamacpp.runtime import RuntimeTokenizer
from gguf_inspect.render.embed import embed_json, embed_sections
from tests.conftest import write_gguf

PLANTED_F16 = "tiny-llama-planted-f16.gguf"
PLANTED_Q8_0 = "tiny-llama-planted-q8_0.gguf"
PLANTED = (PLANTED_F16, PLANTED_Q8_0)
# Ids in fixtures/build.py's vocabulary: 3 specials, 256 byte tokens, then the words.
KING, QUEEN, MAN, WOMAN, PRINCE, PRINCESS, BOY, GIRL = range(259, 267)
BYTE_F8 = 3 + 0xF8


def reader_rows(path: Path) -> tuple[np.ndarray, str]:
    """token_embd as float64 (n_vocab, n_embd) through gguf-py, plus its type name."""
    reader = gguf.GGUFReader(path)
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    n_embd = int(tensor.shape[0])
    return np.asarray(values, dtype=np.float64).reshape(-1, n_embd), tensor.tensor_type.name


def numpy_ranking(matrix: np.ndarray, target: np.ndarray, exclude: set[int],
                  top_k: int) -> list[tuple[int, float]]:
    """Brute-force cosine ranking in float64 over the whole matrix (zero rows skipped)."""
    norms = np.linalg.norm(matrix, axis=1)
    with np.errstate(invalid="ignore"):  # zero rows: 0/0, skipped below
        scores = matrix @ target / (norms * np.linalg.norm(target))
    candidates = [i for i in range(len(matrix)) if norms[i] > 0 and i not in exclude]
    candidates.sort(key=lambda i: (-scores[i], i))
    return [(i, float(scores[i])) for i in candidates[:top_k]]


@pytest.fixture
def open_model(request: pytest.FixtureRequest):
    """Open a file as an EmbeddingModel; closed after the test."""
    opened = []

    def opener(path: Path | str, chunk_bytes: int = 16 << 20,
               use_tokenizer: bool = True) -> EmbeddingModel:
        model = gguf_open.open_model(path)
        embedding = open_embedding_model(model, use_tokenizer=use_tokenizer,
                                         chunk_bytes=chunk_bytes)
        opened.append((model, embedding))
        return embedding

    yield opener
    for model, embedding in opened:
        embedding.close()
        model.close()


# ---- the planted fixture ----------------------------------------------------------------------

def test_planted_relation_is_exact_in_the_f16_source() -> None:
    rows, type_name = reader_rows(fixture_path(PLANTED_F16))
    assert type_name == "F16"
    assert np.array_equal(rows[KING] - rows[MAN] + rows[WOMAN], rows[QUEEN])
    assert np.array_equal(rows[PRINCE] - rows[BOY] + rows[GIRL], rows[PRINCESS])


def test_llama_cpp_quantized_the_planted_embedding_to_q8_0() -> None:
    rows, type_name = reader_rows(fixture_path(PLANTED_Q8_0))
    assert type_name == "Q8_0"
    assert not np.array_equal(rows[KING] - rows[MAN] + rows[WOMAN], rows[QUEEN])


@pytest.mark.parametrize("name", PLANTED)
def test_planted_analogy_ranks_queen_first(open_model, name: str) -> None:
    result = analogy(open_model(fixture_path(name)), ["king", "man", "woman"], 5)
    assert [item.id for item in result.inputs] == [KING, MAN, WOMAN]
    assert (result.results[0].id, result.results[0].token) == (QUEEN, "\u2581queen")
    assert {KING, MAN, WOMAN}.isdisjoint(item.id for item in result.results)
    if name == PLANTED_F16:  # exact relation: cosine 1 up to float64 rounding
        assert result.results[0].score == pytest.approx(1.0, abs=1e-12)


def test_planted_second_analogy_survives_q8_0(open_model) -> None:
    result = analogy(open_model(fixture_path(PLANTED_Q8_0)), ["prince", "boy", "girl"], 1)
    assert result.results[0].id == PRINCESS


# ---- cosine math against numpy ------------------------------------------------------------------

@pytest.mark.parametrize("name", PLANTED)
@pytest.mark.parametrize("chunk_bytes", [16 << 20, 7 * 64 * 4])  # one chunk; 7-row chunks
def test_analogy_scores_match_numpy(open_model, name: str, chunk_bytes: int) -> None:
    rows, _ = reader_rows(fixture_path(name))
    expected = numpy_ranking(rows, rows[KING] - rows[MAN] + rows[WOMAN], {KING, MAN, WOMAN}, 10)
    result = analogy(open_model(fixture_path(name), chunk_bytes), ["king", "man", "woman"], 10)
    assert [item.id for item in result.results] == [i for i, _ in expected]
    assert [item.score for item in result.results] == pytest.approx(
        [score for _, score in expected], abs=1e-12)


@pytest.mark.parametrize("word, row", [("queen", QUEEN), ("300", 300), ("<s>", 1)])
def test_nearest_scores_match_numpy(open_model, word: str, row: int) -> None:
    rows, _ = reader_rows(fixture_path(PLANTED_Q8_0))
    expected = numpy_ranking(rows, rows[row], {row}, 12)
    result = nearest(open_model(fixture_path(PLANTED_Q8_0), 5 * 64 * 4), word, 12)
    assert [item.id for item in result.results] == [i for i, _ in expected]
    assert [item.score for item in result.results] == pytest.approx(
        [score for _, score in expected], abs=1e-12)


def test_identical_rows_tie_at_one_and_rank_by_id(open_model) -> None:
    # The planted duplicate group <0xF8>..<0xFF>: seven exact matches of cosine 1, lower id first.
    result = nearest(open_model(fixture_path(PLANTED_F16), 3 * 64 * 4), str(BYTE_F8), 8)
    assert [item.id for item in result.results[:7]] == list(range(BYTE_F8 + 1, BYTE_F8 + 8))
    assert len({item.score for item in result.results[:7]}) == 1  # exactly equal scores
    assert result.results[0].score == pytest.approx(1.0, abs=1e-12)
    assert result.results[7].score < 0.9


def test_zero_row_has_no_direction(open_model) -> None:
    model = open_model(fixture_path(PLANTED_F16))
    with pytest.raises(QueryError, match="all zero"):
        nearest(model, "0", 3)  # <unk> is planted all zero
    ranked = nearest(model, "queen", 384).results
    assert 0 not in [item.id for item in ranked]  # a zero row is never an answer
    assert len(ranked) == 384 - 2


def test_progress_reports_every_row(open_model) -> None:
    calls = []
    nearest(open_model(fixture_path(PLANTED_Q8_0), 100 * 64 * 4), "king", 3,
            lambda label, done, total: calls.append((done, total)))
    assert calls == [(100, 384), (200, 384), (300, 384), (384, 384)]


def test_token_row_matches_numpy(open_model) -> None:
    rows, _ = reader_rows(fixture_path(PLANTED_Q8_0))
    result = token_row(open_model(fixture_path(PLANTED_Q8_0)), "woman")
    row = result.row
    assert result.inputs[0].id == WOMAN
    assert row.norm == pytest.approx(np.linalg.norm(rows[WOMAN]), rel=1e-6)
    assert (row.minimum, row.maximum) == pytest.approx((rows[WOMAN].min(), rows[WOMAN].max()))
    assert row.mean == pytest.approx(rows[WOMAN].mean(), abs=1e-7)
    assert row.first_values == pytest.approx(tuple(rows[WOMAN][:8]), abs=1e-7)


# ---- --stats --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PLANTED)
def test_stats_find_the_planted_zero_and_duplicate_rows(open_model, name: str) -> None:
    rows, _ = reader_rows(fixture_path(name))
    norms = np.linalg.norm(rows, axis=1)
    stats = embedding_stats(open_model(fixture_path(name), 50 * 64 * 4)).stats
    assert stats.near_zero_count == 1 and stats.near_zero_examples[0].token == "<unk>"
    assert stats.duplicate_rows == 7 and stats.duplicate_groups == 1
    group = stats.duplicate_examples[0]
    assert group.size == 8
    assert [member.token for member in group.members] == [f"<0x{b:02X}>" for b in range(0xF8, 0x100)]
    counts, edges = np.histogram(norms, bins=10)
    assert [item.count for item in stats.histogram] == counts.tolist()
    assert sum(item.count for item in stats.histogram) == 384
    assert (stats.norm_min, stats.norm_max) == pytest.approx((norms.min(), norms.max()), rel=1e-6)
    assert stats.norm_median == pytest.approx(np.median(norms), rel=1e-6)
    assert stats.near_zero_threshold == pytest.approx(0.01 * np.median(norms), rel=1e-6)


def test_duplicate_finder_counts_negative_zero_as_zero(tmp_path: Path, open_model) -> None:
    matrix = np.ones((4, 32), dtype=np.float32)
    matrix[1] = 0.0
    matrix[2] = -0.0  # equal in value to row 1, different in bytes
    matrix[3] = 2.0
    path = tmp_path / "zeros.gguf"
    write_vocab_file(path, [f"t{i}" for i in range(4)], "llama", matrix)
    stats = embedding_stats(open_model(path, use_tokenizer=False)).stats
    assert (stats.duplicate_rows, stats.near_zero_count) == (1, 2)


# ---- word resolution ---------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-to-character table (as in openai/gpt-2 encoder.py)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def gpt2_vocabulary(words: list[str]) -> tuple[list[str], list[str]]:
    """The 256 byte characters plus each word built by left-to-right merges."""
    table = bytes_to_unicode()
    tokens = [table[byte] for byte in range(256)]
    merges: list[str] = []
    for word in words:
        encoded = "".join(table[byte] for byte in word.encode("utf-8"))
        built = encoded[0]
        for char in encoded[1:]:
            if f"{built} {char}" not in merges:
                merges.append(f"{built} {char}")
            built += char
            if built not in tokens:
                tokens.append(built)
    return tokens, merges


def write_vocab_file(path: Path, tokens: list[str], tokenizer: str, matrix: np.ndarray,
                     merges: list[str] | None = None) -> None:
    """A minimal llama-architecture GGUF: tokenizer plus an f32 token_embd."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(matrix.shape[1])
    writer.add_block_count(1)
    writer.add_feed_forward_length(matrix.shape[1])
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model(tokenizer)
    writer.add_token_list(tokens)
    if merges is not None:
        writer.add_token_merges(merges)
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    writer.add_tensor("token_embd.weight", matrix)
    write_gguf(writer)


@pytest.fixture
def gpt2_file(tmp_path: Path) -> tuple[Path, list[str]]:
    tokens, merges = gpt2_vocabulary([" the", " king", " queen", "king", "café"])
    path = tmp_path / "gpt2-vocab.gguf"
    matrix = np.random.default_rng(0).standard_normal((len(tokens), 32)).astype(np.float32)
    write_vocab_file(path, tokens, "gpt2", matrix, merges)
    return path, tokens


def test_sentencepiece_word_resolution(open_model) -> None:
    model = open_model(fixture_path(PLANTED_Q8_0))
    resolved = model.resolve("king")
    assert (resolved.id, resolved.token, resolved.method) == (KING, "\u2581king", "space marker")
    assert model.resolve("\u2581king").method == "exact"
    assert model.resolve("<0x41>").id == 3 + 0x41
    assert (model.resolve("260").token, model.resolve("260").method) == ("\u2581queen", "id")
    with pytest.raises(QueryError, match="out of range"):
        model.resolve("384")


def test_sentencepiece_multi_token_word_is_reported_not_averaged(open_model) -> None:
    model = open_model(fixture_path(PLANTED_Q8_0))
    with pytest.raises(MultiTokenWordError) as caught:
        nearest(model, "kingdom", 3)
    # The fixture vocabulary has no single letters: llama.cpp falls back to byte tokens of
    # "▁kingdom" (its SentencePiece tokenizer adds the space prefix itself).
    expected = [f"<0x{byte:02X}>" for byte in "\u2581kingdom".encode("utf-8")]
    assert [piece.token for piece in caught.value.pieces] == expected
    assert [piece.id for piece in caught.value.pieces] == [3 + b for b in "\u2581kingdom".encode()]
    assert "10 tokens" in str(caught.value) and "not averaged" in str(caught.value)


def test_gpt2_word_resolution(open_model, gpt2_file) -> None:
    path, tokens = gpt2_file
    model = open_model(path)
    assert model.vocabulary.model == "gpt2"
    cases = {
        # issue 18: the whole word as running text has it comes before the bare piece
        "king": ("\u0120king", "space marker"),
        "=king": ("king", "exact"),  # the exact piece, asked for explicitly
        "queen": ("\u0120queen", "space marker"),  # Ġqueen
        "the": ("\u0120the", "space marker"),
        " queen": ("\u0120queen", "space marker"),  # a leading space: running text too
        "café": ("caf\u00c3\u00a9", "tokenizer"),  # byte-level: é is bytes C3 A9 -> "Ã©"
    }
    for word, (token, method) in cases.items():
        resolved = model.resolve(word)
        assert (resolved.token, resolved.method) == (token, method), word
        assert resolved.id == tokens.index(token)


def test_gpt2_multi_token_word(open_model, gpt2_file) -> None:
    path, tokens = gpt2_file
    with pytest.raises(MultiTokenWordError) as caught:
        open_model(path).resolve(" king king")
    assert [piece.token for piece in caught.value.pieces] == ["\u0120king", "\u0120king"]


def test_gpt2_marker_comes_first_for_a_gpt2_vocabulary() -> None:
    vocabulary = Vocabulary(("a", "\u2581word", "\u0120word"), "gpt2")
    assert resolve_word("word", vocabulary, 3, None).token == "\u0120word"
    vocabulary = Vocabulary(vocabulary.tokens, "llama")
    assert resolve_word("word", vocabulary, 3, None).token == "\u2581word"


def test_unknown_word_without_llama_cpp(monkeypatch: pytest.MonkeyPatch, open_model) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now fails
    model = open_model(fixture_path(PLANTED_Q8_0))
    with pytest.raises(UnknownWordError, match="llama-cpp-python is not installed"):
        model.resolve("kingdom")
    assert model.resolve("king").id == KING  # vocabulary steps need no runtime


def test_runtime_tokenizer_of_a_missing_file_is_unavailable(tmp_path: Path) -> None:
    tokenizer = RuntimeTokenizer(str(tmp_path / "absent.gguf"))
    assert tokenizer.tokenize("king") is None
    assert tokenizer.unavailable


def test_file_without_vocabulary_answers_by_id_only(tmp_path: Path, open_model) -> None:
    path = tmp_path / "novocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("token_embd.weight", np.eye(4, 32, dtype=np.float32))
    write_gguf(writer)
    model = open_model(path, use_tokenizer=False)
    assert model.resolve("2").token is None
    with pytest.raises(QueryError, match="no tokenizer.ggml.tokens"):
        model.resolve("king")


# ---- --vs -------------------------------------------------------------------------------------

def test_vs_side_by_side_and_cross_file_cosine(open_model) -> None:
    f16_rows, _ = reader_rows(fixture_path(PLANTED_F16))
    q8_rows, _ = reader_rows(fixture_path(PLANTED_Q8_0))
    report = explore_models(EmbedQuery("analogy", ("king", "man", "woman"), 3),
                            open_model(fixture_path(PLANTED_Q8_0)),
                            open_model(fixture_path(PLANTED_F16)))
    assert report.primary.results[0].id == report.other.results[0].id == QUEEN
    by_id = {item.id: item.cosine for item in report.cross_file}
    assert list(by_id)[:4] == [KING, MAN, WOMAN, QUEEN]
    for token_id, value in by_id.items():
        a, b = q8_rows[token_id], f16_rows[token_id]
        assert value == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-12)
    assert report.notes == ()


def test_vs_stats_measures_every_row(open_model) -> None:
    f16_rows, _ = reader_rows(fixture_path(PLANTED_F16))
    q8_rows, _ = reader_rows(fixture_path(PLANTED_Q8_0))
    report = explore_models(EmbedQuery("stats"), open_model(fixture_path(PLANTED_F16), 4096),
                            open_model(fixture_path(PLANTED_Q8_0), 4096))
    norms = np.linalg.norm(f16_rows, axis=1) * np.linalg.norm(q8_rows, axis=1)
    live = norms > 0
    cosines = np.einsum("ij,ij->i", f16_rows, q8_rows)[live] / norms[live]
    assert report.drift.mean == pytest.approx(cosines.mean(), abs=1e-12)
    assert report.drift.minimum == pytest.approx(cosines.min(), abs=1e-12)
    assert report.drift.moved_most[0].cosine == pytest.approx(cosines.min(), abs=1e-12)


def test_vs_with_a_different_width_is_noted_not_compared(open_model) -> None:
    report = explore_models(EmbedQuery("nearest", ("king",), 2),
                            open_model(fixture_path(PLANTED_Q8_0)),
                            open_model(fixture_path("tiny-llama-tied-q8_0.gguf")))
    assert all(item.cosine is None for item in report.cross_file)
    assert any("differ in width" in note for note in report.notes)


# ---- rendering, JSON and the command line ---------------------------------------------------------

def test_json_contract() -> None:
    document = json.loads(run_embed(str(fixture_path(PLANTED_Q8_0)), "json",
                                    analogy=("king", "man", "woman"), top_k=3)[0])
    assert document["schema_version"] == 1
    query = document["query"]
    assert (query["operation"], query["words"], query["top_k"]) == (
        "analogy", ["king", "man", "woman"], 3)
    assert [item["id"] for item in query["inputs"]] == [KING, MAN, WOMAN]
    assert list(document["results"][0]) == ["token", "id", "score"]
    assert document["results"][0]["token"] == "\u2581queen"
    assert len(document["results"]) == 3


def test_json_with_vs_has_both_sides() -> None:
    document = json.loads(run_embed(str(fixture_path(PLANTED_Q8_0)), "json", token="queen",
                                    vs=str(fixture_path(PLANTED_F16)))[0])
    assert document["results"] == [] and document["row"]["norm"] > 0
    assert document["vs"]["type"] == "f16" and document["vs"]["row"]["norm"] > 0
    assert document["cross_file"][0]["id"] == QUEEN


def test_terminal_output_escapes_token_strings(open_model, tmp_path: Path) -> None:
    tokens = ["\x1b[31mred", "plain", "\u202eevil"]
    path = tmp_path / "hostile.gguf"
    write_vocab_file(path, tokens, "llama", np.eye(3, 32, dtype=np.float32) + 0.1)
    report = explore_models(EmbedQuery("nearest", ("plain",), 2), open_model(path, use_tokenizer=False))
    text, _ = run_embed(str(path), "table", nearest="plain", use_tokenizer=False)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[31mred" in text
    assert embed_sections(report)  # the same report lays out without error
    assert json.loads(embed_json(report))["results"][0]["token"] in tokens


def test_stats_markdown_shows_histogram() -> None:
    text, _ = run_embed(str(fixture_path(PLANTED_Q8_0)), "markdown", stats=True)
    assert "### row norm histogram" in text
    assert "\\<unk\\>" in text  # markdown-escaped token


@pytest.mark.parametrize("arguments, code", [
    (["--analogy", "king", "man", "woman", "--top", "2"], ExitCode.OK),
    (["--nearest", "kingdom"], ExitCode.USAGE),
    (["--nearest", "king", "--stats"], ExitCode.USAGE),
    ([], ExitCode.USAGE),
])
def test_cli_exit_codes(arguments: list[str], code: int) -> None:
    result = CliRunner().invoke(app, ["embed", str(fixture_path(PLANTED_Q8_0)), *arguments])
    assert result.exit_code == code, result.output
    if code == ExitCode.OK:
        assert "'\u2581queen'" in result.stdout


def test_cli_missing_file_is_an_io_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["embed", str(tmp_path / "absent.gguf"), "--stats"])
    assert result.exit_code == ExitCode.IO


def test_stderr_progress_waits_for_the_delay() -> None:
    quiet, shown = io.StringIO(), io.StringIO()
    StderrProgress(quiet, delay=60)("scoring rows", 384, 384)
    StderrProgress(shown, delay=0)("scoring rows", 384, 384)
    assert quiet.getvalue() == ""
    assert shown.getvalue() == "scoring rows: 384 / 384 (100%)\n"


def test_every_pass_of_a_two_file_query_reports_its_own_progress() -> None:
    # --stats --vs reads both files in one pass (issue 19: each chunk read and dequantized
    # once, feeding both files' statistics and the drift): a log must show that pass from its
    # start to 100%, named by the files it reads.
    stream = io.StringIO()
    run_embed(str(fixture_path(PLANTED_Q8_0)), "json", stats=True,
              vs=str(fixture_path(PLANTED_F16)),
              progress=StderrProgress(stream, delay=0))
    finished = [line.split(":")[0] + ":" + line.split(":")[1]
                for line in stream.getvalue().splitlines() if line.endswith("(100%)")]
    assert finished == ["A~B: reading both files"]


def test_query_validation() -> None:
    with pytest.raises(QueryError):
        EmbedQuery("analogy", ("king", "man"))
    with pytest.raises(QueryError):
        EmbedQuery("nearest", ("king",), top_k=0)
    with pytest.raises(QueryError):
        EmbedQuery("average", ("king",))


def test_an_undecodable_embedding_type_is_named_at_its_header_entry(tmp_path: Path) -> None:
    """An unknown type id (still read and sized, as UNKNOWN(id)) cannot be dequantized: the one
    error line points at token_embd.weight's header entry, where gguf-py finds it."""
    source = fixture_path(PLANTED_F16)
    entry = next(t.field for t in gguf.GGUFReader(source).tensors
                 if t.name == "token_embd.weight")
    type_at = entry.offset + sum(part.nbytes for part in entry.parts[:4])  # after name and ne
    raw = bytearray(source.read_bytes())
    raw[type_at:type_at + 4] = (200).to_bytes(4, "little")
    damaged = tmp_path / "unknown-type.gguf"
    damaged.write_bytes(bytes(raw))
    result = CliRunner().invoke(app, ["embed", str(damaged), "--stats"])
    assert result.exit_code == ExitCode.INVALID
    assert result.stderr.strip() == (
        f"error: {damaged}: cannot dequantize token_embd.weight of type UNKNOWN(200) "
        f"at byte {entry.offset} (token_embd.weight)")
