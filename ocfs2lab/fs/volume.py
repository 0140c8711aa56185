"""OcfsVolume: wipe, mkfs.ocfs2 once on node 1, mount on every node, umount on exit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial

from attrs import frozen

from ocfs2lab.errors import OwnershipError, SpecError
from ocfs2lab.fs.heartbeat import HeartbeatRegion
from ocfs2lab.fs.stack import unrecorded
from ocfs2lab.host.changes import MachineChanges
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import Node
from ocfs2lab.parallel import run_parallel
from ocfs2lab.runner.base import CommandResult
from ocfs2lab.spec.storage import VolumeSpec
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)

MiB = 1 << 20
#: OCFS2 keeps backup superblocks at these byte offsets (1G, 4G, 16G, 64G, 256G, 1T).
BACKUP_SUPERBLOCK_OFFSETS = tuple(1 << s for s in (30, 32, 34, 36, 38, 40))
#: How much of the device start is zeroed (old signatures, OCFS1 headers, the superblock).
WIPE_HEAD = 64 * MiB


def wipe_ranges(size: int, head: int = WIPE_HEAD) -> list[tuple[int, int]]:
    """Byte ranges ``(offset, length)`` to zero on a device of ``size`` bytes: the head and
    a megabyte at every backup superblock offset that lies inside the device."""
    ranges = [(0, min(head, size))]
    for off in BACKUP_SUPERBLOCK_OFFSETS:
        if off + MiB <= size and off >= head:
            ranges.append((off, MiB))
    return ranges


def mkfs_argv(
    spec: VolumeSpec,
    device: str,
    cluster: str,
    slots: int,
    *,
    global_heartbeat: bool = False,
    stack: str = "o2cb",
) -> list[str]:
    """The ``mkfs.ocfs2`` command for ``spec`` on ``stack`` (``o2cb`` or ``pcmk``: the stack
    and cluster name a node must run to mount it)."""
    argv = [
        "mkfs.ocfs2",
        f"--cluster-stack={stack}",
        f"--cluster-name={cluster}",
        "-N",
        str(slots),
        "-L",
        spec.label,
    ]
    if spec.block_size:
        argv += ["-b", str(spec.block_size)]
    if spec.cluster_size:
        argv += ["-C", str(spec.cluster_size)]
    if spec.journal_size:
        argv += ["-J", f"size={spec.journal_size // MiB}M"]
    if global_heartbeat:
        argv.append("--global-heartbeat")
    return [*argv, device]


def mount_waves(nodes: Sequence[Node]) -> list[list[Node]]:
    """Group mounts into waves that may run at once.

    Nodes on different kernels mount concurrently. Nodes that share a kernel (containers)
    share one heartbeat region whose start ``mount.ocfs2`` counts per IPC namespace, so
    concurrent first mounts in one kernel race: the first node of each kernel mounts in
    the first wave, each further node of that kernel in a later wave.
    """
    by_kernel: dict[str, list[Node]] = {}
    for node in nodes:
        by_kernel.setdefault(node.boot_id(), []).append(node)
    depth = max(len(group) for group in by_kernel.values())
    return [[g[i] for g in by_kernel.values() if i < len(g)] for i in range(depth)]


@frozen
class FsckReport:
    """What ``fsck.ocfs2 -fn`` said: clean when it exited 0."""

    clean: bool
    exit_code: int
    output: str


class OcfsVolume(Lifecycle):
    """An OCFS2 file system on a shared device, mounted on every node.

    Args:
        nodes: The cluster's nodes; node 1 formats.
        device: The shared block device, as every node sees it.
        spec: Label, slots, sizes, mount point.
        cluster_name: The cluster the volume belongs to.
        owned: The lab created ``device`` (wiping and formatting anything else is refused).
        mount_attempts: Mount retries per node.
        mount_timeout: Seconds one mount may take.
        heartbeat: The cluster's heartbeat region, entered right after mkfs (global mode
            needs the formatted device to add and start its region).
        changes: Each node's [`MachineChanges`][ocfs2lab.host.changes.MachineChanges]: the
            mount (and a mount point the lab made) is recorded before it is made, struck
            when it is undone.
        stack: The cluster stack the volume is made for (``o2cb`` or ``pcmk``).
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        device: str,
        spec: VolumeSpec,
        cluster_name: str,
        *,
        owned: bool,
        mount_attempts: int = 5,
        mount_timeout: float = 180.0,
        heartbeat: HeartbeatRegion | None = None,
        changes: Callable[[Node], MachineChanges] = unrecorded,
        stack: str = "o2cb",
    ) -> None:
        self.nodes = tuple(nodes)
        self.stack = stack
        self.device = device
        self.spec = spec
        self.cluster_name = cluster_name
        self.owned = owned
        self.mount_attempts = mount_attempts
        self.mount_timeout = mount_timeout
        self.slots = spec.slots or len(self.nodes)
        self.mkfs_result: CommandResult | None = None
        self.heartbeat = heartbeat
        self.changes = changes

    def describe(self) -> str:
        """Name for messages."""
        return f"OCFS2 volume {self.spec.label} on {self.device}"

    def _acquire(self) -> None:
        first = self.nodes[0]
        with self.step("wipe old signatures"):
            self.wipe(first)
        with self.step("mkfs.ocfs2"):
            glob = self.heartbeat is not None and self.heartbeat.spec.mode == "global"
            argv = mkfs_argv(
                self.spec,
                self.device,
                self.cluster_name,
                self.slots,
                global_heartbeat=glob,
                stack=self.stack,
            )
            self.mkfs_result = first.run(argv, input="y\n", timeout=600)
        if self.heartbeat is not None:
            # Local mode checks the mode only; global mode adds and starts the region on the
            # formatted device (o2cb reads its UUID from the superblock).
            with self.step("heartbeat region"):
                self.enter(self.heartbeat)
        with self.step("mount on every node"):
            for wave in mount_waves(self.nodes):
                outcome = run_parallel(wave, self._mount)
                for node, _ in outcome.done:
                    self.undo(
                        partial(self._umount, node),
                        f"umount on {node.spec.name}",
                        fallback=partial(self._umount, node, lazy=True),
                    )
                outcome.raise_failures("mount", lambda n: n.spec.name)

    def wipe(self, node: Node) -> None:
        """Clear old signatures at the start of the device and OCFS2's backup superblocks.

        Only the device as the node sees it is written: for a DRBD device, DRBD's internal
        metadata lies beyond its end and is never touched.

        Raises:
            OwnershipError: The lab did not create the device (``owned`` is false).
            CommandFailed: A wipe command failed.
        """
        if not self.owned:
            raise OwnershipError(
                f"refusing to wipe and format {self.device}: the lab did not create it",
                hint="pass owned=True only for a device you mean to lose",
            )
        size = int(node.run(["blockdev", "--getsize64", self.device], timeout=60).stdout)
        node.run(["wipefs", "-a", self.device], timeout=120)
        for offset, length in wipe_ranges(size):
            node.run(
                [
                    "dd",
                    "if=/dev/zero",
                    f"of={self.device}",
                    "bs=1M",
                    f"seek={offset // MiB}",
                    f"count={length // MiB}",
                    "conv=notrunc,fsync",
                    "status=none",
                ],
                timeout=300,
            )

    def _mount(self, node: Node) -> None:
        mp = self.spec.mount_point
        ch = self.changes(node)
        ch.make_dir(mp)
        ch.will_mount("ocfs2", self.device, mp)
        argv = ["mount", "-t", "ocfs2"]
        if self.spec.mount_options:
            argv += ["-o", ",".join(self.spec.mount_options)]
        argv += [self.device, mp]
        attempts: list[CommandResult] = []

        def try_mount() -> bool | None:
            if len(attempts) >= self.mount_attempts:
                return True  # give up: the last result is checked below
            res = node.run(argv, check=False, timeout=self.mount_timeout)
            attempts.append(res)
            if not res.ok:
                log.warning("%s: mount attempt %d: %s", node.spec.name, len(attempts), res.stderr)
            return res.ok or None

        # A mount can fail while heartbeat is still starting on the other nodes: retry on a
        # growing interval, bounded by attempts and a deadline.
        wait_until(
            try_mount,
            what=f"mount of {self.device} on {node.spec.name}",
            timeout=self.mount_timeout * self.mount_attempts,
            interval=1.0,
            max_interval=10.0,
        )
        attempts[-1].check(hint="see the node's kernel log (dmesg) for the ocfs2/o2hb messages")

    def uuid(self) -> str:
        """The volume's UUID as the heartbeat region names it (upper-case hex, no dashes)."""
        res = self.nodes[0].run(["blkid", "-s", "UUID", "-o", "value", self.device], timeout=60)
        return res.stdout.strip().replace("-", "").upper()

    def is_mounted(self, node: Node) -> bool:
        """True when the volume's mount point is a mount on ``node``."""
        res = node.run(["mountpoint", "-q", self.spec.mount_point], check=False, timeout=30)
        return res.ok

    def mount(self, node: Node) -> None:
        """Mount the volume on one node again (a node that was revived after a fault).

        The node must be one of the volume's nodes; its unmount is already registered.

        Raises:
            SpecError: Not one of the volume's nodes.
            CommandFailed: Every mount attempt failed.
        """
        if node not in self.nodes:
            raise SpecError("node", node.spec.name, "is not a node of this volume")
        self._mount(node)

    def _umount(self, node: Node, *, lazy: bool = False) -> None:
        if not node.up:
            # A killed or fenced node: its mount died with its kernel.
            log.info("%s is down: nothing to unmount there", node.spec.name)
            return
        mp = self.spec.mount_point
        ch = self.changes(node)
        if self.is_mounted(node):
            node.run(["umount", "-l", mp] if lazy else ["umount", mp], timeout=300)
        ch.forget("mount", mp)
        ch.undo("dir", mp)

    def unmount_all(self) -> None:
        """Unmount on every node that is up (last node first); teardown then has nothing to
        do."""
        for node in reversed(self.nodes):
            self._umount(node)

    def fsck_unmounted(self) -> FsckReport:
        """Unmount everywhere, then ``fsck.ocfs2 -fn`` on node 1."""
        self.unmount_all()
        return self.fsck()

    def fsck(self, node: Node | None = None, *, repair: bool = False) -> FsckReport:
        """Run ``fsck.ocfs2 -fn`` (read-only, forced) on a node (node 1 by default).

        Args:
            node: Where to run it (the volume must be unmounted on every node).
            repair: Run ``fsck.ocfs2 -fy`` instead: fix what it finds (exit 1: errors
                were corrected).
        """
        target = node or self.nodes[0]
        flags = "-fy" if repair else "-fn"
        res = target.run(["fsck.ocfs2", flags, self.device], check=False, timeout=1200)
        output = res.stdout + (res.stderr if res.stderr.strip() else "")
        return FsckReport(clean=res.exit_code == 0, exit_code=res.exit_code, output=output)
