"""The pytest plugin for real: its fixture boots a 2-VM cluster, a test inside mounts OCFS2,
and a failing test's report carries the cluster's timeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocfs2lab.vm.recipe import cache_root

pytestmark = pytest.mark.lab

#: This session's cache (images, the lab kernel), taken at import: the pytester fixture
#: gives the process a HOME of its own before the test body runs.
SESSION_CACHE = cache_root()


def test_fixtures_boot_a_cluster_and_a_failure_carries_the_timeline(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytester gives the inner run a HOME of its own: point it at this session's image cache.
    monkeypatch.setenv("OCFS2LAB_CACHE", str(SESSION_CACHE))
    pytester.makepyfile(
        """
        import pytest

        pytestmark = [pytest.mark.ocfs2lab, pytest.mark.ocfs2lab_nodes(2)]

        def test_mounted_on_two_kernels(ocfs2lab_vm_cluster):
            status = ocfs2lab_vm_cluster.status()
            assert status.kernel_nodes == 2
            assert status.mounted == status.nodes
            first, second = ocfs2lab_vm_cluster.nodes
            first.put_file("/mnt/ocfs2/plugin", b"from the plugin\\n")
            assert second.get_file("/mnt/ocfs2/plugin") == b"from the plugin\\n"

        def test_fails_on_purpose(ocfs2lab_vm_cluster, ocfs2lab_timeline):
            assert ocfs2lab_timeline is ocfs2lab_vm_cluster.timeline
            assert False, "deliberate failure"
        """
    )
    timelines = tmp_path / "timelines"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ocfs2lab", f"--ocfs2lab-timelines={timelines}", "-v"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_mounted_on_two_kernels PASSED*",
            "*deliberate failure*",
            "*- ocfs2lab timeline -*",
            "*the test began at*",
        ]
    )
    section = result.stdout.str().split("ocfs2lab timeline", 1)[1]
    for node in ("ocfs2-node-1", "ocfs2-node-2"):
        assert re.search(rf"{node} +ocfs2_mount +ocfs2: Mounting device", section), node
    # The inner run used this session's cache: it built no image or kernel of its own.
    assert not (pytester.path / ".cache" / "ocfs2lab").exists()
    saved = list(timelines.glob("*fails_on_purpose*.jsonl"))
    assert len(saved) == 1 and saved[0].stat().st_size > 1000
