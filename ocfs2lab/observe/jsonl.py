"""Timelines as JSON lines: a header line (format, version, origin, meta), then one event a line.

Each event keeps all it holds ([`event_to_json`][ocfs2lab.observe.jsonl.event_to_json] and
[`event_from_json`][ocfs2lab.observe.jsonl.event_from_json] round-trip), so a saved timeline
can be read back, waited on and plotted like a live one:
[`Timeline.save_jsonl`][ocfs2lab.observe.timeline.Timeline.save_jsonl] and
[`Timeline.load_jsonl`][ocfs2lab.observe.timeline.Timeline.load_jsonl] write and read the file
through [`write_jsonl`][ocfs2lab.observe.jsonl.write_jsonl] and
[`read_jsonl`][ocfs2lab.observe.jsonl.read_jsonl].
"""

from __future__ import annotations

import enum
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ocfs2lab.errors import ParseError
from ocfs2lab.formats.kmsg import EventKind, KernelEvent, MlogPrefix
from ocfs2lab.observe.events import LabEvent, LabEventKind, TimelineEvent

__all__ = [
    "FORMAT",
    "TimelineFile",
    "event_from_json",
    "event_to_json",
    "read_jsonl",
    "write_jsonl",
]

log = logging.getLogger(__name__)

#: The ``format`` field of a timeline file's header line.
FORMAT = "ocfs2lab.timeline"
_VERSION = 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, ipaddress.IPv4Address):
        return str(value)
    if isinstance(value, MlogPrefix):
        return attrs.asdict(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _kernel_to_json(event: KernelEvent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in attrs.fields(KernelEvent):
        value = getattr(event, f.name)
        if f.name in ("kind", "raw", "message") or value != f.default:
            out[f.name] = _jsonable(value)
    return out


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


_KERNEL_FIELDS = {f.name for f in attrs.fields(KernelEvent)}


def _kernel_from_json(data: dict[str, Any]) -> KernelEvent:
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _KERNEL_FIELDS:
            log.debug("timeline file: kernel field %r is unknown here, skipped", name)
            continue
        if name == "kind":
            try:
                values[name] = EventKind(value)
            except ValueError:
                values[name] = EventKind.UNKNOWN
        elif name == "address":
            values[name] = None if value is None else ipaddress.IPv4Address(value)
        elif name == "mlog":
            values[name] = None if value is None else MlogPrefix(**value)
        else:
            values[name] = _tuples(value)
    return KernelEvent(**values)


def event_to_json(event: TimelineEvent) -> dict[str, Any]:
    """A timeline event as a JSON-compatible dict (full fidelity; see
    [`event_from_json`][ocfs2lab.observe.jsonl.event_from_json])."""
    out: dict[str, Any] = {
        "time": event.time,
        "seq": event.seq,
        "node": event.node,
        "kind": event.kind.value,
    }
    if event.kernel is not None:
        out["kernel"] = _kernel_to_json(event.kernel)
    if event.lab is not None:
        out["lab"] = {"detail": event.lab.detail, "data": event.lab.data}
    return out


def event_from_json(data: dict[str, Any]) -> TimelineEvent:
    """Rebuild a timeline event from [`event_to_json`][ocfs2lab.observe.jsonl.event_to_json]'s
    dict.

    Raises:
        KeyError: A required field is missing.
        ValueError: A field has an impossible value.
    """
    if "kernel" in data:
        kernel = _kernel_from_json(data["kernel"])
        return TimelineEvent(
            float(data["time"]), data.get("node"), kernel.kind, int(data["seq"]), kernel=kernel
        )
    lab_data = data["lab"]
    try:
        kind = LabEventKind(data["kind"])
    except ValueError:
        kind = LabEventKind.NOTE
    lab = LabEvent(kind, lab_data.get("detail", ""), lab_data.get("data") or {})
    return TimelineEvent(float(data["time"]), data.get("node"), kind, int(data["seq"]), lab=lab)


@attrs.frozen
class TimelineFile:
    """What a timeline file holds.

    Attributes:
        origin: The timeline's origin (host time).
        meta: What the events were recorded on (the timeline's ``meta``).
        events: The events in time order, their ``seq`` kept.
    """

    origin: float
    meta: dict[str, Any]
    events: list[TimelineEvent]


def write_jsonl(
    path: str | Path,
    *,
    origin: float,
    meta: Mapping[str, Any],
    events: Iterable[TimelineEvent],
) -> Path:
    """Write a header line (format, version, ``origin``, ``meta``), then one event per line.

    Returns:
        The path written.

    Raises:
        OSError: The file cannot be written.
    """
    target = Path(path)
    count = 0
    with target.open("w", encoding="utf-8") as out:
        header = {"format": FORMAT, "version": _VERSION, "origin": origin, "meta": meta}
        out.write(json.dumps(header, default=str) + "\n")
        for e in events:
            out.write(json.dumps(event_to_json(e), ensure_ascii=False, default=str) + "\n")
            count += 1
    log.debug("timeline: %d events written to %s", count, target)
    return target


def _header(data: Any, what: str, number: int, line: str) -> tuple[float, dict[str, Any]]:
    """The origin and meta of a header line.

    Raises:
        ParseError: Not a header of a timeline file this library reads.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ParseError(what, f"the first line must be a {FORMAT} header", line=number, text=line)
    if int(data.get("version", 0)) > _VERSION:
        raise ParseError(
            what, f"version {data['version']} is newer than this library reads", line=number
        )
    meta = data.get("meta")
    return float(data["origin"]), dict(meta) if isinstance(meta, dict) else {}


def read_jsonl(path: str | Path) -> TimelineFile:
    """Read a file written by [`write_jsonl`][ocfs2lab.observe.jsonl.write_jsonl].

    Returns:
        Its origin, meta and events (sorted by time, then ``seq``).

    Raises:
        ParseError: Not a timeline file, or a line that is not a valid event.
        OSError: The file cannot be read.
    """
    source = Path(path)
    what = f"timeline file {source}"
    events: list[TimelineEvent] = []
    header: tuple[float, dict[str, Any]] | None = None
    with source.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ParseError(what, f"not JSON ({exc.msg})", line=number, text=line) from exc
            if header is None:
                header = _header(data, what, number, line)
                continue
            try:
                events.append(event_from_json(data))
            except (KeyError, TypeError, ValueError) as exc:
                raise ParseError(what, f"not an event ({exc})", line=number, text=line) from exc
    if header is None:
        raise ParseError(what, "empty file")
    events.sort(key=lambda e: (e.time, e.seq))
    origin, meta = header
    return TimelineFile(origin, meta, events)
