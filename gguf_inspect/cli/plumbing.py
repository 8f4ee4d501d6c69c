"""The CLI's plumbing: the click classes that route the default command and the optional
``--values`` word, the options every command shares, the options generated from llama.cpp's
settings table, the streams, and the guard that turns a command body's result or error into
printed text and an exit code.

Kept apart from ``cli/__init__.py`` so that the command definitions read as a list of commands.
Why signatures are rewritten (``expand_parameter``): typer reads a command's options from its
Python signature, and a repeated block of the same options in every command is what this
replaces; one decorator per shared block keeps each option defined once.
"""

from __future__ import annotations

import functools
import inspect
import traceback as traceback_module
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from gguf_inspect.commands import OutputFormat, Streams, writing_to
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


JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
MarkdownOption = Annotated[bool, typer.Option("--markdown", help="Markdown tables.")]
TracebackOption = Annotated[bool, typer.Option("--traceback", help="Show the stack on errors.")]
DEFAULT_TIMEOUT = 120.0  # gguf/source.py's DEFAULT_DEADLINE; the README states it


def _use_timeout(seconds: float) -> float:
    from gguf_inspect.gguf.source import set_deadline

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
            output: "OutputChoice") -> None:
    """Run a command body with the streams; print the text it returns and exit with its code,
    or print one ``error:`` line for a failure and exit with that failure's code."""
    streams = streams_of(cli_context)
    try:
        with writing_to(streams.stdout):
            text, code = action(streams)
    except (GGUFError, LookupError, OSError) as error:
        if output.show_traceback:
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
        annotation: object = Annotated[bool, typer.Option(row.option, *row.aliases,
                                                          help=row.help_text())]
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
        row.option, *row.aliases, help=row.help_text(), show_default=False, **extra)]
    return inspect.Parameter(row.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=annotation)


def print_error(streams: Streams, message: str) -> None:
    """One ``error:`` line on stderr: escaped (messages quote file content), a URL's password
    redacted."""
    from gguf_inspect.gguf.source import redact_url
    from gguf_inspect.render.text import escape_terminal

    streams.stderr.write(f"error: {escape_terminal(redact_url(message))}\n")
    streams.stderr.flush()


def expand_parameter(name: str, parameters: list[inspect.Parameter],
                     gather: Callable[[dict[str, Any]], Any]
                     ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator that shows typer ``parameters`` where the command has parameter ``name``
    and calls the command with ``name`` = ``gather(the values given for them)``."""
    names = [parameter.name for parameter in parameters]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        shown: list[inspect.Parameter] = []
        for parameter in signature.parameters.values():
            if parameter.name == name:
                shown += parameters
            elif shown:  # typer passes every parameter by name
                shown.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            else:
                shown.append(parameter)

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> None:
            taken = {key: kwargs.pop(key) for key in names}
            command(**{name: gather(taken)}, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in shown}
        return wrapper

    return decorate


def _keyword(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


@dataclass(frozen=True)
class OutputChoice:
    """What the shared options asked for: the output format and whether to show stacks."""

    output_format: OutputFormat
    show_traceback: bool


def _output_choice(given: dict[str, Any]) -> OutputChoice:
    return OutputChoice(pick_format(given["as_json"], given["as_markdown"]),
                        given["show_traceback"])


# --json, --markdown, --traceback, --timeout on every command, handed over as ``output``.
with_output_options = expand_parameter("output", [
    _keyword("as_json", JsonOption, False), _keyword("as_markdown", MarkdownOption, False),
    _keyword("show_traceback", TracebackOption, False),
    _keyword("timeout", TimeoutOption, DEFAULT_TIMEOUT)], _output_choice)


def _given_settings(given: dict[str, Any]) -> dict[str, Any]:
    for row in SETTINGS:
        if row.off_switch:  # the flag given means the setting is off
            given[row.name] = False if given[row.name] else None
    return given


# One option per llama.cpp setting (``SETTINGS``, the one table shared by ``runtime`` and
# ``vram``), handed over as ``settings``: a dict of LlamaSettings fields, None where not given.
with_llama_settings = expand_parameter(
    "settings", [_setting_parameter(row) for row in SETTINGS], _given_settings)
