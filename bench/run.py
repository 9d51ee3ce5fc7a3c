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
import builtins
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import arenagrad as ag  # noqa: E402
import workloads  # noqa: E402

Row = Dict[str, Any]


def timed(
    fn: Callable[[], Any], warmup: int, reps: int, setup: Optional[Callable[[], Any]] = None, gc_off: bool = False
) -> List[float]:
    """Wall times of fn() in seconds: `warmup` untimed calls, then `reps` timed.

    Starts from a collected heap. setup() runs untimed before every call. With
    gc_off the cyclic garbage collector is disabled throughout (pass
    setup=gc.collect to empty the heap between calls, untimed).
    """
    gc.collect()
    enabled = gc.isenabled()
    if gc_off:
        gc.disable()
    try:
        for _ in range(warmup):
            if setup is not None:
                setup()
            fn()
        times = []
        for _ in range(reps):
            if setup is not None:
                setup()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    finally:
        if gc_off and enabled:
            gc.enable()
    return times


Block = Callable[[int, int], List[float]]  # (warmup, reps) -> seconds per timed run


def block(fn: Callable[[], Any], setup: Optional[Callable[[], Any]] = None, gc_off: bool = False) -> Block:
    return lambda warmup, reps: timed(fn, warmup, reps, setup, gc_off)


def alternate(blocks: Dict[str, Block], rounds: int, warmup: int, reps: int, settle: int = 0) -> Dict[str, float]:
    """Median seconds per run of each engine, every engine treated alike.

    Each engine first gets `settle` untimed runs (PyTorch, for one, takes
    about ten steps to reach its steady speed). Then in each of `rounds`
    rounds every engine in turn gets `warmup` untimed runs and `reps` timed
    ones, so that a slow spell of a shared machine falls on all of them; each
    median is over all rounds x reps timed runs.
    """
    samples: Dict[str, List[float]] = {name: [] for name in blocks}
    # The bench's own objects (imported modules, torch, the models) are moved
    # out of the collector's sight, so that an engine whose garbage needs the
    # collector (micrograd) pays for its own objects only, as in a process of
    # its own, and not for whatever the bench imported before it.
    gc.collect()
    gc.freeze()
    try:
        if settle:
            for b in blocks.values():
                b(settle, 0)
        for _ in range(rounds):
            for name, b in blocks.items():
                samples[name].extend(b(warmup, reps))
    finally:
        gc.unfreeze()
    return {name: statistics.median(t) for name, t in samples.items()}


def treatment(rounds: int, warmup: int, reps: int, settle: int = 0) -> str:
    first = f"{settle} untimed run{'s' if settle > 1 else ''}, then " if settle else ""
    return f"each engine: {first}{rounds} rounds of {warmup} warm-up + {reps} timed, alternating"


def try_import(name: str) -> Any:
    """The module `name` (dotted names give the submodule), or None if absent."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def row(
    section: str, workload: str, engine: str, value: Optional[float], unit: str, vs: str = "", note: str = ""
) -> Row:
    return {
        "section": section,
        "workload": workload,
        "engine": engine,
        "value": value,
        "unit": unit,
        "vs": vs,
        "note": note,
    }


def peer_row(
    section: str, workload: str, engine: str, value: Optional[float], unit: str, note: str, absent: str
) -> Row:
    """A peer's row: its figure, or (value None) its short name with why it is missing."""
    if value is None:
        name, _, why = absent.partition(": ")
        return row(section, workload, name, None, unit, note=why)
    return row(section, workload, engine, value, unit, note=note)


# ------------------------------------------------------------------ 1. per op


