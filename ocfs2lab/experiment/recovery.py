"""Recovery experiments: a workload on every node, a fault, and what the cluster did about it.

``RecoveryExperiment(cluster, fault="kill", victim=3).run(repeat=5)`` does, each time:

1. start a writer on every node; each reports every fsync-acknowledged record to a
   [`WriteRecorder`][ocfs2lab.observe.recorder.WriteRecorder] on this machine the moment fsync
   returns (a node that dies cannot report after the fact);
2. inject the fault into the victim once every writer has written;
3. wait, on the timeline, until a survivor evicted the victim, ended DLM recovery and
   replayed the victim's journal, then until every survivor's writer writes again;
4. lift the fault (a kill stays) and wait to see the victim's fate: fenced, or back;
5. stop the writers and read every acknowledged record back on a survivor;
6. revive the victim if it is down (boot, rejoin, mount) and read everything back there too.

Each run gives a [`RecoveryReport`][ocfs2lab.experiment.recovery.RecoveryReport] (times after the
fault, the recovery master, who fenced, the longest gap a survivor's writer saw, the lost-write
checks, and the run's raw events); [`RecoverySeries`][ocfs2lab.experiment.recovery.RecoverySeries]
adds the statistics over runs.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from attrs import asdict, field, frozen

from ocfs2lab.errors import CommandFailed, HostError, Ocfs2LabError, SpecError, WaitTimeout
from ocfs2lab.experiment.analysis import (
    RECOVERY_STEPS,
    RecoveryTimes,
    analyze_recovery,
    pcmk_theory,
    spread,
    theory,
)
from ocfs2lab.experiment.faults import FAULTS, Fault, FaultName
from ocfs2lab.formats.kmsg import ERROR_KINDS, EventKind
from ocfs2lab.fs.volume import FsckReport
from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.base import Killable, Node, Power, capable
from ocfs2lab.observe.export import require_module
from ocfs2lab.observe.recorder import (
    Listener,
    VerifyReport,
    WriteRecorder,
    runner_reader,
    writer_script,
)
from ocfs2lab.observe.timeline import (
    Expect,
    ExpectTimeout,
    LabEventKind,
    Timeline,
    TimelineEvent,
)
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.cluster import ClusterSpec, TimingSpec
from ocfs2lab.spec.stack import PcmkSpec
from ocfs2lab.spec.storage import VolumeSpec
from ocfs2lab.wait import wait_until

if TYPE_CHECKING:
    from pandas import DataFrame


log = logging.getLogger(__name__)

#: Where the writer script goes on each node.
WRITER_PATH = "/var/tmp/ocfs2lab-writer.py"
#: Directory of the writers' files on the volume.
WRITES_DIR = "ocfs2lab-writes"
#: Slack added to every kernel deadline: emulated guests are slow.
SLACK = 120.0


@frozen
class RecoveryReport:
    """One fault and what followed.

    Attributes:
        run: The run's number in its series (from 1).
        fault: ``kill``, ``freeze``, ``partition`` or ``disk_stall``.
        victim: The faulted node's name.
        survivors: The other nodes.
        fault_time: Host time the fault took effect.
        healed_after: Seconds from the fault to its lifting (``None`` for a kill).
        timing: The cluster's timing knobs.
        times: The survivors' recovery steps (seconds after the fault), the recovery
            master, the fenced nodes.
        victim_fate: ``killed``, ``fenced``, ``evicted_running`` (evicted by the survivors,
            yet running on with a stale mount: the lab power-cycles it when reviving),
            ``survived`` or ``undecided``.
        max_stall: Per survivor: the longest time between two acknowledged writes around
            the fault (seconds).
        writes: Every acknowledged record read back on a survivor after the fault.
        writes_after_revive: The same, read on the victim after its revive (``None``: not
            revived).
        revive_error: Why the revived victim could not mount, when it could not (the
            volume was then repaired).
        repair: What ``fsck.ocfs2 -fy`` said when the volume had to be repaired.
        events: The run's timeline events (from the fault to the end of the run).
        duration: Seconds the run took.
        kernel: The kernel the cluster ran (release; for lab kernels the recipe key,
            patches, tree commit and profile).
        stack: The cluster stack (``o2cb`` or ``pcmk``).
        pcmk: The pcmk stack's knobs (with ``pcmk``).
    """

    run: int
    fault: str
    victim: str
    survivors: tuple[str, ...]
    fault_time: float
    healed_after: float | None
    timing: TimingSpec
    times: RecoveryTimes
    victim_fate: str
    max_stall: dict[str, float | None]
    writes: VerifyReport
    writes_after_revive: VerifyReport | None
    revive_error: str | None
    repair: FsckReport | None
    events: tuple[TimelineEvent, ...]
    duration: float
    kernel: dict[str, Any] = field(factory=dict)
    stack: str = "o2cb"
    pcmk: PcmkSpec | None = None

    @property
    def lost_writes(self) -> int:
        """Acknowledged records lost or torn, after the fault and after the revive."""
        n = len(self.writes.lost) + len(self.writes.torn)
        if self.writes_after_revive is not None:
            n += len(self.writes_after_revive.lost) + len(self.writes_after_revive.torn)
        return n

    @property
    def theory(self) -> dict[str, float]:
        """What the timing knobs predict (see [`theory`][ocfs2lab.experiment.analysis.theory]
        and, on pcmk, [`pcmk_theory`][ocfs2lab.experiment.analysis.pcmk_theory])."""
        if self.stack == "pcmk":
            return pcmk_theory(self.pcmk or PcmkSpec())
        return theory(self.timing)

    def row(self) -> dict[str, Any]:
        """The report as one flat row (for a DataFrame or a table)."""
        t = self.times
        stalls = [v for v in self.max_stall.values() if v is not None]
        return {
            "run": self.run,
            "fault": self.fault,
            "victim": self.victim,
            "detected_s": t.detected,
            "connection_lost_s": t.connection_lost,
            "evicted_s": t.evicted,
            "recovery_begin_s": t.recovery_begin,
            "recovery_end_s": t.recovery_end,
            # How long DLM recovery itself took: its end less its begin. The begin waits for
            # the o2dlm recovery thread's next wake-up (up to 5 s after the eviction), which
            # every figure counted from the fault carries; this one does not.
            "recovery_s": (
                None
                if t.recovery_end is None or t.recovery_begin is None
                else t.recovery_end - t.recovery_begin
            ),
            "replay_end_s": t.replay_end,
            "membership_s": t.membership,
            "fence_requested_s": t.fence_requested,
            "fence_done_s": t.fence_done,
            "recovery_master": t.recovery_master,
            "fenced": ",".join(t.fenced),
            "victim_fate": self.victim_fate,
            "revive_error": self.revive_error,
            "repaired": None if self.repair is None else self.repair.exit_code,
            "max_stall_s": max(stalls) if stalls else None,
            "acked_writes": self.writes.acknowledged,
            "lost_writes": self.lost_writes,
            "in_order": t.in_order,
            "dlm_errors": sum(n for _, n in t.dlm_errors),
            "stack": self.stack,
            "dead_threshold": self.timing.dead_threshold,
            "idle_timeout_ms": self.timing.idle_timeout_ms,
            "token_ms": self.pcmk.token_ms if self.pcmk else None,
            "consensus_ms": self.pcmk.consensus if self.pcmk else None,
            "fencing": self.pcmk.fencing if self.pcmk else None,
            "duration_s": self.duration,
            "kernel_release": self.kernel.get("release"),
            "kernel_key": self.kernel.get("key"),
        }

    def summary(self) -> str:
        """One line: the main figures."""

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}s"

        t = self.times
        middle = (
            f"membership {f(t.membership)}, fenced {f(t.fence_done)}, removed "
            f"{f(t.evicted)}, recovery end {f(t.recovery_end)}"
            if self.stack == "pcmk"
            else f"evicted {f(t.evicted)}, recovery end {f(t.recovery_end)} (master "
            f"{t.recovery_master})"
        )
        return (
            f"run {self.run}: {self.stack} {self.fault} {self.victim}: detected "
            f"{f(t.detected)}, {middle}, replay end {f(t.replay_end)}; fenced itself "
            f"{list(t.fenced) or 'none'}; victim "
            f"{self.victim_fate}; {self.writes.acknowledged} acked writes, "
            f"{self.lost_writes} lost"
            + (
                f"; revived node could not mount, fsck -fy exit {self.repair.exit_code}"
                if self.repair is not None
                else ""
            )
        )


#: The figures `RecoverySeries.stats` summarises.
FIGURES = (
    "detected_s",
    "connection_lost_s",
    "evicted_s",
    "recovery_begin_s",
    "recovery_end_s",
    "recovery_s",
    "replay_end_s",
    "max_stall_s",
    "membership_s",
    "fence_done_s",
)


@frozen
class RecoverySeries:
    """Several runs of one experiment.

    Attributes:
        reports: One report per run, in order (each keeps its raw events).
    """

    reports: tuple[RecoveryReport, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per run."""
        return [r.row() for r in self.reports]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Median, min, max, standard deviation and count of each figure over the runs."""
        rows = self.rows()
        return {name: spread(row[name] for row in rows) for name in FIGURES}

    @property
    def kernel(self) -> dict[str, Any]:
        """The kernel the runs ran on (that of the first run)."""
        return dict(self.reports[0].kernel) if self.reports else {}

    def to_dataframe(self) -> DataFrame:
        """The runs as a pandas DataFrame (the ``notebook`` extra).

        Raises:
            MissingDependency: pandas is not installed.
        """
        pd = require_module("pandas", "pandas", "RecoverySeries.to_dataframe")
        return pd.DataFrame(self.rows())

    @property
    def lost_writes(self) -> int:
        """Lost or torn acknowledged records over every run."""
        return sum(r.lost_writes for r in self.reports)


class WriterNode(Node, Protocol):
    """A node a writer runs on: it reaches the lab's recorder at an address of its own."""

    def recorder_address(self, recorder: Listener) -> str:
        """The address at which a writer on this node reaches ``recorder``."""
        ...


