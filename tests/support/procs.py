"""Whether a process (known by pid and start time) is gone, zombies included; a crash of a
process the test started."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from ocfs2lab.vm.ownership import proc_start_time
from ocfs2lab.wait import wait_until


def state(pid: int) -> str:
    """The process's state letter (``R``, ``S``, ``Z``, ...), ``X`` when it does not exist."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        return "X"
    return "?"


def gone(pid: int, start: int | None) -> bool:
    """True when that process no longer runs: no such pid, another process with the pid, or
    a zombie not yet reaped (this machine's init may be slow to reap orphans)."""
    return proc_start_time(pid) != start or state(pid) in ("Z", "X")


def sigkill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str) -> None:
    """SIGKILL ``proc`` (a process the test started) by its pid once ``ready()``, as a crash
    would; fails if it ended before. It is reaped whatever happens."""
    try:
        wait_until(lambda: proc.poll() is not None or ready(), what=what, timeout=600)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
