"""The examples, executed: the kill notebook runs top to bottom on a real 3-VM cluster."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from ocfs2lab.vm.qemu import run_root
from ocfs2lab.vm.switch import SWITCH_PREFIX

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _lab_files() -> set[Path]:
    runs = set(run_root().iterdir()) if run_root().is_dir() else set()
    return runs | set(Path(tempfile.gettempdir()).glob(f"{SWITCH_PREFIX}*"))


def test_the_kill_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    before = _lab_files()
    notebook = nbformat.read(EXAMPLES / "kill_recovery.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    joined = "\n".join(texts)
    assert "kill ocfs2-node-3" in joined and "0 lost" in joined
    assert "recovery_master" in joined  # the runs' table
    assert "journal_replay_end" in joined  # the kernel events' table
    assert (tmp_path / "kill-notebook-results" / "timeline.png").stat().st_size > 10_000
    assert (tmp_path / "kill-notebook-results" / "timeline.jsonl").exists()
    assert "closed" in joined
    # The notebook's cluster left nothing on this machine.
    assert _lab_files() - before == set()
