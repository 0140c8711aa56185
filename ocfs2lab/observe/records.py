"""Timeline events as flat records: a list of dicts, or a pandas DataFrame.

One row per event, with the columns of `RECORD_COLUMNS`: the host time, the node, the kind,
the kernel message's fields and the lab event's data. pandas belongs to the optional
``notebook`` extra ([`ocfs2lab.observe.optional`][ocfs2lab.observe.optional]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ocfs2lab.observe.events import TimelineEvent
from ocfs2lab.observe.optional import require_module

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped,unused-ignore]

__all__ = ["RECORD_COLUMNS", "to_dataframe", "to_records"]

#: Columns of `to_records` / `to_dataframe`, in order.
RECORD_COLUMNS = (
    "time",
    "t",
    "node",
    "source",
    "kind",
    "subsystem",
    "is_error",
    "text",
    "about",
    "peer_name",
    "domain",
    "master",
    "dead_node",
    "slot",
    "device",
    "duration_ms",
    "kernel_time",
    "detail",
    "data",
    "raw",
    "seq",
)


def _record(e: TimelineEvent, origin: float) -> dict[str, Any]:
    k = e.kernel
    return {
        "time": e.time,
        "t": e.time - origin,
        "node": e.node,
        "source": e.source,
        "kind": e.kind.value,
        "subsystem": e.subsystem,
        "is_error": e.is_error,
        "text": e.text,
        "about": k.node if k else None,
        "peer_name": k.node_name if k else None,
        "domain": k.domain if k else None,
        "master": k.master if k else None,
        "dead_node": k.dead_node if k else None,
        "slot": k.slot if k else None,
        "device": f"{k.device[0]},{k.device[1]}" if k and k.device else None,
        "duration_ms": k.duration_ms if k else None,
        "kernel_time": k.timestamp if k else None,
        "detail": k.detail if k else (e.lab.detail if e.lab else None),
        "data": dict(e.lab.data) if e.lab else None,
        "raw": k.raw if k else None,
        "seq": e.seq,
    }


def to_records(events: Iterable[TimelineEvent], *, origin: float = 0.0) -> list[dict[str, Any]]:
    """One flat dict per event, keys `RECORD_COLUMNS`.

    ``time`` is the host wall clock, ``t`` seconds since ``origin``; ``node`` the node's
    name; ``about`` the node number a kernel message is about (peer, evicted or dead node);
    ``kernel_time`` the kernel's own seconds-since-boot stamp; ``data`` a lab event's data.

    Args:
        events: Timeline events.
        origin: Host time that ``t`` counts from.

    Returns:
        A list of dicts (JSON-compatible except ``data`` values given as such).
    """
    return [_record(e, origin) for e in events]


def to_dataframe(events: Sequence[TimelineEvent], *, origin: float = 0.0) -> DataFrame:
    """The events as a pandas DataFrame with the columns of
    [`to_records`][ocfs2lab.observe.records.to_records].

    ``time`` becomes a timezone-aware ``datetime64`` column (UTC) named ``when``; ``time``
    stays the float host clock. ``kind``, ``node``, ``source`` and ``subsystem`` are
    categoricals.

    Raises:
        MissingDependency: pandas is not installed (the ``notebook`` extra).
    """
    pd = require_module("pandas", "pandas", "Timeline.to_dataframe()")
    frame = pd.DataFrame.from_records(to_records(events, origin=origin), columns=RECORD_COLUMNS)
    frame.insert(1, "when", pd.to_datetime(frame["time"], unit="s", utc=True))
    for column in ("node", "source", "kind", "subsystem"):
        frame[column] = frame[column].astype("category")
    return frame
