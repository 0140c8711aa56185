"""Benchmark of the lab image and the QEMU launcher.

Prints the warm boot-to-ready time (QEMU start to ``ssh true``), the boot phases (kernel
to init, initramfs, systemd userspace from ``systemd-analyze`` in the guest, ssh ready),
the teardown time and, with ``--cold``, the time of a cold image build into a fresh cache.

    .venv/bin/python benchmarks/bench_vm.py [--boots 3] [--release trixie] [--cold]
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path

from ocfs2lab.report import LogReporter
from ocfs2lab.vm import ImageRecipe, QemuMachine, QemuSpec, SshKey, build_image, read_manifest
from ocfs2lab.vm.qemu import READY_MARK

_ANALYZE = re.compile(r"Startup finished in (.*?) = ")
_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)(min|ms|s)")


def seconds(value: str, unit: str) -> float:
    """``1.5`` ``s`` -> 1.5; ``850`` ``ms`` -> 0.85; ``1`` ``min`` -> 60."""
    return float(value) * {"ms": 0.001, "s": 1.0, "min": 60.0}[unit]


def parse_analyze(text: str) -> dict[str, float]:
    """``systemd-analyze`` output -> ``{"kernel": s, "initrd": s, "userspace": s}``."""
    match = _ANALYZE.search(text)
    if not match:
        return {}
    parts: dict[str, float] = {}
    for piece in match.group(1).split(" + "):
        label = re.search(r"\((\w+)\)", piece)
        if label:
            amounts = _AMOUNT.findall(piece[: label.start()])
            parts[label.group(1)] = sum(seconds(v, u) for v, u in amounts)
    return parts


def kernel_marks(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Guest-clock times of boot milestones, from the console's ``[  t]`` prefixes."""
    marks: dict[str, float] = {}
    patterns = {
        "init (initramfs) started": r"Run /init as init process",
        "root mounted": r"EXT4-fs \(vda\): mounted",
        "systemd started": r"systemd\[1\]: systemd \d+",
    }
    for _stamp, text in lines:
        m = re.match(r"\[\s*(\d+\.\d+)\] (.*)", text)
        if not m:
            continue
        for name, pattern in patterns.items():
            if name not in marks and re.search(pattern, m.group(2)):
                marks[name] = float(m.group(1))
    return marks


def boot_once(spec: QemuSpec) -> dict[str, float]:
    """Boot, measure, tear down; returns the measurements of one boot."""
    machine = QemuMachine(spec)
    start = time.monotonic()
    with machine:
        ready = time.monotonic() - start
        analyze = machine.runner.run(["systemd-analyze"], check=False, timeout=60).stdout
        started_at = machine.started_at or 0.0
        lines = [(line.time - started_at, line.text) for line in machine.console.lines()]
        first_line = lines[0][0] if lines else float("nan")
        marks = [t for t, text in lines if READY_MARK in text]
        teardown_start = time.monotonic()
    teardown = time.monotonic() - teardown_start
    result = {"ready": ready, "teardown": teardown, "first console line": first_line}
    if marks:
        result["guest says ready (console)"] = marks[0]
    result.update({f"analyze {k}": v for k, v in parse_analyze(analyze).items()})
    result.update({f"guest clock: {k}": v for k, v in kernel_marks(lines).items()})
    return result


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=3, help="warm boots to measure")
    parser.add_argument("--release", default="trixie")
    parser.add_argument("--cold", action="store_true", help="also time a cold build (minutes)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    recipe = ImageRecipe(release=args.release)
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="ocfs2lab-bench-") as cache:
            reporter = LogReporter()
            t0 = time.monotonic()
            build_image(recipe, cache_dir=Path(cache), reporter=reporter)
            total = time.monotonic() - t0
            print(f"cold image build: {total:.1f} s")
            for name, secs in reporter.durations.items():
                if not name.startswith(("boot ", "poweroff ")):
                    print(f"  {name:<12} {secs:6.1f} s")

    t0 = time.monotonic()
    image = build_image(recipe)
    print(f"cached image lookup: {time.monotonic() - t0:.2f} s  ({image.directory})")
    manifest = read_manifest(image)
    print(f"  built in {manifest.get('build_seconds')} s: {manifest.get('phase_seconds')}")

    with tempfile.TemporaryDirectory(prefix="ocfs2lab-bench-key-") as keydir:
        key = SshKey.generate(Path(keydir))
        spec = QemuSpec(image=image, hostname="bench", ssh_key=key)
        runs = [boot_once(spec) for _ in range(args.boots)]

    print(f"warm boots ({args.boots}, accel from the machine; seconds):")
    for name in runs[0]:
        values = [r[name] for r in runs if name in r]
        print(
            f"  {name:<34} median {statistics.median(values):6.2f}"
            f"   min {min(values):6.2f}   max {max(values):6.2f}"
        )


if __name__ == "__main__":
    main()
