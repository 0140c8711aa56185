"""Timeline plots: one lane per node, kernel events as markers, the lab's actions as spans.

[`plot`][ocfs2lab.observe.plotting.plot] draws with matplotlib, of the optional ``notebook``
extra ([`ocfs2lab.observe.optional`][ocfs2lab.observe.optional]), without pyplot's global state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ocfs2lab.formats.kmsg import ERROR_KINDS, EventKind
from ocfs2lab.observe.events import LabEventKind, TimelineEvent
from ocfs2lab.observe.optional import require_module

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot"]

# (color, marker) per kernel event kind; others by subsystem, errors red crosses.
_STYLE: dict[EventKind, tuple[str, str]] = {
    EventKind.O2NET_CONNECTED: ("#1f77b4", "^"),
    EventKind.O2NET_IDLE: ("#6baed6", "o"),
    EventKind.O2NET_LOST: ("#08306b", "v"),
    EventKind.O2NET_SHUTDOWN: ("#4292c6", "v"),
    EventKind.O2HB_START: ("#17becf", "^"),
    EventKind.O2HB_STOP: ("#17becf", "v"),
    EventKind.O2HB_WRITE_HUNG: ("#9edae5", "s"),
    EventKind.DLM_JOIN: ("#2ca02c", "^"),
    EventKind.DLM_LEAVE: ("#2ca02c", "v"),
    EventKind.DLM_EVICTED: ("#ff7f0e", "D"),
    EventKind.RECOVERY_BEGIN: ("#ffbb78", ">"),
    EventKind.RECOVERY_MASTER: ("#e6550d", "*"),
    EventKind.RECOVERY_NOT_MASTER: ("#fdae6b", "*"),
    EventKind.RECOVERY_END: ("#a63603", "<"),
    EventKind.DLM_ERROR: ("#e31a1c", "x"),
    EventKind.JOURNAL_REPLAY_BEGIN: ("#9467bd", ">"),
    EventKind.JOURNAL_REPLAY_END: ("#54278f", "<"),
    EventKind.QUORUM_FENCE: ("#e377c2", "P"),
    EventKind.QUORUM_NO_FENCE: ("#f7b6d2", "P"),
    EventKind.FENCE_RESTART: ("#7b0033", "X"),
    EventKind.FENCE_PANIC: ("#7b0033", "X"),
    EventKind.OCFS2_MOUNT: ("#8c564b", "^"),
    EventKind.OCFS2_UMOUNT: ("#8c564b", "v"),
    EventKind.OCFS2_UNCLEAN: ("#c49c94", "s"),
    EventKind.DRBD_STATE: ("#bcbd22", "d"),
}
_SUBSYSTEM_COLOR = {
    "o2net": "#1f77b4",
    "o2hb": "#17becf",
    "o2quo": "#e377c2",
    "o2dlm": "#2ca02c",
    "o2cb": "#ff7f0e",
    "ocfs2": "#8c564b",
    "drbd": "#bcbd22",
    "kernel": "#7f7f7f",
}
_LAB_LANE = "lab"
#: Lab events drawn across every lane (they need no lane of their own).
_SPANNING = frozenset(
    {
        LabEventKind.FAULT_INJECTED,
        LabEventKind.FAULT_HEALED,
        LabEventKind.PHASE_BEGIN,
        LabEventKind.PHASE_END,
    }
)


#: Colors and line styles of lab events drawn as marks, so each legend entry can be told
#: apart; other kinds are dark grey and dotted.
_MARK_STYLE: dict[LabEventKind, tuple[str, str]] = {
    LabEventKind.WRITER_STARTED: ("#2ca02c", "dotted"),
    LabEventKind.WRITER_STOPPED: ("#ff7f0e", "dotted"),
    LabEventKind.NOTE: ("#1f77b4", "dashdot"),
    LabEventKind.COMMAND_STARTED: ("#525252", "dashed"),
    LabEventKind.COMMAND_ENDED: ("#525252", "dashed"),
}
#: Font size of the span labels (faults, phases) in the plot's header band.
_LABEL_SIZE = 8.0


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _span_label(detail: str, node: str | None) -> str:
    """A span's label: its detail, and its node when the detail does not name it."""
    return detail if node is None or node in detail else f"{detail} ({node})"


