"""The command layer's contract: one ``Runner`` protocol and its frozen ``CommandResult``.

This is the only layer that starts processes. Every other layer receives a runner and hands
it argv lists: never a shell string built from input.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from attrs import field, frozen

from ocfs2lab.errors import CommandFailed, CommandTimeout, SpecError

#: Timeout used when a caller does not give one. Guests run under software emulation here,
#: so it is generous; every call still has one.
DEFAULT_TIMEOUT = 120.0


def decode(data: bytes) -> str:
    """Decode command output safely: invalid UTF-8 becomes U+FFFD, never an exception."""
    return data.decode("utf-8", errors="replace")


def _argv_tuple(argv: Iterable[str]) -> tuple[str, ...]:
    """Converter for ``CommandResult.argv`` (a typed one: mypy cannot type ``tuple`` itself)."""
    return tuple(argv)


@frozen
class CommandResult:
    """What one command did.

    Attributes:
        argv: The command as run.
        exit_code: Its exit status (negative: killed by that signal; for a timeout, the
            status the transport saw after killing it).
        stdout_bytes: Raw standard output.
        stderr_bytes: Raw standard error.
        duration: Wall time in seconds, measured by the caller's clock.
        where: The transport and machine it ran on (``"local"``, ``"ssh:root@127.0.0.1:2222"``).
        timed_out: True when the command hit its timeout and was killed.
    """

    argv: tuple[str, ...] = field(converter=_argv_tuple)
    exit_code: int
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""
    duration: float = 0.0
    where: str = "local"
    timed_out: bool = False

    def __attrs_post_init__(self) -> None:
        if _observers:
            end = time.monotonic()
            for observer in list(_observers):
                observer(self, end - self.duration, end)

    @property
    def stdout(self) -> str:
        """Standard output decoded as UTF-8 (invalid bytes replaced)."""
        return decode(self.stdout_bytes)

    @property
    def stderr(self) -> str:
        """Standard error decoded as UTF-8 (invalid bytes replaced)."""
        return decode(self.stderr_bytes)

    @property
    def ok(self) -> bool:
        """True when the command exited 0 and did not time out."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def command_line(self) -> str:
        """The argv as a shell-quoted line, for messages only."""
        return shlex.join(self.argv)

    def check(self, *, timeout: float | None = None, hint: str | None = None) -> CommandResult:
        """Return self when the command succeeded.

        Raises:
            CommandTimeout: It timed out.
            CommandFailed: It exited non-zero.
        """
        if self.timed_out:
            raise CommandTimeout(self, timeout if timeout is not None else self.duration, hint=hint)
        if self.exit_code != 0:
            raise CommandFailed(self, hint=hint)
        return self


#: Called with (result, start, end) on the monotonic clock for every finished command.
CommandObserver = Callable[["CommandResult", float, float], None]
_observers: list[CommandObserver] = []


@contextmanager
def watch_commands() -> Iterator[list[tuple[float, float, tuple[str, ...]]]]:
    """Collect ``(start, end, argv)`` of every command any runner finishes in the block.

    Benchmarks use it to tell time spent waiting on commands from the library's own time.
    """
    seen: list[tuple[float, float, tuple[str, ...]]] = []

    def observe(result: CommandResult, start: float, end: float) -> None:
        seen.append((start, end, result.argv))

    _observers.append(observe)
    try:
        yield seen
    finally:
        _observers.remove(observe)


def busy_seconds(spans: Sequence[tuple[float, float, object]]) -> float:
    """Length of the union of ``(start, end, ...)`` spans: time when any command ran."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end, _ in sorted(spans, key=lambda s: s[0]):
        if cur_end is None or start > cur_end:
            if cur_start is not None and cur_end is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None and cur_end is not None:
        total += cur_end - cur_start
    return total


@runtime_checkable
class Runs(Protocol):
    """Anything that runs argv lists: a runner, a host, a node."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` and wait for it.

        Args:
            argv: Program and arguments; no shell is involved.
            check: Raise when the command fails or times out.
            timeout: Seconds before the command is killed and reported.
            input: Bytes (or text, sent as UTF-8) for its standard input; none when ``None``.
            env: Variables added to the transport's environment for this command.

        Returns:
            The command's result (also when it failed and ``check`` is false).

        Raises:
            CommandFailed: ``check`` and a non-zero exit.
            CommandTimeout: ``check`` and the timeout passed (the command was killed).
            TransportError: The machine could not be reached at all.
        """
        ...


@runtime_checkable
class Runner(Runs, Protocol):
    """Runs argv lists somewhere: this machine, an SSH host, a container.

    Implementations: [`LocalRunner`][ocfs2lab.runner.local.LocalRunner],
    [`SshRunner`][ocfs2lab.runner.ssh.SshRunner],
    [`DockerExecRunner`][ocfs2lab.runner.docker.DockerExecRunner].
    """

    @property
    def where(self) -> str:
        """Where commands run, for messages (``"local"``, ``"ssh:root@host:22"``)."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...


def validate_call(
    argv: Sequence[str], timeout: float, env: Mapping[str, str] | None
) -> tuple[str, ...]:
    """Check a call's arguments the same way for every transport.

    Raises:
        SpecError: Empty argv, a non-string argument, a non-positive timeout, a bad variable name.
    """
    if isinstance(argv, str | bytes):
        raise SpecError("argv", argv, "must be a list of arguments, not a string")
    args = tuple(argv)
    if not args:
        raise SpecError("argv", args, "must name a program")
    for a in args:
        if not isinstance(a, str):
            raise SpecError("argv", args, f"every argument must be str, got {type(a).__name__}")
        if "\0" in a:
            raise SpecError("argv", args, "arguments cannot contain NUL bytes")
    if not timeout > 0:
        raise SpecError("timeout", timeout, "must be a positive number of seconds")
    for k in env or {}:
        if not k or "=" in k or "\0" in k or not (k[0].isalpha() or k[0] == "_"):
            raise SpecError(
                "env", k, "variable names are letters, digits and _, not starting with a digit"
            )
    return args


def as_bytes(data: bytes | str | None) -> bytes | None:
    """Normalise a command's input to bytes."""
    if data is None or isinstance(data, bytes):
        return data
    return data.encode("utf-8")
