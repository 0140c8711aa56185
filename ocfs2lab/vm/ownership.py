"""Who owns the lab's files on this machine, and the reaping of what dead owners left.

Part of the VM layer. What the lab starts here can outlive the process that started it when
that process dies without tearing down: a QEMU machine's overlay and sockets, a VDE switch, a
VM cluster's shared disk and key. Each lives in a directory of its own holding an owner state:
a JSON file that names the owning process by its pid and start time (pids are reused), and
each process the owner started there the same way (``qemu_pid`` and ``qemu_start``).

* [`write_owner_state`][ocfs2lab.vm.ownership.write_owner_state] is the one writer, and
  [`claim_dir`][ocfs2lab.vm.ownership.claim_dir] makes a new directory with its state (a
  machine's or a VM cluster's run directory under ``<cache>/run``, a switch's under ``/tmp``);
* [`reap_owned`][ocfs2lab.vm.ownership.reap_owned] is the one reaper: it removes the
  directories whose owner no longer runs, after a SIGKILL to each process they name that is
  still the same process. [`reap_stale`][ocfs2lab.vm.ownership.reap_stale] reaps both places
  ([`reap_stale_machines`][ocfs2lab.vm.ownership.reap_stale_machines],
  [`reap_stale_switches`][ocfs2lab.vm.ownership.reap_stale_switches]).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from attrs import frozen

from ocfs2lab.vm.recipe import cache_root

log = logging.getLogger(__name__)

#: The owner state of a run directory (a machine's or a VM cluster's).
STATE_FILE = "state.json"
#: The owner state of a switch directory.
SWITCH_STATE_FILE = "owner"
#: Prefix of the lab's directories under the temporary directory (sockets, switches): Unix
#: socket paths must stay short (108 bytes), so they cannot live under the cache.
TEMP_PREFIX = "o2vm-"
#: Prefix of a switch's directory under the temporary directory.
SWITCH_PREFIX = f"{TEMP_PREFIX}sw-"


def proc_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (identifies it despite pid reuse)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _cmdline_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def run_root() -> Path:
    """Where running machines keep their files (``<cache>/run``)."""
    return cache_root() / "run"


# -- writing -------------------------------------------------------------------------------------
def _process_fields(role: str, pid: int | None) -> dict[str, int | None]:
    """How a state names a process: its pid and start time, under ``<role>_``."""
    return {f"{role}_pid": pid, f"{role}_start": proc_start_time(pid) if pid else None}


def write_owner_state(
    directory: Path,
    *,
    file: str = STATE_FILE,
    processes: Mapping[str, int | None] | None = None,
    **fields: object,
) -> Path:
    """Name this process the owner of ``directory``: (re)write its owner state, atomically.

    The state holds ``owner_pid``, ``owner_start`` and ``work_dir`` (the directory), then
    ``fields`` (a ``socket_dir`` under ``/tmp`` to remove with the directory, a ``hostname``
    for people), then ``<role>_pid`` and ``<role>_start`` of each process started there.

    Args:
        directory: The owned directory.
        file: The state file's name in it.
        processes: Pid by role (``{"qemu": pid}``) of the processes to kill with the
            directory; ``None`` for one that does not run yet.
        fields: More fields (JSON values).

    Returns:
        The state file.
    """
    state: dict[str, object] = {**_process_fields("owner", os.getpid()), "work_dir": str(directory)}
    state.update(fields)
    for role, pid in (processes or {}).items():
        state.update(_process_fields(role, pid))
    path = directory / file
    tmp = directory / f"{file}.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)
    return path


def claim_dir(
    prefix: str,
    *,
    root: str | os.PathLike[str] | None = None,
    file: str = STATE_FILE,
    **fields: object,
) -> Path:
    """Make a new directory ``<root>/<prefix>XXXXXXXX`` owned by this process.

    Its owner state ([`write_owner_state`][ocfs2lab.vm.ownership.write_owner_state]) is in
    place when it is returned, so [`reap_stale`][ocfs2lab.vm.ownership.reap_stale] removes it
    once this process is gone; while it runs, removing it is the caller's job.

    Args:
        prefix: Start of the directory's name (``cluster-<name>-``).
        root: Where to make it (created if missing); default
            [`run_root`][ocfs2lab.vm.ownership.run_root].
        file: The state file's name.
        fields: More fields of the state (``hostname``).

    Returns:
        The new directory.
    """
    parent = Path(root) if root is not None else run_root()
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        write_owner_state(directory, file=file, processes=None, **fields)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


# -- reaping -------------------------------------------------------------------------------------
def _same_process(state: dict[str, object], role: str) -> int | None:
    """The pid of the state's ``role`` process while that pid is still the same process."""
    pid = state.get(f"{role}_pid")
    if isinstance(pid, int) and proc_start_time(pid) == state.get(f"{role}_start"):
        return pid
    return None


