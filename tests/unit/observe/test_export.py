"""Exports: flat records, DataFrame, plot (Agg), JSON lines round trip."""

from __future__ import annotations

import ast
import builtins
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure

from ocfs2lab import observe
from ocfs2lab.errors import ParseError
from ocfs2lab.observe import (
    EventKind,
    LabEventKind,
    MissingDependency,
    Timeline,
)
from ocfs2lab.observe.export import RECORD_COLUMNS

from .conftest import (
    BUG_LINE,
    DOMAIN,
    KILL_SURVIVOR,
    NOISE,
    PARTITION_NODE1,
    PARTITION_NODE2,
    T0,
    feed,
)

DRBD = "[   12.000000] block drbd0: role( Secondary -> Primary ) disk( Inconsistent -> UpToDate )"
JOIN_LINES = [
    f"[   61.000100] o2dlm: Joining domain {DOMAIN}",
    "[   61.000101] ( 1 2 ) 2 nodes",
]


def rich_timeline() -> Timeline:
    """Kernel events of three nodes (kill, partition, noise, an error, a join with members,
    a DRBD state change) and lab events of every span kind."""
    tl = Timeline(origin=T0 - 2)
    tl.record(LabEventKind.PHASE_BEGIN, "workload", time=T0 - 1.5)
    tl.record(LabEventKind.COMMAND_STARTED, "mount /mnt", node="node3", time=T0 - 1.4)
    tl.record(
        LabEventKind.COMMAND_ENDED,
        "mount /mnt",
        node="node3",
        time=T0 - 1.0,
        data={"exit_code": 0, "duration": 0.4},
    )
    for i in range(20):
        tl.record(
            LabEventKind.WRITE_ACKED,
            f"/mnt/f@{i * 4096}+4096",
            node="node1",
            time=T0 - 1 + i * 0.05,
            data={"seq": i, "offset": i * 4096},
        )
    tl.record(LabEventKind.FAULT_INJECTED, "kill", node="node2", time=T0 - 0.5)
    feed(tl, "node1", [*JOIN_LINES, *KILL_SURVIVOR, *NOISE, DRBD], start=T0)
    feed(tl, "node2", PARTITION_NODE2, start=T0 + 0.1)
    feed(tl, "node3", [*PARTITION_NODE1[:2], BUG_LINE], start=T0 + 0.2)
    tl.record(LabEventKind.FAULT_HEALED, "kill", node="node2", time=T0 + 4)
    tl.record(LabEventKind.NOTE, "revived", node="node2", time=T0 + 4.5)
    tl.record(LabEventKind.FAULT_INJECTED, "partition", node="node3", time=T0 + 5)  # never healed
    tl.record(LabEventKind.PHASE_END, "workload", time=T0 + 6)
    return tl


def test_records_are_flat_and_complete() -> None:
    tl = rich_timeline()
    records = tl.to_records()
    assert len(records) == len(tl)
    assert all(tuple(r) == RECORD_COLUMNS for r in records)
    evicted = next(r for r in records if r["kind"] == "dlm_evicted")
    assert evicted["node"] == "node1" and evicted["about"] == 2 and evicted["domain"] == DOMAIN
    assert evicted["t"] == pytest.approx(evicted["time"] - tl.origin)
    assert evicted["source"] == "kernel" and evicted["subsystem"] == "o2cb"
    idle = next(r for r in records if r["kind"] == "o2net_idle" and r["node"] == "node1")
    assert idle["duration_ms"] == 5214 and idle["kernel_time"] == pytest.approx(301.183272)
    ended = next(r for r in records if r["kind"] == "command_ended")
    assert ended["data"] == {"exit_code": 0, "duration": 0.4} and ended["detail"] == "mount /mnt"
    bug = next(r for r in records if r["kind"] == "kernel_bug")
    assert bug["is_error"] is True and bug["raw"] == BUG_LINE
    json.dumps(records)  # plain data


def test_dataframe() -> None:
    tl = rich_timeline()
    frame = tl.to_dataframe()
    assert len(frame) == len(tl)
    assert list(frame.columns) == ["time", "when", *RECORD_COLUMNS[1:]]
    assert str(frame["when"].dt.tz) == "UTC"
    assert set(frame["node"].dropna().unique()) == {"node1", "node2", "node3"}
    kill = frame[(frame["node"] == "node1") & (frame["source"] == "kernel")]
    assert list(kill["kind"])[:3] == ["dlm_join", "o2net_idle", "o2net_lost"]
    assert frame["is_error"].sum() == 1


