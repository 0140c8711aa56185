"""A VM cluster whose owner is killed with SIGKILL leaves nothing once reaped."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.process import spawn
from ocfs2lab.vm.qemu import proc_start_time
from ocfs2lab.wait import wait_until
from tests.support.procs import gone

pytestmark = pytest.mark.lab

OWNER = """
import json, sys, time
from ocfs2lab.clusters import VmCluster
c = VmCluster(1, name="crash", deploy=False).__enter__()
vm = c.vms[0]
print(json.dumps({
    "qemu": vm.machine.pid, "switch": c.switch.pid,
    "paths": [str(c.work_dir), str(c.switch.directory), str(vm.machine.work_dir),
              str(vm.machine.socket_dir)],
}), flush=True)
time.sleep(3600)
"""


def test_a_killed_owners_cluster_is_reaped(tmp_path: Path) -> None:
    owner = spawn([sys.executable, "-c", OWNER], log_path=tmp_path / "owner.log")
    try:
        line = wait_until(
            lambda: next(
                (ln for ln in owner.log_text(100_000).splitlines() if ln.startswith("{")), None
            ),
            what="the owner's cluster to boot",
            timeout=600,
            interval=0.5,
        )
        made = json.loads(line)
        qemu_start = proc_start_time(made["qemu"])
        assert qemu_start is not None
    finally:
        owner.process.send_signal(signal.SIGKILL)
        owner.wait(30)
    # The switch ends with its owner (its stdin closes); QEMU does not.
    assert proc_start_time(made["qemu"]) == qemu_start
    result = LocalRunner().run([str(Path(sys.executable).parent / "ocfs2lab"), "reap"], timeout=120)
    assert "reaped:" in result.stderr + result.stdout
    wait_until(
        lambda: gone(made["qemu"], qemu_start) or None,
        what="the orphaned QEMU to be gone",
        timeout=60,
    )
    assert [p for p in made["paths"] if Path(p).exists()] == []
