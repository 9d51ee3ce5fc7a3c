"""arenagrad's benchmark: every figure a median of repeated runs, each beside
the peer measured in the same run.

    python bench/run.py            # full run (a few minutes on 2 cores)
    python bench/run.py --quick    # fewer repeats, smaller graphs (~1 minute)

Prints a Markdown table and writes JSON (bench/results/latest.json by
default). micrograd, PyTorch and a C compiler are optional: rows for a
missing peer say so.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workloads  # noqa: E402

import arenagrad as ag  # noqa: E402

Row = Dict[str, Any]


def median_time(fn: Callable[[], Any], repeats: int, setup: Optional[Callable[[], Any]] = None) -> float:
    """Median wall time of fn() in seconds over `repeats` runs (setup untimed)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def try_import(name: str) -> Any:
    """The module `name` (dotted names give the submodule), or None if absent."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def row(section: str, workload: str, engine: str, value: Optional[float], unit: str,
        vs: str = "", note: str = "") -> Row:
    return {"section": section, "workload": workload, "engine": engine, "value": value,
            "unit": unit, "vs": vs, "note": note}


# ------------------------------------------------------------------ 1. per op


def bench_per_op(quick: bool) -> List[Row]:
    """One `a*b` and one `c+a` from a Python loop, ns per op."""
    n = 50_000 if quick else 100_000
    reps = 3 if quick else 7

    def per_op(Value: Callable, n: int, reps: int) -> float:
        a, b, c = Value(1.5), Value(0.5), Value(2.0)

        def loop() -> None:
            for _ in range(n):
                a * b
                c + a

        return median_time(loop, reps) / (2 * n) * 1e9

    W = "a*b, c+a from a Python loop"
    micrograd = try_import("micrograd.engine")
    MValue = micrograd.Value if micrograd else None
    # The two engines alternate in rounds so that a slow spell falls on both.
    ag_rounds, mg_rounds = [], []
    for _ in range(reps):
        ag_rounds.append(per_op(ag.Value, n, 3))
        if MValue is not None:
            mg_rounds.append(per_op(MValue, n // 8, 3))
    t_ag = statistics.median(ag_rounds)
    rows = [row("per-op", W, "arenagrad", t_ag, "ns/op")]
    if MValue is not None:
        t_mg = statistics.median(mg_rounds)
        rows.append(row("per-op", W, "micrograd", t_mg, "ns/op"))
        rows[0]["vs"] = f"{t_mg / t_ag:.1f}x faster than micrograd"
    else:
        rows.append(row("per-op", W, "micrograd", None, "ns/op", note="micrograd not installed"))
    return rows


# ----------------------------------------------------------- 2. moons step


def bench_moons(quick: bool) -> List[Row]:
    """micrograd's moons demo step: MLP 2-16-16-1, 100 samples, hinge + L2, SGD."""
    from arenagrad.nn import MLP
    from arenagrad.nn import functional as F

    X, y = workloads.moons_data()
    W = "moons step (MLP 2-16-16-1, 100 samples)"
    rows: List[Row] = []
    reps = 5 if quick else 15

    # arenagrad, micrograd's code unchanged but for the import.
    ag.manual_seed(0)
    model = MLP(2, [16, 16, 1])
    k = [0]

    def ag_step() -> None:
        workloads.micrograd_style_step(ag.Value, model, X, y, k[0] % 100)
        k[0] += 1

    ag_step()
    t_ag = median_time(ag_step, reps)
    rows.append(row("moons", W, "arenagrad eager, micrograd's code", t_ag * 1e3, "ms/step"))

    # arenagrad, idiomatic: fused losses, inputs as floats.
    model2 = MLP(2, [16, 16, 1])
    params = model2.parameters()

    def idiomatic_loss() -> Any:
        scores = [model2(x) for x in X]
        return F.hinge_loss(scores, y) + F.l2_penalty(params, alpha=1e-4)

    def ag_idiomatic() -> None:
        loss = idiomatic_loss()
        model2.zero_grad()
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad

    ag_idiomatic()
    t_idiom = median_time(ag_idiomatic, reps)
    rows.append(row("moons", W, "arenagrad eager, fused losses", t_idiom * 1e3, "ms/step"))

    # arenagrad compiled: record once, replay every step.
    loss = idiomatic_loss()
    step = ag.compile(loss)

    def ag_compiled() -> None:
        step.forward()
        for p in params:
            p.grad = 0.0
        step.backward()
        for p in params:
            p.data -= 0.1 * p.grad

    ag_compiled()
    t_comp = median_time(ag_compiled, reps * 4)
    rows.append(row("moons", W, "arenagrad compiled replay", t_comp * 1e3, "ms/step"))

    micrograd = try_import("micrograd.nn")
    if micrograd:
        import random

        from micrograd.engine import Value as MValue
        from micrograd.nn import MLP as MMLP

        random.seed(1337)
        mmodel = MMLP(2, [16, 16, 1])
        mk = [0]

        def mg_step() -> None:
            workloads.micrograd_style_step(MValue, mmodel, X, y, mk[0] % 100)
            mk[0] += 1

        mreps = 3 if quick else 5
        gc.collect()
        t_mg = median_time(mg_step, mreps)
        gc.disable()
        try:
            t_mg_nogc = median_time(mg_step, mreps)
        finally:
            gc.enable()
            gc.collect()
        rows.append(row("moons", W, "micrograd (default GC)", t_mg * 1e3, "ms/step"))
        rows.append(row("moons", W, "micrograd (GC off)", t_mg_nogc * 1e3, "ms/step"))
        rows[0]["vs"] = f"{t_mg / t_ag:.0f}x micrograd, {t_mg_nogc / t_ag:.0f}x micrograd GC off"
        rows[1]["vs"] = f"{t_mg / t_idiom:.0f}x micrograd, {t_mg_nogc / t_idiom:.0f}x micrograd GC off"
        rows[2]["vs"] = f"{t_mg / t_comp:.0f}x micrograd"
    else:
        rows.append(row("moons", W, "micrograd", None, "ms/step", note="micrograd not installed"))

    torch = try_import("torch")
    if torch:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                                  torch.nn.ReLU(), torch.nn.Linear(16, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
        workloads.torch_moons_step(torch, net, opt, Xt, yt)
        t_torch = median_time(lambda: workloads.torch_moons_step(torch, net, opt, Xt, yt), reps * 4)
        rows.append(row("moons", W, "PyTorch eager, batched, 1 thread", t_torch * 1e3, "ms/step"))
        for r in rows[:3]:
            r["vs"] = (r["vs"] + "; " if r["vs"] else "") + f"{r['value'] / (t_torch * 1e3):.2f}x PyTorch's time"
    else:
        rows.append(row("moons", W, "PyTorch eager", None, "ms/step", note="torch not installed"))
    return rows


# ------------------------------------------------------- 3. many-ops graph


_TAPE_DIR = tempfile.TemporaryDirectory()


def tape_floor(n_ops: int, reps: int) -> Optional[Dict[str, float]]:
    """Run bench/tape.c, compiled once with the system compiler; None without one."""
    exe = os.path.join(_TAPE_DIR.name, "tape")
    if not os.path.exists(exe):
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            return None
        subprocess.run([cc, "-O2", "-o", exe, str(HERE / "tape.c"), "-lm"], check=True)
    out = subprocess.run([exe, str(n_ops), str(reps)], check=True, capture_output=True, text=True).stdout
    nodes, value, ns = out.split()
    return {"nodes": int(nodes), "value": float(value), "ns": float(ns)}


def bench_graph(quick: bool) -> List[Row]:
    n_ops = 10_000
    W = f"{n_ops:,}-op scalar graph (docs/architecture.md)"
    reps = 5 if quick else 11
    rows: List[Row] = []

    def ag_eager() -> None:
        leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
        nodes[-1].backward()

    leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    out = nodes[-1]
    assert out.data == workloads.SCALAR_GRAPH_10K_OUTPUT, out.data
    t_eager = median_time(ag_eager, reps)
    rows.append(row("graph", W, "arenagrad eager build + backward", t_eager * 1e3, "ms"))

    step = ag.compile(out)

    def replay() -> None:
        step.forward()
        step.backward()

    # Replay and the C floor alternate in rounds, each round's medians kept, so
    # that a slow spell of a shared machine falls on both.
    replay()
    rounds = 3 if quick else 7
    per_round = 40
    t_rounds, c_rounds = [], []
    floor = None
    for _ in range(rounds):
        t_rounds.append(median_time(replay, per_round))
        floor = tape_floor(n_ops, per_round)
        if floor:
            c_rounds.append(floor["ns"] / 1e9)
    t_replay = statistics.median(t_rounds)
    rows.append(row("graph", W, "arenagrad replay forward + backward", t_replay * 1e3, "ms",
                    note=f"median of {rounds} rounds of {per_round}, alternating with the C loop"))

    torch = try_import("torch")
    if torch:
        torch.set_num_threads(1)

        def torch_eager() -> None:
            leaves, nodes = workloads.scalar_graph_torch(torch, n_ops)
            nodes[-1].backward()

        t_torch = median_time(torch_eager, 3 if quick else 5)
        rows.append(row("graph", W, "PyTorch eager build + backward", t_torch * 1e3, "ms"))
        rows[0]["vs"] = f"{t_torch / t_eager:.0f}x faster than PyTorch eager"
    else:
        rows.append(row("graph", W, "PyTorch eager", None, "ms", note="torch not installed"))

    if floor:
        assert floor["value"] == workloads.SCALAR_GRAPH_10K_OUTPUT, floor
        t_c = statistics.median(c_rounds)
        rows.append(row("graph", W, "plain C tape loop (cc -O2)", t_c * 1e3, "ms"))
        rows[1]["vs"] = f"{t_replay / t_c:.2f}x the C loop"
    else:
        rows.append(row("graph", W, "plain C tape loop", None, "ms", note="no C compiler"))
    return rows


# ------------------------------------------------------ 4-5. memory, depth


CHILD = r"""
import gc, sys, time, tracemalloc, json
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
kind, n = sys.argv[1], int(sys.argv[2])
if kind == 'arenagrad-memory':
    import arenagrad as ag
    x = ag.Value(1.0)
    y = x
    y = y * 1.0 + 1.0  # warm the pool
    del y
    gc.collect()
    before = rss()
    y = x
    for _ in range(n // 2):
        y = y * 1.0000001 + 0.0
    print(json.dumps({"bytes_per_node": (rss() - before) / n, "node_bytes": ag.NODE_BYTES}))
elif kind == 'micrograd-memory':
    from micrograd.engine import Value
    x = Value(1.0)
    tracemalloc.start()
    y = x
    for _ in range(n // 2):
        y = y * 1.0000001 + 0.0   # micrograd also makes a Value per constant
    cur, _ = tracemalloc.get_traced_memory()
    print(json.dumps({"bytes_per_node": cur / (2 * n)}))
elif kind == 'arenagrad-chain':
    import arenagrad as ag
    x = ag.Value(0.5)
    t = time.perf_counter()
    y = x
    for _ in range(n):
        y = y * 1.0 + 0.0
    build = time.perf_counter() - t
    t = time.perf_counter(); y.backward(); bwd = time.perf_counter() - t
    t = time.perf_counter(); y.backward(); bwd2 = time.perf_counter() - t
    live = ag.engine_stats()["live_nodes"]
    t = time.perf_counter(); del y; free = time.perf_counter() - t
    print(json.dumps({"nodes": 2 * n, "build_s": build, "backward_s": min(bwd, bwd2), "free_s": free,
                      "grad": x.grad, "live_before_free": live, "live_after": ag.engine_stats()["live_nodes"]}))
elif kind == 'micrograd-depth':
    from micrograd.engine import Value
    x = Value(0.5)
    y = x
    for _ in range(n):
        y = y * 1.0
    try:
        y.backward()
        print(json.dumps({"ok": True}))
    except RecursionError:
        print(json.dumps({"ok": False}))
"""


def child(kind: str, n: int) -> Optional[Dict[str, Any]]:
    r = subprocess.run([sys.executable, "-c", CHILD, kind, str(n)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_memory(quick: bool) -> List[Row]:
    n = 1_000_000 if quick else 4_000_000
    rows: List[Row] = []
    m = child("arenagrad-memory", n)
    W = "memory per node held only by the graph"
    rows.append(row("memory", W, "arenagrad", m["bytes_per_node"] if m else None, "B/node",
                    note=f"record size {ag.NODE_BYTES} B; measured as RSS growth over {n:,} nodes"))
    if try_import("micrograd"):
        mm = child("micrograd-memory", n // 10)
        rows.append(row("memory", W, "micrograd", mm["bytes_per_node"] if mm else None, "B/node",
                        note="tracemalloc, Value + its closure, set and tuple"))
        if m and mm:
            rows[0]["vs"] = f"{mm['bytes_per_node'] / m['bytes_per_node']:.1f}x less than micrograd"
    return rows


def bench_chain(quick: bool) -> List[Row]:
    n = 1_000_000 if quick else 5_000_000  # two nodes per step
    rows: List[Row] = []
    c = child("arenagrad-chain", n)
    W = f"{2 * n:,}-node chain"
    if c:
        ok = c["live_after"] <= 2 and abs(c["grad"] - 2.0) < 1e-9  # backward ran twice: 1 + 1
        rows.append(row("chain", W, "arenagrad backward", c["backward_s"] / c["nodes"] * 1e9, "ns/node",
                        note=f"build {c['build_s']:.2f} s, free {c['free_s'] * 1e3:.0f} ms, "
                             f"all freed: {ok}"))
    else:
        rows.append(row("chain", W, "arenagrad", None, "ns/node", note="FAILED"))
    if try_import("micrograd"):
        d = child("micrograd-depth", 2_000)
        rows.append(row("chain", "2,000-node chain", "micrograd backward", None, "",
                        note="RecursionError" if d and not d["ok"] else "ok"))
    return rows


# ------------------------------------------------------------------- main


SECTIONS = {"ops": bench_per_op, "moons": bench_moons, "graph": bench_graph,
            "memory": bench_memory, "chain": bench_chain}


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if v < 10 else f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def machine() -> Dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    torch = try_import("torch")
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "torch": getattr(torch, "__version__", None),
            "date": time.strftime("%Y-%m-%d")}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller graphs")
    p.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    p.add_argument("--json", help="where to write the JSON (default: bench/results/latest.json, "
                                  "or latest-quick.json with --quick or --only)")
    args = p.parse_args(argv)
    if args.json is None:
        partial = args.quick or args.only
        args.json = str(HERE / "results" / ("latest-quick.json" if partial else "latest.json"))

    # One core for the whole run, children included: on a shared 2-core VM the
    # two cores can differ in speed for minutes at a time, and a ratio is only
    # fair when both peers ran on the same one.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    rows: List[Row] = []
    for name, fn in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(fn(args.quick))

    info = machine()
    print(f"\nMachine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
          f"torch {info['torch']}, {info['date']}{' (quick)' if args.quick else ''}\n")
    print("| workload | engine | median | unit | compared in the same run | note |")
    print("|---|---|---:|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['engine']} | {fmt(r['value'])} | {r['unit']} | {r['vs']} | {r['note']} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "quick": args.quick, "rows": rows}, f, indent=1)
    print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
