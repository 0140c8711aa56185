"""LabVm: the embedded lab host, a QEMU guest with a real OCFS2/DRBD kernel and Docker.

``with LabVm() as host:`` builds the lab image if the cache lacks it, boots a machine on a
throwaway overlay of it, and gives an SSH host whose life is the machine's: on exit the
machine is powered off and its overlay, sockets and key are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ocfs2lab.host.ssh import SshHost
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.observe.sources import ConsoleTap, TimelineSource
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.report import LogReporter, Reporter, phase
from ocfs2lab.vm.boot import BootOptions, start_machine
from ocfs2lab.vm.image import build_image
from ocfs2lab.vm.machine import QemuMachine
from ocfs2lab.vm.recipe import ImageRecipe, LabImage
from ocfs2lab.vm.spec import QemuSpec
from ocfs2lab.vm.states import snapshots_wanted


class LabVm(SshHost, Lifecycle):
    """A lab host that ocfs2lab builds and boots itself.

    Args:
        recipe: The image recipe (Debian trixie by default).
        hostname: The guest's host name.
        memory_mib: Guest memory.
        cpus: Guest CPUs.
        log_dir: Keep the console and QEMU logs here.
        keep_failed: Keep the logs when the block (or the boot) failed.
        cache_dir: Image cache (default ``$OCFS2LAB_CACHE`` or ``~/.cache/ocfs2lab``).
        reporter: Receives the ``image`` and ``boot`` phases.
        snapshots: Start from a saved state (saved at the first start); ``False`` boots
            cold. Default: on, unless ``$OCFS2LAB_SNAPSHOTS`` is ``0``.

    Attributes:
        image: The lab image booted.
        machine: The running QEMU machine (QMP, console, pid).
    """

    def __init__(
        self,
        recipe: ImageRecipe | None = None,
        *,
        hostname: str = "ocfs2lab",
        memory_mib: int = 2048,
        cpus: int = 2,
        log_dir: str | os.PathLike[str] | None = None,
        keep_failed: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        reporter: Reporter | None = None,
        snapshots: bool | None = None,
    ) -> None:
        self.recipe = recipe or ImageRecipe()
        self.snapshots = snapshots_wanted(snapshots)
        self.hostname = hostname
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.keep_failed = keep_failed
        self.cache_dir = cache_dir
        self.reporter: Reporter = reporter or LogReporter()
        self.image: LabImage | None = None
        self.machine: QemuMachine | None = None
        self._docker = None
        self._tap = ConsoleTap()

    def describe(self) -> str:
        """Name for messages."""
        return f"lab VM {self.hostname}"

    def _acquire(self) -> None:
        with self.step("image"), phase(self.reporter, "image"):
            self.image = build_image(self.recipe, cache_dir=self.cache_dir, reporter=self.reporter)
        with self.step("boot"):
            spec = QemuSpec(
                image=self.image,
                hostname=self.hostname,
                memory_mib=self.memory_mib,
                cpus=self.cpus,
            )
            options = BootOptions(
                log_dir=self.log_dir,
                keep_failed=self.keep_failed,
                reporter=self.reporter,
                snapshots=self.snapshots,
                console_listeners=(self._tap,),
            )
            started = start_machine(spec, options, enter=self.enter)
            self.machine = started.machine
        SshHost.__init__(self, started.target, runner=started.runner, name=self.hostname)
        # The machine owns the ssh connection and closes it after its clean poweroff; the
        # host only drops its Docker client, before that.
        self.undo(self._drop_docker, "close docker client")
        self.undo(self._tap.close, "close console feeds")

    def feed_timeline(self, timeline: Timeline, *, interval: float = 1.0) -> TimelineSource:
        """Feed the kernel's messages to ``timeline`` from the serial console, each stamped
        with the host time it arrived: nothing runs in the guest (``interval`` is unused).

        Returns:
            What to close to stop.
        """
        return self._tap.feed(timeline, self.hostname)

    def _drop_docker(self) -> None:
        if self._docker is not None:
            self._docker.close()
            self._docker = None

    def close(self) -> None:
        """Power the machine off and remove what it left; idempotent."""
        Lifecycle.close(self)
