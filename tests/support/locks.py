"""POSIX (fcntl) locks taken on cluster nodes, to see whether another node sees them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ocfs2lab.node.background import RemoteProcess
from ocfs2lab.node.vm import VmNode
from ocfs2lab.wait import wait_until

LOCK_FILE = "/mnt/ocfs2/fcntl-lock"
_HELD = "/run/ocfs2lab-fcntl-held"
_HOLD = (
    "import fcntl, signal, sys\n"
    "f = open(sys.argv[1], 'a')\n"
    "fcntl.lockf(f, fcntl.LOCK_EX)\n"
    "open(sys.argv[2], 'w').write('held')\n"
    "signal.pause()\n"
)
_TRY = (
    "import fcntl, sys\n"
    "f = open(sys.argv[1], 'a')\n"
    "try:\n"
    "    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "    print('got')\n"
    "except OSError as e:\n"
    "    print('busy', e.errno)\n"
)


@contextlib.contextmanager
def holding_fcntl_lock(node: VmNode, path: str = LOCK_FILE) -> Iterator[RemoteProcess]:
    """``node`` holds an exclusive fcntl lock on ``path`` for the block (a process that
    waits with the lock; stopped on exit, which releases it)."""
    node.run(["rm", "-f", _HELD])
    holder = RemoteProcess.start(
        node, ["python3", "-c", _HOLD, path, _HELD], log_path="/var/tmp/ocfs2lab-fcntl.log"
    )
    try:
        wait_until(
            lambda: node.run(["test", "-e", _HELD], check=False).ok or None,
            what=f"{node.spec.name} to hold the fcntl lock",
            timeout=120,
        )
        yield holder
    finally:
        holder.stop()


def try_fcntl_lock(node: VmNode, path: str = LOCK_FILE) -> str:
    """``got`` when ``node`` takes the lock at once (and releases it), else ``busy <errno>``."""
    return node.run(["python3", "-c", _TRY, path]).stdout.strip()
