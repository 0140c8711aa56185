"""Container nodes: the seed's topology, privileged containers on one host.

Every container of a host shares that host's kernel. configfs (the registered cluster, which
node is local) is global to the kernel, so N containers are ONE OCFS2 node as far as the
kernel knows: killing a container triggers no heartbeat death and no DLM recovery. The
topology exercises the tools and one kernel's code; experiments on node death need VM nodes.
"""

from __future__ import annotations

import logging
from typing import Any

import docker
import docker.errors
from attrs import field, frozen

from ocfs2lab.errors import HostError, LifecycleError, TransportError
from ocfs2lab.host.base import Machine
from ocfs2lab.lifecycle import Lifecycle
from ocfs2lab.node.base import NodeKind
from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.spec import rules
from ocfs2lab.spec.cluster import NetworkSpec, NodeSpec
from ocfs2lab.spec.storage import str_tuple
from ocfs2lab.wait import wait_until

log = logging.getLogger(__name__)

#: Docker label carrying the id of the lab that created an object.
LAB_LABEL = "io.ocfs2lab.lab"
NODE_IMAGE = "ocfs2-node:latest"


@frozen
class ContainerSettings:
    """How node containers are made.

    Attributes:
        image: The node image (built inside the lab host from ``Dockerfile.ocfs2``).
        devices: Host block devices handed to every container (``/dev/drbd0``).
        privileged: The seed runs privileged containers (configfs, dlmfs, mount).
        command: The container's idle process.
    """

    image: str = NODE_IMAGE
    devices: tuple[str, ...] = field(default=(), converter=str_tuple)
    privileged: bool = True
    command: tuple[str, ...] = ("tail", "-f", "/dev/null")

    def __attrs_post_init__(self) -> None:
        for dev in self.devices:
            rules.absolute_path(self, rules.attribute(ContainerSettings, "devices"), dev)


def _docker_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except docker.errors.APIError as err:
        raise HostError(f"docker: {what} failed: {err.explanation or err}") from err
    except docker.errors.DockerException as err:
        raise TransportError(f"docker: {what}: engine not reachable: {err}") from err


class DockerNetwork(Lifecycle):
    """The seed's Docker network (default ``ocfs2-network``, 172.20.0.0/16), lab-labelled."""

    def __init__(self, client: docker.DockerClient, spec: NetworkSpec, lab_id: str) -> None:
        self.client = client
        self.spec = spec
        self.lab_id = lab_id
        self.network: Any = None

    def describe(self) -> str:
        """Name for messages."""
        return f"docker network {self.spec.name}"

    def _acquire(self) -> None:
        with self.step("create network"):
            existing = _docker_call(
                "list networks", self.client.networks.list, names=[self.spec.name]
            )
            for net in existing:
                if net.name == self.spec.name:
                    owner = (net.attrs.get("Labels") or {}).get(LAB_LABEL)
                    raise HostError(
                        f"a Docker network named {self.spec.name} exists already"
                        + (f" (lab {owner})" if owner else " and is not a lab's"),
                        hint="run `ocfs2lab cleanup` if it is a lab's leftover, or pick another "
                        "network name",
                    )
            ipam = docker.types.IPAMConfig(
                pool_configs=[
                    docker.types.IPAMPool(
                        subnet=str(self.spec.subnet), gateway=str(self.spec.gateway)
                    )
                ]
            )
            self.network = _docker_call(
                "create network",
                self.client.networks.create,
                self.spec.name,
                driver="bridge",
                ipam=ipam,
                labels={LAB_LABEL: self.lab_id},
            )
        self.undo(self._remove, "remove network")

    def _remove(self) -> None:
        """Remove the network once no container is attached any more (Docker detaches the
        endpoints of a removed container shortly after the removal returns)."""

        def detached() -> bool:
            _docker_call("inspect network", self.network.reload)
            return not self.network.attrs.get("Containers")

        wait_until(detached, what=f"containers to leave {self.spec.name}", timeout=60)
        _docker_call("remove network", self.network.remove)


