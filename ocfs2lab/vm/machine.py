"""The running QEMU machine: one lab image, booted as any number of independent machines.

The middle of the QEMU launcher (the VM layer), above the specs of
[`ocfs2lab.vm.spec`][ocfs2lab.vm.spec]. A [`QemuMachine`][ocfs2lab.vm.machine.QemuMachine] boots a
[`QemuSpec`][ocfs2lab.vm.spec.QemuSpec] from a per-VM qcow2 overlay on the read-only base image
(``-kernel``/``-initrd`` from the image, ``root=LABEL=...``), or restores it from a saved state
([`ocfs2lab.vm.states`][ocfs2lab.vm.states]), with:

* ssh forwarded from a free ``127.0.0.1`` port (slirp ``hostfwd``) and a throwaway ed25519
  key that reaches the guest on the kernel command line (``ocfs2lab.ssh_key=``; the image's
  sshd reads it from ``/proc/cmdline`` through ``AuthorizedKeysCommand``, so the base image
  holds no key and nothing is written at boot);
* the serial console on QEMU's stdout pipe, read by a thread that stamps each line with the
  host clock ([`SerialConsole`][ocfs2lab.vm.console.SerialConsole]);
* a QMP socket ([`QmpConnection`][ocfs2lab.vm.qmp.QmpConnection]) for faults: stop/cont, link down,
  block throttling, quit;
* KVM when it really works, TCG otherwise ([`ocfs2lab.vm.accel`][ocfs2lab.vm.accel]).

The QEMU process is the one process the library starts without a runner (it outlives any
call); it is started in `QemuMachine._spawn`, known by its pid and stopped by that pid
only: ``poweroff`` over ssh, then QMP ``quit``, then SIGKILL. Each machine keeps its files in
a directory of its own under ``<cache>/run/`` with a ``state.json`` naming its owner and
QEMU pid ([`ocfs2lab.vm.ownership`][ocfs2lab.vm.ownership]), so
[`reap_stale_machines`][ocfs2lab.vm.ownership.reap_stale_machines] can clean up after a
crashed owner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid as uuid_module
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ocfs2lab.errors import LifecycleError, Ocfs2LabError, SpecError, TransportError
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.ssh import SshRunner, SshTarget
from ocfs2lab.vm.accel import Accel, default_accel
from ocfs2lab.vm.cache import build_once
from ocfs2lab.vm.console import ConsoleLine, SerialConsole
from ocfs2lab.vm.ownership import (
    TEMP_PREFIX,
    claim_dir,
    run_root,
    write_owner_state,
)
from ocfs2lab.vm.qmp import QmpConnection, QmpEvent
from ocfs2lab.vm.spec import QemuSpec, SshKey, build_argv, guest_view, state_inputs
from ocfs2lab.vm.states import (
    CLOCK_MARK,
    DEVICE_STATE,
    KEY_NAME,
    RAM_FILE,
    ROOT_OVERLAY,
    STATE_TIMEOUT,
    MemoryFile,
    SavedState,
    SavedStateError,
    check_saved,
    clock_mark_lines,
    discard_state,
    find_clock_mark,
    identity_script,
    load_device_state,
    qemu_version,
    save_device_state,
    shift_clock_lines,
    slot_name,
    snapshots_wanted,
    states_dir,
    write_meta,
)
from ocfs2lab.wait import Deadline, wait_until

log = logging.getLogger(__name__)

#: Attempts at finding a free port for the ssh forward (another process may take it first).
PORT_ATTEMPTS = 5
#: Seconds QEMU gets to open its QMP socket after it starts.
QMP_TIMEOUT = 30.0
#: What the image's ocfs2lab-ready.service prints (kernel log, so the console) once sshd
#: listens and the slirp NIC has its address.
READY_MARK = "ocfs2lab: ssh ready"
#: Seconds after which the host stops waiting for `READY_MARK` and probes sshd itself.
READY_MARK_GRACE = 120.0
#: A restored guest's clock is corrected again when it is further than this from the host's.
CLOCK_TOLERANCE_NS = 50_000_000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (QEMU may still lose a race for it: retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ssh_banner(port: int, host: str = "127.0.0.1", timeout: float = 1.5) -> bool:
    """True when something on ``host:port`` greets like an ssh server (``SSH-``) in time.

    Cheap enough to poll: with slirp, the connection is accepted on the host even while the
    guest is not listening, and closed (or left silent) until sshd answers.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


