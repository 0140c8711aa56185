"""Saved machine states: a lab machine starts from a saved state instead of booting.

Booting a guest under emulation takes 20-50 s; restoring one from a saved state takes about a
second. The recipe is QEMU's VM templating (``docs/system/vm-templating.rst``), which QEMU
7.2 supports:

* **Saving** (once per *slot*: an image, a kernel, a machine identity): the machine boots
  cold with its RAM in a file (``memory-backend-file,share=on``) and its root disk on a qcow2
  overlay of its own. Once ssh answers, and before the lab changes anything in it, its ssh
  connection is closed, the CPUs are stopped and only the device state is written
  (``x-ignore-shared``: RAM stays in its file), then QEMU quits. RAM file, overlay, device
  state and a ``saved.json`` describing them form the slot's directory.
* **Restoring**: QEMU starts with the same guest-visible options, the RAM file mapped
  private (``share=off``: copy-on-write, the file is never written), a fresh overlay on the
  saved one and ``-incoming defer``; the device state is loaded (QMP ``migrate-incoming``)
  and the CPUs continue.

A restored guest holds what was in its RAM when it was saved: the saved machine's clock,
its ssh login key (from the saved kernel command line), machine id, boot id and RNG state.
[`identity_script`][ocfs2lab.vm.states.identity_script] gives it its own right after the
restore: the wall clock, a key of its own (the saved key stops working), a machine id and
an *instance* id, which [`Machine.boot_id`][ocfs2lab.host.base.Machine.boot_id] adds to the
kernel's boot id so that a restored kernel differs from every other and from its own earlier
lives. QEMU's VM generation ID device (``vmgenid``) tells the guest kernel at once that it is
a new clone, and it reseeds its RNG. The hostname and the interconnect MAC belong to the
slot (one state per node identity), the interconnect address is set after every start as
after a boot.

Slots live in ``<image>/states/`` beside the root image they were made from: listed and
pruned with it ([`ocfs2lab.vm.inventory`][ocfs2lab.vm.inventory]). The cluster's shared disk
is attached while saving but is never part of a state. A slot whose QEMU, image files,
kernel or own files changed is discarded with the reason, and the machine boots cold (and
saves it again). ``OCFS2LAB_SNAPSHOTS=0`` forces cold boots everywhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from attrs import frozen

from ocfs2lab.errors import Ocfs2LabError, SavedStateError, SpecError
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.accel import QEMU_BINARY
from ocfs2lab.vm.cache import file_lock, file_sha256, lock_path, remove_tree
from ocfs2lab.vm.qmp import QmpConnection
from ocfs2lab.wait import Deadline

log = logging.getLogger(__name__)

#: Version of the slot layout and of ``saved.json``.
STATE_FORMAT = 2
#: The folder of saved states, in an image's directory.
STATES_DIR = "states"
#: A slot's description.
SAVED_JSON = "saved.json"
#: The guest's RAM (a sparse file the size of the guest's memory).
RAM_FILE = "ram"
#: The devices' state (a few hundred KiB).
DEVICE_STATE = "device.state"
#: The root disk as it was when the state was saved (a qcow2 overlay on the image).
ROOT_OVERLAY = "root.qcow2"
#: The saved machine's own ssh key (its public half is on its saved kernel command line).
KEY_NAME = "id_ed25519"
#: Environment variable that turns saved states off (``0``, ``false``, ``no``, ``off``).
ENV_SNAPSHOTS = "OCFS2LAB_SNAPSHOTS"
#: The memory backend's id (RAM block names must match between saving and restoring).
RAM_BACKEND_ID = "ram0"
#: Migration bandwidth while saving (bytes/s): QEMU's default cap would slow the save down.
SAVE_BANDWIDTH = 1 << 40
#: Seconds the device state may take to save or to load.
STATE_TIMEOUT = 120.0
#: Where a restored guest keeps its instance id (tmpfs: gone at the next boot).
INSTANCE_FILE = "/run/ocfs2lab/instance"
#: Where a restored guest's sshd finds the login key given after the restore.
KEY_FILE = "/run/ocfs2lab/ssh_key"
#: What a restored guest writes to its kernel log (so the console and the timeline have it).
RESTORED_MARK = "ocfs2lab: restored"

_FALSE = {"0", "false", "no", "off"}
#: The clock mark a guest writes to its kernel log: ``ocfs2lab-clock <token> <ns>``.
CLOCK_MARK = "ocfs2lab-clock"
_MARK = re.compile(rf"{CLOCK_MARK} (\S+) (\d+)")


def snapshots_wanted(explicit: bool | None = None) -> bool:
    """Whether machines start from saved states: ``explicit`` when given, else on unless
    ``$OCFS2LAB_SNAPSHOTS`` says ``0``/``false``/``no``/``off``."""
    if explicit is not None:
        return explicit
    return os.environ.get(ENV_SNAPSHOTS, "1").strip().lower() not in _FALSE


@cache
def qemu_version(binary: str = QEMU_BINARY) -> str:
    """The first line of ``qemu-system-x86_64 --version`` (a state is valid for one QEMU)."""
    out = LocalRunner().run([binary, "--version"], timeout=30).stdout
    return out.strip().splitlines()[0] if out.strip() else "unknown"


@frozen
class MemoryFile:
    """Guest RAM in a file (``memory-backend-file``).

    Attributes:
        path: The file (created by QEMU at the guest's memory size; sparse).
        size_mib: The guest's memory.
        shared: ``True`` while saving (the guest writes the file); ``False`` for a restore
            (private copy-on-write mapping: the file is only read).
    """

    path: Path
    size_mib: int
    shared: bool

    def argv(self) -> list[str]:
        """The ``-object`` option; the machine takes ``memory-backend=`` `RAM_BACKEND_ID`."""
        share = "on" if self.shared else "off"
        return [
            "-object",
            f"memory-backend-file,id={RAM_BACKEND_ID},size={self.size_mib}M,"
            f"mem-path={self.path},share={share}",
        ]


def states_dir(root_disk: Path) -> Path:
    """Where the saved states of machines booting ``root_disk`` live."""
    return root_disk.absolute().parent / STATES_DIR


def slot_name(hostname: str, guest_view: Sequence[str], inputs: Mapping[str, Path]) -> str:
    """The slot of a machine: its hostname and a hash of what the guest sees (options,
    disks' sizes) and of which image and kernel files it boots."""
    blob = json.dumps(
        {"view": list(guest_view), "inputs": {k: str(v) for k, v in sorted(inputs.items())}},
        sort_keys=True,
    )
    return f"{hostname}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def fingerprint(paths: Mapping[str, Path]) -> dict[str, list[int]]:
    """Size, modification time (ns) and inode of each file: any rebuild or write changes it."""
    out: dict[str, list[int]] = {}
    for role, path in paths.items():
        st = path.stat()
        out[role] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


@frozen
class SavedState:
    """A slot that passed its checks: what a restore needs.

    Attributes:
        directory: The slot's directory.
        meta: Its ``saved.json``.
    """

    directory: Path
    meta: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The slot's name (``<hostname>-<hash>``)."""
        return self.directory.name

    @property
    def ram(self) -> Path:
        """The RAM file."""
        return self.directory / RAM_FILE

    @property
    def device_state(self) -> Path:
        """The device state file."""
        return self.directory / DEVICE_STATE

    @property
    def root_overlay(self) -> Path:
        """The saved root overlay (the backing file of every restore's overlay)."""
        return self.directory / ROOT_OVERLAY

    @property
    def private_key(self) -> Path:
        """The saved machine's ssh private key."""
        return self.directory / KEY_NAME

    @property
    def public_key(self) -> str:
        """Its public key line."""
        return str(self.meta["ssh_public_key"])

    @property
    def guest_clock_at_stop_ns(self) -> int | None:
        """The saved guest's wall clock (ns) when its CPUs stopped, if it was measured."""
        value = self.meta.get("guest_clock_at_stop_ns")
        return int(value) if isinstance(value, int) else None

    @property
    def uuid(self) -> str:
        """The saved machine's SMBIOS UUID (a restore keeps the same, as QEMU needs)."""
        return str(self.meta["uuid"])


def describe_slot(meta: Mapping[str, Any]) -> str:
    """One line about a slot (for listings)."""
    return (
        f"{meta.get('hostname', '?')}, {meta.get('memory_mib', '?')} MiB, "
        f"saved {time.strftime('%Y-%m-%d %H:%M', time.localtime(float(meta.get('saved_at', 0))))}"
    )


def write_meta(
    directory: Path,
    *,
    hostname: str,
    guest_view: Sequence[str],
    inputs: Mapping[str, Path],
    qemu: str,
    memory_mib: int,
    uuid: str,
    public_key: str,
    boot_seconds: float | None,
    save_seconds: float,
    guest_clock_at_stop_ns: int | None,
) -> dict[str, Any]:
    """Describe a slot that was just saved in ``directory`` (``saved.json``)."""
    own = {
        RAM_FILE: directory / RAM_FILE,
        ROOT_OVERLAY: directory / ROOT_OVERLAY,
        KEY_NAME: directory / KEY_NAME,
    }
    meta: dict[str, Any] = {
        "format": STATE_FORMAT,
        "hostname": hostname,
        "qemu": qemu,
        "memory_mib": memory_mib,
        "guest_view": list(guest_view),
        "inputs": {role: str(path) for role, path in inputs.items()},
        "input_fingerprint": fingerprint(inputs),
        # The slot's own files: their size and time (the RAM file is large; a write to it
        # changes its time), and the device state's digest (it is small).
        "files": {name: path.stat().st_size for name, path in own.items()},
        "file_times": {name: path.stat().st_mtime_ns for name, path in own.items()},
        "device_state_sha256": file_sha256(directory / DEVICE_STATE),
        "uuid": uuid,
        "ssh_public_key": public_key,
        "saved_at": time.time(),
        "boot_seconds": boot_seconds,
        "save_seconds": round(save_seconds, 3),
        # The guest's wall clock when its CPUs stopped: it resumes from there at the
        # restore's `cont`, so the shift that gives it the host's time is known exactly.
        "guest_clock_at_stop_ns": guest_clock_at_stop_ns,
    }
    tmp = directory / f"{SAVED_JSON}.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(directory / SAVED_JSON)
    return meta


def read_meta(directory: Path) -> dict[str, Any] | None:
    """A slot's ``saved.json``, or ``None`` when absent or unreadable."""
    try:
        data = json.loads((directory / SAVED_JSON).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_saved(
    directory: Path,
    *,
    guest_view: Sequence[str],
    inputs: Mapping[str, Path],
    qemu: str,
) -> SavedState:
    """The slot in ``directory`` if it is complete and still matches this machine.

    Raises:
        SavedStateError: With ``found=False`` when there is no state; else with the reason
            it cannot be used (QEMU changed, an image or kernel file changed, the guest's
            options differ, a file of the slot is missing, changed or damaged).
    """
    if not directory.is_dir():
        raise SavedStateError(directory, "none saved yet", found=False)
    meta = read_meta(directory)
    if meta is None:
        raise SavedStateError(directory, f"{SAVED_JSON} is missing or unreadable")
    if meta.get("format") != STATE_FORMAT:
        raise SavedStateError(
            directory, f"layout version {meta.get('format')}, this library writes {STATE_FORMAT}"
        )
    if meta.get("qemu") != qemu:
        raise SavedStateError(directory, f"made by {meta.get('qemu')!r}; this is {qemu!r}")
    if list(meta.get("guest_view") or []) != list(guest_view):
        raise SavedStateError(directory, "the machine's guest-visible options differ")
    saved_inputs = meta.get("inputs") or {}
    if saved_inputs != {role: str(path) for role, path in inputs.items()}:
        raise SavedStateError(directory, "it was made for other image or kernel files")
    try:
        now = fingerprint(inputs)
    except OSError as err:
        raise SavedStateError(directory, f"an image or kernel file is gone: {err}") from err
    saved_fp = meta.get("input_fingerprint") or {}
    for role, value in now.items():
        if saved_fp.get(role) != value:
            raise SavedStateError(directory, f"the {role} changed since the state was saved")
    files = meta.get("files") or {}
    times = meta.get("file_times") or {}
    for name in (RAM_FILE, ROOT_OVERLAY, KEY_NAME, DEVICE_STATE):
        path = directory / name
        if not path.is_file():
            raise SavedStateError(directory, f"its {name} is missing")
        if name in files:
            st = path.stat()
            if st.st_size != files[name] or st.st_mtime_ns != times.get(name):
                raise SavedStateError(directory, f"its {name} changed since it was saved")
    if file_sha256(directory / DEVICE_STATE) != meta.get("device_state_sha256"):
        raise SavedStateError(directory, f"its {DEVICE_STATE} is damaged (SHA-256 differs)")
    return SavedState(directory, meta)


def discard_state(state: SavedState, *, local: LocalRunner | None = None) -> bool:
    """Remove a slot that failed to restore, unless another process saved it anew meanwhile.

    Machines restored from it keep running: their open files stay readable until they end.

    Returns:
        True when it was removed.
    """
    with file_lock(lock_path(state.directory), timeout=STATE_TIMEOUT, what=f"discard {state.name}"):
        meta = read_meta(state.directory)
        if meta is None or meta.get("saved_at") != state.meta.get("saved_at"):
            return False
        remove_tree(state.directory, local)
        return True


# -- QMP: saving and loading the device state -----------------------------------------------------
def _exec_uri(command: str, path: Path) -> str:
    return f"exec:{command} {shlex.quote(str(path))}"


def _wait_migration(
    qmp: QmpConnection, what: str, timeout: float, alive: Callable[[], bool]
) -> dict[str, Any]:
    deadline = Deadline(timeout)
    while True:
        if not alive():
            raise Ocfs2LabError(f"{what}: QEMU exited")
        info = qmp.execute("query-migrate", timeout=10.0) or {}
        status = info.get("status")
        if status == "completed":
            return dict(info)
        if status in {"failed", "cancelled"}:
            raise Ocfs2LabError(f"{what}: migration {status}: {info.get('error-desc', '')}")
        if deadline.expired:
            raise Ocfs2LabError(f"{what}: not done after {timeout:g} s (status {status})")
        time.sleep(0.02)


def save_device_state(
    qmp: QmpConnection, path: Path, *, alive: Callable[[], bool], timeout: float = STATE_TIMEOUT
) -> tuple[float, float]:
    """Stop the guest and write its device state (not its RAM) to ``path``.

    Returns:
        Seconds it took, and the host time (``time.time()``) when the CPUs had stopped.

    Raises:
        Ocfs2LabError: QEMU refused, failed or exited.
    """
    start = time.monotonic()
    before = time.time()
    qmp.execute("stop")
    stopped_at = (before + time.time()) / 2
    qmp.execute(
        "migrate-set-capabilities",
        {"capabilities": [{"capability": "x-ignore-shared", "state": True}]},
    )
    qmp.execute("migrate-set-parameters", {"max-bandwidth": SAVE_BANDWIDTH})
    qmp.execute("migrate", {"uri": _exec_uri("cat >", path)})
    _wait_migration(qmp, "saving the device state", timeout, alive)
    return time.monotonic() - start, stopped_at


def load_device_state(
    qmp: QmpConnection, path: Path, *, alive: Callable[[], bool], timeout: float = STATE_TIMEOUT
) -> tuple[float, float]:
    """Load a device state into a QEMU started with ``-incoming defer`` and continue it.

    Returns:
        Seconds it took, and the host time (``time.time()``) when the CPUs continued.

    Raises:
        Ocfs2LabError: QEMU refused the state, failed or exited (it exits when a state does
            not load).
    """
    start = time.monotonic()
    qmp.execute(
        "migrate-set-capabilities",
        {"capabilities": [{"capability": "x-ignore-shared", "state": True}]},
    )
    qmp.execute("migrate-incoming", {"uri": _exec_uri("cat", path)})
    _wait_migration(qmp, "loading the device state", timeout, alive)
    before = time.time()
    qmp.execute("cont")
    return time.monotonic() - start, (before + time.time()) / 2


# -- the guest's identity after a restore ---------------------------------------------------------
def clock_mark_lines(token: str) -> list[str]:
    """Shell lines that write the guest's wall clock to its kernel log, so that it reaches
    the serial console within milliseconds: ``ocfs2lab-clock <token> <ns>``. One ``date``
    process reads the clock and writes the line. The host stamps the line's arrival, which
    measures the guest's clock against its own without the delay of an ssh round trip."""
    return [f'date +"{CLOCK_MARK} {token} %s%N" > /dev/kmsg']


def shift_clock_lines(shift_ns: int) -> list[str]:
    """Shell lines that move the guest's wall clock by ``shift_ns``: one ``date`` process
    reads the clock and sets it, relative to its own reading, so neither the script's
    transfer nor a process start in between counts."""
    shift = int(shift_ns)
    sign = "-" if shift < 0 else "+"
    whole, frac = divmod(abs(shift), 1_000_000_000)
    return [f'date -s "{sign}{whole}.{frac:09d} seconds" >/dev/null']


def identity_script(
    *,
    hostname: str,
    machine_id: str,
    instance: str,
    public_key: str,
    clock_shift_ns: int | None,
    clock: float,
    flush_devices: Sequence[str] = (),
    slot: str = "",
) -> str:
    """The shell script a restored guest runs first: its own identity, and the host's time.

    The wall clock moves by ``clock_shift_ns`` (the time the state spent saved: exact,
    whatever the script's transfer took); without it, it is set to ``clock`` (the host's
    time when the script was sent: late by the transfer, to be corrected). Then the
    hostname, a new machine id, the instance id (`INSTANCE_FILE`) and the login key
    (`KEY_FILE`, which the image's sshd prefers to the saved command line's); the page cache
    of the given block devices is dropped (the shared disk may have changed since the state
    was saved); the restore is noted in the kernel log, and last comes a clock mark
    ([`clock_mark_lines`][ocfs2lab.vm.states.clock_mark_lines]) with the instance id as
    its token.
    """
    key = public_key.strip()
    if "\n" in key or not key:
        raise SpecError("public_key", public_key[:60], "must be one non-empty line")
    lines = ["set -e"]
    if clock_shift_ns is not None:
        lines += shift_clock_lines(clock_shift_ns)
    else:
        lines.append(f"date -s @{clock:.6f} >/dev/null")
    lines += [
        "mkdir -p /run/ocfs2lab",
        f"printf '%s\\n' {shlex.quote(key)} > {KEY_FILE}.tmp",
        f"chmod 644 {KEY_FILE}.tmp",
        f"mv -f {KEY_FILE}.tmp {KEY_FILE}",
        f"printf '%s\\n' {shlex.quote(instance)} > {INSTANCE_FILE}",
        f"printf '%s\\n' {shlex.quote(machine_id)} > /etc/machine-id",
        f"hostname {shlex.quote(hostname)}",
    ]
    for device in flush_devices:
        lines.append(f"blockdev --flushbufs {shlex.quote(device)} 2>/dev/null || true")
    note = f"{RESTORED_MARK} from saved state {slot} as instance {instance}"
    lines.append(f"echo {shlex.quote(note)} > /dev/kmsg")
    lines += clock_mark_lines(instance)
    return "\n".join(lines) + "\n"


def find_clock_mark(text: str, token: str) -> int | None:
    """The guest clock (ns) of the clock mark with ``token`` in a console line, if any."""
    for m in _MARK.finditer(text):
        if m.group(1) == token:
            return int(m.group(2))
    return None


__all__ = [
    "CLOCK_MARK",
    "DEVICE_STATE",
    "ENV_SNAPSHOTS",
    "INSTANCE_FILE",
    "KEY_FILE",
    "RAM_FILE",
    "RESTORED_MARK",
    "ROOT_OVERLAY",
    "SAVED_JSON",
    "STATES_DIR",
    "MemoryFile",
    "SavedState",
    "SavedStateError",
    "check_saved",
    "clock_mark_lines",
    "describe_slot",
    "discard_state",
    "find_clock_mark",
    "fingerprint",
    "identity_script",
    "load_device_state",
    "qemu_version",
    "read_meta",
    "save_device_state",
    "shift_clock_lines",
    "slot_name",
    "snapshots_wanted",
    "states_dir",
    "write_meta",
]
