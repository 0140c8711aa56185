#!/usr/bin/env bash
# The whole test suite: lint, types, unit, integration (real dockerd and sshd on this machine)
# and lab tests (the QEMU lab VM with a real OCFS2/DRBD kernel). Installs what it needs.
# Arguments go to pytest (a subset runs as given, on one worker).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check ocfs2lab tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy
echo "== lint-imports (the layers in pyproject.toml)"
.venv/bin/lint-imports --no-cache
if [ "$#" -eq 0 ]; then
  # The whole suite: build the lab images first, both at once (a subset given as arguments
  # builds what its tests need when they need it). Built once and cached (~/.cache/ocfs2lab):
  # the trixie image with the lab kernel (the kernel compiles while debootstrap downloads;
  # how long a cold build takes: docs/facts.md, "First run") and the bookworm image with
  # Debian's kernel.
  echo "== lab kernel and images"
  logs=$(mktemp -d)
  .venv/bin/ocfs2lab image build --release bookworm --debian-kernel >"$logs/bookworm.log" 2>&1 &
  bookworm=$!
  status=0
  .venv/bin/ocfs2lab image build || status=$?
  wait "$bookworm" || status=$?
  sed 's/^/[bookworm] /' "$logs/bookworm.log"
  rm -rf "$logs"
  if [ "$status" -ne 0 ]; then
    echo "test.sh: building the lab images failed (exit $status)" >&2
    exit "$status"
  fi
fi
echo "== pytest"
if [ "$#" -eq 0 ]; then
  # The whole suite on two workers: each test file runs on one worker (a lab module keeps
  # its VMs), and the lab's waits (heartbeat timeouts, recovery) leave room for the other
  # worker; the longest lab files start first (tests/conftest.py).
  set -- -n 2 --dist loadfile --no-loadscope-reorder
fi
exec .venv/bin/python -m pytest "$@"
