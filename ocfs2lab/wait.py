"""Waiting on conditions with deadlines: the library never sleeps a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ocfs2lab.errors import WaitTimeout

T = TypeVar("T")


class Deadline:
    """A point in time after which a wait gives up (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()
        self.end = self.start + seconds

    @property
    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.end

    @property
    def elapsed(self) -> float:
        """Seconds since the deadline was created."""
        return time.monotonic() - self.start


def wait_until(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    max_interval: float = 2.0,
    hint: str | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, or give up at the deadline.

    The probe may raise to end the wait at once (a VM that exited, a kernel oops); the
    exception propagates. Poll intervals grow gently from ``interval`` up to
    ``max_interval``.

    Args:
        probe: Returns a truthy value when the condition holds (that value is returned), or a
            falsy one (kept as the last observation when it is not None).
        what: The condition in words, for the error.
        timeout: Seconds to wait at most.
        interval: First pause between probes.
        max_interval: Longest pause between probes.
        hint: What to do next, put in the error.

    Returns:
        The probe's first truthy value.

    Raises:
        WaitTimeout: The condition did not hold before the deadline.
    """
    deadline = Deadline(timeout)
    last: object = None
    pause = interval
    while True:
        value = probe()
        if value:
            return value
        if value is not None:
            last = value
        if deadline.expired:
            raise WaitTimeout(what, timeout, last, hint=hint)
        time.sleep(min(pause, deadline.remaining))
        pause = min(pause * 1.5, max_interval)
