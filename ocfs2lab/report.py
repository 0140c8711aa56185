"""Progress reporting: one reporter that long operations talk to.

The library never prints. Long operations (image builds, boots, deployments) tell a
[`Reporter`][ocfs2lab.report.Reporter] which phase they are in and how far along; the default one
logs, the CLI renders one with rich, a notebook may collect the phases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from attrs import define, field

log = logging.getLogger("ocfs2lab.progress")


class Reporter(Protocol):
    """Receives progress from long operations."""

    def phase_started(self, name: str, total: float | None = None) -> None:
        """A named phase begins; ``total`` is its size in work units when known."""
        ...

    def advance(self, name: str, done: float, message: str = "") -> None:
        """``done`` units of phase ``name`` are complete; ``message`` says what is happening."""
        ...

    def phase_ended(self, name: str, seconds: float, ok: bool) -> None:
        """Phase ``name`` ended after ``seconds``, successfully or not."""
        ...


@define
class LogReporter:
    """The default reporter: progress goes to the ``ocfs2lab.progress`` logger.

    It also keeps the duration of every phase, so scripts can print a breakdown.
    """

    durations: dict[str, float] = field(factory=dict)
    #: Seconds between two INFO lines of progress within one phase (DEBUG gets every one).
    interval: float = 15.0
    _last: dict[str, float] = field(factory=dict, init=False, repr=False)

    def phase_started(self, name: str, total: float | None = None) -> None:
        """Log the start of a phase."""
        self._last[name] = time.monotonic()
        log.info("%s ...", name)

    def advance(self, name: str, done: float, message: str = "") -> None:
        """Log progress within a phase: every step at DEBUG, one line per ``interval`` at
        INFO (a long compile says how far it is)."""
        now = time.monotonic()
        if now - self._last.get(name, 0.0) >= self.interval:
            self._last[name] = now
            log.info("%s: %s", name, message or done)
        else:
            log.debug("%s: %s %s", name, done, message)

    def phase_ended(self, name: str, seconds: float, ok: bool) -> None:
        """Log the end of a phase and keep its duration."""
        self.durations[name] = self.durations.get(name, 0.0) + seconds
        log.info("%s %s in %.1f s", name, "done" if ok else "FAILED", seconds)


def show_progress(level: int = logging.INFO) -> None:
    """Print the library's progress (phases, and how far long ones are) to standard error.

    One line in a script or notebook: ``ocfs2lab.show_progress()``. It sets up logging for
    the ``ocfs2lab`` loggers only (time, message), once; the library itself never prints.
    """
    logger = logging.getLogger("ocfs2lab")
    if not any(getattr(h, "_ocfs2lab_progress", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._ocfs2lab_progress = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)


@contextmanager
def phase(reporter: Reporter, name: str, total: float | None = None) -> Iterator[None]:
    """Report a phase around a block, ending it as failed when the block raises."""
    started = time.monotonic()
    reporter.phase_started(name, total)
    ok = False
    try:
        yield
        ok = True
    finally:
        reporter.phase_ended(name, time.monotonic() - started, ok)


@define
class Prefixed:
    """A reporter that passes phases on to another with a prefix (``"vm: boot"``), so two
    parts of one job that share phase names keep their own durations."""

    inner: Reporter
    prefix: str

    def phase_started(self, name: str, total: float | None = None) -> None:
        """Pass the start on."""
        self.inner.phase_started(self.prefix + name, total)

    def advance(self, name: str, done: float, message: str = "") -> None:
        """Pass progress on."""
        self.inner.advance(self.prefix + name, done, message)

    def phase_ended(self, name: str, seconds: float, ok: bool) -> None:
        """Pass the end on."""
        self.inner.phase_ended(self.prefix + name, seconds, ok)
