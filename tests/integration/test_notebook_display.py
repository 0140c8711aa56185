"""How the kill notebook shows its timeline plot, checked in a real Jupyter kernel without a
cluster: its own set-up lines, then the plot of a kill the lab recorded. The plot is an
image (image/png) only once inline display is on; without it, the cell shows the text
``<Figure size 1200x390 with 1 Axes>``, as the notebook did before. The notebook itself runs
on a real cluster in tests/lab/test_example_notebook.py, which checks the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.examples import EXAMPLES

pytestmark = pytest.mark.integration

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "timelines" / "kill-node2-of-2.jsonl"
PLOT = f"""
from ocfs2lab.observe.timeline import Timeline

timeline = Timeline.load_jsonl({str(CAPTURED)!r})
fault = next(e for e in timeline.events() if e.kind.value == "fault_injected")
figure = timeline.plot(origin=fault.time, since=fault.time - 5, until=fault.time + 25,
                       unknown=False, title="kill of node 2")
figure
"""


def setup_lines() -> str:
    """The IPython magics of the notebook's code cells (``%matplotlib inline``)."""
    cells = json.loads((EXAMPLES / "kill_recovery.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(ln for cell in code for ln in cell.splitlines() if ln.startswith("%"))


def run_cells(*sources: str) -> list[dict[str, Any]]:
    """Execute cells in a fresh python3 kernel; the last cell's outputs."""
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    nbclient = pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    outputs: list[dict[str, Any]] = notebook.cells[-1].outputs
    return outputs


def test_the_notebooks_plot_cell_shows_an_image() -> None:
    magics = setup_lines()
    assert "%matplotlib inline" in magics
    outputs = run_cells(magics or "pass", PLOT)
    shown = [o for o in outputs if o["output_type"] in ("execute_result", "display_data")]
    assert len(shown) == 1 and "image/png" in shown[0]["data"], outputs


def test_without_inline_display_the_plot_is_only_text() -> None:
    outputs = run_cells("pass", PLOT)
    data = [o.get("data", {}) for o in outputs]
    assert data and all("image/png" not in d for d in data), outputs
    assert str(data[0]["text/plain"]).startswith("<Figure size")
