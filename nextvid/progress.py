"""Progress a person can follow for long commands: done/total, elapsed, rate and ETA.

On a terminal, one line redrawn in place (at most every `tty_every_s`); elsewhere (the workflow's
log files, SLURM output) a log line at most every `every_s` seconds and at least 5 % of the elapsed
time apart, so a 10-minute job logs ~20 lines and a 10-hour one a few dozen more, never one per step.
The first and last updates are always logged. Every long command uses this one helper.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Optional, TextIO

log = logging.getLogger("nextvid.progress")


def duration(seconds: float) -> str:
    """1h02m, 3m05s, 42s."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """`update(done, text)` after each unit of work; `close()` at the end (also as a context manager).
    `enabled=False` silences it (e.g. ranks other than 0)."""

    def __init__(
        self,
        total: int,
        what: str,
        unit: str = "steps",
        enabled: bool = True,
        every_s: float = 30.0,
        tty_every_s: float = 0.5,
        stream: Optional[TextIO] = None,
        start: int = 0,
        clock=time.monotonic,
    ):
        self.total, self.what, self.unit, self.enabled = total, what, unit, enabled
        self.every_s, self.tty_every_s = every_s, tty_every_s
        self.stream = stream or sys.stderr
        self.tty = enabled and self.stream.isatty()
        self.clock = clock
        self.started = clock()
        self.start = start  # work done before this process (a resumed run): not counted in the rate
        self.last_shown: Optional[float] = None
        self.done = start
        self.last_line = ""

    def line(self, done: int, text: str = "") -> str:
        elapsed = self.clock() - self.started
        new = done - self.start
        rate = new / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.what}: {done}/{self.total} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * done / self.total:.0f}%)"
        parts.append(f"elapsed {duration(elapsed)}")
        if rate > 0:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s per {self.unit.rstrip('s')}")
            if self.total and done < self.total:
                parts.append(f"ETA {duration((self.total - done) / rate)}")
        return ", ".join(parts) + (f" | {text}" if text else "")

    def update(self, done: int, text: str = "") -> None:
        self.done = done
        if not self.enabled:
            return
        now = self.clock()
        last = done >= self.total
        if self.tty:
            if last or self.last_shown is None or now - self.last_shown >= self.tty_every_s:
                self.stream.write(f"\r{self.line(done, text)}\033[K")
                self.stream.flush()
                self.last_shown = now
            return
        gap = max(self.every_s, 0.05 * (now - self.started))
        if last or self.last_shown is None or now - self.last_shown >= gap:
            self.last_line = self.line(done, text)
            log.info("%s", self.last_line)
            self.last_shown = now

    def close(self) -> None:
        if self.enabled and self.tty and self.last_shown is not None:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
