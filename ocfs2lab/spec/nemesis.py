"""Seeded fault schedules (a nemesis): which faults, on which nodes, when and for how long.

A [`NemesisSpec`][ocfs2lab.spec.nemesis.NemesisSpec] names a seed, the fault kinds to draw
from, how many faults, and the ranges of the gaps between them and of their durations.
[`schedule`][ocfs2lab.spec.nemesis.schedule] turns it into a list of
[`PlannedFault`][ocfs2lab.spec.nemesis.PlannedFault]s for a cluster's nodes: the same spec and
nodes always give the same schedule (Python's ``random.Random`` seeded with the spec's seed;
its sequence is stable across Python versions for the calls used here). Running it is
[`Nemesis`][ocfs2lab.experiment.nemesis.Nemesis]'s job.

Kinds:

* ``kill``: power off one node; revived after the duration;
* ``kill2``: power off two nodes at once (several victims); revived after the duration;
* ``freeze``: stop one node's CPUs; thawed after the duration;
* ``partition``: cut one node's interconnect link; healed after the duration;
* ``split``: the nodes in two random groups; healed after the duration;
* ``between``: cut the link between two nodes only, both ways;
* ``one_way``: one node stops hearing another;
* ``disk_stall``: hold one node's I/O to the shared disk;
* ``clock_step``: step one node's wall clock forward or back by 10 to 600 seconds;
* ``degrade``: one node's link loses 10-60% of packets, with 20-200 ms of delay (jitter up
  to half of it) and 0-5% duplicates.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from attrs import field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.spec import rules
from ocfs2lab.spec.link import LinkSpec

#: The fault kinds a schedule draws from.
NEMESIS_KINDS = (
    "kill",
    "kill2",
    "freeze",
    "partition",
    "split",
    "between",
    "one_way",
    "disk_stall",
    "clock_step",
    "degrade",
)


def _kinds(value: Sequence[str]) -> tuple[str, ...]:
    kinds = tuple(value)
    if not kinds:
        raise SpecError("nemesis.kinds", kinds, "must name at least one fault kind")
    for kind in kinds:
        if kind not in NEMESIS_KINDS:
            raise SpecError("nemesis.kinds", kind, f"must be one of {', '.join(NEMESIS_KINDS)}")
    return kinds


def _seconds_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise SpecError(f"nemesis.{name}", value, "must be a pair (low, high) of seconds") from err
    if not 0 <= low <= high:
        raise SpecError(f"nemesis.{name}", value, "must be 0 <= low <= high")
    return (low, high)


def _gaps(value: Sequence[float]) -> tuple[float, float]:
    return _seconds_range("gap_s", value)


def _durations(value: Sequence[float]) -> tuple[float, float]:
    return _seconds_range("duration_s", value)


@frozen
class PlannedFault:
    """One fault of a schedule.

    Attributes:
        number: Its place in the schedule (from 1).
        at_s: When to inject it, in seconds from the schedule's start.
        kind: One of `NEMESIS_KINDS`.
        nodes: The node numbers it acts on (the victim first; for ``split`` the first
            group; for ``between`` the two ends; for ``one_way`` the source, then the node
            that stops hearing it).
        duration_s: How long it lasts before it is healed (for kills: how long the node
            stays down).
        gap_s: The pause before it, after the previous fault was healed (``at_s`` is the
            sum of the gaps and durations before it).
        seconds: For ``clock_step``: how far the clock jumps (negative: back).
        link: For ``degrade``: how the victim's link is degraded.
    """

    number: int
    at_s: float
    kind: str
    nodes: tuple[int, ...]
    duration_s: float
    gap_s: float
    seconds: float = 0.0
    link: LinkSpec | None = None

    def describe(self) -> str:
        """``#2 at 12.3 s: between nodes 1,3 for 4.0 s``."""
        extra = f" by {self.seconds:+.0f} s" if self.kind == "clock_step" else ""
        if self.link is not None:
            extra = " (" + ", ".join(f"{k} {v:g}" for k, v in self.link.to_json().items()) + ")"
        who = ",".join(str(n) for n in self.nodes)
        return (
            f"#{self.number} at {self.at_s:.1f} s: {self.kind} node(s) {who}{extra} "
            f"for {self.duration_s:.1f} s"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return {
            "number": self.number,
            "at_s": self.at_s,
            "kind": self.kind,
            "nodes": list(self.nodes),
            "duration_s": self.duration_s,
            "gap_s": self.gap_s,
            "seconds": self.seconds,
            "link": None if self.link is None else self.link.to_json(),
        }


@frozen
class NemesisSpec:
    """A seeded fault schedule.

    Attributes:
        seed: The schedule's seed.
        kinds: The fault kinds to draw from (`NEMESIS_KINDS`).
        faults: How many faults.
        gap_s: Range of the pause before each fault, after the previous one was healed.
        duration_s: Range of each fault's duration.
    """

    seed: int = field(validator=rules.in_range(0, 2**63 - 1))
    kinds: tuple[str, ...] = field(default=("kill", "freeze", "partition"), converter=_kinds)
    faults: int = field(default=4, validator=rules.in_range(1, 1000))
    gap_s: tuple[float, float] = field(default=(2.0, 10.0), converter=_gaps)
    duration_s: tuple[float, float] = field(default=(2.0, 20.0), converter=_durations)

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return {
            "seed": self.seed,
            "kinds": list(self.kinds),
            "faults": self.faults,
            "gap_s": list(self.gap_s),
            "duration_s": list(self.duration_s),
        }


def schedule(spec: NemesisSpec, nodes: int) -> tuple[PlannedFault, ...]:
    """The faults of ``spec`` for a cluster of ``nodes`` nodes, in order. Offsets assume
    each fault is healed on time; the runner keeps the order and the gaps.

    Raises:
        SpecError: A kind needs more nodes than the cluster has (``kill2``, ``split``,
            ``between`` and ``one_way`` need 2; ``kill2`` needs 3, so one survives).
    """
    need = {"kill2": 3, "split": 2, "between": 2, "one_way": 2}
    for kind in spec.kinds:
        if nodes < need.get(kind, 1):
            raise SpecError("nemesis.kinds", kind, f"needs at least {need[kind]} nodes")
    rng = random.Random(spec.seed)  # noqa: S311 - a reproducible schedule, not a secret
    numbers = list(range(1, nodes + 1))
    planned: list[PlannedFault] = []
    t = 0.0
    for number in range(1, spec.faults + 1):
        gap = round(rng.uniform(*spec.gap_s), 3)
        t += gap
        kind = rng.choice(spec.kinds)
        duration = round(rng.uniform(*spec.duration_s), 3)
        seconds = 0.0
        link: LinkSpec | None = None
        if kind in ("kill", "freeze", "partition", "disk_stall", "clock_step", "degrade"):
            chosen: tuple[int, ...] = (rng.choice(numbers),)
            if kind == "clock_step":
                seconds = float(rng.choice((-1, 1)) * rng.randint(10, 600))
            if kind == "degrade":
                delay = float(rng.randint(20, 200))
                loss = float(rng.randint(10, 60))
                jitter = float(rng.randint(0, int(delay) // 2))
                link = LinkSpec(loss, delay, jitter, float(rng.randint(0, 5)))
        elif kind == "split":
            shuffled = rng.sample(numbers, len(numbers))
            cut = rng.randint(1, len(numbers) - 1)
            chosen = tuple(sorted(shuffled[:cut]))
        else:  # kill2, between, one_way: two distinct nodes
            chosen = tuple(rng.sample(numbers, 2))
        planned.append(
            PlannedFault(number, round(t, 3), kind, chosen, duration, gap, seconds, link)
        )
        t += duration
    return tuple(planned)


__all__ = ["NEMESIS_KINDS", "NemesisSpec", "PlannedFault", "schedule"]
