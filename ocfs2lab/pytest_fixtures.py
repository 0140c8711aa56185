"""The ocfs2lab pytest fixtures and report hooks, and the helpers they use (see
`ocfs2lab.pytest_plugin`).

Registered by the plugin when it is turned on (``--ocfs2lab`` or ``ocfs2lab = true``). The
plugin imports this module, never the other way round: the helpers live here, and the plugin
re-exports them under their old names (``lab_unavailable`` and the rest).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocfs2lab.clusters.containers import Cluster
from ocfs2lab.clusters.vms import VmCluster
from ocfs2lab.doctor import DoctorReport, diagnose
from ocfs2lab.formats.kmsg import EventKind
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.observe.events import LabEventKind, TimelineEvent
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.spec.storage import DrbdSpec

#: Checks of ``ocfs2lab doctor`` whose failure means the lab cannot run here.
REQUIRED = ("qemu-system-x86_64", "qemu-img", "vde_switch", "ssh", "ssh-keygen")
#: Also needed when the image must be built first.
TO_BUILD = ("debootstrap", "mkfs.ext4")
#: Events attached to a failing test's report, at most.
REPORT_EVENTS = 300

TIMELINE_KEY = pytest.StashKey[Timeline]()
START_KEY = pytest.StashKey[float]()

#: What ``ocfs2lab doctor`` said, once per session.
_DOCTOR: list[DoctorReport] = []


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked ``ocfs2lab`` where the lab cannot run, saying why."""
    if item.get_closest_marker("ocfs2lab") is None:
        return
    if not _DOCTOR:
        _DOCTOR.append(diagnose())
    reason = lab_unavailable(_DOCTOR[0], root=os.geteuid() == 0)
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Attach the cluster's timeline to the report of a failing test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call":
        item.stash[START_KEY] = call.start
    if not report.failed or report.when == "teardown":
        return
    timeline = timeline_of(item)
    if timeline is None:
        return
    start = item.stash.get(START_KEY, call.start)
    report.sections.append(
        ("ocfs2lab timeline", format_events(timeline.events(), timeline.origin, start))
    )
    directory = item.config.getoption("ocfs2lab_timelines")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", item.nodeid)[-150:]
        timeline.save_jsonl(Path(directory) / f"{name}.jsonl")


@pytest.fixture(scope="session")
def ocfs2lab_host(request: pytest.FixtureRequest) -> Iterator[LabVm]:
    """The lab VM (built once, cached), booted once per session."""
    with LabVm(hostname="ocfs2labhost", log_dir=logs_dir(request.config, "host")) as host:
        yield host


@pytest.fixture(scope="module")
def ocfs2lab_cluster(request: pytest.FixtureRequest, ocfs2lab_host: LabVm) -> Iterator[Cluster]:
    """The seed's container cluster on the lab VM (size: ``ocfs2lab_nodes``)."""
    cluster = Cluster(
        ocfs2lab_host,
        node_count(request),
        name=module_cluster_name(request),
        drbd=DrbdSpec(size="1G"),
    )
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def ocfs2lab_vm_cluster(request: pytest.FixtureRequest) -> Iterator[VmCluster]:
    """A VM cluster, one kernel per node (size: ``ocfs2lab_nodes``)."""
    cluster = VmCluster(
        node_count(request),
        name=module_cluster_name(request),
        log_dir=logs_dir(request.config, module_cluster_name(request)),
    )
    with cluster:
        yield cluster


@pytest.fixture
def ocfs2lab_timeline(request: pytest.FixtureRequest) -> Iterator[Timeline]:
    """The timeline of the test's cluster: the VM cluster's, or the lab VM's kernel log
    (from its console) for the duration of the test (container nodes share that kernel)."""
    if "ocfs2lab_vm_cluster" in request.fixturenames:
        timeline: Timeline = request.getfixturevalue("ocfs2lab_vm_cluster").timeline
        request.node.stash[TIMELINE_KEY] = timeline
        yield timeline
        return
    host: LabVm = request.getfixturevalue("ocfs2lab_host")
    timeline = Timeline()
    request.node.stash[TIMELINE_KEY] = timeline
    source = host.feed_timeline(timeline)
    try:
        yield timeline
    finally:
        source.close()
