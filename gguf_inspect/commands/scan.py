"""The ``scan`` command's body: find the models, read their headers (remote ones concurrently,
at most ``jobs`` at a time), turn each into a row or a listed failure, render, pick the exit code.

From Python: ``run_scan(["fixtures/"], OutputFormat.JSON)`` returns ``(text, exit_code)``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence, TextIO

from gguf_inspect.commands import CommandResult, OutputFormat, render
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.core.errors import GGUFError, error_message, exit_code_for
from gguf_inspect.render.scan import scan_json, scan_sections
from gguf_inspect.reports.scan import ScanFailure, ScanRow, build_report, scan_row
from gguf_inspect.gguf.open import read_gguf
from gguf_inspect.gguf.source import is_remote, redact_url
from gguf_inspect.gguf.split import shard_group

DEFAULT_JOBS = 8
Progress = Callable[[int, int, str, bool], None]  # (done, total, location, ok)


def find_models(locations: Sequence[str], recursive: bool = False) -> list[str]:
    """The model locations to scan, in the order given: folders expand to their ``*.gguf``
    files (sorted; with ``recursive`` the whole tree), and the shards of one split model
    collapse into their first-named location (which opens them all)."""
    found: list[str] = []
    for location in locations:
        if not is_remote(location) and os.path.isdir(location):
            pattern = "**/*.gguf" if recursive else "*.gguf"
            found += sorted(str(path) for path in Path(location).glob(pattern) if path.is_file())
        else:
            found.append(location)  # a missing file becomes a listed failure
    seen: set[str] = set()
    unique = []
    for location in found:
        group = shard_group(location)
        if group not in seen:
            seen.add(group)
            unique.append(location)
    return unique


def scan_location(location: str) -> ScanRow | ScanFailure:
    """Read one model's header and make its row; any failure becomes a listed failure."""
    shown = redact_url(location)  # a password in a URL is never part of any output
    try:
        return scan_row(shown, read_gguf(location))
    except (GGUFError, LookupError, OSError) as error:  # the exit code it would give alone
        return ScanFailure(shown, redact_url(error_message(error)), exit_code_for(error))


def scan_all(locations: Sequence[str], jobs: int = DEFAULT_JOBS,
             progress: Progress | None = None) -> list[ScanRow | ScanFailure]:
    """Every location's result, in input order; up to ``jobs`` read at once (threads: the work
    is waiting on the network or the disk)."""
    results: list[ScanRow | ScanFailure | None] = [None] * len(locations)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(scan_location, location): index
                   for index, location in enumerate(locations)}
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            results[index] = future.result()
            if progress is not None:
                progress(done, len(locations), redact_url(locations[index]),
                         isinstance(results[index], ScanRow))
    return [result for result in results if result is not None]


def stderr_progress(stream: TextIO) -> Progress:
    """One line per model read, on ``stream`` (locations escaped: they may come from a server)."""
    from gguf_inspect.render.text import escape_terminal

    def show(done: int, total: int, location: str, ok: bool) -> None:
        state = "ok" if ok else "failed"
        shown = escape_terminal(redact_url(location))
        stream.write(f"scan [{done}/{total}] {state}: {shown}\n")
        stream.flush()

    return show


def run_scan(locations: Sequence[str], output_format: OutputFormat | str, *,
             recursive: bool = False, sort: str = "location", reverse: bool = False,
             jobs: int = DEFAULT_JOBS, progress: Progress | None = None) -> CommandResult:
    """The scan: rows and failures rendered; exit 0 when every model was read, else the exit
    code of the failures (3 when any file is invalid, else 4 for I/O)."""
    models = find_models(locations, recursive)
    results = scan_all(models, jobs, progress)
    rows = [result for result in results if isinstance(result, ScanRow)]
    failures = [result for result in results if isinstance(result, ScanFailure)]
    report = build_report(rows, failures, sort, reverse)
    code = ExitCode.OK
    if failures:
        codes = {failure.exit_code for failure in failures}
        code = ExitCode.INVALID if ExitCode.INVALID in codes else min(codes)
    return render(report, output_format, scan_json, scan_sections), code
