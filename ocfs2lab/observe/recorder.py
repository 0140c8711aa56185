"""The lost-write recorder: what the nodes' writers had acknowledged, kept on the host.

A node that dies cannot be asked afterwards what it had written. So each node runs the
writer ([`writer_script`][ocfs2lab.observe.wire.writer_script], copied to the node and run with
python3), which fsyncs every record and reports it to a
[`WriteRecorder`][ocfs2lab.observe.recorder.WriteRecorder] on the host the moment fsync returns. The
recorder stamps each report with the host clock on arrival, keeps it in memory and, when given a
timeline, records it there as a ``WRITE_ACKED`` event. After a fault, every acknowledged record must
read back intact on a survivor:
[`WriteRecorder.verify`][ocfs2lab.observe.recorder.WriteRecorder.verify] reads each one back through
a caller's reader and says which are verified, lost or torn.

The recorder listens on 127.0.0.1 only (a free port) and/or on a unix socket. A QEMU guest
on user networking (slirp) reaches the host's loopback as ``10.0.2.2``
([`WriteRecorder.guest_address`][ocfs2lab.observe.recorder.WriteRecorder.guest_address]); a
container on the host network or a local process uses
[`WriteRecorder.address`][ocfs2lab.observe.recorder.WriteRecorder.address].

This module is the server. What the writer sends (the wire protocol: one JSON object per line,
see [`ocfs2lab.observe.wire`][ocfs2lab.observe.wire]) and how records are read back
([`ocfs2lab.observe.verify`][ocfs2lab.observe.verify]) live in their own modules; their names
are importable from here as well. Malformed lines are counted in `WriteRecorder.rejected`
and logged, never fatal.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from attrs import evolve

from ocfs2lab.errors import Ocfs2LabError, SpecError, WaitTimeout
from ocfs2lab.observe.events import LabEventKind
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.observe.verify import (
    SECTOR,
    LostWrites,
    Reader,
    VerifyReport,
    WriteCheck,
    WriteStatus,
    local_reader,
    runner_reader,
    verify_acks,
)
from ocfs2lab.observe.wire import (
    WriteAck,
    WriterInfo,
    ack_from_message,
    record_content,
    writer_from_hello,
    writer_script,
)
from ocfs2lab.wait import Deadline

__all__ = [
    "SECTOR",
    "SLIRP_HOST",
    "Listener",
    "LostWrites",
    "Reader",
    "VerifyReport",
    "WriteAck",
    "WriteCheck",
    "WriteRecorder",
    "WriteStatus",
    "WriterInfo",
    "local_reader",
    "record_content",
    "runner_reader",
    "verify_acks",
    "writer_script",
]

log = logging.getLogger(__name__)

#: The host's loopback as a QEMU user-networking (slirp) guest sees it.
SLIRP_HOST = "10.0.2.2"
_MAX_LINE = 65536


class _Conn:
    __slots__ = ("buffer", "info_index", "node", "peer", "sock")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()
        self.node: str | None = None
        self.info_index: int | None = None


class Listener(Protocol):
    """A server on the host's loopback that programs on the nodes connect to (the
    [`WriteRecorder`][ocfs2lab.observe.recorder.WriteRecorder], the operations server of a
    history workload): a node turns its port into an address it can reach."""

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        ...


class WriteRecorder:
    """Receives fsync acknowledgements from the nodes' writers; a context manager.

    Args:
        timeline: When given, each ack (and each writer's start and stop) is recorded on it.
        tcp: Listen on 127.0.0.1 (a free port unless ``port`` is given).
        port: TCP port (0: a free one).
        unix_path: Also (or only) listen on this unix socket; it must not exist yet.
        record_acks: Record each ack on the timeline (writers' start/stop always are).
        clock: Host clock that stamps arrivals (``time.time``).

    Raises:
        ValueError: Neither TCP nor a unix socket was asked for.
    """

    def __init__(
        self,
        *,
        timeline: Timeline | None = None,
        tcp: bool = True,
        port: int = 0,
        unix_path: str | Path | None = None,
        record_acks: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not tcp and unix_path is None:
            raise SpecError("tcp", tcp, "a recorder needs TCP or a unix socket (unix_path)")
        self.timeline = timeline
        self.record_acks = record_acks
        self.unix_path = Path(unix_path) if unix_path is not None else None
        self._want_tcp = tcp
        self._want_port = port
        self._clock = clock
        self._cond = threading.Condition()
        self._acks: list[WriteAck] = []
        self._writers: list[WriterInfo] = []
        self._selector: selectors.BaseSelector | None = None
        self._listeners: list[socket.socket] = []
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._port: int | None = None
        self._conns: dict[int, _Conn] = {}
        self.rejected = 0

    def __repr__(self) -> str:
        where = [a for a in (self.address if self._port else None, self.unix_path) if a]
        return f"WriteRecorder({', '.join(map(str, where))}, acks={len(self._acks)})"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> WriteRecorder:
        """Bind and start serving.

        Returns:
            This recorder.

        Raises:
            OSError: The port or the unix socket path cannot be bound.
        """
        if self._thread is not None:
            return self
        self._stopping = False
        sel = selectors.DefaultSelector()
        try:
            if self._want_tcp:
                tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._listeners.append(tcp)
                tcp.bind(("127.0.0.1", self._want_port))
                tcp.listen(64)
                tcp.setblocking(False)
                self._port = tcp.getsockname()[1]
                sel.register(tcp, selectors.EVENT_READ, "listen")
            if self.unix_path is not None:
                unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._listeners.append(unix)
                unix.bind(str(self.unix_path))
                unix.listen(64)
                unix.setblocking(False)
                sel.register(unix, selectors.EVENT_READ, "listen")
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        except BaseException:
            sel.close()
            self._close_listeners()
            raise
        self._selector = sel
        self._thread = threading.Thread(target=self._serve, name="write-recorder", daemon=True)
        self._thread.start()
        log.debug("recorder: listening on %s", self)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection and remove the unix socket; idempotent."""
        thread = self._thread
        if thread is None:
            self._close_listeners()
            return
        self._stopping = True
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        thread.join(timeout)
        if thread.is_alive():
            log.warning("recorder: server thread did not stop within %gs", timeout)
        self._thread = None

    def __enter__(self) -> WriteRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_listeners(self) -> None:
        for s in self._listeners:
            with contextlib.suppress(OSError):
                s.close()
        self._listeners = []
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.unix_path.unlink()

    # -- addresses ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port.

        Raises:
            Ocfs2LabError: Not listening on TCP (not started, or ``tcp=False``).
        """
        if self._port is None:
            raise Ocfs2LabError("the recorder is not listening on TCP (start() it first)")
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: for writers on this machine (processes, host-network
        containers)."""
        return f"127.0.0.1:{self.port}"

    @property
    def guest_address(self) -> str:
        """``10.0.2.2:PORT``: for writers in QEMU guests on user networking (slirp)."""
        return f"{SLIRP_HOST}:{self.port}"

    @property
    def unix_address(self) -> str:
        """``unix:PATH`` for writers that share this machine's filesystem.

        Raises:
            Ocfs2LabError: No unix socket was asked for.
        """
        if self.unix_path is None:
            raise Ocfs2LabError("the recorder has no unix socket")
        return f"unix:{self.unix_path}"

    def writer_argv(
        self,
        *,
        node: str,
        file: str,
        address: str | None = None,
        size: int = 4096,
        count: int = 0,
        interval: float = 0.0,
        start_seq: int = 0,
        python: str = "python3",
        script: str | None = None,
    ) -> list[str]:
        """The argv that runs the writer on a node.

        Args:
            node: The node's name (in the acks and the records' content).
            file: The file to write, on the node.
            address: Where the writer reports (default:
                [`guest_address`][ocfs2lab.observe.recorder.WriteRecorder.guest_address] when
                listening on TCP, else
                [`unix_address`][ocfs2lab.observe.recorder.WriteRecorder.unix_address]).
            size: Record size (at least 64).
            count: Records to write (0: until SIGTERM).
            interval: Pause between records (seconds).
            start_seq: First record number (continue after an earlier run).
            python: The node's Python 3.
            script: Path of the writer on the node (default: this machine's copy).

        Returns:
            The argv.
        """
        if address is None:
            address = self.guest_address if self._port is not None else self.unix_address
        return [
            python,
            script or str(writer_script()),
            "--recorder",
            address,
            "--node",
            node,
            "--file",
            file,
            "--size",
            str(size),
            "--count",
            str(count),
            "--interval",
            repr(float(interval)),
            "--start-seq",
            str(start_seq),
        ]

    # -- reading --------------------------------------------------------------------------
    def acks(
        self,
        *,
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[WriteAck]:
        """Acknowledgements in arrival order (of ``node``, arrived in ``[since, until)``)."""
        with self._cond:
            items = list(self._acks)
        return [
            a
            for a in items
            if (node is None or a.node == node)
            and (since is None or a.host_time >= since)
            and (until is None or a.host_time < until)
        ]

    def count(self, node: str | None = None) -> int:
        """Number of acknowledgements (of ``node``)."""
        with self._cond:
            if node is None:
                return len(self._acks)
            return sum(1 for a in self._acks if a.node == node)

    @property
    def writers(self) -> list[WriterInfo]:
        """Writers that connected, in order."""
        with self._cond:
            return list(self._writers)

    def wait_for_acks(
        self, count: int, *, node: str | None = None, timeout: float, since: float | None = None
    ) -> list[WriteAck]:
        """Wait until at least ``count`` acks (of ``node``, since ``since``) arrived.

        Woken by each arrival; no polling.

        Returns:
            Those acks.

        Raises:
            WaitTimeout: Fewer arrived before the deadline.
        """
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                got = [
                    a
                    for a in self._acks
                    if (node is None or a.node == node) and (since is None or a.host_time >= since)
                ]
                if len(got) >= count:
                    return got
                if deadline.expired:
                    who = f" from {node}" if node else ""
                    raise WaitTimeout(
                        f"{count} write acks{who}",
                        timeout,
                        f"{len(got)} acks, writers: {self._writers}",
                        hint="is the writer running and can it reach the recorder's address?",
                    )
                self._cond.wait(deadline.remaining)

    def max_gap(
        self, node: str, *, since: float | None = None, until: float | None = None
    ) -> tuple[float, float] | None:
        """The longest time between consecutive acks of ``node`` (an I/O stall it saw).

        Returns:
            ``(gap_seconds, start_host_time)``, or ``None`` with fewer than two acks.
        """
        times = [a.host_time for a in self.acks(node=node, since=since, until=until)]
        if len(times) < 2:
            return None
        gap, start = max((b - a, a) for a, b in itertools.pairwise(times))
        return gap, start

    def verify(
        self,
        reader: Reader,
        *,
        node: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> VerifyReport:
        """Read back every acknowledged record (of ``node``, acked in ``[since, until)``).

        Args:
            reader: ``reader(path, offset, length) -> bytes`` on a survivor
                ([`runner_reader`][ocfs2lab.observe.verify.runner_reader],
                [`local_reader`][ocfs2lab.observe.verify.local_reader]).
            node: Only this writer's records.
            since: Only records acknowledged at or after this host time.
            until: Only records acknowledged before this host time.

        Returns:
            The report (see
            [`VerifyReport.raise_if_bad`][ocfs2lab.observe.verify.VerifyReport.raise_if_bad]).
        """
        return verify_acks(self.acks(node=node, since=since, until=until), reader)

    # -- serving --------------------------------------------------------------------------
    def _serve(self) -> None:
        sel = self._selector
        assert sel is not None
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    if key.data == "wake":
                        with contextlib.suppress(OSError):
                            key.fileobj.recv(64)  # type: ignore[union-attr]
                    elif key.data == "listen":
                        self._accept(sel, key.fileobj)  # type: ignore[arg-type]
                    else:
                        self._read(sel, key.data)
        except Exception:
            log.exception("recorder: server loop failed")
        finally:
            for conn in list(self._conns.values()):
                self._drop(sel, conn, "recorder closed")
            sel.close()
            self._close_listeners()
            for s in (self._wake_r, self._wake_w):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()

    def _accept(self, sel: selectors.BaseSelector, listener: socket.socket) -> None:
        try:
            sock, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        conn = _Conn(sock, str(peer) if peer else "unix")
        self._conns[sock.fileno()] = conn
        sel.register(sock, selectors.EVENT_READ, conn)
        log.debug("recorder: connection from %s", conn.peer)

    def _read(self, sel: selectors.BaseSelector, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(sel, conn, f"connection error: {exc}")
            return
        arrival = self._clock()
        if not chunk:
            if conn.buffer.strip():
                self._line(conn, bytes(conn.buffer), arrival)
            self._drop(sel, conn, "connection closed without bye")
            return
        conn.buffer += chunk
        while True:
            end = conn.buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(conn.buffer[:end])
            del conn.buffer[: end + 1]
            if line.strip():
                self._line(conn, line, arrival)
        if len(conn.buffer) > _MAX_LINE:
            self._reject(conn, bytes(conn.buffer[:200]), "line too long")
            conn.buffer.clear()

    def _drop(self, sel: selectors.BaseSelector, conn: _Conn, reason: str) -> None:
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn.sock)
        self._conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(OSError):
            conn.sock.close()
        if conn.info_index is not None:
            self._writer_stopped(conn, self._clock(), clean=False, reason=reason)

    def _reject(self, conn: _Conn, line: bytes, why: str) -> None:
        self.rejected += 1
        log.warning("recorder: rejected a line from %s (%s): %r", conn.peer, why, line[:200])

    def _line(self, conn: _Conn, line: bytes, arrival: float) -> None:
        try:
            message = json.loads(line)
            if not isinstance(message, dict):
                raise ValueError("not an object")
            kind = message.get("type", "ack")
            if kind == "ack":
                self._ack(conn, message, arrival)
            elif kind == "hello":
                self._hello(conn, message, arrival)
            elif kind == "bye":
                reason = str(message.get("reason", ""))
                self._writer_stopped(conn, arrival, clean=True, reason=reason)
            else:
                raise ValueError(f"unknown type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self._reject(conn, line, str(exc))

    def _ack(self, conn: _Conn, m: Mapping[str, Any], arrival: float) -> None:
        ack = ack_from_message(m, arrival)
        with self._cond:
            self._acks.append(ack)
            if conn.info_index is not None:
                info = self._writers[conn.info_index]
                self._writers[conn.info_index] = _evolve_info(info, records=info.records + 1)
            self._cond.notify_all()
        if self.timeline is not None and self.record_acks:
            self.timeline.record(
                LabEventKind.WRITE_ACKED,
                f"{ack.path}@{ack.offset}+{ack.length}",
                node=ack.node,
                time=arrival,
                data={"seq": ack.seq, "path": ack.path, "offset": ack.offset, "length": ack.length},
            )

    def _hello(self, conn: _Conn, m: Mapping[str, Any], arrival: float) -> None:
        info = writer_from_hello(m, arrival)
        with self._cond:
            conn.node = info.node
            conn.info_index = len(self._writers)
            self._writers.append(info)
            self._cond.notify_all()
        log.debug("recorder: writer %s pid %s writes %s", info.node, info.pid, info.path)
        if self.timeline is not None:
            self.timeline.record(
                LabEventKind.WRITER_STARTED,
                info.path,
                node=info.node,
                time=arrival,
                data={"pid": info.pid, "size": info.size},
            )

    def _writer_stopped(self, conn: _Conn, when: float, *, clean: bool, reason: str) -> None:
        if conn.info_index is None:
            return
        with self._cond:
            info = self._writers[conn.info_index]
            if info.stopped is not None:
                return
            info = _evolve_info(info, stopped=when, clean=clean, reason=reason)
            self._writers[conn.info_index] = info
            self._cond.notify_all()
        if self.timeline is not None:
            self.timeline.record(
                LabEventKind.WRITER_STOPPED,
                reason,
                node=info.node,
                time=when,
                data={"pid": info.pid, "clean": clean, "records": info.records},
            )


def _evolve_info(info: WriterInfo, **changes: Any) -> WriterInfo:
    return evolve(info, **changes)
