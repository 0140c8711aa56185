"""Run commands in a container through the docker SDK's exec API.

The low-level API is used so that stdin, the two output streams and the deadline are all in
our hands: ``exec_create`` then an attached exec start hands over the hijacked
connection; stdin is written to it by a thread and then half-closed, stdout and stderr come
back multiplexed in frames (an 8-byte header: stream, 3 zero bytes, big-endian length) and
are split here, and the exit status comes from ``exec_inspect``.

As over ssh, the command is wrapped in ``timeout -s KILL <T> env -- argv`` so that a hung
command is killed inside the container at its timeout; the client gives up a little later.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
import requests

from ocfs2lab.errors import TransportError
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, as_bytes, validate_call
from ocfs2lab.runner.ssh import remote_argv

log = logging.getLogger(__name__)

#: Seconds the client waits beyond the in-container timeout before it gives up.
CLIENT_GRACE = 5.0
#: Exit statuses of ``timeout -s KILL`` (coreutils 124/137, busybox 137).
_TIMEOUT_CODES = frozenset({124, 137})
_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_CHUNK = 1 << 16


def exec_argv(argv: Sequence[str], timeout: float) -> list[str]:
    """The argv given to ``exec_create``: ``timeout -s KILL T env -- argv``.

    The environment goes through ``exec_create(environment=...)``, not ``env``.
    """
    return remote_argv(argv, timeout)


def demux_frames(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split docker's multiplexed stream into stdout and stderr.

    Returns:
        ``(stdout, stderr, rest)`` where ``rest`` is an incomplete trailing frame.
    """
    out: list[bytes] = []
    err: list[bytes] = []
    pos = 0
    while len(data) - pos >= _HEADER.size:
        stream, size = _HEADER.unpack_from(data, pos)
        if len(data) - pos - _HEADER.size < size:
            break
        start = pos + _HEADER.size
        (err if stream == _STDERR else out).append(data[start : start + size])
        pos = start + size
    return b"".join(out), b"".join(err), data[pos:]


class _Demuxer:
    """Incremental frame parser: feed it what the socket gives, read the two streams."""

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buf, pos)
            start = pos + _HEADER.size
            if len(buf) - start < size:
                break
            (self.stderr if stream == _STDERR else self.stdout).extend(
                memoryview(buf)[start : start + size]
            )
            pos = start + size
        if pos:
            del buf[:pos]

    @property
    def leftover(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buf)


def _raw_socket(obj: Any) -> socket.socket:
    """The plain socket under what ``exec_start(socket=True)`` returned."""
    if isinstance(obj, socket.socket):
        return obj
    inner = getattr(obj, "_sock", None)
    if isinstance(inner, socket.socket):
        return inner
    raise TransportError(
        f"docker exec returned a {type(obj).__name__}, not a socket: only unix and tcp "
        "engine connections are supported"
    )


def _start_exec(api: Any, exec_id: str) -> tuple[socket.socket, bytes, Any]:
    """Start an exec attached, and hand back the hijacked socket.

    What ``exec_start(socket=True)`` does, except that output which arrived together with
    the HTTP ``101`` headers is not lost: the HTTP reader may have buffered it while reading
    the headers (a race under load), and it is taken from that buffer here.

    Returns:
        The socket, the output bytes already received, and an object to close at the end.
    """
    try:
        response = api._post_json(
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": False, "Detach": False},
            stream=True,
        )
        api._raise_for_status(response)
        reader = response.raw._fp.fp  # the buffered reader over the hijacked connection
        raw_io = reader.raw
    except AttributeError:  # a docker SDK without these internals: the public way
        raw = api.exec_start(exec_id, detach=False, tty=False, socket=True)
        return _raw_socket(raw), b"", raw
    sock = _raw_socket(raw_io)
    sock.setblocking(False)
    try:
        early = reader.read1(1 << 20) or b""
    except BlockingIOError:
        early = b""
    finally:
        sock.setblocking(True)
    return sock, bytes(early), response


def _docker_failure(where: str, exc: BaseException) -> TransportError:
    return TransportError(
        f"{where}: docker engine or container not usable: {exc}",
        hint="is the engine running and the container started? (`docker ps`)",
    )


