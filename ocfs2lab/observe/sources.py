"""Feeding a timeline: a VM's serial console, or ``dmesg`` polled through a runner.

* [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed] takes ``(host_time, line)`` pairs as a
  console reader produces them (a `LineSink`), assembles o2dlm member lists
  ([`KmsgAssembler`][ocfs2lab.formats.kmsg.KmsgAssembler]) and appends the events to a timeline,
  each stamped with the host time its line arrived. ``feed.attach(serial_console)`` subscribes it to
  a [`SerialConsole`][ocfs2lab.vm.console.SerialConsole].
* [`DmesgPoller`][ocfs2lab.observe.sources.DmesgPoller] is for machines without a console the lab
  reads (the host kernel of container nodes, an [`Node`][ocfs2lab.node.base.Node] over SSH): a
      thread runs
  ``sh -c 'cat /proc/uptime; dmesg'`` through a [`Runner`][ocfs2lab.runner.base.Runner]
  every ``interval`` seconds, maps the kernel's ``[seconds since boot]`` stamps to the
  host's wall clock ([`ClockMap`][ocfs2lab.observe.sources.ClockMap]) and appends only lines not
  seen before ([`DmesgDedupe`][ocfs2lab.observe.sources.DmesgDedupe]). The pure parts
  ([`parse_dmesg_poll`][ocfs2lab.observe.sources.parse_dmesg_poll],
  [`ClockMap`][ocfs2lab.observe.sources.ClockMap],
  [`DmesgDedupe`][ocfs2lab.observe.sources.DmesgDedupe]) need no process.
"""

from __future__ import annotations

import collections
import heapq
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeAlias

from attrs import frozen

from ocfs2lab.errors import Ocfs2LabError, ParseError, SpecError
from ocfs2lab.formats.kmsg import KernelEvent, KmsgAssembler
from ocfs2lab.observe.events import LabEventKind, TimelineEvent
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.runner.base import Runner

__all__ = [
    "DMESG_COMMAND",
    "ClockMap",
    "ConsoleFeed",
    "ConsoleTap",
    "DmesgDedupe",
    "DmesgLine",
    "DmesgPoller",
    "LineSink",
    "LineSource",
    "StampedLine",
    "TimelineSource",
    "parse_dmesg_poll",
    "parse_uptime",
]

log = logging.getLogger(__name__)

#: What a console reader calls for every line: ``sink(host_time, text)``, where
#: ``host_time`` is ``time.time()`` when the line's first byte arrived and ``text`` the line
#: without its line ending. Called from the reader's thread; must be quick and not raise.
LineSink: TypeAlias = Callable[[float, str], None]


class StampedLine(Protocol):
    """A line stamped with the host clock ([`ConsoleLine`][ocfs2lab.vm.console.ConsoleLine])."""

    @property
    def time(self) -> float:
        """Host wall clock when the line arrived."""
        ...

    @property
    def text(self) -> str:
        """The line, without its line ending."""
        ...


class LineSource(Protocol):
    """Something that calls listeners with stamped lines
    ([`SerialConsole`][ocfs2lab.vm.console.SerialConsole])."""

    def add_listener(self, callback: Callable[[StampedLine], None]) -> None:
        """Call ``callback`` with every new line."""
        ...


def _take_stamps(
    pending: collections.deque[tuple[float, str]],
    events: Iterable[KernelEvent],
    fallback: float,
) -> list[tuple[float, KernelEvent]]:
    """Pair events with the host stamps of their lines, taking those lines off ``pending``.

    Events come out of an assembler in log order; an assembled one carries its lines' raws
    joined by newlines and takes the stamp of its first line.
    """
    out: list[tuple[float, KernelEvent]] = []
    for event in events:
        stamp: float | None = None
        for raw in event.raw.split("\n"):
            for i, (t, text) in enumerate(pending):
                if text == raw:
                    del pending[i]
                    if stamp is None:
                        stamp = t
                    break
        if stamp is None:  # not expected: keep the event, on the fallback time
            log.debug("no stamp found for %r", event.raw[:80])
            stamp = fallback
        out.append((stamp, event))
    return out


# ----------------------------------------------------------------------------------------
# Console lines


