#!/usr/bin/env bash
# Find the commit of your Linux tree after which DLM recovery takes longer than a bound.
#
#   bash examples/bisect_recovery.sh TREE GOOD BAD [BOUND_SECONDS] [REPEAT]
#
# git bisect checks out commits of TREE (your checkout: bisect is your own action on it);
# at each one, `ocfs2lab experiment --tree TREE` builds that commit's kernel (only the files
# that differ from the kernel built before recompile), kills a node of a 3-VM cluster
# REPEAT times and exits 1 when the median recovery end is past the bound (bad), 0 when it
# is not (good), 125 when the commit's kernel does not build (bisect skips it) and 128 when
# the lab itself failed (bisect stops).
set -euo pipefail
if [ "$#" -lt 3 ]; then
  echo "usage: bash examples/bisect_recovery.sh TREE GOOD BAD [BOUND_SECONDS] [REPEAT]" >&2
  exit 2
fi
tree=$(cd "$1" && pwd)
good=$2
bad=$3
bound=${4:-20}
repeat=${5:-3}
project=$(cd "$(dirname "$0")/.." && pwd)
ocfs2lab="$project/.venv/bin/ocfs2lab"
[ -x "$ocfs2lab" ] || bash "$project/scripts/setup.sh"
cd "$tree"
git bisect start "$bad" "$good"
git bisect run "$ocfs2lab" experiment --tree "$tree" --repeat "$repeat" \
  --fail-if "recovery_end_s > $bound" --out "$project/bisect-results"
git bisect log
git bisect reset
