"""Specs: frozen, validated descriptions of what to build (the bottom layer, with formats).

A spec checks its input when it is made and names the field and the rule it breaks
(`SpecError`); nothing is touched before. Handles (the clusters, hosts, nodes) take specs and
build what they describe.
"""

from ocfs2lab.spec.cluster import ClusterSpec, NetworkSpec, NodeSpec, TimingSpec
from ocfs2lab.spec.stack import STACKS, PcmkSpec, StackName
from ocfs2lab.spec.storage import DrbdSpec, HeartbeatSpec, VolumeSpec

__all__ = [
    "STACKS",
    "ClusterSpec",
    "DrbdSpec",
    "HeartbeatSpec",
    "NetworkSpec",
    "NodeSpec",
    "PcmkSpec",
    "StackName",
    "TimingSpec",
    "VolumeSpec",
]
