"""DrbdResource: the seed's single-node DRBD device on a loop-backed file.

On ONE machine DRBD is used as a shared block device, not for replication: a backing file,
a loop device over it, a DRBD resource over that, giving ``/dev/drbd<minor>``. Both the
in-tree DRBD 8.4 and DRBD 9.x are supported, chosen from the running module's version.
"""

from __future__ import annotations

import logging
from functools import partial

from ocfs2lab.errors import HostError, OwnershipError
from ocfs2lab.formats.drbd import (
    DrbdHost,
    DrbdProcInfo,
    DrbdResourceConfig,
    DrbdSyntax,
    parse_proc_drbd,
)
from ocfs2lab.host.base import Shell
from ocfs2lab.host.state import Ledger
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.spec.storage import DrbdSpec

log = logging.getLogger(__name__)

#: First line of every resource file the lab writes; names the lab that owns it.
OWNER_MARK = "# written by ocfs2lab, lab={lab_id}"


def drbd_modules(syntax: DrbdSyntax) -> tuple[str, ...]:
    """Kernel modules a DRBD version needs (9.x also its TCP transport)."""
    return ("drbd",) if syntax is DrbdSyntax.V84 else ("drbd", "drbd_transport_tcp")


def drbd_down(host: Shell, name: str, minor: int) -> None:
    """Take resource ``name`` down if the kernel has it, and remove drbdadm's per-minor
    bookkeeping file.

    Raises:
        CommandFailed: ``drbdadm down`` failed (the device is still in use).
    """
    status = host.run(["drbdsetup", "status", name], check=False, timeout=60)
    if status.ok and status.stdout.strip():
        host.run(["drbdadm", "down", name], timeout=120)
    host.run(["rm", "-f", f"/var/lib/drbd/drbd-minor-{minor}.lkbd"], timeout=30)


def owned_resource_file(text: str, lab_id: str) -> bool:
    """True when a resource file's first line names lab ``lab_id`` as its writer."""
    first = text.splitlines()[0] if text else ""
    return first == OWNER_MARK.format(lab_id=lab_id)


