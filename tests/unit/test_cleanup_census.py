"""The census lists the DRBD resources ``drbdsetup status`` shows, read by the status parser.

The outputs are the ``drbdadm status`` samples of ``tests/data/drbd-utils/status`` (what
``drbdsetup status`` prints: drbdadm runs it); the host is a scripted runner.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocfs2lab.cleanup import census, drbd_resources
from ocfs2lab.host.base import Machine
from tests.support.fake import FakeRunner

STATUS = Path(__file__).resolve().parents[1] / "data" / "drbd-utils" / "status"

#: Each sample and the resource names in it.
SAMPLES = {
    "v84-single-node.txt": ["ocfs2-resource"],
    "v84-syncing.txt": ["r0"],
    "v9-color.txt": ["ocfs2-resource"],
    "v9-connected.txt": ["r0"],
    "v9-connecting.txt": ["r0"],
    "v9-none.txt": [],
    "v9-single-node.txt": ["ocfs2-resource"],
    "v9-verbose-wrapped.txt": ["r0"],
    "v9-volumes-two-resources.txt": ["r1", "r2"],
}


def _host(code: int, stdout: str) -> tuple[Machine, FakeRunner]:
    runner = FakeRunner([(r"^drbdsetup status$", (code, stdout))])
    return Machine(runner, "fake"), runner


def test_every_sample_is_checked() -> None:
    assert sorted(SAMPLES) == sorted(p.name for p in STATUS.glob("*.txt"))


@pytest.mark.parametrize(("sample", "names"), SAMPLES.items())
def test_resource_names_of_each_sample(sample: str, names: list[str]) -> None:
    host, runner = _host(0, (STATUS / sample).read_text())
    assert drbd_resources(host) == names
    assert runner.lines() == ["drbdsetup status"]


@pytest.mark.parametrize(
    ("code", "stdout"),
    [(10, ""), (127, ""), (0, "")],
    ids=["no-module", "no-drbdsetup", "empty"],
)
def test_no_resources_when_drbdsetup_shows_none(code: int, stdout: str) -> None:
    host, _ = _host(code, stdout)
    assert drbd_resources(host) == []


def test_output_of_another_shape_counts_as_none(caplog: pytest.LogCaptureFixture) -> None:
    host, _ = _host(20, "USAGE: drbdsetup status {resource}\n")
    assert drbd_resources(host) == []
    assert "drbdsetup status" in caplog.text


def test_census_lists_the_resources() -> None:
    host, _ = _host(0, (STATUS / "v9-volumes-two-resources.txt").read_text())
    found = census(host)
    assert found.drbd_resources == ["r1", "r2"]
    assert found.lab_objects() == {"drbd_resources": ["r1", "r2"]}
