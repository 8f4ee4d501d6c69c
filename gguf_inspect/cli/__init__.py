"""The command line: parse arguments, call a command body, print what it returns, and turn a
raised error into one ``error:`` line and its exit code.

No logic lives here: the shared options, the options generated from llama.cpp's settings table
and the guard live in ``cli/plumbing.py``. ``gguf-inspect MODEL [options]`` is the default command (``inspect``);
the other jobs are subcommands (``gguf-inspect diff A B`` ...). The streams are chosen once, by
``main(args, streams)``, and reach every command through click's context object.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from gguf_inspect.cli.plumbing import (
    DefaultCommandGroup,
    OptionalValueCommand,
    OutputChoice,
    emit,
    guarded,
    streams_of,
    with_llama_settings,
    with_output_options,
)
from gguf_inspect.commands import Streams
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.llamacpp.devices import KNOWN_GPUS_MIB

# Where a model may be: every command reads remote files with Range requests.
WHERE = "a path, an http(s):// URL or hf://OWNER/REPO[@REVISION]/FILE"

app = typer.Typer(cls=DefaultCommandGroup, add_completion=False, no_args_is_help=True,
                  help="Look inside llama.cpp GGUF files: embeddings, diffs, memory audits.",
                  context_settings={"help_option_names": ["-h", "--help"]},
                  pretty_exceptions_enable=False, rich_markup_mode=None)


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


@app.command("inspect", short_help="Summarize a model (the default command).")
@with_output_options
def inspect_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=f"GGUF file to inspect: {WHERE}.")],
    embeddings: Annotated[bool, typer.Option("--embeddings", "-e",
                                             help="Report the token-embedding matrix.")] = False,
    metadata: Annotated[bool, typer.Option("--metadata", "-m", help="List metadata keys.")] = False,
    full: Annotated[bool, typer.Option("--full", help="With --metadata: whole arrays.")] = False,
    tensors: Annotated[bool, typer.Option("--tensors", "-t", help="List tensors.")] = False,
    tensor_filter: Annotated[Optional[str], typer.Option(
        "--filter", help="With --tensors: a glob or substring of tensor names.")] = None,
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Summarize a model (default command): file type, sizes, type counts, and optional sections."""
    output_format = output.output_format
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

    guarded(cli_context, run, output)


@app.command("validate", short_help="Check a model's structure, every problem.")
@with_output_options
def validate_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=f"GGUF file to validate: {WHERE}.")],
    data: Annotated[bool, typer.Option(
        "--data", help="Also read every tensor and look for NaN/Inf values.")] = False,
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Check a model's structure (every problem, not only the first); exit 0 valid, 3 invalid."""
    output_format = output.output_format

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.validate import run_validate, stderr_progress

        return run_validate(model, output_format, data=data,
                            progress=stderr_progress(streams.stderr) if data else None)

    guarded(cli_context, run, output)


@app.command("audit", short_help="Audit a model before deploying it.")
@with_output_options
def audit_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help=f"GGUF file to audit before deploying it: {WHERE}.")],
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Audit a model before deploying it (chat template, loader-crash shapes, validate's
    checks); exit 0 no errors, 1 errors found, 3 not readable as GGUF."""
    output_format = output.output_format

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.audit import run_audit

        return run_audit(model, output_format)

    guarded(cli_context, run, output)


@app.command("diff", cls=OptionalValueCommand,
             short_help="Diff two GGUF files (two quantizations of one model).")
@with_output_options
def diff_command(
    cli_context: typer.Context,
    model_a: Annotated[str, typer.Argument(metavar="A", help=f"Reference GGUF file: {WHERE}.")],
    model_b: Annotated[str, typer.Argument(metavar="B",
                                           help="GGUF file compared with A (the same kinds).")],
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
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Diff two GGUF files (two quantizations of one model): types, bytes, metadata, values."""
    output_format = output.output_format
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

    guarded(cli_context, run, output)


