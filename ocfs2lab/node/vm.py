"""VM nodes: one QEMU machine per OCFS2 node, so one kernel per node.

A [`VmNode`][ocfs2lab.node.vm.VmNode] is an [`SshNode`][ocfs2lab.node.ssh.SshNode] that the lab
boots itself, plus power control. It boots the lab image on an overlay of its own, with the
cluster's shared disk attached to every node (``share-rw=on``, ``cache=none``) and a NIC on the
cluster's own VDE switch (never the host's network). Its kernel messages come from the serial
console, stamped with the host clock on arrival, so the timeline keeps working while the node's
interconnect is cut or its disk is stalled.

Faults are primitives here ([`VmNode.kill`][ocfs2lab.node.vm.VmNode.kill],
[`freeze`][ocfs2lab.node.vm.VmNode.freeze], [`cut_link`][ocfs2lab.node.vm.VmNode.cut_link],
[`stall_disk`][ocfs2lab.node.vm.VmNode.stall_disk] and their opposites); the restoring,
timeline-recording context managers are in
[`ocfs2lab.experiment.faults`][ocfs2lab.experiment.faults]. A killed or fenced node is booted again
with [`VmNode.revive`][ocfs2lab.node.vm.VmNode.revive].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ocfs2lab.errors import HostError, LifecycleError, TransportError
from ocfs2lab.formats.iproute import link_by_mac, parse_links
from ocfs2lab.host.base import Machine
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import NodeKind
from ocfs2lab.node.ssh import SshNode
from ocfs2lab.observe.recorder import SLIRP_HOST, Listener
from ocfs2lab.observe.sources import ConsoleTap, TimelineSource
from ocfs2lab.observe.timeline import LabEventKind, Timeline
from ocfs2lab.report import LogReporter, Reporter
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult
from ocfs2lab.spec.cluster import NetworkSpec, NodeSpec
from ocfs2lab.spec.link import LinkSpec
from ocfs2lab.vm.boot import BootOptions, start_machine
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.recipe import LabImage
from ocfs2lab.vm.spec import DriveSpec, NicSpec, QemuSpec, SshKey
from ocfs2lab.vm.states import shift_clock_lines, snapshots_wanted
from ocfs2lab.vm.switch import LinkFilter

log = logging.getLogger(__name__)

#: The QEMU id of a VM node's interconnect NIC (QMP ``set_link`` takes it).
INTERCONNECT_NIC = "c0"
#: Throttle that stalls a disk: one byte and one request per second (0 would mean "no limit").
STALL_LIMIT = 1


# The lab's own iptables chain: made (or emptied), hooked first into INPUT once, then one
# DROP rule per address given as an argument.
_SPLIT_CHAIN = "ocfs2lab-split"
_SPLIT_SCRIPT = (
    f"iptables -N {_SPLIT_CHAIN} 2>/dev/null || iptables -F {_SPLIT_CHAIN}; "
    f"iptables -C INPUT -j {_SPLIT_CHAIN} 2>/dev/null || iptables -I INPUT 1 -j {_SPLIT_CHAIN}; "
    f'for a in "$@"; do iptables -A {_SPLIT_CHAIN} -s "$a" -j DROP || exit 1; done'
)
_UNSPLIT_SCRIPT = (
    f"while iptables -D INPUT -j {_SPLIT_CHAIN} 2>/dev/null; do :; done; "
    f"iptables -F {_SPLIT_CHAIN} 2>/dev/null; iptables -X {_SPLIT_CHAIN} 2>/dev/null; true"
)


def interconnect_mac(number: int) -> str:
    """The interconnect NIC's MAC address of node ``number`` (unique on the switch)."""
    return f"52:54:00:77:{number >> 8:02x}:{number & 0xFF:02x}"


class _NodeFeed:
    """The console feed of a VM node; closing it also forgets the node's timeline (a later
    boot then feeds none)."""

    def __init__(self, node: VmNode) -> None:
        self.node = node

    def close(self) -> None:
        self.node.timeline = None
        self.node._detach_feed()


