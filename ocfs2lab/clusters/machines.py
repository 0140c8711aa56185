"""SshCluster: the one pipeline on machines that exist already, one kernel each.

``with SshCluster(nodes, device, owned=True) as c:`` checks the machines
([`SshNode`][ocfs2lab.node.ssh.SshNode]) before changing anything on any of them, then runs
the pipeline of [`LabCluster`][ocfs2lab.clusters.base.LabCluster] on them. Every node's kernel
messages go to one [`Timeline`][ocfs2lab.observe.timeline.Timeline], with the lab's own
actions. The lab has no power, CPU, link or disk control over such machines, so faults are
refused on them; [`VmCluster`][ocfs2lab.clusters.vms.VmCluster] has all four.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial

import attrs
from attrs import frozen

from ocfs2lab.clusters.base import LabCluster
from ocfs2lab.errors import HostError, OwnershipError, ParseError, SpecError
from ocfs2lab.formats.corosync import COROSYNC_CONF, DLM_CONF
from ocfs2lab.fs.o2cb import CLUSTER_CONF, O2cbCluster
from ocfs2lab.fs.pcmk import COROSYNC_UNIT, DLM_UNIT, PcmkCluster
from ocfs2lab.fs.stack import ClusterStack
from ocfs2lab.host.state import all_ledgers
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.parallel import run_parallel
from ocfs2lab.report import Reporter
from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, TimingSpec
from ocfs2lab.spec.stack import PcmkSpec, StackName
from ocfs2lab.spec.storage import VolumeSpec

log = logging.getLogger(__name__)


def check_machines(nodes: Sequence[SshNode], device: str, network: NetworkSpec) -> None:
    """Check machines before anything is changed on any of them.

    Each must answer, be named as its spec (o2cb marks the local node by hostname), see
    the device, have its interconnect address in ``network``, and run a kernel of its own.

    Raises:
        HostError: A node fails a check (all nodes are checked; every problem is named).
    """

    def check(node: SshNode) -> str:
        name = node.run(["uname", "-n"], timeout=30).stdout.strip().split(".")[0]
        if name != node.spec.name:
            raise HostError(
                f"{node.spec.name}: the machine's hostname is {name!r}",
                hint="o2cb takes the node whose name equals the hostname as the local "
                "node: name the node after the machine",
            )
        if not node.is_block_device(device):
            raise HostError(f"{node.spec.name}: {device} is not a block device there")
        node.check_interconnect(network)
        return node.boot_id()

    outcome = run_parallel(list(nodes), check)
    outcome.raise_failures("check nodes", lambda n: n.spec.name)
    kernels: dict[str, list[str]] = {}
    for node, boot_id in outcome.done:
        kernels.setdefault(boot_id, []).append(node.spec.name)
    shared = [names for names in kernels.values() if len(names) > 1]
    if shared:
        raise HostError(
            f"nodes share a kernel: {shared}",
            hint="one kernel is one OCFS2 node: give each node a machine of its own "
            "(containers of one host are one node: use Cluster for them)",
        )


#: One command that shows a machine's cluster state: the registered o2cb clusters, the OCFS2
#: mount points, the userspace stack's daemons that run, ``corosync.conf``, ``dlm.conf`` and
#: ``cluster.conf`` (parsed by `parse_o2cb_state`).
O2CB_STATE_SCRIPT = (
    "ls -1 /sys/kernel/config/cluster 2>/dev/null; echo @@; "
    "awk '$3 == \"ocfs2\" {print $2}' /proc/mounts; echo @@; "
    f"for u in {COROSYNC_UNIT} {DLM_UNIT}; do "
    'systemctl is-active --quiet "$u" 2>/dev/null && echo "$u"; done; echo @@; '
    f"cat {COROSYNC_CONF} 2>/dev/null || echo @none; echo @@; "
    f"cat {DLM_CONF} 2>/dev/null || echo @none; echo @@; "
    f"cat {CLUSTER_CONF} 2>/dev/null || echo @none"
)


@frozen
class O2cbState:
    """What of OCFS2 a machine has before the lab touches it.

    Attributes:
        clusters: Registered o2cb clusters (configfs).
        mounts: OCFS2 mount points.
        conf: The text of ``/etc/ocfs2/cluster.conf`` (``None``: there is none).
        daemons: The userspace stack's units that run (``corosync.service``,
            ``dlm.service``).
        files: The userspace stack's files by path (``None``: there is none).
    """

    clusters: tuple[str, ...]
    mounts: tuple[str, ...]
    conf: str | None
    daemons: tuple[str, ...] = ()
    files: dict[str, str | None] = attrs.field(factory=dict)


def parse_o2cb_state(text: str) -> O2cbState:
    """Read the output of `O2CB_STATE_SCRIPT`.

    Raises:
        ParseError: Not that output.
    """
    parts = text.split("@@\n", 5)
    if len(parts) not in (3, 6):
        raise ParseError("o2cb state", "expected three or six parts separated by @@", text=text)

    def content(part: str) -> str | None:
        return None if part.strip() == "@none" else part

    if len(parts) == 3:
        clusters, mounts, conf = parts
        return O2cbState(tuple(clusters.split()), tuple(mounts.split()), content(conf))
    clusters, mounts, daemons, corosync, dlm, conf = parts
    return O2cbState(
        tuple(clusters.split()),
        tuple(mounts.split()),
        content(conf),
        tuple(daemons.split()),
        {COROSYNC_CONF: content(corosync), DLM_CONF: content(dlm)},
    )


class ForeignState:
    """The check of one machine against what the lab would change there."""

    def __init__(self, node: SshNode, state: O2cbState, owners: dict[str, str]) -> None:
        self.node = node
        self.state = state
        #: Registered clusters (and started units) a lab's ledger on the machine names:
        #: cluster or unit -> lab id.
        self.owners = owners

    def problems(
        self, conf_text: str, *, files: Mapping[str, str] | None = None
    ) -> tuple[list[str], list[str]]:
        """``(refused always, refused unless force)``, in words.

        Args:
            conf_text: The ``cluster.conf`` the lab would write (the o2cb stack).
            files: For the pcmk stack instead, the files the lab would write by path
                (``corosync.conf``, ``dlm.conf``).
        """
        if files is not None:
            return self._pcmk_problems(files)
        name = self.node.spec.name
        hard = [
            f"{name}: cluster {c} of lab {lab} is registered (end that lab first: "
            "`ocfs2lab cleanup --ssh ...`)"
            for c, lab in self.owners.items()
        ]
        hard += self._mounted()
        soft = [
            f"{name}: cluster {c} is registered and no lab owns it (force: it is unregistered "
            "and registered again on exit)"
            for c in self.foreign_clusters
        ]
        if self.state.conf is not None and self.state.conf != conf_text:
            soft.append(
                f"{name}: {CLUSTER_CONF} exists and differs from the lab's (force: it is kept "
                "as a backup and restored byte for byte on exit)"
            )
        return hard, soft

    def _mounted(self) -> list[str]:
        return [
            f"{self.node.spec.name}: OCFS2 is mounted on {mp}, which the lab did not mount (the "
            "lab never unmounts a file system it did not mount: unmount it yourself)"
            for mp in self.state.mounts
        ]

    def _pcmk_problems(self, files: Mapping[str, str]) -> tuple[list[str], list[str]]:
        name = self.node.spec.name
        hard = self._mounted()
        for unit in self.state.daemons:
            lab = self.owners.get(unit)
            hard.append(
                f"{name}: {unit} runs, started by lab {lab} (end that lab first: "
                "`ocfs2lab cleanup --ssh ...`)"
                if lab
                else f"{name}: {unit} runs and no lab started it (the machine is in a cluster "
                "of its own; the lab never stops a daemon it did not start: stop it yourself)"
            )
        soft = [
            f"{name}: {path} exists and differs from the lab's (force: it is kept as a backup "
            "and restored byte for byte on exit)"
            for path, text in files.items()
            if self.state.files.get(path) not in (None, text)
        ]
        return hard, soft

    @property
    def foreign_clusters(self) -> list[str]:
        """Registered clusters no lab's ledger names."""
        return [c for c in self.state.clusters if c not in self.owners]


