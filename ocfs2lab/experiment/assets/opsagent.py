#!/usr/bin/env python3
"""ocfs2lab operations agent: runs file operations the lab sends, one at a time, and answers.

Copied to a node and run there (python3, standard library only). It connects to the lab
(``--server HOST:PORT`` over TCP), sends ``{"type": "hello", "node": N, "pid": P}`` and
then answers each request line ``{"id": I, "f": F, "key": K, "value": V}`` with
``{"id": I, "ok": true, "value": R}`` or ``{"id": I, "ok": false, "error": E}``. The lab
stamps each request when it sends it and each answer when it arrives: the operation
happened in between.

Operations, on files under ``--dir`` (one file per key):

* ``write``: ``V`` as one fixed-size record at offset 0 (one ``pwrite``, then fsync): a
  register; ``read`` of such a key returns the value, or null for a missing file.
* ``append``: one line ``<V> <crc32>`` appended with ``O_APPEND``, then fsync; ``read`` of a
  log key returns ``{"values": [...], "torn": [...]}`` (lines whose checksum fails). With
  ``--append-lock flock``, each append holds that lock and stats the file before writing.
* ``incr``: under an exclusive ``flock`` or ``fcntl`` lock (``--lock``), read the counter,
  hold the lock ``--hold`` seconds, write the counter plus one, fsync, unlock; returns
  ``[read, wrote]``. ``read`` of a counter key returns the number.

Exit status: 0 when the lab closes the connection, 2 when it cannot be reached.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import sys
import time
import zlib
from typing import Any

RECORD = 64


def _path(root: str, key: str) -> str:
    return os.path.join(root, key)


def write_register(path: str, value: Any) -> None:
    data = json.dumps(value).encode()
    if len(data) >= RECORD:
        raise ValueError(f"value too long for a {RECORD}-byte record")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data.ljust(RECORD - 1) + b"\n", 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_register(path: str) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        data = os.pread(fd, RECORD, 0)
    finally:
        os.close(fd)
    text = data.decode(errors="replace").strip()
    return json.loads(text) if text else None


def append_record(path: str, value: str, lock: str) -> None:
    body = str(value)
    line = f"{body} {zlib.crc32(body.encode()):08x}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        if lock != "none":
            _lock(fd, lock, True)
            # The size the append goes to is the kernel's cached one: stat it under the
            # lock so a cluster file system reads the current size first.
            os.fstat(fd)
        os.write(fd, line)
        os.fsync(fd)
        if lock != "none":
            _lock(fd, lock, False)
    finally:
        os.close(fd)


def read_log(path: str) -> dict[str, list[str]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {"values": [], "torn": []}
    values, torn = [], []
    for raw in data.split(b"\n"):
        if not raw:
            continue
        text = raw.decode(errors="replace")
        body, _, crc = text.rpartition(" ")
        if body and crc == f"{zlib.crc32(body.encode()):08x}":
            values.append(body)
        else:
            torn.append(text[:80])
    return {"values": values, "torn": torn}


def _lock(fd: int, lock: str, take: bool) -> None:
    if lock == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX if take else fcntl.LOCK_UN)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX if take else fcntl.LOCK_UN)


def increment(path: str, lock: str, hold: float) -> list[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, lock, True)
        try:
            text = os.pread(fd, RECORD, 0).decode(errors="replace").strip()
            seen = int(text) if text else 0
            if hold > 0:
                time.sleep(hold)
            os.pwrite(fd, str(seen + 1).encode().ljust(RECORD - 1) + b"\n", 0)
            os.fsync(fd)
        finally:
            _lock(fd, lock, False)
    finally:
        os.close(fd)
    return [seen, seen + 1]


def read_counter(path: str) -> int:
    value = read_register(path)
    return int(value) if value is not None else 0


def run(request: dict[str, Any], args: argparse.Namespace) -> Any:
    f, key, value = request["f"], request["key"], request.get("value")
    path = _path(args.dir, key)
    kind = request.get("kind", "register")
    if f == "write":
        return write_register(path, value)
    if f == "append":
        return append_record(path, str(value), args.append_lock)
    if f == "incr":
        return increment(path, args.lock, args.hold)
    if f == "read":
        if kind == "log":
            return read_log(path)
        if kind == "counter":
            return read_counter(path)
        return read_register(path)
    raise ValueError(f"unknown operation {f!r}")


def _connect(address: str, timeout: float) -> socket.socket:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", required=True, help="HOST:PORT of the lab")
    parser.add_argument("--node", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--lock", choices=("flock", "fcntl"), default="flock")
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--append-lock", choices=("none", "flock", "fcntl"), default="none")
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    try:
        sock = _connect(args.server, args.connect_timeout)
    except OSError as err:
        print(f"opsagent: cannot reach {args.server}: {err}", file=sys.stderr)
        return 2
    sock.settimeout(None)
    stream = sock.makefile("rwb", buffering=0)
    hello = {"type": "hello", "node": args.node, "pid": os.getpid()}
    stream.write((json.dumps(hello) + "\n").encode())
    for line in stream:
        request = json.loads(line)
        try:
            answer = {"id": request["id"], "ok": True, "value": run(request, args)}
        except Exception as err:  # every failure is an answer
            answer = {"id": request["id"], "ok": False, "error": f"{type(err).__name__}: {err}"}
        stream.write((json.dumps(answer) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
