"""Second order: a Hessian-vector product against a gradient on the 10,000-op design
graph, a dense Hessian against JAX ``jit(hessian)`` and CasADi's ``hessian`` function,
Hessians per row of a batch on 1 and 2 threads, and Rosenbrock in 100 dimensions with
``trust-ncg`` against L-BFGS. Part of ``bench/run.py``.

The design graph reads 17 of its 100 leaves; the peers get the same function of those
17 (the others held at their values), so that every engine computes the same 17 x 17
Hessian (checked before timing).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import arenagrad as ag
import numpy as np
import workloads

Row = Dict[str, Any]


def bench_second(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Row]:
    """The issue's second-order targets (see the module docstring)."""
    threads_before = ag.get_num_threads()
    try:
        return bench_hvp(quick, alternate, block) + bench_hessian(quick, alternate, block) + bench_rosenbrock()
    finally:
        ag.set_num_threads(threads_before)


def bench_hvp(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Row]:
    from run import row, treatment

    n_ops = 10_000
    W = f"{n_ops:,}-op design graph: Hessian-vector product vs gradient"
    _, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    cg = ag.compile(nodes[-1])
    v = np.random.default_rng(0).normal(size=len(cg.leaves))

    def gradient() -> None:
        cg.forward()
        cg.backward()

    rounds, warmup, reps = (3, 3, 20) if quick else (7, 3, 40)
    t = alternate({"hvp": block(lambda: cg.hvp(v)), "grad": block(gradient)}, rounds, warmup, reps)
    return [
        row(
            "second",
            W,
            "arenagrad cg.hvp(v) (forward-over-reverse on the tape)",
            t["hvp"] * 1e3,
            "ms",
            vs=f"{t['hvp'] / t['grad']:.2f}x a gradient's time",
            note="the HVP includes its own forward; " + treatment(rounds, warmup, reps),
        ),
        row("second", W, "arenagrad cg.forward() + cg.backward()", t["grad"] * 1e3, "ms"),
    ]


def live_leaves(n_ops: int) -> Tuple[Any, List[int]]:
    """The design graph compiled, and the positions among its 100 leaves of those it reads."""
    leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    cg = ag.compile(nodes[-1])
    where = {id(v): i for i, v in enumerate(leaves)}
    return cg, [where[id(v)] for v in cg.leaves]


def jax_hessian(n_ops: int, live: List[int], rows: bool = False) -> Optional[Callable[[np.ndarray], Any]]:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    base = jnp.array([0.01 * i for i in range(100)])
    at = jnp.array(live)

    def f(z: Any) -> Any:
        return workloads.scalar_graph_jax(jax, jnp, base.at[at].set(z), n_ops)

    h = jax.hessian(f)
    return jax.jit(jax.vmap(h) if rows else h)


def casadi_hessian(n_ops: int, live: List[int]) -> Optional[Callable[[np.ndarray], Any]]:
    try:
        import casadi
    except ImportError:
        return None
    z = casadi.SX.sym("z", len(live))
    x = [z[live.index(i)] if i in live else 0.01 * i for i in range(100)]
    out = workloads.scalar_graph_casadi(casadi, casadi.vertcat(*x), n_ops)
    fn = casadi.Function("H", [z], [casadi.hessian(out, z)[0]])
    return lambda v: fn(v)


def bench_hessian(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Row]:
    from run import peer_row, row, treatment

    n_ops = 1000
    cg, live = live_leaves(n_ops)
    n = len(live)
    W = f"{n_ops:,}-op design graph: dense Hessian over the {n} leaves it reads (of 100)"
    z0 = np.array([0.01 * i for i in live])
    want = cg.hessian()
    blocks: Dict[str, Any] = {"ag": block(cg.hessian)}
    setup_s: Dict[str, float] = {}
    peers = (  # key, engine, its Hessian function, what its set-up is, when absent
        ("jax", "JAX jit(hessian), CPU, float64", jax_hessian, "compile and first call", "JAX: jax not installed"),
        ("casadi", "CasADi Function(hessian), SX", casadi_hessian, "building the function and first call",
         "CasADi: casadi not installed"),
    )  # fmt: skip
    for key, _, make, _, _ in peers:
        t0 = time.perf_counter()
        fn = make(n_ops, live)
        if fn is None:
            continue
        got = np.asarray(fn(z0))  # JAX computes asynchronously: this waits for it
        setup_s[key] = time.perf_counter() - t0
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)
        blocks[key] = block(lambda fn=fn: np.asarray(fn(z0)))
    rounds, warmup, reps = (3, 3, 10) if quick else (5, 3, 30)
    t = {k: v * 1e3 for k, v in alternate(blocks, rounds, warmup, reps).items()}
    vs = [f"{t[p] / t['ag']:.1f}x faster than {name}" for p, name in (("jax", "JAX"), ("casadi", "CasADi")) if p in t]
    rows = [
        row(
            "second",
            W,
            "arenagrad cg.hessian()",
            t["ag"],
            "ms",
            vs="; ".join(vs),
            note=f"{n} columns in lanes of 16; " + treatment(rounds, warmup, reps),
        )
    ]
    for key, engine, _, setup_words, absent in peers:
        note = f"{setup_words} {setup_s[key]:.2f} s" if key in setup_s else ""
        rows.append(peer_row("second", W, engine, t.get(key), "ms", note, absent))
    return rows + bench_hessian_rows(quick, alternate, block)


