"""The ocfs2lab pytest plugin: lab fixtures for your own test suites (off unless asked for).

Installed with ocfs2lab (entry point ``pytest11``), it only registers its options and markers
until you turn it on with ``--ocfs2lab`` or ``ocfs2lab = true`` in the ``[pytest]`` ini
section. Then:

Fixtures:
    ``ocfs2lab_host`` (session): the lab VM, booted once.
    ``ocfs2lab_cluster`` (module): the seed's container cluster on the lab VM.
    ``ocfs2lab_vm_cluster`` (module): a VM cluster, one kernel per node.
    ``ocfs2lab_timeline`` (function): the timeline of the cluster the test uses (for a
    container cluster: the lab VM's kernel log, polled while the test runs).

Markers:
    ``@pytest.mark.ocfs2lab_nodes(n)``: the size of the module's clusters (default 3).
    ``@pytest.mark.ocfs2lab``: skip, saying why, where this machine cannot run the lab
    (no QEMU, no VDE switch, no image and no way to build one); see ``ocfs2lab doctor``.

A test that fails while using a cluster gets the timeline attached to its report: the kernel
events of every node and the lab's actions (section ``ocfs2lab timeline``); with
``--ocfs2lab-timelines DIR`` the whole timeline is also written there as JSON lines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ocfs2lab.doctor import DoctorReport
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.kernel_cluster import VmCluster
from ocfs2lab.observe.timeline import LabEventKind, Timeline, TimelineEvent

#: Checks of ``ocfs2lab doctor`` whose failure means the lab cannot run here.
REQUIRED = ("qemu-system-x86_64", "qemu-img", "vde_switch", "ssh", "ssh-keygen")
#: Also needed when the image must be built first.
TO_BUILD = ("debootstrap", "mkfs.ext4")
#: Events attached to a failing test's report, at most.
REPORT_EVENTS = 300

TIMELINE_KEY = pytest.StashKey[Timeline]()
START_KEY = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's options."""
    group = parser.getgroup("ocfs2lab", "ocfs2lab lab fixtures")
    group.addoption(
        "--ocfs2lab", action="store_true", default=None, help="turn on the ocfs2lab fixtures"
    )
    group.addoption(
        "--ocfs2lab-logs",
        metavar="DIR",
        default=None,
        help="keep the lab machines' console and QEMU logs in DIR",
    )
    group.addoption(
        "--ocfs2lab-timelines",
        metavar="DIR",
        default=None,
        help="write the timeline of each failing test's cluster to DIR (JSON lines)",
    )
    parser.addini("ocfs2lab", "turn on the ocfs2lab fixtures", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; register the fixtures when the plugin is turned on."""
    config.addinivalue_line(
        "markers", "ocfs2lab_nodes(n): the number of nodes of the module's ocfs2lab clusters"
    )
    config.addinivalue_line(
        "markers", "ocfs2lab: needs the ocfs2lab lab; skipped, saying why, where it cannot run"
    )
    enabled = config.getoption("ocfs2lab") or config.getini("ocfs2lab")
    if enabled and not config.pluginmanager.has_plugin("ocfs2lab-fixtures"):
        from ocfs2lab import pytest_fixtures  # noqa: PLC0415 (only when turned on)

        config.pluginmanager.register(pytest_fixtures, "ocfs2lab-fixtures")


def lab_unavailable(report: DoctorReport, *, root: bool) -> str | None:
    """Why the lab cannot run on the machine ``report`` describes, or ``None`` if it can.

    Args:
        report: What ``ocfs2lab doctor`` found.
        root: The tests run as root (building the image needs it).
    """
    reasons = []
    for name in REQUIRED:
        check = _find(report, name)
        if check is not None and check.failing:
            reasons.append(f"{name}: {check.found} ({check.fix or check.meaning})")
    image = _find(report, "image-cache")
    if image is not None and image.status != "ok":
        for name in TO_BUILD:
            check = _find(report, name)
            if check is not None and check.failing:
                reasons.append(f"{name}, needed to build the image: {check.found} ({check.fix})")
        if not root:
            reasons.append("the lab image is not built and building it needs root")
    if not reasons:
        return None
    return "the ocfs2lab lab cannot run here: " + "; ".join(reasons)


def _find(report: DoctorReport, name: str) -> Any:
    try:
        return report.check(name)
    except KeyError:
        return None


def node_count(request: pytest.FixtureRequest, default: int = 3) -> int:
    marker = request.node.get_closest_marker("ocfs2lab_nodes")
    if marker is None or not marker.args:
        return default
    count = marker.args[0]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise pytest.UsageError(f"ocfs2lab_nodes takes a positive node count, not {count!r}")
    return count


def module_cluster_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^A-Za-z0-9]", "", Path(str(request.node.name)).stem)[-12:]
    return f"t{base}" if base else "tlab"


def logs_dir(config: pytest.Config, what: str) -> Path | None:
    base = config.getoption("ocfs2lab_logs")
    if not base:
        return None
    path = Path(base) / what
    path.mkdir(parents=True, exist_ok=True)
    return path


def format_events(events: list[TimelineEvent], origin: float, start: float) -> str:
    """The report section: kernel events (unknown lines left out) and lab actions."""
    shown = [
        e
        for e in events
        if e.kind is not EventKind.UNKNOWN and e.kind is not LabEventKind.WRITE_ACKED
    ][-REPORT_EVENTS:]
    lines = [f"(seconds from the cluster's start; the test began at {start - origin:+.3f}s)"]
    lines += [e.format(origin) for e in shown]
    return "\n".join(lines)


def timeline_of(item: pytest.Item) -> Timeline | None:
    found = item.stash.get(TIMELINE_KEY, None)
    if found is not None:
        return found
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    cluster = funcargs.get("ocfs2lab_vm_cluster")
    if isinstance(cluster, VmCluster):
        return cluster.timeline
    return None
