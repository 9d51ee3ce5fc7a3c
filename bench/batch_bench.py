"""Batched replay: one graph over many input rows, against the peers that do the
same (JAX ``jit(vmap(value_and_grad))``, CasADi ``Function.map``), arenagrad's own
per-row loop, and PyTorch eager on the moons step. Part of ``bench/run.py``.

Every row of a table is the median of repeated runs, each engine timed in the
same rounds (``run.alternate``); the ratios are to the peer measured in the same
run.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import arenagrad as ag
import numpy as np
import workloads

Row = Dict[str, Any]


def design_rows(n_rows: int, seed: int = 0) -> np.ndarray:
    """Input rows for the design graph: its 100 leaves drawn from U(0, 1)."""
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(n_rows, 100))


def jax_value_and_grad(n_ops: int) -> Optional[Callable[[np.ndarray], Any]]:
    """``jit(vmap(value_and_grad(f)))`` for the design graph, or None without JAX."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")

    def f(x: Any) -> Any:
        return workloads.scalar_graph_jax(jax, jnp, x, n_ops)

    return jax.jit(jax.vmap(jax.value_and_grad(f)))


def casadi_map(n_ops: int, n_rows: int) -> Optional[Callable[[np.ndarray], Any]]:
    """CasADi's value-and-gradient Function mapped serially over ``n_rows`` columns."""
    try:
        import casadi
    except ImportError:
        return None
    x = casadi.SX.sym("x", 100)
    out = workloads.scalar_graph_casadi(casadi, x, n_ops)
    fn = casadi.Function("f", [x], [out, casadi.gradient(out, x)])
    mapped = fn.map(n_rows, "serial")
    return lambda X: mapped(X.T)


def bench_batch(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Row]:
    """The issue's batched-replay workloads (see the module docstring)."""
    threads_before = ag.get_num_threads()
    try:
        rows = bench_design(1000, quick, alternate, block) + bench_design(10_000, quick, alternate, block)
        return rows + bench_moons_batched(quick, alternate, block)
    finally:
        ag.set_num_threads(threads_before)


def bench_design(
    n_ops: int, quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]
) -> List[Row]:
    """The design graph of ``n_ops`` ops, value and gradient over 1,000 rows."""
    from run import peer_row, row, treatment

    n_rows = 1000
    rounds, warmup, reps, settle = (2, 1, 2, 1) if quick else (3, 1, 5, 2)
    W = f"{n_ops:,}-op design graph, value + gradient over {n_rows:,} rows"
    leaves, nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    batched = ag.compile(nodes[-1], inputs=leaves)
    single = ag.compile(nodes[-1])
    X = design_rows(n_rows)

    def run_batched(threads: int) -> Callable[[], None]:
        def go() -> None:
            ag.set_num_threads(threads)
            batched.value_and_grad(X)  # forward(X) then backward(), in one pass over the rows

        return go

    def loop() -> None:
        for x in X:
            single.set_data(leaves, x)
            single.forward()
            single.backward()

    blocks: Dict[str, Any] = {"1": block(run_batched(1)), "2": block(run_batched(2)), "loop": block(loop)}
    compile_s: Dict[str, float] = {}
    jfn = jax_value_and_grad(n_ops) if n_ops <= 1000 or not quick else None
    if jfn is not None:
        t0 = time.perf_counter()
        jfn(X)[0].block_until_ready()
        compile_s["jax"] = time.perf_counter() - t0
        blocks["jax"] = block(lambda: jfn(X)[0].block_until_ready())
    t0 = time.perf_counter()
    cfn = casadi_map(n_ops, n_rows)
    if cfn is not None:
        cfn(X)
        compile_s["casadi"] = time.perf_counter() - t0
        blocks["casadi"] = block(lambda: cfn(X))
    # The same task as the peers' set-up figures (JAX: trace, compile and the
    # first call over all rows): record the graph, compile, and the first
    # value_and_grad over all rows, on 1 thread.
    ag.set_num_threads(1)
    t0 = time.perf_counter()
    fresh_leaves, fresh_nodes = workloads.scalar_graph_arenagrad(ag, n_ops)
    ag.compile(fresh_nodes[-1], inputs=fresh_leaves).value_and_grad(X)
    first_ag = time.perf_counter() - t0
    del fresh_leaves, fresh_nodes
    t = {k: v / n_rows * 1e6 for k, v in alternate(blocks, rounds, warmup, reps, settle).items()}

    def vs(key: str) -> str:
        out = [f"{t['loop'] / t[key]:.1f}x faster than the per-row loop"]
        for peer, name in (("jax", "JAX"), ("casadi", "CasADi")):
            if peer in t:
                out.append(f"{t[peer] / t[key]:.1f}x faster than {name}")
        return "; ".join(out)

    note = f"first result {first_ag * 1e3:.1f} ms from recording the graph (compile and the first call, all rows); "
    note += treatment(rounds, warmup, reps, settle)
    rows = [
        row("batch", W, "arenagrad batched replay (value_and_grad), 1 thread", t["1"], "us/row", vs=vs("1"), note=note),
        row(
            "batch",
            W,
            "arenagrad batched replay (value_and_grad), 2 threads",
            t["2"],
            "us/row",
            vs=vs("2") + f"; {t['1'] / t['2']:.2f}x the 1-thread throughput",
        ),
        row("batch", W, "arenagrad per-row loop (set_data, forward, backward)", t["loop"], "us/row"),
    ]
    for key, engine, setup_words, absent in (
        ("jax", "JAX jit(vmap(value_and_grad)), CPU, float64", "compile and first call",
         "JAX: jax not installed (or skipped in --quick)"),
        ("casadi", "CasADi Function.map (serial), SX", "building the function and first call",
         "CasADi: casadi not installed"),
    ):  # fmt: skip
        note = f"{setup_words} {compile_s[key]:.1f} s" if key in compile_s else ""
        rows.append(peer_row("batch", W, engine, t.get(key), "us/row", note, absent))
    return rows


