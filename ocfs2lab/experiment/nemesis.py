"""Running a seeded fault schedule against history workloads, then checking the histories.

``Nemesis(cluster, NemesisSpec(seed=7, kinds=(...))).run()``:

1. starts the history workloads (registers by default) on every node;
2. runs the schedule ([`schedule`][ocfs2lab.spec.nemesis.schedule]): waits each fault's gap,
   injects it, holds it for its duration, heals it, and brings the cluster whole again
   (nodes that are down, killed or fenced, are revived and their workload process
   restarted; a node whose volume no longer answers is power-cycled);
3. heals everything, stops the workloads, reads every key from node 1 (the final read
   phase), and runs the checkers.

The result ([`NemesisRun`][ocfs2lab.experiment.nemesis.NemesisRun]) keeps the schedule and
what really happened, fault by fault, with host times: the same seed gives the same
faults, victims and order; the times differ by what healing took.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from ocfs2lab.consistency import CheckResult, History
from ocfs2lab.errors import Ocfs2LabError
from ocfs2lab.experiment.faults import DegradedLink, Fault, Split, Together
from ocfs2lab.experiment.history import HistoryWorkload
from ocfs2lab.node.base import Killable, Power, capable
from ocfs2lab.observe.events import LabEventKind
from ocfs2lab.spec.history import HistorySpec
from ocfs2lab.spec.nemesis import NemesisSpec, PlannedFault, schedule
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)

__all__ = ["ExecutedFault", "Nemesis", "NemesisRun", "make_whole"]

#: A node's volume must answer a write and a read within this many seconds to count as whole.
PROBE_TIMEOUT = 30


@frozen
class ExecutedFault:
    """What became of one planned fault.

    Attributes:
        planned: The fault as scheduled.
        injected_s: When it took effect, in seconds from the run's start.
        healed_s: When it was healed (for kills: when the node's revive began).
        whole_s: When the cluster was whole again.
        revived: Nodes booted again afterwards (killed, or fenced by their kernel).
        power_cycled: Nodes power-cycled because their volume no longer answered.
        error: What went wrong, if the fault could not be run.
    """

    planned: PlannedFault
    injected_s: float | None
    healed_s: float | None
    whole_s: float | None
    revived: tuple[str, ...] = ()
    power_cycled: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object."""
        return {
            "planned": self.planned.to_json(),
            "injected_s": self.injected_s,
            "healed_s": self.healed_s,
            "whole_s": self.whole_s,
            "revived": list(self.revived),
            "power_cycled": list(self.power_cycled),
            "error": self.error,
        }


@frozen
class NemesisRun:
    """A schedule run: the plan, what happened, the histories and the checkers' verdicts.

    Attributes:
        spec: The schedule's spec (with its seed).
        planned: The schedule.
        executed: What happened, fault by fault.
        histories: Each workload's history, by workload name.
        results: Each workload's checker result, by workload name.
        started: Host time of the run's start.
        duration_s: How long the run took.
    """

    spec: NemesisSpec
    planned: tuple[PlannedFault, ...]
    executed: tuple[ExecutedFault, ...]
    histories: dict[str, History]
    results: dict[str, CheckResult]
    started: float
    duration_s: float

    @property
    def valid(self) -> bool | None:
        """Every checker's verdict combined."""
        verdicts = [r.valid for r in self.results.values()]
        if any(v is False for v in verdicts):
            return False
        return None if any(v is None for v in verdicts) else True

    def summary(self) -> str:
        """A few lines: the faults as run, and each checker's verdict."""
        lines = [f"nemesis seed {self.spec.seed}: {len(self.executed)} faults"]
        for done in self.executed:
            at = "-" if done.injected_s is None else f"{done.injected_s:.1f} s"
            extra = f" revived {','.join(done.revived)}" if done.revived else ""
            extra += f" ERROR {done.error}" if done.error else ""
            lines.append(f"  {done.planned.describe()}; ran at {at}{extra}")
        lines.extend(f"  {r.summary()}" for r in self.results.values())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON object (the histories are saved apart: `save`)."""
        return {
            "spec": self.spec.to_json(),
            "planned": [p.to_json() for p in self.planned],
            "executed": [e.to_json() for e in self.executed],
            "results": {k: r.to_json() for k, r in self.results.items()},
            "started": self.started,
            "duration_s": self.duration_s,
            "valid": self.valid,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``nemesis.json`` and one ``history-<workload>.jsonl`` per workload."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "nemesis.json").write_text(json.dumps(self.to_json(), indent=1) + "\n")
        for name, history in self.histories.items():
            history.to_jsonl(out / f"history-{name}.jsonl")
        return out


class Nemesis:
    """A seeded fault schedule run against history workloads on a VM cluster.

    Args:
        cluster: The cluster (a [`LabCluster`][ocfs2lab.clusters.base.LabCluster] of VM
            nodes: faults need power, CPU, link, disk, clock and packet control).
        spec: The schedule.
        workloads: The history workloads to run through it (default: registers).
        whole_timeout: Seconds to wait for the cluster to be whole after each fault.
    """

    def __init__(
        self,
        cluster: Any,
        spec: NemesisSpec,
        *,
        workloads: Sequence[HistorySpec] = (HistorySpec("register"),),
        whole_timeout: float = 600.0,
    ) -> None:
        self.cluster = cluster
        self.spec = spec
        self.workloads = list(workloads)
        self.whole_timeout = whole_timeout
        self.planned = schedule(spec, len(cluster.nodes))

    def _fault(self, planned: PlannedFault) -> Fault | Split | Together:
        c = self.cluster
        nodes = planned.nodes
        if planned.kind == "kill2":
            return c.together(c.kill(nodes[0]), c.kill(nodes[1]))  # type: ignore[no-any-return]
        if planned.kind == "split":
            rest = [n.spec.number for n in c.nodes if n.spec.number not in nodes]
            return c.split([list(nodes), rest])  # type: ignore[no-any-return]
        if planned.kind == "between":
            return c.split(between=nodes)  # type: ignore[no-any-return]
        if planned.kind == "one_way":
            return c.split(one_way=nodes)  # type: ignore[no-any-return]
        if planned.kind == "degrade" and planned.link is not None:
            return DegradedLink(c.node(nodes[0]), c.timeline, link=planned.link)
        if planned.kind == "clock_step":
            return c.clock_step(nodes[0], planned.seconds)  # type: ignore[no-any-return]
        return c.fault(planned.kind, nodes[0])  # type: ignore[no-any-return]

    def run(self) -> NemesisRun:
        """Run the schedule; see the module's description.

        Raises:
            Ocfs2LabError: The workloads could not start, or the cluster could not be made
                whole after a fault.
        """
        c = self.cluster
        timeline = c.timeline
        works: dict[str, HistoryWorkload] = {
            str(w.workload): HistoryWorkload(c.nodes, w, timeline=timeline) for w in self.workloads
        }
        executed: list[ExecutedFault] = []
        with contextlib.ExitStack() as stack:
            for work in works.values():
                stack.enter_context(work)
            started = time.time()
            timeline.record(
                LabEventKind.NOTE,
                f"nemesis seed {self.spec.seed}: {len(self.planned)} faults",
                data={"nemesis": self.spec.to_json()},
            )
            pause = threading.Event()
            for planned in self.planned:
                # Each fault waits its gap after the cluster was whole again.
                since = started + (executed[-1].whole_s or 0.0 if executed else 0.0)
                pause.wait(max(0.0, since + planned.gap_s - time.time()))
                executed.append(self._run_one(planned, started, works))
            for work in works.values():
                work.final_reads(c.nodes[0].spec.name)
        results: dict[str, CheckResult] = {name: w.check() for name, w in works.items()}
        run = NemesisRun(
            spec=self.spec,
            planned=self.planned,
            executed=tuple(executed),
            histories={name: work.history for name, work in works.items()},
            results=results,
            started=started,
            duration_s=time.time() - started,
        )
        timeline.record(LabEventKind.NOTE, run.summary().splitlines()[0], data={"valid": run.valid})
        log.info("%s", run.summary())
        return run

    def _run_one(
        self, planned: PlannedFault, started: float, works: dict[str, HistoryWorkload]
    ) -> ExecutedFault:
        log.info("nemesis: %s", planned.describe())
        try:
            fault = self._fault(planned)
        except Ocfs2LabError as err:
            return ExecutedFault(planned, None, None, None, error=str(err))
        pause = threading.Event()
        with fault:
            injected = fault.injected_at
            pause.wait(planned.duration_s)
        healed = time.time()
        revived, cycled = make_whole(self.cluster, timeout=self.whole_timeout)
        for name in (*revived, *cycled):
            for work in works.values():
                with contextlib.suppress(Ocfs2LabError):
                    work.reconnect(self.cluster.node(name))
        whole = time.time()
        return ExecutedFault(
            planned,
            None if injected is None else injected - started,
            healed - started,
            whole - started,
            tuple(revived),
            tuple(cycled),
        )


def make_whole(cluster: Any, *, timeout: float = 600.0) -> tuple[list[str], list[str]]:
    """Bring a VM cluster whole after faults: revive the nodes that are down (killed, or
    fenced by their kernel), power-cycle those whose volume does not answer a write and a
    read within `PROBE_TIMEOUT` (a stale mount after an eviction), and wait until every
    node has the volume mounted.

    Returns:
        The nodes revived, and the nodes power-cycled.

    Raises:
        WaitTimeout: The cluster was not whole within ``timeout``.
    """
    revived: list[str] = []
    cycled: list[str] = []
    for node in cluster.nodes:
        if capable(node, Killable) and not node.running and capable(node, Power):
            cluster.revive(node)
            revived.append(node.spec.name)
    for node in cluster.nodes:
        if node.spec.name in revived or _answers(cluster, node):
            continue
        cluster.timeline.record(
            LabEventKind.NOTE,
            f"power-cycling {node.spec.name}: its volume does not answer",
            node=node.spec.name,
        )
        node.kill()
        cluster.revive(node)
        cycled.append(node.spec.name)
    wait_until(
        lambda: (s := cluster.status()).mounted == s.nodes or None,
        what="every node to mount the volume again",
        timeout=timeout,
        interval=1.0,
    )
    return revived, cycled


def _answers(cluster: Any, node: Any) -> bool:
    """A write and a read on the volume complete within `PROBE_TIMEOUT`."""
    path = f"{cluster.volume_spec.mount_point}/.ocfs2lab-probe-{node.spec.name}"
    probe = f'echo ok > "{path}" && cat "{path}"'
    try:
        result = node.run(
            ["timeout", str(PROBE_TIMEOUT), "sh", "-c", probe],
            check=False,
            timeout=PROBE_TIMEOUT + 30,
        )
    except Ocfs2LabError:
        return False
    return bool(result.ok and "ok" in result.stdout)
