"""Seeded schedules, partition shapes, clock steps and triggers, without machines: what
they plan and what they record (the real runs are in tests/lab/test_fault_campaigns.py)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocfs2lab.errors import SpecError
from ocfs2lab.experiment.faults import ClockStep, DegradedLink, Fault, Split, Trigger
from ocfs2lab.node.base import NodeKind
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.spec.cluster import NodeSpec
from ocfs2lab.spec.history import HistorySpec
from ocfs2lab.spec.link import LinkSpec
from ocfs2lab.spec.nemesis import NEMESIS_KINDS, NemesisSpec, schedule


class FilterNode:
    """A node with packet filtering and a clock, recording what it was told."""

    kind: NodeKind = "vm"

    def __init__(self, number: int) -> None:
        self.spec = NodeSpec(f"n{number}", number, f"10.7.0.{number}")
        self.running = True
        self.dropped: list[str] = []
        self.clock = 0.0
        self.calls: list[str] = []

    def drop_from(self, addresses: list[str]) -> None:
        self.dropped = list(addresses)
        self.calls.append("drop")

    def accept_all(self) -> None:
        self.dropped = []
        self.calls.append("accept")

    def step_clock(self, seconds: float) -> None:
        self.clock += seconds


def nodes(n: int = 3) -> list[Any]:
    return [FilterNode(k) for k in range(1, n + 1)]


# -- schedules -----------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    kinds=st.lists(st.sampled_from(NEMESIS_KINDS), min_size=1, max_size=5, unique=True),
    count=st.integers(1, 12),
)
def test_the_same_seed_gives_the_same_schedule(seed: int, kinds: list[str], count: int) -> None:
    spec = NemesisSpec(seed=seed, kinds=tuple(kinds), faults=count, gap_s=(1, 5), duration_s=(2, 9))
    first, again = schedule(spec, 3), schedule(NemesisSpec(**spec.to_json()), 3)
    assert first == again
    assert [p.number for p in first] == list(range(1, count + 1))
    assert all(p.kind in kinds for p in first)
    for p in first:
        assert 2 <= p.duration_s <= 9
        assert all(1 <= n <= 3 for n in p.nodes) and len(set(p.nodes)) == len(p.nodes)
        if p.kind in ("kill2", "between", "one_way"):
            assert len(p.nodes) == 2
        if p.kind == "clock_step":
            assert 10 <= abs(p.seconds) <= 600
    # Offsets follow the gaps and durations.
    for a, b in itertools.pairwise(first):
        assert 1 <= round(b.at_s - (a.at_s + a.duration_s), 3) <= 5


def test_seeds_differ_and_the_schedule_reads_well() -> None:
    spec = NemesisSpec(seed=1, kinds=NEMESIS_KINDS, faults=8)
    assert schedule(spec, 3) != schedule(NemesisSpec(seed=2, kinds=NEMESIS_KINDS, faults=8), 3)
    line = schedule(spec, 3)[0].describe()
    assert line.startswith("#1 at ") and " for " in line


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kinds": ()}, "nemesis.kinds"),
        ({"kinds": ("meteor",)}, "nemesis.kinds"),
        ({"gap_s": (5, 1)}, "nemesis.gap_s"),
        ({"duration_s": (-1, 3)}, "nemesis.duration_s"),
        ({"duration_s": "soon"}, "nemesis.duration_s"),
        ({"faults": 0}, "nemesis.faults"),
    ],
)
def test_a_bad_schedule_names_its_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        NemesisSpec(seed=1, **kwargs)
    assert info.value.field == field


def test_a_kind_that_needs_more_nodes_is_refused() -> None:
    with pytest.raises(SpecError, match="needs at least 3 nodes"):
        schedule(NemesisSpec(seed=1, kinds=("kill2",)), 2)


def test_a_link_spec_checks_its_fields_before_any_link_is_touched() -> None:
    with pytest.raises(SpecError, match="must not exceed delay_ms") as info:
        LinkSpec(delay_ms=5, jitter_ms=10)
    assert info.value.field == "link.jitter_ms"
    with pytest.raises(SpecError, match="from 0 to 50") as info:
        LinkSpec(duplicate_pct=100)  # wirefilter passes nothing at 100
    assert info.value.field == "link.duplicate_pct"
    assert LinkSpec().clean and not LinkSpec(loss_pct=1).clean
    with pytest.raises(SpecError, match="must degrade something"):
        DegradedLink(nodes(1)[0], link=LinkSpec())


def test_history_spec_checks_its_fields() -> None:
    with pytest.raises(SpecError) as info:
        HistorySpec("linearizable")  # type: ignore[arg-type]
    assert info.value.field == "history.workload"
    with pytest.raises(SpecError) as info:
        HistorySpec("register", read_share=1.5)
    assert info.value.field == "history.read_share"
    assert HistorySpec("fcntl").checker == "mutex" and HistorySpec("fcntl").lock == "fcntl"


# -- partition shapes ----------------------------------------------------------------------


def test_groups_hear_only_their_own_group() -> None:
    n1, n2, n3 = nodes()
    timeline = Timeline()
    with Split.groups([[n1, n2], [n3]], timeline) as split:
        assert n1.dropped == n2.dropped == ["10.7.0.3"]
        assert n3.dropped == ["10.7.0.1", "10.7.0.2"]
        assert split.shape == "groups n1,n2 | n3"
    assert n1.dropped == n2.dropped == n3.dropped == []
    injected = timeline.events(LabEventKind.FAULT_INJECTED)
    assert {e.node for e in injected} == {"n1", "n2", "n3"}
    assert len(timeline.events(LabEventKind.FAULT_HEALED)) == 3


def test_one_link_and_one_way() -> None:
    n1, n2, n3 = nodes()
    with Split.between(n1, n3):
        assert (n1.dropped, n2.dropped, n3.dropped) == (["10.7.0.3"], [], ["10.7.0.1"])
    with Split.one_way(n1, n2):  # n2 no longer hears n1; n1 hears n2
        assert (n1.dropped, n2.dropped) == ([], ["10.7.0.1"])
    assert n2.calls == ["drop", "accept"] and n1.calls == ["drop", "accept"]


def test_a_dead_node_is_not_asked_to_heal() -> None:
    n1, n2, n3 = nodes()
    with Split.between(n1, n2):
        n2.running = False
    assert n2.calls == ["drop"] and n1.calls == ["drop", "accept"]
    del n3


def test_bad_shapes_are_refused() -> None:
    n1, n2, n3 = nodes()
    with pytest.raises(SpecError, match="two or more non-empty groups"):
        Split.groups([[n1, n2, n3]])
    with pytest.raises(SpecError, match="in two groups"):
        Split.groups([[n1, n2], [n2, n3]])
    with pytest.raises(SpecError, match="cut from itself"):
        Split.between(n1, n1)


class NoFilter:
    kind: NodeKind = "ssh"
    spec = NodeSpec("m1", 1, "10.7.0.9")


def test_a_node_without_packet_filtering_is_refused() -> None:
    with pytest.raises(SpecError, match="PacketFilter") as info:
        Split.between(NoFilter(), nodes()[0])  # type: ignore[arg-type]
    assert info.value.field == "fault.node"


# -- clock steps and triggers ---------------------------------------------------------------


def test_a_clock_step_goes_back_on_exit() -> None:
    (n1,) = nodes(1)
    timeline = Timeline()
    with ClockStep(n1, timeline, -90):
        assert n1.clock == -90
    assert n1.clock == 0
    (injected,) = timeline.events(LabEventKind.FAULT_INJECTED)
    assert injected.lab is not None and injected.lab.data["seconds"] == -90
    with pytest.raises(SpecError, match="non-zero and within one day"):
        ClockStep(n1, timeline, 0)


class Recorded(Fault):
    """A fault that only counts its injections and heals."""

    name = "recorded"
    needs = object

    def __init__(self, timeline: Timeline) -> None:
        super().__init__(nodes(1)[0], timeline)
        self.injected = threading.Event()
        self.heals = 0

    def _inject(self) -> None:
        self.injected.set()

    def _heal(self) -> None:
        self.heals += 1

    def _node(self) -> Any:
        return self.node


def test_a_trigger_fires_on_its_event_and_heals_on_exit() -> None:
    timeline = Timeline()
    made: list[Recorded] = []

    def make(event: Any) -> Recorded:
        made.append(Recorded(timeline))
        return made[-1]

    with Trigger(timeline, LabEventKind.FENCED, make) as trigger:
        timeline.record(LabEventKind.NOTE, "not this one")
        assert not trigger.fired
        timeline.record(LabEventKind.FENCED, "this one", node="n2")
        assert trigger.wait(10) and made[0].injected.is_set()
        assert trigger.event is not None and trigger.event.node == "n2"
    assert made[0].heals == 1
    notes = [e.text for e in timeline.events(LabEventKind.NOTE)]
    assert any(t.startswith("trigger: 'this one' on n2") for t in notes), notes


def test_a_trigger_that_never_fires_ends_quietly() -> None:
    timeline = Timeline()
    with Trigger(timeline, LabEventKind.FENCED, lambda e: Recorded(timeline)) as trigger:
        pass
    assert not trigger.fired and trigger.fault is None and trigger.error is None
