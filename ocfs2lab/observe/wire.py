"""The node-side writer and what it sends: the script, its records, its messages.

Each node runs the writer ([`writer_script`][ocfs2lab.observe.wire.writer_script], copied to
the node and run with python3). It writes records whose content follows from the node's name,
the record number and the size alone ([`record_content`][ocfs2lab.observe.wire.record_content]),
fsyncs each one and reports it to the host the moment fsync returns.

Wire protocol: one JSON object per line, ``{"type": "hello" | "ack" | "bye", "v": 1, ...}``
(see the writer's docstring). A ``hello`` becomes a
[`WriterInfo`][ocfs2lab.observe.wire.WriterInfo]
([`writer_from_hello`][ocfs2lab.observe.wire.writer_from_hello]), an ``ack`` a
[`WriteAck`][ocfs2lab.observe.wire.WriteAck]
([`ack_from_message`][ocfs2lab.observe.wire.ack_from_message]), each stamped with the host
clock on arrival. The server that receives them is
[`WriteRecorder`][ocfs2lab.observe.recorder.WriteRecorder].
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

__all__ = [
    "WriteAck",
    "WriterInfo",
    "ack_from_message",
    "record_content",
    "writer_from_hello",
    "writer_script",
]


def writer_script() -> Path:
    """Path of the writer script (``assets/writer.py``) to copy to nodes."""
    return Path(__file__).resolve().parent / "assets" / "writer.py"


def record_content(node: str, seq: int, size: int) -> bytes:
    """The bytes the writer writes as record ``seq`` of ``node`` (same as ``writer.py``).

    Args:
        node: The writer's node name.
        seq: The record number.
        size: Record size in bytes.

    Returns:
        ``size`` bytes: a readable header line, then SHAKE-256 of that header.
    """
    header = f"ocfs2lab-writer node={node} seq={seq} size={size}\n".encode()
    if len(header) >= size:
        return header[:size]
    return header + hashlib.shake_256(header).digest(size - len(header))


@frozen
class WriteAck:
    """One fsync-acknowledged write, as reported by a writer.

    Attributes:
        node: The writer's node name.
        seq: Record number (per writer).
        path: File path on the node.
        offset: Byte offset of the record.
        length: Record length.
        sha256: Hex SHA-256 of the record's content.
        host_time: Host wall clock when the report arrived.
        node_time: The node's wall clock when fsync returned (informational: node clocks
            are not the timeline's clock).
        pid: The writer's pid on the node.
    """

    node: str
    seq: int
    path: str
    offset: int
    length: int
    sha256: str
    host_time: float
    node_time: float | None = None
    pid: int | None = None


@frozen
class WriterInfo:
    """A writer that connected to the recorder.

    Attributes:
        node: Its node name.
        pid: Its pid on the node.
        path: The file it writes.
        size: Its record size.
        started: Host time of its ``hello``.
        stopped: Host time of its ``bye`` or of its connection's end (``None``: running).
        clean: It said ``bye`` (exited cleanly).
        reason: What the ``bye`` said, or why the connection ended.
        records: Records acknowledged over this connection.
    """

    node: str
    pid: int | None
    path: str
    size: int | None
    started: float
    stopped: float | None = None
    clean: bool = False
    reason: str | None = None
    records: int = 0


def _optional_int(message: Mapping[str, Any], key: str) -> int | None:
    return int(message[key]) if message.get(key) is not None else None


def ack_from_message(message: Mapping[str, Any], arrival: float) -> WriteAck:
    """The acknowledgement an ``ack`` message reports.

    Args:
        message: The decoded JSON object.
        arrival: Host time the line arrived.

    Raises:
        KeyError: A required field is missing.
        ValueError: A field has an impossible value (negative offset, empty record, a
            sha256 that is not 64 hex digits long).
        TypeError: A field has the wrong type.
    """
    ack = WriteAck(
        node=str(message["node"]),
        seq=int(message["seq"]),
        path=str(message["path"]),
        offset=int(message["offset"]),
        length=int(message["length"]),
        sha256=str(message["sha256"]).lower(),
        host_time=arrival,
        node_time=float(message["t"]) if message.get("t") is not None else None,
        pid=_optional_int(message, "pid"),
    )
    if ack.offset < 0 or ack.length <= 0 or len(ack.sha256) != 64:
        raise ValueError("bad offset, length or sha256")
    return ack


def writer_from_hello(message: Mapping[str, Any], arrival: float) -> WriterInfo:
    """The writer a ``hello`` message announces, started at ``arrival`` (host time).

    Raises:
        KeyError: The node's name is missing.
        ValueError: A field has an impossible value.
        TypeError: A field has the wrong type.
    """
    return WriterInfo(
        node=str(message["node"]),
        pid=_optional_int(message, "pid"),
        path=str(message.get("path", "")),
        size=_optional_int(message, "size"),
        started=arrival,
    )
