"""A guest's wall clock against the host's, bounded by one round trip."""

from __future__ import annotations

import time
from typing import Any


def clock_error(shell: Any) -> float:
    """How far a guest's wall clock lies outside the host's window around reading it.

    ``shell`` runs commands in the guest (a node, or a machine's runner). The guest read
    its clock at some host time between the call and the return: a reading inside that
    window counts as 0 s off, one outside is off by at least the returned amount (negative:
    behind). No assumption on where in the round trip the guest read it.
    """
    before = time.time()
    guest = float(shell.run(["date", "+%s.%N"], timeout=60).stdout)
    after = time.time()
    if guest < before:
        return guest - before
    if guest > after:
        return guest - after
    return 0.0
