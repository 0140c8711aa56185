"""Long-lived processes the lab starts on this machine: switches, daemons, helpers.

``Runner.run`` runs a command to completion. Some processes must outlive any one call (a
VDE switch, a test's private sshd or dockerd): [`spawn`][ocfs2lab.runner.process.spawn] starts one
in a session of its own with its output in a log file and returns a
[`Spawned`][ocfs2lab.runner.process.Spawned] that knows it by pid and stops it by that pid only
(SIGTERM, then SIGKILL after a grace period). Nothing here ever signals a process by name.

With ``stdin_pipe=True`` the process reads a pipe that only this process holds open: when
the owner dies, even by SIGKILL, the pipe closes and a process that exits on end of input
(``vde_switch`` does) ends with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from ocfs2lab.errors import SpawnError, SpecError

log = logging.getLogger(__name__)


class Spawned:
    """A process started by [`spawn`][ocfs2lab.runner.process.spawn], stopped by its own pid.

    Args:
        argv: The command.
        process: The running process.
        log_path: Where its stdout and stderr go.
        name: Short name for messages.
    """

    def __init__(
        self, argv: Sequence[str], process: subprocess.Popen[bytes], log_path: Path, name: str
    ) -> None:
        self.argv = list(argv)
        self.process = process
        self.log_path = log_path
        self.name = name
        self.started = time.time()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.exit_code}"
        return f"Spawned({self.name!r}, pid={self.pid}, {state})"

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """Its exit status once it ended (negative: the signal that ended it)."""
        return self.process.poll()

    def log_text(self, tail: int = 4000) -> str:
        """The end of its log."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for it to end; its status, or ``None``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> int | None:
        """Stop it: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

        Idempotent. The group is the process's own session (started with a new session),
        and the process is not reaped before this returns, so its group id cannot belong
        to anyone else.

        Returns:
            Its exit status.
        """
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            if self.wait(grace) is None:
                log.warning("%s (pid %d): no exit after SIGTERM; SIGKILL", self.name, self.pid)
                self._signal(signal.SIGKILL)
                self.wait(30.0)
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        return self.process.poll()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def __enter__(self) -> Spawned:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def spawn(
    argv: Sequence[str],
    *,
    log_path: str | os.PathLike[str],
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stdin_pipe: bool = False,
) -> Spawned:
    """Start a long-lived process in its own session.

    Args:
        argv: The command (a list; never a shell string).
        log_path: File that receives its stdout and stderr (appended).
        name: Short name for messages (default: the program's name).
        env: Extra environment variables.
        cwd: Working directory.
        stdin_pipe: Give it a pipe as stdin that stays open while this process lives.

    Returns:
        The running process.

    Raises:
        SpecError: ``argv`` is empty or not a list of strings.
        SpawnError: The program cannot be started.
    """
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise SpecError("argv", repr(argv)[:80], "must be a non-empty list of strings")
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    label = name or Path(argv[0]).name
    full_env = {**os.environ, **(env or {})}
    with path.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as err:
            raise SpawnError(
                f"cannot start {label}: {err}", hint=f"is {argv[0]} installed?"
            ) from err
    spawned = Spawned(argv, proc, path, label)
    log.info("started %s (pid %d): %s", label, proc.pid, " ".join(argv))
    return spawned
