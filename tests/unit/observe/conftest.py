"""Kernel lines measured in the QEMU lab (DESIGN.md section 1) and helpers to feed them.

The kill sequence is what VM 1 (the survivor) logged after ``kill -9`` of VM 2; the
partition sequence what both VMs logged after VM 2's interconnect link was cut. The lines
are those of ``tests/data/kernel/design-measured.txt`` (the domain UUID and the shortened
parts completed there from the kernel's format strings); the partition's node 2 lines name
node 1 as the peer, as VM 2 logs it. Host stamps are synthetic.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocfs2lab.observe import ConsoleFeed, Timeline

DOMAIN = "9F3C1B2A4D5E6F708192A3B4C5D6E7F8"

#: VM 1's console after ``kill -9`` of VM 2 (dead_threshold 5, idle_timeout_ms 5000).
KILL_SURVIVOR = [
    "[  301.183272] o2net: Connection to node node2 (num 2) at 192.168.77.2:7777 has been "
    "idle for 5.214 secs.",
    "[  301.183911] o2net: No longer connected to node node2 (num 2) at 192.168.77.2:7777",
    f"[  305.224110] o2cb: o2dlm has evicted node 2 from domain {DOMAIN}",
    f"[  305.226001] o2dlm: Begin recovery on domain {DOMAIN} for node 2",
    f"[  305.226120] o2dlm: Node 1 (me) is the Recovery Master for the dead node 2 in domain "
    f"{DOMAIN}",
    f"[  305.291833] o2dlm: End recovery on domain {DOMAIN}",
    "[  305.512071] ocfs2: Begin replay journal (node 2, slot 1) on device (254,16)",
    "[  305.690432] ocfs2: End replay journal (node 2, slot 1) on device (254,16)",
]

#: VM 1 (lowest node, stays) after VM 2's link was cut (dead_threshold 3, idle 3000 ms).
PARTITION_NODE1 = [
    "[  188.402561] o2net: Connection to node node2 (num 2) at 192.168.77.2:7777 has been "
    "idle for 3.7 secs.",
    "[  190.410020] (kworker/0:2,87,0):o2quo_make_decision:152 not fencing this node, "
    "heartbeating: 2, connected: 1, lowest: 1 (reachable)",
    "[  194.513001] o2net: No longer connected to node node2 (num 2) at 192.168.77.2:7777",
    f"[  196.224110] o2cb: o2dlm has evicted node 2 from domain {DOMAIN}",
    f"[  196.226001] o2dlm: Begin recovery on domain {DOMAIN} for node 2",
    f"[  196.226120] o2dlm: Node 1 (me) is the Recovery Master for the dead node 2 in domain "
    f"{DOMAIN}",
    f"[  196.291833] o2dlm: End recovery on domain {DOMAIN}",
    "[  196.512071] ocfs2: Begin replay journal (node 2, slot 1) on device (254,16)",
    "[  196.690432] ocfs2: End replay journal (node 2, slot 1) on device (254,16)",
]

#: VM 2 (cut off, not the lowest node: fences itself).
PARTITION_NODE2 = [
    "[  188.402561] o2net: Connection to node node1 (num 1) at 192.168.77.1:7777 has been "
    "idle for 3.7 secs.",
    "[  190.409877] (kworker/1:1,61,1):o2quo_make_decision:138 ERROR: fencing this node "
    "because it is connected to a half-quorum of 1 out of 2 nodes which doesn't include the "
    "lowest active node 1",
    "[  190.409903] *** ocfs2 is very sorry to be fencing this system by restarting ***",
]

#: TCG noise that is not an error.
NOISE = [
    "[    2.118301] I/O error, dev fd0, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
    f"[   95.113375] o2hb: node 1 hb write hung for 2s on region {DOMAIN} (vdb).",
]

BUG_LINE = "[  302.000001] kernel BUG at fs/ocfs2/dlmglue.c:3324!"

#: A host time to start synthetic stamps at.
T0 = 1_764_068_000.0


def feed(
    timeline: Timeline,
    node: str,
    lines: Sequence[str],
    *,
    start: float = T0,
    step: float = 0.25,
    hold: float = 0.5,
) -> ConsoleFeed:
    """Feed ``lines`` as one node's console, stamped ``start``, ``start + step``, ..."""
    console = ConsoleFeed(timeline, node, hold=hold)
    for i, line in enumerate(lines):
        console(start + i * step, line)
    console.close()
    return console
