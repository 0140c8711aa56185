"""Runners: the only place processes start (local with ``sh``, over one multiplexed SSH
connection, through ``docker exec``), and the background processes of the lab.

Every command gets a timeout and returns a [`CommandResult`][ocfs2lab.runner.base.CommandResult];
a failure raises `CommandFailed` with the command, its exit code and its output. This layer
sits above `errors`, `spec` and `formats`, below everything that runs things.
"""

from ocfs2lab.errors import SpawnError
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import Spawned, spawn
from ocfs2lab.runner.ssh import SshRunner, SshTarget

__all__ = [
    "CommandResult",
    "DockerExecRunner",
    "LocalRunner",
    "Runner",
    "SpawnError",
    "Spawned",
    "SshRunner",
    "SshTarget",
    "spawn",
]