# -- the machine ---------------------------------------------------------------------------------
class QemuMachine(Lifecycle):
    """A running QEMU machine (a context manager): booted on enter, gone on exit.

    ``with QemuMachine(spec) as vm:`` boots the machine and returns once ssh answers (or,
    without ssh forwarding, once QEMU runs). Leaving the block powers it off (``poweroff``
    over ssh, then QMP ``quit``, then SIGKILL of its pid) and removes its overlay, sockets
    and key; its console and QEMU logs are kept in ``log_dir`` when one was given, or in its
    run directory when the block failed and ``keep_failed`` is set. Exceptions and
    KeyboardInterrupt inside the block still tear the machine down.

    Args:
        spec: What to boot.
        log_dir: Directory for ``<hostname>.console.log`` and ``<hostname>.qemu.log``; kept.
        keep_failed: Keep the logs of a machine whose block (or boot) failed.
        boot_timeout: Seconds from QEMU start to ready; default 600 under TCG, 120 under KVM.
        poweroff_timeout: Seconds a clean ``poweroff`` gets before QMP ``quit`` (0: skip it).
        reporter: Receives the ``boot`` and ``shutdown`` phases.
        local: Runs host commands (``qemu-img``, ``ssh-keygen``, ssh).
        work_root: Parent of the machine's run directory (default ``<cache>/run``).
        console_listeners: Called with every console line from the first one on (the
            reader thread calls them; keep them quick), e.g. a timeline's
            [`ConsoleFeed`][ocfs2lab.observe.sources.ConsoleFeed].

    Raises:
        LifecycleError: On enter, when a step fails (no overlay, QEMU exits at start, the
            guest is not ready before ``boot_timeout``: the message carries the console
            tail); whatever was built is torn down first. On exit, when teardown failed.
    """

    def __init__(
        self,
        spec: QemuSpec,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        keep_failed: bool = False,
        boot_timeout: float | None = None,
        poweroff_timeout: float = 60.0,
        reporter: Reporter | None = None,
        local: LocalRunner | None = None,
        work_root: str | os.PathLike[str] | None = None,
        console_listeners: Iterable[Callable[[ConsoleLine], None]] = (),
        snapshots: bool = False,
    ) -> None:
        self.spec = spec
        self.snapshots = snapshots
        self.console_listeners = tuple(console_listeners)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.keep_failed = keep_failed
        self.boot_timeout = boot_timeout
        self.poweroff_timeout = poweroff_timeout
        self.reporter: Reporter = reporter or LogReporter()
        self.local = local or LocalRunner()
        self.work_root = Path(work_root) if work_root is not None else run_root()
        self.work_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.overlay: Path | None = None
        self.ssh_key: SshKey | None = spec.ssh_key
        self.accel: Accel | None = None
        #: The machine's SMBIOS UUID (new for every boot; the guest's machine id follows it).
        self.uuid = str(uuid_module.uuid4())
        self.argv: list[str] = []
        self.ssh_port: int | None = None
        self.started_at: float | None = None
        self.boot_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: SerialConsole | None = None
        self._qmp: QmpConnection | None = None
        self._ssh: SshRunner | None = None
        self._ssh_ready = False
        self._ready = False
        self._started_mono = 0.0
        self._failed = False
        self._stopped = False
        #: True when the machine was restored from a saved state rather than booted.
        self.restored = False
        #: How the machine started, in words (restored from which state, or why it booted
        #: cold); empty for a plain boot.
        self.start_note = ""
        #: This start's instance id: a restored guest has it in ``/run/ocfs2lab/instance``.
        self.instance = uuid_module.uuid4().hex
        #: The saved state it was restored from.
        self.saved_state: SavedState | None = None
        self._memory: MemoryFile | None = None
        self._incoming = False
        self._cmdline_key: SshKey | None = None
        self._argv_uuid: str | None = None
        #: A restored guest's clock less the host's, in seconds, after it was set.
        self.clock_offset: float | None = None

    def describe(self) -> str:
        """``QemuMachine <hostname>``."""
        return f"QemuMachine {self.spec.hostname}"

    # -- public handles ---------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """Pid of the QEMU process (also after it exited), or ``None`` before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the QEMU process lives."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """QEMU's exit status once it exited (negative: killed by that signal)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def console(self) -> SerialConsole:
        """The serial console (lines stamped with the host clock)."""
        if self._console is None:
            raise LifecycleError(f"{self.describe()}: not started", hint="use it inside `with`")
        return self._console

    @property
    def qmp(self) -> QmpConnection:
        """The QMP connection."""
        if self._qmp is None:
            raise LifecycleError(f"{self.describe()}: not started", hint="use it inside `with`")
        return self._qmp

    @property
    def runner(self) -> SshRunner:
        """Runs commands in the guest as root over ssh.

        Raises:
            LifecycleError: The machine has no ssh forward or is not booted.
        """
        if self._ssh is None:
            raise LifecycleError(
                f"{self.describe()}: no ssh runner",
                hint="boot it with ssh_forward=True and use it inside `with`",
            )
        return self._ssh

    @property
    def ssh_target(self) -> SshTarget:
        """How to reach the guest's sshd (``127.0.0.1``, the forwarded port, the key)."""
        return self.runner.target

    @property
    def console_log(self) -> Path:
        """The console log file."""
        return self._log_path("console.log")

    @property
    def qemu_log(self) -> Path:
        """QEMU's own stderr."""
        return self._log_path("qemu.log")

    def _log_path(self, name: str) -> Path:
        if self.log_dir is not None:
            return self.log_dir / f"{self.spec.hostname}.{name}"
        if self.work_dir is None:
            raise LifecycleError(f"{self.describe()}: not started")
        return self.work_dir / name

    # -- acquire ----------------------------------------------------------------------------
    def _acquire(self) -> None:
        # A machine may be entered again after it was closed: start from a clean slate.
        self.uuid = str(uuid_module.uuid4())
        self.ssh_key = self.spec.ssh_key
        self._proc = None
        self._console = None
        self._qmp = None
        self._ssh = None
        self.work_dir = self.socket_dir = self.overlay = None
        self.boot_seconds = None
        self._failed = True
        self._stopped = False
        self._ready = self._ssh_ready = False
        self._reset_start()
        self.restored = False
        self.start_note = ""
        self.instance = uuid_module.uuid4().hex
        with self.step("prepare"):
            self._prepare_dirs()
        if self.spec.ssh_forward and self.ssh_key is None:
            with self.step("ssh key"):
                assert self.work_dir is not None
                self.ssh_key = SshKey.generate(self.work_dir, runner=self.local)
        with self.step("accelerator"):
            self.accel = self.spec.accel or default_accel(self.spec.image.kernel, self.local)
        if self._states_usable() and self._start_from_saved_state():
            self._failed = False
            return
        with self.step("overlay"):
            self._make_overlay()
        with phase(self.reporter, f"boot {self.spec.hostname}"):
            with self.step("start qemu"):
                self._start()
            with self.step("wait for ssh" if self.spec.ssh_forward else "wait for qemu"):
                self._wait_ready()
        self._failed = False

    def _prepare_dirs(self) -> None:
        self.work_dir = claim_dir(
            f"{self.spec.hostname}-", root=self.work_root, hostname=self.spec.hostname
        )
        self.undo(self._remove_work_dir, "remove run directory")
        # Unix socket paths must stay short (108 bytes): sockets live in /tmp.
        self.socket_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self.undo(
            lambda: shutil.rmtree(self.socket_dir or "", ignore_errors=True), "remove socket dir"
        )
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_state()

    def _write_state(self) -> None:
        if self.work_dir is None:
            return
        write_owner_state(
            self.work_dir,
            hostname=self.spec.hostname,
            socket_dir=str(self.socket_dir) if self.socket_dir else None,
            processes={"qemu": self.pid},
        )

    def _make_overlay(self) -> None:
        base = self.spec.image.root_disk.absolute()
        if not base.is_file():
            raise LifecycleError(
                f"{self.describe()}: the image's root disk {base} does not exist",
                hint="build the image first (ocfs2lab.vm.build_image)",
            )
        if self.spec.write_base:
            self.overlay = base
            return
        assert self.work_dir is not None
        overlay = self._create_overlay(self.work_dir / "root.qcow2", base, "raw")
        self.undo(lambda: overlay.unlink(missing_ok=True), "delete overlay")

    def _create_overlay(self, overlay: Path, backing: Path, backing_format: str) -> Path:
        overlay.unlink(missing_ok=True)
        self.local.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(backing),
                "-F",
                backing_format,
                str(overlay),
            ],
            timeout=60,
        )
        self.overlay = overlay
        return overlay

    # -- saved states ----------------------------------------------------------------------
    def _states_usable(self) -> bool:
        return (
            self.snapshots
            and snapshots_wanted()
            and not self.spec.write_base
            and self.spec.ssh_forward
            and self.ssh_key is not None
        )

    def _boot_limit(self) -> float:
        return self.boot_timeout or (600.0 if (self.accel or "tcg") == "tcg" else 120.0)

    def state_inputs(self) -> dict[str, Path]:
        """The image and kernel files a saved state of this machine depends on, by role
        ([`state_inputs`][ocfs2lab.vm.spec.state_inputs])."""
        return state_inputs(self.spec)

    def guest_view(self) -> list[str]:
        """What the guest sees of this machine ([`guest_view`][ocfs2lab.vm.spec.guest_view]
        under its accelerator): two machines with equal views can share a saved state."""
        return guest_view(self.spec, self.accel or "tcg")

    def _note(self, text: str, *, warning: bool = False) -> None:
        self.start_note = text
        log.log(logging.WARNING if warning else logging.INFO, "%s: %s", self.describe(), text)

    def _start_from_saved_state(self) -> bool:
        """Restore the machine from its slot, saving the slot first when it has none (or an
        invalid one). False when it must boot cold: nothing is left running then."""
        view, inputs = self.guest_view(), self.state_inputs()
        slot = states_dir(self.spec.image.root_disk) / slot_name(self.spec.hostname, view, inputs)
        qemu = qemu_version()
        rejected: list[str] = []
        saved_now: list[float] = []

        def load() -> SavedState | None:
            try:
                return check_saved(slot, guest_view=view, inputs=inputs, qemu=qemu)
            except SavedStateError as err:
                if err.found:
                    log.warning(
                        "%s: saved state %s discarded: %s", self.describe(), slot.name, err.reason
                    )
                    rejected.append(err.reason)
                return None

        def build(tmp: Path) -> None:
            saved_now.append(self._save_state(tmp, view, inputs, qemu))

        try:
            with self.step("saved state"):
                state = build_once(
                    slot,
                    load,
                    build,
                    what=f"saved state {slot.name}",
                    lock_timeout=self._boot_limit() + STATE_TIMEOUT,
                    local=self.local,
                )
        except Ocfs2LabError as err:
            self._abandon()
            self._note(f"cold boot: no saved state could be made ({err.message})", warning=True)
            return False
        try:
            with self.step("restore"), phase(self.reporter, f"restore {self.spec.hostname}"):
                self._restore(state)
        except Ocfs2LabError as err:
            reason = err.reason if isinstance(err, SavedStateError) else err.message
            self._abandon()
            discard_state(state, local=self.local)
            self._note(f"saved state {state.name} discarded: {reason}; cold boot", warning=True)
            return False
        how = f"restored from saved state {state.name} in {self.boot_seconds:.1f} s"
        if rejected:
            how += f" (the old one was discarded: {rejected[0]}; saved again)"
        elif saved_now:
            how += f" (saved just now, in {saved_now[0]:.1f} s)"
        self._note(how)
        return True

    def _save_state(self, tmp: Path, view: list[str], inputs: dict[str, Path], qemu: str) -> float:
        """Boot the machine cold with its RAM in ``tmp``, save its device state there and
        stop it: the slot, before the lab changed anything in the guest."""
        started = time.monotonic()
        key = SshKey.generate(tmp, runner=self.local, name=KEY_NAME)
        self._create_overlay(tmp / ROOT_OVERLAY, self.spec.image.root_disk.absolute(), "raw")
        self._cmdline_key = key
        self._memory = MemoryFile(tmp / RAM_FILE, self.spec.memory_mib, shared=True)
        self._incoming = False
        self._argv_uuid = self.uuid
        with phase(self.reporter, f"boot {self.spec.hostname} (to save its state)"):
            self._start()
            self._wait_ready()
        boot_seconds = self.boot_seconds
        assert self._ssh is not None
        # Where the guest's clock stands against the host's; it runs at the host's rate
        # until the CPUs stop, and resumes from there at each restore.
        offset_ns = self._clock_offset_ns(self._ssh, [], f"save-{self.instance}")
        # Established TCP connections would not survive a restore: none may be open.
        self._ssh.close()
        self._ssh = None
        self._ssh_ready = self._ready = False
        save_seconds, stopped_at = save_device_state(
            self.qmp, tmp / DEVICE_STATE, alive=lambda: self.running
        )
        self.quit()
        if self.wait_exit(30.0) is None:
            self._kill()
        self._close_handles()
        self._stopped = False
        write_meta(
            tmp,
            hostname=self.spec.hostname,
            guest_view=view,
            inputs=inputs,
            qemu=qemu,
            memory_mib=self.spec.memory_mib,
            uuid=self.uuid,
            public_key=key.public_key,
            boot_seconds=boot_seconds,
            save_seconds=save_seconds,
            guest_clock_at_stop_ns=int(stopped_at * 1e9) + offset_ns,
        )
        return time.monotonic() - started

    def _restore(self, state: SavedState) -> None:
        """Start QEMU on the saved state, then give the guest its own identity and clock.

        Raises:
            SavedStateError: QEMU refused the state, or the guest did not answer.
        """
        assert self.work_dir is not None and self.ssh_key is not None
        self._create_overlay(self.work_dir / "root.qcow2", state.root_overlay, "qcow2")
        saved_key = SshKey(state.private_key, state.public_key)
        self._cmdline_key = saved_key
        self._memory = MemoryFile(state.ram, self.spec.memory_mib, shared=False)
        self._incoming = True
        self._argv_uuid = state.uuid
        self._start()
        try:
            _seconds, continued_at = load_device_state(
                self.qmp, state.device_state, alive=lambda: self.running
            )
        except Ocfs2LabError as err:
            stderr = self._qemu_stderr().strip().splitlines()
            detail = stderr[-1] if stderr else err.message
            raise SavedStateError(state.directory, f"QEMU did not load it: {detail}") from err
        self.saved_state = state
        limit = min(self._boot_limit(), 180.0)
        saved = self._ssh_runner(saved_key)
        self._ssh = saved  # closed with the machine if anything below fails
        self._connect(saved, limit, state)
        self._give_identity(saved, state, continued_at)
        # The connection the saved key opened carries on for the lab's key: the guest now
        # accepts only that one, and a new connection (after the master ended) uses it.
        self._cmdline_key = None
        main = self._ssh_runner(self.ssh_key)
        self._connect(main, limit, state)
        self._ssh = main
        self._ssh_ready = self._ready = True
        self.restored = True
        self.boot_seconds = time.monotonic() - self._started_mono

    def _connect(self, runner: SshRunner, limit: float, state: SavedState) -> None:
        last: list[str] = []

        def probe() -> bool | None:
            if not self.running:
                raise SavedStateError(
                    state.directory, f"QEMU exited after the restore: {self._qemu_stderr()[-300:]}"
                )
            try:
                runner.connect()
            except TransportError as err:
                last[:] = [err.message.splitlines()[-1] if err.message else ""]
                if "Permission denied" in err.message:
                    # sshd answers, so the guest runs: refusing the key is its last word.
                    raise SavedStateError(
                        state.directory, f"the restored guest refused the login: {last[0]}"
                    ) from err
                return None
            return True

        try:
            wait_until(
                probe, what=f"ssh to restored {self.describe()}", timeout=limit, interval=0.05
            )
        except SavedStateError:
            raise
        except Ocfs2LabError as err:
            raise SavedStateError(
                state.directory,
                f"the restored guest did not answer ssh ({last[0] if last else err.message})",
            ) from err

    def _give_identity(self, runner: SshRunner, state: SavedState, continued_at: float) -> None:
        """Clock, hostname, machine id, instance id and login key of the restored guest."""
        assert self.ssh_key is not None
        stopped = state.guest_clock_at_stop_ns
        shift = int(continued_at * 1e9) - stopped if stopped is not None else None
        script = identity_script(
            hostname=self.spec.hostname,
            machine_id=uuid_module.UUID(self.uuid).hex,
            instance=self.instance,
            public_key=self.ssh_key.public_key,
            clock_shift_ns=shift,
            clock=time.time(),
            flush_devices=[f"/dev/disk/by-id/virtio-{d.serial}" for d in self.spec.drives],
            slot=state.name,
        )
        offset = self._clock_offset_ns(runner, script.splitlines()[:-1], self.instance)
        for attempt in range(3):
            if abs(offset) <= CLOCK_TOLERANCE_NS:
                break
            log.info(
                "%s: guest clock %+.3f s from the host's; correcting", self.describe(), offset / 1e9
            )
            offset = self._clock_offset_ns(
                runner, ["set -e", *shift_clock_lines(-offset)], f"{self.instance}-{attempt}"
            )
        self.clock_offset = offset / 1e9

    def _clock_offset_ns(self, runner: SshRunner, lines: list[str], token: str) -> int:
        """Run ``lines`` and a clock mark in the guest; the guest's clock less the host's
        when the mark reached the console (ns)."""
        since = time.time()
        script = "\n".join([*lines, *clock_mark_lines(token)]) + "\n"
        runner.run(["sh", "-s"], input=script, timeout=60)
        line = self.console.wait_for(
            re.escape(f"{CLOCK_MARK} {token} "), timeout=30.0, since=since - 1.0
        )
        guest = find_clock_mark(line.text, token)
        if guest is None:  # pragma: no cover - the pattern found it
            raise TransportError(f"{self.describe()}: no clock mark in {line.text!r}")
        return guest - int(line.time * 1e9)

    def _reset_start(self) -> None:
        """Forget how the last start was made: the next one is a plain boot unless set."""
        self._memory = None
        self._incoming = False
        self._cmdline_key = None
        self._argv_uuid = None
        self.saved_state = None

    def _abandon(self) -> None:
        """Stop a start that failed half way (capture or restore) so a cold boot can follow."""
        self._kill(intended=True)
        self._stopped = False  # the cold boot that follows is this machine's life
        self._ssh = None
        self._ssh_ready = self._ready = False
        self._reset_start()
        if self.overlay is not None and self.overlay.parent == self.work_dir:
            self.overlay.unlink(missing_ok=True)
        self.overlay = None

    def _start(self) -> None:
        last_error = ""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.ssh_port = free_port() if self.spec.ssh_forward else None
            if self._spawn():
                return
            last_error = self._qemu_stderr()
            if "host forwarding" not in last_error or attempt == PORT_ATTEMPTS:
                break
            log.info("%s: port %s was taken, trying another", self.describe(), self.ssh_port)
        raise LifecycleError(
            f"{self.describe()}: QEMU exited at start (status {self.exit_code}): "
            f"{last_error.strip()[-1500:]}",
            hint=f"see {self.qemu_log}",
        )

    def _spawn(self) -> bool:
        """Start QEMU once; True when its QMP answers, False when it exited first."""
        assert self.socket_dir is not None and self.overlay is not None and self.accel is not None
        qmp_socket = self.socket_dir / "qmp.sock"
        qmp_socket.unlink(missing_ok=True)
        self.argv = build_argv(
            self.spec,
            accel=self.accel,
            root_disk=self.overlay,
            qmp_socket=qmp_socket,
            ssh_port=self.ssh_port,
            ssh_key=self._cmdline_key or self.ssh_key,
            name=f"ocfs2lab-{self.spec.hostname}",
            pidfile=self.work_dir / "qemu.pid" if self.work_dir else None,
            uuid=self._argv_uuid or self.uuid,
            memory=self._memory,
            incoming=self._incoming,
        )
        first = self._proc is None
        log.info("%s: starting QEMU", self.describe())
        log.debug("%s: %s", self.describe(), " ".join(self.argv))
        with self.qemu_log.open("ab") as stderr:
            self.started_at = time.time()
            self._started_mono = time.monotonic()
            # The one process not started through a runner: it lives as long as the machine.
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=0,
                close_fds=True,
                start_new_session=True,  # a Ctrl-C in the terminal reaches Python, not QEMU
            )
        if first:
            self.undo(self._stop, "stop QEMU", fallback=self._kill)
        self._write_state()
        assert self._proc.stdout is not None
        self._console = SerialConsole(self._proc.stdout, self.console_log, name=self.spec.hostname)
        for listener in self.console_listeners:
            self._console.add_listener(listener)
        self._console.start()
        self._qmp = QmpConnection(qmp_socket, name=self.spec.hostname)
        deadline = Deadline(QMP_TIMEOUT)
        while True:
            if self._proc.poll() is not None:
                self._console.close()
                self._qmp.close()
                return False
            if qmp_socket.exists():
                try:
                    self._qmp.connect(timeout=min(10.0, max(1.0, deadline.remaining)))
                    return True
                except TransportError:
                    if deadline.expired:
                        raise
            elif deadline.expired:
                raise LifecycleError(
                    f"{self.describe()}: QEMU made no QMP socket in {QMP_TIMEOUT:g} s"
                )
            time.sleep(0.05)

    def _qemu_stderr(self) -> str:
        try:
            return self.qemu_log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _exited_error(self, during: str) -> LifecycleError:
        console = self._console.tail(30) if self._console else ""
        return LifecycleError(
            f"{self.describe()}: QEMU exited (status {self.exit_code}) {during}.\n"
            f"--- console tail ---\n{console}\n--- qemu stderr ---\n{self._qemu_stderr()[-1500:]}",
            hint=f"console log: {self.console_log}",
        )

    def _wait_ready(self) -> None:
        accel = self.accel or "tcg"
        remaining = max(1.0, self._boot_limit() - (time.monotonic() - self._started_mono))
        if not self.spec.ssh_forward:
            self._wait_running(remaining)
        else:
            self._wait_ssh(remaining)
        self.boot_seconds = time.monotonic() - self._started_mono
        self._ready = True
        log.info("%s: ready in %.1f s (%s)", self.describe(), self.boot_seconds, accel)

    def _wait_running(self, timeout: float) -> None:
        def probe() -> bool | None:
            if not self.running:
                raise self._exited_error("during boot")
            return self.query_status() == "running" or None

        wait_until(probe, what=f"{self.describe()} running", timeout=timeout)

    def _ssh_runner(self, key: SshKey, name: str = "ssh") -> SshRunner:
        assert self.ssh_port is not None and self.socket_dir is not None
        target = SshTarget(
            host="127.0.0.1",
            port=self.ssh_port,
            user="root",
            identity_file=key.private_key,
            connect_timeout=15.0,
        )
        return SshRunner(target, self.socket_dir / name)

    def _wait_ssh(self, timeout: float) -> None:
        key = self._cmdline_key or self.ssh_key
        assert key is not None
        self._ssh = self._ssh_runner(key)
        last: list[str] = []
        mark_deadline = Deadline(READY_MARK_GRACE)
        console = self._console
        assert console is not None

        def probe() -> bool | None:
            if not self.running:
                raise self._exited_error("during boot")
            assert self.ssh_port is not None and self._ssh is not None
            # Wait for the guest's own signal before touching sshd: under emulation every
            # probe connection costs the guest a whole sshd-session. Without the signal (an
            # image without the unit, a broken console) probe anyway after a grace period.
            marked = any(READY_MARK in line.text for line in console.lines(self.started_at))
            fallback = not marked and mark_deadline.expired
            if not marked and not (fallback and ssh_banner(self.ssh_port, timeout=10.0)):
                return None
            try:
                self._ssh.connect()
                result = self._ssh.run(["true"], check=False, timeout=30)
            except TransportError as err:
                last[:] = [err.message]
                return None
            return result.ok or None

        try:
            wait_until(
                probe,
                what=f"ssh to {self.describe()} on port {self.ssh_port}",
                timeout=timeout,
                interval=0.1,
                max_interval=0.5,
                hint=f"see the console log {self.console_log}",
            )
        except Ocfs2LabError as err:
            if isinstance(err, LifecycleError):
                raise
            tail = self._console.tail(20) if self._console else ""
            raise LifecycleError(
                f"{err}; last ssh error: {last[0] if last else '-'}\n--- console tail ---\n{tail}",
                hint=f"console log: {self.console_log}",
            ) from err
        self._ssh_ready = True

    # -- QMP helpers (faults) ------------------------------------------------------------------
    def qmp_execute(
        self, command: str, arguments: Mapping[str, object] | None = None, *, timeout: float = 10.0
    ) -> Any:
        """Run any QMP command; returns its ``return`` value.

        Raises:
            QmpCommandError: QEMU refused it.
            TransportError: No QMP connection.
        """
        return self.qmp.execute(command, arguments, timeout=timeout)

    def query_status(self) -> str:
        """The VM's run state (``running``, ``paused``, ``shutdown``, ...)."""
        return str(self.qmp_execute("query-status")["status"])

    def stop(self) -> None:
        """Freeze the guest's CPUs (QMP ``stop``); the console and QMP keep working."""
        self.qmp_execute("stop")

    def cont(self) -> None:
        """Resume a frozen guest (QMP ``cont``)."""
        self.qmp_execute("cont")

    def set_link(self, nic_id: str, up: bool) -> None:
        """Set a NIC's link up or down (QMP ``set_link``); ``ssh0`` is the ssh NIC.

        Raises:
            SpecError: No such NIC in the spec.
        """
        known = {"ssh0", *(n.id for n in self.spec.nics)}
        if nic_id not in known:
            raise SpecError("nic_id", nic_id, f"must be one of {sorted(known)}")
        self.qmp_execute("set_link", {"name": nic_id, "up": up})

    def block_set_io_throttle(
        self,
        drive_id: str,
        *,
        bps: int = 0,
        bps_rd: int = 0,
        bps_wr: int = 0,
        iops: int = 0,
        iops_rd: int = 0,
        iops_wr: int = 0,
    ) -> None:
        """Throttle a disk's I/O (QMP ``block_set_io_throttle``); all zero lifts the limits.

        Args:
            drive_id: ``root`` or an extra drive's id.
            bps: Total bytes per second (0: no limit); likewise the others.

        Raises:
            SpecError: No such drive.
        """
        known = {"root", *(d.id for d in self.spec.drives)}
        if drive_id not in known:
            raise SpecError("drive_id", drive_id, f"must be one of {sorted(known)}")
        self.qmp_execute(
            "block_set_io_throttle",
            {
                # The virtio-blk-pci device is a PCI proxy; the block device is its backend.
                "id": f"/machine/peripheral/{drive_id}/virtio-backend",
                "bps": bps,
                "bps_rd": bps_rd,
                "bps_wr": bps_wr,
                "iops": iops,
                "iops_rd": iops_rd,
                "iops_wr": iops_wr,
            },
        )

    def quit(self) -> None:
        """End QEMU at once (QMP ``quit``): like pulling the plug, but QEMU exits cleanly."""
        with contextlib.suppress(TransportError):
            self.qmp_execute("quit")

    def events(self, since: float | None = None) -> list[QmpEvent]:
        """QMP events (STOP, RESUME, SHUTDOWN, ...) with their arrival times."""
        return self.qmp.events(since)

    def kill(self) -> None:
        """SIGKILL the QEMU process (by its pid) and reap it: the node dies instantly."""
        self._kill(intended=True)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for QEMU to exit; its status, or ``None``."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- teardown --------------------------------------------------------------------------
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._failed = True
        super().__exit__(exc_type, exc, tb)

    def poweroff(self, timeout: float | None = None) -> bool:
        """Shut the guest down cleanly and wait for QEMU to exit; True when it did in time.

        Over ssh (``systemctl poweroff``) when ssh is up; for a booted machine without ssh
        forwarding, with an ACPI power button press (QMP ``system_powerdown``). A machine
        that never became ready is not waited for (returns False at once).
        """
        timeout = self.poweroff_timeout if timeout is None else timeout
        if not self.running:
            return True
        if timeout <= 0:
            return False
        if self._ssh is not None and self._ssh_ready:
            with phase(self.reporter, f"poweroff {self.spec.hostname}"):
                try:
                    self._ssh.run(
                        ["systemctl", "poweroff"], check=False, timeout=min(30.0, timeout)
                    )
                except (TransportError, OSError) as err:  # the session dies as the guest goes
                    log.debug("%s: poweroff over ssh: %s", self.describe(), err)
                return self.wait_exit(timeout) is not None
        if not self.spec.ssh_forward and self._ready:
            with phase(self.reporter, f"poweroff {self.spec.hostname}"):
                with contextlib.suppress(Ocfs2LabError):
                    self.qmp_execute("system_powerdown")
                return self.wait_exit(timeout) is not None
        return False  # not booted yet: nothing to shut down cleanly

    def _stop(self) -> None:
        """Undo of start: clean poweroff, then QMP quit, then SIGKILL; then close handles."""
        try:
            if self.running and not self._stopped and not self.poweroff():
                log.warning("%s: no clean poweroff; QMP quit", self.describe())
                if self._qmp is not None and self._qmp.connected:
                    self.quit()
                    self.wait_exit(10.0)
        finally:
            self._kill()

    def _kill(self, *, intended: bool = False) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            # A kill asked for (a fault) is news; one that ends a failed teardown is a warning.
            log.log(
                logging.INFO if intended else logging.WARNING,
                "%s: SIGKILL to QEMU pid %d",
                self.describe(),
                proc.pid,
            )
            # The Popen object has not reaped the pid, so it cannot belong to anyone else.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30.0)
        self._stopped = True
        self._close_handles()

    def _close_handles(self) -> None:
        if self._ssh is not None:
            with contextlib.suppress(Exception):
                self._ssh.close()
        if self._qmp is not None:
            self._qmp.close()
        if self._console is not None and not self._console.close(10.0):
            log.warning("%s: console reader did not end", self.describe())

    def _remove_work_dir(self) -> None:
        work = self.work_dir
        if work is None:
            return
        keep_logs = self.log_dir is None and self._failed and self.keep_failed
        if keep_logs:
            for path in work.iterdir():
                if path.name not in {"console.log", "qemu.log"}:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            log.warning("%s: failed; logs kept in %s", self.describe(), work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if self.ssh_key is not None and self.spec.ssh_key is None:
            self.ssh_key.remove()
