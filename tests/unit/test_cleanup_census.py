"""The census: DRBD resources ``drbdsetup status`` shows, read by the status parser; and the
lab's machines on this machine, found by their owner states, with the cleanup that reaps them.

The outputs are the ``drbdadm status`` samples of ``tests/data/drbd-utils/status`` (what
``drbdsetup status`` prints: drbdadm runs it); the host is a scripted runner.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from ocfs2lab.cleanup import census, cleanup, drbd_resources
from ocfs2lab.host.base import Machine
from ocfs2lab.vm.ownership import STATE_FILE, SWITCH_PREFIX, SWITCH_STATE_FILE, claim_dir
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


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This machine's lab directories, in a cache and a temporary directory of the test's."""
    monkeypatch.setenv("OCFS2LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path


def test_census_lists_the_resources(here: Path) -> None:
    runner = FakeRunner(
        [
            (r"^drbdsetup status$", (0, (STATUS / "v9-volumes-two-resources.txt").read_text())),
            (r"^cat /proc/modules$", (0, "drbd 503808 0 - Live 0x0\n")),
        ]
    )
    found = census(Machine(runner, "fake"))
    assert found.drbd_resources == ["r1", "r2"]
    assert found.lab_objects() == {"drbd_resources": ["r1", "r2"]}


def test_looking_loads_nothing(here: Path) -> None:
    """Without the drbd module loaded, drbdsetup (which would load it) is not run."""
    host, runner = _host(0, "")
    assert census(host).drbd_resources == []
    assert not [line for line in runner.lines() if line.startswith(("drbd", "modprobe"))]


def test_one_census_and_one_cleanup_for_hosts_and_this_machines_vms(here: Path) -> None:
    live = claim_dir("node1-", hostname="ocfs2-node-1")
    dead = claim_dir("cluster-lab-", hostname="lab")
    switch = claim_dir(SWITCH_PREFIX, root=tempfile.gettempdir(), file=SWITCH_STATE_FILE)
    for directory, file in ((dead, STATE_FILE), (switch, SWITCH_STATE_FILE)):
        state = json.loads((directory / file).read_text())
        state["owner_start"] = -1  # its owner is gone
        (directory / file).write_text(json.dumps(state))
    host, _ = _host(0, "")
    found = census(host)
    assert [line.split(" (")[0] for line in found.machines_here] == ["run ocfs2-node-1"]
    assert set(found.lab_objects()) == {"stale_here"}  # live machines are not left-overs
    assert sorted(line.split(" (")[0] for line in found.stale_here) == [
        "run lab",
        f"switch {switch.name}",
    ]
    assert cleanup(host, lab_id="lab0000000000") == []  # one lab's cleanup reaps no machine
    assert dead.exists()
    removed = cleanup(host)
    assert sorted(removed) == sorted(f"stale lab directory {p}" for p in (dead, switch))
    assert live.exists() and not dead.exists() and not switch.exists()
    assert census(host).stale_here == []
