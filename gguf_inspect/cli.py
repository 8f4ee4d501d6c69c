"""The command line: parse arguments, call an analysis, render, print, map errors to exit codes.

No logic lives here. ``gguf-inspect MODEL [options]`` is the default command (``inspect``);
the other jobs are subcommands (``gguf-inspect diff A B`` ...).
"""

from __future__ import annotations

import sys
import traceback as traceback_module
from typing import Annotated, Callable, Optional, Union

import typer
from typer.core import TyperCommand, TyperGroup

from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import FormatError, GGUFError, RuntimeUnavailableError, SourceError


class DefaultCommandGroup(TyperGroup):
    """Routes ``gguf-inspect MODEL ...`` to the ``inspect`` command when no subcommand is named."""

    default_command = "inspect"

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h",
                                                                       "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class OptionalValueCommand(TyperCommand):
    """Lets ``--values`` stand alone or take a scope word: ``--values``, ``--values all``,
    ``--values=all``, anywhere on the line.

    click's own optional-value options (``is_flag=False, flag_value=...``) take whatever word
    follows, so ``diff --values A.gguf B.gguf`` would swallow a file name; here only a known
    word is taken, and a bare flag gets the default, before click parses the line.
    """

    optional_values: dict[str, tuple[str, tuple[str, ...]]] = {
        "--values": ("embeddings", ("embeddings", "all"))}

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        rewritten: list[str] = []
        index = 0
        while index < len(args):
            word = args[index]
            index += 1
            if word == "--":
                rewritten.extend(args[index - 1:])
                break
            if word in self.optional_values:
                default, choices = self.optional_values[word]
                taken = index < len(args) and args[index] in choices
                rewritten.append(f"{word}={args[index] if taken else default}")
                index += taken
            else:
                rewritten.append(word)
        return super().parse_args(ctx, rewritten)


app = typer.Typer(cls=DefaultCommandGroup, add_completion=False, no_args_is_help=True,
                  help="Look inside llama.cpp GGUF files: embeddings, diffs, memory audits.",
                  context_settings={"help_option_names": ["-h", "--help"]},
                  pretty_exceptions_enable=False)


def _show_version(value: bool) -> None:
    if value:
        from gguf_inspect.commands.version import version_line

        emit(version_line())
        raise typer.Exit(ExitCode.OK)


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the versions of gguf-inspect, gguf-py and llama-cpp-python, and exit.")] = False,
) -> None:
    """Look inside llama.cpp GGUF files: embeddings, diffs, memory audits."""


JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Markdown tables.")]
TracebackOption = Annotated[bool, typer.Option("--traceback", help="Show the stack on errors.")]
DEFAULT_TIMEOUT = 120.0  # gguf/remote.py's DEFAULT_DEADLINE; the README states it


def _use_timeout(seconds: float) -> float:
    from gguf_inspect.gguf.remote import set_deadline

    set_deadline(seconds)
    return seconds


TimeoutOption = Annotated[float, typer.Option(
    "--timeout", min=0.1, callback=_use_timeout, metavar="SECONDS",
    help="Overall deadline for reading each remote location (every request and retry).")]


def _exit_code_for(error: BaseException) -> int:
    if isinstance(error, SourceError):
        return ExitCode.IO
    if isinstance(error, RuntimeUnavailableError):
        return ExitCode.RUNTIME
    if isinstance(error, (FormatError, GGUFError, LookupError)):
        return ExitCode.INVALID
    if isinstance(error, OSError):
        return ExitCode.IO
    return ExitCode.INVALID


def guarded(action: Callable[[], Union[int, tuple[str, int]]], show_traceback: bool) -> None:
    """Run a command body; print what it rendered, or one ``error:`` line per failure, and exit
    with its code. A body returns an exit code, or ``(text, exit code)`` to have text printed."""
    try:
        outcome = action()
        if isinstance(outcome, tuple):
            text, code = outcome
            emit(text)
        else:
            code = outcome
    except (GGUFError, LookupError, OSError) as error:
        if show_traceback:
            traceback_module.print_exc()
        message = str(error) if not isinstance(error, KeyError) else str(error.args[0])
        if isinstance(error, OSError) and not isinstance(error, GGUFError):
            message = f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")
        from gguf_inspect.gguf.source import redact_url
        from gguf_inspect.render.text import escape_terminal

        print(f"error: {escape_terminal(redact_url(message))}", file=sys.stderr)
        raise typer.Exit(_exit_code_for(error)) from None
    raise typer.Exit(code)