class ConsoleFeed:
    """Turns one node's stamped console lines into timeline events.

    Each non-blank line is parsed; an o2dlm join/leave line is held until its member list
    (printed as separate lines) is complete, or ``hold`` seconds passed (a timer releases
    it: a quiet console does not hide the event), or ``max_interleaved`` other lines came.
    Every event keeps the host time of its own first line. Blank lines are skipped; every
    other line ends up on the timeline (unknown ones as ``UNKNOWN`` events).

    Thread-safe: the console's reader thread calls it, the hold timer may flush it.

    Args:
        timeline: Where the events go.
        node: The node's name on the timeline.
        hold: Longest time a join/leave event waits for its member list (seconds).
        max_interleaved: Passed to [`KmsgAssembler`][ocfs2lab.formats.kmsg.KmsgAssembler].
    """

    def __init__(
        self,
        timeline: Timeline,
        node: str,
        *,
        hold: float = 0.5,
        max_interleaved: int = 8,
    ) -> None:
        self.timeline = timeline
        self.node = node
        self.hold = hold
        self._assembler = KmsgAssembler(max_interleaved=max_interleaved)
        self._pending: collections.deque[tuple[float, str]] = collections.deque()
        self._lock = threading.Lock()
        self._timer: _Call | None = None
        self._closed = False
        self.lines_seen = 0
        self.events_added = 0

    def __repr__(self) -> str:
        return f"ConsoleFeed(node={self.node!r}, lines={self.lines_seen})"

    def __call__(self, host_time: float, line: str) -> None:
        """Take one line (the `LineSink` interface). Never raises.

        Args:
            host_time: Host wall clock when the line arrived.
            line: The line; text with embedded newlines counts as several lines.
        """
        self.feed_lines(((host_time, line),))

    def on_line(self, line: StampedLine) -> None:
        """Take a [`ConsoleLine`][ocfs2lab.vm.console.ConsoleLine] (a console listener)."""
        self.feed_lines(((line.time, line.text),))

    def attach(self, source: LineSource) -> ConsoleFeed:
        """Subscribe to a console: ``source.add_listener(self.on_line)``.

        Returns:
            This feed.
        """
        source.add_listener(self.on_line)
        return self

    def feed_lines(self, lines: Iterable[tuple[float, str]]) -> None:
        """Take several ``(host_time, line)`` pairs (waiters woken once). Never raises."""
        try:
            with self._lock:
                out: list[tuple[float, KernelEvent]] = []
                for stamp, text in lines:
                    for part in str(text).split("\n"):
                        if not part.strip():
                            continue
                        self.lines_seen += 1
                        self._pending.append((stamp, part))
                        released = self._assembler.feed(part)
                        out.extend(self._stamp(released))
                        # One timer per held event: a release may come with a new hold.
                        self._arm_timer(restart=bool(released))
                self._emit(out)
        except Exception:  # the console thread must survive any bug here
            log.exception("%s: console feed failed", self.node)

    def flush(self) -> int:
        """Release a held join/leave event now.

        Returns:
            The number of events added.
        """
        with self._lock:
            return self._emit(self._stamp(self._assembler.flush()))

    def close(self) -> None:
        """Flush and stop the hold timer; idempotent."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancelled = True
                self._timer = None
            self._emit(self._stamp(self._assembler.flush()))

    # Caller holds the lock for the helpers below.
    def _emit(self, out: list[tuple[float, KernelEvent]]) -> int:
        if out:
            self.timeline.add_kernel_events(self.node, out)
            self.events_added += len(out)
        return len(out)

    def _stamp(self, events: list[KernelEvent]) -> list[tuple[float, KernelEvent]]:
        fallback = self._pending[-1][0] if self._pending else time.time()
        return _take_stamps(self._pending, events, fallback)

    def _arm_timer(self, *, restart: bool = False) -> None:
        wanted = not self._closed and self._assembler.pending and self.hold > 0
        if self._timer is not None and (restart or not wanted):
            self._timer.cancelled = True
            self._timer = None
        if wanted and self._timer is None:
            self._timer = _SCHEDULER.call_later(self.hold, self._expire)

    def _expire(self, call: _Call) -> None:
        try:
            with self._lock:
                if call is not self._timer:
                    return
                self._timer = None
                self._emit(self._stamp(self._assembler.flush()))
        except Exception:
            log.exception("%s: console feed flush failed", self.node)


class _Call:
    """A delayed call of `_Scheduler`; set ``cancelled`` to drop it."""

    __slots__ = ("cancelled", "function")

    def __init__(self, function: Callable[[_Call], None]) -> None:
        self.function = function
        self.cancelled = False


class _Scheduler:
    """One daemon thread that runs the delayed calls of every
    [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed].

    A thread per held event (``threading.Timer``) costs a thread start each time an o2dlm
    join/leave line arrives; this one starts once, sleeps on a condition until the next
    call is due, and is woken when an earlier one is added.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Call]] = []
        self._count = 0
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, function: Callable[[_Call], None]) -> _Call:
        call = _Call(function)
        with self._cond:
            self._count += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, self._count, call))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ocfs2lab-feed-timer", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is call:
                self._cond.notify()
        return call

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    due, _, call = self._heap[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    heapq.heappop(self._heap)
                    if not call.cancelled:
                        break
            try:
                call.function(call)
            except Exception:
                log.exception("delayed call failed")


_SCHEDULER = _Scheduler()


class TimelineSource(Protocol):
    """What feeds a machine's kernel messages to a timeline; stopped with
    [`close`][ocfs2lab.observe.sources.TimelineSource.close]."""

    def close(self) -> None:
        """Stop feeding (flushing what is pending)."""
        ...


class ConsoleTap:
    """A console listener that forwards lines to the
    [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed]s attached to it, or to none.

    A machine registers its tap with its console once, at boot; timelines are attached and
    detached later ([`feed`][ocfs2lab.observe.sources.ConsoleTap.feed]), across reboots, and
    several may listen at once (a cluster's timeline and a test's).
    """

    def __init__(self) -> None:
        self._feeds: list[ConsoleFeed] = []
        self._lock = threading.Lock()

    def __call__(self, line: StampedLine) -> None:
        with self._lock:
            feeds = tuple(self._feeds)
        for feed in feeds:
            feed.on_line(line)

    def feed(self, timeline: Timeline, node: str) -> TimelineSource:
        """Feed the console's lines to ``timeline`` as ``node``'s kernel messages.

        Returns:
            What to close to stop (the feed is flushed).
        """
        feed = ConsoleFeed(timeline, node)
        with self._lock:
            self._feeds.append(feed)
        return _TapSource(self, feed)

    def detach(self, feed: ConsoleFeed) -> None:
        """Stop forwarding to ``feed`` and flush it; idempotent."""
        with self._lock:
            if feed not in self._feeds:
                return
            self._feeds.remove(feed)
        feed.close()

    def close(self) -> None:
        """Detach every feed."""
        with self._lock:
            feeds, self._feeds = self._feeds, []
        for feed in feeds:
            feed.close()


class _TapSource:
    def __init__(self, tap: ConsoleTap, feed: ConsoleFeed) -> None:
        self.tap = tap
        self.feed = feed

    def close(self) -> None:
        self.tap.detach(self.feed)


# ----------------------------------------------------------------------------------------
# dmesg: pure parts

#: The command a `DmesgPoller` runs: uptime first, then the kernel log.
DMESG_COMMAND = ("sh", "-c", "cat /proc/uptime; dmesg")

_UPTIME = re.compile(r"^\s*(?P<up>\d+(?:\.\d+)?)\s+\d+(?:\.\d+)?\s*$")
_STAMP = re.compile(r"^\[\s*(?P<ts>\d+\.\d+)\]")
#: ``/proc/uptime`` prints hundredths, truncated.
UPTIME_RESOLUTION = 0.01


@frozen
class DmesgLine:
    """One line of ``dmesg`` output.

    Attributes:
        stamp: Kernel seconds since boot from its ``[...]`` prefix (a line without one
            takes the stamp of the line before it; ``None`` before any stamped line).
        text: The whole line as printed.
        stamped: The line carries its own stamp.
    """

    stamp: float | None
    text: str
    stamped: bool = True


def parse_uptime(text: str) -> float:
    """The first number of ``/proc/uptime`` (seconds since boot).

    Raises:
        ParseError: The text is not ``/proc/uptime`` content.
    """
    m = _UPTIME.match(text)
    if m is None:
        raise ParseError("/proc/uptime", "expected two numbers", text=text)
    return float(m.group("up"))


def parse_dmesg_poll(stdout: str) -> tuple[float, list[DmesgLine]]:
    """Split the output of `DMESG_COMMAND` into the uptime and the log lines.

    Args:
        stdout: ``/proc/uptime`` on the first line, then ``dmesg`` output.

    Returns:
        ``(uptime, lines)``; blank lines are skipped.

    Raises:
        ParseError: The first line is not ``/proc/uptime`` content.
    """
    first, _, rest = stdout.partition("\n")
    uptime = parse_uptime(first)
    lines: list[DmesgLine] = []
    last: float | None = None
    for raw in rest.split("\n"):
        text = raw.rstrip("\r")
        if not text.strip():
            continue
        m = _STAMP.match(text)
        if m is not None:
            last = float(m.group("ts"))
            lines.append(DmesgLine(last, text))
        else:
            lines.append(DmesgLine(last, text, stamped=False))
    return uptime, lines


class ClockMap:
    """Maps a kernel's seconds-since-boot to the host's wall clock.

    Each sample is ``(host_before, uptime, host_after)``: the host clock just before and
    just after a command that read ``/proc/uptime``. The kernel read it somewhere in
    between, and ``/proc/uptime`` truncates to hundredths, so the offset
    ``host - kernel`` lies in ``[before - uptime - 0.01, after - uptime]``. The map keeps
    the intersection of the newest samples' intervals (up to ``window``); when a sample
    does not fit (a clock jumped: the node rebooted or was frozen, the host's clock was
    stepped), older samples are dropped, and the jump is counted.

    Uncertainty is the half-width of that interval: with a local runner about 5 ms (the
    uptime's resolution), over SSH half a round trip more. The ``[...]`` stamps of
    ``dmesg`` come from the kernel's local clock, ``/proc/uptime`` from the boot-time clock:
    they differ by time spent suspended, which lab machines do not do.

    Args:
        window: How many samples are intersected at most (bounds the effect of drift).
        resolution: Resolution of the uptime value (truncated).
    """

    def __init__(self, *, window: int = 30, resolution: float = UPTIME_RESOLUTION) -> None:
        self.window = window
        self.resolution = resolution
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=window)
        self._lo = float("-inf")
        self._hi = float("inf")
        self.samples = 0
        self.jumps = 0
        self.last_uptime: float | None = None

    @property
    def ready(self) -> bool:
        """At least one sample was taken."""
        return self.samples > 0

    @property
    def offset(self) -> float:
        """Best estimate of ``host_time - kernel_time``.

        Raises:
            Ocfs2LabError: No sample yet.
        """
        self._need()
        return (self._lo + self._hi) / 2

    @property
    def uncertainty(self) -> float:
        """Half-width of the interval the offset is known to lie in (seconds).

        Raises:
            Ocfs2LabError: No sample yet.
        """
        self._need()
        return (self._hi - self._lo) / 2

    def _need(self) -> None:
        if not self.samples:
            raise Ocfs2LabError("the clock map has no sample yet: poll once first")

    def observe(self, host_before: float, uptime: float, host_after: float) -> bool:
        """Add a sample.

        Args:
            host_before: Host clock before the command that read ``/proc/uptime``.
            uptime: The value read.
            host_after: Host clock after it.

        Returns:
            True when the sample contradicted the earlier ones (a clock jump).
        """
        if host_after < host_before:
            host_before, host_after = host_after, host_before
        lo = host_before - uptime - self.resolution
        hi = host_after - uptime
        self._samples.append((lo, hi))
        self.samples += 1
        self.last_uptime = uptime
        # Intersect from the newest sample back, as far as the intervals agree.
        new_lo, new_hi = lo, hi
        consistent = 0
        for s_lo, s_hi in reversed(self._samples):
            c_lo, c_hi = max(new_lo, s_lo), min(new_hi, s_hi)
            if c_lo > c_hi:
                break
            new_lo, new_hi = c_lo, c_hi
            consistent += 1
        jumped = consistent < len(self._samples)
        if jumped:
            # Forget what contradicts the newest sample.
            for _ in range(len(self._samples) - consistent):
                self._samples.popleft()
            self.jumps += 1
        self._lo, self._hi = new_lo, new_hi
        return jumped

    def reset(self) -> None:
        """Forget every sample (the node rebooted)."""
        self._samples.clear()
        self._lo, self._hi = float("-inf"), float("inf")
        self.samples = 0
        self.last_uptime = None

    def to_host(self, kernel_time: float) -> float:
        """Host wall clock of a kernel stamp.

        Raises:
            Ocfs2LabError: No sample yet.
        """
        return kernel_time + self.offset