def bench_moons_batched(
    quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]
) -> List[Row]:
    """The README's moons step (MLP 2-16-16-1, 100 samples, hinge + L2, SGD) with
    ``nn.CompiledStep``'s batched replay, against PyTorch eager in the same rounds."""
    from arenagrad import nn
    from arenagrad.nn import functional as F
    from run import row, treatment, try_import

    W = "moons step (MLP 2-16-16-1, 100 samples), batched replay"
    X, y = workloads.moons_data()
    Xa, ya = np.array(X), np.array(y)
    model = nn.MLP(2, [16, 16, 1])
    params = model.parameters()
    step = nn.CompiledStep(
        model, "hinge", batch_size=100, in_features=2, penalty=lambda: F.l2_penalty(params, alpha=1e-4)
    )

    opt = ag.optim.SGD(params, lr=0.1)  # as PyTorch's step uses torch.optim.SGD

    def ag_step() -> None:
        ag.set_num_threads(1)
        opt.zero_grad()
        step(Xa, ya)
        opt.step()

    blocks: Dict[str, Any] = {"ag": block(ag_step)}
    torch = try_import("torch")
    if torch:
        blocks["torch"] = block(workloads.torch_moons(torch, X, y))
    rounds, warmup, reps, settle = (2, 1, 3, 3) if quick else (3, 1, 10, 10)
    t = {k: v * 1e3 for k, v in alternate(blocks, rounds, warmup, reps, settle).items()}
    rows = [
        row(
            "batch",
            W,
            "arenagrad nn.CompiledStep (one sample recorded, rows replayed), 1 thread",
            t["ag"],
            "ms/step",
            vs=f"{t['torch'] / t['ag']:.1f}x faster than PyTorch eager" if "torch" in t else "",
            note="includes optim.SGD's zero_grad and step, as PyTorch's includes torch.optim.SGD's; "
            + treatment(rounds, warmup, reps, settle),
        )
    ]
    if "torch" in t:
        rows.append(row("batch", W, "PyTorch eager, batched, float64, 1 thread", t["torch"], "ms/step"))
    return rows