def _place_labels(
    figure: Any, axes: Any, labels: Sequence[tuple[float, str, str]], lanes_top: float
) -> None:
    """Write the span labels (x, text, color) into a band above the lanes, in as many rows as
    it takes for no two to overlap; the y axis grows to make room for the band.

    The labels are measured as drawn (after the figure's layout), so a long fault name and a
    phase that starts under it go to different rows instead of over each other.
    """
    if not labels:
        return
    from matplotlib.transforms import blended_transform_factory  # noqa: PLC0415

    x_axes_y = blended_transform_factory(axes.transData, axes.transAxes)
    texts = [
        axes.text(
            x,
            1.0,
            text,
            transform=x_axes_y,
            fontsize=_LABEL_SIZE,
            color=color,
            va="top",
            ha="left",
            clip_on=True,
        )
        for x, text, color in labels
    ]
    figure.draw_without_rendering()  # settle the layout, then measure
    box = axes.get_window_extent()
    placed: list[tuple[float, float, Any]] = []  # (x0, x1) in pixels, and the text
    for text in texts:
        b = text.get_window_extent()
        x0, x1 = b.x0, b.x1
        if x1 > box.x1:  # a label that would run off the right edge ends at the edge
            x0, x1 = max(box.x0, x0 - (x1 - box.x1)), box.x1
            text.set_x(axes.transData.inverted().transform((x0, 0.0))[0])
        placed.append((x0, x1, text))
    placed.sort(key=lambda item: item[0])
    gap = _LABEL_SIZE * figure.dpi / 72.0  # about one character
    row_ends: list[float] = []
    rows: list[int] = []
    for x0, x1, _ in placed:
        row = next((r for r, end in enumerate(row_ends) if end + gap <= x0), len(row_ends))
        if row == len(row_ends):
            row_ends.append(x1)
        else:
            row_ends[row] = x1
        rows.append(row)
    line = max(text.get_window_extent().height for text in texts) * 1.2
    pad = line * 0.2
    for (_, _, text), row in zip(placed, rows, strict=True):
        text.set_y(1.0 - (pad + row * line) / box.height)
    # Room for the band: the lanes end at lanes_top (data), the band takes its share of the
    # axes' height above them.
    share = min(0.6, (pad * 2 + len(row_ends) * line) / box.height)
    bottom, _ = axes.get_ylim()
    axes.set_ylim(bottom, (lanes_top - bottom * share) / (1.0 - share))


#: Which lab event ends a span, and the one that starts it.
_SPAN_ENDS = {
    LabEventKind.FAULT_HEALED: LabEventKind.FAULT_INJECTED,
    LabEventKind.PHASE_END: LabEventKind.PHASE_BEGIN,
    LabEventKind.COMMAND_ENDED: LabEventKind.COMMAND_STARTED,
}