class DmesgDedupe:
    """Which lines of a ``dmesg`` poll are new.

    Keyed by kernel stamp and text. Lines stamped more than ``slack`` seconds before the
    newest stamp seen are old; lines within that window are new beyond the number of
    identical ``(stamp, text)`` lines seen before (the kernel may store lines from
    different CPUs slightly out of stamp order, and identical lines may share a stamp).
    When no line carries a stamp (``printk.time=0`` and a ``dmesg`` that prints none), the
    new lines are those after the longest overlap with the previous poll's end.

    Args:
        slack: Seconds before the newest stamp within which lines are compared one by one.
        overlap: Lines kept from the previous poll for unstamped logs.
    """

    def __init__(self, *, slack: float = 1.0, overlap: int = 64) -> None:
        self.slack = slack
        self._mark: float | None = None
        self._recent: collections.Counter[tuple[float, str]] = collections.Counter()
        self._tail: list[str] = []
        self._overlap = overlap
        self.primed = False

    def reset(self) -> None:
        """Forget what was seen (the node rebooted: its log starts over)."""
        self._mark = None
        self._recent.clear()
        self._tail = []
        self.primed = False

    def new(self, lines: Sequence[DmesgLine]) -> list[DmesgLine]:
        """The lines not returned by earlier calls, in order.

        Args:
            lines: One whole poll's lines, in log order.

        Returns:
            The new lines (all of them on the first call).
        """
        first = not self.primed
        self.primed = True
        if lines and all(not line.stamped for line in lines):
            return self._new_unstamped(lines, first)
        floor = None if self._mark is None else self._mark - self.slack
        seen: collections.Counter[tuple[float, str]] = collections.Counter()
        out: list[DmesgLine] = []
        newest = self._mark
        for line in lines:
            stamp = -1.0 if line.stamp is None else line.stamp
            key = (stamp, line.text)
            seen[key] += 1
            if floor is None or (stamp >= floor and seen[key] > self._recent[key]):
                out.append(line)
            if newest is None or stamp > newest:
                newest = stamp
        if newest is not None:
            self._mark = newest
            keep = newest - self.slack
            recent: collections.Counter[tuple[float, str]] = collections.Counter(
                {k: n for k, n in self._recent.items() if k[0] >= keep}
            )
            for key, n in seen.items():
                if key[0] >= keep and n > recent[key]:
                    recent[key] = n
            self._recent = recent
        return out

    def _new_unstamped(self, lines: Sequence[DmesgLine], first: bool) -> list[DmesgLine]:
        texts = [line.text for line in lines]
        start = 0
        if not first and self._tail:
            start = _after_overlap(self._tail, texts)
        self._tail = texts[-self._overlap :]
        return list(lines[start:])


