"""Root conftest: pytest's own pytester (for the tests of the ocfs2lab pytest plugin), and the
groups the suite runs in when it runs on two workers (``pytest -n 2 --dist loadgroup``, what
``scripts/test.sh`` does for the whole suite).

A group runs on one worker from start to end, so the VMs a module boots once stay shared by
its tests: each lab module is a group, and so is each test of ``test_examples.py`` (each
boots its own lab). The integration tests are one group (one private dockerd and sshd). Lab
groups go first, longest first, so the two workers finish at about the same time; unit
tests fill the gaps.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: Lab groups, longest first (seconds measured on this project's 2-core machine).
LAB_ORDER = (
    "test_vm_cluster",
    "test_deploy",
    "test_examples::test_the_seed_deployment_script_runs_and_reports_coverage",
    "test_examples::test_the_vm_kill_script_shows_recovery_in_order_and_its_coverage",
    "test_pytest_plugin",
    "test_examples::test_the_kill_notebook_runs",
    "test_vm_boot",
    "test_ssh_cluster",
    "test_vm_crash",
)


def group_of(item: pytest.Item) -> str | None:
    """The xdist group of a test: its lab module (or lab example test), or "integration"."""
    parts = item.path.parts
    if "lab" in parts:
        module = item.path.stem
        if module == "test_examples":
            return f"{module}::{item.name}"
        return module
    if "integration" in parts:
        return "integration"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        group = group_of(item)
        if group in LAB_ORDER:
            return LAB_ORDER.index(group)
        if group is not None and group.startswith("test_"):
            return len(LAB_ORDER)  # a lab group not ranked yet
        return len(LAB_ORDER) + 1 if group == "integration" else len(LAB_ORDER) + 2

    for item in items:
        group = group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=rank)  # stable: the order inside a group is kept
