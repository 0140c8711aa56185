"""One clock for everything that happens in a lab: kernel messages and the library's actions.

A [`Timeline`][ocfs2lab.observe.timeline.Timeline] holds
[`TimelineEvent`][ocfs2lab.observe.events.TimelineEvent] objects stamped with the host's wall
clock (``time.time()``): kernel messages of every node (a
[`KernelEvent`][ocfs2lab.formats.kmsg.KernelEvent] with the node's name and the host time the line
arrived) and the lab's own actions ([`LabEvent`][ocfs2lab.observe.events.LabEvent]: a fault
injected or healed, a command started or ended, a phase, a write acknowledged). Events are kept in
time order; appending is thread-safe (console reader threads, the dmesg poller and the write
recorder all feed one timeline), and nothing is
dropped: kernel lines of no known shape are kept as ``UNKNOWN`` events.

Waiting on it never polls: [`Timeline.expect`][ocfs2lab.observe.timeline.Timeline.expect] sleeps on
a condition that every append wakes, until an ordered sequence of expected events has appeared, and
fails at once on a forbidden one (by default any kernel error: BUG, oops, WARNING, panic, hung task,
OCFS2 ERROR).

Exports ([`Timeline.to_records`][ocfs2lab.observe.timeline.Timeline.to_records],
[`Timeline.to_dataframe`][ocfs2lab.observe.timeline.Timeline.to_dataframe],
[`Timeline.plot`][ocfs2lab.observe.timeline.Timeline.plot],
[`Timeline.save_jsonl`][ocfs2lab.observe.timeline.Timeline.save_jsonl],
[`Timeline.load_jsonl`][ocfs2lab.observe.timeline.Timeline.load_jsonl]) are done by
[`ocfs2lab.observe.records`][ocfs2lab.observe.records],
[`ocfs2lab.observe.plotting`][ocfs2lab.observe.plotting] and
[`ocfs2lab.observe.jsonl`][ocfs2lab.observe.jsonl] (all gathered in
[`ocfs2lab.observe.export`][ocfs2lab.observe.export]); pandas and matplotlib are imported only
when used. The event types live in [`ocfs2lab.observe.events`][ocfs2lab.observe.events] and are
importable from here as well.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from attrs import field, frozen

from ocfs2lab.errors import (
    ExpectTimeout,
    ForbiddenEvent,
    KernelErrorsFound,
    SpecError,
    TimelineError,
)
from ocfs2lab.formats.kmsg import ERROR_KINDS, EventKind, KernelEvent, parse_kernel_line
from ocfs2lab.observe import jsonl, plotting, records
from ocfs2lab.observe.events import Kind, LabEvent, LabEventKind, TimelineEvent
from ocfs2lab.wait import Deadline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from pandas import DataFrame  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "Expect",
    "ExpectTimeout",
    "ForbiddenEvent",
    "KernelErrorsFound",
    "Kind",
    "LabEvent",
    "LabEventKind",
    "Step",
    "Timeline",
    "TimelineError",
    "TimelineEvent",
    "kind_of",
]

log = logging.getLogger(__name__)


@frozen
class Expect:
    """One expected (or forbidden) event, for
    [`Timeline.expect`][ocfs2lab.observe.timeline.Timeline.expect].

    Attributes:
        kind: The event kind.
        node: Only events on this node (``None``: any node).
        about: Only kernel events about this node number (``KernelEvent.node``: the peer
            that was lost, the evicted node, the node whose journal is replayed).
        where: Any further condition on the event.
        label: How to name this step in messages (default: built from the fields).
    """

    kind: Kind
    node: str | None = None
    about: int | None = None
    where: Callable[[TimelineEvent], bool] | None = field(default=None, eq=False, hash=False)
    label: str | None = None

    def matches(self, event: TimelineEvent) -> bool:
        """True when ``event`` is one of these."""
        if event.kind is not self.kind:
            return False
        if self.node is not None and event.node != self.node:
            return False
        if self.about is not None and event.about != self.about:
            return False
        return self.where is None or bool(self.where(event))

    def describe(self) -> str:
        """The step in words (``o2net_lost on node1 about node 3``)."""
        if self.label:
            return self.label
        text = self.kind.value
        if self.node is not None:
            text += f" on {self.node}"
        if self.about is not None:
            text += f" about node {self.about}"
        if self.where is not None:
            text += " (with a condition)"
        return text


#: What `Timeline.expect` takes as a step: a kind (on any node), a kind's value
#: (``"o2net_lost"``), or an `Expect`.
Step: TypeAlias = EventKind | LabEventKind | Expect | str


def kind_of(value: Kind | str) -> Kind:
    """The kind named by ``value`` (a kind, or its value such as ``"recovery_end"``).

    Raises:
        ValueError: No kernel or lab event kind has that value.
    """
    if isinstance(value, EventKind | LabEventKind):
        return value
    for enum_type in (EventKind, LabEventKind):
        try:
            return enum_type(value)
        except ValueError:
            continue
    raise SpecError("kind", value, "is not an event kind (see EventKind and LabEventKind)")


def _as_expect(step: Step, node: str | None) -> Expect:
    if isinstance(step, Expect):
        if step.node is None and node is not None:
            return Expect(step.kind, node, step.about, step.where, step.label)
        return step
    if isinstance(step, str):
        return Expect(kind_of(step), node)
    raise TypeError(f"an expected step is an EventKind, LabEventKind or Expect, not {step!r}")


# ----------------------------------------------------------------------------------------
# Errors


# ----------------------------------------------------------------------------------------
# The timeline


def _kinds(value: Kind | str | Iterable[Kind | str] | None) -> frozenset[Kind] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({kind_of(value)})
    return frozenset(kind_of(v) for v in value)


def _nodes(value: str | Iterable[str | None] | None) -> frozenset[str | None] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


class _Matcher:
    """Incremental state of one [`Timeline.expect`][ocfs2lab.observe.timeline.Timeline.expect] call
    (used under the timeline lock)."""

    def __init__(
        self,
        steps: Sequence[Expect],
        forbid: Sequence[Expect],
        after: float | None,
        ordered: bool,
    ) -> None:
        self.steps = steps
        self.forbid = forbid
        self.after = after
        self.ordered = ordered
        self.reset()

    def reset(self) -> None:
        self.pos: int | None = None
        self.version = -1
        self.found: list[TimelineEvent | None] = [None] * len(self.steps)
        self.next_step = 0

    @property
    def done(self) -> bool:
        return all(e is not None for e in self.found)

    @property
    def matched(self) -> list[TimelineEvent]:
        if self.ordered:
            return [e for e in self.found if e is not None]
        return sorted((e for e in self.found if e is not None), key=lambda e: (e.time, e.seq))

    @property
    def missing(self) -> list[Expect]:
        return [s for s, e in zip(self.steps, self.found, strict=True) if e is None]

    def forbidden(self, event: TimelineEvent) -> bool:
        return any(f.matches(event) for f in self.forbid)

    def advance(
        self, events: list[TimelineEvent], times: array[float], version: int, reordered: int
    ) -> TimelineEvent | None:
        """Scan new events; return a forbidden event if one appeared."""
        if self.pos is None or reordered > self.version:
            # First scan, or an event was inserted before the end since the last scan (a
            # polled source delivered older events): start over from the window's start.
            self.found = [None] * len(self.steps)
            self.next_step = 0
            self.pos = 0 if self.after is None else bisect.bisect_left(times, self.after)
        for i in range(self.pos, len(events)):
            event = events[i]
            if self.forbidden(event):
                self.pos = i + 1
                self.version = version
                return event
            if self.ordered:
                if self.next_step < len(self.steps) and self.steps[self.next_step].matches(event):
                    self.found[self.next_step] = event
                    self.next_step += 1
            else:
                for k, step in enumerate(self.steps):
                    if self.found[k] is None and step.matches(event):
                        self.found[k] = event
                        break
        self.pos = len(events)
        self.version = version
        return None


class Timeline:
    """Kernel events of every node and the lab's actions, on the host's wall clock.

    Thread-safe: any thread may append while others read or wait.

    Args:
        origin: The time relative times are counted from (default: now).
        clock: The clock for events recorded without a time (default ``time.time``).
        tail: How many events error messages show.
    """

    def __init__(
        self,
        *,
        origin: float | None = None,
        clock: Callable[[], float] = time.time,
        tail: int = 25,
    ) -> None:
        self._clock = clock
        self.origin: float = clock() if origin is None else origin
        self.tail_count = tail
        self._cond = threading.Condition(threading.Lock())
        self._events: list[TimelineEvent] = []
        self._times: array[float] = array("d")
        self._seq = 0
        self._version = 0
        self._reordered = -1
        #: What the events were recorded on (the cluster sets ``kernel``: its release, recipe
        #: key, patches, tree commit, profile); saved in the JSON lines' header.
        self.meta: dict[str, Any] = {}

    # -- appending ------------------------------------------------------------------------
    def now(self) -> float:
        """The timeline's clock, now: use it as ``after=`` before acting."""
        return self._clock()

    def _insert(self, event: TimelineEvent) -> None:
        # Caller holds the lock. Almost every event belongs at the end; a polled source may
        # deliver older ones, which go in their place (after equal times: seq grows).
        if not self._times or event.time >= self._times[-1]:
            self._times.append(event.time)
            self._events.append(event)
        else:
            i = bisect.bisect_right(self._times, event.time)
            self._times.insert(i, event.time)
            self._events.insert(i, event)
            self._reordered = self._version + 1
        self._version += 1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_kernel(self, node: str, time: float, event: KernelEvent) -> TimelineEvent:
        """Append a parsed kernel message of ``node`` that arrived at host time ``time``.

        Returns:
            The timeline event.
        """
        with self._cond:
            entry = TimelineEvent(time, node, event.kind, self._next_seq(), kernel=event)
            self._insert(entry)
            self._cond.notify_all()
        return entry

    def add_kernel_events(
        self, node: str, events: Iterable[tuple[float, KernelEvent]]
    ) -> list[TimelineEvent]:
        """Append several kernel messages of ``node`` at once (one wake-up for waiters).

        Args:
            node: The node's name.
            events: ``(host_time, event)`` pairs.

        Returns:
            The timeline events, in the order given.
        """
        out: list[TimelineEvent] = []
        with self._cond:
            for stamp, event in events:
                entry = TimelineEvent(stamp, node, event.kind, self._next_seq(), kernel=event)
                self._insert(entry)
                out.append(entry)
            if out:
                self._cond.notify_all()
        return out

    def add_kernel_line(self, node: str, time: float, line: str) -> TimelineEvent:
        """Parse one kernel line (without o2dlm member-list assembly) and append it.

        Feed a line stream through [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed] instead
        when member lists matter.

        Returns:
            The timeline event.
        """
        return self.add_kernel(node, time, parse_kernel_line(line))

    def record(
        self,
        kind: LabEventKind,
        detail: str = "",
        *,
        node: str | None = None,
        time: float | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEvent:
        """Record an action of the lab.

        Args:
            kind: What happened.
            detail: Words: the fault's or phase's name, a command line.
            node: The node it concerns (``None``: the lab as a whole).
            time: When (default: now, on the timeline's clock).
            data: JSON-compatible details.

        Returns:
            The timeline event.
        """
        stamp = self._clock() if time is None else time
        lab = LabEvent(LabEventKind(kind), detail, data or {})
        with self._cond:
            entry = TimelineEvent(stamp, node, lab.kind, self._next_seq(), lab=lab)
            self._insert(entry)
            self._cond.notify_all()
        return entry

    def add(self, event: TimelineEvent) -> TimelineEvent:
        """Append an existing event (its time, node and payload kept; a new ``seq``).

        Returns:
            The event as stored.
        """
        with self._cond:
            entry = TimelineEvent(
                event.time, event.node, event.kind, self._next_seq(), event.kernel, event.lab
            )
            self._insert(entry)
            self._cond.notify_all()
        return entry

    @contextmanager
    def phase(self, name: str, *, node: str | None = None) -> Iterator[TimelineEvent]:
        """Record a named phase: ``PHASE_BEGIN`` on entry, ``PHASE_END`` on exit.

        The end event's data holds the duration and, when the block raised, the error.

        Yields:
            The begin event (its ``time`` is the phase's start: use it as ``after=``).
        """
        begin = self.record(LabEventKind.PHASE_BEGIN, name, node=node)
        data: dict[str, Any] = {}
        try:
            yield begin
        except BaseException as exc:
            data["error"] = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            end = self._clock()
            data["duration"] = end - begin.time
            self.record(LabEventKind.PHASE_END, name, node=node, time=end, data=data)

    # -- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    def __iter__(self) -> Iterator[TimelineEvent]:
        return iter(self.events())

    @property
    def nodes(self) -> list[str]:
        """Node names on the timeline, in order of their first event."""
        seen: dict[str, None] = {}
        with self._cond:
            for e in self._events:
                if e.node is not None and e.node not in seen:
                    seen[e.node] = None
        return list(seen)

    def events(
        self,
        kinds: Kind | str | Iterable[Kind | str] | None = None,
        *,
        node: str | Iterable[str | None] | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
    ) -> list[TimelineEvent]:
        """The events in time order, filtered.

        Args:
            kinds: Only these kinds (one kind or several; kinds or their values).
            node: Only these nodes (one name or several; ``None`` in a collection selects
                lab-wide events).
            since: Only events at or after this host time.
            until: Only events before this host time.
            source: ``"kernel"`` or ``"lab"`` only.

        Returns:
            A new list.

        Raises:
            ValueError: A kind given by value does not exist.
        """
        want = _kinds(kinds)
        nodes = _nodes(node)
        with self._cond:
            lo = 0 if since is None else bisect.bisect_left(self._times, since)
            hi = len(self._events) if until is None else bisect.bisect_left(self._times, until)
            window = self._events[lo:hi]
        return [
            e
            for e in window
            if (want is None or e.kind in want)
            and (nodes is None or e.node in nodes)
            and (source is None or e.source == source)
        ]

    def first(
        self,
        kind: Step,
        *,
        node: str | None = None,
        after: float | None = None,
    ) -> TimelineEvent | None:
        """The earliest event of ``kind`` (on ``node``, at or after ``after``), or ``None``.

        Raises:
            ValueError: A kind given by value does not exist.
        """
        step = _as_expect(kind, node)
        with self._cond:
            lo = 0 if after is None else bisect.bisect_left(self._times, after)
            for e in self._events[lo:]:
                if step.matches(e):
                    return e
        return None

    def last(self, kind: Step, *, node: str | None = None) -> TimelineEvent | None:
        """The latest event of ``kind`` (on ``node``), or ``None``.

        Raises:
            ValueError: A kind given by value does not exist.
        """
        step = _as_expect(kind, node)
        with self._cond:
            for e in reversed(self._events):
                if step.matches(e):
                    return e
        return None

    def tail(self, count: int | None = None) -> list[TimelineEvent]:
        """The last ``count`` events (default: the timeline's ``tail`` setting)."""
        n = self.tail_count if count is None else count
        with self._cond:
            return self._events[-n:] if n > 0 else []

    def errors(self, *, node: str | None = None, since: float | None = None) -> list[TimelineEvent]:
        """Kernel error events (BUG, oops, WARNING, panic, hung task, OCFS2 ERROR)."""
        return [e for e in self.events(node=node, since=since, source="kernel") if e.is_error]

    def assert_no_kernel_errors(
        self,
        *,
        allow: Iterable[Kind | Expect | str] = (),
        node: str | None = None,
        since: float | None = None,
    ) -> None:
        """Raise when the timeline holds a kernel error that is not allowed.

        Args:
            allow: Errors that are fine: kinds, [`Expect`][ocfs2lab.observe.timeline.Expect]
                patterns, or strings searched for in the kernel line's text.
            node: Only look at this node.
            since: Only look at events at or after this host time.

        Raises:
            KernelErrorsFound: With every error not allowed.
        """
        kinds: set[Kind] = set()
        patterns: list[Expect] = []
        texts: list[str] = []
        for item in allow:
            if isinstance(item, Expect):
                patterns.append(item)
            elif isinstance(item, EventKind | LabEventKind):
                kinds.add(item)
            else:
                texts.append(str(item))
        bad = [
            e
            for e in self.errors(node=node, since=since)
            if e.kind not in kinds
            and not any(p.matches(e) for p in patterns)
            and not any(t in (e.kernel.raw if e.kernel else "") for t in texts)
        ]
        if bad:
            raise KernelErrorsFound(bad, tail=self.tail(), origin=self.origin)

    # -- waiting --------------------------------------------------------------------------
    def expect(
        self,
        *steps: Step,
        timeout: float,
        after: float | None = None,
        node: str | None = None,
        forbid: Iterable[Step] | None = None,
        ordered: bool = True,
    ) -> list[TimelineEvent]:
        """Wait until the expected events have appeared, in order, at or after ``after``.

        Woken by every new event; no polling. An ordered wait matches each step with the
        earliest fitting event after the previous step's event (timeline order).

        Args:
            *steps: Expected kinds or [`Expect`][ocfs2lab.observe.timeline.Expect] patterns.
            timeout: Seconds to wait at most.
            after: Only events at or after this host time count (default: all).
            node: Default node for steps that name none.
            forbid: Events that fail the wait at once. ``None`` (default): every kernel
                error, except kinds listed in ``steps``; ``()``: nothing.
            ordered: False: each step may match anywhere in the window.

        Returns:
            The matched events, one per step (in time order).

        Raises:
            ForbiddenEvent: A forbidden event appeared (at or after ``after``).
            ExpectTimeout: Not every step appeared before the deadline (a
                [`WaitTimeout`][ocfs2lab.errors.WaitTimeout] carrying the timeline tail).
            ValueError: A kind given by value does not exist.
            TypeError: No step, or a step of another type.
        """
        wanted = [_as_expect(s, node) for s in steps]
        if not wanted:
            raise TypeError("expect() needs at least one step")
        if forbid is None:
            expected_kinds = {s.kind for s in wanted}
            forbid_list = [Expect(k) for k in ERROR_KINDS if k not in expected_kinds]
        else:
            forbid_list = [_as_expect(f, None) for f in forbid]
        matcher = _Matcher(wanted, forbid_list, after, ordered)
        what = " -> ".join(s.describe() for s in wanted)
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                bad = matcher.advance(self._events, self._times, self._version, self._reordered)
                if bad is not None:
                    raise ForbiddenEvent(
                        bad, matcher.matched, tail=self._tail_around(bad), origin=self.origin
                    )
                if matcher.done:
                    return matcher.matched
                if deadline.expired:
                    raise ExpectTimeout(
                        what,
                        timeout,
                        matched=matcher.matched,
                        missing=matcher.missing,
                        tail=self._events[-self.tail_count :],
                        origin=self.origin,
                    )
                self._cond.wait(deadline.remaining)

    def _tail_around(self, event: TimelineEvent) -> list[TimelineEvent]:
        # Caller holds the lock: the events up to and including ``event``.
        i = bisect.bisect_right(self._times, event.time)
        return self._events[max(0, i - self.tail_count) : i]

    # -- exports (also gathered in ocfs2lab.observe.export) --------------------------------
    def to_records(self, *, origin: float | None = None) -> list[dict[str, Any]]:
        """One flat dict per event (see
        [`ocfs2lab.observe.records.to_records`][ocfs2lab.observe.records.to_records])."""
        return records.to_records(self.events(), origin=self.origin if origin is None else origin)

    def to_dataframe(self, *, origin: float | None = None) -> DataFrame:
        """The events as a pandas DataFrame, one row per event (see
        [`ocfs2lab.observe.records.to_dataframe`][ocfs2lab.observe.records.to_dataframe]).

        Raises:
            MissingDependency: pandas is not installed (the ``notebook`` extra).
        """
        return records.to_dataframe(self.events(), origin=self.origin if origin is None else origin)

    def plot(
        self,
        ax: Axes | None = None,
        *,
        origin: float | None = None,
        since: float | None = None,
        until: float | None = None,
        unknown: bool = True,
        title: str | None = None,
    ) -> Figure:
        """Draw the timeline: one lane per node (see
        [`ocfs2lab.observe.plotting.plot`][ocfs2lab.observe.plotting.plot]).

        Raises:
            MissingDependency: matplotlib is not installed (the ``notebook`` extra).
        """
        return plotting.plot(
            self.events(since=since, until=until),
            ax=ax,
            origin=self.origin if origin is None else origin,
            unknown=unknown,
            title=title,
        )

    def save_jsonl(self, path: str | Path) -> Path:
        """Write the timeline to a JSON-lines file (header line, then one event per line; see
        [`ocfs2lab.observe.jsonl`][ocfs2lab.observe.jsonl]).

        Returns:
            The path written.

        Raises:
            OSError: The file cannot be written.
        """
        return jsonl.write_jsonl(path, origin=self.origin, meta=self.meta, events=self.events())

    @classmethod
    def load_jsonl(cls, path: str | Path) -> Timeline:
        """Read a timeline written by [`save_jsonl`][ocfs2lab.observe.timeline.Timeline.save_jsonl].

        Returns:
            A new timeline with the file's origin, meta and events (``seq`` kept).

        Raises:
            ParseError: The file is not a timeline file.
            OSError: The file cannot be read.
        """
        saved = jsonl.read_jsonl(path)
        timeline = Timeline(origin=saved.origin)
        timeline.meta = saved.meta
        timeline._restore(saved.events)
        return timeline

    def _restore(self, events: Iterable[TimelineEvent]) -> None:
        """Add loaded events keeping their ``seq`` (used by
        [`load_jsonl`][ocfs2lab.observe.timeline.Timeline.load_jsonl])."""
        with self._cond:
            for e in events:
                self._insert(e)
                self._seq = max(self._seq, e.seq)
            self._cond.notify_all()