def look_at(node: SshNode) -> ForeignState:
    """What of OCFS2 ``node`` has, and which of it labs own (no change is made)."""
    res = node.run(["sh", "-c", O2CB_STATE_SCRIPT], timeout=60)
    state = parse_o2cb_state(res.stdout)
    owners = {
        e.key: lab
        for lab, entries in all_ledgers(node).items()
        for e in entries
        if (e.kind == "cluster" and e.key in state.clusters)
        or (e.kind == "service" and e.key in state.daemons)
    }
    return ForeignState(node, state, owners)


def check_device_path(device: str) -> str:
    """The shared device's path, checked.

    Raises:
        SpecError: Not an absolute path.
    """
    if not device.startswith("/"):
        raise SpecError("device", device, "must be an absolute path (/dev/disk/by-id/...)")
    return device


class SshCluster(LabCluster):
    """An o2cb cluster and an OCFS2 volume on machines with one kernel each.

    Args:
        nodes: The nodes, node 1 first (its names, numbers and addresses make the cluster).
        device: The shared block device's path, the same on every node.
        name: The cluster name (o2cb: 1-16 letters and digits).
        network: The interconnect's subnet (every node's address must be in it).
        timing: Heartbeat and o2net knobs, set on every node before heartbeat starts.
        volume: Label, mount point, sizes.
        heartbeat_mode: ``"local"`` or ``"global"``.
        owned: The device may be wiped and formatted (you mean to lose what is on it).
        force: Go ahead over a registered cluster no lab owns (unregistered, and registered
            again on exit) and a ``cluster.conf`` of the machine's own (kept, restored byte
            for byte on exit). Another lab's cluster and OCFS2 mounts are refused anyway.
        timeline: Where kernel messages and lab actions go (a new one by default).
        reporter: Receives the phases.
        lab_id: The lab's id; it names the ledger the lab writes on each machine before each
            change ([`ocfs2lab.host.changes`][ocfs2lab.host.changes]).
        stack: ``"o2cb"`` or ``"pcmk"`` (corosync, dlm_controld, fs/dlm: the machines need
            the ``corosync`` and ``dlm-controld`` packages). The lab cannot power SSH
            machines off, so a pcmk fence request waits until you fenced the machine
            yourself and called ``acknowledge_fence``.
        pcmk: The pcmk stack's knobs.

    Raises:
        SpecError: Bad input, before any node is touched.
    """

    def __init__(
        self,
        nodes: Sequence[SshNode],
        device: str,
        *,
        name: str = "ocfs2cluster",
        network: NetworkSpec | None = None,
        timing: TimingSpec | None = None,
        volume: VolumeSpec | None = None,
        heartbeat_mode: str = "local",
        owned: bool = False,
        force: bool = False,
        timeline: Timeline | None = None,
        reporter: Reporter | None = None,
        lab_id: str | None = None,
        stack: StackName = "o2cb",
        pcmk: PcmkSpec | None = None,
    ) -> None:
        node_list = list(nodes)
        if not node_list:
            raise SpecError("nodes", [], "a cluster needs at least one node")
        spec = ClusterSpec(
            name=name,
            nodes=tuple(n.spec for n in node_list),
            network=network or _network_of(node_list),
            timing=timing or TimingSpec(),
        )
        device = check_device_path(device)
        super().__init__(
            spec,
            volume=volume,
            heartbeat_mode=heartbeat_mode,
            owned=owned,
            timeline=timeline,
            reporter=reporter,
            lab_id=lab_id,
            stack=stack,
            pcmk=pcmk,
        )
        self.force = force
        # The machines exist: they are the cluster's from the start.
        self.nodes: list[SshNode] = node_list
        self.device = device

    def _provision(self) -> None:
        """Nothing to make: the machines and the device exist."""

    def _check_nodes(self, stack: ClusterStack) -> None:
        if not self.owned:
            raise OwnershipError(
                f"refusing to wipe and format {self.device}: the lab did not create it",
                hint="pass owned=True only for a device you mean to lose",
            )
        self.check_nodes()
        if isinstance(stack, PcmkCluster):
            self.check_foreign_state(
                "", files={COROSYNC_CONF: stack.corosync_conf, DLM_CONF: stack.dlm_conf}
            )
        else:
            assert isinstance(stack, O2cbCluster)
            self.check_foreign_state(stack.conf.render())

    def check_foreign_state(
        self, conf_text: str, *, files: Mapping[str, str] | None = None
    ) -> None:
        """Refuse, before anything is changed on any node, OCFS2 state the lab does not own.

        Always refused: a cluster another lab registered, an OCFS2 mount. Refused unless
        ``force``: a registered cluster no lab owns (with ``force`` it is unregistered now
        and registered again on exit), a ``cluster.conf`` that differs from the lab's (with
        ``force`` it is kept and restored byte for byte on exit).

        With the pcmk stack: an OCFS2 mount, or corosync or dlm_controld running, are
        always refused; a ``corosync.conf`` or ``dlm.conf`` that differs from the lab's is
        refused unless ``force``. Registered o2cb clusters do not matter to it.

        Args:
            conf_text: The ``cluster.conf`` the lab would write (o2cb).
            files: The pcmk stack's files the lab would write, by path (pcmk).

        Raises:
            OwnershipError: Naming every problem on every node, and what ``force`` does.
        """
        outcome = run_parallel(self.nodes, look_at)
        outcome.raise_failures("look at the nodes", lambda n: n.spec.name)
        looks = [found for _, found in outcome.done]
        hard: list[str] = []
        soft: list[str] = []
        for found in looks:
            h, s = found.problems(conf_text, files=files)
            hard += h
            soft += s
        if hard or (soft and not self.force):
            raise OwnershipError(
                "the nodes have OCFS2 state the lab did not create: " + "; ".join(hard + soft),
                hint="pass force=True to go ahead where it says what force does"
                if soft and not hard
                else "clear what is named first; the lab touched nothing",
            )
        if files is not None:
            return
        for found in looks:
            for cluster in found.foreign_clusters:
                self._set_aside(found.node, cluster)

    def _set_aside(self, node: SshNode, cluster: str) -> None:
        """Unregister a foreign cluster (``force``), recorded first; registered again on exit
        after the lab's own changes are undone (its cluster.conf is back by then)."""
        ch = self.changes(node)
        ch.record("foreign_cluster", cluster)
        node.run(["o2cb", "unregister-cluster", cluster], timeout=120)
        self.undo(
            partial(ch.undo, "foreign_cluster", cluster),
            f"register {cluster} again on {node.spec.name}",
        )

    def check_nodes(self) -> None:
        """Check every node before anything is changed on any of them (see
        [`check_machines`][ocfs2lab.clusters.machines.check_machines]).

        Raises:
            HostError: A node fails a check.
        """
        check_machines(self.nodes, self.device, self.spec.network)


def _network_of(nodes: Sequence[SshNode]) -> NetworkSpec:
    """The smallest /24 holding node 1's address (a default for SSH machines)."""
    first = nodes[0].spec.address
    subnet = f"{first.exploded.rsplit('.', 1)[0]}.0/24"
    return NetworkSpec(name="ocfs2-interconnect", subnet=subnet, reserve_gateway=False)
