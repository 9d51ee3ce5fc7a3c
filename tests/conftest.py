"""Shared helpers for the engine tests: finite differences, tolerances, torch.

Nothing here calls arenagrad to produce an expected value: the references are
central finite differences of plain-float functions, ``math``/``numpy``,
PyTorch in float64 (imported per test, skipped only where torch is missing)
and micrograd's published numbers.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import arenagrad as ag
import pytest
from hypothesis import HealthCheck, settings

# bench/workloads.py holds the workloads that tests and bench share (micrograd's
# demo loss, the many-scalar-ops graph).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

# One budget for every property test of the engine: enough draws to find a
# wrong formula, few enough that the whole engine suite stays well under a
# minute on two cores. Applied per test (``@HYPO``), never as a global profile,
# so other test files keep their own settings. ARENAGRAD_HYPO_EXAMPLES=1000
# runs a longer search locally.
HYPO = settings(
    max_examples=int(os.environ.get("ARENAGRAD_HYPO_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        # the `torch` fixture returns a module: nothing to reset between draws
        HealthCheck.function_scoped_fixture,
    ],
)


def fd_grad(f: Callable[..., float], xs: Sequence[float], rel_step: float = 1e-6) -> list[float]:
    """Central finite differences of the plain-float function ``f`` at ``xs``.

    The step is relative to each coordinate (absolute 1e-6 near 0) so that
    functions such as log and sqrt are probed at the scale of their argument.
    Truncation error is O(h^2 f''') and rounding error O(eps/h): about 1e-10
    relative for the well-conditioned points the tests draw.
    """
    xs = [float(x) for x in xs]
    out = []
    for i, x in enumerate(xs):
        h = rel_step * max(1.0, abs(x))
        up = list(xs)
        dn = list(xs)
        up[i] = x + h
        dn[i] = x - h
        out.append((f(*up) - f(*dn)) / (up[i] - dn[i]))
    return out


def close(got: float, want: float, rel: float, abs_: float = 0.0) -> bool:
    """``math.isclose`` that also treats two NaNs (or equal infinities) as equal."""
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


def assert_close(got, want, rel: float, abs_: float = 0.0, what: str = "") -> None:
    """Elementwise ``close`` on scalars or equal-length sequences, with a useful message."""
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{what}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert close(float(g), float(w), rel, abs_), f"{what}[{i}]: got {g!r}, want {w!r} (rel {rel}, abs {abs_})"
    else:
        assert close(float(got), float(want), rel, abs_), f"{what}: got {got!r}, want {want!r} (rel {rel}, abs {abs_})"


# Finite differences are accurate to roughly 1e-9 relative here; 1e-6 leaves a
# wide margin while still catching any wrong derivative formula (those are off
# by O(1)). The absolute floor covers derivatives that are (nearly) zero.
FD_REL = 1e-6
FD_ABS = 1e-7

# Torch float64 computes the same formulas; only rounding order may differ.
TORCH_REL = 1e-12
TORCH_ABS = 1e-13


@pytest.fixture
def threads():
    """ag.set_num_threads, with the thread count put back after the test."""
    before = ag.get_num_threads()
    yield ag.set_num_threads
    ag.set_num_threads(before)


@pytest.fixture
def torch():
    """PyTorch, or a skip where it is not importable (CI installs it)."""
    return pytest.importorskip("torch")


def torch_grads(torch_mod, fn, xs: Sequence[float]):
    """Value and gradient of ``fn`` (written against torch tensors) at ``xs``, in float64."""
    ts = [torch_mod.tensor(float(x), dtype=torch_mod.float64, requires_grad=True) for x in xs]
    y = fn(*ts)
    y.backward()
    return y.item(), [0.0 if t.grad is None else t.grad.item() for t in ts]


def live() -> int:
    """Live nodes in the arena, after collecting garbage from earlier tests (cycles
    through frames, tracebacks or attributes) first, not in the middle of a test;
    a node shared by Values with attributes may take one collection per level."""
    n = -1
    while n != ag.engine_stats()["live_nodes"]:
        n = ag.engine_stats()["live_nodes"]
        gc.collect()
    return n
