"""Session fixtures for integration tests: real transports on this machine.

A throwaway sshd on 127.0.0.1 and a private dockerd (with a busybox container) are started
once per session. A test is skipped only when the program itself is not installed; any
failure to start one is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ocfs2lab.runner.base import Runner
from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.ssh import SshRunner
from tests.support.dockerd import (
    PrivateDockerd,
    busybox_binary,
    busybox_container,
    busybox_image,
    dockerd_binary,
    private_dockerd,
)
from tests.support.sshd import ThrowawaySshd, sshd_binary, throwaway_sshd

TRANSPORTS = ["local", "ssh", "docker"]


@pytest.fixture(scope="session")
def throwaway_sshd_server() -> Iterator[ThrowawaySshd]:
    """A throwaway sshd on 127.0.0.1 (skipped only when sshd is not installed)."""
    if sshd_binary() is None:
        pytest.skip("sshd is not installed (openssh-server)")
    with throwaway_sshd() as server:
        yield server


@pytest.fixture(scope="session")
def private_engine() -> Iterator[PrivateDockerd]:
    """A private dockerd with the busybox test image (skipped only when not installed)."""
    if dockerd_binary() is None:
        pytest.skip("dockerd is not installed (docker.io)")
    if busybox_binary() is None:
        pytest.skip("busybox is not installed (busybox-static)")
    with private_dockerd() as engine:
        busybox_image(engine.client)
        yield engine


@pytest.fixture(scope="session")
def busybox_ctr(private_engine: PrivateDockerd) -> Iterator[Any]:
    """A running busybox container with no network."""
    with busybox_container(private_engine.client, "o2test-contract") as container:
        yield container


@pytest.fixture(scope="session")
def local_runner() -> Iterator[LocalRunner]:
    with LocalRunner() as runner:
        yield runner


@pytest.fixture(scope="session")
def ssh_runner(throwaway_sshd_server: ThrowawaySshd) -> Iterator[SshRunner]:
    with SshRunner(throwaway_sshd_server.target) as runner:
        runner.connect()
        yield runner


@pytest.fixture(scope="session")
def docker_runner(private_engine: PrivateDockerd, busybox_ctr: Any) -> Iterator[DockerExecRunner]:
    with DockerExecRunner(private_engine.client, busybox_ctr.id) as runner:
        yield runner


@pytest.fixture(params=TRANSPORTS)
def runner(request: pytest.FixtureRequest) -> Runner:
    """Each transport in turn: the contract suite runs against all of them."""
    value: Runner = request.getfixturevalue(f"{request.param}_runner")
    return value
