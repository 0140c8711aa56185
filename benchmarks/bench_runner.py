"""Per-command overhead of each runner transport, measured for real.

Starts a throwaway sshd and a private dockerd (tests/support), then times a trivial command
(``true``) N times on each transport, and ssh over the warm multiplexed connection against a
fresh ssh handshake per command.

Run: ``.venv/bin/python benchmarks/bench_runner.py [-n 200]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocfs2lab.runner.docker import DockerExecRunner
from ocfs2lab.runner.local import LocalRunner
from ocfs2lab.runner.ssh import SshRunner
from tests.support.dockerd import (
    busybox_container,
    busybox_image,
    private_dockerd,
)
from tests.support.sshd import throwaway_sshd


def measure(fn: Callable[[], object], n: int, warmup: int = 3) -> list[float]:
    """Wall times in seconds of ``n`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{name:<34} n={len(times):<4} median {statistics.median(times) * 1000:7.1f} ms"
        f"   p95 {p95 * 1000:7.1f} ms   min {ordered[0] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="commands per measurement")
    args = parser.parse_args()
    n = args.n
    local = LocalRunner()
    print(f"per-command overhead of `true` ({n} runs each)\n")
    report("local (sh)", measure(lambda: local.run(["true"]), n))

    with throwaway_sshd() as sshd:
        runner = SshRunner(sshd.target)
        start = time.perf_counter()
        runner.connect()
        elapsed = 1000 * (time.perf_counter() - start)
        print(f"{'ssh master start (handshake+auth)':<34} {elapsed:.1f} ms")
        with runner:
            report("ssh, warm multiplexed", measure(lambda: runner.run(["true"]), n))
            fresh = [
                "ssh",
                *sshd.target.options(),
                "-T",
                sshd.target.destination,
                "--",
                "true",
            ]
            report(
                "ssh, fresh handshake per command",
                measure(lambda: local.run(fresh), max(10, n // 4)),
            )
            big = measure(lambda: runner.run(["head", "-c", "8388608", "/dev/zero"]), 5, 1)
            report("ssh, 8 MiB of output", big)
        print(f"{'sshd logins seen':<34} {sshd.accepted_logins()}")

    with private_dockerd() as engine:
        busybox_image(engine.client)
        with busybox_container(engine.client, "o2bench") as container:
            docker_runner = DockerExecRunner(engine.client, container.id)
            report("docker exec (SDK)", measure(lambda: docker_runner.run(["true"]), n))
            big = measure(lambda: docker_runner.run(["head", "-c", "8388608", "/dev/zero"]), 5, 1)
            report("docker exec, 8 MiB of output", big)
    report(
        "local, 8 MiB of output",
        measure(lambda: local.run(["head", "-c", "8388608", "/dev/zero"]), 5, 1),
    )


if __name__ == "__main__":
    main()