def test_plot_writes_a_png(tmp_path: Path) -> None:
    tl = rich_timeline()
    fig = tl.plot(title="kill node2")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["node1", "node2", "node3"]
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    for name in (
        "o2net_lost",
        "recovery_end",
        "kernel_bug",
        "fault",
        "phase",
        "command",
        "write acked",
        "note",
    ):
        assert name in labels
    out = tmp_path / "timeline.png"
    fig.savefig(out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_plot_into_given_axes_and_empty_timeline(tmp_path: Path) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    tl = rich_timeline()
    tl.record(LabEventKind.COMMAND_STARTED, "sync", time=T0 + 1)  # lab-wide: its own lane
    assert tl.plot(ax, unknown=False) is fig
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "lab"
    legend = ax.get_legend()
    assert legend is not None
    assert "unknown" not in [t.get_text() for t in legend.get_texts()]
    empty = Timeline().plot()
    empty.savefig(tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_jsonl_round_trip(tmp_path: Path) -> None:
    tl = rich_timeline()
    tl.meta["kernel"] = {"release": "6.12.117-ocfs2lab", "key": "ab" * 32, "patches": []}
    path = tl.save_jsonl(tmp_path / "timeline.jsonl")
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "ocfs2lab.timeline"
    assert len(lines) == len(tl) + 1
    back = Timeline.load_jsonl(path)
    assert back.origin == tl.origin
    assert back.meta == tl.meta  # the kernel the events came from travels with them
    assert back.events() == tl.events()
    join = back.first(EventKind.DLM_JOIN)
    assert join is not None and join.kernel is not None and join.kernel.members == (1, 2)
    fence = back.first(EventKind.QUORUM_FENCE)
    assert fence is not None and fence.kernel is not None and fence.kernel.mlog is not None
    drbd = back.first(EventKind.DRBD_STATE)
    assert drbd is not None and drbd.kernel is not None
    assert drbd.kernel.change("role") == ("Secondary", "Primary")
    # A loaded timeline keeps working: new events get later seqs.
    new = back.record(LabEventKind.NOTE, "after load", time=T0 + 100)
    assert new.seq > max(e.seq for e in tl.events())


def test_load_jsonl_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(ParseError, match="header"):
        Timeline.load_jsonl(bad)
    bad.write_text("")
    with pytest.raises(ParseError, match="empty"):
        Timeline.load_jsonl(bad)
    bad.write_text('{"format": "ocfs2lab.timeline", "version": 1, "origin": 0}\nnot json\n')
    with pytest.raises(ParseError, match="line 2"):
        Timeline.load_jsonl(bad)
    bad.write_text('{"format": "ocfs2lab.timeline", "version": 1, "origin": 0}\n{"time": 1}\n')
    with pytest.raises(ParseError, match="not an event"):
        Timeline.load_jsonl(bad)


def test_load_jsonl_tolerates_unknown_kinds_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "future.jsonl"
    path.write_text(
        '{"format": "ocfs2lab.timeline", "version": 1, "origin": 5}\n'
        '{"time": 6, "seq": 1, "node": "n", "kind": "brand_new", '
        '"kernel": {"kind": "brand_new", "raw": "x", "message": "x", "colour": "red"}}\n'
        '{"time": 7, "seq": 2, "node": null, "kind": "lab_future", "lab": {"detail": "d"}}\n'
    )
    tl = Timeline.load_jsonl(path)
    assert [e.kind for e in tl] == [EventKind.UNKNOWN, LabEventKind.NOTE]


def test_missing_optional_packages_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "pandas", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    monkeypatch.setattr("importlib.import_module", no_pandas)
    with pytest.raises(MissingDependency) as info:
        rich_timeline().to_dataframe()
    assert info.value.package == "pandas"
    assert "ocfs2lab[notebook]" in str(info.value)


CAPTURED = Path(__file__).resolve().parents[2] / "data" / "timelines" / "kill-node2-of-2.jsonl"


def label_overlaps(fig: Figure) -> list[str]:
    """Pairs of the axes' texts (fault and phase labels) whose drawn boxes overlap, and texts
    that stick out of the axes: what a reader could not read."""
    fig.savefig(Path("/dev/null"), format="png")  # lay out and draw
    ax = fig.axes[0]
    box = ax.get_window_extent()
    texts = [(t.get_text(), t.get_window_extent()) for t in ax.texts if t.get_text()]
    found = []
    for i, (a, ba) in enumerate(texts):
        if ba.x0 < box.x0 - 1 or ba.x1 > box.x1 + 1 or ba.y0 < box.y0 - 1 or ba.y1 > box.y1 + 1:
            found.append(f"{a!r} sticks out of the axes")
        for b, bb in texts[i + 1 :]:
            if ba.overlaps(bb):
                found.append(f"{a!r} overlaps {b!r}")
    return found


def test_plot_labels_never_overlap() -> None:
    """Span labels are measured as drawn and stacked in rows: phases that start together, a
    long fault name over them, and a label at the right edge all stay readable."""
    tl = Timeline(origin=T0)
    tl.record(
        LabEventKind.FAULT_INJECTED, "kill ocfs2-node-3: injected", node="ocfs2-node-3", time=T0
    )
    for i, name in enumerate(["revive ocfs2-node-3", "boot ocfs2-node-3", "rejoin", "mount"]):
        tl.record(LabEventKind.PHASE_BEGIN, name, node="ocfs2-node-3", time=T0 + 0.2 + 0.1 * i)
    feed(tl, "ocfs2-node-1", KILL_SURVIVOR, start=T0 + 1)
    tl.record(LabEventKind.PHASE_BEGIN, "a phase that begins at the very end", time=T0 + 9.9)
    tl.record(LabEventKind.NOTE, "end", time=T0 + 10)
    fig = tl.plot(unknown=False)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert "kill ocfs2-node-3: injected" in labels  # the node is not named twice
    assert "boot ocfs2-node-3" in labels and "rejoin (ocfs2-node-3)" in labels
    assert label_overlaps(fig) == []
    # The same labels in one row on top of each other would overlap: the check can fail.
    for text in fig.axes[0].texts:
        text.set_y(1.0)
    assert label_overlaps(fig) != []


def test_plot_of_a_captured_kill() -> None:
    """The kill of node 2 of 2 as the lab recorded it: the fault spans from the kill to the
    revive (its heal pairs with it though it names itself otherwise), a phase whose start
    came before the window still shows, and every kind of mark has a style of its own."""
    tl = Timeline.load_jsonl(CAPTURED)
    fault = next(e for e in tl.events() if e.kind is LabEventKind.FAULT_INJECTED)
    for until in (20.0, 70.0):
        fig = tl.plot(
            origin=fault.time,
            since=fault.time - 5,
            until=fault.time + until,
            unknown=False,
            title="kill of node 2",
        )
        assert label_overlaps(fig) == []
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert legend is not None
    names = [t.get_text() for t in legend.get_texts()]
    assert "fault_healed" not in names and "phase_end" not in names  # paired, not marks
    labels = [t.get_text() for t in ax.texts]
    assert "kill ocfs2-node-2: injected" in labels and "kill run 1" in labels
    styles = {}
    handles: list[Any] = list(legend.legend_handles)
    for name, handle in zip(names, handles, strict=True):
        if name in ("writer_started", "writer_stopped", "note"):
            styles[name] = (str(handle.get_color()), str(handle.get_linestyle()))
    assert len(set(styles.values())) == 3, styles


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, anywhere in it (functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_timeline_and_what_it_uses_never_import_export() -> None:
    """export gathers the exports and depends on the timeline; the timeline and the modules
    that do the exports never import export (no import cycle), nor the recorder."""
    package = Path(observe.__file__).parent
    for name in ("timeline", "events", "records", "plotting", "jsonl", "optional"):
        imports = imported_modules(package / f"{name}.py")
        assert "ocfs2lab.observe.export" not in imports, name
        assert not any(m.startswith("ocfs2lab.observe.recorder") for m in imports), name
    assert "ocfs2lab.observe.timeline" in imported_modules(package / "export.py")
