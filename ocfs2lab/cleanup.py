"""Find and remove what labs created, and only that: one census, one cleanup.

On a host, containers and networks are found by the lab label Docker keeps on them; files,
loop devices, DRBD resources, registered clusters and loaded modules by the ledgers the labs
write on the host before creating anything (``/var/lib/ocfs2lab/labs``). On this machine,
the lab's QEMU machines, VM clusters and switches by the owner states of their directories
([`ocfs2lab.vm.ownership`][ocfs2lab.vm.ownership]). Both work after the process that built a
lab was killed with SIGKILL half way; [`census`][ocfs2lab.cleanup.census] lists both and
[`cleanup`][ocfs2lab.cleanup.cleanup] removes both.
"""

from __future__ import annotations

import logging
from typing import Any

from attrs import asdict, define, field

from ocfs2lab.errors import Ocfs2LabError, ParseError, TransportError
from ocfs2lab.formats.drbd_status import parse_drbd_status
from ocfs2lab.host.base import Shell
from ocfs2lab.host.changes import (
    OCFS2_MODULES,
    loop_backing,
    mounts,
    undo_entry,
)
from ocfs2lab.host.state import Ledger, all_ledgers
from ocfs2lab.node.container import LAB_LABEL
from ocfs2lab.vm.ownership import owned_dirs, reap_stale

log = logging.getLogger(__name__)


@define
class Census:
    """What of the labs (or anything OCFS2/DRBD) a host holds right now, and what lab
    machines this machine runs.

    ``machines_here`` are the run and switch directories of live owners on this machine
    (``<kind> <name> (owner pid N)``); ``stale_here`` those whose owner died, which
    [`cleanup`][ocfs2lab.cleanup.cleanup] removes.
    """

    containers: list[str] = field(factory=list)
    networks: list[str] = field(factory=list)
    ledgers: dict[str, int] = field(factory=dict)
    loop_devices: list[str] = field(factory=list)
    drbd_resources: list[str] = field(factory=list)
    ocfs2_mounts: list[str] = field(factory=list)
    clusters: list[str] = field(factory=list)
    ocfs2_modules: list[str] = field(factory=list)
    files: list[str] = field(factory=list)
    machines_here: list[str] = field(factory=list)
    stale_here: list[str] = field(factory=list)

    def lab_objects(self) -> dict[str, Any]:
        """What labs left, by kind (every non-empty field but ``machines_here``: a live
        owner's machines are in use, not left)."""
        return {k: v for k, v in asdict(self).items() if v and k != "machines_here"}


def ocfs2_mounts(host: Shell) -> list[str]:
    """Mount points of OCFS2 file systems on the host."""
    return [target for _, target, fstype in mounts(host) if fstype == "ocfs2"]


def registered_clusters(host: Shell) -> list[str]:
    """o2cb clusters registered in the host kernel's configfs."""
    res = host.run(["ls", "/sys/kernel/config/cluster"], check=False, timeout=30)
    return res.stdout.split() if res.ok else []


def drbd_resources(host: Shell) -> list[str]:
    """Names of the DRBD resources the host kernel holds, as ``drbdsetup status`` lists them.

    Output that is not ``drbdsetup status``'s (a usage text, say) counts as none, with a
    warning.
    """
    status = host.run(["drbdsetup", "status"], check=False, timeout=60)
    try:
        return [res.name for res in parse_drbd_status(status.stdout)]
    except ParseError as err:
        log.warning("%s: drbdsetup status: %s", host.name, err)
        return []


def census(host: Shell, docker_client: Any | None = None) -> Census:
    """Look at the host: lab-labelled Docker objects, ledgers, and the kernel's OCFS2/DRBD
    state; and this machine's lab directories. Looking changes nothing on the host (no
    module is loaded, no service started)."""
    c = Census()
    if docker_client is not None:
        c.containers = [
            x.name for x in docker_client.containers.list(all=True, filters={"label": LAB_LABEL})
        ]
        c.networks = [x.name for x in docker_client.networks.list(filters={"label": LAB_LABEL})]
    ledgers = all_ledgers(host)
    c.ledgers = {lab: len(entries) for lab, entries in ledgers.items()}
    lab_files = {e.key for entries in ledgers.values() for e in entries if e.kind == "file"}
    c.loop_devices = [dev for dev, back in loop_backing(host).items() if back in lab_files]
    loaded = host.loaded_modules()
    # Looking changes nothing: drbdsetup would load the drbd module, so it runs only where
    # DRBD is loaded already.
    c.drbd_resources = drbd_resources(host) if "drbd" in loaded else []
    c.ocfs2_mounts = ocfs2_mounts(host)
    c.clusters = registered_clusters(host)
    c.ocfs2_modules = [m for m in OCFS2_MODULES if m in loaded]
    c.files = [f for f in sorted(lab_files) if host.exists(f)]
    for owned in owned_dirs():
        text = f"{owned.kind} {owned.name} (owner pid {owned.owner_pid}): {owned.path}"
        (c.machines_here if owned.alive else c.stale_here).append(text)
    return c


def cleanup(
    host: Shell,
    docker_client: Any | None = None,
    *,
    lab_id: str | None = None,
    machines: bool = True,
) -> list[str]:
    """Remove what the labs (or one lab) created on ``host``; never anything else.

    Order: on this machine, the QEMU machines, VM clusters and switches whose owner died
    (with ``machines``, and not for one lab: their directories name no lab id); then on the
    host containers (their mounts go with them), networks, then per ledger in reverse: the
    registered cluster, DRBD resources, loop devices, files, and the modules the lab loaded;
    last the ledger itself. Machines of live owners are never touched.

    Returns:
        What was removed, in words.

    Raises:
        Ocfs2LabError: Something could not be removed (everything else was still tried).
    """
    done: list[str] = []
    errors: list[str] = []

    def attempt(what: str, fn: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            fn(*args, **kwargs)
        except Exception as err:
            errors.append(f"{what}: {err}")
            return False
        done.append(what)
        return True

    if machines and lab_id is None:
        done.extend(f"stale lab directory {path}" for path in reap_stale())
    label = f"{LAB_LABEL}={lab_id}" if lab_id else LAB_LABEL
    if docker_client is not None:
        try:
            containers = docker_client.containers.list(all=True, filters={"label": label})
            networks = docker_client.networks.list(filters={"label": label})
        except Exception as err:
            raise TransportError(f"cannot list the lab's Docker objects: {err}") from err
        for ctr in containers:
            attempt(f"container {ctr.name}", ctr.remove, force=True)
        for net in networks:
            attempt(f"network {net.name}", net.remove)
    ledgers = all_ledgers(host)
    for lab, entries in ledgers.items():
        if lab_id and lab != lab_id:
            continue
        ledger = Ledger(host, lab)
        for entry in reversed(entries):
            what = f"{entry.kind} {entry.key}"
            if attempt(what, undo_entry, host, lab, entry):
                ledger.forget(entry.kind, entry.key)
    if errors:
        raise Ocfs2LabError(
            f"cleanup left {len(errors)} thing(s): " + "; ".join(errors),
            hint="if OCFS2 modules stay loaded with [o2hb-*] threads, reboot the host",
        )
    return done
