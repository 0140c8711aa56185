"""The kill notebook, executed top to bottom on a real 3-VM cluster of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.examples import EXAMPLES, orphans

pytestmark = pytest.mark.lab

#: Notebook outputs that show a value (as opposed to printed streams and errors).
DISPLAYED = ("execute_result", "display_data")


def test_the_kill_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    before = orphans()
    notebook = nbformat.read(EXAMPLES / "kill_recovery.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    # Saved as a user's Jupyter saves it, and read back: the timeline plot is an image in the
    # file, not the text "<Figure size ...>".
    executed = tmp_path / "kill_recovery.executed.ipynb"
    nbformat.write(notebook, executed)
    notebook = nbformat.read(executed, as_version=4)
    plot_cells = [c for c in notebook.cells if c.cell_type == "code" and ".plot(" in c.source]
    assert len(plot_cells) == 1
    shown = [o for o in plot_cells[0].outputs if o.get("output_type") in DISPLAYED]
    assert any("image/png" in o.get("data", {}) for o in shown), plot_cells[0].outputs
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = str(output.get("data", {}).get("text/plain", ""))
            assert not (text.startswith("<Figure") and "image/png" not in output["data"]), text
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
    assert orphans() - before == set()