def bench_hessian_rows(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Row]:
    """cg.hessian(rows): the design graph's Hessian at each of 1,000 input rows."""
    from run import row, treatment

    n_ops, n_rows = 1000, 1000
    leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    cg = ag.compile(nodes[-1], inputs=leaves)
    X = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, 100))
    n = len(cg.leaves)
    W = f"{n_ops:,}-op design graph: {n} x {n} Hessian per row, {n_rows:,} rows"

    def hessians(threads: int) -> Callable[[], Any]:
        def go() -> Any:
            ag.set_num_threads(threads)
            return cg.hessian(X)

        return go

    rounds, warmup, reps = (2, 1, 2) if quick else (3, 1, 5)
    t = {
        k: v / n_rows * 1e6
        for k, v in alternate({"1": block(hessians(1)), "2": block(hessians(2))}, rounds, warmup, reps).items()
    }
    return [
        row(
            "second", W, "arenagrad cg.hessian(rows), 1 thread", t["1"], "us/row", note=treatment(rounds, warmup, reps)
        ),
        row(
            "second",
            W,
            "arenagrad cg.hessian(rows), 2 threads",
            t["2"],
            "us/row",
            vs=f"{t['1'] / t['2']:.2f}x the 1-thread throughput",
        ),
    ]


def bench_rosenbrock() -> List[Row]:
    """Rosenbrock in 100 dimensions from (-1.2, 1, ...), minimised by scipy with exact
    Hessian-vector products (trust-ncg) and with exact gradients (L-BFGS-B): wall
    time, and every evaluation each made (values, gradients, HVPs), as each costs."""
    from run import row

    W = "Rosenbrock, 100 dimensions, from (-1.2, 1, ...): scipy with exact derivatives"
    try:
        from arenagrad.optimize import minimize
    except ImportError:
        return [row("second", W, "arenagrad.optimize", None, "s", note="scipy not installed")]

    def rosenbrock(x: List[Any]) -> Any:
        return ag.sum([100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1)])

    x0 = [-1.2, 1.0] * 50
    methods = (
        ("trust-ncg", {"options": {"gtol": 1e-10}}, "exact Hessian-vector products"),
        ("L-BFGS-B", {"options": {"gtol": 1e-12, "ftol": 1e-30, "maxiter": 10_000}}, "exact gradients"),
    )
    times: Dict[str, List[float]] = {m: [] for m, _, _ in methods}
    for _ in range(3):  # alternating, each run from the recording on
        for method, kw, _ in methods:
            t0 = time.perf_counter()
            minimize(rosenbrock, x0, method=method, check=False, **kw)
            times[method].append(time.perf_counter() - t0)
    out, err = [], []
    for method, kw, what in methods:
        r = minimize(rosenbrock, x0, method=method, check=False, **kw)
        seconds = sorted(times[method])[1]
        err.append(float(np.max(np.abs(r.x - 1))))
        calls = f"{r.nfev} values, {r.njev} gradients" + (f", {r.nhev} HVPs" if "nhev" in r else "")
        out.append(
            row(
                "second",
                W,
                f"scipy {method}, {what}",
                seconds,
                "s",
                note=f"median of 3 runs, alternating; max |x - 1| = {err[-1]:.1e}; {calls}; {r.nit} iterations",
            )
        )
    out[0]["vs"] = f"{out[0]['value'] / out[1]['value']:.1f}x L-BFGS-B's time, to {err[0]:.0e} against {err[1]:.0e}"
    return out
