"""The kernel a report ran on, as the main job's table shows it."""

from __future__ import annotations

from ocfs2lab.demo import kernel_line


def test_kernel_line_names_release_key_patches_tree_and_profile() -> None:
    info = {
        "release": "6.12.117-ocfs2lab",
        "key": "0123456789abcdef" * 4,
        "patches": [{"name": "0001-delay.patch", "sha256": "ff" * 32}],
        "tree": {"path": "/src/linux", "commit": "a1b2c3d4e5f6a7b8", "dirty": True},
        "profile": "debug",
    }
    assert kernel_line(info) == (
        "6.12.117-ocfs2lab, key 0123456789abcdef, patches 0001-delay.patch (ffffffffffff), "
        "tree /src/linux @ a1b2c3d4e5f6 (dirty), profile debug"
    )
    assert kernel_line({"release": "6.12.117+deb13-amd64"}) == "6.12.117+deb13-amd64"
