"""The token-embedding report: what ``token_embd.weight`` really is, why, and where llama.cpp puts it.

The "why" replays llama.cpp's quantization recipe (``llamacpp.recipe``) for the file's declared
type, so the report can say whether the embedding is what the default recipe gives or the result
of an explicit override.
"""

from __future__ import annotations

from dataclasses import dataclass

from gguf_inspect.core.constants import OUTPUT, PER_LAYER_TOKEN_EMBD, TOKEN_EMBD, file_type_name
from gguf_inspect.llamacpp.summary import resolve_file_type, vocab_size
from gguf_inspect.core.model import GGUFFile, TensorInfo
from gguf_inspect.llamacpp.recipe import RecipeExpectation, expected_embedding_type
from gguf_inspect.llamacpp.hparams import NO_OUTPUT_HEAD_ARCHS

@dataclass(frozen=True)
class MatrixFacts:
    """Size facts of one embedding-like matrix (rows are tokens, columns the embedding)."""

    tensor: str
    type: str
    ne: tuple[int, ...]
    n_rows: int
    n_cols: int
    n_bytes: int
    bits_per_weight: float
    f16_bytes: int
    ratio_to_f16: float
    share_of_tensor_bytes: float


@dataclass(frozen=True)
class EmbeddingPlacement:
    """Where llama.cpp keeps the input embedding and the output head at load time."""

    input_device: str
    output_device: str
    tied_gpu_copy_bytes: int | None
    summary: str


@dataclass(frozen=True)
class EmbeddingReport:
    embedding: MatrixFacts
    tied_output: bool
    output: MatrixFacts | None
    per_layer: MatrixFacts | None
    expected: RecipeExpectation | None
    verdict: str
    placement: EmbeddingPlacement
    warnings: tuple[str, ...]
    # False for encoders (bert, nomic-bert ...): their load_arch_tensors creates no output head
    has_output_head: bool = True


class NoEmbeddingError(LookupError):
    """The file has no ``token_embd.weight`` (e.g. a vision projector or a LoRA adapter)."""


def matrix_facts(tensor: TensorInfo, tensor_bytes: int) -> MatrixFacts:
    # A tensor with n_dims 0 is legal GGUF; ggml then treats every dimension as 1.
    n_cols = tensor.row_length
    n_rows = tensor.n_elements // n_cols if n_cols else 0
    f16_bytes = 2 * tensor.n_elements
    return MatrixFacts(
        tensor=tensor.name, type=tensor.type_name, ne=tensor.ne, n_rows=n_rows, n_cols=n_cols,
        n_bytes=tensor.n_bytes, bits_per_weight=tensor.bits_per_weight, f16_bytes=f16_bytes,
        ratio_to_f16=tensor.n_bytes / f16_bytes if f16_bytes else 0.0,
        share_of_tensor_bytes=tensor.n_bytes / tensor_bytes if tensor_bytes else 0.0)


def _verdict(embedding: MatrixFacts, expected: RecipeExpectation | None, file_type: int,
             guessed: bool) -> str:
    stored = (f"token_embd.weight is stored as {embedding.type} "
              f"({embedding.bits_per_weight:.2f} bits per weight, "
              f"{embedding.ratio_to_f16:.1%} of its f16 size)")
    if embedding.type != "f16":
        stored += ", not f16"
    if expected is None:
        return stored + "; the file declares no llama.cpp file type to compare with the recipe."
    ftype = file_type_name(file_type, guessed)
    if expected.type == embedding.type:
        return f"{stored}. That is llama.cpp's {ftype} recipe: {expected.reason}."
    return (f"{stored}. llama.cpp's default {ftype} recipe would give {expected.type} "
            f"({expected.reason}); this file differs, so the quantizer was given an explicit "
            "override (--token-embedding-type, --output-tensor-type or --tensor-type) or "
            "another tool wrote it.")


