"""Owner state of the lab's directories, and the reaping of what dead owners left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ocfs2lab.vm.ownership import (
    SWITCH_PREFIX,
    SWITCH_STATE_FILE,
    claim_dir,
    proc_start_time,
    reap_stale,
    reap_stale_machines,
    reap_stale_switches,
    write_owner_state,
)


def _sleeper(*words: str) -> subprocess.Popen[bytes]:
    """A process whose command line carries ``words``."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *words])


def _orphan(state_file: Path) -> None:
    """Make the state's owner a process that no longer runs."""
    state = json.loads(state_file.read_text())
    state["owner_start"] = -1
    state_file.write_text(json.dumps(state))


def test_reap_stale_machines_leaves_live_owners(tmp_path: Path) -> None:
    mine = tmp_path / "node1-live"
    gone = tmp_path / "node2-dead"
    sockets = tmp_path / "o2vm-gone"
    for d in (mine, gone, sockets):
        d.mkdir()
    (mine / "state.json").write_text(
        json.dumps({"owner_pid": os.getpid(), "owner_start": proc_start_time(os.getpid())})
    )
    # A dead owner; its "qemu" pid is this test process, which must NOT be killed because
    # its command line does not name the run directory.
    (gone / "state.json").write_text(
        json.dumps(
            {
                "owner_pid": os.getpid(),
                "owner_start": -1,
                "qemu_pid": os.getpid(),
                "qemu_start": proc_start_time(os.getpid()),
                "socket_dir": str(sockets),
            }
        )
    )
    assert reap_stale_machines(tmp_path) == [gone]
    assert mine.exists() and not gone.exists() and not sockets.exists()


def test_a_claimed_directory_names_its_owner(tmp_path: Path) -> None:
    root = tmp_path / "run"
    work = claim_dir("cluster-lab-", root=root, hostname="lab")
    assert work.parent == root and work.name.startswith("cluster-lab-")
    state = json.loads((work / "state.json").read_text())
    assert state == {
        "owner_pid": os.getpid(),
        "owner_start": proc_start_time(os.getpid()),
        "work_dir": str(work),
        "hostname": "lab",
    }
    assert reap_stale_machines(root) == []  # its owner runs
    _orphan(work / "state.json")
    assert reap_stale_machines(root) == [work] and not work.exists()


def test_the_reaper_kills_what_a_dead_owner_started_there(tmp_path: Path) -> None:
    directory = tmp_path / f"{SWITCH_PREFIX}x"
    directory.mkdir()
    started = _sleeper("--sock", str(directory / "sw"))
    elsewhere = _sleeper("--sock", str(tmp_path / "other"))
    try:
        state = write_owner_state(
            directory,
            file=SWITCH_STATE_FILE,
            processes={"switch": started.pid, "other": elsewhere.pid},
        )
        assert json.loads(state.read_text())["switch_start"] == proc_start_time(started.pid)
        _orphan(state)
        assert reap_stale_switches(tmp_path) == [directory]
        assert started.wait(10) == -signal.SIGKILL
        # Its command line does not name the directory: not the process the state meant.
        assert elsewhere.poll() is None
    finally:
        for proc in (started, elsewhere):
            proc.kill()
            proc.wait(10)


def test_reap_stale_reaps_run_and_switch_directories(tmp_path: Path) -> None:
    run, temp = tmp_path / "run", tmp_path / "tmp"
    work = claim_dir("node1-", root=run, hostname="node1")
    switch = claim_dir(SWITCH_PREFIX, root=temp, file=SWITCH_STATE_FILE)
    unrelated = claim_dir("o2vm-", root=temp)  # a socket directory: not a switch's
    _orphan(work / "state.json")
    _orphan(switch / SWITCH_STATE_FILE)
    assert reap_stale(run=run, temp=temp) == [work, switch]
    assert unrelated.exists()
