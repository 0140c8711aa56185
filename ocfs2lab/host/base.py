"""The Host abstraction: a Linux machine whose kernel the lab uses.

A host runs commands through its runner, loads and unloads kernel modules, reads the kernel
log, puts and gets files and hands out a Docker client. [`LocalHost`][ocfs2lab.host.local.LocalHost]
is this machine, [`SshHost`][ocfs2lab.host.ssh.SshHost] any reachable Linux machine, and
[`LabVm`][ocfs2lab.host.labvm.LabVm] an SSH host that the lab booted itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ocfs2lab.errors import HostError, SpecError
from ocfs2lab.observe.sources import DmesgPoller, TimelineSource
from ocfs2lab.runner.base import DEFAULT_TIMEOUT, CommandResult, Runner
from ocfs2lab.vm.states import INSTANCE_FILE
from ocfs2lab.wait import wait_until

if TYPE_CHECKING:
    import docker

    from ocfs2lab.observe.timeline import Timeline

log = logging.getLogger(__name__)
_MODULE = re.compile(r"^[A-Za-z0-9_-]+$")

# Write stdin to "$1" and set its mode to "$2". A constant script: paths arrive as arguments.
_PUT_SCRIPT = 'umask 077; cat > "$1" && chmod "$2" "$1"'


@runtime_checkable
class Shell(Protocol):
    """What the lab needs of a machine to run commands, files and kernel modules on it.

    [`Machine`][ocfs2lab.host.base.Machine] (any runner), every host and every node provide it.
    """

    @property
    def name(self) -> str:
        """A short name for messages."""
        ...

    @property
    def runner(self) -> Runner:
        """The runner that reaches this host."""
        ...

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run a command on the host (see [`Runner.run`][ocfs2lab.runner.base.Runs.run])."""
        ...

    def load_modules(self, *names: str, timeout: float = 60.0) -> None:
        """Load kernel modules (``modprobe -a``)."""
        ...

    def unload_modules(self, *names: str, timeout: float = 60.0) -> None:
        """Unload kernel modules one by one, in the order given (``modprobe -r``)."""
        ...

    def loaded_modules(self) -> frozenset[str]:
        """Names of the loaded kernel modules (``/proc/modules``)."""
        ...

    def kernel_log(self) -> str:
        """The kernel ring buffer as ``dmesg`` prints it."""
        ...

    def put_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write a file on the host."""
        ...

    def get_file(self, path: str) -> bytes:
        """Read a file from the host."""
        ...

    def exists(self, path: str) -> bool:
        """True when ``path`` exists on the host."""
        ...

    def wait_for_block_device(self, path: str, timeout: float = 60.0) -> None:
        """Wait until ``path`` is a block device."""
        ...


@runtime_checkable
class Host(Shell, Protocol):
    """A Linux machine the lab runs on: a [`Shell`][ocfs2lab.host.base.Shell] with a Docker engine.

    Implementations: [`LocalHost`][ocfs2lab.host.local.LocalHost],
    [`SshHost`][ocfs2lab.host.ssh.SshHost], [`LabVm`][ocfs2lab.host.labvm.LabVm].
    """

    def boot_id(self) -> str:
        """The kernel's boot id."""
        ...

    def docker(self) -> docker.DockerClient:
        """A Docker SDK client for the host's engine."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...

    def feed_timeline(self, timeline: Timeline, *, interval: float = 1.0) -> TimelineSource:
        """Feed the host kernel's messages to ``timeline`` until the source is closed."""
        ...


def check_module_names(names: Iterable[str]) -> tuple[str, ...]:
    """Validate module names before they reach a command line.

    Raises:
        SpecError: A name that is not a module name.
    """
    result = tuple(names)
    for n in result:
        if not isinstance(n, str) or not _MODULE.match(n):
            raise SpecError("module", n, "must be a kernel module name (letters, digits, _ and -)")
    return result


def parse_proc_modules(text: str) -> frozenset[str]:
    """Module names from ``/proc/modules`` (first word of each line)."""
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


