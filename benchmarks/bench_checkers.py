"""The consistency checkers on large synthetic histories: time and memory.

A history is made the way a cluster makes one: P processes (nodes) issue operations back
to back, each taking 5-50 ms; each operation takes effect at a random instant inside its
interval, and reads return what a sequential register (or log, or counter) holds at that
instant. The result is valid by construction; the checkers must say so, in time.

Run: .venv/bin/python benchmarks/bench_checkers.py [--ops 10000] [--keys 8] [--processes 5]
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Callable

from ocfs2lab.consistency import (
    CheckResult,
    History,
    Op,
    check_appends,
    check_mutex,
    check_registers,
)


def _intervals(
    rng: random.Random, ops: int, processes: int
) -> list[tuple[float, float, float, str]]:
    """(invoke, instant, complete, node) for ``ops`` operations over ``processes``."""
    clock = [0.0] * processes
    out = []
    for _ in range(ops):
        p = rng.randrange(processes)
        start = clock[p] + rng.uniform(0.0, 0.01)
        end = start + rng.uniform(0.005, 0.05)
        clock[p] = end
        out.append((start, rng.uniform(start, end), end, f"node-{p + 1}"))
    return out


def registers(rng: random.Random, ops: int, keys: int, processes: int) -> History:
    slots = _intervals(rng, ops, processes)
    order = sorted(range(ops), key=lambda i: slots[i][1])
    values: dict[str, int | None] = {}
    made = []
    for n, i in enumerate(order):
        invoke, _, complete, node = slots[i]
        key = f"r{rng.randrange(keys)}"
        v: int | None
        if rng.random() < 0.5:
            values[key] = n
            f, v = "write", n
        else:
            f, v = "read", values.get(key)
        made.append(Op(i, f"{node}/0", node, f, key, v, invoke, complete))
    return History(made)


def appends(rng: random.Random, ops: int, keys: int, processes: int) -> History:
    slots = _intervals(rng, ops, processes)
    order = sorted(range(ops), key=lambda i: slots[i][1])
    logs: dict[str, list[str]] = {f"log{k}": [] for k in range(keys)}
    made = []
    for n, i in enumerate(order):
        invoke, _, complete, node = slots[i]
        key = f"log{rng.randrange(keys)}"
        if rng.random() < 0.9:
            logs[key].append(f"{node}-{n}")
            made.append(Op(i, f"{node}/0", node, "append", key, logs[key][-1], invoke, complete))
        else:
            made.append(Op(i, f"{node}/0", node, "read", key, list(logs[key]), invoke, complete))
    end = max(op.complete or 0.0 for op in made) + 1.0
    for k, (key, log) in enumerate(logs.items()):
        made.append(Op(ops + k, "final/0", "node-1", "read", key, list(log), end, end + 0.1))
    return History(made)


def counters(rng: random.Random, ops: int, keys: int, processes: int) -> History:
    slots = _intervals(rng, ops, processes)
    order = sorted(range(ops), key=lambda i: slots[i][1])
    counts = {f"c{k}": 0 for k in range(keys)}
    made = []
    for i in order:
        invoke, _, complete, node = slots[i]
        key = f"c{rng.randrange(keys)}"
        made.append(
            Op(i, f"{node}/0", node, "incr", key, [counts[key], counts[key] + 1], invoke, complete)
        )
        counts[key] += 1
    end = max(op.complete or 0.0 for op in made) + 1.0
    for k, (key, value) in enumerate(counts.items()):
        made.append(Op(ops + k, "final/0", "node-1", "read", key, value, end, end + 0.1))
    return History(made)


def plant_stale_read(history: History) -> History:
    """The same history with one read, in the middle, returning a value no write wrote."""
    ops = list(history)
    reads = [n for n, op in enumerate(ops) if op.f == "read"]
    n = reads[len(reads) // 2]
    old = ops[n]
    ops[n] = Op(old.index, old.process, old.node, "read", old.key, -1, old.invoke, old.complete)
    return History(ops)


def measure(
    name: str, check: Callable[[History], CheckResult], history: History, *, valid: bool = True
) -> None:
    started = time.perf_counter()
    result = check(history)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    check(history)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{name:9s} {len(history):6d} ops  {len(history.keys()):3d} keys  {seconds:6.2f} s  "
        f"peak {peak / 2**20:6.1f} MiB  {result.summary()}"
    )
    if result.valid is not valid:
        raise SystemExit(f"{name}: judged {result.valid}, not {valid}: {result.anomalies[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shape = (args.ops, args.keys, args.processes)
    print(f"{args.ops} operations, {args.keys} keys, {args.processes} processes, seed {args.seed}")
    history = registers(rng, *shape)
    measure("register", check_registers, history)
    measure("stale", check_registers, plant_stale_read(history), valid=False)
    measure("append", check_appends, appends(rng, *shape))
    measure("mutex", check_mutex, counters(rng, *shape))


if __name__ == "__main__":
    main()
