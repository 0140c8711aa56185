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

import pytest

# The fixtures, registered when the plugin is turned on (a module attribute whose name starts
# with ``pytest_`` would be taken for a hook, hence the alias).
from ocfs2lab import pytest_fixtures as _fixtures

# The fixtures' helpers, importable from the plugin as they always were.
from ocfs2lab.pytest_fixtures import (
    REPORT_EVENTS,
    REQUIRED,
    START_KEY,
    TIMELINE_KEY,
    TO_BUILD,
    format_events,
    lab_unavailable,
    logs_dir,
    module_cluster_name,
    node_count,
    timeline_of,
)

__all__ = [
    "REPORT_EVENTS",
    "REQUIRED",
    "START_KEY",
    "TIMELINE_KEY",
    "TO_BUILD",
    "format_events",
    "lab_unavailable",
    "logs_dir",
    "module_cluster_name",
    "node_count",
    "pytest_addoption",
    "pytest_configure",
    "timeline_of",
]


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
        config.pluginmanager.register(_fixtures, "ocfs2lab-fixtures")
