"""The command line: parse arguments, call a command body, print what it returns, and turn a
raised error into one ``error:`` line and its exit code.

No logic lives here. ``gguf-inspect MODEL [options]`` is the default command (``inspect``);
the other jobs are subcommands (``gguf-inspect diff A B`` ...). The streams are chosen once, by
``main(args, streams)``, and reach every command through click's context object.
"""

from __future__ import annotations

import functools
import inspect
import traceback as traceback_module
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from gguf_inspect.commands import OutputFormat, Streams
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import GGUFError, error_message, exit_code_for
from gguf_inspect.llamacpp.settings import SETTINGS, Setting


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


def _show_version(cli_context: typer.Context, value: bool) -> None:
    if value:
        from gguf_inspect.commands.version import version_line

        emit(streams_of(cli_context), version_line())
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


def streams_of(cli_context: typer.Context) -> Streams:
    """The streams ``main`` was given, else the process's own (typer's CliRunner swaps those)."""
    root = cli_context.find_root()
    return root.obj if isinstance(root.obj, Streams) else Streams.system()


def guarded(cli_context: typer.Context, action: Callable[[Streams], tuple[str, int]],
            show_traceback: bool) -> None:
    """Run a command body with the streams; print the text it returns and exit with its code,
    or print one ``error:`` line for a failure and exit with that failure's code."""
    streams = streams_of(cli_context)
    try:
        text, code = action(streams)
    except (GGUFError, LookupError, OSError) as error:
        if show_traceback:
            traceback_module.print_exc(file=streams.stderr)
        print_error(streams, error_message(error))
        raise typer.Exit(exit_code_for(error)) from None
    emit(streams, text)
    raise typer.Exit(code)


def emit(streams: Streams, text: str) -> None:
    streams.stdout.write(text)
    streams.stdout.flush()


def pick_format(as_json: bool, as_markdown: bool) -> OutputFormat:
    if as_json and as_markdown:
        raise typer.BadParameter("choose one of --json and --markdown")
    return (OutputFormat.JSON if as_json else OutputFormat.MARKDOWN if as_markdown
            else OutputFormat.TABLE)


@app.command("inspect")
def inspect_command(
    cli_context: typer.Context,
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.inspect import run_inspect
        from gguf_inspect.reports.inspect import InspectOptions

        return run_inspect(model, output_format, InspectOptions(
            embeddings=embeddings, metadata=metadata, full=full, tensors=tensors,
            tensor_filter=tensor_filter))

    guarded(cli_context, run, show_traceback)


@app.command("validate")
def validate_command(
    cli_context: typer.Context,
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.validate import run_validate, stderr_progress

        return run_validate(model, output_format, data=data,
                            progress=stderr_progress(streams.stderr) if data else None)

    guarded(cli_context, run, show_traceback)


@app.command("audit")
def audit_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(help="GGUF file to audit before deploying it.")],
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    show_traceback: TracebackOption = False,
) -> None:
    """Audit a model before deploying it (chat template, loader-crash shapes, validate's
    checks); exit 0 no errors, 1 errors found, 3 not readable as GGUF."""
    output_format = pick_format(as_json, as_markdown)

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.audit import run_audit

        return run_audit(model, output_format)

    guarded(cli_context, run, show_traceback)


