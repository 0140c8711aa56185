"""Re-create the drbd-utils captures in this directory.

Renders each resource of ``tests/unit/formats/drbd_cases.py`` with ocfs2lab.formats.drbd,
writes it as ``<case>.res`` and stores what the real ``drbdadm -c FILE dump`` (drbd-utils
9.22; ``drbdadm-84`` for the 8.4 syntax) prints for it as ``<case>.dump``.
``__DRBD_NODE__=<host>`` makes drbdadm pretend to be that host (drbdadm_main.c reads it "for
debugging"); that host's address is 127.0.0.1, so drbdadm's check that the address is on this
machine passes. Run from the repository root:

    .venv/bin/python tests/data/drbd-utils/capture.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ocfs2lab.formats.drbd import DrbdSyntax, render_drbd_res
from tests.unit.formats.drbd_cases import CASES

HERE = Path(__file__).resolve().parent
DRBDADM = {DrbdSyntax.V9: "/usr/sbin/drbdadm", DrbdSyntax.V84: "/usr/lib/drbd/drbdadm-84"}


def main() -> None:
    for case, (res, syntax, me) in CASES.items():
        text = render_drbd_res(res, syntax)
        (HERE / f"{case}.res").write_text(text)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{case}.res"
            path.write_text(text)
            done = subprocess.run(
                [DRBDADM[syntax], "-c", str(path), "dump"],
                env={**os.environ, "__DRBD_NODE__": me},
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            )
            dump = done.stdout.replace(str(path), f"{case}.res")
        (HERE / f"{case}.dump").write_text(dump)
        print(f"{case}: ok")


if __name__ == "__main__":
    main()
