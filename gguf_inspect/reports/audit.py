"""``gguf-inspect audit``: what a GGUF file would do to the programs that load it, in one report
a CI job can gate a deployment on.

Three parts: every structural problem ``validate`` finds (reused, not repeated here); the
loader-parity shapes validate does not look at (bytes after the tensor data, tokenizer arrays
of the wrong item type or length, byte tokens that do not parse), each naming the check in
llama.cpp 0.3.36 (ggml/src/gguf.cpp, src/llama-vocab.cpp) it hits or misses; and the static
analysis of every chat template (reports/template.py; parsed, never rendered).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Iterator

from gguf_inspect.core.constants import VALUE_TYPE_STRING
from gguf_inspect.core.errors import GGUFError
from gguf_inspect.core.model import ArrayValue, GGUFFile
from gguf_inspect.gguf.open import open_source, read_header
from gguf_inspect.gguf.reader import iter_array, read_array
from gguf_inspect.gguf.source import ByteSource
from gguf_inspect.reports.findings import ERROR, INFO, WARNING, Finding
from gguf_inspect.reports.template import TemplateReport, analyse_template
from gguf_inspect.reports.validate import Problem, validate_source

HASH_CHUNK_BYTES = 16 << 20  # bytes hashed at a time: the sha256 of a 70 GB file in bounded memory
VALUE_TYPE_INT32 = 5
VALUE_TYPE_FLOAT32 = 6
TOKEN_TYPE_BYTE = 6  # LLAMA_TOKEN_TYPE_BYTE (include/llama.h)
BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
MAX_BAD_TOKENS_LISTED = 5
TEMPLATE_KEY = "tokenizer.chat_template"

REFERENCE_GGUF = "gguf_init_from_file_impl in ggml/src/gguf.cpp"
REFERENCE_TRAILING = ("nothing in ggml/src/gguf.cpp or llama_model_loader (src/llama-model-loader"
                      ".cpp) checks that the file ends with the tensor data")
REFERENCE_VOCAB = "llama_vocab::impl::load in src/llama-vocab.cpp"
REFERENCE_BYTE_TOKEN = "llama_vocab::impl::token_to_byte in src/llama-vocab.cpp"
REFERENCE_ARR_STR = "gguf_get_arr_str in ggml/src/gguf.cpp (GGML_ASSERT on the item type)"


@dataclass(frozen=True)
class AuditReport:
    path: str
    size: int
    sha256: str | None  # of every byte of the file (None when it could not be read through)
    header_read: bool  # False when the file is not readable as GGUF at all
    findings: tuple[Finding, ...]
    template: TemplateReport | None  # tokenizer.chat_template's, when there is one

    @property
    def n_errors(self) -> int:
        return sum(finding.severity == ERROR for finding in self.findings)

    @property
    def verdict(self) -> str:
        """fail when any finding is an error, warn when any is a warning, else pass."""
        severities = {finding.severity for finding in self.findings}
        return "fail" if ERROR in severities else "warn" if WARNING in severities else "pass"


def file_sha256(source: ByteSource) -> str:
    """SHA-256 of the file's bytes, read in bounded chunks."""
    digest = hashlib.sha256()
    for offset in range(0, source.size, HASH_CHUNK_BYTES):
        digest.update(source.read_at(offset, min(HASH_CHUNK_BYTES, source.size - offset)))
    return digest.hexdigest()


def _from_problem(problem: Problem) -> Finding:
    where = problem.field or "header"
    if problem.offset is not None:
        where += f" at byte {problem.offset}"
    if problem.file and problem.file != problem.file.rsplit("/", 1)[-1]:
        where += f" ({problem.file})"
    refusal = "; llama.cpp refuses the file" if problem.kind == "llama.cpp" else ""
    return Finding(f"validate.{problem.kind}", problem.severity, where,
                   problem.message + refusal, REFERENCE_GGUF)