class _NotBooted:
    """The runner of a VM node before its first boot: every call says so."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def where(self) -> str:
        return f"vm:{self.name} (not booted)"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        raise TransportError(f"{self.name} is not booted", hint="enter the node (with ...:)")

    def close(self) -> None:
        pass


class VmNode(SshNode, Lifecycle):
    """A cluster node that is its own QEMU machine (a context manager).

    ``with VmNode(...) as node:`` boots the machine and configures the interconnect address;
    leaving the block powers it off and removes its overlay. Usually made by
    [`VmCluster`][ocfs2lab.clusters.vms.VmCluster], which boots all nodes concurrently.

    Args:
        spec: Name (also the guest's hostname), o2cb number, interconnect address.
        image: The lab image to boot.
        network: The interconnect's subnet (for the address's prefix length).
        shared: The shared disk (attached to every node of the cluster).
        switch: The VDE switch's control directory.
        memory_mib: Guest memory.
        cpus: Guest CPUs.
        ssh_key: One key for the lab's machines (a throwaway one per boot otherwise).
        timeline: Receives the kernel messages of every boot, from the first line.
        log_dir: Keep console and QEMU logs here.
        boot_timeout: Seconds a boot may take (default: the machine's, by accelerator).
        reporter: Receives the boot phases.
        snapshots: Start from a saved state of this node when one is valid (saving it at
            the first start); ``False`` boots cold always. Default: on, unless
            ``$OCFS2LAB_SNAPSHOTS`` is ``0`` ([`ocfs2lab.vm.states`][ocfs2lab.vm.states]).
        link: The node's own link to the switch (``switch`` is then its port switch): the
            lab degrades it from outside the guest (loss, delay, jitter, duplication).

    Attributes:
        machine: The current QEMU machine (a new one after each revive).
        boots: How many times the node was booted.
    """

    def __init__(
        self,
        spec: NodeSpec,
        image: LabImage,
        *,
        network: NetworkSpec,
        shared: DriveSpec,
        switch: str | os.PathLike[str],
        memory_mib: int = 1024,
        cpus: int = 1,
        ssh_key: SshKey | None = None,
        timeline: Timeline | None = None,
        log_dir: str | os.PathLike[str] | None = None,
        boot_timeout: float | None = None,
        reporter: Reporter | None = None,
        snapshots: bool | None = None,
        link: LinkFilter | None = None,
    ) -> None:
        Machine.__init__(self, _NotBooted(spec.name), spec.name)
        self.link = link
        self.snapshots = snapshots_wanted(snapshots)
        self._spec = spec
        self._ssh = None
        self.image = image
        self.network = network
        self.shared = shared
        self.switch = Path(switch)
        self.qemu_spec = QemuSpec(
            image=image,
            hostname=spec.name,
            memory_mib=memory_mib,
            cpus=cpus,
            drives=(shared,),
            nics=(NicSpec(INTERCONNECT_NIC, self.switch, interconnect_mac(spec.number)),),
            ssh_key=ssh_key,
        )
        self.timeline = timeline
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.boot_timeout = boot_timeout
        self.reporter: Reporter = reporter or LogReporter()
        self.machine: QemuMachine | None = None
        self.boots = 0
        self._tap = ConsoleTap()
        self._feed: TimelineSource | None = None
        self.interface: str | None = None

    @property
    def kind(self) -> NodeKind:
        """``"vm"``."""
        return "vm"

    def describe(self) -> str:
        """Name for messages."""
        return self._spec.name

    @property
    def mac(self) -> str:
        """The interconnect NIC's MAC address."""
        return interconnect_mac(self._spec.number)

    @property
    def device(self) -> str:
        """The shared disk's path in the guest."""
        return f"/dev/disk/by-id/virtio-{self.shared.serial}"

    # -- lifecycle -------------------------------------------------------------------------
    def _acquire(self) -> None:
        self.undo(self._power_off, f"power off {self._spec.name}")
        self.undo(self._detach_feed, "close console feed")
        self.boot()

    def boot(self) -> None:
        """Boot the machine (a fresh overlay) and configure its interconnect address.

        Raises:
            LifecycleError: The machine is running, or the boot failed (nothing is left).
            HostError: The interconnect NIC is missing in the guest.
        """
        if self.machine is not None and self.machine.running:
            raise LifecycleError(f"{self._spec.name} is running", hint="kill it first")
        self.boots += 1
        if self.timeline is not None:
            self._attach_feed(self.timeline)  # a fresh feed: nothing held from the last boot
        options = BootOptions(
            # Logs of earlier boots stay: each boot appends to <name>.console.log.
            log_dir=self.log_dir,
            keep_failed=self.log_dir is not None,
            boot_timeout=self.boot_timeout,
            reporter=self.reporter,
            console_listeners=(self._tap,),
            snapshots=self.snapshots,
        )
        started = start_machine(self.qemu_spec, options)
        self.machine = started.machine
        self._use_runner(started.runner)
        self.interface = self.configure_interconnect()
        if self.timeline is not None:
            self.timeline.record(
                LabEventKind.NOTE,
                f"{self._spec.name}: {started.how}",
                node=self._spec.name,
                data=started.facts(),
            )

    @property
    def restored(self) -> bool:
        """True when the current machine was restored from a saved state."""
        return self.machine is not None and self.machine.restored

    def configure_interconnect(self) -> str:
        """Put ``spec.address`` on the interconnect NIC (found by its MAC) and bring it up.

        Returns:
            The interface's name in the guest.

        Raises:
            HostError: No interface has the NIC's MAC address.
        """
        mac = interconnect_mac(self._spec.number)
        link = link_by_mac(parse_links(self.run(["ip", "-j", "link"], timeout=30).stdout), mac)
        if link is None:
            raise HostError(f"{self._spec.name}: no interface with MAC {mac} in the guest")
        cidr = f"{self._spec.address}/{self.network.subnet.prefixlen}"
        self.run(["ip", "addr", "replace", cidr, "dev", link.name], timeout=30)
        self.run(["ip", "link", "set", link.name, "up"], timeout=30)
        return link.name

    def _power_off(self) -> None:
        machine, self.machine = self.machine, None
        if machine is not None:
            machine.close()

    def close(self) -> None:
        """Power the machine off and remove its files; idempotent."""
        Lifecycle.close(self)

    # -- state -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the QEMU process lives (frozen or not)."""
        return self.machine is not None and self.machine.running

    @property
    def up(self) -> bool:
        """True when the machine runs and is not frozen (no ssh round trip)."""
        if not self.running:
            return False
        assert self.machine is not None
        try:
            return self.machine.query_status() == "running"
        except Exception:  # QMP gone with the process
            return False

    # -- power and faults ------------------------------------------------------------------
    def kill(self) -> None:
        """Hard power-off: SIGKILL of the QEMU process. The kernel dies mid-instruction."""
        if self.machine is not None:
            self.machine.kill()

    def revive(self) -> None:
        """Boot a killed or fenced node again (fresh overlay, same name, number and address).

        Raises:
            LifecycleError: The node is still running, or the boot failed.
        """
        if self.running:
            raise LifecycleError(f"{self._spec.name} still runs", hint="kill it first")
        self._power_off()  # removes what the dead machine left (overlay, sockets)
        self.boot()

    def _require_machine(self) -> QemuMachine:
        if self.machine is None or not self.machine.running:
            raise LifecycleError(f"{self._spec.name} is not running", hint="revive it first")
        return self.machine

    def freeze(self) -> None:
        """Stop the guest's CPUs (QMP ``stop``): the kernel stops, its memory stays."""
        self._require_machine().stop()

    def thaw(self) -> None:
        """Resume a frozen guest (QMP ``cont``)."""
        self._require_machine().cont()

    def cut_link(self) -> None:
        """Take the interconnect link down (QMP ``set_link``); ssh (another NIC) still works."""
        self._require_machine().set_link(INTERCONNECT_NIC, False)

    def heal_link(self) -> None:
        """Bring the interconnect link back up."""
        self._require_machine().set_link(INTERCONNECT_NIC, True)

    def step_clock(self, seconds: float) -> None:
        """Move the guest's wall clock by ``seconds`` at once (one ``date`` process reads
        the clock and sets it relative to its own reading)."""
        (line,) = shift_clock_lines(round(seconds * 1e9))
        self.run(["sh", "-c", line], timeout=60)

    def drop_from(self, addresses: Sequence[str]) -> None:
        """Drop every packet from ``addresses`` in the guest's kernel (an iptables chain of
        the lab's own, ``ocfs2lab-split``, hooked first into INPUT)."""
        self.run(["sh", "-c", _SPLIT_SCRIPT, "sh", *addresses], timeout=60)

    def accept_all(self) -> None:
        """Remove the lab's drop chain; other rules are untouched."""
        self.run(["sh", "-c", _UNSPLIT_SCRIPT], timeout=60)

    def degrade_link(self, link: LinkSpec) -> None:
        """Impair the interconnect between the node and the switch, both ways (outside the
        guest, in the node's ``wirefilter``).

        Raises:
            HostError: The node was made without a link of its own.
        """
        self._require_link().set(link)

    def restore_link(self) -> None:
        """No impairment on the node's link any more."""
        self._require_link().clear()

    def _require_link(self) -> LinkFilter:
        if self.link is None:
            raise HostError(
                f"{self._spec.name} has no link filter",
                hint="VmCluster gives every node one; a VmNode made by hand needs link=",
            )
        return self.link

    def stall_disk(self) -> None:
        """Throttle the shared disk to one byte and one request per second: I/O hangs.

        QEMU holds the requests; the guest sees a disk that does not answer, as with a
        dead path, and cannot go around it.
        """
        self._require_machine().block_set_io_throttle(
            self.shared.id, bps=STALL_LIMIT, iops=STALL_LIMIT
        )

    def unstall_disk(self) -> None:
        """Lift the disk throttle; held requests complete."""
        self._require_machine().block_set_io_throttle(self.shared.id)

    # -- observation -----------------------------------------------------------------------
    def feed_timeline(self, timeline: Timeline, *, interval: float = 1.0) -> TimelineSource:
        """Feed the console's kernel messages to ``timeline`` (this boot and the next ones).

        Returns:
            What to close to stop.
        """
        self.timeline = timeline
        self._attach_feed(timeline)
        return _NodeFeed(self)

    def _attach_feed(self, timeline: Timeline) -> None:
        self._detach_feed()
        self._feed = self._tap.feed(timeline, self._spec.name)

    def _detach_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.close()

    def recorder_address(self, recorder: Listener) -> str:
        """The guest reaches the host's loopback through its user-mode NIC at 10.0.2.2."""
        return f"{SLIRP_HOST}:{recorder.port}"