class ExperimentCluster(Protocol):
    """What a recovery experiment needs of a cluster (every
    [`LabCluster`][ocfs2lab.clusters.base.LabCluster] has it): its nodes, a timeline, faults
    by name, and a way to bring a node back."""

    spec: ClusterSpec
    volume_spec: VolumeSpec
    timeline: Timeline
    pcmk_spec: PcmkSpec

    @property
    def stack(self) -> str:
        """The cluster stack: ``o2cb`` or ``pcmk``."""
        ...

    @property
    def nodes(self) -> Sequence[WriterNode]:
        """The nodes, node 1 first."""
        ...

    def node(self, which: str | int) -> WriterNode:
        """A node by name or number."""
        ...

    def kernel_provenance(self) -> dict[str, Any]:
        """What kernel the nodes run."""
        ...

    def fault(self, kind: FaultName, node: str | int | Node) -> Fault:
        """A fault by name (refused when the node lacks its capability)."""
        ...

    def revive(self, which: str | int | Node) -> Any:
        """Boot a node that is down again, rejoin it and mount the volume on it."""
        ...

    def repair(self) -> FsckReport:
        """Repair the volume (fsck -fy) and mount it again everywhere."""
        ...


class RecoveryExperiment:
    """Kill (or freeze, partition, stall) one node under load and measure the recovery.

    Args:
        cluster: A running cluster (an
            [`ExperimentCluster`][ocfs2lab.experiment.recovery.ExperimentCluster]): a
            [`VmCluster`][ocfs2lab.clusters.vms.VmCluster], or an
            [`SshCluster`][ocfs2lab.clusters.machines.SshCluster] for faults that need no
            power control. Reviving needs nodes with it.
        fault: ``kill``, ``freeze``, ``partition`` or ``disk_stall``.
        victim: The node to fault (name or number; ``-1``: the last node). The last node
            is the default: the lowest node decides quorum ties, so faulting it shows
            another story (both are worth running).
        hold: For faults that are lifted: seconds the fault stays after the survivors
            finished recovery (0: lift at once).
        record_size: Bytes per writer record.
        warmup_acks: Acknowledged records every writer must have before the fault.
        after_acks: Records every survivor's writer must write after recovery.
        revive: Boot a victim that is down again at the end of each run.

    Raises:
        SpecError: Bad input (an unknown fault or node, or a victim without the
            capability the fault needs), before anything runs.
    """

    def __init__(
        self,
        cluster: ExperimentCluster,
        *,
        fault: FaultName = "kill",
        victim: str | int = -1,
        hold: float = 0.0,
        record_size: int = 4096,
        warmup_acks: int = 20,
        after_acks: int = 20,
        revive: bool = True,
    ) -> None:
        if fault not in FAULTS:
            raise SpecError("fault", fault, f"must be one of {', '.join(FAULTS)}")
        if len(cluster.nodes) < 2:
            raise SpecError("cluster.nodes", len(cluster.nodes), "an experiment needs 2 nodes")
        if hold < 0:
            raise SpecError("hold", hold, "must not be negative")
        self.cluster = cluster
        self.fault = fault
        self.victim = cluster.node(victim)
        cluster.fault(fault, self.victim)  # refused now if the victim lacks the capability
        self.hold = hold
        self.record_size = record_size
        self.warmup_acks = warmup_acks
        self.after_acks = after_acks
        self.revive = revive
        self.runs = 0
        self.kernel: dict[str, Any] = cluster.kernel_provenance()
        self.stack = cluster.stack
        self._revive_error: str | None = None
        self._repair: FsckReport | None = None

    @property
    def survivors(self) -> list[WriterNode]:
        """Every node but the victim."""
        return [n for n in self.cluster.nodes if n is not self.victim]

    def run(self, repeat: int = 1) -> RecoverySeries:
        """Run the experiment ``repeat`` times.

        Raises:
            SpecError: ``repeat`` below 1.
            ForbiddenEvent: A survivor's kernel logged a BUG, oops, WARNING or hung task.
            WaitTimeout: A writer never wrote before the fault.
            LifecycleError: A victim could not be booted again.
        """
        if repeat < 1:
            raise SpecError("repeat", repeat, "must be at least 1")
        return RecoverySeries(tuple(self.run_once() for _ in range(repeat)))

    def run_once(self) -> RecoveryReport:
        """One run (see the module's description).

        Survivors that do not finish recovering before the deadline are a finding, not an
        error: the report's `RecoveryReport.times` then shows which steps are missing.

        Raises:
            ForbiddenEvent: A survivor's kernel logged a BUG, oops, WARNING or hung task.
            WaitTimeout: A writer never wrote before the fault.
            LifecycleError: The victim could not be booted again.
        """
        self.runs += 1
        run = self.runs
        cluster = self.cluster
        timeline = cluster.timeline
        started = time.monotonic()
        begin = timeline.now()
        self._revive_down_nodes()
        tag = f"{run}-{secrets.token_hex(3)}"
        with (
            timeline.phase(f"{self.fault} run {run}"),
            WriteRecorder(timeline=timeline) as recorder,
        ):
            writers = self._start_writers(recorder, tag)
            try:
                for node in cluster.nodes:
                    recorder.wait_for_acks(
                        self.warmup_acks, node=node.spec.name, timeout=SLACK, since=begin
                    )
                fault = cluster.fault(self.fault, self.victim)
                with fault:
                    fault_time = fault.injected_at or timeline.now()
                    recovered = self._wait_recovery(fault_time)
                    self._wait_writes_again(recorder, recovered)
                    if self.hold > 0 and fault.name != "kill":
                        self._hold(fault_time)
                healed = fault.healed_at
                fate = self._victim_fate(fault, fault_time, healed)
            finally:
                self._stop_writers(writers)
            end = timeline.now()
            writes = recorder.verify(runner_reader(self.survivors[0].runner), since=begin)
            after_revive = None
            self._revive_error = None
            self._repair = None
            if self.revive and fate == "evicted_running":
                self._restart_stale_victim()
                after_revive = recorder.verify(runner_reader(self.victim.runner), since=begin)
            elif self.revive and not self.victim.up:
                self._revive(self.victim)
                after_revive = recorder.verify(runner_reader(self.victim.runner), since=begin)
            stalls = {n.spec.name: _gap(recorder, n.spec.name, begin, end) for n in self.survivors}
        events = timeline.events(since=fault_time)
        times = analyze_recovery(
            events,
            fault_time=fault_time,
            victim=self.victim.spec.number,
            survivors=[n.spec.name for n in self.survivors],
            names={n.spec.number: n.spec.name for n in cluster.nodes},
            stack=self.stack,
        )
        report = RecoveryReport(
            run=run,
            fault=self.fault,
            victim=self.victim.spec.name,
            survivors=tuple(n.spec.name for n in self.survivors),
            fault_time=fault_time,
            healed_after=None if healed is None else healed - fault_time,
            timing=cluster.spec.timing,
            times=times,
            victim_fate=fate,
            max_stall=stalls,
            writes=writes,
            writes_after_revive=after_revive,
            revive_error=self._revive_error,
            repair=self._repair,
            events=tuple(events),
            duration=time.monotonic() - started,
            kernel=self.kernel,
            stack=self.stack,
            pcmk=cluster.pcmk_spec if self.stack == "pcmk" else None,
        )
        timeline.record(LabEventKind.NOTE, report.summary(), data=report.row())
        log.info("%s", report.summary())
        return report

    # -- steps -----------------------------------------------------------------------------
    def _revive_down_nodes(self) -> None:
        """Boot nodes that an earlier fault left down, so every run starts whole.

        Raises:
            HostError: A node is down and the cluster cannot boot it (SSH machines).
        """
        for node in self.cluster.nodes:
            if not node.up:
                if not capable(node, Power):
                    raise HostError(
                        f"{node.spec.name} is down and the lab cannot boot it",
                        hint="boot it yourself, then call cluster.rejoin(node)",
                    )
                self._revive(node)

    def _start_writers(self, recorder: WriteRecorder, tag: str) -> list[RemoteProcess]:
        """Start one writer per node, each on a file of its own for this run, on every node
        at once (under emulation a start costs a few seconds per node)."""
        mp = self.cluster.volume_spec.mount_point
        directory = f"{mp}/{WRITES_DIR}"
        self.cluster.nodes[0].run(["mkdir", "-p", directory], timeout=60)
        script = writer_script().read_bytes()

        def start(node: WriterNode) -> RemoteProcess:
            node.put_file(WRITER_PATH, script, 0o755)
            argv = recorder.writer_argv(
                node=node.spec.name,
                file=f"{directory}/{node.spec.name}-run{tag}.dat",
                address=node.recorder_address(recorder),
                size=self.record_size,
                script=WRITER_PATH,
            )
            return RemoteProcess.start(node, argv, log_path=f"/var/tmp/ocfs2lab-writer-{tag}.log")

        outcome = run_parallel(list(self.cluster.nodes), start)
        writers = [writer for _node, writer in outcome.done]
        if outcome.failed:
            self._stop_writers(writers)
            outcome.raise_failures("start the writer", lambda n: n.spec.name)
        return writers

    def _stop_writers(self, writers: Sequence[RemoteProcess]) -> None:
        def stop(writer: RemoteProcess) -> None:
            if not writer.node.up:
                return  # died with its node
            try:
                writer.stop()
            except Ocfs2LabError as err:
                log.warning("%s: stopping the writer: %s", writer.node.spec.name, err)

        run_parallel(list(writers), stop)

    def _deadline(self) -> float:
        if self.stack == "pcmk":
            t = pcmk_theory(self.cluster.pcmk_spec)
        else:
            t = theory(self.cluster.spec.timing)
        return t["evict_latest"] + t["idle"] + SLACK

    def _wait_recovery(self, fault_time: float) -> float:
        """Wait for a survivor's eviction, recovery end and journal replay of the victim.

        Returns:
            The host time the survivors were done, or the deadline's time when they did
            not finish (the report then shows which steps are missing: that is a finding,
            not an error of the experiment).

        Raises:
            ForbiddenEvent: A survivor's kernel logged a BUG, oops, WARNING or hung task.
        """
        number = self.victim.spec.number
        survivors = [n.spec.name for n in self.survivors]
        forbid = [Expect(k, node=s) for k in ERROR_KINDS for s in survivors]

        def on_survivor(e: TimelineEvent) -> bool:
            return e.node in survivors

        steps = [
            Expect(kind, about=number if names_victim else None, where=on_survivor)
            for kind, names_victim in RECOVERY_STEPS[self.stack]
        ]
        try:
            matched = self.cluster.timeline.expect(
                *steps,
                after=fault_time,
                timeout=self._deadline(),
                forbid=forbid,
            )
        except ExpectTimeout as err:
            log.warning("the survivors did not finish recovering %s: %s", self.victim, err)
            self.cluster.timeline.record(
                LabEventKind.NOTE,
                f"no complete recovery of {self.victim.spec.name} within {self._deadline():.0f} s",
            )
            return self.cluster.timeline.now()
        return matched[-1].time

    def _wait_writes_again(self, recorder: WriteRecorder, since: float) -> None:
        """Wait until every survivor's writer wrote again after ``since`` (logged if not)."""
        for node in self.survivors:
            try:
                recorder.wait_for_acks(
                    self.after_acks, node=node.spec.name, timeout=SLACK, since=since
                )
            except WaitTimeout as err:
                log.warning("%s: the writer did not resume: %s", node.spec.name, err)

    def _hold(self, fault_time: float) -> None:
        """Keep the fault until ``hold`` seconds after recovery (a condition on the clock)."""
        timeline = self.cluster.timeline
        until = timeline.now() + self.hold
        wait_until(
            lambda: timeline.now() >= until or None,
            what=f"the {self.fault} hold of {self.hold:g} s",
            timeout=self.hold + 5,
            interval=0.2,
        )

    def _victim_fate(self, fault: Fault, fault_time: float, healed: float | None) -> str:
        """What became of the victim once the fault was lifted.

        ``killed`` (a kill); ``fenced`` (it fenced itself, or its machine is gone);
        ``evicted_running`` (the survivors evicted it, yet it runs on and talked to them
        again: its DLM domain membership is gone, so its lock requests fail: a stale node);
        ``survived`` (it reconnected and was never evicted); ``undecided`` (none of these
        before the deadline).
        """
        if fault.name == "kill":
            return "killed"
        timeline = self.cluster.timeline
        name = self.victim.spec.name
        number = self.victim.spec.number
        since = healed if healed is not None else timeline.now()
        survivors = [n.spec.name for n in self.survivors]

        def about_victim(kind: EventKind, after: float) -> bool:
            return any(
                e.about == number for e in timeline.events(kind, node=survivors, since=after)
            )

        def decided() -> str | None:
            fenced = timeline.events(
                [EventKind.FENCE_RESTART, EventKind.FENCE_PANIC], node=name, since=fault_time
            )
            if fenced or not _running(self.victim):
                return "fenced"
            if self.stack == "pcmk":
                # No fence: the victim either stayed a member (a stall the membership did
                # not notice) or was removed and runs on.
                removed = about_victim(EventKind.FSDLM_MEMBER_REMOVED, fault_time)
                return "evicted_running" if removed else "survived"
            if about_victim(EventKind.O2NET_CONNECTED, since):
                evicted = about_victim(EventKind.DLM_EVICTED, fault_time)
                return "evicted_running" if evicted else "survived"
            return None

        try:
            return wait_until(
                decided,
                what=f"{name} to fence itself or reconnect",
                timeout=self._deadline(),
                interval=0.5,
            )
        except Ocfs2LabError:
            return "undecided"

    def _restart_stale_victim(self) -> None:
        """Power-cycle a victim that runs on after its eviction (what an admin must do)."""
        if not capable(self.victim, Power):
            log.warning("%s runs on after its eviction; reboot it", self.victim.spec.name)
            return
        self.cluster.timeline.record(
            LabEventKind.NOTE,
            f"power-cycling {self.victim.spec.name}: evicted from the DLM domain, its mount "
            "is stale",
            node=self.victim.spec.name,
        )
        cast(Power, self.victim).kill()
        self._revive(self.victim)

    def _revive(self, node: WriterNode) -> None:
        """Boot a node again, rejoin and remount it; repair the volume if it cannot mount.

        A node that cannot mount after its revive (``please run fsck.ocfs2``) is a finding:
        it is recorded (`RecoveryReport.revive_error`), the volume is repaired
        (unmounted everywhere, ``fsck.ocfs2 -fy``, mounted again: `RecoveryReport.repair`)
        so the cluster serves the next run.

        Raises:
            LifecycleError: The node could not be booted, or the repair failed.
        """
        if not capable(node, Power):
            log.warning("%s is down and the cluster cannot boot it", node.spec.name)
            return
        try:
            self.cluster.revive(node)
        except CommandFailed as err:
            if not node.up:
                raise
            self._revive_error = f"{err.message} {err.result.stderr.strip()}"[:1000]
            log.warning("%s did not mount after its revive: %s", node.spec.name, err)
            self._repair = self.cluster.repair()


def _running(node: Node) -> bool:
    if capable(node, Killable):
        return bool(node.running)  # type: ignore[attr-defined]
    return node.up


def _gap(recorder: WriteRecorder, node: str, since: float, until: float) -> float | None:
    found = recorder.max_gap(node, since=since, until=until)
    return None if found is None else found[0]


def report_dict(report: RecoveryReport) -> dict[str, Any]:
    """A JSON-compatible dict of a report, without its events."""
    data = report.row()
    data["times"] = asdict(report.times)
    data["max_stall"] = dict(report.max_stall)
    data["writes"] = report.writes.summary()
    data["kernel"] = dict(report.kernel)
    if report.writes_after_revive is not None:
        data["writes_after_revive"] = report.writes_after_revive.summary()
    return data