def bench_per_op(quick: bool) -> List[Row]:
    """One `a*b` and one `c+a` from a Python loop, ns per op."""
    n = 20_000 if quick else 50_000
    rounds, warmup, reps, settle = (3, 1, 3, 1) if quick else (5, 1, 3, 1)

    def loop_of(Value: Callable) -> Callable[[], None]:
        a, b, c = Value(1.5), Value(0.5), Value(2.0)

        def loop() -> None:
            for _ in range(n):
                a * b
                c + a

        return loop

    W = "a*b, c+a from a Python loop"
    micrograd = try_import("micrograd.engine")
    blocks = {"arenagrad": block(loop_of(ag.Value))}
    if micrograd:
        # micrograd's results are cyclic garbage (each holds a closure that
        # refers back to it): with the collector off they pile up until the
        # untimed collection between loops.
        blocks["micrograd"] = block(loop_of(micrograd.Value))
        blocks["micrograd, GC off"] = block(loop_of(micrograd.Value), setup=gc.collect, gc_off=True)
    t = {k: v / (2 * n) * 1e9 for k, v in alternate(blocks, rounds, warmup, reps, settle).items()}
    note = f"{n:,} iterations per run; " + treatment(rounds, warmup, reps, settle)
    rows = [row("per-op", W, "arenagrad", t["arenagrad"], "ns/op", note=note)]
    if micrograd:
        rows.append(row("per-op", W, "micrograd (default GC)", t["micrograd"], "ns/op"))
        rows.append(
            row(
                "per-op",
                W,
                "micrograd (GC off)",
                t["micrograd, GC off"],
                "ns/op",
                note="collector disabled; garbage collected between runs, untimed",
            )
        )
        rows[0]["vs"] = (
            f"{t['micrograd'] / t['arenagrad']:.1f}x faster than micrograd, "
            f"{t['micrograd, GC off'] / t['arenagrad']:.1f}x micrograd GC off"
        )
    else:
        rows.append(row("per-op", W, "micrograd", None, "ns/op", note="micrograd not installed"))
    return rows


# ----------------------------------------------------------- 2. moons step


