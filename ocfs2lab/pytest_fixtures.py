"""The ocfs2lab pytest fixtures and report hook (see `ocfs2lab.pytest_plugin`).

Registered by the plugin when it is turned on (``--ocfs2lab`` or ``ocfs2lab = true``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocfs2lab.cluster import Cluster
from ocfs2lab.doctor import DoctorReport, diagnose
from ocfs2lab.host.labvm import LabVm
from ocfs2lab.kernel_cluster import VmCluster
from ocfs2lab.observe.sources import DmesgPoller
from ocfs2lab.observe.timeline import Timeline
from ocfs2lab.pytest_plugin import (
    START_KEY,
    TIMELINE_KEY,
    format_events,
    lab_unavailable,
    logs_dir,
    module_cluster_name,
    node_count,
    timeline_of,
)
from ocfs2lab.spec.storage import DrbdSpec

#: What ``ocfs2lab doctor`` said, once per session.
_DOCTOR: list[DoctorReport] = []


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
    polled for the duration of the test (container nodes share that kernel)."""
    if "ocfs2lab_vm_cluster" in request.fixturenames:
        timeline: Timeline = request.getfixturevalue("ocfs2lab_vm_cluster").timeline
        request.node.stash[TIMELINE_KEY] = timeline
        yield timeline
        return
    host: LabVm = request.getfixturevalue("ocfs2lab_host")
    timeline = Timeline()
    request.node.stash[TIMELINE_KEY] = timeline
    with DmesgPoller(host.runner, timeline, "host", interval=1.0):
        yield timeline