@frozen
class Owned:
    """One directory the lab owns on this machine.

    Attributes:
        path: The directory.
        kind: ``"run"`` (a machine's or a VM cluster's, under ``<cache>/run``) or
            ``"switch"`` (under the temporary directory).
        name: Its hostname (a machine's, a cluster's), or the directory's name.
        owner_pid: The owning process.
        alive: Whether that owner still runs (``False``: reaping removes it).
    """

    path: Path
    kind: str
    name: str
    owner_pid: int | None
    alive: bool


def _run_dirs(run: str | os.PathLike[str] | None) -> list[Path]:
    """The run directories (machines, VM clusters) under ``run`` (default ``<cache>/run``)."""
    base = Path(run) if run else run_root()
    return sorted(base.iterdir()) if base.is_dir() else []


def _switch_dirs(temp: str | os.PathLike[str] | None) -> list[Path]:
    """The switch directories under ``temp`` (default: the temporary directory)."""
    return sorted(Path(temp or tempfile.gettempdir()).glob(f"{SWITCH_PREFIX}*"))


def _read_state(directory: Path, file: str) -> dict[str, object] | None:
    """The owner state in ``directory``, or ``None`` when there is no readable one."""
    try:
        state = json.loads((directory / file).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def owned_dirs(
    *, run: str | os.PathLike[str] | None = None, temp: str | os.PathLike[str] | None = None
) -> list[Owned]:
    """The lab's directories on this machine with an owner state: live owners' and dead ones'.

    Args:
        run: Where the run directories are (default ``<cache>/run``).
        temp: Where the switch directories are (default: the temporary directory).
    """
    found = []
    places = [
        *(("run", d, STATE_FILE) for d in _run_dirs(run)),
        *(("switch", d, SWITCH_STATE_FILE) for d in _switch_dirs(temp)),
    ]
    for kind, directory, file in places:
        state = _read_state(directory, file)
        if state is None:
            continue
        pid = state.get("owner_pid")
        found.append(
            Owned(
                directory,
                kind,
                str(state.get("hostname") or directory.name),
                pid if isinstance(pid, int) else None,
                _same_process(state, "owner") is not None,
            )
        )
    return found


def reap_owned(directories: Iterable[Path], *, file: str = STATE_FILE) -> list[Path]:
    """Remove those of ``directories`` whose owner no longer runs, and what they started.

    For each directory whose owner state ``file`` names an owner that no longer runs: SIGKILL
    each process the state names (``<role>_pid``) that is still the same process (its start
    time) and whose command line names the directory, remove the socket directory it names
    (``socket_dir``, only an ``o2vm-`` one), then remove the directory. Directories without
    a readable state and those of live owners are left alone.

    Returns:
        The directories removed.
    """
    removed: list[Path] = []
    for directory in directories:
        state = _read_state(directory, file)
        if state is None or _same_process(state, "owner") is not None:
            continue  # not an owner state, or the owner still runs
        roles = [k.removesuffix("_pid") for k in state if k.endswith("_pid") and k != "owner_pid"]
        for role in roles:
            pid = _same_process(state, role)
            if pid is not None and str(directory).encode() in _cmdline_of(pid):
                log.warning("reaping stale %s pid %d of %s", role, pid, directory)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        sockets = state.get("socket_dir")
        if isinstance(sockets, str) and Path(sockets).name.startswith(TEMP_PREFIX):
            shutil.rmtree(sockets, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def reap_stale_machines(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Clean up the run directories (machines, VM clusters) of owners that died.

    [`reap_owned`][ocfs2lab.vm.ownership.reap_owned] on each directory under ``root``
    (default ``<cache>/run``): a machine's QEMU process is killed (only if its pid is still
    the same process and its command line names the run directory), then the directory and
    the machine's socket directory are removed. Directories of live owners are left alone.

    Returns:
        The run directories removed.
    """
    return reap_owned(_run_dirs(root))


def reap_stale_switches(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove switch directories whose owner died (and their switch, by its recorded pid).

    A switch normally ends with its owner (its stdin closes); the pid is still checked
    against its recorded start time (and its command line) before any signal.

    Args:
        root: Where the switch directories are (default: the temporary directory).

    Returns:
        The directories removed.
    """
    return reap_owned(_switch_dirs(root), file=SWITCH_STATE_FILE)


def reap_stale(
    *, run: str | os.PathLike[str] | None = None, temp: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Remove everything owners that died left: run directories, then switch directories.

    Args:
        run: Where the run directories are (default ``<cache>/run``).
        temp: Where the switch directories are (default: the temporary directory).

    Returns:
        The directories removed.
    """
    return [*reap_stale_machines(run), *reap_stale_switches(temp)]