def micrograd_nn_on(Value: Any) -> Optional[Dict[str, Any]]:
    """micrograd's own nn.py, read from the installed package and run with its
    `from micrograd.engine import Value` bound to `Value`; its namespace
    (Neuron, Layer, MLP, ...), or None without micrograd. Nothing is copied
    and nothing is patched: the import statement is answered by a stand-in
    for micrograd.engine that holds `Value`.
    """
    spec = importlib.util.find_spec("micrograd.nn") if try_import("micrograd") else None
    if spec is None or not spec.origin:
        return None
    with open(spec.origin) as f:
        source = f.read()
    engine = types.SimpleNamespace(Value=Value)
    real_import = builtins.__import__

    def answer(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if name == "micrograd.engine" and level == 0:
            return engine
        return real_import(name, globals, locals, fromlist, level)

    ns: Dict[str, Any] = {
        "__name__": "micrograd_nn_on_" + Value.__module__.split(".")[0],
        "__file__": spec.origin,
        "__builtins__": {**vars(builtins), "__import__": answer},
    }
    exec(compile(source, spec.origin, "exec"), ns)
    if ns.get("Value") is not Value:
        raise RuntimeError(f"{spec.origin} did not take its Value from micrograd.engine")
    return ns


def bench_moons(quick: bool) -> List[Row]:
    """micrograd's moons demo step: MLP 2-16-16-1, 100 samples, hinge + L2, SGD."""
    import random

    from arenagrad.nn import MLP
    from arenagrad.nn import functional as F

    X, y = workloads.moons_data()
    W = "moons step (MLP 2-16-16-1, 100 samples)"
    rounds, warmup, reps, settle = (2, 1, 2, 3) if quick else (3, 1, 4, 10)
    blocks: Dict[str, Block] = {}
    notes: Dict[str, str] = {}

    def micrograd_demo(Value: Any, model: Any, **how: Any) -> Block:
        """micrograd's demo step (its loss, backward, SGD with lr decay) on `model`."""
        k = [0]

        def step() -> None:
            workloads.micrograd_style_step(Value, model, X, y, k[0] % 100)
            k[0] += 1

        return block(step, **how)

    # arenagrad running micrograd's own code: its nn.py and its demo's loss,
    # with arenagrad.Value in place of micrograd's.
    mg_nn_ag = micrograd_nn_on(ag.Value)
    mg_engine = try_import("micrograd.engine")
    if mg_nn_ag:
        random.seed(1337)
        blocks["mg-code"] = micrograd_demo(ag.Value, mg_nn_ag["MLP"](2, [16, 16, 1]))
        notes["mg-code"] = "micrograd.nn's source run on arenagrad.Value: 2 nodes per weight"
        if mg_engine:
            # The same code from the same seed computes micrograd's loss, to the bit.
            random.seed(1337)
            loss_ag, _ = workloads.micrograd_style_loss(ag.Value, mg_nn_ag["MLP"](2, [16, 16, 1]), X, y)
            random.seed(1337)
            loss_mg, _ = workloads.micrograd_style_loss(
                mg_engine.Value, try_import("micrograd.nn").MLP(2, [16, 16, 1]), X, y
            )
            assert loss_ag.data == loss_mg.data, (loss_ag.data, loss_mg.data)
            notes["mg-code"] += "; loss equal to micrograd's, bit for bit"
            del loss_ag, loss_mg

    # arenagrad.micrograd: micrograd's Value and nn (numbers as nodes, its
    # backward) on arenagrad's engine, under micrograd's demo loss.
    from arenagrad.micrograd import engine as agmg_engine
    from arenagrad.micrograd import nn as agmg_nn

    random.seed(1337)
    blocks["agmg"] = micrograd_demo(agmg_engine.Value, agmg_nn.MLP(2, [16, 16, 1]))
    notes["agmg"] = "micrograd's semantics (numbers become nodes, its backward); same losses as micrograd (tests)"

    # arenagrad.nn.MLP (call-compatible with micrograd.nn.MLP, one fused dot
    # per neuron) under micrograd's demo loss.
    ag.manual_seed(0)
    blocks["ag-mlp"] = micrograd_demo(ag.Value, MLP(2, [16, 16, 1]))

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

    blocks["ag-fused"] = block(ag_idiomatic)

    # arenagrad compiled: record once, replay every step.
    step = ag.compile(idiomatic_loss())

    def ag_compiled() -> None:
        step.forward()
        for p in params:
            p.grad = 0.0
        step.backward()
        for p in params:
            p.data -= 0.1 * p.grad

    blocks["ag-replay"] = block(ag_compiled)

    if mg_engine:
        random.seed(1337)
        mmodel = try_import("micrograd.nn").MLP(2, [16, 16, 1])
        blocks["mg"] = micrograd_demo(mg_engine.Value, mmodel)
        blocks["mg-nogc"] = micrograd_demo(mg_engine.Value, mmodel, setup=gc.collect, gc_off=True)

    torch = try_import("torch")
    if torch:
        blocks["torch"] = block(workloads.torch_moons(torch, X, y))

    t = {k: v * 1e3 for k, v in alternate(blocks, rounds, warmup, reps, settle).items()}

    names = {
        "agmg": "arenagrad.micrograd (micrograd's Value and nn on arenagrad), micrograd's demo",
        "mg-code": "arenagrad eager, micrograd's nn.py and demo loss unchanged",
        "ag-mlp": "arenagrad eager, arenagrad.nn.MLP (fused dot per neuron), micrograd's demo loss",
        "ag-fused": "arenagrad eager, arenagrad.nn.MLP, fused losses",
        "ag-replay": "arenagrad compiled replay (arenagrad.nn.MLP, fused losses)",
        "mg": "micrograd (default GC)",
        "mg-nogc": "micrograd (GC off)",
        "torch": "PyTorch eager, batched, float64, 1 thread",
    }
    notes.setdefault("ag-mlp", "micrograd's Neuron/Layer/MLP interface: 1 dot node per neuron")
    notes.setdefault("mg", "its collections traverse its own objects only (the bench's are frozen out)")
    notes.setdefault("mg-nogc", "collector disabled; garbage collected between steps, untimed")
    rows: List[Row] = []
    for key in names:
        if key not in t:
            continue
        vs = []
        if key.startswith(("mg-code", "ag-", "agmg")):
            if "mg" in t:
                vs.append(f"{t['mg'] / t[key]:.0f}x micrograd, {t['mg-nogc'] / t[key]:.0f}x micrograd GC off")
            if "torch" in t:
                vs.append(f"{t[key] / t['torch']:.2f}x PyTorch's time")
        rows.append(row("moons", W, names[key], t[key], "ms/step", vs="; ".join(vs), note=notes.get(key, "")))
    if not mg_engine:
        rows.append(row("moons", W, "micrograd", None, "ms/step", note="micrograd not installed"))
    if not torch:
        rows.append(row("moons", W, "PyTorch eager", None, "ms/step", note="torch not installed"))
    rows[0]["note"] = (rows[0]["note"] + "; " if rows[0]["note"] else "") + treatment(rounds, warmup, reps, settle)
    return rows


# ------------------------------------------------------- 3. many-ops graph


_TAPE_DIR = tempfile.TemporaryDirectory()
TAPE_CFLAGS = ["-O3"]  # as the engine's Release build


def tape_exe() -> Optional[str]:
    """bench/tape.c compiled once with the system C compiler; None without one."""
    exe = os.path.join(_TAPE_DIR.name, "tape")
    if not os.path.exists(exe):
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            return None
        r = subprocess.run([cc, *TAPE_CFLAGS, "-o", exe, str(HERE / "tape.c"), "-lm"], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return None
    return exe


def tape_run(n_ops: int, warmup: int, reps: int, dump: bool = False) -> Dict[str, Any]:
    """One run of the C tape: `warmup` untimed forward+backward, `reps` timed."""
    exe = tape_exe()
    assert exe is not None
    out = subprocess.run(
        [exe, str(n_ops), str(reps), str(warmup), str(int(dump))], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    records, nodes, value = out[0].split()
    r: Dict[str, Any] = {
        "records": int(records),
        "nodes": int(nodes),
        "value": float(value),
        "times": [float(t) / 1e9 for t in out[1].split()],
    }
    if dump:
        r["values"] = [float(v) for v in out[2].split()]
        r["grads"] = [float(v) for v in out[3].split()]
    return r


def ulps_apart(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / math.ulp(max(abs(a), abs(b)))


def tape_agrees(nodes: List[Any], tape: Dict[str, Any]) -> str:
    """Checks the C tape's values and gradients against the engine's; says how
    they agree. The tape calls glibc's exp and log, the engine its own
    (cpp/vmath.hpp, within an ulp of glibc's), so they agree to a few ulps."""
    kept = [i for i, v in enumerate(tape["values"]) if not math.isnan(v)]
    worst_v = max(ulps_apart(nodes[i].data, tape["values"][i]) for i in kept)
    worst_g = max(ulps_apart(nodes[i].grad, tape["grads"][i]) for i in kept)
    assert worst_v <= 64, f"C tape values differ from the engine's by up to {worst_v} ulp"
    assert worst_g <= 64, f"C tape gradients differ from the engine's by up to {worst_g} ulp"
    return (
        f"values of the {len(kept):,} listed nodes it keeps within {worst_v:.0f} ulp of the engine's, "
        f"gradients within {worst_g:.0f} ulp (glibc's exp and log there, the engine's own here)"
    )


def bench_graph(quick: bool) -> List[Row]:
    n_ops = 10_000
    W = f"{n_ops:,}-op scalar graph (docs/architecture.md)"
    rows: List[Row] = []

    leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    out = nodes[-1]
    assert out.data == workloads.SCALAR_GRAPH_10K_OUTPUT, out.data
    out.backward()

    # Eager build + backward, against PyTorch's eager autograd.
    def ag_eager() -> None:
        leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
        nodes[-1].backward()

    blocks = {"ag": block(ag_eager)}
    torch = try_import("torch")
    if torch:
        torch.set_num_threads(1)

        def torch_eager() -> None:
            leaves, nodes = workloads.scalar_graph_torch(torch, n_ops)
            nodes[-1].backward()

        blocks["torch"] = block(torch_eager)
    e_rounds, e_warmup, e_reps, e_settle = (2, 1, 2, 1) if quick else (3, 1, 3, 2)
    t = alternate(blocks, e_rounds, e_warmup, e_reps, e_settle)
    rows.append(
        row(
            "graph",
            W,
            "arenagrad eager build + backward",
            t["ag"] * 1e3,
            "ms",
            note=treatment(e_rounds, e_warmup, e_reps, e_settle),
        )
    )

    # Replay against the C tape, alternating in rounds (the tape runs in a
    # process of its own, with the same warm-up and repetitions).
    step = ag.compile(out)

    def replay() -> None:
        step.forward()
        step.backward()

    r_rounds, r_warmup, r_reps = (3, 3, 40) if quick else (7, 3, 40)
    rblocks: Dict[str, Block] = {"replay": block(replay)}
    check = ""
    exe = tape_exe()
    if exe:
        tape = tape_run(n_ops, 0, 1, dump=True)
        assert tape["value"] == workloads.SCALAR_GRAPH_10K_OUTPUT, tape["value"]
        assert tape["nodes"] == step.num_nodes, (tape["nodes"], step.num_nodes)
        check = tape_agrees(nodes, tape)
        rblocks["C"] = lambda warmup, reps: tape_run(n_ops, warmup, reps)["times"]
    del leaves, nodes
    t_r = alternate(rblocks, r_rounds, r_warmup, r_reps)
    rows.append(
        row(
            "graph",
            W,
            "arenagrad replay forward + backward",
            t_r["replay"] * 1e3,
            "ms",
            note=treatment(r_rounds, r_warmup, r_reps),
        )
    )

    if torch:
        rows.append(row("graph", W, "PyTorch eager build + backward (float64)", t["torch"] * 1e3, "ms"))
        rows[0]["vs"] = f"{t['torch'] / t['ag']:.0f}x faster than PyTorch eager"
    else:
        rows.append(row("graph", W, "PyTorch eager", None, "ms", note="torch not installed"))

    if exe:
        rows.append(
            row(
                "graph",
                W,
                f"hand-written C tape (bench/tape.c, cc {' '.join(TAPE_CFLAGS)})",
                t_r["C"] * 1e3,
                "ms",
                note=f"same {step.num_nodes:,} nodes, no recomputation; " + check,
            )
        )
        rows[1]["vs"] = f"{t_r['replay'] / t_r['C']:.2f}x the C tape's time"
    else:
        rows.append(row("graph", W, "hand-written C tape", None, "ms", note="no C compiler"))
    return rows


# ------------------------------------------------------ 4-5. memory, depth


CHILD = r"""
import gc, sys, time, json
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
kind, n = sys.argv[1], int(sys.argv[2])
if kind in ('arenagrad-memory', 'micrograd-memory'):
    # The same loop and the same measure for both engines: RSS growth while
    # the graph is built. Every operand is a Value, so each op makes exactly
    # one node in either engine (micrograd would wrap a number operand in a
    # Value of its own; arenagrad keeps it in the node).
    if kind == 'arenagrad-memory':
        from arenagrad import Value
    else:
        from micrograd.engine import Value
    def build(n):
        x = Value(1.0)
        y = x
        for _ in range(n // 2):
            y = y * x + x
        return y
    y = build(2000)  # warm the allocators
    del y
    gc.collect()
    before = rss()
    y = build(n)
    print(json.dumps({"bytes_per_node": (rss() - before) / n}))
elif kind == 'arenagrad-chain':
    import arenagrad as ag
    runs = int(sys.argv[3])
    x = ag.Value(0.5)
    t = time.perf_counter()
    y = x
    for _ in range(n):
        y = y * 1.0 + 0.0
    build = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter(); y.backward(); times.append(time.perf_counter() - t)
    live = ag.engine_stats()["live_nodes"]
    t = time.perf_counter(); del y; free = time.perf_counter() - t
    print(json.dumps({"nodes": 2 * n, "build_s": build, "backward_s": sorted(times)[runs // 2], "free_s": free,
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


def child(kind: str, *args: int) -> Optional[Dict[str, Any]]:
    r = subprocess.run([sys.executable, "-c", CHILD, kind, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_memory(quick: bool) -> List[Row]:
    n = 200_000 if quick else 1_000_000
    runs = 3  # medians of separate processes, alternating
    W = "memory per node held only by the graph"
    how = f"RSS growth over {n:,} nodes (y = y * x + x), median of {runs} processes"
    have_mg = try_import("micrograd") is not None
    got: Dict[str, List[float]] = {"ag": [], "mg": []}
    for _ in range(runs):
        m = child("arenagrad-memory", n)
        if m:
            got["ag"].append(m["bytes_per_node"])
        if have_mg:
            mm = child("micrograd-memory", n)
            if mm:
                got["mg"].append(mm["bytes_per_node"])
    b = {k: statistics.median(v) if v else None for k, v in got.items()}
    rows = [row("memory", W, "arenagrad", b["ag"], "B/node", note=f"record size {ag.NODE_BYTES} B; {how}")]
    if have_mg:
        rows.append(row("memory", W, "micrograd", b["mg"], "B/node", note="the same loop and measure"))
        if b["ag"] and b["mg"]:
            rows[0]["vs"] = f"{b['mg'] / b['ag']:.1f}x less than micrograd"
    return rows


def bench_chain(quick: bool) -> List[Row]:
    n = 1_000_000 if quick else 5_000_000  # two nodes per step
    runs = 3 if quick else 5
    rows: List[Row] = []
    c = child("arenagrad-chain", n, runs)
    W = f"{2 * n:,}-node chain"
    if c:
        # backward ran `runs` times, each adding 1 to x.grad
        ok = c["live_after"] <= 2 and abs(c["grad"] - runs) < 1e-9
        rows.append(
            row(
                "chain",
                W,
                "arenagrad backward",
                c["backward_s"] / c["nodes"] * 1e9,
                "ns/node",
                note=f"median of {runs} backward passes; build {c['build_s']:.2f} s, "
                f"free {c['free_s'] * 1e3:.0f} ms, all freed: {ok}",
            )
        )
    else:
        rows.append(row("chain", W, "arenagrad", None, "ns/node", note="FAILED"))
    if try_import("micrograd"):
        d = child("micrograd-depth", 2_000)
        rows.append(
            row(
                "chain",
                "chain of 2,000 multiplications by 1.0 (4,001 micrograd nodes: it wraps each 1.0 in one)",
                "micrograd backward",
                None,
                "",
                note="the child process failed" if d is None else ("RecursionError" if not d["ok"] else "ok"),
            )
        )
    return rows


# ------------------------------------------------------------------- main


def on_every_core(fn: Callable[[], List[Row]]) -> List[Row]:
    """fn() with this process allowed on every core: the 2-thread rows need both, and
    the pool's threads take the affinity of the thread that starts them."""
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if pinned is not None:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    try:
        return fn()
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


def bench_batch(quick: bool) -> List[Row]:
    """Batched replay (bench/batch_bench.py)."""
    import batch_bench

    return on_every_core(lambda: batch_bench.bench_batch(quick, alternate, block))


def bench_second(quick: bool) -> List[Row]:
    """Second order (bench/second_bench.py)."""
    import second_bench

    return on_every_core(lambda: second_bench.bench_second(quick, alternate, block))


def bench_microgpt(quick: bool) -> List[Row]:
    """microgpt's training step (bench/microgpt.py)."""
    import microgpt

    return microgpt.bench_microgpt(quick, alternate, block)


SECTIONS = {
    "ops": bench_per_op,
    "moons": bench_moons,
    "graph": bench_graph,
    "memory": bench_memory,
    "chain": bench_chain,
    "batch": bench_batch,
    "second": bench_second,
    "microgpt": bench_microgpt,
}


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.3f}" if v < 10 else f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def machine() -> Dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    torch = try_import("torch")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": getattr(torch, "__version__", None),
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller graphs")
    p.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    p.add_argument(
        "--json",
        help="where to write the JSON, and after a full run the table beside it as .md "
        "(default: bench/results/latest.json, or latest-quick.json with --quick or --only)",
    )
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
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"torch {info['torch']}, {info['date']}{' (quick)' if args.quick else ''}",
        "",
        "| workload | engine | median | unit | compared in the same run | note |",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['engine']} | {fmt(r['value'])} | {r['unit']} | {r['vs']} | {r['note']} |")
    table = "\n".join(lines) + "\n"
    print("\n" + table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:
        json.dump({"machine": info, "quick": args.quick, "rows": rows}, f, indent=1)
    written = [out]
    if not (args.quick or args.only):  # a full run: the same table as Markdown beside it
        out.with_suffix(".md").write_text(table)
        written.append(out.with_suffix(".md"))
    print("wrote " + " and ".join(map(str, written)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
