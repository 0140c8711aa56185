"""What a timeline holds: its events and the kinds of the lab's own actions.

A [`TimelineEvent`][ocfs2lab.observe.events.TimelineEvent] is either a kernel message of a node
(a [`KernelEvent`][ocfs2lab.formats.kmsg.KernelEvent]) or an action of the lab (a
[`LabEvent`][ocfs2lab.observe.events.LabEvent], whose kind is a
[`LabEventKind`][ocfs2lab.observe.events.LabEventKind]), stamped with the host's wall clock. The
[`Timeline`][ocfs2lab.observe.timeline.Timeline] that keeps them, and the exports that read them
(records, plots, JSON lines), all build on this module.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeAlias

from attrs import field, frozen

from ocfs2lab.formats.kmsg import EventKind, KernelEvent

__all__ = [
    "Kind",
    "LabEvent",
    "LabEventKind",
    "TimelineEvent",
]


class LabEventKind(enum.StrEnum):
    """What the library itself did (or was told), as recorded on a timeline."""

    FAULT_INJECTED = "fault_injected"
    """A fault began (kill, freeze, partition, disk stall); ``detail`` names it."""
    FAULT_HEALED = "fault_healed"
    """A fault ended (thaw, heal, unthrottle, revive); ``detail`` names it."""
    COMMAND_STARTED = "command_started"
    """A command began on a node (``detail``: the command line)."""
    COMMAND_ENDED = "command_ended"
    """A command ended (``data``: exit code, duration)."""
    PHASE_BEGIN = "phase_begin"
    """A named phase of an experiment began (``detail``: its name)."""
    PHASE_END = "phase_end"
    """A named phase ended (``data``: duration, error)."""
    WRITE_ACKED = "write_acked"
    """A writer on a node reported an fsync-acknowledged write (``data``: path, offset, ...)."""
    WRITER_STARTED = "writer_started"
    """A writer on a node connected to the recorder."""
    WRITER_STOPPED = "writer_stopped"
    """A writer said goodbye (clean exit) or its connection ended."""
    FENCED = "fenced"
    """The lab fenced a node for the cluster stack (``data``: how: powered off by the lab,
    already off, acknowledged by hand; which node asked)."""
    NOTE = "note"
    """Anything else worth a mark (``detail`` says what), e.g. a clock mapping."""


#: A timeline event kind: a kernel message kind or a lab action kind.
Kind: TypeAlias = EventKind | LabEventKind


def _data_dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else {}


@frozen
class LabEvent:
    """One action of the library (or of a helper on a node, such as the writer).

    Attributes:
        kind: What happened.
        detail: Free-form words: the fault's name, the phase's name, the command line.
        data: JSON-compatible details (exit code, duration, path, offset, ...).
    """

    kind: LabEventKind
    detail: str = ""
    data: dict[str, Any] = field(factory=dict, converter=_data_dict, hash=False)


@frozen
class TimelineEvent:
    """An event on the timeline.

    Exactly one of `kernel` and `lab` is set.

    Attributes:
        time: Host wall clock (``time.time()``) of the event: arrival of a console line,
            mapped kernel time of a polled dmesg line, the moment the library acted.
        node: Name of the node the event happened on (``None``: the lab as a whole).
        kind: The event's kind (the kernel event's or the lab event's).
        seq: Order of appending (ties in `time` keep this order).
        kernel: The parsed kernel message, for kernel events.
        lab: The lab action, for lab events.
    """

    time: float
    node: str | None
    kind: Kind
    seq: int = 0
    kernel: KernelEvent | None = None
    lab: LabEvent | None = None

    @property
    def source(self) -> str:
        """``"kernel"`` or ``"lab"``."""
        return "kernel" if self.kernel is not None else "lab"

    @property
    def is_error(self) -> bool:
        """A kernel error: BUG, oops, WARNING, panic, hung task, OCFS2 ERROR."""
        return self.kernel is not None and self.kernel.is_error

    @property
    def subsystem(self) -> str | None:
        """The kernel subsystem (``o2net``, ``o2dlm``, ...), ``"lab"`` for lab events."""
        return self.kernel.subsystem if self.kernel is not None else "lab"

    @property
    def text(self) -> str:
        """The kernel message (prefixes removed) or the lab event's detail."""
        if self.kernel is not None:
            return self.kernel.message
        assert self.lab is not None
        return self.lab.detail

    @property
    def about(self) -> int | None:
        """For kernel events, the node number the message is about (peer, dead node, ...)."""
        return self.kernel.node if self.kernel is not None else None

    def format(self, origin: float | None = None) -> str:
        """One line for humans: time (relative to ``origin`` when given), node, kind, text."""
        stamp = f"{self.time - origin:+10.3f}s" if origin is not None else f"{self.time:.6f}"
        return f"{stamp} {self.node or '-':<10} {self.kind.value:<22} {self.text[:160]}"
