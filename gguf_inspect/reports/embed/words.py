"""What an embedding query asks and which rows it names: the query itself, the file's vocabulary
(``tokenizer.ggml.tokens``, streamed once), and each word resolved to one row.

A word resolves to the token the model sees for it in running text: the space-marked whole word
(``▁king`` / ``Ġking``) before the bare piece (``king``, on real vocabularies usually a sub-word
fragment as in "ask-ing"). ``=king`` asks for the exact piece, a number for a token id; the
model's own tokenizer (through ``llamacpp.runtime``) is the last resort. The case, marker and
plural variants of an input (``KING``, ``▁King``, ``kings``) are listed with it and, unless
the vocabulary says to keep them, left out of the answers with the inputs themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from gguf_inspect.core.constants import VALUE_TYPE_STRING
from gguf_inspect.core.errors import UsageError
from gguf_inspect.core.model import ArrayValue
from gguf_inspect.gguf.open import Model
from gguf_inspect.gguf.reader import iter_array
from gguf_inspect.llamacpp.runtime import RuntimeTokenizer

SENTENCEPIECE_SPACE = "\u2581"  # "▁": SentencePiece's word-start marker
GPT2_SPACE = "\u0120"  # "Ġ": GPT-2 byte-level BPE's encoding of a leading space
EXACT_PREFIX = "="  # "=king": the vocabulary entry 'king' itself, not the whole word
DEFAULT_TOP_K = 10
PLURAL_SUFFIXES = ("s", "es")
MAX_PIECES_LISTED = 16  # pieces of a multi-token word named in the error

WORDS_PER_OPERATION = {"nearest": 1, "analogy": 3, "token": 1, "stats": 0}


class QueryError(UsageError):
    """A query the file cannot answer as asked (a usage error, not a broken file)."""


class UnknownWordError(QueryError):
    """No vocabulary entry matches the word, by any of the resolution steps."""

    def __init__(self, word: str, tried: Sequence[str], tokenizer_note: str) -> None:
        self.word = word
        self.tried = tuple(tried)
        tried_text = ", ".join(repr(candidate) for candidate in self.tried)
        super().__init__(f"{word!r} is not in the vocabulary (tried {tried_text}; "
                         f"{tokenizer_note})")


class MultiTokenWordError(QueryError):
    """The model's tokenizer splits the word into several tokens; there is no single row."""

    def __init__(self, word: str, pieces: Sequence["TokenRef"]) -> None:
        self.word = word
        self.pieces = tuple(pieces)
        listed = " + ".join(f"{piece.token!r} (id {piece.id})"
                            for piece in self.pieces[:MAX_PIECES_LISTED])
        if len(self.pieces) > MAX_PIECES_LISTED:
            listed += " + ..."
        super().__init__(f"{word!r} is {len(self.pieces)} tokens, not one: {listed}. Their "
                         "rows are not averaged; query one piece by its id instead")


@dataclass(frozen=True)
class TokenRef:
    """A token id with its vocabulary string (None when the file has no vocabulary)."""

    id: int
    token: str | None


@dataclass(frozen=True)
class ResolvedToken:
    """How one word of the query became one row: ``method`` is id, exact, space marker (the
    whole word as running text has it) or tokenizer (the model's own, through llama-cpp-python).
    ``variants`` are the input's case, marker and plural variants found in the vocabulary;
    ``excluded`` are the ids kept out of the answers (the row itself, and the variants unless
    they are kept)."""

    word: str
    id: int
    token: str | None
    method: str
    variants: tuple[TokenRef, ...] = ()
    excluded: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.excluded:
            object.__setattr__(self, "excluded", (self.id,))


@dataclass(frozen=True)
class EmbedQuery:
    """What was asked: one operation, its words (none for stats) and how many answers."""

    operation: str
    words: tuple[str, ...] = ()
    top_k: int = DEFAULT_TOP_K

    def __post_init__(self) -> None:
        expected = WORDS_PER_OPERATION.get(self.operation)
        if expected is None:
            raise QueryError(f"unknown operation {self.operation!r}")
        if len(self.words) != expected:
            raise QueryError(f"{self.operation} takes {expected} word(s), got {len(self.words)}")
        if self.top_k < 1:
            raise QueryError(f"--top must be at least 1, got {self.top_k}")



@dataclass(frozen=True)
class Vocabulary:
    """``tokenizer.ggml.tokens`` decoded once (streamed), plus the tokenizer model name."""

    tokens: tuple[str, ...]
    model: str | None
    keep_variants: bool = False  # True: case/marker/plural variants of inputs may be answers

    def token(self, token_id: int) -> str | None:
        return self.tokens[token_id] if 0 <= token_id < len(self.tokens) else None

    def find(self, text: str) -> int | None:
        try:
            return self.tokens.index(text)  # a C-level scan: milliseconds even at 262k
        except ValueError:
            return None



def load_vocabulary(model: Model) -> Vocabulary:
    """Stream the token strings out of the header (an empty vocabulary when the file has none)."""
    array = model.file.value("tokenizer.ggml.tokens")
    tokenizer_model = model.file.value("tokenizer.ggml.model")
    tokenizer_model = tokenizer_model if isinstance(tokenizer_model, str) else None
    if not isinstance(array, ArrayValue) or array.item_type != VALUE_TYPE_STRING:
        return Vocabulary((), tokenizer_model)
    return Vocabulary(tuple(iter_array(model.source, array, model.file.byte_order)),
                      tokenizer_model)