class Machine:
    """A machine reached through a runner: what hosts and nodes share.

    Commands, kernel modules, the kernel log and files, all built on the runner alone.
    """

    def __init__(self, runner: Runner, name: str) -> None:
        self._runner = runner
        self._name = name

    @property
    def name(self) -> str:
        """A short name for messages."""
        return self._name

    @property
    def runner(self) -> Runner:
        """The runner that reaches this host."""
        return self._runner

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run a command on the host.

        Raises:
            CommandFailed: ``check`` and a non-zero exit.
            CommandTimeout: ``check`` and the timeout passed.
            TransportError: The host cannot be reached.
        """
        return self._runner.run(argv, check=check, timeout=timeout, input=input, env=env)

    def load_modules(self, *names: str, timeout: float = 60.0) -> None:
        """Load kernel modules with ``modprobe -a`` (plain ``modprobe a b`` would take b as
        a parameter of a).

        Raises:
            HostError: A module could not be loaded.
        """
        mods = check_module_names(names)
        if not mods:
            return
        res = self.run(["modprobe", "-a", *mods], check=False, timeout=timeout)
        if not res.ok:
            raise HostError(
                f"{self.name}: could not load kernel modules {', '.join(mods)}: "
                f"{res.stderr.strip() or res.stdout.strip()}",
                hint="this host's kernel needs OCFS2 and DRBD as modules; "
                "the lab VM (ocfs2lab.LabVm) has them",
            )

    def unload_modules(self, *names: str, timeout: float = 60.0) -> None:
        """Unload kernel modules one by one, in the order given; absent ones are skipped.

        Raises:
            HostError: A loaded module could not be unloaded (still in use).
        """
        mods = check_module_names(names)
        for mod in mods:
            if mod.replace("-", "_") not in self.loaded_modules():
                continue
            res = self.run(["modprobe", "-r", mod], check=False, timeout=timeout)
            if not res.ok:
                raise HostError(
                    f"{self.name}: could not unload {mod}: {res.stderr.strip()}",
                    hint="something still uses it: unmount OCFS2 and stop heartbeat first",
                )

    def loaded_modules(self) -> frozenset[str]:
        """Names of the loaded kernel modules."""
        return parse_proc_modules(self.run(["cat", "/proc/modules"], timeout=30).stdout)

    def kernel_log(self) -> str:
        """The kernel ring buffer (``dmesg``)."""
        return self.run(["dmesg"], timeout=60).stdout

    def feed_timeline(self, timeline: Timeline, *, interval: float = 1.0) -> TimelineSource:
        """Feed the kernel's messages to ``timeline``: ``dmesg`` polled through the runner
        every ``interval`` seconds (a machine with a console the lab reads uses that instead).

        Returns:
            What to [`close`][ocfs2lab.observe.sources.TimelineSource.close] to stop.
        """
        return DmesgPoller(self.runner, timeline, self._name, interval=interval).start()

    def put_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` with permission bits ``mode``.

        Raises:
            CommandFailed: The file could not be written.
        """
        self.run(["sh", "-c", _PUT_SCRIPT, "sh", path, f"{mode:o}"], input=data, timeout=120)

    def get_file(self, path: str) -> bytes:
        """Read ``path`` whole.

        Raises:
            CommandFailed: The file could not be read.
        """
        return self.run(["cat", "--", path], timeout=120).stdout_bytes

    def exists(self, path: str) -> bool:
        """True when ``path`` exists."""
        return self.run(["test", "-e", path], check=False, timeout=30).exit_code == 0

    def boot_id(self) -> str:
        """The kernel's identity: machines with the same one share one kernel.

        The kernel's boot id; for a machine restored from a saved state, the boot id of the
        saved kernel and the restore's instance id (``<boot id>/<instance>``): every restore
        of one state is a kernel of its own, and a revived node differs from its earlier life.
        """
        out = self.run(
            [
                "sh",
                "-c",
                f"cat /proc/sys/kernel/random/boot_id; cat {INSTANCE_FILE} 2>/dev/null; true",
            ],
            timeout=30,
        ).stdout.split()
        return "/".join(out)

    def is_block_device(self, path: str) -> bool:
        """True when ``path`` is a block device."""
        return self.run(["test", "-b", path], check=False, timeout=30).exit_code == 0

    def wait_for_block_device(self, path: str, timeout: float = 60.0) -> None:
        """Poll until ``path`` is a block device.

        Raises:
            WaitTimeout: It did not appear in time.
        """
        wait_until(
            lambda: self.is_block_device(path),
            what=f"block device {path} on {self.name}",
            timeout=timeout,
            interval=0.1,
        )

    def close(self) -> None:
        """Close the runner."""
        self._runner.close()
