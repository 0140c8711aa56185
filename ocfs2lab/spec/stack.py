"""Which cluster stack a cluster runs, and the userspace stack's knobs.

OCFS2 runs on one of two stacks (``mkfs.ocfs2 --cluster-stack``):

* ``o2cb``: the seed's; o2hb disk heartbeat, o2net, and OCFS2's own DLM (o2dlm). Its knobs
  are [`TimingSpec`][ocfs2lab.spec.cluster.TimingSpec].
* ``pcmk``: the userspace stack of SUSE HA and Debian with pacemaker: corosync (membership
  and quorum over knet), dlm_controld, and the kernel's general DLM (fs/dlm). No pacemaker is
  needed: dlm_controld follows corosync's membership and fs/dlm calls into ocfs2 when a node
  dies. Its knobs are [`PcmkSpec`][ocfs2lab.spec.stack.PcmkSpec].

A kernel holds one stack at a time (``/sys/fs/ocfs2/cluster_stack``), so the userspace stack
needs one kernel per node: VM and SSH clusters, not containers.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import Attribute, field, frozen

from ocfs2lab.errors import SpecError
from ocfs2lab.spec import rules

#: The stacks a cluster can run.
STACKS = ("o2cb", "pcmk")
StackName = Literal["o2cb", "pcmk"]
#: Who fences a node the userspace stack declared dead (see `PcmkSpec.fencing`).
FENCING_MODES = ("lab", "none", "manual")
FencingMode = Literal["lab", "none", "manual"]


def check_stack(value: object, field_name: str = "stack") -> StackName:
    """``value`` if it names a stack.

    Raises:
        SpecError: It does not.
    """
    if value not in STACKS:
        raise SpecError(field_name, value, f"must be one of {', '.join(STACKS)}")
    return value  # type: ignore[return-value]


def _consensus_after_token(instance: PcmkSpec, attribute: Attribute[Any], value: int) -> None:
    if value and value <= instance.token_ms:
        raise SpecError(
            rules.label(instance, attribute),
            value,
            f"must exceed token_ms ({instance.token_ms}): corosync requires consensus > token",
        )


@frozen
class PcmkSpec:
    """The userspace stack's knobs: corosync's timers and dlm_controld's fencing.

    Attributes:
        token_ms: corosync ``totem.token``: how long a node may not pass the token before
            the others form a membership without it (corosync's default is 3000; the lab
            default, 5000, leaves room for guests under emulation, as openQA's HA tests do).
        consensus_ms: corosync ``totem.consensus``: how long to wait for consensus before
            forming the new membership (0: corosync's own 1.2 x token).
        fencing: Who fences a node that left the membership before the DLM recovers:
            ``"lab"`` (the default: dlm_controld's fence agent asks the host, which powers the
            node off and tells the agent it is done), ``"none"`` (``enable_fencing=0``:
            recovery starts without fencing, as no production cluster should run), or
            ``"manual"`` (the agent waits until
            [`acknowledge_fence`][ocfs2lab.fs.pcmk.PcmkCluster.acknowledge_fence] is called).
        fence_timeout_s: How long the fence agent waits for the host before it reports a
            failure (dlm_controld then tries again).
        post_join_delay_s: dlm_controld ``post_join_delay``: seconds a joining node waits
            before it fences nodes that were not members (its default is 30).
    """

    token_ms: int = field(default=5000, validator=rules.in_range(200, 600_000))
    consensus_ms: int = field(
        default=0, validator=[rules.in_range(0, 1_200_000), _consensus_after_token]
    )
    fencing: FencingMode = field(default="lab", validator=rules.one_of(*FENCING_MODES))
    fence_timeout_s: int = field(default=600, validator=rules.in_range(10, 86_400))
    post_join_delay_s: int = field(default=10, validator=rules.in_range(0, 3600))

    @property
    def consensus(self) -> int:
        """The consensus timeout corosync uses, in milliseconds."""
        return self.consensus_ms or int(self.token_ms * 1.2)

    @property
    def detect_after_s(self) -> float:
        """Seconds after a node's death until the others form a membership without it
        (theory: token, then consensus)."""
        return (self.token_ms + self.consensus) / 1000


__all__ = ["FENCING_MODES", "STACKS", "FencingMode", "PcmkSpec", "StackName", "check_stack"]
