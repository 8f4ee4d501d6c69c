"""The shared progress line: silent before the delay, steps in a log, one redrawn line on a tty."""

from __future__ import annotations

import io

from gguf_inspect.commands.progress import PhasedProgress, ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_before_the_delay_then_one_line_per_step() -> None:
    clock, stream = Clock(), io.StringIO()
    line = ProgressLine(stream, delay=1.0, step=0.25, clock=clock)
    line.show("early", 0.1)
    clock.now = 2.0
    for fraction in (0.2, 0.3, 0.5, 0.6, 1.0):
        line.show(f"at {fraction}", fraction)
    assert stream.getvalue().splitlines() == ["at 0.2", "at 0.3", "at 0.5", "at 1.0"]


def test_a_terminal_gets_one_redrawn_line_ended_once() -> None:
    stream = Terminal()
    line = ProgressLine(stream, delay=0.0)
    line.show("half", 0.5)
    line.show("done", 1.0)
    line.finish()
    assert stream.getvalue() == "\r\x1b[2Khalf\r\x1b[2Kdone\n"


def test_each_pass_gets_a_fresh_line_and_the_delay_counts_once() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = PhasedProgress(stream, delay=1.0, clock=clock)
    progress.show("read", "read 50%", 0.5)  # inside the first second: silent
    clock.now = 1.5
    progress.show("read", "read 100%", 1.0)
    progress.show("compare", "compare 0%", 0.0)  # a new pass starts from 0%
    progress.show("compare", "compare 100%", 1.0)
    progress.show("compare", "again 10%", 0.1)  # the same label going back down: a new pass
    assert stream.getvalue().splitlines() == ["read 100%", "compare 0%", "compare 100%",
                                              "again 10%"]
