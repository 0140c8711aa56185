"""LocalHost: this machine, for users whose own kernel has OCFS2 and DRBD."""

from __future__ import annotations

import os
import stat

import docker as docker_sdk
import pyudev

from ocfs2lab.errors import TransportError, WaitTimeout
from ocfs2lab.host.base import Machine
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.wait import Deadline


class LocalHost(Machine):
    """This machine: commands through ``sh``, device waits through udev events (pyudev)."""

    def __init__(self, runner: LocalRunner | None = None) -> None:
        super().__init__(runner or LocalRunner(), "local")
        self._docker: docker_sdk.DockerClient | None = None

    def wait_for_block_device(self, path: str, timeout: float = 60.0) -> None:
        """Wait for ``path`` to be a block device, woken by udev events rather than polling.

        Raises:
            WaitTimeout: It did not appear in time.
        """

        def present() -> bool:
            try:
                return stat.S_ISBLK(os.stat(path).st_mode)
            except OSError:
                return False

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by(subsystem="block")
        monitor.start()
        deadline = Deadline(timeout)
        while not present():
            if deadline.expired:
                raise WaitTimeout(f"block device {path} on {self.name}", timeout)
            # An event (or the remaining time) wakes us; then look again.
            monitor.poll(timeout=min(deadline.remaining, 1.0))

    def docker(self) -> docker_sdk.DockerClient:
        """A Docker client for this machine's engine (``DOCKER_HOST`` or the default socket).

        Raises:
            TransportError: No engine answers.
        """
        if self._docker is None:
            try:
                client = docker_sdk.from_env()
                client.ping()
            except docker_sdk.errors.DockerException as err:
                raise TransportError(
                    f"no Docker engine answers on this machine: {err}",
                    hint="start dockerd, or set DOCKER_HOST",
                ) from err
            self._docker = client
        return self._docker

    def close(self) -> None:
        """Close the Docker client."""
        if self._docker is not None:
            self._docker.close()
            self._docker = None
        super().close()