class DrbdResource(Lifecycle):
    """A single-node DRBD resource, built on enter and removed on exit.

    Steps: load ``drbd`` (and ``drbd_transport_tcp`` for 9.x), refuse a minor or resource in
    use that this lab does not own, create the sparse backing file, attach a loop device,
    write the resource file, ``create-md``, ``up``, ``primary --force``, wait for the device.
    Each step's undo is registered as soon as it succeeds.

    Args:
        host: The host whose kernel holds the resource.
        spec: Name, minor, size, backing file.
        ledger: The lab's ledger on that host (ownership).
        force: Take down a same-named resource (and overwrite its file) that no lab owns.

    Attributes:
        device: ``/dev/drbd<minor>`` once built.
        loop_device: The loop device under it.
        proc: ``/proc/drbd`` as parsed when the module was checked.
    """

    def __init__(self, host: Shell, spec: DrbdSpec, ledger: Ledger, *, force: bool = False) -> None:
        self.host = host
        self.spec = spec
        self.ledger = ledger
        self.force = force
        self.device = spec.device
        self.loop_device: str | None = None
        self.proc: DrbdProcInfo | None = None

    def describe(self) -> str:
        """Name for messages."""
        return f"DRBD resource {self.spec.name}"

    @property
    def syntax(self) -> DrbdSyntax:
        """The running module's configuration dialect (after the module check)."""
        if self.proc is None:
            raise HostError("the DRBD module has not been checked yet")
        return self.proc.syntax

    def read_proc(self) -> DrbdProcInfo:
        """Parse ``/proc/drbd`` now."""
        return parse_proc_drbd(self.host.run(["cat", "/proc/drbd"], timeout=30).stdout)

    def _acquire(self) -> None:
        spec, host = self.spec, self.host
        before = host.loaded_modules()
        loaded: list[str] = []
        with self.step("load drbd module"):
            if "drbd" not in before:
                loaded.append("drbd")
                self.ledger.record("modules", "drbd", names=loaded)
            host.load_modules("drbd")
        if loaded:
            # Registered now: the list grows if the transport is loaded below.
            self.undo(partial(self._unload_modules, loaded), "unload DRBD modules")
        with self.step("load drbd transport"):
            self.proc = self.read_proc()
            extra = [m for m in drbd_modules(self.proc.syntax)[1:] if m not in before]
            if extra:
                loaded.extend(extra)
                self.ledger.record("modules", "drbd", names=loaded)
                host.load_modules(*extra)
        with self.step("check minor and resource"):
            self._refuse_foreign()
        with self.step("backing file"):
            if host.exists(spec.backing_file) and not self.ledger.owns("file", spec.backing_file):
                raise OwnershipError(
                    f"{spec.backing_file} exists on {host.name} and this lab did not create it",
                    hint="choose another backing_file, or remove the file yourself if it is "
                    "a leftover",
                )
            self.ledger.record("file", spec.backing_file)
            parent = spec.backing_file.rsplit("/", 1)[0] or "/"
            host.run(["mkdir", "-p", parent], timeout=30)
            host.run(["truncate", "-s", str(spec.size), spec.backing_file], timeout=60)
        self.undo(self._remove_backing_file, f"remove {spec.backing_file}")
        with self.step("loop device"):
            self.ledger.record("loop", spec.backing_file)
            res = host.run(["losetup", "--find", "--show", spec.backing_file], timeout=60)
            self.loop_device = res.stdout.strip()
        self.undo(self._detach_loop, "detach loop device")
        with self.step("resource file"):
            self.ledger.record("drbd", spec.name, minor=spec.minor, file=spec.resource_file)
            host.run(["mkdir", "-p", spec.config_dir], timeout=30)
            host.put_file(spec.resource_file, self.render())
        self.undo(self._remove_resource_file, "remove resource file")
        with self.step("create-md"):
            host.run(
                ["drbdadm", "create-md", "--force", spec.name], input="yes\nyes\n", timeout=120
            )
        # A failed `up` can leave the minor configured: its undo comes first.
        self.undo(self._down, f"drbdadm down {spec.name}")
        with self.step("up"):
            self._up()
        with self.step("primary"):
            host.run(["drbdadm", "primary", "--force", spec.name], timeout=120)
        with self.step("device ready"):
            host.wait_for_block_device(self.device, timeout=120)

    def render(self) -> str:
        """The resource file's text for this host and module version."""
        node = self.host.run(["uname", "-n"], timeout=30).stdout.strip()
        assert self.loop_device is not None
        config = DrbdResourceConfig(
            name=self.spec.name,
            minor=self.spec.minor,
            disk=self.loop_device,
            hosts=[DrbdHost(name=node, address="127.0.0.1", port=self.spec.port)],
        )
        mark = OWNER_MARK.format(lab_id=self.ledger.lab_id)
        return f"{mark}\n{config.render(self.syntax)}"

    def _refuse_foreign(self) -> None:
        """Reuse the name of a stale resource this lab owns (taken down first), clean a
        foreign one only when forced, refuse it otherwise."""
        spec = self.spec
        if self.is_up():
            if not self.ledger.owns("drbd", spec.name) and not self.force:
                raise OwnershipError(
                    f"DRBD resource {spec.name} is up on {self.host.name} and is not this lab's",
                    hint="pick another resource name, `ocfs2lab cleanup` if it is a lab's "
                    "leftover, or force=True to take it down",
                )
            log.warning("%s: taking down stale DRBD resource %s", self.host.name, spec.name)
            self._down()
            self.proc = self.read_proc()
        assert self.proc is not None
        dev = self.proc.device(spec.minor)
        if dev is not None and not dev.unconfigured:
            raise OwnershipError(
                f"DRBD minor {spec.minor} is in use on {self.host.name} ({dev.cs})",
                hint="pick another minor (DrbdSpec.minor)",
            )
        foreign_file = not self.ledger.owns("drbd", spec.name) and not self.force
        if foreign_file and self.host.exists(spec.resource_file):
            raise OwnershipError(
                f"{spec.resource_file} exists on {self.host.name} and is not this lab's",
                hint="pick another resource name",
            )

    def _up(self) -> None:
        res = self.host.run(["drbdadm", "up", self.spec.name], check=False, timeout=120)
        if res.ok:
            return
        # DRBD 8.4 has no single-node resources: `up` attaches the disk and then fails to
        # connect for want of a peer section. The attached disk is all the lab needs.
        proc = self.read_proc()
        dev = proc.device(self.spec.minor)
        if self.syntax is DrbdSyntax.V84 and dev is not None and dev.disk not in (None, "Diskless"):
            log.debug("drbd 8.4 single node: attached without a peer (%s)", res.stderr.strip())
            return
        res.check(hint="see the DRBD messages in the host's kernel log (dmesg)")

    def _unload_modules(self, names: list[str]) -> None:
        self.host.unload_modules(*reversed(names))
        self.ledger.forget("modules", "drbd")

    def is_up(self) -> bool:
        """True when the kernel has the resource configured."""
        res = self.host.run(["drbdsetup", "status", self.spec.name], check=False, timeout=60)
        return res.ok and bool(res.stdout.strip())

    def _down(self) -> None:
        drbd_down(self.host, self.spec.name, self.spec.minor)

    def _detach_loop(self) -> None:
        if self.loop_device:
            self.host.run(["losetup", "-d", self.loop_device], timeout=60)
        self.ledger.forget("loop", self.spec.backing_file)

    def _remove_resource_file(self) -> None:
        self.host.run(["rm", "-f", self.spec.resource_file], timeout=30)
        if not self.is_up():  # a resource that would not go down stays in the ledger
            self.ledger.forget("drbd", self.spec.name)

    def _remove_backing_file(self) -> None:
        self.host.run(["rm", "-f", self.spec.backing_file], timeout=60)
        self.ledger.forget("file", self.spec.backing_file)
