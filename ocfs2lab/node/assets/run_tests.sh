#!/bin/sh
# Placeholder workload of an OCFS2 node container (the real workload replaces this file).
# Usage: run_tests.sh [MOUNTPOINT]
set -eu
mnt=${1:-/mnt/ocfs2}
node=$(hostname)
file="$mnt/run_tests.$node"
echo "run_tests on $node: write/read $file"
date > "$file"
cat "$file" > /dev/null
