"""What a history workload runs: which operations, on how many keys, with which seed.

A history workload ([`HistoryWorkload`][ocfs2lab.experiment.history.HistoryWorkload]) keeps
every node busy with small file operations on the shared volume and records each one, with
host-clock times, for the checkers of [`ocfs2lab.consistency`][ocfs2lab.consistency.history].
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen

from ocfs2lab.spec import rules

#: The workloads and what each checks: registers (per-file linearizability), an append log,
#: a counter under flock, a counter under fcntl (POSIX) locks.
HISTORY_WORKLOADS = ("register", "append", "flock", "fcntl")
HistoryKind = Literal["register", "append", "flock", "fcntl"]


@frozen
class HistorySpec:
    """A history workload.

    Attributes:
        workload: ``"register"`` (files written whole and read from every node),
            ``"append"`` (records appended to shared logs), ``"flock"`` or ``"fcntl"`` (a
            counter incremented under that lock).
        keys: How many files the operations spread over.
        seed: Seeds each node's choice of operations (node name added).
        hold_s: For the lock workloads: seconds each increment holds the lock between its
            read and its write (a wider window for two holders to meet).
        op_timeout_s: An operation with no answer after this long is ``unknown`` and its
            node's process is not used again (generous: a survivor's operation waits out
            the recovery).
        read_share: For ``register`` and ``append``: the share of operations that are reads.
        directory: Where on the volume the files live (under its mount point).
        append_lock: For ``append``: ``"none"`` (plain ``O_APPEND`` writes from every node,
            as POSIX allows) or ``"flock"`` (each append holds a cluster-wide flock and
            stats the file first, so it appends at the size another node left).
    """

    workload: HistoryKind = field(validator=rules.one_of(*HISTORY_WORKLOADS))
    keys: int = field(default=3, validator=rules.in_range(1, 64))
    seed: int = field(default=0, validator=rules.in_range(0, 2**63 - 1))
    hold_s: float = field(default=0.05, validator=rules.number_in(0, 10))
    op_timeout_s: float = field(default=300.0, validator=rules.positive)
    read_share: float = field(default=0.4, validator=rules.number_in(0, 1))
    directory: str = field(default="ocfs2lab-history", validator=rules.docker_name)
    append_lock: Literal["none", "flock"] = field(
        default="none", validator=rules.one_of("none", "flock")
    )

    @property
    def lock(self) -> str | None:
        """The lock the workload takes, if any."""
        return self.workload if self.workload in ("flock", "fcntl") else None

    @property
    def checker(self) -> str:
        """The checker that judges it: ``register``, ``append`` or ``mutex``."""
        return {"register": "register", "append": "append"}.get(self.workload, "mutex")


__all__ = ["HISTORY_WORKLOADS", "HistoryKind", "HistorySpec"]
