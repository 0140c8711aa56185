#!/bin/sh
# Re-creates the captures in this directory: what `ocfs2lab doctor` reads on a machine.
# Run on the machine to capture (read-only: it only asks tools for their version, reads /proc
# and /sys, and boots QEMU's KVM probe sector for a fraction of a second):
#   sh tests/data/doctor/capture.sh
# Each command's stdout and stderr go to NAME.txt (stdout first), its exit status to NAME.rc.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # run NAME ARGV... : combined output -> NAME.txt, exit status -> NAME.rc
    out=$1; shift
    "$@" > "$tmp/out" 2> "$tmp/err"
    echo $? > "$here/$out.rc"
    cat "$tmp/out" "$tmp/err" > "$here/$out.txt"
}

run qemu-system-x86_64.version qemu-system-x86_64 --version
run qemu-img.version qemu-img --version
run debootstrap.version debootstrap --version
run mkfs.ext4.version mkfs.ext4 -V
run vde_switch.version vde_switch --version
run ssh.version ssh -V
run ssh-keygen.help ssh-keygen --help
run docker.version docker --version
run dockerd.version dockerd --version
run uname uname -r
run proc-filesystems cat /proc/filesystems
run sys-module ls -1 /sys/module
run modprobe-n-ocfs2 modprobe -n -v ocfs2
run modprobe-n-drbd modprobe -n -v drbd
run df df -P -k -- "${OCFS2LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ocfs2lab}"

# The KVM probe: ocfs2lab.vm.accel's boot sector under KVM, run the way doctor runs it (through
# LocalRunner: a signal shows as a negative exit status, no shell adds "Aborted").
"${PYTHON:-python3}" - "$here" <<'PY'
import sys
import tempfile
from pathlib import Path

from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.vm.accel import PROBE_TIMEOUT, probe_argv, write_probe_image

here = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    image = write_probe_image(Path(tmp) / "probe.img")
    result = LocalRunner().run(probe_argv(image), check=False, timeout=PROBE_TIMEOUT)
(here / "kvm-probe.rc").write_text(f"{result.exit_code}\n")
(here / "kvm-probe.txt").write_bytes(result.stdout_bytes + result.stderr_bytes)
PY
