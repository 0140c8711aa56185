"""O2cbCluster: the o2cb cluster stack on every node, bootstrap on node 1, join on the rest.

Bootstrap (node 1): write ``/etc/ocfs2/cluster.conf``, make sure the stack's modules are
loaded, mount configfs and dlmfs, clear old heartbeat regions (errors there do not abort),
register the cluster, set the timing knobs and read them back. Join (nodes 2..N): take node
1's ``cluster.conf`` and register; they never add a region again. Then wait until
``o2cb cluster-status`` says online on every node.

Every change goes through the node's [`MachineChanges`][ocfs2lab.host.changes.MachineChanges]:
on a machine with a ledger (an SSH or a VM node) each is recorded before it is made, and on
exit the machine gets back what it had (cluster.conf byte for byte, configfs and dlmfs
unmounted, the modules the lab loaded unloaded) once the cluster is unregistered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from ocfs2lab.errors import HostError, Ocfs2LabError, ParseError
from ocfs2lab.formats.cluster_conf import ClusterConf, HeartbeatMode, parse_cluster_conf
from ocfs2lab.formats.o2cb import parse_cluster_status, parse_list_heartbeats
from ocfs2lab.fs.stack import ClusterStack, unrecorded
from ocfs2lab.host.changes import OCFS2_MODULES, MachineChanges
from ocfs2lab.node.base import Node
from ocfs2lab.parallel import run_parallel
from ocfs2lab.spec.cluster import ClusterSpec, TimingSpec

log = logging.getLogger(__name__)

CLUSTER_CONF = "/etc/ocfs2/cluster.conf"
CONFIGFS = "/sys/kernel/config"
DLMFS = "/dlm"
# Write value "$1" to file "$2", then "$3" to "$4", and so on; a constant script.
_WRITE_PAIRS = 'while [ "$#" -ge 2 ]; do echo "$1" > "$2"; shift 2; done'
#: What ``modprobe -a`` loads for the o2cb stack (dependencies come along).
STACK_MODULES = ("ocfs2_stack_o2cb", "ocfs2_dlmfs")


def timing_files(cluster: str) -> dict[str, str]:
    """The configfs file of each timing knob of cluster ``cluster``."""
    base = f"{CONFIGFS}/cluster/{cluster}"
    return {
        "idle_timeout_ms": f"{base}/idle_timeout_ms",
        "keepalive_delay_ms": f"{base}/keepalive_delay_ms",
        "reconnect_delay_ms": f"{base}/reconnect_delay_ms",
        "dead_threshold": f"{base}/heartbeat/dead_threshold",
    }


def timing_values(timing: TimingSpec) -> dict[str, int]:
    """The knob values, in the order they must be written (keepalive before idle would be
    refused while idle is still smaller, so idle is raised first when it grows)."""
    return {
        "dead_threshold": timing.dead_threshold,
        "idle_timeout_ms": timing.idle_timeout_ms,
        "keepalive_delay_ms": timing.keepalive_delay_ms,
        "reconnect_delay_ms": timing.reconnect_delay_ms,
    }


class O2cbCluster(ClusterStack):
    """The o2cb cluster on a set of nodes; undone (unregistered) on exit.

    Args:
        nodes: See [`ClusterStack`][ocfs2lab.fs.stack.ClusterStack] (as ``spec``,
            ``online_timeout``, ``changes`` and ``restore``).
        spec: Cluster name, node list, timing.
        heartbeat_mode: ``"local"`` (heartbeat starts when a node mounts the volume) or
            ``"global"``.
        online_timeout: Seconds to wait for every node to report the cluster online.
        changes: Each node's changes.
        restore: Give each node back what the stack changed there on exit.

    Attributes:
        conf: The ``cluster.conf`` written on node 1 and copied to the others.
    """

    stack = "o2cb"

    def __init__(
        self,
        nodes: Sequence[Node],
        spec: ClusterSpec,
        *,
        heartbeat_mode: str = "local",
        online_timeout: float = 180.0,
        changes: Callable[[Node], MachineChanges] = unrecorded,
        restore: bool = True,
    ) -> None:
        super().__init__(
            nodes, spec, online_timeout=online_timeout, changes=changes, restore=restore
        )
        self.heartbeat_mode = HeartbeatMode(heartbeat_mode)
        self.conf = ClusterConf.build(
            spec.name,
            [(n.name, n.number, n.address) for n in spec.nodes],
            heartbeat_mode=self.heartbeat_mode,
            port=spec.nodes[0].port,
        )

    def describe(self) -> str:
        """Name for messages."""
        return f"o2cb cluster {self.spec.name}"

    # -- building -----------------------------------------------------------------------
    def _acquire(self) -> None:
        first, rest = self.nodes[0], self.nodes[1:]
        # Runs last on exit: after every node unregistered, each gets its files, mounts and
        # modules back (all nodes at once).
        self.undo(self._restore_nodes, "restore what the stack changed on the nodes")
        with self.step("bootstrap node 1"):
            self._prepare_node(first, self.conf.render())
            self._clear_old_regions(first)
        with self.step("register node 1"):
            self._register(first)
        self.undo(partial(self._unregister, first), f"unregister on {first.spec.name}")
        with self.step("timing knobs on node 1"):
            self.set_timing(first)
        kernels = {first.boot_id()}
        with self.step("copy cluster.conf from node 1"):
            text = first.get_file(CLUSTER_CONF).decode()
            copied = parse_cluster_conf(text, cluster=self.name)
            if copied != self.conf:
                raise HostError(f"{CLUSTER_CONF} on node 1 is not what was written")
        with self.step("join nodes 2..N"):
            outcome = run_parallel(rest, lambda n: self._join(n, text))
            for node, boot_id in outcome.done:
                # The cluster lives in the kernel's configfs: nodes that share a kernel
                # (containers) share one registration, undone once.
                if boot_id not in kernels:
                    kernels.add(boot_id)
                    self.undo(partial(self._unregister, node), f"unregister on {node.spec.name}")
            outcome.raise_failures("join", lambda n: n.spec.name)
        with self.step("timing knobs on nodes 2..N"):
            run_parallel(rest, self.set_timing).raise_failures("timing", lambda n: n.spec.name)
        if self.heartbeat_mode is HeartbeatMode.LOCAL:
            # In global mode o2cb reports the cluster online only once the global regions
            # heartbeat: HeartbeatRegion waits for it after starting them.
            with self.step("wait for cluster online"):
                self.wait_online()

    def _prepare_node(self, node: Node, conf_text: str) -> None:
        ch = self.changes(node)
        self._made_on(node, "dir", "/etc/ocfs2", ch.make_dir("/etc/ocfs2"))
        self._made_on(node, "file", CLUSTER_CONF, ch.write_file(CLUSTER_CONF, conf_text))
        self._ensure_stack(node, ch)

    def _ensure_stack(self, node: Node, ch: MachineChanges) -> None:
        if not node.run(["test", "-d", "/sys/module/ocfs2_stack_o2cb"], check=False).ok:
            try:
                loaded = ch.load_modules("ocfs2", STACK_MODULES, OCFS2_MODULES)
            except Ocfs2LabError as err:
                raise HostError(
                    f"{node.spec.name}: cannot load the o2cb stack modules: {err}",
                    hint="container nodes use the host's kernel: load ocfs2_stack_o2cb and "
                    "ocfs2_dlmfs on the host first",
                ) from err
            self._made_on(node, "modules", "ocfs2", loaded)
        if not node.run(["test", "-d", f"{CONFIGFS}/cluster"], check=False, timeout=30).ok:
            self._made_on(node, "mount", CONFIGFS, ch.mount("configfs", "configfs", CONFIGFS))
        self._made_on(node, "dir", DLMFS, ch.make_dir(DLMFS))
        self._made_on(node, "mount", DLMFS, ch.mount("ocfs2_dlmfs", "ocfs2_dlmfs", DLMFS))

    def _clear_old_regions(self, node: Node) -> None:
        """Stop and remove heartbeat regions a previous run left; failures are logged only."""
        res = node.run(["o2cb", "list-heartbeats", self.name], check=False, timeout=60)
        if not res.ok or not res.stdout.strip():
            return
        try:
            regions = parse_list_heartbeats(res.stdout)
        except Exception as err:  # a leftover we cannot read does not stop the bootstrap
            log.warning("%s: cannot read old heartbeat regions: %s", node.spec.name, err)
            return
        node.run(["o2cb", "stop-heartbeat", self.name], check=False, timeout=60)
        for hb in regions:
            r = node.run(["o2cb", "remove-heartbeat", self.name, hb.region], check=False)
            if not r.ok:
                log.warning("%s: removing old region %s: %s", node.spec.name, hb.region, r.stderr)

    def _register(self, node: Node) -> None:
        self.changes(node).register_cluster(self.name, "")
        node.run(["o2cb", "register-cluster", self.name], timeout=120)

    def _join(self, node: Node, conf_text: str) -> str:
        boot_id = node.boot_id()
        self._prepare_node(node, conf_text)
        self._register(node)
        return boot_id

    def _unregister(self, node: Node) -> None:
        if not node.up:
            # A killed or fenced node: the registration died with its kernel.
            log.info("%s is down: nothing to unregister there", node.spec.name)
            return
        node.run(["o2cb", "unregister-cluster", self.name], timeout=120)
        self.changes(node).forget("cluster", self.name)

    def rejoin(self, node: Node) -> None:
        """Join a node again after it was booted anew (a revive after a kill or a fence).

        Writes ``cluster.conf``, loads the stack, registers the cluster and sets the timing
        knobs before anything heartbeats (the node mounts afterwards). Its unregistration is
        already on the teardown list.

        Raises:
            SpecError: Not one of the cluster's nodes.
            HostError: The stack or the knobs could not be set up.
            CommandFailed: ``register-cluster`` failed.
        """
        self._check_member(node)
        self._join(node, self.conf.render())
        self.set_timing(node)

    # -- timing knobs ---------------------------------------------------------------------
    def set_timing(self, node: Node) -> None:
        """Write the timing knobs on ``node`` and read them back.

        The kernel silently ignores some writes (a dead threshold under 3, or any write
        while a region is active), so every value is read back.

        Raises:
            HostError: A knob did not take its value.
        """
        files = timing_files(self.name)
        wanted = timing_values(self.spec.timing)
        pairs = [arg for key, value in wanted.items() for arg in (str(value), files[key])]
        # One command for all knobs (each command costs a process start in the node); a
        # write the kernel refuses is found by the read-back below.
        node.run(["sh", "-c", _WRITE_PAIRS, "sh", *pairs], check=False)
        got = self.read_timing(node)
        wrong = {k: (wanted[k], got.get(k)) for k in wanted if got.get(k) != wanted[k]}
        if wrong:
            shown = ", ".join(f"{k}: wanted {w}, kernel has {g}" for k, (w, g) in wrong.items())
            raise HostError(
                f"{node.spec.name}: timing knobs not taken: {shown}",
                hint="the kernel refuses o2net changes once a peer is connected and heartbeat "
                "changes while a region is active: set them before heartbeat starts",
            )

    def read_timing(self, node: Node) -> dict[str, int]:
        """The knob values the kernel has on ``node``."""
        files = timing_files(self.name)
        res = node.run(["cat", *files.values()], check=False, timeout=30)
        values = res.stdout.split()
        return {k: int(v) for k, v in zip(files, values, strict=False) if v.isdigit()}

    # -- status -----------------------------------------------------------------------------
    def online(self, node: Node) -> bool:
        """True when ``o2cb cluster-status`` on ``node`` says the cluster is online."""
        res = node.run(["o2cb", "cluster-status", self.name], check=False, timeout=60)
        try:
            return parse_cluster_status(res.stdout).online
        except ParseError as err:
            log.warning("%s: unreadable cluster-status: %s", node.spec.name, err)
            return False