def _after_overlap(previous_tail: Sequence[str], texts: Sequence[str]) -> int:
    """Index in ``texts`` just after the longest run that equals the end of the previous poll."""
    best_len, best_end = 0, 0
    for end in range(len(texts), 0, -1):
        n = 0
        while n < len(previous_tail) and n < end and texts[end - 1 - n] == previous_tail[-1 - n]:
            n += 1
        if n > best_len:
            best_len, best_end = n, end
            if n == len(previous_tail):
                break
    return best_end if best_len else 0


# ----------------------------------------------------------------------------------------
# dmesg: the poller


class DmesgPoller:
    """Polls a machine's kernel log through a runner into a timeline.

    Every ``interval`` seconds (and once at start), runs `DMESG_COMMAND`, maps the
    kernel stamps to host time with a [`ClockMap`][ocfs2lab.observe.sources.ClockMap], and appends
    the lines not seen before, o2dlm member lists assembled. Lines already in the log at the first
    poll are skipped unless ``backlog``. A node that rebooted (its uptime went back) starts over:
    its whole new log is new. The clock mapping is recorded on the timeline as a ``NOTE``
    event (``data``: offset, uncertainty) when first known and after every jump.

    Failures of a poll (node unreachable, ``dmesg`` not permitted) are logged and counted,
    not raised; the thread keeps polling.

    Args:
        runner: Runs the command on the machine.
        timeline: Where the events go.
        node: The node's name on the timeline.
        interval: Seconds between polls.
        timeout: Timeout of one poll command.
        backlog: Also add the lines present at the first poll.
        clock: Host clock (``time.time``).
    """

    def __init__(
        self,
        runner: Runner,
        timeline: Timeline,
        node: str,
        *,
        interval: float = 1.0,
        timeout: float = 20.0,
        backlog: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not interval > 0:
            raise SpecError("interval", interval, "must be positive")
        self.runner = runner
        self.timeline = timeline
        self.node = node
        self.interval = interval
        self.timeout = timeout
        self.backlog = backlog
        self.clock_map = ClockMap()
        self._dedupe = DmesgDedupe()
        self._clock = clock
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.failures = 0
        self.reboots = 0
        self.last_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"DmesgPoller(node={self.node!r}, via={self.runner.where!r}, polls={self.polls})"

    @property
    def running(self) -> bool:
        """The polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> DmesgPoller:
        """Start the polling thread (the first poll runs at once).

        Returns:
            This poller.
        """
        if self._thread is not None:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"dmesg-{self.node}", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, final_poll: bool = True, timeout: float | None = None) -> None:
        """Stop the thread; idempotent.

        Args:
            final_poll: Poll once more after the thread ended (catches the last lines).
            timeout: Seconds to wait for the thread (default: the poll timeout + 5).
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.timeout + 5 if timeout is None else timeout)
            if thread.is_alive():
                log.warning("%s: dmesg poller did not stop in time", self.node)
        if final_poll:
            self._poll_logged()

    def close(self) -> None:
        """Stop with a final poll (the [`TimelineSource`][ocfs2lab.observe.sources.TimelineSource]
        interface)."""
        self.stop()

    def __enter__(self) -> DmesgPoller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            self._poll_logged()
            if self._stop.wait(self.interval):
                return

    def _poll_logged(self) -> None:
        try:
            self.poll_once()
        except Ocfs2LabError as exc:
            self.failures += 1
            first = self.last_error is None or type(exc) is not type(self.last_error)
            self.last_error = exc
            (log.warning if first else log.debug)("%s: dmesg poll failed: %s", self.node, exc)
        except Exception as exc:
            self.failures += 1
            self.last_error = exc
            log.exception("%s: dmesg poll failed", self.node)

    def poll_once(self) -> list[TimelineEvent]:
        """Poll now (also callable while the thread runs).

        Returns:
            The events added.

        Raises:
            CommandFailed: The command failed (``dmesg`` not permitted: run as root or set
                ``kernel.dmesg_restrict=0``).
            CommandTimeout: The command did not finish within ``timeout``.
            TransportError: The machine cannot be reached.
            ParseError: The output does not start with ``/proc/uptime`` content.
        """
        with self._poll_lock:
            before = self._clock()
            result = self.runner.run(DMESG_COMMAND, timeout=self.timeout)
            after = self._clock()
            uptime, lines = parse_dmesg_poll(result.stdout)
            self.polls += 1
            return self._take(before, uptime, after, lines)

    def _take(
        self, before: float, uptime: float, after: float, lines: list[DmesgLine]
    ) -> list[TimelineEvent]:
        cmap = self.clock_map
        rebooted = cmap.last_uptime is not None and uptime + 1.0 < cmap.last_uptime
        if rebooted:
            self.reboots += 1
            log.info(
                "%s: uptime went back (%.2f -> %.2f): rebooted", self.node, cmap.last_uptime, uptime
            )
            cmap.reset()
            self._dedupe.reset()
            self._dedupe.primed = True  # the new boot's whole log is new
        first = not self._dedupe.primed
        known = cmap.ready
        jumped = cmap.observe(before, uptime, after)
        if not known or jumped:
            self.timeline.record(
                LabEventKind.NOTE,
                f"dmesg clock mapping for {self.node}" + (" (clock jumped)" if jumped else ""),
                node=self.node,
                time=after,
                data={
                    "source": "dmesg",
                    "via": self.runner.where,
                    "offset": cmap.offset,
                    "uncertainty": cmap.uncertainty,
                    "rebooted": rebooted,
                },
            )
        new = self._dedupe.new(lines)
        if first and not self.backlog:
            return []
        assembler = KmsgAssembler()
        mid = (before + after) / 2
        stamps: collections.deque[tuple[float, str]] = collections.deque()
        events: list[KernelEvent] = []
        for line in new:
            stamps.append((mid if line.stamp is None else cmap.to_host(line.stamp), line.text))
            events.extend(assembler.feed(line.text))
        events.extend(assembler.flush())
        return self.timeline.add_kernel_events(self.node, _take_stamps(stamps, events, mid))
