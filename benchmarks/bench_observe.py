"""Observation layer costs, measured for real on this machine.

* kernel lines parsed and appended per second (through ConsoleFeed: parse, member-list
  assembly, stamp, locked insert), split into parse-only and append-only;
* memory per 100k timeline events (tracemalloc);
* expect() wake-up latency: from the append of the awaited event to the waiter's return;
* the recorder: acks/s it takes from one client, and acks/s of the real writer (fsync each
  record) into a tmp dir;
* one dmesg poll of this machine through LocalRunner, and the clock mapping's uncertainty.

Run: ``.venv/bin/python benchmarks/bench_observe.py [-n 100000]``
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocfs2lab.formats.kmsg import parse_kernel_line
from ocfs2lab.observe import ConsoleFeed, DmesgPoller, LabEventKind, Timeline, WriteRecorder
from ocfs2lab.runner.local import LocalRunner

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "kernel"


def sample_lines() -> list[str]:
    """Every captured kernel line of tests/data/kernel (real shapes, many kinds)."""
    lines: list[str] = []
    for path in sorted(DATA.glob("*.txt")):
        lines += [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return lines


def lines_of(n: int) -> list[str]:
    base = sample_lines()
    return [base[i % len(base)] for i in range(n)]


def bench_feed(n: int) -> tuple[float, float, float]:
    lines = lines_of(n)
    start = time.perf_counter()
    parsed = [parse_kernel_line(line) for line in lines]
    parse_s = time.perf_counter() - start

    tl = Timeline()
    start = time.perf_counter()
    for i, event in enumerate(parsed):
        tl.add_kernel("node1", 1000.0 + i * 1e-3, event)
    append_s = time.perf_counter() - start

    tl = Timeline()
    feed = ConsoleFeed(tl, "node1")
    start = time.perf_counter()
    for i, line in enumerate(lines):
        feed(1000.0 + i * 1e-3, line)
    feed.close()
    both_s = time.perf_counter() - start
    assert len(tl) == feed.events_added
    return n / parse_s, n / append_s, feed.lines_seen / both_s


def bench_memory(n: int = 100_000) -> float:
    lines = lines_of(n)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tl = Timeline()
    feed = ConsoleFeed(tl, "node1")
    for i, line in enumerate(lines):
        feed(1000.0 + i * 1e-3, line)
    feed.close()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # The input lines were allocated before tracing: what is counted is the timeline's own
    # (events, parsed fields, the stripped message text, the time index).
    return (after - before) / len(tl) * 100_000


def bench_expect_latency(rounds: int = 200) -> list[float]:
    tl = Timeline()
    latencies: list[float] = []

    def waiter(after: float, ready: threading.Event, done: list[float]) -> None:
        ready.set()
        tl.expect(LabEventKind.NOTE, after=after, timeout=10)
        done.append(time.perf_counter())

    for i in range(rounds):
        ready = threading.Event()
        done: list[float] = []
        t = threading.Thread(target=waiter, args=(1000.0 + i, ready, done))
        t.start()
        ready.wait()
        time.sleep(0.002)  # let the waiter reach its wait
        appended = time.perf_counter()
        tl.record(LabEventKind.NOTE, "go", time=1000.0 + i)
        t.join()
        latencies.append(done[0] - appended)
    return latencies


def bench_recorder_socket(n: int) -> float:
    with WriteRecorder(timeline=Timeline()) as rec:
        digest = hashlib.sha256(b"x").hexdigest()
        payload = "".join(
            json.dumps(
                {
                    "type": "ack",
                    "v": 1,
                    "node": "n",
                    "seq": i,
                    "path": "/p",
                    "offset": i * 4096,
                    "length": 4096,
                    "sha256": digest,
                }
            )
            + "\n"
            for i in range(n)
        ).encode()
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", rec.port)) as client:
            client.sendall(payload)
            rec.wait_for_acks(n, timeout=120)
        return n / (time.perf_counter() - start)


def bench_writer(seconds: float) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp, WriteRecorder() as rec:
        argv = rec.writer_argv(
            node="n", file=f"{tmp}/data", address=rec.address, python=sys.executable
        )
        result: list[object] = []
        thread = threading.Thread(
            target=lambda: result.append(LocalRunner().run(argv, check=False, timeout=seconds)),
        )
        thread.start()
        rec.wait_for_acks(1, timeout=30)
        first = rec.acks()[0].host_time
        thread.join()
        acks = rec.acks()
        span = acks[-1].host_time - first
        return (len(acks) - 1) / span if span > 0 else 0.0, len(acks)


def bench_dmesg(rounds: int = 10) -> tuple[list[float], float, int]:
    runner = LocalRunner()
    tl = Timeline()
    poller = DmesgPoller(runner, tl, "host")
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        poller.poll_once()
        times.append(time.perf_counter() - start)
    lines = len(runner.run(["dmesg"], timeout=30).stdout.splitlines())
    return times, poller.clock_map.uncertainty, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=100_000, help="kernel lines to feed")
    parser.add_argument("--writer-seconds", type=float, default=3.0)
    args = parser.parse_args()

    print(f"lines: {len(sample_lines())} distinct captured kernel lines, cycled to {args.n}")
    parse_rate, append_rate, feed_rate = bench_feed(args.n)
    print(f"parse only (parse_kernel_line)        {parse_rate:12,.0f} lines/s")
    print(f"append only (Timeline.add_kernel)     {append_rate:12,.0f} events/s")
    print(f"ConsoleFeed: parse + assemble + append {feed_rate:11,.0f} lines/s")
    per100k = bench_memory()
    print(
        f"memory per 100k events                {per100k / 2**20:12.1f} MiB"
        f"  ({per100k / 100_000:.0f} B/event)"
    )
    lat = sorted(bench_expect_latency())
    print(
        f"expect() wake-up latency              median {statistics.median(lat) * 1e6:6.0f} us,"
        f" p95 {lat[int(len(lat) * 0.95)] * 1e6:6.0f} us, max {lat[-1] * 1e6:6.0f} us"
    )
    rate = bench_recorder_socket(20_000)
    print(f"recorder intake, one client           {rate:12,.0f} acks/s (timeline attached)")
    wrate, count = bench_writer(args.writer_seconds)
    print(
        f"writer (fsync per 4 KiB record, tmp)  {wrate:12,.0f} acks/s"
        f" ({count} in {args.writer_seconds:g} s)"
    )
    times, unc, nlines = bench_dmesg()
    print(
        f"dmesg poll via LocalRunner            median {statistics.median(times) * 1e3:6.1f} ms"
        f" for {nlines} lines; clock mapping uncertainty +-{unc * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
