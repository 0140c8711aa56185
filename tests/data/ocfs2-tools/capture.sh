#!/bin/sh
# Re-creates the o2cb captures in this directory with the real ocfs2-tools.
# Run on a machine with ocfs2-tools installed (captured here with 1.8.7-1+b1, Debian bookworm):
#   sh tests/data/ocfs2-tools/capture.sh
# It never touches /etc/ocfs2: every command gets --config-file=<temp file>.
# (o2cb's writer calls mkdir("/etc/ocfs2") and ignores EEXIST; the directory ships with the package.)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
o2cb=${O2CB:-/usr/sbin/o2cb}
UUID1=1BE1EEC9B6E24B0EBF0AAC5B3D5B6E13
UUID2=7A3F2D61C0E94E7C9B1A4F6E2D8C5B90

run() { # run NAME ARGS... : stdout -> NAME, exit code checked by set -e
    out=$1; shift
    "$o2cb" "$@" > "$here/$out"
}

# A: two nodes, local heartbeat, no region (the file the seed's bootstrap writes first)
c="$tmp/two-nodes-local.conf"
"$o2cb" --config-file="$c" add-cluster ocfs2cluster
"$o2cb" --config-file="$c" add-node ocfs2cluster node1 --ip 172.20.0.11 --number 1
"$o2cb" --config-file="$c" add-node ocfs2cluster node2 --ip 172.20.0.12 --number 2
cp "$c" "$here/two-nodes-local.conf"

# B: three nodes and one region (local mode): the seed's cluster.conf after bootstrap
c="$tmp/three-nodes-heartbeat.conf"
"$o2cb" --config-file="$c" add-cluster ocfs2cluster
for k in 1 2 3; do
    "$o2cb" --config-file="$c" add-node ocfs2cluster "node$k" --ip "172.20.0.1$k" --number "$k"
done
"$o2cb" --config-file="$c" add-heartbeat ocfs2cluster "$UUID1"
cp "$c" "$here/three-nodes-heartbeat.conf"
run list-cluster.three-nodes-heartbeat.txt --config-file="$c" list-cluster ocfs2cluster
run list-nodes.three-nodes-heartbeat.txt --config-file="$c" list-nodes ocfs2cluster
run list-heartbeats.three-nodes-heartbeat.txt --config-file="$c" list-heartbeats ocfs2cluster
run list-cluster-oneline.three-nodes-heartbeat.txt --config-file="$c" list-cluster --oneline ocfs2cluster

# C: global heartbeat, two regions, non-default port, node numbers from 0
c="$tmp/global-two-regions.conf"
"$o2cb" --config-file="$c" add-cluster labglobal
"$o2cb" --config-file="$c" add-node labglobal vm0 --ip 192.168.77.1 --port 7778 --number 0
"$o2cb" --config-file="$c" add-node labglobal vm1 --ip 192.168.77.2 --port 7778 --number 1
"$o2cb" --config-file="$c" add-heartbeat labglobal "$UUID1"
"$o2cb" --config-file="$c" add-heartbeat labglobal "$UUID2"
"$o2cb" --config-file="$c" heartbeat-mode labglobal global
cp "$c" "$here/global-two-regions.conf"
run list-cluster.global-two-regions.txt --config-file="$c" list-cluster labglobal
run list-cluster-oneline.global-two-regions.txt --config-file="$c" list-cluster --oneline labglobal
run list-nodes-oneline.global-two-regions.txt --config-file="$c" list-nodes --oneline labglobal
run list-heartbeats-oneline.global-two-regions.txt --config-file="$c" list-heartbeats --oneline labglobal

# D: two clusters in one file; the first has no region, so o2cb writes its node stanzas
# before the heartbeat stanzas (GLib hash-table order, see formats/cluster_conf.py)
c="$tmp/two-clusters.conf"
"$o2cb" --config-file="$c" add-cluster alpha
"$o2cb" --config-file="$c" add-node alpha a1 --ip 10.0.0.1 --number 1
"$o2cb" --config-file="$c" add-cluster beta
"$o2cb" --config-file="$c" add-node beta b1 --ip 10.0.1.1 --number 1
"$o2cb" --config-file="$c" add-heartbeat beta "$UUID2"
cp "$c" "$here/two-clusters.conf"
run list-clusters.two-clusters.txt --config-file="$c" list-clusters

# E: a cluster with no nodes
c="$tmp/empty-cluster.conf"
"$o2cb" --config-file="$c" add-cluster lonely
cp "$c" "$here/empty-cluster.conf"

# F: what o2cb says about a cluster it does not know, and about a file it cannot load
set +e
"$o2cb" --config-file="$here/two-nodes-local.conf" list-cluster nosuch \
    > "$tmp/out" 2> "$here/list-cluster.unknown.stderr"
echo "exit $?" > "$here/list-cluster.unknown.rc"
printf 'cluster:\n\tname = bad\n\tnode_count = x\n' > "$tmp/bad.conf"
"$o2cb" --config-file="$tmp/bad.conf" list-clusters \
    > "$tmp/out" 2> "$tmp/bad.stderr"
echo "exit $?" > "$here/load-error.rc"
sed "s#$tmp#TMPDIR#g" "$tmp/bad.stderr" > "$here/load-error.stderr"
set -e


# G: cluster-status without the o2cb kernel service (this machine's kernel has no OCFS2): 1.8.7
# prints its status line (and its error) four times; see README.md
set +e
"$o2cb" --config-file="$tmp/none.conf" cluster-status \
    > "$here/cluster-status.no-kernel.stdout" 2> "$here/cluster-status.no-kernel.stderr"
echo "exit $?" > "$here/cluster-status.no-kernel.rc"
set -e
echo "captured into $here"
