"""The pytest plugin, run by pytest's own pytester (in subprocesses, like a user's suite).

What needs no VM runs here: off unless asked for, the skip marker's reason, the node-count
marker's check. tests/lab/test_pytest_plugin.py boots a cluster through the fixtures.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ocfs2lab.doctor import Check, DoctorReport
from ocfs2lab.pytest_plugin import lab_unavailable


def test_the_plugin_is_off_unless_asked_for(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ocfs2lab_nodes(2)
        def test_uses_a_cluster(ocfs2lab_vm_cluster):
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    # The markers are known (no strict-marker error), the fixtures are not.
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'ocfs2lab_vm_cluster' not found*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--help")
    result.stdout.fnmatch_lines(["*--ocfs2lab *turn on the ocfs2lab fixtures*"])


def test_the_marker_skips_with_the_reason_where_the_lab_cannot_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A PATH with Python but without QEMU: the machine "lacks" it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "ssh-keygen", "vde_switch", "df", "ls", "cat", "modprobe"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ocfs2lab
        def test_needs_the_lab():
            raise AssertionError("must have been skipped")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ocfs2lab", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the ocfs2lab lab cannot run here*qemu-system-x86_64*"])


def test_the_node_count_marker_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.ocfs2lab_nodes("three")

        def test_uses_a_cluster(ocfs2lab_vm_cluster):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ocfs2lab")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ocfs2lab_nodes takes a positive node count*"])


def _report(statuses: dict[str, str]) -> DoctorReport:
    return DoctorReport(
        [
            Check(name, status, f"{name} found", "meaning", f"fix {name}")  # type: ignore[arg-type]
            for name, status in statuses.items()
        ]
    )


def test_lab_unavailable_names_what_is_missing() -> None:
    ready = _report({"qemu-system-x86_64": "ok", "qemu-img": "ok", "image-cache": "ok"})
    assert lab_unavailable(ready, root=False) is None
    no_qemu = _report({"qemu-system-x86_64": "missing", "qemu-img": "ok", "image-cache": "ok"})
    reason = lab_unavailable(no_qemu, root=True)
    assert reason is not None and "qemu-system-x86_64" in reason
    # Without an image, building one needs debootstrap and root.
    unbuilt = _report({"image-cache": "warn", "debootstrap": "missing", "mkfs.ext4": "ok"})
    reason = lab_unavailable(unbuilt, root=False)
    assert reason is not None and "debootstrap" in reason and "needs root" in reason
