"""Long runs: 20,000 training steps use the memory of their first
minute, and dropping a model frees its nodes.

A small MLP (2-8-8-1) learns two moons with the hinge loss and SGD with
momentum, eight samples a step, so that a step is cheap and 20,000 of them
fit in a few seconds: once eagerly (the graph rebuilt every step) and once
with compiled replay (``nn.CompiledStep``). After a short warm-up:

* the engine holds the same number of live nodes (and side-pool slots) at
  the same point of every step, and the arena does not grow: no node leaks,
  not even one per step;
* resident memory (``/proc/self/statm``) grows by less than 5% between step
  2,000 and the last step, and the number of objects the garbage collector
  tracks stays put (a Python-side leak of one object per step shows);
* dropping the model, optimizer and loss returns ``live_nodes`` to its value
  before the model was built.

``ARENAGRAD_LONGRUN_STEPS`` changes the number of steps (default 20000).
(The 32-bit traversal epoch's wrap-around, which took 2**32 backward calls
here, is tested in test_engine_graph.py with a hook that moves the counter.)
"""

from __future__ import annotations

import gc
import os

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core, nn, optim
from arenagrad.data import make_moons, to_pm1
from arenagrad.nn import functional as F
from conftest import live

STEPS = int(os.environ.get("ARENAGRAD_LONGRUN_STEPS", "20000"))
WARMUP = min(2000, STEPS // 10)
BATCH = 8
PAGE = os.sysconf("SC_PAGE_SIZE")

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)")


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def engine_counts():
    s = ag.engine_stats()
    return s["live_nodes"], s["side_slots_live"], s["capacity_nodes"]


def batches():
    """Batches of eight cycling over 64 points of two moons."""
    X, y = make_moons(64, noise=0.1, seed=0)
    y = to_pm1(y)
    k = 0
    while True:
        i = (k * BATCH) % len(X)
        yield X[i : i + BATCH], y[i : i + BATCH]
        k += 1


class Monitor:
    """Checks, once per step, that the engine is in the same state as after warm-up."""

    def __init__(self):
        self.first = None
        self.rss_warm = self.objects_warm = None

    def step(self, k: int) -> None:
        counts = engine_counts()
        if k == 10:
            self.first = counts
        elif k > 10:
            assert counts == self.first, (
                f"step {k}: (live nodes, side slots, arena) = {counts}, after warm-up {self.first}"
            )
        if k == WARMUP:
            gc.collect()
            self.rss_warm, self.objects_warm = rss(), len(gc.get_objects())

    def finish(self) -> None:
        gc.collect()
        grown = rss() - self.rss_warm
        assert grown < 0.05 * self.rss_warm, (
            f"resident memory grew {grown / 2**20:.1f} MiB ({100 * grown / self.rss_warm:.1f}%) "
            f"from step {WARMUP} to step {STEPS}"
        )
        objects = len(gc.get_objects()) - self.objects_warm
        assert objects < 200, f"{objects} more Python objects than after warm-up"


def test_eager_training_20k_steps_is_flat():
    before = live()
    model = nn.MLP(2, [8, 8, 1], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = batches()
    mon = Monitor()
    for k in range(STEPS):
        xb, yb = next(data)
        scores = [model(x) for x in xb]
        loss = F.hinge_loss(scores, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        mon.step(k)
    mon.finish()
    assert np.isfinite(loss.data)
    del model, opt, loss, scores, data
    assert live() == before
    _core._check_invariants()


def test_compiled_training_20k_steps_is_flat():
    before = live()
    model = nn.MLP(2, [8, 8, 1], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step = nn.CompiledStep(model, "hinge", batch_size=BATCH, in_features=2)
    data = batches()
    mon = Monitor()
    for k in range(STEPS):
        xb, yb = next(data)
        opt.zero_grad()
        loss = step(xb, yb)
        opt.step()
        mon.step(k)
    mon.finish()
    assert np.isfinite(loss)
    del model, opt, step, data
    assert live() == before
    _core._check_invariants()
