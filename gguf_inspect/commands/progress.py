"""One progress display for the long-running commands (diff --values, embed, validate --data).

The reports report progress through callbacks; this turns those reports into a line on stderr:
silent until the command has run ``delay`` seconds (quick runs print nothing), then redrawn in
place on a terminal, or, into a file or pipe, one line per ``step`` of the work so logs stay
readable. Work done in several passes (hash, then compare; file A, then file B) gets a fresh line
per pass from ``PhasedProgress``, with the delay counted once from the command's start.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class ProgressLine:
    """A progress line on a stream; ``show(text, fraction)`` as work advances, ``finish()`` at the end."""

    def __init__(self, stream: TextIO | None = None, delay: float = 1.0, step: float = 0.1,
                 clock: Callable[[], float] | None = None, started: float | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.step = step
        self.clock = clock or time.monotonic
        self.started = self.clock() if started is None else started
        self.interactive = self.stream.isatty()
        self.next_fraction = 0.0  # not on a terminal: the fraction of the next line
        self.redrawing = False

    def show(self, text: str, fraction: float) -> None:
        if self.clock() - self.started < self.delay:
            return
        if self.interactive:
            self.stream.write(f"\r\x1b[2K{text}")
            self.redrawing = True
            if fraction >= 1.0:
                self.finish()
        elif fraction >= self.next_fraction:
            self.stream.write(text + "\n")
            self.next_fraction = (int(fraction / self.step) + 1) * self.step
        self.stream.flush()

    def finish(self) -> None:
        """End a redrawn line so that whatever follows starts on a fresh line."""
        if self.redrawing:
            self.stream.write("\n")
            self.stream.flush()
            self.redrawing = False


class PhasedProgress:
    """Progress of work in passes: a new ``phase`` (or a fraction going back down) starts a fresh
    ProgressLine, so a log shows every pass from its start; the delay runs from construction."""

    def __init__(self, stream: TextIO | None = None, delay: float = 1.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.line: ProgressLine | None = None
        self.phase: object = None
        self.fraction = 0.0

    def show(self, phase: object, text: str, fraction: float) -> None:
        if self.line is None or phase != self.phase or fraction < self.fraction:
            self.finish()
            self.line = ProgressLine(self.stream, delay=self.delay, clock=self.clock,
                                     started=self.started)
        self.phase, self.fraction = phase, fraction
        self.line.show(text, fraction)

    def finish(self) -> None:
        if self.line is not None:
            self.line.finish()
