"""Helpers of the tests that run the examples: run a script, find a probe line, and find
what an example left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ocfs2lab.vm.qemu import run_root
from ocfs2lab.vm.recipe import PROBE_ASSETS, PROBE_SOURCE
from ocfs2lab.vm.switch import SWITCH_PREFIX

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _owner(path: Path) -> int | None:
    try:
        pid = json.loads(path.read_text()).get("owner_pid")
    except (OSError, ValueError):
        return None  # being made right now, or not the lab's
    return pid if isinstance(pid, int) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphans() -> set[Path]:
    """Run and switch directories of lab machines whose owner process is gone: what an
    example that exited would have left behind (other tests' live labs are not counted)."""
    runs = list(run_root().iterdir()) if run_root().is_dir() else []
    switches = list(Path(tempfile.gettempdir()).glob(f"{SWITCH_PREFIX}*"))
    owned = [(d, _owner(d / "state.json")) for d in runs]
    owned += [(d, _owner(d / "owner")) for d in switches]
    return {d for d, pid in owned if pid is not None and not _alive(pid)}


def probe_line(text: str) -> int:
    lines = (PROBE_ASSETS / PROBE_SOURCE).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def run_example(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout
