#!/usr/bin/env bash
# The main job: build (or reuse) the lab image, boot the lab, run the demonstration, tear down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ocfs2lab demo "$@"
