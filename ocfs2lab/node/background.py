"""Processes that run on a node in the background while the lab does other things.

``Node.run`` waits for a command to end. A workload writer must keep running while a fault
is injected: [`RemoteProcess.start`][ocfs2lab.node.background.RemoteProcess.start] starts it
detached (its own session, output to a log file on the node, stdin from ``/dev/null``), returns at
once with its pid on the node, and
[`RemoteProcess.stop`][ocfs2lab.node.background.RemoteProcess.stop] ends it by that pid (SIGTERM,
then SIGKILL).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ocfs2lab.errors import HostError, Ocfs2LabError, SpecError
from ocfs2lab.node.base import Node
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)

# Fields of /proc/PID/stat after the command name: $1 is the state, ${20} the start time
# (clock ticks since boot), which tells the process from a later one with the same pid.
_STAT = 's=$(cat "/proc/$pid/stat" 2>/dev/null) || exit 1; s=${s##*) }; set -- $s'
# $1: the log file; the rest: the command. setsid gives it a session of its own, so it
# survives the end of the command channel (an ssh session, a docker exec). Prints its pid
# and start time.
_START = (
    'log=$1; shift; setsid "$@" >"$log" 2>&1 </dev/null & pid=$!; '
    's=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo "$pid"; exit 0; }; '
    's=${s##*) }; set -- $s; echo "$pid ${20}"'
)
# $1 pid, $2 start time: exit 0 while that very process lives (not a zombie).
_ALIVE = "pid=$1; want=$2; " + _STAT + '; test "$1" != Z && test "${20}" = "$want"'
# $1 pid, $2 start time, $3 signal: signal that very process only.
_SIGNAL = (
    "pid=$1; want=$2; sig=$3; " + _STAT + '; test "$1" != Z && test "${20}" = "$want" '
    '&& kill -"$sig" "$pid"'
)


class RemoteProcess:
    """A process started in the background on a node.

    Args:
        node: Where it runs.
        pid: Its pid on the node.
        argv: Its command.
        log_path: Its output file on the node.
        start: Its start time on the node (``/proc/PID/stat``), which the pid alone does
            not identify once the process ended; empty when it had ended at once.
    """

    def __init__(
        self, node: Node, pid: int, argv: Sequence[str], log_path: str, start: str = ""
    ) -> None:
        self.node = node
        self.pid = pid
        self.start_time = start
        self.argv = list(argv)
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"RemoteProcess({self.node.spec.name}, pid={self.pid}, {self.argv[:2]})"

    @classmethod
    def start(cls, node: Node, argv: Sequence[str], *, log_path: str) -> RemoteProcess:
        """Start ``argv`` on ``node`` in the background.

        Args:
            node: The node.
            argv: The command (a list, never a shell string).
            log_path: File on the node that receives its output.

        Returns:
            The running process.

        Raises:
            SpecError: An empty command.
            HostError: The node printed no pid.
            CommandFailed: The starting shell failed.
        """
        if not argv:
            raise SpecError("argv", list(argv), "must name a command")
        res = node.run(["sh", "-c", _START, "sh", log_path, *argv], timeout=60)
        words = res.stdout.split()
        if not words or not all(w.isdigit() for w in words):
            raise HostError(f"{node.spec.name}: no pid from starting {argv[0]}: {res.stdout!r}")
        log.debug("%s: started %s as pid %s", node.spec.name, argv[0], words[0])
        return cls(node, int(words[0]), argv, log_path, words[1] if len(words) > 1 else "")

    def alive(self) -> bool:
        """True while the process runs on the node (False also when the node is gone)."""
        if not self.start_time:
            return False
        try:
            argv = ["sh", "-c", _ALIVE, "sh", str(self.pid), self.start_time]
            return self.node.run(argv, check=False, timeout=30).ok
        except Ocfs2LabError:
            return False

    def signal(self, name: str = "TERM") -> bool:
        """Send a signal (``TERM``, ``KILL``, ...) to the process; False if it is gone.

        Only the process started here is signalled: a later process that got the same pid
        has another start time and is left alone.
        """
        if not self.start_time or not name.isalnum():
            return False
        argv = ["sh", "-c", _SIGNAL, "sh", str(self.pid), self.start_time, name]
        return self.node.run(argv, check=False, timeout=30).ok

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds for it to end, then SIGKILL.

        Raises:
            WaitTimeout: It survived SIGKILL.
        """
        if not self.signal("TERM"):
            return
        try:
            wait_until(
                lambda: not self.alive() or None,
                what=f"pid {self.pid} on {self.node.spec.name} to end",
                timeout=grace,
                interval=0.2,
            )
            return
        except Ocfs2LabError:
            log.warning("%s: pid %d ignored SIGTERM; SIGKILL", self.node.spec.name, self.pid)
        self.signal("KILL")
        wait_until(
            lambda: not self.alive() or None,
            what=f"pid {self.pid} on {self.node.spec.name} to die",
            timeout=30,
            interval=0.2,
        )

    def output(self) -> str:
        """Its output so far (the log file on the node)."""
        return self.node.get_file(self.log_path).decode(errors="replace")