def trailing_bytes(gguf: GGUFFile) -> Iterator[Finding]:
    """Bytes after the last tensor's data (past its alignment padding), shard by shard."""
    for shard in gguf.files:
        header = shard.header
        end = max((tensor.offset + tensor.n_bytes for tensor in header.tensors),
                  default=header.data_offset)
        padded = -(-end // header.alignment) * header.alignment
        extra = header.file_size - padded
        if extra > 0:
            where = f"byte {padded}" + (f" ({header.path})" if gguf.shards else "")
            yield Finding("loader.trailing-bytes", WARNING, where,
                          f"{extra:,} byte(s) after the tensor data, from byte {padded:,} to the "
                          f"end at byte {header.file_size:,}: llama.cpp never reads them, so "
                          "they can carry a payload for another program", REFERENCE_TRAILING)


def _array(gguf: GGUFFile, key: str) -> Any:
    return gguf.value(key)


def tokenizer_arrays(gguf: GGUFFile) -> Iterator[Finding]:
    """The item types and lengths llama_vocab::impl::load requires of the tokenizer arrays."""
    tokens = _array(gguf, "tokenizer.ggml.tokens")
    if tokens is None:
        return
    if not isinstance(tokens, ArrayValue) or tokens.item_type != VALUE_TYPE_STRING:
        yield Finding("loader.tokenizer-type", ERROR, "tokenizer.ggml.tokens",
                      "not an array of strings: llama.cpp refuses the vocabulary",
                      REFERENCE_VOCAB)
        return
    required = {"tokenizer.ggml.scores": (VALUE_TYPE_FLOAT32, VALUE_TYPE_INT32),
                "tokenizer.ggml.token_type": (VALUE_TYPE_INT32,)}
    for key, allowed in required.items():
        value = _array(gguf, key)
        if value is None:
            continue
        if not isinstance(value, ArrayValue) or value.item_type not in allowed:
            stored = value.item_type_name if isinstance(value, ArrayValue) else "a scalar"
            yield Finding(
                "loader.tokenizer-type", ERROR, key,
                f"items stored as {stored}, llama.cpp reads them as "
                f"{' or '.join('float32' if t == VALUE_TYPE_FLOAT32 else 'int32' for t in allowed)}"
                ": 0.3.36 refuses the vocabulary ('invalid gguf type'); builds before that check "
                "cast the array to float* / int* and read past its end", REFERENCE_VOCAB)
        elif value.count < tokens.count:
            yield Finding("loader.tokenizer-count", ERROR, key,
                          f"{value.count:,} items for {tokens.count:,} tokens: 0.3.36 refuses "
                          "it ('Index out of array bounds'); older builds read past the end",
                          REFERENCE_VOCAB)
    merges = _array(gguf, "tokenizer.ggml.merges")
    if merges is not None and (not isinstance(merges, ArrayValue)
                               or merges.item_type != VALUE_TYPE_STRING):
        yield Finding("loader.tokenizer-type", ERROR, "tokenizer.ggml.merges",
                      "not an array of strings: reading a merge aborts llama.cpp",
                      REFERENCE_ARR_STR)


def byte_tokens(source: ByteSource, gguf: GGUFFile) -> Iterator[Finding]:
    """Tokens typed BYTE whose text is not ``<0xHH>``: token_to_byte parses text[3:5] with
    strtol, so ``<0x-1>`` decodes to 0xFF and a text shorter than 3 bytes throws
    std::out_of_range while detokenizing."""
    tokens, types = _array(gguf, "tokenizer.ggml.tokens"), _array(gguf, "tokenizer.ggml.token_type")
    if not (isinstance(tokens, ArrayValue) and tokens.item_type == VALUE_TYPE_STRING
            and isinstance(types, ArrayValue) and types.item_type == VALUE_TYPE_INT32
            and types.count >= tokens.count):
        return  # tokenizer_arrays reports these; llama.cpp never gets this far
    token_types = read_array(source, types, gguf.byte_order)
    bad = [(index, text) for index, text in enumerate(iter_array(source, tokens, gguf.byte_order))
           if token_types[index] == TOKEN_TYPE_BYTE and not BYTE_TOKEN.fullmatch(text)]
    if bad:
        listed = ", ".join(f"{index}: {text[:16]!r}" for index, text in bad[:MAX_BAD_TOKENS_LISTED])
        yield Finding("loader.byte-token", ERROR, "tokenizer.ggml.tokens",
                      f"{len(bad)} byte token(s) that are not <0xHH> ({listed}): llama.cpp "
                      "decodes them to a wrong byte, or throws on a text under 3 bytes",
                      REFERENCE_BYTE_TOKEN)


def _vocabulary(source: ByteSource, gguf: GGUFFile) -> frozenset[str] | None:
    tokens = _array(gguf, "tokenizer.ggml.tokens")
    if not isinstance(tokens, ArrayValue) or tokens.item_type != VALUE_TYPE_STRING:
        return None
    return frozenset(iter_array(source, tokens, gguf.byte_order))


def templates(source: ByteSource, gguf: GGUFFile) -> list[TemplateReport]:
    """tokenizer.chat_template and its named variants (tokenizer.chat_template.tool_use...)."""
    keys = [key for key in gguf.metadata
            if key == TEMPLATE_KEY or key.startswith(TEMPLATE_KEY + ".")]
    if not keys:
        return []
    vocabulary = _vocabulary(source, gguf)
    reports = []
    for key in keys:
        value = gguf.value(key)
        if isinstance(value, str):
            reports.append(analyse_template(value, key, vocabulary))
    return reports


def _loader_findings(source: ByteSource) -> tuple[list[Finding], TemplateReport | None]:
    try:
        gguf = read_header(source)
    except GGUFError:  # validate has said why
        return [], None
    findings = [*trailing_bytes(gguf), *tokenizer_arrays(gguf)]
    try:
        findings += byte_tokens(source, gguf)
        reports = templates(source, gguf)
    except GGUFError as error:  # validate lists unreadable strings one by one
        findings.append(Finding("loader.unreadable", ERROR, error.field or "metadata",
                                error.message, REFERENCE_GGUF))
        return findings, None
    for report in reports:
        findings += report.findings
    main = next((report for report in reports if report.key == TEMPLATE_KEY), None)
    if main is None and not reports:
        findings.append(Finding("template.none", INFO, TEMPLATE_KEY,
                                "no chat template: servers fall back to a builtin one",
                                "llama_model_chat_template in src/llama-model.cpp"))
    return findings, main


def audit_source(source: ByteSource) -> AuditReport:
    """Audit an open byte source; I/O failures (SourceError) propagate to the caller."""
    validation = validate_source(source)
    findings = [_from_problem(problem) for problem in validation.problems]
    template = None
    if validation.header_read:
        loader, template = _loader_findings(source)
        findings += loader
    return AuditReport(path=source.name, size=source.size, sha256=file_sha256(source),
                       header_read=validation.header_read, findings=tuple(findings),
                       template=template)


def audit_file(location: str) -> AuditReport:
    """Open a model location read-only, audit it, close it."""
    source = open_source(location)
    try:
        return audit_source(source)
    finally:
        source.close()
