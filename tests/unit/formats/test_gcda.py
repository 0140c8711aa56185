"""The gcda dump of the lab's guests, and where a guest's .gcda belongs in a build tree."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from ocfs2lab.coverage.collect import DUMP_SCRIPT
from ocfs2lab.errors import ParseError
from ocfs2lab.formats.gcda import GCDA_MAGIC, gcda_relative_path, parse_gcda_dump

DATA = b"adcg" + bytes(range(40))


def line(path: str, data: bytes = DATA) -> str:
    return f"{path}\t{base64.b64encode(data).decode()}"


def test_dump_parses() -> None:
    text = "\n".join([line("/a/x.gcda"), line("/a/b/y.gcda", DATA + b"1"), "# files 2", ""])
    assert parse_gcda_dump(text) == {"/a/x.gcda": DATA, "/a/b/y.gcda": DATA + b"1"}
    assert parse_gcda_dump("# files 0\n") == {}


@pytest.mark.parametrize(
    "text",
    [
        line("/a/x.gcda"),  # cut short: no count
        line("/a/x.gcda") + "\n# files 2",  # count disagrees
        "relative.gcda\tYWRjZw==\n# files 1",
        "/a/x.gcda\t%%%\n# files 1",
        line("/a/x.gcda", b"junk") + "\n# files 1",
        "/a/x.gcda\n# files 1",
    ],
)
def test_bad_dumps_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_gcda_dump(text)


def test_the_guest_script_reads_files_whole_and_skips_links(tmp_path: Path) -> None:
    """The script the guests run, run here on a tree like debugfs's (data and .gcno links)."""
    (tmp_path / "fs" / "ocfs2").mkdir(parents=True)
    (tmp_path / "fs" / "ocfs2" / "super.gcda").write_bytes(DATA)
    (tmp_path / "fs" / "ocfs2" / "super.gcno").symlink_to("/nonexistent/super.gcno")
    (tmp_path / "fs" / "ocfs2" / "link.gcda").symlink_to(tmp_path / "fs" / "ocfs2" / "super.gcda")
    out = subprocess.run(
        [sys.executable, "-", str(tmp_path)],
        input=DUMP_SCRIPT.read_text(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert parse_gcda_dump(out) == {str(tmp_path / "fs" / "ocfs2" / "super.gcda"): DATA}
    assert DATA.startswith(GCDA_MAGIC)


def test_relative_paths_of_kernel_and_tool_data() -> None:
    root = "/root/.cache/ocfs2lab/kernels/.build-6.12-x/linux"
    kernel = "/sys/kernel/debug/gcov"
    assert (
        gcda_relative_path(f"{kernel}{root}/fs/ocfs2/super.gcda", kernel, root)
        == "fs/ocfs2/super.gcda"
    )
    assert gcda_relative_path(f"{kernel}/other/fs/ocfs2/super.gcda", kernel, root) is None
    assert gcda_relative_path(f"{kernel}{root}-2/a.gcda", kernel, root) is None
    prefix = "/var/lib/ocfs2lab/gcov"
    assert gcda_relative_path(f"{prefix}/build/o2probe.gcda", prefix, "/build") == "o2probe.gcda"
    # GCOV_PREFIX_STRIP=2 drops two leading components of the build path.
    tools = "/home/me/ocfs2-tools"
    assert (
        gcda_relative_path(f"{prefix}/ocfs2-tools/fsck.ocfs2/pass1.gcda", prefix, tools, 2)
        == "fsck.ocfs2/pass1.gcda"
    )
    assert gcda_relative_path(f"{prefix}/ocfs2-tools/../x.gcda", prefix, tools, 2) is None