def _placement(embedding: MatrixFacts, output: MatrixFacts | None,
               has_output_head: bool = True) -> EmbeddingPlacement:
    input_text = ("llama.cpp keeps token_embd.weight (the input layer) in host memory whatever "
                  "--n-gpu-layers is: it costs RAM, never VRAM.")
    if not has_output_head:
        return EmbeddingPlacement("host", "none (no output head)", None, (
            f"{input_text} This architecture is an encoder: llama.cpp creates no output head "
            "for it (no output.weight and no second copy of token_embd.weight), so nothing of "
            "the embedding goes to the GPU."))
    if output is not None:
        output_text = ("output.weight belongs to the output layer, the first layer offloaded: "
                       f"with --n-gpu-layers >= 1 its {output.n_bytes:,} bytes go to the GPU.")
        return EmbeddingPlacement("host", "follows offload (first layer offloaded)", None,
                         f"{input_text} {output_text}")
    tied_text = ("There is no output.weight, so llama.cpp loads token_embd.weight a second time "
                 "as the output head: once the output layer is offloaded (--n-gpu-layers >= 1) "
                 f"a GPU copy of {embedding.n_bytes:,} bytes is made; on the CPU the one copy is "
                 "shared (or repacked into CPU_REPACK when its type allows).")
    return EmbeddingPlacement("host", "tied: a copy follows offload", embedding.n_bytes,
                     f"{input_text} {tied_text}")


def _key_type_checks(gguf: GGUFFile) -> list[str]:
    """Keys llama.cpp needs, present but of a type it would refuse (so they were ignored here)."""
    warnings = []
    architecture = gguf.value("general.architecture")
    if architecture is not None and not isinstance(architecture, str):
        warnings.append(f"general.architecture is {type(architecture).__name__} "
                        f"{architecture!r}, not a string: the architecture's keys are not read")
    for suffix in ("vocab_size", "embedding_length"):
        value = gguf.arch_value(suffix)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            warnings.append(f"{gguf.architecture}.{suffix} is {type(value).__name__} "
                            f"{value!r}, not an integer: ignored")
    return warnings


def _cross_checks(gguf: GGUFFile, embedding: MatrixFacts) -> tuple[str, ...]:
    warnings = _key_type_checks(gguf)
    if len(embedding.ne) != 2:
        warnings.append(f"token_embd.weight has {len(embedding.ne)} dimension(s), ne "
                        f"{list(embedding.ne)}, not 2: read as {embedding.n_rows} rows of "
                        f"{embedding.n_cols}")
    n_vocab = vocab_size(gguf)
    if n_vocab is not None and n_vocab != embedding.n_rows:
        warnings.append(f"tokenizer has {n_vocab} tokens but token_embd.weight has "
                        f"{embedding.n_rows} rows")
    declared_vocab = gguf.arch_value("vocab_size")
    if isinstance(declared_vocab, int) and declared_vocab != embedding.n_rows:
        warnings.append(f"{gguf.architecture}.vocab_size is {declared_vocab} but "
                        f"token_embd.weight has {embedding.n_rows} rows")
    n_embd = gguf.arch_value("embedding_length")
    if isinstance(n_embd, int) and n_embd != embedding.n_cols:
        warnings.append(f"{gguf.architecture}.embedding_length is {n_embd} but "
                        f"token_embd.weight rows are {embedding.n_cols} wide")
    return tuple(warnings)


def analyze_embeddings(gguf: GGUFFile) -> EmbeddingReport:
    tensor = gguf.tensor(TOKEN_EMBD)
    if tensor is None:
        raise NoEmbeddingError(f"{gguf.path}: no {TOKEN_EMBD} in this file")
    tensor_bytes = sum(t.n_bytes for t in gguf.tensors)
    embedding = matrix_facts(tensor, tensor_bytes)
    output_tensor = gguf.tensor(OUTPUT)
    output = matrix_facts(output_tensor, tensor_bytes) if output_tensor is not None else None
    per_layer_tensor = gguf.tensor(PER_LAYER_TOKEN_EMBD)
    per_layer = matrix_facts(per_layer_tensor, tensor_bytes) if per_layer_tensor else None
    file_type, guessed = resolve_file_type(gguf)
    # The quantizer's rule is by name (llama-quant.cpp has_tied_embeddings: no output.weight);
    # the runtime's is by architecture: encoders have no head to tie (NO_OUTPUT_HEAD_ARCHS).
    quantizer_tied = output is None
    has_head = gguf.architecture not in NO_OUTPUT_HEAD_ARCHS
    expected = (expected_embedding_type(file_type, quantizer_tied, embedding.n_cols,
                                         gguf.architecture)
                if tensor.known_type else None)
    return EmbeddingReport(
        embedding=embedding, tied_output=quantizer_tied and has_head, output=output,
        per_layer=per_layer, expected=expected,
        verdict=_verdict(embedding, expected, file_type, guessed),
        placement=_placement(embedding, output, has_head),
        warnings=_cross_checks(gguf, embedding), has_output_head=has_head)
