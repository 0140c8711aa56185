"""Specs: frozen, validated descriptions of what to build (the bottom layer, with formats).

A spec checks its input when it is made and names the field and the rule it breaks
(`SpecError`); nothing is touched before. Handles (the clusters, hosts, nodes) take specs and
build what they describe.
"""

from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec, TimingSpec
from ocfs2lab.spec.history import HISTORY_WORKLOADS, HistorySpec
from ocfs2lab.spec.link import LinkSpec
from ocfs2lab.spec.nemesis import NEMESIS_KINDS, NemesisSpec, PlannedFault, schedule
from ocfs2lab.spec.stack import STACKS, PcmkSpec, StackName
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec

__all__ = [
    "HISTORY_WORKLOADS",
    "NEMESIS_KINDS",
    "STACKS",
    "ClusterSpec",
    "DrbdSpec",
    "HeartbeatSpec",
    "HistorySpec",
    "LinkSpec",
    "NemesisSpec",
    "NetworkSpec",
    "NodeSpec",
    "PcmkSpec",
    "PlannedFault",
    "StackName",
    "TimingSpec",
    "VolumeSpec",
    "schedule",
]
