"""The lab's changes on a machine: each written to the machine's ledger before it is made,
each undone from its ledger entry, on exit or by a cleanup after a crash.

A [`MachineChanges`][ocfs2lab.host.changes.MachineChanges] makes the changes a cluster
stack needs on one machine (an SSH node, a VM node): a directory, a file (whose previous
content is kept as a backup on the machine), a mount, loaded modules, a registered cluster.
The entry comes first, so a process killed at any point leaves a ledger that names what it
changed. [`undo_entry`][ocfs2lab.host.changes.undo_entry] undoes one entry; the live undo
(leaving a ``with`` block) and `ocfs2lab cleanup` both use it, so the two cannot drift.

A machine whose changes die with it (a container, removed on exit) gets a `MachineChanges`
without a ledger: the changes are made and not recorded.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from typing import Any

from ocfs2lab.errors import HostError, OwnershipError
from ocfs2lab.host.base import Shell
from ocfs2lab.host.drbd import drbd_down, owned_resource_file
from ocfs2lab.host.state import BACKUP_DIR, LEDGER_DIR, Entry, Ledger

log = logging.getLogger(__name__)

#: The OCFS2 modules in the seed's unload order (``modprobe -r`` one by one); the userspace
#: stack's around them (``ocfs2_stack_user`` first, fs/dlm's ``dlm`` last).
OCFS2_MODULES = (
    "ocfs2_stack_user",
    "ocfs2_stack_o2cb",
    "ocfs2_dlm",
    "ocfs2_dlmfs",
    "ocfs2",
    "ocfs2_nodemanager",
    "ocfs2_stackglue",
    "dlm",
)


def backup_path(lab_id: str, path: str) -> str:
    """Where the previous content of ``path`` is kept for lab ``lab_id``."""
    return f"{BACKUP_DIR}/{lab_id}/{path.strip('/').replace('/', '%')}"


def mounts(machine: Shell) -> list[tuple[str, str, str]]:
    """``(source, mount point, type)`` of every mount on ``machine`` (``/proc/mounts``)."""
    text = machine.run(["cat", "/proc/mounts"], timeout=30).stdout
    return [(p[0], p[1], p[2]) for p in (line.split() for line in text.splitlines()) if len(p) > 2]


def mounted(machine: Shell, target: str, fstype: str | None = None) -> bool:
    """Whether ``target`` is a mount point on ``machine`` (of ``fstype``, when given)."""
    return any(t == target and fstype in (None, f) for _, t, f in mounts(machine))


def unload_ocfs2_modules(machine: Shell, names: Sequence[str]) -> None:
    """Unload ``names`` (OCFS2 modules) in the seed's order, skipping ones not loaded.

    Raises:
        HostError: Some stay loaded; when ``[o2hb-*]`` kernel threads remain the advice is to
            reboot the machine.
    """
    wanted = [m for m in OCFS2_MODULES if m in names]
    for mod in wanted:
        if mod in machine.loaded_modules():
            machine.run(["modprobe", "-r", mod], check=False, timeout=120)
    left = [m for m in wanted if m in machine.loaded_modules()]
    if left:
        threads = machine.run(
            ["sh", "-c", "grep -ls '^o2hb-' /proc/[0-9]*/comm || true"], timeout=30
        ).stdout.strip()
        raise HostError(
            f"{machine.name}: OCFS2 modules stay loaded: {', '.join(left)}",
            hint="reboot the machine: stale [o2hb-*] kernel threads hold the modules"
            if threads
            else "something still uses them: unmount OCFS2 and unregister the cluster first",
        )


def unload_unused(machine: Shell, names: Sequence[str]) -> None:
    """Unload ``names`` in whatever order their users allow (a module another of them uses
    goes after it; ``modprobe -r`` takes unused dependencies along).

    Raises:
        HostError: Some stay loaded (in use by something else).
    """
    left = [m for m in names if m in machine.loaded_modules()]
    while left:
        for mod in left:
            machine.run(["modprobe", "-r", mod], check=False, timeout=120)
        loaded = machine.loaded_modules()
        still = [m for m in left if m in loaded]
        if len(still) == len(left):
            raise HostError(
                f"{machine.name}: modules stay loaded: {', '.join(still)}",
                hint="something else uses them: `lsmod` names their users",
            )
        left = still


def loop_backing(machine: Shell) -> dict[str, str]:
    """Loop device -> backing file."""
    res = machine.run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"], check=False, timeout=30)
    found = {}
    for line in res.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            found[parts[0]] = parts[1].strip()
    return found


def undo_entry(machine: Shell, lab_id: str, entry: Entry) -> None:
    """Undo one change a lab recorded on ``machine``.

    * ``file``: the previous content back, byte for byte and with its mode, from the backup
      (or the file removed when it did not exist before);
    * ``mount``: unmounted (lazily when it is busy), if it is still mounted;
    * ``dir``: removed if it is empty;
    * ``foreign_cluster``: a cluster of the machine's own that a forced deploy unregistered,
      registered again;
    * ``modules``: unloaded (the OCFS2 ones in the seed's order);
    * ``service``: a systemd unit the lab started, stopped (a transient one goes with it);
    * ``cluster``: its OCFS2 mounts of the recorded device unmounted, then unregistered;
    * ``drbd``, ``loop``: the DRBD resource down and its file removed; the loop device
      detached.

    Raises:
        OwnershipError: The object is no longer the lab's (a DRBD resource file another
            wrote); it is left alone.
        CommandFailed: An undo command failed.
    """
    kind, key, data = entry.kind, entry.key, entry.data
    if kind == "file":
        if data.get("existed"):
            backup = str(data["backup"])
            machine.run(["cp", "-p", backup, key], timeout=60)
            machine.run(["rm", "-f", backup], timeout=30)
        else:
            machine.run(["rm", "-f", key], timeout=60)
    elif kind == "mount":
        if mounted(machine, key, data.get("fstype")):
            res = machine.run(["umount", key], check=False, timeout=300)
            if not res.ok:
                log.warning("%s: umount %s: %s; lazily", machine.name, key, res.stderr.strip())
                machine.run(["umount", "-l", key], timeout=300)
    elif kind == "foreign_cluster":
        # A cluster of the machine's own, unregistered by a forced deploy: registered again
        # (its cluster.conf is back: the lab's file entry was undone before, in reverse).
        if not machine.exists(f"/sys/kernel/config/cluster/{key}"):
            machine.run(["o2cb", "register-cluster", key], timeout=120)
    elif kind == "dir":
        machine.run(["rmdir", "--ignore-fail-on-non-empty", key], check=False, timeout=30)
    elif kind == "modules":
        names = list(data.get("names", []))
        if key == "ocfs2":
            unload_ocfs2_modules(machine, names)
        else:
            unload_unused(machine, names)
    elif kind == "service":
        if machine.run(["systemctl", "is-active", "--quiet", key], check=False, timeout=60).ok:
            machine.run(["systemctl", "stop", key], timeout=300)
        machine.run(["systemctl", "reset-failed", key], check=False, timeout=60)
    elif kind == "cluster":
        for source, target, fstype in mounts(machine):
            if fstype == "ocfs2" and source == data.get("device"):
                machine.run(["umount", target], check=False, timeout=300)
        if machine.exists(f"/sys/kernel/config/cluster/{key}"):
            # A mount killed half way can leave its heartbeat region running: stop it.
            regions = f"/sys/kernel/config/cluster/{key}/heartbeat"
            listing = machine.run(["ls", "-1", regions], check=False, timeout=30).stdout
            for uuid in listing.split():
                if len(uuid) == 32 and all(c in "0123456789ABCDEFabcdef" for c in uuid):
                    stop = machine.run(["ocfs2_hb_ctl", "-K", "-u", uuid], check=False)
                    if not stop.ok:
                        machine.run(["rmdir", f"{regions}/{uuid}"], check=False, timeout=60)
            machine.run(["o2cb", "unregister-cluster", key], timeout=120)
    elif kind == "drbd":
        res_file = str(data.get("file", f"/etc/drbd.d/{key}.res"))
        text = machine.run(["cat", res_file], check=False, timeout=30).stdout
        if text and not owned_resource_file(text, lab_id):
            raise OwnershipError(f"{res_file} is not lab {lab_id}'s any more; left alone")
        drbd_down(machine, key, int(data.get("minor", 0)))
        machine.run(["rm", "-f", res_file], timeout=30)
    elif kind == "loop":
        for dev, back in loop_backing(machine).items():
            if back == key:
                machine.run(["losetup", "-d", dev], timeout=60)
    else:
        log.warning("%s: unknown ledger entry %s %s", machine.name, kind, key)


class MachineChanges:
    """The lab's changes on one machine, recorded before they are made.

    Each method makes one change unless it is there already (a directory that exists, a
    mount that is mounted, a module that is loaded: those are not the lab's and are never
    undone), records it in ``ledger`` first, and returns whether it changed anything.
    [`undo`][ocfs2lab.host.changes.MachineChanges.undo] reverts one recorded change.

    A change recorded already (a node that rejoins after a reboot of its own) keeps its
    first entry: the backup of a file is the content from before the lab, never the lab's.

    Args:
        machine: Where the changes are made.
        ledger: The lab's ledger on that machine (``None``: make, do not record).
    """

    def __init__(self, machine: Shell, ledger: Ledger | None) -> None:
        self.machine = machine
        self.ledger = ledger

    def record(self, kind: str, key: str, **data: Any) -> None:
        """Write down a change the caller is about to make (unless recorded already)."""
        if self.ledger is not None and not self.ledger.owns(kind, key):
            self.ledger.record(kind, key, **data)

    def make_dir(self, path: str) -> bool:
        """``mkdir -p path`` (recorded when it did not exist)."""
        if self.machine.run(["test", "-d", path], check=False, timeout=30).ok:
            return False
        self.record("dir", path)
        self.machine.run(["mkdir", "-p", path], timeout=30)
        return True

    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> bool:
        """Write ``path``; the content it had is kept on the machine and restored on undo."""
        if self.ledger is None:
            self.machine.put_file(path, data, mode)
            return True
        if not self.ledger.owns("file", path):
            backup = backup_path(self.ledger.lab_id, path)
            quoted, saved = shlex.quote(path), shlex.quote(backup)
            existed = self.machine.run(
                [
                    "sh",
                    "-c",
                    f"test -e {quoted} || exit 3; mkdir -p {shlex.quote(backup.rsplit('/', 1)[0])}"
                    f" && cp -p {quoted} {saved}",
                ],
                check=False,
                timeout=60,
            )
            if existed.exit_code not in (0, 3):
                existed.check(hint=f"the lab keeps a copy of {path} before it writes it")
            if existed.exit_code == 0:
                self.ledger.record("file", path, existed=True, backup=backup)
            else:
                self.ledger.record("file", path, existed=False)
        self.machine.put_file(path, data, mode)
        return True

    def mount(self, fstype: str, source: str, target: str) -> bool:
        """``mount -t fstype source target`` unless ``target`` is mounted already."""
        if mounted(self.machine, target, fstype):
            return False
        self.record("mount", target, fstype=fstype, source=source)
        self.machine.run(["mount", "-t", fstype, source, target], timeout=120)
        return True

    def load_modules(self, key: str, names: Sequence[str], loaded: Sequence[str]) -> bool:
        """Load modules with ``modprobe -a names``; ``loaded`` are the modules that may come
        with them (their dependencies), recorded under ``key`` when they were not loaded
        before (``key`` ``"ocfs2"``: unloaded in the seed's order).

        Raises:
            CommandFailed: ``modprobe`` failed.
        """
        before = self.machine.loaded_modules()
        new = [m for m in loaded if m not in before]
        if not new:
            return False
        self.record("modules", key, names=new)
        self.machine.run(["modprobe", "-a", *names], timeout=120)
        return True

    def start_service(self, unit: str, argv: Sequence[str] | None = None) -> bool:
        """Start systemd unit ``unit`` unless it is active already (then it is not the lab's
        and never stopped by it). With ``argv``, ``unit`` is a transient service running
        that command (``systemd-run``), gone once stopped.

        Raises:
            CommandFailed: The unit did not start.
        """
        if self.machine.run(["systemctl", "is-active", "--quiet", unit], check=False).ok:
            return False
        self.record("service", unit)
        if argv is None:
            self.machine.run(["systemctl", "start", unit], timeout=300)
        else:
            self.machine.run(
                ["systemd-run", "--quiet", "--collect", f"--unit={unit}", *argv], timeout=120
            )
        return True

    def register_cluster(self, name: str, device: str) -> None:
        """Record that cluster ``name`` (its volume on ``device``) is about to be registered."""
        self.record("cluster", name, device=device)

    def forget(self, kind: str, key: str) -> None:
        """Strike ``kind``/``key`` from the ledger once the caller undid it itself."""
        if self.ledger is not None and self.ledger.owns(kind, key):
            self.ledger.forget(kind, key)

    def will_mount(self, fstype: str, source: str, target: str) -> None:
        """Record a mount the caller is about to make itself (with its own retries)."""
        self.record("mount", target, fstype=fstype, source=source)

    def undo(self, kind: str, key: str) -> None:
        """Undo the recorded change ``kind``/``key`` and strike it from the ledger (nothing
        when it is not recorded: it was there before the lab).

        Raises:
            CommandFailed: The undo failed (the entry stays, for a cleanup).
        """
        if self.ledger is None:
            return
        entry = next((e for e in self.ledger.entries() if (e.kind, e.key) == (kind, key)), None)
        if entry is None:
            return
        undo_entry(self.machine, self.ledger.lab_id, entry)
        self.ledger.forget(kind, key)


__all__ = [
    "BACKUP_DIR",
    "LEDGER_DIR",
    "OCFS2_MODULES",
    "MachineChanges",
    "backup_path",
    "loop_backing",
    "mounted",
    "mounts",
    "undo_entry",
    "unload_ocfs2_modules",
    "unload_unused",
]
