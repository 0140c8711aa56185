"""Run commands on this machine through the ``sh`` package."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sh

from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, as_bytes, validate_call

log = logging.getLogger(__name__)

#: Exit codes that never make ``sh`` raise: every exit status and every signal. Checking is
#: ours (``CommandResult.check``), so results look the same on every transport.
_ALL_CODES = tuple(range(-64, 256))

#: Exit status a shell reports for a program it cannot find / cannot execute.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


class _GroupKiller:
    """Kills a command's process group with SIGKILL when its timeout passes.

    ``sh``'s own ``_timeout`` signals only the pid and polls every 0.1 s, which adds about
    100 ms to every command; a timer that fires once is both faster and kills the children
    that hold the output pipes (``sh -c 'sleep 300; ...'``) along with the command.
    """

    def __init__(self, pid: int, timeout: float) -> None:
        self.pid = pid
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            # The command runs in its own session, so its process group id is its pid; the
            # group id stays reserved while any member lives, so this cannot hit a stranger.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            log.debug("local: timeout, killed process group %d", self.pid)

    def finish(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """Feed stdin in large chunks: ``sh`` writes plain bytes 1 KiB at a time, which is slow."""
    return (data[i : i + size] for i in range(0, len(data), size))


class LocalRunner:
    """Runs argv lists on this machine.

    Each command runs in a new session (its own process group) with ``os.environ`` plus the
    call's ``env``; stdout and stderr are captured as raw bytes. At the timeout the whole
    process group is killed with SIGKILL.
    """

    def __init__(self) -> None:
        self._closed = False

    @property
    def where(self) -> str:
        """Always ``"local"``."""
        return "local"

    def __repr__(self) -> str:
        return "LocalRunner()"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` here and wait for it.

        A program that cannot be found gives exit status 127 (126 when it exists but is not
        executable), as a shell would, instead of an exception of its own.

        Raises:
            SpecError: The call itself is malformed (string argv, empty argv, timeout <= 0).
            CommandFailed: ``check`` and a non-zero exit.
            CommandTimeout: ``check`` and the timeout passed (the process group was killed).
        """
        args = validate_call(argv, timeout, env)
        data = as_bytes(input)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        log.debug("local: run %r (timeout %gs)", args, timeout)
        start = time.monotonic()
        try:
            command = sh.Command(args[0])
        except sh.CommandNotFound:
            code = EXIT_NOT_FOUND
            if "/" in args[0] and os.path.exists(args[0]):
                code = EXIT_NOT_EXECUTABLE
            reason = "Permission denied" if code == EXIT_NOT_EXECUTABLE else "command not found"
            return self._not_runnable(args, code, reason, start, check=check, timeout=timeout)
        try:
            running = self._start(command, args, data, full_env)
        except sh.ForkException as exc:
            # exec itself failed: a script whose interpreter is missing (ENOENT), an
            # unknown binary format (ENOEXEC)... Reported as a shell would (127 / 126).
            text = str(exc).strip().splitlines()
            reason = text[-1].strip() if text else "cannot execute"
            code = EXIT_NOT_FOUND if "No such file" in reason else EXIT_NOT_EXECUTABLE
            return self._not_runnable(args, code, reason, start, check=check, timeout=timeout)
        process = running.process
        killer = _GroupKiller(process.pid, timeout)
        try:
            running.wait()
        finally:
            killer.finish()
        timed_out = killer.fired
        exit_code = process.exit_code
        result = CommandResult(
            argv=args,
            exit_code=exit_code if exit_code is not None else -signal.SIGKILL,
            stdout_bytes=bytes(process.stdout),
            stderr_bytes=bytes(process.stderr),
            duration=time.monotonic() - start,
            where=self.where,
            timed_out=timed_out,
        )
        log.debug(
            "local: %r -> %d%s in %.3fs (%d+%d bytes out)",
            args,
            result.exit_code,
            " (timed out)" if timed_out else "",
            result.duration,
            len(result.stdout_bytes),
            len(result.stderr_bytes),
        )
        return result.check(timeout=timeout) if check else result

    @staticmethod
    def _start(command: Any, args: tuple[str, ...], data: bytes | None, env: dict[str, str]) -> Any:
        """Start the command in the background in its own session; output kept as bytes."""
        return command(
            *args[1:],
            _bg=True,
            _bg_exc=False,
            _return_cmd=True,
            _in=_chunks(data) if data else b"",
            _env=env,
            _new_session=True,
            _ok_code=_ALL_CODES,
            _tty_in=False,
            _tty_out=False,
            _out_bufsize=65536,
            _err_bufsize=65536,
            _close_fds=True,
        )

    def _not_runnable(
        self,
        args: tuple[str, ...],
        code: int,
        reason: str,
        start: float,
        *,
        check: bool,
        timeout: float,
    ) -> CommandResult:
        result = CommandResult(
            argv=args,
            exit_code=code,
            stderr_bytes=f"{args[0]}: {reason}\n".encode(),
            duration=time.monotonic() - start,
            where=self.where,
        )
        log.debug("local: %r -> %d (%s)", args, code, reason)
        return result.check(timeout=timeout) if check else result

    def close(self) -> None:
        """Nothing to release; idempotent."""
        self._closed = True

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
