"""How much a sweep gains from worker processes, and what Dask's scheduling costs per run.

    python bench/sweep_bench.py                        # 200 runs, 1,000 trivial tasks (5 minutes, 2 cores)
    python bench/sweep_bench.py --runs 12 --tasks 100  # a quick look while developing

1. **Speed-up**: the same sweep of ``--runs`` moons runs (5 learning rates x 4 widths x
   seeds, the dataset's defaults otherwise, as ``arenagrad sweep`` would run them), first
   as a plain loop calling :func:`arenagrad.sweep.train_run` in this one process, then
   through :func:`arenagrad.sweep.map_runs` on ``--workers`` local processes
   (their start-up included), then on a Dask ``LocalCluster`` of as many one-thread
   worker processes (its start-up excluded: a cluster outlives a sweep). Target: local
   processes at least 1.8x faster than one process on 2 cores.
2. **Scheduling overhead per run** on the LocalCluster: ``--tasks`` trivial tasks (each
   returns its argument) through ``map_runs``, wall time divided by the number of tasks.
   A trivial task's own time is nil, so this is what the machinery adds to every run:
   pickling the task, the scheduler's bookkeeping, the round trips client -> scheduler
   -> worker -> scheduler -> client, and the result's row. With W workers running tasks
   side by side, a task's full round trip is about W times this figure. Dask's own
   floor, ``client.map`` + ``gather`` of the same tasks all submitted at once, is shown
   beside it: the difference is the price of keeping no run queued on a worker (see
   arenagrad/sweep/dask.py). Target: at most 20 ms per run.

Every timing is the median of ``--repeats`` rounds. Prints a table and writes JSON
(bench/results/sweep.json by default).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from arenagrad.options import OptionError
from arenagrad.sweep import map_runs, train_run
from arenagrad.sweep.dask import connect
from arenagrad.sweep.local import default_workers
from arenagrad.sweep.training import SweepConfig, plan

HERE = Path(__file__).resolve().parent
Row = Dict[str, Any]


def sweep_runs(n: int) -> List[Dict[str, Any]]:
    """``n`` runs of moons at its defaults (200 samples, 50 epochs; 0.1 to 0.25 s each on
    this project's machines): 5 learning rates x 4 hidden widths x as many seeds as it takes."""
    grid = {"lr": [0.01, 0.03, 0.1, 0.3, 1.0], "hidden": [[4], [8], [16], [8, 8]]}
    return plan(SweepConfig(runs=grid, seeds=max(1, -(-n // 20))))[:n]


def echo(x: Any) -> Any:
    """A trivial task: what is left of its time is the machinery's."""
    return x


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def same_numbers(a: List[Row], b: List[Row]) -> bool:
    """Whether two tables agree on everything but the time."""
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a]
    return strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b]


def bench_speedup(runs: List[Dict[str, Any]], workers: int, repeats: int, client: Any) -> List[Row]:
    serial_table: List[Row] = []

    def serial() -> None:
        serial_table[:] = [{"run": i, **r, **train_run(r)} for i, r in enumerate(runs)]

    one = median_seconds(serial, repeats)
    tables: Dict[str, List[Row]] = {}

    def parallel(name: str, **backend: Any) -> Callable[[], None]:
        def go() -> None:
            tables[name] = map_runs(train_run, runs, progress=False, **backend)

        return go

    local = median_seconds(parallel("local", workers=workers), repeats)
    dask = median_seconds(parallel("dask", client=client), repeats) if client is not None else None
    reference = [{**row, "status": "ok", "tries": 1, "error": ""} for row in serial_table]
    rows = [
        {"what": f"{len(runs)}-run sweep, one process (plain loop)", "value": one, "unit": "s", "note": ""},
        {
            "what": f"{len(runs)}-run sweep, {workers} local processes",
            "value": local,
            "unit": "s",
            "note": f"{one / local:.2f}x faster than one process (target >= 1.8x); "
            f"same table: {same_numbers(tables['local'], reference)}",
        },
    ]
    if dask is not None:
        rows.append(
            {
                "what": f"{len(runs)}-run sweep, Dask LocalCluster of {workers} processes",
                "value": dask,
                "unit": "s",
                "note": f"{one / dask:.2f}x faster than one process; "
                f"same table: {same_numbers(tables['dask'], reference)}",
            }
        )
    return rows


def bench_overhead(client: Any, tasks: int, repeats: int, workers: int) -> List[Row]:
    items = list(range(tasks))
    ours = median_seconds(lambda: map_runs(echo, items, client=client, progress=False), repeats) / tasks
    floor = median_seconds(lambda: client.gather(client.map(echo, items, pure=False)), repeats) / tasks
    local = median_seconds(lambda: map_runs(echo, items, workers=workers, progress=False), repeats) / tasks
    return [
        {
            "what": "scheduling overhead per run, Dask LocalCluster (map_runs)",
            "value": 1000 * ours,
            "unit": "ms",
            "note": f"{tasks} trivial tasks, wall / tasks (target <= 20 ms)",
        },
        {
            "what": "the same, Dask's floor (client.map + gather, all queued at once)",
            "value": 1000 * floor,
            "unit": "ms",
            "note": "no retry accounting, runs queued behind each other on a worker",
        },
        {
            "what": "overhead per run, local processes (map_runs)",
            "value": 1000 * local,
            "unit": "ms",
            "note": f"{workers} processes, their start-up included",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs in the sweep (default 200)")
    parser.add_argument("--tasks", type=int, default=1000, help="trivial tasks for the overhead (default 1000)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes (default: the cores)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per timing; the median is reported")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sweep.json")
    args = parser.parse_args()

    runs = sweep_runs(args.runs)
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(connect("local", args.workers))
        except OptionError as err:  # no Dask: the local rows alone
            print(f"{err}; local processes only")
            client = None
        rows = bench_speedup(runs, args.workers, args.repeats, client)
        if client is not None:
            rows += bench_overhead(client, args.tasks, args.repeats, args.workers)

    width = max(len(row["what"]) for row in rows)
    print(f"{'what':<{width}}  {'value':>9}  note")
    for row in rows:
        print(f"{row['what']:<{width}}  {row['value']:>7.3f} {row['unit']:<2}  {row['note']}")
    machine = {
        "cores": os.cpu_count(),
        "workers": args.workers,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": machine, "runs": len(runs), "tasks": args.tasks, "rows": rows}, indent=1)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
