"""Issue 18, item 1: a word resolves to the token the model sees in running text, on vocabularies
shaped like real ones: a SentencePiece vocabulary (Gemma-like: ``▁king`` next to the fragment
``king`` and the variants ``KING``, ``▁King``, ``▁kings``) and a GPT-2 one (``Ġking``).

The rows are planted so the expected answers follow from geometry alone: a royalty axis R, a
male axis M, a female axis F and a fragment axis P. ``▁king`` = R + M, ``▁queen`` = R + F (plus
an orthogonal bit), ``▁man`` = M, ``▁woman`` = F, so king - man + woman = R + F, whose nearest
real answer is ``▁queen``. The variants sit nearer still (R + 0.9 F): left in, they crowd
queen out of first place, as ``KING`` did on Gemma. The bare piece ``king`` lies on the fragment
axis with ``ked``, ``ker``, ``kes``: resolving to it answers with fragments, as on real models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gguf_inspect.commands.embed import run_embed
from tests.test_embed_explore import write_vocab_file

DIMENSIONS = 16
R, M, F, P, Q = (np.eye(DIMENSIONS)[axis] for axis in range(5))
ROWS = {
    "king": P, "ked": P + 0.1 * Q, "ker": P + 0.15 * Q, "kes": P + 0.2 * Q,
    "KING": R + 0.9 * F, "King": R + 0.9 * F, "kings": R + 0.9 * F,
    "queen_": R + F + 0.6 * Q,
}


def _vocabulary(marker: str) -> tuple[list[str], np.ndarray]:
    """Tokens and planted rows; the remaining rows are small noise (no direction of note)."""
    rng = np.random.default_rng(18)
    planted = {
        f"{marker}king": R + M, "king": ROWS["king"], "ked": ROWS["ked"], "ker": ROWS["ker"],
        "kes": ROWS["kes"], "KING": ROWS["KING"], f"{marker}King": ROWS["King"],
        f"{marker}kings": ROWS["kings"], f"{marker}queen": ROWS["queen_"], f"{marker}man": M,
        f"{marker}woman": F,
    }
    filler = [f"<unused{index}>" for index in range(40)]
    tokens = filler[:3] + list(planted) + filler[3:]
    matrix = 0.05 * rng.standard_normal((len(tokens), DIMENSIONS))
    for token, row in planted.items():
        matrix[tokens.index(token)] = row
    return tokens, matrix.astype(np.float32)


@pytest.fixture(params=[("\u2581", "llama"), ("\u0120", "gpt2")], ids=["sentencepiece", "gpt2"])
def vocabulary_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    marker, tokenizer = request.param
    tokens, matrix = _vocabulary(marker)
    path = tmp_path / f"{tokenizer}.gguf"
    write_vocab_file(path, tokens, tokenizer, matrix)
    return path, marker


def _answers(path: Path, **query: object) -> dict:
    text, _ = run_embed(str(path), "json", use_tokenizer=False, **query)
    return json.loads(text)


def test_analogy_ranks_queen_first_by_default(vocabulary_file: tuple[Path, str]) -> None:
    path, marker = vocabulary_file
    answer = _answers(path, analogy=("king", "man", "woman"))
    assert [item["token"] for item in answer["query"]["inputs"]] == [
        f"{marker}king", f"{marker}man", f"{marker}woman"]
    assert answer["results"][0]["token"] == f"{marker}queen"
    # the variants are named with the input and kept out of the answers
    variants = {item["token"] for item in answer["query"]["inputs"][0]["variants"]}
    assert variants == {"king", "KING", f"{marker}King", f"{marker}kings"}
    assert not variants & {item["token"] for item in answer["results"]}


def test_keep_variants_lets_them_answer(vocabulary_file: tuple[Path, str]) -> None:
    path, _ = vocabulary_file
    answer = _answers(path, analogy=("king", "man", "woman"), keep_variants=True)
    # R + 0.9 F is nearer R + F than R + F + 0.6 Q is: the variants come first when kept
    assert answer["results"][0]["token"] in {"KING", f"{vocabulary_file[1]}King",
                                             f"{vocabulary_file[1]}kings"}


def test_exact_piece_is_reachable_explicitly(vocabulary_file: tuple[Path, str]) -> None:
    path, _ = vocabulary_file
    answer = _answers(path, nearest="=king", top_k=3)
    assert answer["query"]["inputs"][0]["token"] == "king"
    assert [item["token"] for item in answer["results"]] == ["ked", "ker", "kes"]
    default = _answers(path, nearest="king", top_k=1)
    assert default["results"][0]["token"] not in {"ked", "ker", "kes"}  # fragments: a piece's answers


def test_leading_space_needs_no_tokenizer(vocabulary_file: tuple[Path, str]) -> None:
    """" king" (the running-text form) resolves from the vocabulary, so it works on a URL too,
    where llama.cpp's tokenizer cannot load the file."""
    path, marker = vocabulary_file
    answer = _answers(path, token=" king")
    assert answer["query"]["inputs"][0]["token"] == f"{marker}king"


def test_table_names_the_variants_and_the_switch(vocabulary_file: tuple[Path, str]) -> None:
    path, _ = vocabulary_file
    text, _ = run_embed(str(path), "table", nearest="king", use_tokenizer=False)
    assert "'KING'" in text and "--keep-variants" in text
