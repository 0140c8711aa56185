"""gcov data files as the lab's guests hand them over, and where they belong in a build tree.

[`parse_gcda_dump`][ocfs2lab.formats.gcda.parse_gcda_dump] reads the output of
``ocfs2lab/coverage/assets/gcda_dump.py`` (one line per file: path, tab, base64 content; a last line
with the count). [`gcda_relative_path`][ocfs2lab.formats.gcda.gcda_relative_path] maps a guest path
back to the build tree: a kernel writes ``/sys/kernel/debug/gcov<build root>/fs/ocfs2/super.gcda``,
a program run with ``GCOV_PREFIX=P`` (and ``GCOV_PREFIX_STRIP=N``) writes ``P<build root minus N
leading components>/<object>.gcda``.
"""

from __future__ import annotations

import base64
import binascii
import re

from ocfs2lab.errors import ParseError

_COUNT = re.compile(r"^# files (\d+)$")
#: The first four bytes of a .gcda file ("gcda" written as a little-endian word).
GCDA_MAGIC = b"adcg"


def parse_gcda_dump(text: str) -> dict[str, bytes]:
    """``{guest path: content}`` from a dump.

    Raises:
        ParseError: A line is malformed, a file is not gcov data, or the count line is missing
            or disagrees (the dump was cut short).
    """
    files: dict[str, bytes] = {}
    expected: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        count = _COUNT.match(line)
        if count:
            expected = int(count.group(1))
            continue
        path, sep, encoded = line.partition("\t")
        if not sep or not path.startswith("/"):
            raise ParseError("gcda dump", "expected '<path>\\t<base64>'", line=number, text=line)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ParseError("gcda dump", f"bad base64: {err}", line=number, text=path) from err
        if not data.startswith(GCDA_MAGIC):
            raise ParseError("gcda dump", "not gcov data (bad magic)", line=number, text=path)
        files[path] = data
    if expected is None:
        raise ParseError("gcda dump", "no '# files N' line: the dump was cut short")
    if expected != len(files):
        raise ParseError("gcda dump", f"announced {expected} files, got {len(files)}")
    return files


def gcda_relative_path(path: str, guest_root: str, build_root: str, strip: int = 0) -> str | None:
    """The path of ``path`` relative to the build tree, or ``None`` when it is not from it.

    Args:
        path: Where the guest had the file.
        guest_root: ``/sys/kernel/debug/gcov`` for a kernel, ``GCOV_PREFIX`` for programs.
        build_root: The absolute path of the build tree when it was compiled.
        strip: ``GCOV_PREFIX_STRIP``: leading components of ``build_root`` dropped.
    """
    parts = [p for p in build_root.split("/") if p][strip:]
    base = "/".join([guest_root.rstrip("/"), *parts]) + "/"
    if not path.startswith(base):
        return None
    rel = path[len(base) :]
    if not rel or rel.startswith("/") or ".." in rel.split("/"):
        return None
    return rel


__all__ = ["GCDA_MAGIC", "gcda_relative_path", "parse_gcda_dump"]
