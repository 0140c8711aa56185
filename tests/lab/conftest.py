"""Fixtures for the lab tests: one booted lab VM shared by the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ocfs2lab.host.labvm import LabVm


@pytest.fixture(scope="module")
def lab_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabVm]:
    """The lab VM (image built once or taken from the cache), booted once per module that
    uses it (the deployment tests): it is powered off when they are done, so an idle guest
    does not take CPU from the other worker's tests.

    Tests that change the host undo what they did; the deployment tests check that with a
    census after each of them.
    """
    logs = tmp_path_factory.mktemp("labvm-logs")
    with LabVm(hostname="labhost", log_dir=logs) as host:
        yield host
