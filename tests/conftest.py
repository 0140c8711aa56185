"""Root conftest: pytest's own pytester (for the tests of the ocfs2lab pytest plugin), and the
order of the test files for the two-worker run of the whole suite.

``scripts/test.sh`` runs the whole suite with ``pytest -n 2 --dist loadfile
--no-loadscope-reorder``: every file runs on one worker from start to end, so the VMs a lab
module boots once stay shared by its tests. Files are handed out in collection order (xdist
would otherwise hand out the files with most tests first, and the lab files, with few tests
each, last), so the lab files go first, longest first, and the two workers finish at about
the same time; the quick integration and unit files fill the gaps.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: Lab test files, longest first (measured on this project's 2-core machine).
LAB_ORDER = (
    "test_kernel_under_test",
    "test_vm_cluster",
    "test_fault_campaigns",
    "test_deploy",
    "test_ssh_cluster",
    "test_pcmk",
    "test_example_seed",
    "test_example_vm_kill",
    "test_example_fault_campaign",
    "test_pytest_plugin",
    "test_example_notebook",
    "test_vm_boot",
    "test_snapshots",
    "test_vm_crash",
)


def rank(item: pytest.Item) -> int:
    """Where a test's file goes: lab files in :data:`LAB_ORDER`, then the others."""
    parts = item.path.parts
    if "lab" in parts:
        stem = item.path.stem
        return LAB_ORDER.index(stem) if stem in LAB_ORDER else len(LAB_ORDER)
    return len(LAB_ORDER) + (1 if "integration" in parts else 2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=rank)  # stable: a file's tests keep their order
