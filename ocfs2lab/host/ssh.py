"""SshHost: any reachable Linux machine, over one multiplexed SSH connection."""

from __future__ import annotations

import docker as docker_sdk

from ocfs2lab.errors import TransportError
from ocfs2lab.host.base import Machine
from ocfs2lab.runner.ssh import SshRunner, SshTarget

#: Where the Docker engine listens on the remote machine.
REMOTE_DOCKER_SOCKET = "/var/run/docker.sock"


class SshHost(Machine):
    """A Linux machine reached over SSH.

    Commands share one persistent OpenSSH connection. The Docker client talks to the
    machine's engine through a unix socket forwarded over that same connection, so no
    Docker port is ever opened on the network.

    Args:
        target: How to reach the machine.
        runner: An existing runner for it (one is made from ``target`` otherwise).
        name: A short name for messages.
    """

    def __init__(
        self, target: SshTarget, *, runner: SshRunner | None = None, name: str | None = None
    ) -> None:
        self.target = target
        self.ssh = runner or SshRunner(target)
        super().__init__(self.ssh, name or target.where)
        self._docker: docker_sdk.DockerClient | None = None

    def docker(self) -> docker_sdk.DockerClient:
        """A Docker client for the machine's engine, over the SSH connection.

        Raises:
            TransportError: The engine does not answer.
        """
        if self._docker is None:
            local = self.ssh.control_dir / "docker.sock"
            if not local.exists():
                self.ssh.forward_unix_socket(local, REMOTE_DOCKER_SOCKET)
            client = docker_sdk.DockerClient(
                base_url=f"unix://{local}", version="auto", timeout=300
            )
            try:
                client.ping()
            except docker_sdk.errors.DockerException as err:
                client.close()
                raise TransportError(
                    f"{self.name}: the Docker engine does not answer: {err}",
                    hint="is dockerd running on the machine (systemctl status docker)?",
                ) from err
            self._docker = client
        return self._docker

    def close(self) -> None:
        """Close the Docker client and the SSH connection; idempotent."""
        if self._docker is not None:
            self._docker.close()
            self._docker = None
        super().close()
