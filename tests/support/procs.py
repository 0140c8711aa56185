"""Whether a process (known by pid and start time) is gone, zombies included."""

from __future__ import annotations

from pathlib import Path

from ocfs2lab.vm.qemu import proc_start_time


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
