#!/usr/bin/env bash
# The whole test suite: lint, types, unit, integration (real dockerd and sshd on this machine)
# and lab tests (the QEMU lab VM with a real OCFS2/DRBD kernel). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check ocfs2lab tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