class DockerExecRunner:
    """Runs argv lists in a running container (``docker exec``) through the docker SDK.

    Args:
        client: A connected docker SDK client.
        container: The container's id or name.
        user: User to run as inside the container (default: the image's).
        workdir: Working directory inside the container (default: the image's).
    """

    def __init__(
        self,
        client: docker.DockerClient,
        container: str,
        *,
        user: str = "",
        workdir: str | None = None,
    ) -> None:
        self.client = client
        self.container = container
        self.user = user
        self.workdir = workdir
        self._name: str | None = None

    @property
    def where(self) -> str:
        """``docker:<container name>``."""
        return f"docker:{self._name or self.container.lstrip('/')}"

    def __repr__(self) -> str:
        return f"DockerExecRunner({self.where})"

    def _resolve_name(self) -> None:
        if self._name is None:
            info = self.client.api.inspect_container(self.container)
            self._name = str(info.get("Name") or self.container).lstrip("/")

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run ``argv`` in the container and wait for it.

        Raises:
            SpecError: The call itself is malformed (string argv, empty argv, timeout <= 0).
            CommandFailed: ``check`` and a non-zero exit.
            CommandTimeout: ``check`` and the timeout passed (killed in the container).
            TransportError: The engine cannot be reached, or the container is missing or
                not running.
        """
        args = validate_call(argv, timeout, env)
        data = as_bytes(input)
        api = self.client.api
        log.debug("%s: run %r (timeout %gs)", self.where, args, timeout)
        start = time.monotonic()
        try:
            self._resolve_name()
            exec_id = api.exec_create(
                self.container,
                exec_argv(args, timeout),
                stdout=True,
                stderr=True,
                stdin=data is not None,
                tty=False,
                environment=dict(env) if env else None,
                workdir=self.workdir,
                user=self.user,
            )["Id"]
            sock, early, keep = _start_exec(api, exec_id)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise _docker_failure(self.where, exc) from exc
        deadline = start + timeout + CLIENT_GRACE
        try:
            demux, client_gave_up = self._pump(sock, early, data, deadline)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(Exception):
                keep.close()
        exit_code = self._exit_code(
            exec_id, deadline if not client_gave_up else time.monotonic() + 5
        )
        duration = time.monotonic() - start
        timed_out = client_gave_up or (exit_code in _TIMEOUT_CODES and duration >= timeout * 0.98)
        result = CommandResult(
            argv=args,
            exit_code=exit_code if exit_code is not None else -9,
            stdout_bytes=bytes(demux.stdout),
            stderr_bytes=bytes(demux.stderr),
            duration=duration,
            where=self.where,
            timed_out=timed_out,
        )
        log.debug(
            "%s: %r -> %d%s in %.3fs (%d+%d bytes out)",
            self.where,
            args,
            result.exit_code,
            " (timed out)" if timed_out else "",
            duration,
            len(result.stdout_bytes),
            len(result.stderr_bytes),
        )
        return result.check(timeout=timeout) if check else result

    def _pump(
        self, sock: socket.socket, early: bytes, data: bytes | None, deadline: float
    ) -> tuple[_Demuxer, bool]:
        """Write stdin (in a thread) and read the output frames until EOF or the deadline.

        ``early`` is output that arrived with the HTTP upgrade response.
        """
        writer: threading.Thread | None = None
        write_error: list[BaseException] = []
        sock.setblocking(True)
        if data is not None:

            def feed() -> None:
                try:
                    view = memoryview(data)
                    for pos in range(0, len(view), _CHUNK):
                        sock.sendall(view[pos : pos + _CHUNK])
                    sock.shutdown(socket.SHUT_WR)
                except OSError as exc:  # the command stopped reading: not our failure
                    write_error.append(exc)

            writer = threading.Thread(target=feed, name="docker-exec-stdin", daemon=True)
            writer.start()
        demux = _Demuxer()
        demux.feed(early)
        gave_up = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                gave_up = True
                break
            ready, _, _ = select.select([sock], [], [], min(remaining, 1.0))
            if not ready:
                continue
            try:
                chunk = sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                log.debug("%s: exec stream ended: %s", self.where, exc)
                break
            if not chunk:
                break
            demux.feed(chunk)
        if writer is not None:
            if gave_up:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # unblocks the writer
            writer.join(5)
        if write_error:
            log.debug("%s: stdin not fully written: %s", self.where, write_error[0])
        if demux.leftover:
            log.debug("%s: %d bytes of an incomplete frame dropped", self.where, demux.leftover)
        return demux, gave_up

    def _exit_code(self, exec_id: str, deadline: float) -> int | None:
        """The exec's exit status; it may lag the end of the stream by a moment."""
        pause = 0.005
        while True:
            try:
                info = self.client.api.exec_inspect(exec_id)
            except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
                raise _docker_failure(self.where, exc) from exc
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            if time.monotonic() >= deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def close(self) -> None:
        """Nothing of its own to release (the client belongs to the caller); idempotent."""

    def __enter__(self) -> DockerExecRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
