#!/usr/bin/env bash
# Install what ocfs2lab needs on a Debian machine (bookworm or trixie): system packages and a
# virtual environment in .venv with the library and its extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  python3 python3-venv python3-pip git ca-certificates debian-archive-keyring xz-utils procps util-linux
  qemu-system-x86 qemu-utils debootstrap e2fsprogs vde2
  docker.io openssh-server openssh-client busybox-static iproute2 kmod
  drbd-utils ocfs2-tools
  # The lab kernel (Debian's kernel source, built with gcov) and the coverage probe.
  gcc libc6-dev make bc bison flex libelf-dev libssl-dev cpio patch linux-source-6.12
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev,notebook,coverage]'
echo "setup: ready ($(.venv/bin/python --version))"