class ContainerNode(Machine, Lifecycle):
    """One privileged node container: created on enter, removed on exit.

    Args:
        client: Docker client of the host's engine.
        spec: The node's name (also container name and hostname), number and address.
        network: The Docker network it joins, with its fixed address.
        settings: Image, devices, privilege.
        lab_id: The lab's id, put on the container as a label.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        spec: NodeSpec,
        network: NetworkSpec,
        settings: ContainerSettings,
        lab_id: str,
    ) -> None:
        self.client = client
        self._spec = spec
        self.network = network
        self.settings = settings
        self.lab_id = lab_id
        self.container: Any = None
        Machine.__init__(self, DockerExecRunner(client, spec.name), f"container {spec.name}")

    @property
    def spec(self) -> NodeSpec:
        """Name, number and address."""
        return self._spec

    @property
    def kind(self) -> NodeKind:
        """Always ``"container"``."""
        return "container"

    def describe(self) -> str:
        """Name for messages."""
        return self.name

    def _status(self) -> str | None:
        """Docker's status of the container now (``None``: it does not exist)."""
        if self.container is None:
            return None
        try:
            self.container.reload()
        except docker.errors.DockerException:
            return None
        return str(self.container.status)

    @property
    def up(self) -> bool:
        """True while the container runs and is not paused."""
        return self._status() == "running"

    # -- capabilities (Docker's): kill, freeze, link -----------------------------------------
    # They act on the container, not on a kernel: every container of a host shares one
    # kernel, which the cluster sees as one OCFS2 node (no heartbeat death, no recovery).
    @property
    def running(self) -> bool:
        """True while the container exists and runs, paused or not."""
        return self._status() in ("running", "paused")

    def _live_container(self) -> Any:
        if self.container is None:
            raise LifecycleError(f"{self.name} does not exist", hint="use it inside `with`")
        return self.container

    def kill(self) -> None:
        """``docker kill``: the container's processes die (the host's kernel does not)."""
        _docker_call(f"kill {self.name}", self._live_container().kill)

    def freeze(self) -> None:
        """``docker pause``: the container's processes stop (cgroup freezer)."""
        _docker_call(f"pause {self.name}", self._live_container().pause)

    def thaw(self) -> None:
        """``docker unpause``."""
        _docker_call(f"unpause {self.name}", self._live_container().unpause)

    def cut_link(self) -> None:
        """Disconnect the container from its Docker network."""
        net = _docker_call("find network", self.client.networks.get, self.network.name)
        _docker_call(f"disconnect {self.name}", net.disconnect, self._live_container(), force=True)

    def heal_link(self) -> None:
        """Connect the container to its Docker network again, at its own address."""
        net = _docker_call("find network", self.client.networks.get, self.network.name)
        _docker_call(
            f"connect {self.name}",
            net.connect,
            self._live_container(),
            ipv4_address=str(self._spec.address),
        )

    def close(self) -> None:
        """Remove the container (the lifecycle's undo) and close the exec runner."""
        try:
            Lifecycle.close(self)
        finally:
            Machine.close(self)

    def _acquire(self) -> None:
        api = self.client.api
        s = self.settings
        with self.step("create container"):
            host_config = api.create_host_config(
                privileged=s.privileged,
                init=True,
                devices=[f"{d}:{d}:rwm" for d in s.devices],
            )
            endpoint = api.create_endpoint_config(ipv4_address=str(self._spec.address))
            # docker's stubs type this mapping of network -> endpoint as one endpoint.
            networking = api.create_networking_config(
                {self.network.name: endpoint}  # type: ignore[arg-type]
            )
            created = _docker_call(
                f"create container {self._spec.name}",
                api.create_container,
                s.image,
                command=list(s.command),
                name=self._spec.name,
                hostname=self._spec.name,
                labels={LAB_LABEL: self.lab_id},
                host_config=host_config,
                networking_config=networking,
                detach=True,
            )
            cid = created["Id"]
        self.undo(
            lambda: _docker_call("remove container", api.remove_container, cid, force=True),
            f"remove container {self._spec.name}",
        )
        with self.step("start container"):
            _docker_call(f"start container {self._spec.name}", api.start, cid)
            self.container = self.client.containers.get(cid)