@app.command("diff", cls=OptionalValueCommand)
def diff_command(
    cli_context: typer.Context,
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.diff import run_diff

        return run_diff(model_a, model_b, output_format, show_all=show_all, values=values,
                        sample=sample, seed=seed, data_hash=data_hash, exit_code=exit_code,
                        progress_stream=streams.stderr)

    guarded(cli_context, run, show_traceback)


@app.command("embed")
def embed_command(
    cli_context: typer.Context,
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.embed import run_embed

        # A question the file cannot answer raises QueryError, a UsageError: exit 2.
        return run_embed(model, output_format, nearest=nearest, analogy=analogy, token=token,
                         stats=stats, top_k=top_k, vs=vs, stderr=streams.stderr)

    guarded(cli_context, run, show_traceback)


def _checked_by(check: Callable[[str], str]) -> Callable[[Optional[str]], Optional[str]]:
    """A typer callback from a settings row's check: a bad value is a usage error."""
    def callback(value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        try:
            return check(value)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None

    return callback


def _setting_parameter(row: Setting) -> inspect.Parameter:
    """One typer option for a row of llama.cpp's settings table (llamacpp/settings.py)."""
    if row.off_switch:
        annotation: object = Annotated[bool, typer.Option(row.option, help=row.help_text())]
        return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=False,
                                 annotation=annotation)
    kind: type = bool if isinstance(row.default, bool) else type(row.default)
    extra: dict[str, object] = {}
    if row.minimum is not None:
        extra["min"] = row.minimum
    if row.metavar is not None:
        extra["metavar"] = row.metavar
    if row.check is not None:
        extra["callback"] = _checked_by(row.check)
    annotation = Annotated[Optional[kind], typer.Option(  # type: ignore[valid-type]
        row.option, help=row.help_text(), show_default=False, **extra)]
    return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=annotation)


def with_llama_settings(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command one option per llama.cpp setting (``SETTINGS``, the one table shared by
    ``runtime`` and ``vram``) and hand it what was given as ``settings``: a dict of
    ``LlamaSettings`` fields, None for those not given (the command fills in the defaults)."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():  # the options stand where ``settings`` is
        if parameter.name == "settings":
            parameters += [_setting_parameter(row) for row in SETTINGS]
        elif parameters:  # typer passes every parameter by name
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        else:
            parameters.append(parameter)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        given = {row.name: kwargs.pop(row.name) for row in SETTINGS}
        for row in SETTINGS:
            if row.off_switch:  # the flag given means the setting is off
                given[row.name] = False if given[row.name] else None
        command(settings=given, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def print_error(streams: Streams, message: str) -> None:
    """One ``error:`` line on stderr: escaped (messages quote file content), a URL's password
    redacted."""
    from gguf_inspect.gguf.source import redact_url
    from gguf_inspect.render.text import escape_terminal

    streams.stderr.write(f"error: {escape_terminal(redact_url(message))}\n")
    streams.stderr.flush()


@app.command("runtime")
@with_llama_settings
def runtime_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(help="GGUF file to load and compare.")],
    settings: dict[str, Any] = {},  # replaced by one option per llama.cpp setting
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.runtime import run_runtime

        return run_runtime(model, output_format, settings, log_path=log_file,
                           from_log=from_log)

    guarded(cli_context, run, show_traceback)


@app.command("vram")
@with_llama_settings
def vram_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(help="GGUF file to audit.")],
    gpu: Annotated[Optional[str], typer.Option(
        "--gpu", metavar="SIZE|NAME[,...]",
        help="GPU memory: 24GiB, 24GB, 8000MiB, a card (rtx4090, a100-80g, h100-80g, l4, t4 ...)"
             ", several comma-separated (split by size like llama.cpp), 2xrtx3090.")] = None,
    settings: dict[str, Any] = {},  # replaced by one option per llama.cpp setting
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.vram import VramOptions, run_vram

        options = VramOptions(gpu=gpu, headroom=headroom, plan=plan, settings=settings)
        return run_vram(model, output_format, options)  # a bad --gpu: UsageError, exit 2

    guarded(cli_context, run, show_traceback)


@app.command("scan")
def scan_command(
    cli_context: typer.Context,
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

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.scan import run_scan, stderr_progress

        return run_scan(locations, output_format, recursive=recursive, sort=sort,
                        reverse=reverse, jobs=jobs, progress=stderr_progress(streams.stderr))

    guarded(cli_context, run, show_traceback)


def main(args: Optional[list[str]] = None, streams: Optional[Streams] = None) -> None:
    """Console-script entry point; ``args`` and ``streams`` default to the process's own."""
    app(args, obj=streams)


if __name__ == "__main__":  # pragma: no cover
    main()
