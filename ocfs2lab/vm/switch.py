"""The interconnect of a VM cluster: a VDE switch of the lab's own.

``with VdeSwitch() as sw:`` starts ``vde_switch`` on a control directory of its own and gives
its path to QEMU NICs ([`NicSpec`][ocfs2lab.vm.spec.NicSpec]). It never touches the host's
network: no tap device, no bridge, no address; the switch is a user-space process that
forwards frames between the VMs plugged into it.

The switch is stopped by its own pid. It reads commands from a pipe that only the owning
process holds, and ``vde_switch`` exits at end of input: when the owner dies (even by
SIGKILL), the switch ends with it. Its directory is under ``/tmp`` with the prefix
``o2vm-sw-`` and an ``owner`` file naming its owner and the switch
([`ocfs2lab.vm.ownership`][ocfs2lab.vm.ownership]), so
[`reap_stale_switches`][ocfs2lab.vm.ownership.reap_stale_switches] can remove what a crashed
owner left.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path

from ocfs2lab.errors import HostError, LifecycleError, SpecError
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.runner.process import Spawned, spawn
from ocfs2lab.spec.link import CLEAN_LINK, LinkSpec
from ocfs2lab.vm.ownership import (
    SWITCH_PREFIX,
    SWITCH_STATE_FILE,
    claim_dir,
    reap_stale_switches,
    write_owner_state,
)
from ocfs2lab.wait import wait_until

__all__ = [
    "SWITCH_PREFIX",
    "VDE_SWITCH",
    "WIREFILTER",
    "LinkFilter",
    "VdeSwitch",
    "reap_stale_switches",
]

VDE_SWITCH = "vde_switch"
WIREFILTER = "wirefilter"


class VdeSwitch(Lifecycle):
    """A running VDE switch (a context manager): started on enter, stopped on exit.

    Args:
        ports: Number of ports (one per VM NIC).
        start_timeout: Seconds for the switch to create its control socket.

    Attributes:
        directory: The switch's own directory (control socket, log, owner file).
        process: The ``vde_switch`` process.

    Raises:
        LifecycleError: On enter, when the switch cannot be started or exits.
    """

    def __init__(self, *, ports: int = 32, start_timeout: float = 30.0) -> None:
        self.ports = ports
        self.start_timeout = start_timeout
        self.directory: Path | None = None
        self.process: Spawned | None = None

    def describe(self) -> str:
        """Name for messages."""
        return f"VDE switch {self.directory or ''}".strip()

    @property
    def socket(self) -> Path:
        """The control directory QEMU's ``-netdev vde,sock=`` takes."""
        if self.directory is None:
            raise LifecycleError(f"{self.describe()}: not started", hint="use it inside `with`")
        return self.directory / "sw"

    @property
    def pid(self) -> int | None:
        """The switch's pid (``None`` before start)."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """True while the switch process lives."""
        return self.process is not None and self.process.running

    def _acquire(self) -> None:
        with self.step("directory"):
            # Unix socket paths must stay short (108 bytes): the switch lives in /tmp.
            self.directory = claim_dir(
                SWITCH_PREFIX, root=tempfile.gettempdir(), file=SWITCH_STATE_FILE
            )
            directory = self.directory
            self.undo(lambda: shutil.rmtree(directory, ignore_errors=True), "remove switch dir")
        with self.step("start switch"):
            self.process = spawn(
                [VDE_SWITCH, "--sock", str(self.socket), "--numports", str(self.ports)],
                log_path=directory / "switch.log",
                name="vde_switch",
                stdin_pipe=True,
            )
            self.undo(self._stop, "stop switch")
            self._wait_ready()
        self._write_pid()

    def _write_pid(self) -> None:
        assert self.directory is not None and self.process is not None
        write_owner_state(
            self.directory, file=SWITCH_STATE_FILE, processes={"switch": self.process.pid}
        )

    def _wait_ready(self) -> None:
        proc = self.process
        assert proc is not None
        ctl = self.socket / "ctl"

        def ready() -> bool | None:
            if not proc.running:
                raise LifecycleError(
                    f"{self.describe()}: vde_switch exited (status {proc.exit_code}): "
                    f"{proc.log_text(1000).strip()}",
                    hint="is vde2 installed (apt-get install vde2)?",
                )
            return ctl.exists() or None

        wait_until(ready, what=f"{ctl} to appear", timeout=self.start_timeout, interval=0.02)

    def _stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)

    def close(self) -> None:
        """Stop the switch and remove its directory; idempotent."""
        Lifecycle.close(self)


class LinkFilter(Lifecycle):
    """One machine's link to a switch, with the lab's hand on it: a port switch of the
    machine's own, joined to the cluster's switch by ``wirefilter``. Outside the guest, so a
    frozen or misbehaving guest cannot escape what is set here: packet loss, delay and
    jitter, duplication (each way, or both).

    ``wirefilter`` reads commands from a pipe only the owner holds and ends with it, like
    the switch; its management socket (in the port switch's directory) takes the settings.

    Args:
        upstream: The cluster switch's control directory.
        start_timeout: Seconds for the filter's management socket to appear.

    Raises:
        LifecycleError: On enter, when the port switch or the filter cannot start.
    """

    def __init__(self, upstream: Path, *, start_timeout: float = 30.0) -> None:
        self.upstream = Path(upstream)
        self.start_timeout = start_timeout
        self.port: VdeSwitch | None = None
        self.process: Spawned | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Name for messages."""
        return f"link filter {self.port.directory if self.port else ''}".strip()

    @property
    def socket(self) -> Path:
        """The port switch's control directory: where the machine's NIC plugs in."""
        if self.port is None:
            raise LifecycleError(f"{self.describe()}: not started", hint="use it inside `with`")
        return self.port.socket

    @property
    def management(self) -> Path:
        """The filter's management socket."""
        if self.port is None or self.port.directory is None:
            raise LifecycleError(f"{self.describe()}: not started", hint="use it inside `with`")
        return self.port.directory / "wirefilter.mgmt"

    def _acquire(self) -> None:
        with self.step("port switch"):
            self.port = self.enter(VdeSwitch(ports=4, start_timeout=self.start_timeout))
        port = self.port
        assert port.directory is not None
        with self.step("start wirefilter"):
            self.process = spawn(
                [
                    WIREFILTER,
                    "--vde-plug",
                    f"{port.socket}:{self.upstream}",
                    "--mgmt",
                    str(self.management),
                ],
                log_path=port.directory / "wirefilter.log",
                name="wirefilter",
                stdin_pipe=True,
            )
            self.undo(self._stop, "stop wirefilter")
            proc = self.process

            def ready() -> bool | None:
                if not proc.running:
                    raise LifecycleError(
                        f"{self.describe()}: wirefilter exited (status {proc.exit_code}): "
                        f"{proc.log_text(1000).strip()}",
                        hint="is vde2 installed (apt-get install vde2)?",
                    )
                return self.management.exists() or None

            wait_until(ready, what="wirefilter's management socket", timeout=self.start_timeout)
        write_owner_state(
            port.directory,
            file=SWITCH_STATE_FILE,
            processes={"switch": port.pid, "wirefilter": proc.pid},
        )

    def _stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5.0)

    def set(self, link: LinkSpec = CLEAN_LINK, *, direction: str = "") -> None:
        """Set the link's impairments (all of them: the default is a clean link).

        Args:
            link: Loss, delay and jitter, duplicates (checked when it was made).
            direction: ``""`` (both ways), ``"in"`` (towards the machine) or ``"out"``
                (from the machine).

        Raises:
            SpecError: An unknown direction.
            HostError: wirefilter refused a setting.
        """
        # The port switch is wirefilter's left plug, the cluster switch its right one.
        way = {"": "", "in": "RL ", "out": "LR "}.get(direction)
        if way is None:
            raise SpecError("link.direction", direction, "must be '', 'in' or 'out'")
        delay = f"{link.delay_ms:g}" + (f"+{link.jitter_ms:g}" if link.jitter_ms else "")
        self._commands(
            [
                f"loss {way}{link.loss_pct:g}",
                f"delay {way}{delay}",
                f"dup {way}{link.duplicate_pct:g}",
            ]
        )

    def clear(self) -> None:
        """No impairment, both ways."""
        self.set()

    def show(self) -> str:
        """wirefilter's ``showinfo``: the settings in force, each way."""
        return self._commands(["showinfo"])

    def _commands(self, commands: list[str]) -> str:
        out: list[str] = []
        with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10.0)
            conn.connect(str(self.management))
            _read_prompt(conn)
            for command in commands:
                conn.sendall(command.encode() + b"\n")
                reply = _read_prompt(conn)
                if "1000 Success" not in reply:
                    raise HostError(f"wirefilter refused {command!r}: {reply.strip()[-200:]}")
                out.append(reply)
        return "".join(out)


def _read_prompt(conn: socket.socket) -> str:
    """Read a wirefilter management reply up to its prompt."""
    data = b""
    while not data.endswith(b"$ "):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")
