"""Run commands on another machine over one multiplexed OpenSSH connection per host.

[`SshRunner`][ocfs2lab.runner.ssh.SshRunner] starts an OpenSSH control master
(``ControlMaster=yes``) once, on [`SshRunner.connect`][ocfs2lab.runner.ssh.SshRunner.connect] or
lazily on the first command, and runs every command as a multiplexed session over it (``ssh -S
<socket> ... -- <quoted argv>``): one TCP connection and one authentication per host, a few
milliseconds per command.

The remote command line is built from the argv with `shlex.quote` for every element,
never from a shell string, and wrapped in ``timeout -s KILL <T> env -- ...`` so that a hung
command is killed on the remote side at its timeout (GNU coreutils and busybox both accept
that form); the local ssh client is killed a little later as a fallback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from attrs import field, frozen, validators

from ocfs2lab.errors import SpecError, TransportError, WaitTimeout
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, as_bytes, validate_call
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.wait import Deadline, wait_until

log = logging.getLogger(__name__)

#: Longest unix socket path the kernel accepts (``sun_path`` is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
#: Seconds the local ssh client gets beyond the remote timeout before it is killed.
CLIENT_GRACE = 5.0
#: Exit status of the ssh client for its own errors (connection, authentication).
SSH_ERROR = 255
#: Exit statuses of ``timeout -s KILL``: coreutils (124, or 137 when it kills its group
#: with itself) and busybox (137, the command killed by SIGKILL).
_REMOTE_TIMEOUT_CODES = frozenset({124, 137})

_HOST_RE = re.compile(r"^[A-Za-z0-9_.:%\[\]-]+$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_OPTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_PID_RE = re.compile(r"pid=(\d+)")


def _check_host(_inst: object, _attr: object, value: str) -> None:
    if not value or value.startswith("-") or not _HOST_RE.match(value):
        raise SpecError(
            "ssh.host", value, "must be a host name or address (no spaces, no leading -)"
        )


def _check_user(_inst: object, _attr: object, value: str) -> None:
    if not _USER_RE.match(value):
        raise SpecError("ssh.user", value, "must be a plain user name")


def _check_port(_inst: object, _attr: object, value: int) -> None:
    if not 0 < value < 65536:
        raise SpecError("ssh.port", value, "must be between 1 and 65535")


def _check_positive(_inst: object, attr: object, value: float) -> None:
    if not value > 0:
        raise SpecError(f"ssh.{getattr(attr, 'name', '?')}", value, "must be positive")


def _to_options(
    value: Mapping[str, str] | Sequence[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


def _check_options(_inst: object, _attr: object, value: tuple[tuple[str, str], ...]) -> None:
    for key, val in value:
        if not _OPTION_RE.match(key):
            raise SpecError("ssh.extra_options", key, "option names are letters and digits")
        if "\n" in val or "\0" in val:
            raise SpecError("ssh.extra_options", val, "option values are one line")


def _to_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


@frozen
class SshTarget:
    """How to reach one SSH host.

    Host keys are never checked against, or written to, the user's ``~/.ssh/known_hosts``:
    with ``known_hosts`` set and ``strict_host_keys`` true the host key must already be in
    that (lab-owned) file; with ``strict_host_keys`` false it is accepted and recorded in
    ``known_hosts`` (or ``/dev/null`` when that is ``None``). User and system ssh config
    files are not read (``-F none``): the connection is the same on every machine.

    Attributes:
        host: Host name or address.
        port: TCP port.
        user: Remote user.
        identity_file: Private key to log in with (``IdentitiesOnly``), or ``None`` for the
            agent's / default keys.
        known_hosts: The lab's own known_hosts file, or ``None``.
        strict_host_keys: Refuse host keys not already in ``known_hosts``.
        connect_timeout: Seconds for TCP connect and authentication.
        extra_options: More ``-o Key=Value`` options, as pairs.

    Raises:
        SpecError: A field breaks its rule (bad host, port, user, option name).
    """

    host: str = field(validator=_check_host)
    port: int = field(default=22, validator=_check_port)
    user: str = field(default="root", validator=_check_user)
    identity_file: Path | None = field(default=None, converter=_to_path)
    known_hosts: Path | None = field(default=None, converter=_to_path)
    strict_host_keys: bool = field(default=False, validator=validators.instance_of(bool))
    connect_timeout: float = field(default=10.0, validator=_check_positive)
    extra_options: tuple[tuple[str, str], ...] = field(
        default=(), converter=_to_options, validator=_check_options
    )

    def __attrs_post_init__(self) -> None:
        if self.strict_host_keys and self.known_hosts is None:
            raise SpecError(
                "ssh.known_hosts", None, "strict host key checking needs the lab's known_hosts file"
            )

    @property
    def destination(self) -> str:
        """``user@host`` as ssh takes it."""
        return f"{self.user}@{self.host}"

    @property
    def where(self) -> str:
        """``ssh:user@host:port``."""
        return f"ssh:{self.user}@{self.host}:{self.port}"

    def options(self) -> list[str]:
        """The ssh options common to the master and every client, as argv words."""
        known = str(self.known_hosts) if self.known_hosts is not None else "/dev/null"
        opts: list[tuple[str, str]] = [
            ("BatchMode", "yes"),
            ("StrictHostKeyChecking", "yes" if self.strict_host_keys else "no"),
            ("UserKnownHostsFile", known),
            ("GlobalKnownHostsFile", "/dev/null"),
            ("ConnectTimeout", str(max(1, math.ceil(self.connect_timeout)))),
            ("LogLevel", "ERROR"),
        ]
        if self.identity_file is not None:
            opts += [("IdentityFile", str(self.identity_file)), ("IdentitiesOnly", "yes")]
        words = ["-F", "none", "-p", str(self.port)]
        # ssh keeps the first value it sees for an option: extra options go first to win.
        for key, value in [*self.extra_options, *opts]:
            words += ["-o", f"{key}={value}"]
        return words


def remote_timeout(timeout: float) -> str:
    """The ``timeout`` argument for a remote command: whole seconds, rounded up.

    Busybox ``timeout`` drops fractions (1.5 becomes 1), so the remote side gets at least
    the time the caller asked for.
    """
    return str(max(1, math.ceil(timeout)))


def remote_argv(
    argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> list[str]:
    """The argv run on the remote side: ``timeout -s KILL T env -- [K=V ...] argv``.

    ``env --`` keeps an argv that starts with ``-`` a command and carries the variables;
    ``timeout`` itself takes no ``--``.
    """
    words = ["timeout", "-s", "KILL", remote_timeout(timeout), "env", "--"]
    words += [f"{k}={v}" for k, v in (env or {}).items()]
    words += list(argv)
    return words


def remote_command_line(
    argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> str:
    """The one string ssh hands to the remote shell: every word quoted with shlex.quote.

    The trailing ``; exit $?`` keeps the remote shell alive as the parent of ``timeout``:
    GNU ``timeout -s KILL`` kills its own process group, itself included, and a session
    whose process dies of a signal makes the ssh client exit 255, the status that also
    means "connection failed". With the shell in between, a killed command is reported
    as 128 + signal (137 for SIGKILL), as ``docker exec`` reports it.
    """
    return " ".join(shlex.quote(w) for w in remote_argv(argv, timeout, env)) + "; exit $?"


class SshRunner:
    """Runs argv lists on an SSH host over one persistent multiplexed connection.

    Args:
        target: The host to reach.
        control_dir: A private directory for the control socket (and the master's log);
            ``None`` makes one under the temp dir on the first connection and removes it
            on [`close`][ocfs2lab.runner.ssh.SshRunner.close]. The
            socket path must fit a unix socket (107 bytes), so keep it short.
        persist: Seconds the master stays up while idle (``ControlPersist``): a safety net
            that ends it even if this process dies without
            [`close`][ocfs2lab.runner.ssh.SshRunner.close]. A master that timed out is started again
            on the next command.
        server_alive_interval: Seconds between keep-alive probes of the master.
        local: The runner that starts the local ssh processes.

    Raises:
        SpecError: The control socket path would be too long.
    """

    def __init__(
        self,
        target: SshTarget,
        control_dir: str | os.PathLike[str] | None = None,
        *,
        persist: float = 600.0,
        server_alive_interval: int = 5,
        local: LocalRunner | None = None,
    ) -> None:
        self.target = target
        self._own_dir = control_dir is None
        if control_dir is None:
            # Made (mode 0700) only when the first connection needs it, so a runner that is
            # never used leaves nothing behind.
            control_dir = Path(tempfile.gettempdir()) / f"o2ssh-{secrets.token_hex(6)}"
        self.control_dir = Path(control_dir)
        self.control_path = self.control_dir / "ctl"
        if len(os.fsencode(self.control_path)) > MAX_SOCKET_PATH:
            raise SpecError(
                "ssh.control_dir",
                str(self.control_dir),
                f"the control socket path must fit in {MAX_SOCKET_PATH} bytes",
                hint="use a short directory such as /tmp/o2-<id>",
            )
        self.persist = persist
        self.server_alive_interval = server_alive_interval
        self._local = local or LocalRunner()
        self._lock = threading.Lock()
        self._master_pid: int | None = None
        self._forwards: list[tuple[Path, str]] = []
        self._closed = False

    # -- naming -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        """``ssh:user@host:port``."""
        return self.target.where

    def __repr__(self) -> str:
        return f"SshRunner({self.where})"

    @property
    def master_pid(self) -> int | None:
        """Pid of the running control master, or ``None`` when there is none."""
        return self._master_pid if self.master_alive() else None

    # -- argv building (pure) -------------------------------------------------------------

    def _mux_argv(self) -> list[str]:
        """Start of a client argv that goes through the master (never makes its own)."""
        return [
            "ssh",
            "-S",
            str(self.control_path),
            "-o",
            "ControlMaster=no",
            *self.target.options(),
        ]

    def master_argv(self) -> list[str]:
        """The argv that starts the control master (forks to background once logged in)."""
        return [
            "ssh",
            "-f",
            "-N",
            "-M",
            "-S",
            str(self.control_path),
            "-o",
            f"ControlPersist={max(1, math.ceil(self.persist))}",
            "-o",
            f"ServerAliveInterval={self.server_alive_interval}",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "StreamLocalBindUnlink=yes",
            "-E",
            str(self.control_dir / "master.log"),
            *self.target.options(),
            self.target.destination,
        ]

    def command_argv(
        self, argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
    ) -> list[str]:
        """The local argv that runs ``argv`` remotely over the master."""
        return [
            *self._mux_argv(),
            "-T",
            self.target.destination,
            "--",
            remote_command_line(argv, timeout, env),
        ]

    def control_argv(self, operation: str, *extra: str) -> list[str]:
        """``ssh -S ctl -O <operation> ... host``: talk to the master."""
        return [*self._mux_argv(), "-O", operation, *extra, self.target.destination]

    # -- the master ---------------------------------------------------------------------

    def master_alive(self) -> bool:
        """Ask the master whether it runs (``ssh -O check``); records its pid."""
        if not self.control_path.exists():
            return False
        res = self._local.run(self.control_argv("check"), check=False, timeout=10)
        match = _PID_RE.search(res.stderr + res.stdout)
        if res.exit_code == 0 and match:
            self._master_pid = int(match.group(1))
            return True
        return False

    def connect(self) -> None:
        """Start the control master unless it already runs; idempotent.

        Raises:
            TransportError: The host cannot be reached or refuses the login; carries ssh's
                own message.
        """
        with self._lock:
            if self._closed:
                raise TransportError(f"{self.where}: runner is closed")
            if self.master_alive():
                return
            self.control_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.control_dir.chmod(0o700)
            with contextlib.suppress(FileNotFoundError):
                self.control_path.unlink()  # a stale socket of a dead master
            log.debug("%s: starting control master", self.where)
            start = time.monotonic()
            res = self._local.run(
                self.master_argv(), check=False, timeout=self.target.connect_timeout + 10
            )
            if not res.ok or not self.master_alive():
                detail = (res.stderr.strip() or self._master_log()).strip()
                raise TransportError(
                    f"{self.where}: cannot open the ssh connection (exit {res.exit_code}"
                    f"{', timed out' if res.timed_out else ''}): {detail}",
                    hint="check that sshd runs there, the port, the user and the key",
                )
            log.debug(
                "%s: master pid %s up in %.3fs",
                self.where,
                self._master_pid,
                time.monotonic() - start,
            )

    def _master_log(self) -> str:
        try:
            return (self.control_dir / "master.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def wait_until_reachable(self, timeout: float, *, interval: float = 0.5) -> None:
        """Try to connect until it works or ``timeout`` seconds have passed.

        Raises:
            WaitTimeout: No connection before the deadline; carries the last ssh error.
        """
        last: list[str] = []

        def probe() -> bool | None:
            try:
                self.connect()
            except TransportError as exc:
                last[:] = [exc.message]
                return None
            return True

        try:
            wait_until(
                probe,
                what=f"ssh to {self.where}",
                timeout=timeout,
                interval=interval,
                max_interval=max(interval, 2.0),
            )
        except WaitTimeout as exc:
            raise WaitTimeout(
                exc.what,
                timeout,
                last[0] if last else None,
                hint="is the machine booted and sshd started? see its console log",
            ) from None

    # -- commands -----------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` on the host and wait for it.

        Raises:
            SpecError: The call itself is malformed (string argv, empty argv, timeout <= 0).
            CommandFailed: ``check`` and a non-zero exit.
            CommandTimeout: ``check`` and the timeout passed (killed on the host).
            TransportError: The connection failed (ssh itself exited 255).
        """
        args = validate_call(argv, timeout, env)
        data = as_bytes(input)
        if self._closed:
            raise TransportError(f"{self.where}: runner is closed")
        if not self._master_running():
            self.connect()
        log.debug("%s: run %r (timeout %gs)", self.where, args, timeout)
        start = time.monotonic()
        res = self._local.run(
            self.command_argv(args, timeout, env),
            check=False,
            timeout=timeout + CLIENT_GRACE,
            input=data,
        )
        duration = time.monotonic() - start
        if res.exit_code == SSH_ERROR and not res.timed_out and not self.master_alive():
            with contextlib.suppress(OSError):
                self.control_path.unlink()  # stale: the next command starts a new master
            raise TransportError(
                f"{self.where}: connection failed while running `{shlex.join(args)}`: "
                f"{res.stderr.strip()}",
                hint="the host went away or sshd stopped; the next command reconnects",
            )
        timed_out = res.timed_out or (
            res.exit_code in _REMOTE_TIMEOUT_CODES and duration >= timeout * 0.98
        )
        result = CommandResult(
            argv=args,
            exit_code=res.exit_code,
            stdout_bytes=res.stdout_bytes,
            stderr_bytes=res.stderr_bytes,
            duration=duration,
            where=self.where,
            timed_out=timed_out,
        )
        log.debug(
            "%s: %r -> %d%s in %.3fs",
            self.where,
            args,
            result.exit_code,
            " (timed out)" if timed_out else "",
            duration,
        )
        return result.check(timeout=timeout) if check else result

    def put_bytes(self, path: str, data: bytes, mode: int = 0o644, *, timeout: float = 60) -> None:
        """Write ``data`` to ``path`` on the host (through ``cat``), then set its mode.

        Raises:
            CommandFailed: The file could not be written.
        """
        script = 'umask 077 && cat > "$1" && chmod "$2" "$1"'
        self.run(["sh", "-c", script, "sh", path, f"{mode:o}"], input=data, timeout=timeout)

    def get_bytes(self, path: str, *, timeout: float = 60) -> bytes:
        """Read the file ``path`` on the host (through ``cat``).

        Raises:
            CommandFailed: The file could not be read.
        """
        return self.run(["cat", "--", path], timeout=timeout).stdout_bytes

    # -- forwarding ---------------------------------------------------------------------

    def forward_unix_socket(self, local_path: str | os.PathLike[str], remote_path: str) -> Path:
        """Make ``local_path`` a unix socket that reaches ``remote_path`` on the host.

        Uses the master (``ssh -O forward -L local:remote``); the forward ends with
        [`close`][ocfs2lab.runner.ssh.SshRunner.close]. Typical use: the guest's
        ``/var/run/docker.sock`` for the docker SDK (``docker.DockerClient(base_url="unix://" +
        str(path))``).

        Returns:
            The local socket path.

        Raises:
            SpecError: The local path is too long for a unix socket.
            TransportError: The master refused the forward.
        """
        local = Path(local_path)
        if len(os.fsencode(local)) > MAX_SOCKET_PATH:
            raise SpecError("ssh.forward", str(local), f"must fit in {MAX_SOCKET_PATH} bytes")
        self.connect()
        spec = f"{local}:{remote_path}"
        res = self._local.run(self.control_argv("forward", "-L", spec), check=False, timeout=20)
        if not res.ok:
            raise TransportError(
                f"{self.where}: cannot forward {local} to {remote_path}: "
                f"{(res.stderr or res.stdout).strip()}"
            )
        deadline = Deadline(10)
        while not local.exists() and not deadline.expired:
            time.sleep(0.02)
        self._forwards.append((local, remote_path))
        log.debug("%s: forwarding %s -> %s", self.where, local, remote_path)
        return local

    def reverse_forward(self, local_port: int, local_host: str = "127.0.0.1") -> int:
        """Make a port on the remote host's loopback reach ``local_host:local_port`` here.

        Uses the master (``ssh -O forward -R 127.0.0.1:0:local_host:local_port``); the
        remote side picks a free port. The forward ends with
        [`close`][ocfs2lab.runner.ssh.SshRunner.close]. Typical use: a node's writer reporting to
        the lab's recorder on this machine.

        Returns:
            The port on the remote host's ``127.0.0.1``.

        Raises:
            TransportError: The master refused the forward or printed no port.
        """
        self.connect()
        spec = f"127.0.0.1:0:{local_host}:{local_port}"
        res = self._local.run(self.control_argv("forward", "-R", spec), check=False, timeout=20)
        port = res.stdout.strip()
        if not res.ok or not port.isdigit():
            raise TransportError(
                f"{self.where}: cannot forward a remote port to {local_host}:{local_port}: "
                f"{(res.stderr or res.stdout).strip()}",
                hint="the server must allow TCP forwarding (AllowTcpForwarding)",
            )
        log.debug("%s: remote 127.0.0.1:%s -> %s:%d", self.where, port, local_host, local_port)
        return int(port)

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the master (``ssh -O exit``, then its pid if it lingers); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pid = self._master_pid
            if self.control_path.exists():
                res = self._local.run(self.control_argv("exit"), check=False, timeout=10)
                log.debug("%s: -O exit -> %d %s", self.where, res.exit_code, res.stderr.strip())
            if pid is not None:
                self._stop_pid(pid)
            for local, _remote in self._forwards:
                with contextlib.suppress(OSError):
                    if local.is_socket():
                        local.unlink()
            self._forwards.clear()
            self._master_pid = None
            if self._own_dir:
                shutil.rmtree(self.control_dir, ignore_errors=True)
            else:
                for name in ("ctl", "master.log"):
                    with contextlib.suppress(OSError):
                        (self.control_dir / name).unlink()

    def _master_running(self) -> bool:
        """Cheap local check (no process started) that the known master still runs."""
        pid = self._master_pid
        return pid is not None and self.control_path.exists() and self._is_our_master(pid)

    def _is_our_master(self, pid: int) -> bool:
        """True while ``pid`` is still this runner's master (not a recycled pid)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return os.fsencode(self.control_path) in cmdline

    def _stop_pid(self, pid: int) -> None:
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self._is_our_master(pid):
                log.debug("%s: master %d lingers, sending %s", self.where, pid, sig.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = Deadline(5)
            while self._is_our_master(pid) and not deadline.expired:
                time.sleep(0.02)
            if not self._is_our_master(pid):
                return

    def __enter__(self) -> SshRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
