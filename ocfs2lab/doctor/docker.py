"""Docker on this machine: its command line, its daemon, and whether an engine answers.

The lab's container topology runs inside the lab VM, so here Docker is needed only by the
integration tests and by ``ocfs2lab up`` without ``--ssh``:
[`docker_check`][ocfs2lab.doctor.docker.docker_check] says so.
"""

from __future__ import annotations

import os

import docker as docker_sdk
from attrs import frozen

from ocfs2lab.doctor.programs import Tool, parse_tool_version, run_program
from ocfs2lab.doctor.report import Check
from ocfs2lab.runner.base import CommandResult, Runner

__all__ = [
    "DEFAULT_DOCKER_ENDPOINT",
    "DOCKERD",
    "DOCKER_CLI",
    "DOCKER_TIMEOUT",
    "DockerFacts",
    "diagnose_docker",
    "docker_check",
    "ping_docker",
]

#: Seconds the Docker engine gets to answer a ping.
DOCKER_TIMEOUT = 3.0
#: Where the docker SDK looks for the engine when ``$DOCKER_HOST`` is unset.
DEFAULT_DOCKER_ENDPOINT = "unix:///var/run/docker.sock"

#: The Docker programs doctor asks for their versions (neither is needed by the lab VM).
DOCKER_CLI = Tool(
    "docker",
    ("--version",),
    r"Docker version ([^,\s]+)",
    "docker.io",
    "the Docker command line",
    "",
)
DOCKERD = Tool(
    "dockerd",
    ("--version",),
    r"Docker version ([^,\s]+)",
    "docker.io",
    "the Docker engine",
    "",
)


@frozen
class DockerFacts:
    """What doctor learned about Docker on this machine.

    Attributes:
        cli: Result of ``docker --version``.
        daemon: Result of ``dockerd --version``.
        engine_version: Version of the engine that answered a ping, ``None`` when none did.
        engine_error: Why no engine answered.
        endpoint: Where the engine was looked for (``$DOCKER_HOST`` or the default socket).
    """

    cli: CommandResult
    daemon: CommandResult
    engine_version: str | None = None
    engine_error: str | None = None
    endpoint: str = DEFAULT_DOCKER_ENDPOINT


def ping_docker(timeout: float = DOCKER_TIMEOUT) -> tuple[str | None, str | None]:
    """Ping this machine's Docker engine (``$DOCKER_HOST`` or the default socket).

    Returns:
        The engine's version and ``None``, or ``None`` and why it did not answer.
    """
    client = None
    try:
        client = docker_sdk.from_env(timeout=int(max(1, timeout)))
        client.ping()
        version = client.version().get("Version")
        return (str(version) if version else "unknown version"), None
    except (docker_sdk.errors.DockerException, OSError) as err:
        return None, str(err)[:200]
    finally:
        if client is not None:
            client.close()


def docker_check(facts: DockerFacts) -> Check:
    """Judge Docker on this machine: the lab's container topology runs inside the lab VM,
    so here it is needed only by the integration tests (which start their own ``dockerd``)
    and by ``ocfs2lab up`` / ``status`` without ``--ssh``."""
    parts = []
    cli = parse_tool_version(DOCKER_CLI, facts.cli.stdout + facts.cli.stderr)
    daemon = parse_tool_version(DOCKERD, facts.daemon.stdout + facts.daemon.stderr)
    parts.append(f"docker CLI {cli}" if facts.cli.ok and cli else "no docker CLI")
    parts.append(f"dockerd {daemon}" if facts.daemon.ok and daemon else "no dockerd")
    meaning = (
        "the container topology runs inside the lab VM anyway; on this machine Docker is "
        "needed only for the integration tests and for `ocfs2lab up` without --ssh"
    )
    if facts.engine_version is not None:
        return Check(
            "docker", "ok", f"engine {facts.engine_version} answers; {', '.join(parts)}", meaning
        )
    found = f"no engine answers at {facts.endpoint} ({facts.engine_error}); {', '.join(parts)}"
    if facts.daemon.ok:
        fix = (
            "nothing for the lab VM or the integration tests (they start their own dockerd); "
            "for `ocfs2lab up` here: `systemctl start docker`"
        )
    else:
        fix = "apt-get install docker.io (the integration tests start its dockerd)"
    return Check("docker", "warn", found, meaning, fix)


def diagnose_docker(runner: Runner) -> Check:
    """Ask the Docker programs for their versions, ping the engine and judge it all."""
    cli, _ = run_program(runner, [DOCKER_CLI.name, *DOCKER_CLI.args])
    daemon, _ = run_program(runner, [DOCKERD.name, *DOCKERD.args])
    version, error = ping_docker()
    endpoint = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_ENDPOINT
    return docker_check(DockerFacts(cli, daemon, version, error, endpoint))
