#!/usr/bin/env python3
"""ocfs2lab writer: fsynced records, each reported to the lab's recorder the moment fsync returns.

Copied to a node and run there (python3, standard library only). It writes records of
``--size`` bytes into ``--file`` at ``offset = seq * size`` (seq counting from
``--start-seq``), calls fsync after each, and as soon as fsync has returned sends one JSON
line to the recorder (``--recorder HOST:PORT`` over TCP, or ``unix:/PATH``)::

    {"type": "ack", "v": 1, "node": N, "seq": S, "path": P, "offset": O, "length": L,
     "sha256": H, "t": node_time, "pid": PID}

A ``hello`` line is sent on connecting and a ``bye`` line on a clean exit. The content of
record ``seq`` of node ``node`` is derived from those two and the size alone
(`record_content`), so a reader can check it without the recorder's copy.

It stops cleanly (exit status 0, after a ``bye``) on SIGTERM or SIGINT, the record under
way finished and reported, or after ``--count`` records. Exit status 2: the recorder
cannot be reached at start; 3: the recorder connection broke (no write may go unreported,
so it stops writing); 4: the file cannot be opened or a write or fsync failed (``bye``
says why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

PROTOCOL_VERSION = 1
MIN_SIZE = 64


def record_content(node: str, seq: int, size: int) -> bytes:
    """The bytes of record ``seq`` written by ``node``: a readable header, then SHAKE-256."""
    header = f"ocfs2lab-writer node={node} seq={seq} size={size}\n".encode()
    if len(header) >= size:
        return header[:size]
    return header + hashlib.shake_256(header).digest(size - len(header))


def _connect(address: str, timeout: float) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[len("unix:") :])
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"recorder address must be HOST:PORT or unix:PATH, not {address!r}")
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    return sock


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message, separators=(",", ":")) + "\n").encode())


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def main(argv: list[str] | None = None) -> int:
    """Run the writer; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--recorder", required=True, help="HOST:PORT or unix:PATH")
    parser.add_argument("--node", required=True, help="this node's name in the lab")
    parser.add_argument("--file", required=True, help="file to write (on the OCFS2 mount)")
    parser.add_argument("--size", type=int, default=4096, help="bytes per record")
    parser.add_argument("--count", type=int, default=0, help="records to write (0: until told)")
    parser.add_argument("--start-seq", type=int, default=0, help="first record number")
    parser.add_argument("--interval", type=float, default=0.0, help="pause between records (s)")
    parser.add_argument("--sync", choices=("fsync", "fdatasync"), default="fsync")
    parser.add_argument("--connect-timeout", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.size < MIN_SIZE:
        parser.error(f"--size must be at least {MIN_SIZE}")

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    try:
        sock = _connect(args.recorder, args.connect_timeout)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"writer: cannot reach the recorder at {args.recorder}: {exc}\n")
        return 2
    path = os.path.abspath(args.file)
    sync = os.fdatasync if args.sync == "fdatasync" else os.fsync
    pid = os.getpid()
    written = 0
    seq = args.start_seq
    reason = "count reached"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        sys.stderr.write(f"writer: cannot open {path}: {exc}\n")
        sock.close()
        return 4
    try:
        hello = {
            "type": "hello",
            "v": PROTOCOL_VERSION,
            "node": args.node,
            "pid": pid,
            "path": path,
            "size": args.size,
            "start_seq": seq,
            "t": time.time(),
        }
        _send(sock, hello)
        while not args.count or written < args.count:
            if stop.is_set():
                reason = "signal"
                break
            data = record_content(args.node, seq, args.size)
            offset = seq * args.size
            try:
                _write_all(fd, data, offset)
                sync(fd)
            except OSError as exc:
                sys.stderr.write(f"writer: write of record {seq} failed: {exc}\n")
                reason = f"write failed: {exc}"
                _send(sock, _bye(args.node, pid, written, reason))
                return 4
            ack = {
                "type": "ack",
                "v": PROTOCOL_VERSION,
                "node": args.node,
                "seq": seq,
                "path": path,
                "offset": offset,
                "length": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "t": time.time(),
                "pid": pid,
            }
            _send(sock, ack)
            written += 1
            seq += 1
            if args.interval > 0 and stop.wait(args.interval):
                reason = "signal"
                break
        _send(sock, _bye(args.node, pid, written, reason))
    except OSError as exc:
        sys.stderr.write(f"writer: recorder connection lost after {written} records: {exc}\n")
        return 3
    finally:
        os.close(fd)
        sock.close()
    return 0


def _bye(node: str, pid: int, written: int, reason: str) -> dict[str, Any]:
    return {
        "type": "bye",
        "v": PROTOCOL_VERSION,
        "node": node,
        "pid": pid,
        "records": written,
        "reason": reason,
        "t": time.time(),
    }


if __name__ == "__main__":
    sys.exit(main())