def emit(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def pick_format(as_json: bool, as_markdown: bool) -> str:
    if as_json and as_markdown:
        raise typer.BadParameter("choose one of --json and --markdown")
    return "json" if as_json else "markdown" if as_markdown else "table"


@app.command("inspect")
def inspect_command(
    model: Annotated[str, typer.Argument(help="GGUF file to inspect.")],
    embeddings: Annotated[bool, typer.Option("--embeddings", "-e",
                                             help="Report the token-embedding matrix.")] = False,
    metadata: Annotated[bool, typer.Option("--metadata", "-m", help="List metadata keys.")] = False,
    full: Annotated[bool, typer.Option("--full", help="With --metadata: whole arrays.")] = False,
    tensors: Annotated[bool, typer.Option("--tensors", "-t", help="List tensors.")] = False,
    tensor_filter: Annotated[Optional[str], typer.Option(
        "--filter", help="With --tensors: a glob or substring of tensor names.")] = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Summarize a model (default command): file type, sizes, type counts, and optional sections."""
    output_format = pick_format(as_json, as_markdown)
    if full and not metadata:
        raise typer.BadParameter("needs --metadata", param_hint="--full")
    if tensor_filter is not None and not tensors:
        raise typer.BadParameter("needs --tensors", param_hint="--filter")

    def run() -> int:
        from gguf_inspect.commands.inspect import run_inspect

        emit(run_inspect(model, output_format, embeddings=embeddings, metadata=metadata,
                         full=full, tensors=tensors, tensor_filter=tensor_filter))
        return ExitCode.OK

    guarded(run, show_traceback)


@app.command("validate")
def validate_command(
    model: Annotated[str, typer.Argument(help="GGUF file to validate.")],
    data: Annotated[bool, typer.Option(
        "--data", help="Also read every tensor and look for NaN/Inf values.")] = False,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Check a model's structure (every problem, not only the first); exit 0 valid, 3 invalid."""
    output_format = pick_format(as_json, as_markdown)

    def run() -> tuple[str, int]:
        from gguf_inspect.commands.validate import run_validate, stderr_progress

        return run_validate(model, output_format, data=data,
                            progress=stderr_progress() if data else None)

    guarded(run, show_traceback)


@app.command("diff", cls=OptionalValueCommand)
def diff_command(
    model_a: Annotated[str, typer.Argument(metavar="A", help="Reference GGUF file.")],
    model_b: Annotated[str, typer.Argument(metavar="B", help="GGUF file compared with A.")],
    values: Annotated[Optional[str], typer.Option(
        "--values", metavar="[embeddings|all]", show_default=False,
        help="Dequantize and compare values: token embedding and output head (the default), "
             "or every tensor with 'all'.")] = None,
    sample: Annotated[Optional[int], typer.Option(
        "--sample", min=1, help="With --values: compare N random rows per tensor.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --sample rows.")] = 0,
    show_all: Annotated[bool, typer.Option(
        "--all", help="Also list unchanged tensors and metadata keys.")] = False,
    exit_code: Annotated[bool, typer.Option(
        "--exit-code", help="Exit 1 when anything differs, 0 when nothing does.")] = False,
    data_hash: Annotated[Optional[bool], typer.Option(
        "--data-hash/--no-data-hash", show_default=False,
        help="Compare the bytes of tensors with the same type and shape (SHA-256; reads both "
             "files). Default: yes for local files, no when either is remote.")] = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Diff two GGUF files (two quantizations of one model): types, bytes, metadata, values."""
    output_format = pick_format(as_json, as_markdown)
    if values is not None and values not in ("embeddings", "all"):
        raise typer.BadParameter(f"expected 'embeddings' or 'all', got {values!r}",
                                 param_hint="--values")
    if sample is not None and values is None:
        raise typer.BadParameter("needs --values", param_hint="--sample")

    def run() -> tuple[str, int]:
        from gguf_inspect.commands.diff import run_diff

        return run_diff(model_a, model_b, output_format, show_all=show_all,
                        values=values,
                        sample=sample, seed=seed, data_hash=data_hash, exit_code=exit_code,
                        progress_stream=sys.stderr)

    guarded(run, show_traceback)


@app.command("embed")
def embed_command(
    model: Annotated[str, typer.Argument(help="GGUF file whose token embedding to explore.")],
    nearest: Annotated[Optional[str], typer.Option(
        "--nearest", metavar="WORD",
        help="Tokens whose rows are closest to WORD's (a number is a token id).")] = None,
    analogy: Annotated[Optional[tuple[str, str, str]], typer.Option(
        "--analogy", metavar="A B C", help="Tokens closest to A - B + C (inputs excluded).",
        show_default=False)] = None,
    token: Annotated[Optional[str], typer.Option(
        "--token", metavar="WORD|ID", help="One row: norm, min/max, first values.")] = None,
    stats: Annotated[bool, typer.Option(
        "--stats", help="Norm histogram, near-zero and duplicate rows.")] = False,
    top_k: Annotated[int, typer.Option("--top", metavar="K", min=1,
                                       help="How many answers.")] = 10,
    vs: Annotated[Optional[str], typer.Option(
        "--vs", metavar="OTHER", help="Same query on another quantization, side by side.")] = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Explore the token embedding: nearest tokens, analogies, one row, whole-matrix stats."""
    output_format = pick_format(as_json, as_markdown)

    def run() -> int:
        from gguf_inspect.commands.embed import QueryError, run_embed

        try:
            emit(run_embed(model, output_format, nearest=nearest, analogy=analogy, token=token,
                           stats=stats, top_k=top_k, vs=vs))
        except QueryError as error:  # a question the file cannot answer: a usage error
            return usage_error(str(error))
        return ExitCode.OK

    guarded(run, show_traceback)


def _cache_type(value: Optional[str]) -> Optional[str]:
    """A KV cache type name llama.cpp knows (f16, q8_0, q4_0 ...), checked before loading."""
    if value is None:
        return None
    from gguf_inspect.core.constants import ggml_type_from_name

    try:
        return ggml_type_from_name(value).name
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _flash_attn(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in ("on", "off", "auto"):
        raise typer.BadParameter(f"expected on, off or auto, got {value!r}")
    return value


# llama.cpp context settings shared by `runtime` and `vram` (defaults are llama.cpp's own,
# filled in by the commands so they can say which were assumed).
CtxOption = Annotated[Optional[int], typer.Option(
    "--ctx", min=0, help="Context length, 0 for the trained length (default 4096).",
    show_default=False)]
BatchOption = Annotated[Optional[int], typer.Option(
    "--batch", min=1, help="n_batch (default 2048).", show_default=False)]
UbatchOption = Annotated[Optional[int], typer.Option(
    "--ubatch", min=1, help="n_ubatch (default 512).", show_default=False)]
ParallelOption = Annotated[Optional[int], typer.Option(
    "--parallel", min=1, help="Sequences (n_seq_max) (default 1).", show_default=False)]
CacheTypeKOption = Annotated[Optional[str], typer.Option(
    "--cache-type-k", callback=_cache_type, help="K cache type (default f16).",
    show_default=False)]
CacheTypeVOption = Annotated[Optional[str], typer.Option(
    "--cache-type-v", callback=_cache_type, help="V cache type (default f16).",
    show_default=False)]
FlashAttnOption = Annotated[Optional[str], typer.Option(
    "--flash-attn", callback=_flash_attn, metavar="on|off|auto",
    help="Flash attention (default auto).", show_default=False)]
SwaFullOption = Annotated[Optional[bool], typer.Option(
    "--swa-full/--no-swa-full", help="Full-size sliding-window cache (default on).",
    show_default=False)]
KvUnifiedOption = Annotated[Optional[bool], typer.Option(
    "--kv-unified/--no-kv-unified", help="One KV buffer shared by all sequences, as llama.cpp's "
                                         "--kv-unified (default off).", show_default=False)]
NoMmapOption = Annotated[bool, typer.Option("--no-mmap", help="Read the weights, no mmap.")]


def usage_error(message: str) -> int:
    """A question the model cannot answer or a bad value: one line, the usage exit code."""
    from gguf_inspect.render.text import escape_terminal

    print(f"error: {escape_terminal(message)}", file=sys.stderr)
    return ExitCode.USAGE


@app.command("runtime")
def runtime_command(
    model: Annotated[str, typer.Argument(help="GGUF file to load and compare.")],
    ctx: CtxOption = None,
    batch: BatchOption = None,
    ubatch: UbatchOption = None,
    parallel: ParallelOption = None,
    cache_type_k: CacheTypeKOption = None,
    cache_type_v: CacheTypeVOption = None,
    flash_attn: FlashAttnOption = None,
    no_mmap: NoMmapOption = False,
    ngl: Annotated[Optional[int], typer.Option(
        "--ngl", help="Layers to offload to the GPU (-1 all) (default -1, as "
                      "llama_model_default_params).",
        show_default=False)] = None,
    swa_full: SwaFullOption = None,
    kv_unified: KvUnifiedOption = None,
    log_file: Annotated[Optional[str], typer.Option(
        "--log", metavar="FILE", help="Save llama.cpp's raw load log to FILE.")] = None,
    from_log: Annotated[Optional[str], typer.Option(
        "--from-log", metavar="FILE",
        help="Compare with a saved load log instead (no llama-cpp-python needed).")] = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Load the model with llama.cpp (no generation) and check our figures against its log."""
    output_format = pick_format(as_json, as_markdown)
    if from_log is not None and log_file is not None:
        raise typer.BadParameter("--log saves a live load's log; it cannot go with --from-log")
    given = {"n_ctx": ctx, "n_batch": batch, "n_ubatch": ubatch, "n_parallel": parallel,
             "cache_type_k": cache_type_k, "cache_type_v": cache_type_v,
             "flash_attn": flash_attn, "n_gpu_layers": ngl, "swa_full": swa_full,
             "kv_unified": kv_unified, "use_mmap": False if no_mmap else None}
    settings = {name: value for name, value in given.items() if value is not None}

    def run() -> tuple[str, int]:
        from gguf_inspect.commands.runtime import run_runtime

        return run_runtime(model, output_format, settings, log_path=log_file,
                           from_log=from_log)

    guarded(run, show_traceback)


@app.command("vram")
def vram_command(
    model: Annotated[str, typer.Argument(help="GGUF file to audit.")],
    gpu: Annotated[Optional[str], typer.Option(
        "--gpu", metavar="SIZE|NAME[,...]",
        help="GPU memory: 24GiB, 24GB, 8000MiB, a card (rtx4090, a100-80g, h100-80g, l4, t4 ...)"
             ", several comma-separated (split by size like llama.cpp), 2xrtx3090.")] = None,
    ctx: CtxOption = None,
    ngl: Annotated[Optional[int], typer.Option(
        "--ngl", help="Layers to offload, the output head counting as one (-1 all) "
                      "(default -1).", show_default=False)] = None,
    batch: BatchOption = None,
    ubatch: UbatchOption = None,
    parallel: ParallelOption = None,
    cache_type_k: CacheTypeKOption = None,
    cache_type_v: CacheTypeVOption = None,
    flash_attn: FlashAttnOption = None,
    swa_full: SwaFullOption = None,
    kv_unified: KvUnifiedOption = None,
    no_mmap: NoMmapOption = False,
    headroom: Annotated[Optional[str], typer.Option(
        "--headroom", metavar="SIZE", help="Memory to keep free on each GPU (default 0).",
        show_default=False)] = None,
    plan: Annotated[bool, typer.Option(
        "--plan", help="Grid: contexts 4k/8k/16k/32k/trained x largest --ngl that fits.")] = False,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Will it fit? Memory per device before deploying; exit 0 fits, 1 does not."""
    output_format = pick_format(as_json, as_markdown)

    def run() -> int | tuple[str, int]:
        from gguf_inspect.commands.vram import VramOptions, run_vram

        options = VramOptions(
            gpu=gpu, n_ctx=ctx, n_gpu_layers=ngl, n_batch=batch, n_ubatch=ubatch,
            n_parallel=parallel, cache_type_k=cache_type_k, cache_type_v=cache_type_v,
            flash_attn=flash_attn, swa_full=swa_full, kv_unified=kv_unified,
            use_mmap=False if no_mmap else None,
            headroom=headroom, plan=plan)
        try:
            return run_vram(model, output_format, options)
        except ValueError as error:  # a bad --gpu / --headroom value: a usage error
            return usage_error(str(error))

    guarded(run, show_traceback)


@app.command("scan")
def scan_command(
    locations: Annotated[list[str], typer.Argument(
        metavar="PATH_OR_URL...", help="GGUF files, folders of them, or http(s):// / hf:// URLs.")],
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Look in sub-folders of the folders given too.")] = False,
    sort: Annotated[str, typer.Option(
        "--sort", help="Sort key: location, architecture, params, file-type, embedding-type, "
                       "embedding-bytes, embedding-ratio, kv-cache, tensor-bytes, file-size.")
    ] = "location",
    reverse: Annotated[bool, typer.Option("--reverse", help="Sort descending.")] = False,
    jobs: Annotated[int, typer.Option(
        "--jobs", "-j", min=1, max=64, help="Models read at once (remote ones concurrently).")
    ] = 8,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """One row per model over a shelf of models, headers only; bad files are listed, not fatal.

    Exit 0 when every model was read, 3 when any file is invalid, else 4 when any could not be
    read."""
    output_format = pick_format(as_json, as_markdown)
    from gguf_inspect.reports.scan import SORT_KEYS

    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"expected one of {', '.join(SORT_KEYS)}; got {sort!r}",
                                 param_hint="--sort")

    def progress(done: int, total: int, location: str, ok: bool) -> None:
        from gguf_inspect.gguf.source import redact_url
        from gguf_inspect.render.text import escape_terminal

        state = "ok" if ok else "failed"
        print(f"scan [{done}/{total}] {state}: {escape_terminal(redact_url(location))}",
              file=sys.stderr,
              flush=True)

    def run() -> tuple[str, int]:
        from gguf_inspect.commands.scan import run_scan

        return run_scan(locations, output_format, recursive=recursive, sort=sort,
                        reverse=reverse, jobs=jobs, progress=progress)

    guarded(run, show_traceback)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
