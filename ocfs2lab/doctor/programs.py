"""The programs the lab runs on this machine: QEMU, qemu-img, the image build tools, vde2, ssh.

Each is a [`Tool`][ocfs2lab.doctor.programs.Tool], run with its version option through a
[`Runner`][ocfs2lab.runner.base.Runner] ([`run_program`][ocfs2lab.doctor.programs.run_program],
which also looks in the sbin directories a non-root PATH lacks);
[`parse_tool_version`][ocfs2lab.doctor.programs.parse_tool_version] reads the version it printed
and [`tool_check`][ocfs2lab.doctor.programs.tool_check] judges the result.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from attrs import frozen

from ocfs2lab.doctor.report import Check
from ocfs2lab.runner.base import CommandResult, Runner
from ocfs2lab.runner.local import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND

__all__ = [
    "QEMU",
    "SBIN_DIRS",
    "TOOLS",
    "TOOL_TIMEOUT",
    "Tool",
    "diagnose_tool",
    "first_line",
    "parse_tool_version",
    "run_program",
    "tool_check",
]

#: Seconds each program gets to say its version (or anything else doctor asks).
TOOL_TIMEOUT = 10.0
#: Where Debian installs administrator programs; a non-root user's PATH often lacks them.
SBIN_DIRS = ("/usr/sbin", "/sbin")


@frozen
class Tool:
    """A program the lab runs on this machine and how doctor asks it for its version.

    Attributes:
        name: The program, run by name (as the library runs it).
        args: Arguments that make it print its version (or anything, for a presence check).
        version: Regular expression over stdout + stderr whose first group is the version
            shown; ``None`` when the program has no version option (presence only).
        package: The Debian package that installs it.
        role: What the lab uses it for.
        without: What cannot work without it.
        any_exit: A non-zero exit still means the program is there (``ssh-keygen --help``).
    """

    name: str
    args: tuple[str, ...]
    version: str | None
    package: str
    role: str
    without: str
    any_exit: bool = False


QEMU = Tool(
    "qemu-system-x86_64",
    ("--version",),
    r"QEMU emulator version (.+)",
    "qemu-system-x86",
    "boots the lab VM (the default host) and VM nodes",
    "no lab VM can boot: everything that needs OCFS2 or DRBD runs inside one",
)
TOOLS: tuple[Tool, ...] = (
    QEMU,
    Tool(
        "qemu-img",
        ("--version",),
        r"qemu-img version (.+)",
        "qemu-utils",
        "makes each VM's copy-on-write overlay over the cached image",
        "no VM can start: each boots from a qcow2 overlay made by qemu-img",
    ),
    Tool(
        "debootstrap",
        ("--version",),
        r"debootstrap (\S+)",
        "debootstrap",
        "builds the lab image's Debian root file system",
        "the lab image cannot be built (a cached image still boots)",
    ),
    Tool(
        "mkfs.ext4",
        ("-V",),
        r"mke2fs (\S+)",
        "e2fsprogs",
        "makes the lab image's root file system (mkfs.ext4 -d) and checks it (e2fsck)",
        "the lab image cannot be built (a cached image still boots)",
    ),
    Tool(
        "vde_switch",
        ("--version",),
        r"VDE (\S+)",
        "vde2",
        "the interconnect between VM nodes (one kernel per node)",
        "clusters of VM nodes, the ones for node-death experiments, have no interconnect "
        "(the lab VM with container nodes does not need it)",
    ),
    Tool(
        "ssh",
        ("-V",),
        r"OpenSSH_([^,\n]+)",
        "openssh-client",
        "carries every command to the lab VM, VM nodes and --ssh hosts",
        "the library cannot reach the lab VM, VM nodes or --ssh hosts",
    ),
    Tool(
        "ssh-keygen",
        ("--help",),
        None,
        "openssh-client",
        "makes each VM's fresh ed25519 key",
        "no VM can start: each gets its own key from ssh-keygen",
        any_exit=True,
    ),
)


def parse_tool_version(tool: Tool, text: str) -> str | None:
    """The version ``tool`` printed in ``text`` (its stdout + stderr), or ``None``.

    >>> parse_tool_version(QEMU, "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\\n")
    '7.2.22 (Debian 1:7.2+dfsg-7)'
    """
    if tool.version is None:
        return None
    match = re.search(tool.version, text)
    return match.group(1).strip() if match else None


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text``, stripped, at most ``limit`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:limit] if lines else ""


def _reinstall(package: str) -> str:
    return f"apt-get install --reinstall {package}"


def tool_check(tool: Tool, result: CommandResult, *, path: str | None = None) -> Check:
    """Judge ``tool`` from the result of running it with ``tool.args``.

    Args:
        tool: The program.
        result: What running it gave (exit status 127: not found, 126: not executable).
        path: Where it was found instead when not on PATH (``/usr/sbin/debootstrap``).
    """
    name = tool.name
    text = result.stdout + result.stderr
    if result.timed_out:
        return Check(
            name,
            "error",
            f"`{result.command_line}` did not answer within {result.duration:.0f} s",
            f"{name} is installed but hangs: {tool.without}",
            _reinstall(tool.package),
        )
    if result.exit_code == EXIT_NOT_FOUND:
        return Check(
            name,
            "missing",
            f"{name} is not installed (not on PATH nor in {', '.join(SBIN_DIRS)})",
            tool.without,
            f"apt-get install {tool.package}",
        )
    if result.exit_code == EXIT_NOT_EXECUTABLE:
        return Check(
            name,
            "error",
            f"{name} cannot be executed: {first_line(text)}",
            tool.without,
            _reinstall(tool.package),
        )
    if result.exit_code != 0 and not tool.any_exit:
        return Check(
            name,
            "error",
            f"`{result.command_line}` exited with {result.exit_code}: {first_line(text)}",
            f"{name} is installed but does not run: {tool.without}",
            _reinstall(tool.package),
        )
    version = parse_tool_version(tool, text)
    if version is not None:
        found = f"{name} {version}"
    elif tool.version is None:
        found = f"{name} is installed (it has no version option)"
    else:
        found = f"{name} is installed (version not recognised: {first_line(text)!r})"
    if path is not None:
        return Check(
            name,
            "warn",
            f"{found}, at {path}, which is not on PATH",
            f"the library runs {name} by name, so it fails for this user: {tool.without}",
            f"run the lab as root (root's PATH has {os.path.dirname(path)}; image builds "
            f"need root anyway), or add {os.path.dirname(path)} to PATH",
        )
    return Check(name, "ok", found, tool.role)


def run_program(
    runner: Runner, argv: Sequence[str], *, timeout: float = TOOL_TIMEOUT
) -> tuple[CommandResult, str | None]:
    """Run ``argv`` (a failing command is a result, not an exception); when its program is
    not on PATH, try it in `SBIN_DIRS`.

    Returns:
        The result, and the path the program was found at when that was not through PATH.
    """
    result = runner.run(list(argv), check=False, timeout=timeout)
    if result.exit_code != EXIT_NOT_FOUND or result.timed_out or "/" in argv[0]:
        return result, None
    for directory in SBIN_DIRS:
        path = f"{directory}/{argv[0]}"
        other = runner.run([path, *argv[1:]], check=False, timeout=timeout)
        if other.exit_code != EXIT_NOT_FOUND or other.timed_out:
            return other, path
    return result, None


def diagnose_tool(runner: Runner, tool: Tool) -> list[Check]:
    """Run ``tool`` with its version arguments (from `SBIN_DIRS` when it is not on PATH)
    and judge it: one check, in a list."""
    result, path = run_program(runner, [tool.name, *tool.args])
    return [tool_check(tool, result, path=path)]