@app.command("embed", short_help="Explore the token embedding.")
@with_output_options
def embed_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help=f"GGUF file whose token embedding to explore: {WHERE}.")],
    nearest: Annotated[Optional[str], typer.Option(
        "--nearest", metavar="WORD",
        help="Tokens whose rows are closest to WORD's: the whole word as in running text "
             "(▁word / Ġword); =piece for that exact vocabulary entry; a number is a "
             "token id.")] = None,
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
    keep_variants: Annotated[bool, typer.Option(
        "--keep-variants", help="Let the inputs' case, marker and plural variants (KING, "
                                "▁King, kings) be answers; they are left out by default.")] = False,
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Explore the token embedding: nearest tokens, analogies, one row, whole-matrix stats."""
    output_format = output.output_format

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.embed import run_embed

        # A question the file cannot answer raises QueryError, a UsageError: exit 2.
        return run_embed(model, output_format, nearest=nearest, analogy=analogy, token=token,
                         stats=stats, top_k=top_k, vs=vs, keep_variants=keep_variants,
                         stderr=streams.stderr)

    guarded(cli_context, run, output)


# Files loaded beside the model, spelled as llama.cpp's common/arg.cpp spells them.
LoraOption = Annotated[Optional[str], typer.Option("--lora", metavar="FILE[:SCALE][,...]", help=(
    "LoRA adapter(s) applied to the model (llama.cpp --lora / --lora-scaled)."))]
DraftOption = Annotated[Optional[str], typer.Option("--model-draft", "-md", metavar="FILE", help=(
    "Draft model for speculative decoding; its context is the main one's."))]
DraftLayersOption = Annotated[Optional[int], typer.Option("--gpu-layers-draft", "-ngld", help=(
    "Draft model layers to offload (default -1, all)."), metavar="N", show_default=False)]
MmprojOption = Annotated[Optional[str], typer.Option("--mmproj", "-mm", metavar="FILE", help=(
    "Multimodal projector loaded by mtmd."))]
NoMmprojOffload = Annotated[bool, typer.Option("--no-mmproj-offload", help="Projector on the CPU.")]


@app.command("runtime", short_help="Load with llama.cpp; check our figures against its log.")
@with_output_options
@with_llama_settings
def runtime_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help="GGUF file to load and compare: a local path (llama.cpp loads it); "
                              "with --from-log also an http(s):// or hf:// URL.")],
    settings: dict[str, Any] = {},  # replaced by one option per llama.cpp setting
    log_file: Annotated[Optional[str], typer.Option(
        "--log", metavar="FILE", help="Save llama.cpp's raw load log to FILE.")] = None,
    from_log: Annotated[Optional[str], typer.Option(
        "--from-log", metavar="FILE",
        help="Compare with a saved load log instead (no llama-cpp-python needed).")] = None,
    lora: LoraOption = None, mmproj: MmprojOption = None,
    model_draft: DraftOption = None, gpu_layers_draft: DraftLayersOption = None,
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Load the model with llama.cpp (no generation) and check our figures against its log."""
    output_format = output.output_format
    if from_log is not None and log_file is not None:
        raise typer.BadParameter("--log saves a live load's log; it cannot go with --from-log")

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.runtime import run_runtime

        return run_runtime(model, output_format, settings, log_path=log_file,
                           from_log=from_log, lora=lora, mmproj=mmproj,
                           model_draft=model_draft, gpu_layers_draft=gpu_layers_draft)

    guarded(cli_context, run, output)


@app.command("vram", short_help="Will it fit? Memory per device before deploying.")
@with_output_options
@with_llama_settings
def vram_command(
    cli_context: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help=f"GGUF file to audit: {WHERE}.")],
    gpu: Annotated[Optional[str], typer.Option(
        "--gpu", metavar="SIZE|NAME[,...]",
        help="GPU memory: a size (24GiB, 24GB, 8000MiB) or a card, several comma-separated "
             "(split by size like llama.cpp), 2xrtx3090. Cards: "
             f"{', '.join(sorted(KNOWN_GPUS_MIB))}.")] = None,
    settings: dict[str, Any] = {},  # replaced by one option per llama.cpp setting
    headroom: Annotated[Optional[str], typer.Option(
        "--headroom", metavar="SIZE", help="Memory to keep free on each GPU (default 0).",
        show_default=False)] = None,
    plan: Annotated[bool, typer.Option(
        "--plan", help="Grid: contexts 4k/8k/16k/32k/trained x largest --ngl that fits.")] = False,
    lora: LoraOption = None, mmproj: MmprojOption = None,
    model_draft: DraftOption = None, gpu_layers_draft: DraftLayersOption = None,
    no_mmproj_offload: NoMmprojOffload = False,
    fit: Annotated[str, typer.Option(
        "--fit", "-fit", metavar="on|off",
        help="Also replay llama-server's automatic fit (on by default in llama-server) for "
             "the --gpu cards and print the command line that pins it.")] = "off",
    fit_target: Annotated[Optional[str], typer.Option(
        "--fit-target", "-fitt", metavar="MiB0,MiB1,...", show_default=False,
        help="Memory --fit keeps free per GPU; one value for all (default 1024).")] = None,
    fit_ctx: Annotated[Optional[int], typer.Option(
        "--fit-ctx", "-fitc", metavar="N", min=0, show_default=False,
        help="Shortest context --fit may set (default 4096).")] = None,
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """Will it fit? Memory per device before deploying; exit 0 fits, 1 does not."""
    output_format = output.output_format

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.vram import VramOptions, run_vram

        options = VramOptions(gpu=gpu, headroom=headroom, plan=plan, settings=settings,
                              lora=lora, model_draft=model_draft,
                              gpu_layers_draft=gpu_layers_draft, mmproj=mmproj,
                              mmproj_offload=not no_mmproj_offload, fit=fit,
                              fit_target=fit_target, fit_ctx=fit_ctx)
        return run_vram(model, output_format, options)  # a bad --gpu: UsageError, exit 2

    guarded(cli_context, run, output)


@app.command("scan", short_help="One row per model over a shelf of models.")
@with_output_options
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
    output: OutputChoice = None,  # type: ignore[assignment]  # --json --markdown ...
) -> None:
    """One row per model over a shelf of models, headers only; bad files are listed, not fatal.

    Exit 0 when every model was read, 3 when any file is invalid, else 4 when any could not be
    read."""
    output_format = output.output_format
    from gguf_inspect.reports.scan import SORT_KEYS

    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"expected one of {', '.join(SORT_KEYS)}; got {sort!r}",
                                 param_hint="--sort")

    def run(streams: Streams) -> tuple[str, int]:
        from gguf_inspect.commands.scan import run_scan, stderr_progress

        return run_scan(locations, output_format, recursive=recursive, sort=sort,
                        reverse=reverse, jobs=jobs, progress=stderr_progress(streams.stderr))

    guarded(cli_context, run, output)


def main(args: Optional[list[str]] = None, streams: Optional[Streams] = None) -> None:
    """Console-script entry point; ``args`` and ``streams`` default to the process's own."""
    app(args, obj=streams)


if __name__ == "__main__":  # pragma: no cover
    main()
