"""analyze_recovery on timelines captured from real VM clusters, and on edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.experiment.analysis import analyze_recovery, spread, theory
from ocfs2lab.formats.kmsg import parse_kernel_line
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.spec.cluster import TimingSpec

DATA = Path(__file__).resolve().parents[2] / "data" / "timelines"


def _captured(name: str) -> tuple[Timeline, float]:
    timeline = Timeline.load_jsonl(DATA / name)
    fault = timeline.first(LabEventKind.FAULT_INJECTED)
    assert fault is not None
    return timeline, fault.time


def test_kill_of_node2_of_2_reads_the_kernel_steps_in_order() -> None:
    # Captured: VmCluster(2) under TCG, dead_threshold 7, idle_timeout_ms 10000; SIGKILL of
    # node 2's QEMU while both nodes ran a writer.
    timeline, fault = _captured("kill-node2-of-2.jsonl")
    t = analyze_recovery(timeline.events(), fault_time=fault, victim=2, survivors=["ocfs2-node-1"])
    assert t.complete and t.in_order
    assert t.detected == pytest.approx(10.05, abs=0.05)  # o2net idle timeout (10 s)
    assert t.connection_lost == pytest.approx(13.95, abs=0.05)
    assert t.evicted == pytest.approx(13.96, abs=0.05)  # 7 missed heartbeats of 2 s
    assert t.evicted is not None and t.recovery_begin is not None and t.recovery_end is not None
    assert t.evicted < t.recovery_begin <= t.recovery_end
    assert t.replay_end is not None and t.replay_begin is not None
    assert t.recovery_end <= t.replay_begin <= t.replay_end
    assert t.recovery_master == "ocfs2-node-1"
    assert t.replayed_by == "ocfs2-node-1"
    assert t.replayed_slot == 1
    assert t.fenced == ()
    assert t.kernel_errors == ()


def test_events_of_the_victim_or_before_the_fault_do_not_count() -> None:
    timeline, fault = _captured("kill-node2-of-2.jsonl")
    # Seen from the victim's side (as if node 1 had died), nothing matches.
    t = analyze_recovery(timeline.events(), fault_time=fault, victim=1, survivors=["ocfs2-node-2"])
    assert t.evicted is None and t.recovery_end is None and not t.complete
    # A fault time after everything: nothing is after it.
    late = analyze_recovery(
        timeline.events(), fault_time=fault + 10_000, victim=2, survivors=["ocfs2-node-1"]
    )
    assert late.detected is None and late.in_order


def _timeline(lines: list[tuple[float, str, str]]) -> Timeline:
    timeline = Timeline(origin=0.0)
    timeline.record(LabEventKind.FAULT_INJECTED, "kill n3", node="n3", time=100.0)
    for t, node, line in lines:
        timeline.add_kernel(node, t, parse_kernel_line(line))
    return timeline


DOMAIN = "7F28AD7B6DBD4EEB83362AD672BBD348"


def test_a_master_named_by_another_node_and_fences_are_reported() -> None:
    timeline = _timeline(
        [
            (
                101.0,
                "n3",
                "o2quo_make_decision:138 ERROR: fencing this node because it is "
                "connected to a half-quorum of 1 out of 3 nodes which doesn't include the lowest "
                "active node 1",
            ),
            (104.0, "n2", f"o2cb: o2dlm has evicted node 3 from domain {DOMAIN}"),
            (105.0, "n2", f"o2dlm: Begin recovery on domain {DOMAIN} for node 3"),
            (
                105.1,
                "n2",
                f"o2dlm: Node 1 (he) is the Recovery Master for the dead node 3 in domain {DOMAIN}",
            ),
            (105.2, "n1", f"o2dlm: End recovery on domain {DOMAIN}"),
        ]
    )
    t = analyze_recovery(
        timeline.events(),
        fault_time=100.0,
        victim=3,
        survivors=["n1", "n2"],
        names={1: "n1", 2: "n2", 3: "n3"},
    )
    assert t.recovery_master == "n1"
    assert t.fenced == ("n3",)
    assert t.evicted == pytest.approx(4.0)
    # The master's own end of recovery counts, though another node logged the begin.
    assert t.recovery_end == pytest.approx(5.2)


def test_steps_are_read_in_time_order_whatever_their_arrival_order() -> None:
    timeline = _timeline(
        [
            (103.0, "n1", f"o2dlm: End recovery on domain {DOMAIN}"),
            (102.0, "n1", f"o2cb: o2dlm has evicted node 3 from domain {DOMAIN}"),
            (101.0, "n1", "o2net: No longer connected to node n3 (num 3) at 10.0.0.3:7777"),
            (104.0, "n1", "ocfs2: End replay journal (node 3, slot 2) on device (254,16)"),
            (103.5, "n1", "ocfs2: Begin replay journal (node 3, slot 2) on device (254,16)"),
        ]
    )
    t = analyze_recovery(timeline.events(), fault_time=100.0, victim=3, survivors=["n1"])
    assert t.in_order  # the timeline sorts by host time
    assert t.connection_lost == pytest.approx(1.0) and t.evicted == pytest.approx(2.0)
    assert t.replay_begin == pytest.approx(3.5) and t.replay_end == pytest.approx(4.0)
    assert t.replayed_slot == 2 and t.recovery_end is None  # no begin: no end is taken


def test_theory_follows_the_knobs() -> None:
    got = theory(TimingSpec(dead_threshold=7, idle_timeout_ms=10000))
    assert got == {"idle": 10.0, "dead": 14.0, "detect": 10.0, "evict_latest": 21.0}
    assert theory(TimingSpec(dead_threshold=31, idle_timeout_ms=5000))["detect"] == 5.0


def test_spread_counts_missing_values() -> None:
    s = spread([1.0, None, 3.0, 2.0])
    assert s == {"n": 3, "missing": 1, "median": 2.0, "min": 1.0, "max": 3.0, "stdev": 1.0}
    assert spread([])["median"] is None
    assert spread([5.0])["stdev"] == 0.0


def test_a_recovery_that_begins_before_the_eviction_is_out_of_order() -> None:
    timeline = _timeline(
        [
            (101.0, "n1", f"o2dlm: Begin recovery on domain {DOMAIN} for node 3"),
            (102.0, "n1", f"o2cb: o2dlm has evicted node 3 from domain {DOMAIN}"),
        ]
    )
    t = analyze_recovery(timeline.events(), fault_time=100.0, victim=3, survivors=["n1"])
    assert not t.in_order
    assert t.detected == pytest.approx(1.0)


def test_pcmk_kill_of_node3_of_3_reads_membership_fence_dlm_and_replay() -> None:
    # Captured: VmCluster(3, stack="pcmk") under TCG, corosync token 5000 ms, consensus
    # 6000 ms, fencing by the lab; SIGKILL of node 3's QEMU while every node ran a writer.
    timeline, fault = _captured("pcmk-kill-node3-of-3.jsonl")
    survivors = ["ocfs2-node-1", "ocfs2-node-2"]
    t = analyze_recovery(
        timeline.events(), fault_time=fault, victim=3, survivors=survivors, stack="pcmk"
    )
    assert t.stack == "pcmk" and t.complete and t.in_order
    assert t.detected == pytest.approx(2.43, abs=0.05)  # knet's link to node 3 went down
    assert t.connection_lost == t.detected
    assert t.membership == pytest.approx(11.93, abs=0.05)  # token + consensus, about 11 s
    assert t.fence_requested == pytest.approx(11.93, abs=0.05)
    assert t.fence_done == pytest.approx(14.17, abs=0.05)
    chain = [t.membership, t.fence_done, t.recovery_begin, t.recovery_end, t.replay_end]
    assert None not in chain and chain == sorted(chain)  # type: ignore[type-var]
    assert t.evicted == pytest.approx(15.27, abs=0.05)  # fs/dlm: remove member 3
    assert t.recovery_master is None
    assert t.replayed_by in survivors and t.replayed_slot == 1
    assert t.kernel_errors == () and t.fenced == ()
    # Read as o2cb, none of the o2dlm steps are there.
    o2 = analyze_recovery(timeline.events(), fault_time=fault, victim=3, survivors=survivors)
    assert o2.evicted is None and o2.recovery_end is None and not o2.complete
