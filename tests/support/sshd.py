"""A throwaway OpenSSH server on 127.0.0.1 for tests and benchmarks.

It has its own config, host key, client key and authorized_keys in a temporary directory,
listens on a free port, logs to a file (``-D -e``) and is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from attrs import define

from ocfs2lab.runner.ssh import SshTarget
from ocfs2lab.wait import Deadline

SSHD = "/usr/sbin/sshd"


def sshd_binary() -> str | None:
    """Path of sshd, or ``None`` when it is not installed."""
    return shutil.which("sshd") or (SSHD if os.access(SSHD, os.X_OK) else None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@define
class ThrowawaySshd:
    """A running throwaway sshd.

    Attributes:
        target: How to reach it (strict host key checking against its own known_hosts).
        directory: Its private directory (config, keys, log).
        process: The sshd process (foreground, ``-D``).
    """

    target: SshTarget
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """Pid of the listening sshd."""
        return self.process.pid

    @property
    def log_path(self) -> Path:
        """Its log file (``-e``: what it would send to syslog)."""
        return self.directory / "sshd.log"

    def log_text(self) -> str:
        """The log so far."""
        return self.log_path.read_text(errors="replace")

    def accepted_logins(self) -> int:
        """How many successful authentications the log shows."""
        return self.log_text().count("Accepted publickey")


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = Deadline(timeout)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"sshd exited with {proc.returncode} at start: {log.read_text(errors='replace')}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        if deadline.expired:
            raise RuntimeError(f"sshd did not listen on {port} within {timeout} s")
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process by its pid, SIGKILL after ``timeout``, and reap it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@contextlib.contextmanager
def throwaway_sshd(
    base_dir: Path | None = None, *, start_timeout: float = 15.0
) -> Iterator[ThrowawaySshd]:
    """Start a throwaway sshd on 127.0.0.1; stop it (by pid) and remove its files on exit.

    Args:
        base_dir: Where to make its directory (a short path: the client's control sockets
            go there too); a new temp dir when ``None``.
        start_timeout: Seconds to wait for it to listen.

    Raises:
        RuntimeError: sshd is missing or did not start.
    """
    binary = sshd_binary()
    if binary is None:
        raise RuntimeError("sshd is not installed")
    directory = Path(tempfile.mkdtemp(prefix="o2sshd-", dir=base_dir))
    proc: subprocess.Popen[bytes] | None = None
    try:
        directory.chmod(0o700)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        host_key = directory / "host_ed25519"
        client_key = directory / "client_ed25519"
        _keygen(host_key, "ocfs2lab-test-host")
        _keygen(client_key, "ocfs2lab-test-client")
        authorized = directory / "authorized_keys"
        shutil.copy(client_key.with_suffix(".pub"), authorized)
        port = free_port()
        known_hosts = directory / "known_hosts"
        host_pub = host_key.with_suffix(".pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        config = directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "UsePAM no",
                    "StrictModes no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "MaxSessions 32",
                    "MaxStartups 100:30:200",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        log = directory / "sshd.log"
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                [binary, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        _wait_listening(proc, port, log, start_timeout)
        target = SshTarget(
            host="127.0.0.1",
            port=port,
            user=getpass.getuser(),
            identity_file=client_key,
            known_hosts=known_hosts,
            strict_host_keys=True,
            connect_timeout=10,
        )
        yield ThrowawaySshd(target=target, directory=directory, process=proc)
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(directory, ignore_errors=True)
