"""The fault campaign script, executed as a user runs it: a 3-VM cluster of its own, four
faults drawn from a seed under registers and a flock counter, then the checkers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocfs2lab.consistency import History
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.spec import NemesisSpec, schedule
from tests.support.examples import orphans, run_example

pytestmark = pytest.mark.lab

#: How a planned kind shows on the timeline (``data["fault"]`` of its FAULT_INJECTED events).
ON_TIMELINE = {"between": "split", "one_way": "split", "kill2": "kill", "degrade": "degraded_link"}
#: How far a fault's start may drift from its planned gap after the cluster was whole again:
#: a fault counts as started once its commands ran (a split runs iptables in each guest it
#: cuts, at once, 1-2 s under TCG; a freeze or a kill is one QMP command or signal).
TOLERANCE_S = 5.0


def test_a_seeded_schedule_replays_from_its_seed(tmp_path: Path) -> None:
    """The timeline shows the schedule's faults, on their nodes, in their order; each began
    within 5 s of its planned gap after the cluster was whole again; the seed alone gives
    the schedule back; the histories reload and the checkers passed."""
    before = orphans()
    out_dir = tmp_path / "results"
    out = run_example("fault_campaign.py", "--out", str(out_dir), cwd=tmp_path)
    print(out)
    result = json.loads((out_dir / "nemesis.json").read_text())
    spec = NemesisSpec(**result["spec"])
    planned = schedule(spec, 3)
    assert [p.to_json() for p in planned] == result["planned"]
    executed = result["executed"]
    assert [e["planned"] for e in executed] == result["planned"]
    assert all(e["error"] is None and e["injected_s"] is not None for e in executed)
    # What the timeline saw, in order: one fault per planned one, on its nodes.
    timeline = Timeline.load_jsonl(out_dir / "timeline.jsonl")
    seen: list[tuple[str, set[str]]] = []
    previous = 0.0
    for e in timeline.events(LabEventKind.FAULT_INJECTED):
        fault = e.lab.data["fault"] if e.lab is not None else ""
        if seen and seen[-1][0] == fault and e.time - previous < 1.0:
            seen[-1][1].add(e.node or "")  # a split records each node it cuts: one fault
        else:
            seen.append((fault, {e.node or ""}))
        previous = e.time
    assert [f for f, _ in seen] == [ON_TIMELINE.get(p.kind, p.kind) for p in planned]
    for (_, nodes), p in zip(seen, planned, strict=True):
        if p.kind not in ("split", "between", "one_way"):
            assert nodes == {f"ocfs2-node-{n}" for n in p.nodes}, (nodes, p)
    whole = 0.0
    for done, p in zip(executed, planned, strict=True):
        assert abs(done["injected_s"] - whole - p.gap_s) < TOLERANCE_S, done
        whole = done["whole_s"]
    assert result["valid"] is True, result["results"]
    for name in ("register", "flock"):
        history = History.from_jsonl(out_dir / f"history-{name}.jsonl")
        assert len(history) == result["results"][name]["stats"]["ops"] > 20
    assert orphans() - before == set()