@attrs.frozen
class _Lanes:
    """The plot's lanes: one per node (in natural order), and one for lab-wide events that
    do not span every lane."""

    names: tuple[str, ...]
    _index: dict[str, int] = attrs.field(init=False, eq=False, repr=False)

    @_index.default
    def _number_lanes(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @classmethod
    def of(cls, events: Sequence[TimelineEvent]) -> _Lanes:
        names = sorted({e.node for e in events if e.node is not None}, key=_natural)
        if any(e.node is None and e.kind not in _SPANNING for e in events):
            names.append(_LAB_LANE)
        return cls(tuple(names))

    def y(self, node: str | None) -> float:
        """The y of ``node``'s lane (``None``: the lab lane)."""
        return float(self._index[node if node is not None else _LAB_LANE])


@attrs.frozen
class _Span:
    """A span of the plot: ``kind`` is the kind of its start event."""

    kind: LabEventKind
    node: str | None
    detail: str
    start: float
    end: float


@attrs.frozen
class _SortedLabEvents:
    """The lab events of a plot, sorted by how they are drawn."""

    spans: list[_Span]
    acks: list[TimelineEvent]
    marks: list[TimelineEvent]


@attrs.frozen
class _Canvas:
    """Where a plot draws: its axes and lanes, the x axis' origin, and the legend entries
    drawn so far (by label, in drawing order)."""

    axes: Any
    lanes: _Lanes
    origin: float
    handles: dict[str, Any] = attrs.field(factory=dict)

    def x(self, e: TimelineEvent) -> float:
        """Where ``e`` goes on the x axis."""
        return e.time - self.origin

    def y(self, e: TimelineEvent) -> float:
        """The y of ``e``'s lane."""
        return self.lanes.y(e.node)


def _new_axes(ax: Axes | None, lanes: _Lanes) -> tuple[Any, Any]:
    """The figure and axes to draw into: ``ax``'s, or a new figure sized for the lanes."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    if ax is None:
        figure = Figure(figsize=(12, 1.2 + 0.9 * max(1, len(lanes.names))), layout="constrained")
        return figure, figure.add_subplot()
    return ax.get_figure(), ax


def _kernel_style(kind: EventKind, members: Sequence[TimelineEvent]) -> tuple[str, str, float, int]:
    """``(color, marker, size, zorder)`` of a kind of kernel event."""
    if kind in ERROR_KINDS:
        return "#d62728", "X", 140.0, 5
    if kind is EventKind.UNKNOWN:
        return "#c7c7c7", ".", 12.0, 1
    if kind in _STYLE:
        color, marker = _STYLE[kind]
        return color, marker, 70.0, 4
    sub = members[0].subsystem or "kernel"
    return _SUBSYSTEM_COLOR.get(sub, "#7f7f7f"), "o", 40.0, 3


def _draw_kernel_events(canvas: _Canvas, events: Sequence[TimelineEvent], *, unknown: bool) -> None:
    """Kernel events as markers in their node's lane, one scatter (and one legend entry) per
    kind."""
    groups: dict[EventKind, list[TimelineEvent]] = {}
    for e in events:
        if e.kernel is not None and (unknown or e.kind is not EventKind.UNKNOWN):
            groups.setdefault(e.kernel.kind, []).append(e)
    for kind, members in groups.items():
        color, marker, size, z = _kernel_style(kind, members)
        canvas.handles[kind.value] = canvas.axes.scatter(
            [canvas.x(e) for e in members],
            [canvas.y(e) for e in members],
            c=color,
            marker=marker,
            s=size,
            zorder=z,
            label=kind.value,
            edgecolors="none" if marker in (".", "|") else "black",
            linewidths=0.4,
        )


def _sort_lab_events(
    events: Sequence[TimelineEvent], origin: float, x_start: float, x_end: float
) -> _SortedLabEvents:
    """Pair the lab events' starts and ends into spans; the rest are acks and marks.

    A fault's end pairs with its start by node (the heal names itself, e.g. "revived
    node-3"); phases and commands by their detail too. An end whose start came before the
    window spans from the window's start (``x_start``); a start without an end, to its end
    (``x_end``). A command's end without its start is a mark.
    """
    open_spans: dict[tuple[LabEventKind, str | None, str], list[tuple[float, str]]] = {}

    def span_key(kind: LabEventKind, e: TimelineEvent) -> tuple[LabEventKind, str | None, str]:
        assert e.lab is not None
        return kind, e.node, "" if kind is LabEventKind.FAULT_INJECTED else e.lab.detail

    found = _SortedLabEvents([], [], [])
    for e in events:
        if e.lab is None:
            continue
        lab_kind = e.lab.kind
        x = e.time - origin
        if lab_kind in _SPAN_ENDS.values():
            open_spans.setdefault(span_key(lab_kind, e), []).append((x, e.lab.detail))
        elif lab_kind in _SPAN_ENDS:
            start_kind = _SPAN_ENDS[lab_kind]
            starts = open_spans.get(span_key(start_kind, e))
            if starts:
                start, detail = starts.pop(0)
                found.spans.append(_Span(start_kind, e.node, detail, start, x))
            elif start_kind is LabEventKind.COMMAND_STARTED:
                found.marks.append(e)
            else:
                found.spans.append(_Span(start_kind, e.node, e.lab.detail, x_start, x))
        elif lab_kind is LabEventKind.WRITE_ACKED:
            found.acks.append(e)
        else:
            found.marks.append(e)
    for (start_kind, node, _), starts in open_spans.items():
        found.spans.extend(
            _Span(start_kind, node, detail, start, x_end) for start, detail in starts
        )
    return found


def _draw_spans(canvas: _Canvas, spans: Sequence[_Span]) -> list[tuple[float, str, str]]:
    """Faults (red) and phases (light blue) across every lane, commands as grey bars in
    their node's lane.

    Returns:
        The labels of the faults and phases: ``(x, text, color)``.
    """
    axes, handles = canvas.axes, canvas.handles
    labels: list[tuple[float, str, str]] = []
    for span in spans:
        if span.kind is LabEventKind.FAULT_INJECTED:
            h = axes.axvspan(span.start, span.end, color="#d62728", alpha=0.13, zorder=0, lw=0)
            handles.setdefault("fault", h)
            labels.append((span.start, _span_label(span.detail, span.node), "#a50f15"))
        elif span.kind is LabEventKind.PHASE_BEGIN:
            h = axes.axvspan(span.start, span.end, color="#9ecae1", alpha=0.10, zorder=0, lw=0)
            handles.setdefault("phase", h)
            labels.append((span.start, _span_label(span.detail, span.node), "#3182bd"))
        else:
            y = canvas.lanes.y(span.node) + 0.3
            h = axes.hlines(y, span.start, span.end, colors="#525252", lw=3, zorder=2)
            handles.setdefault("command", h)
    return labels


def _draw_acks(canvas: _Canvas, acks: Sequence[TimelineEvent]) -> None:
    """Acknowledged writes: small grey ticks under their node's lane (gaps show stalls)."""
    if not acks:
        return
    canvas.handles["write acked"] = canvas.axes.scatter(
        [canvas.x(e) for e in acks],
        [canvas.y(e) - 0.3 for e in acks],
        marker="|",
        c="#636363",
        s=30,
        linewidths=0.6,
        zorder=2,
        label="write acked",
    )


def _draw_marks(canvas: _Canvas, marks: Sequence[TimelineEvent]) -> None:
    """Other lab events: short vertical lines in their lane, styled by kind."""
    for e in marks:
        x = canvas.x(e)
        y = canvas.y(e)
        color, style = _MARK_STYLE.get(LabEventKind(e.kind), ("#252525", "dotted"))
        h = canvas.axes.vlines(x, y - 0.4, y + 0.4, colors=color, linestyles=style, lw=1.2)
        canvas.handles.setdefault(e.kind.value, h)


def _decorate_axes(canvas: _Canvas, title: str | None) -> float:
    """Lane names, limits, x label, grid and title.

    Returns:
        The top of the lanes (data units), under the band of span labels.
    """
    axes, lanes = canvas.axes, canvas.lanes
    axes.set_yticks(range(len(lanes.names)), labels=list(lanes.names))
    lanes_top = max(0.6, len(lanes.names) - 0.4)
    axes.set_ylim(-0.6, lanes_top)
    axes.set_xlabel("seconds since start" if canvas.origin else "host time (s)")
    axes.grid(axis="x", alpha=0.3)
    if title:
        axes.set_title(title)
    return lanes_top


def _legend(canvas: _Canvas) -> None:
    """One legend entry per drawn kind, right of the axes; spans shown as thick lines."""
    handles = canvas.handles
    if not handles:
        return
    from matplotlib.lines import Line2D  # noqa: PLC0415

    proxies = []
    for name, h in handles.items():
        if name in ("fault", "phase"):
            color = "#d62728" if name == "fault" else "#9ecae1"
            proxies.append(Line2D([], [], color=color, lw=8, alpha=0.4, label=name))
        else:
            proxies.append(h)
    canvas.axes.legend(
        handles=proxies,
        labels=list(handles),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
    )


def plot(
    events: Sequence[TimelineEvent],
    *,
    ax: Axes | None = None,
    origin: float = 0.0,
    unknown: bool = True,
    title: str | None = None,
) -> Figure:
    """Draw events: one lane per node, kernel events as markers, lab actions as spans.

    * kernel events: a marker per event in its node's lane, color and shape by kind
      (errors: large red crosses; unknown lines: small grey dots when ``unknown``);
    * faults (injected -> healed): red spans across all lanes; phases: light blue spans;
      each named in a band above the lanes, in as many rows as keep the names apart;
    * commands (started -> ended): grey bars in their node's lane; acknowledged writes:
      small grey ticks under the lane (gaps show I/O stalls); other lab events: short
      vertical lines.

    Never touches pyplot's global state when ``ax`` is given; otherwise a new
    `matplotlib.figure.Figure` is made without pyplot (safe under Agg, in threads,
    in loops; a notebook displays it when it is a cell's value).

    Args:
        events: Timeline events, in time order.
        ax: Axes to draw into (its figure is returned).
        origin: Host time that the x axis (seconds) counts from.
        unknown: Draw unknown kernel lines too.
        title: Axes title.

    Returns:
        The figure.

    Raises:
        MissingDependency: matplotlib is not installed (the ``notebook`` extra).
    """
    require_module("matplotlib", "matplotlib", "Timeline.plot()")
    lanes = _Lanes.of(events)
    figure, axes = _new_axes(ax, lanes)
    canvas = _Canvas(axes, lanes, origin)
    _draw_kernel_events(canvas, events, unknown=unknown)
    xs = [canvas.x(e) for e in events]
    lab = _sort_lab_events(events, origin, min(xs) if xs else 0.0, max(xs) if xs else 1.0)
    labels = _draw_spans(canvas, lab.spans)
    _draw_acks(canvas, lab.acks)
    _draw_marks(canvas, lab.marks)
    lanes_top = _decorate_axes(canvas, title)
    _legend(canvas)
    _place_labels(figure, axes, labels, lanes_top)
    return figure  # type: ignore[no-any-return]