def _bare(text: str) -> str:
    """A piece without its word-start marker (or spaces), in lower case: what variants share."""
    return text.lstrip(SENTENCEPIECE_SPACE + GPT2_SPACE + " ").lower()


def find_variants(word: str, vocabulary: Vocabulary, n_rows: int) -> tuple[TokenRef, ...]:
    """Every entry that is the word up to case, word-start marker or a plural suffix, for
    example ``KING``, ``▁King``, ``Ġkings`` for ``king`` (one pass over the vocabulary)."""
    stem = _bare(word)
    if not stem:
        return ()
    forms = {stem} | {stem + suffix for suffix in PLURAL_SUFFIXES}
    return tuple(TokenRef(token_id, token)
                 for token_id, token in enumerate(vocabulary.tokens[:n_rows])
                 if _bare(token) in forms)


def _with_variants(resolved: ResolvedToken, vocabulary: Vocabulary,
                   n_rows: int) -> ResolvedToken:
    if resolved.token is None:
        return resolved
    variants = tuple(ref for ref in find_variants(resolved.token, vocabulary, n_rows)
                     if ref.id != resolved.id)
    excluded = (resolved.id,) if vocabulary.keep_variants else (
        (resolved.id,) + tuple(ref.id for ref in variants))
    return ResolvedToken(resolved.word, resolved.id, resolved.token, resolved.method, variants,
                         excluded)


def _space_markers(vocabulary: Vocabulary) -> tuple[str, str]:
    """Both markers are tried; the tokenizer's own comes first."""
    if vocabulary.model == "gpt2":
        return GPT2_SPACE, SENTENCEPIECE_SPACE
    return SENTENCEPIECE_SPACE, GPT2_SPACE


def _lookup(word: str, candidate: str, vocabulary: Vocabulary, n_rows: int) -> int | None:
    token_id = vocabulary.find(candidate)
    if token_id is not None and token_id >= n_rows:  # a vocabulary longer than the matrix
        raise QueryError(f"{word!r} is token {token_id}, beyond the embedding's {n_rows} rows")
    return token_id


def _candidates(word: str, vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """Vocabulary entries to try, in order, with how each one was found.

    ``=piece`` is that entry only. A leading space means "as in running text", which is what a
    bare word means too; a word that already starts with a marker is an exact entry."""
    if word.startswith(EXACT_PREFIX) and len(word) > len(EXACT_PREFIX):
        return [(word[len(EXACT_PREFIX):], "exact")]
    if word.startswith((SENTENCEPIECE_SPACE, GPT2_SPACE)):
        return [(word, "exact")]
    bare = word.lstrip(" ")
    if not bare or any(character.isspace() for character in bare):
        return [(word, "exact")]
    whole_words = [(marker + bare, "space marker") for marker in _space_markers(vocabulary)]
    return whole_words + [(bare, "exact")]


def resolve_word(word: str, vocabulary: Vocabulary, n_rows: int,
                 tokenizer: RuntimeTokenizer | None) -> ResolvedToken:
    """A word (or a decimal token id) to one row: id, whole word, exact entry, then tokenizer;
    with the word's variants (see ``find_variants``)."""
    resolved = _resolve(word, vocabulary, n_rows, tokenizer)
    return _with_variants(resolved, vocabulary, n_rows) if resolved.method != "id" else resolved


def _resolve(word: str, vocabulary: Vocabulary, n_rows: int,
             tokenizer: RuntimeTokenizer | None) -> ResolvedToken:
    if word.isascii() and word.isdigit():
        token_id = int(word)
        if token_id >= n_rows:
            raise QueryError(f"token id {token_id} is out of range (the embedding has "
                             f"{n_rows} rows)")
        return ResolvedToken(word, token_id, vocabulary.token(token_id), "id")
    if not vocabulary.tokens:
        raise QueryError(f"{word!r}: this file has no tokenizer.ggml.tokens; query by token id")
    candidates = _candidates(word, vocabulary)
    for candidate, method in candidates:
        token_id = _lookup(word, candidate, vocabulary, n_rows)
        if token_id is not None:
            return ResolvedToken(word, token_id, candidate, method)
    tried = [candidate for candidate, _ in candidates]
    if word.startswith(EXACT_PREFIX) and len(word) > len(EXACT_PREFIX):
        raise UnknownWordError(word, tried, "'=' asks for that exact entry only")
    ids = tokenizer.tokenize(word) if tokenizer is not None else None
    if ids is None:
        note = (tokenizer.unavailable if tokenizer is not None and tokenizer.unavailable
                else "the model's own tokenizer was not tried")
        raise UnknownWordError(word, tried, note)
    if not ids:
        raise UnknownWordError(word, tried, "the model's tokenizer gives no tokens")
    if len(ids) == 1 and ids[0] < n_rows:
        return ResolvedToken(word, ids[0], vocabulary.token(ids[0]), "tokenizer")
    if len(ids) == 1:
        raise QueryError(f"{word!r} is token {ids[0]}, beyond the embedding's {n_rows} rows")
    raise MultiTokenWordError(word, [TokenRef(i, vocabulary.token(i)) for i in ids])
