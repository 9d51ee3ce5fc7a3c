"""arenagrad.micrograd against micrograd 0.1.0 itself, side by side in the same test:
its moons demo, the graph micrograd's tracing walk finds, repeated backward, and the
initial weights for the same random.seed."""

from __future__ import annotations

import gc
import math
import random

import numpy as np
import pytest
from arenagrad.micrograd import engine as ag_engine
from arenagrad.micrograd import nn as ag_nn
from micrograd import engine as mg_engine
from micrograd import nn as mg_nn
from test_micrograd_reference import more_ops_graph

SIDES = [(mg_engine.Value, mg_nn.MLP), (ag_engine.Value, ag_nn.MLP)]


def moons_demo(Value, MLP, steps):
    """micrograd's demo: MLP 2-16-16-1 on 100 moons, max-margin loss plus L2, SGD with a
    decaying rate; returns (loss, accuracy) per step and the final parameters."""
    from sklearn.datasets import make_moons

    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(n_samples=100, noise=0.1)
    y = y * 2 - 1
    model = MLP(2, [16, 16, 1])
    history = []
    for k in range(steps):
        scores = [model([Value(float(v)) for v in row]) for row in X]
        losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        total = data_loss + 1e-4 * sum(p * p for p in model.parameters())
        accuracy = sum((yi > 0) == (si.data > 0) for yi, si in zip(y, scores)) / len(y)
        model.zero_grad()
        total.backward()
        rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= rate * p.grad
        history.append((float(total.data), float(accuracy)))
    return history, [p.data for p in model.parameters()]


def test_moons_demo_gives_micrograd_numbers_at_every_step():
    gc.disable()  # micrograd's graph is all cycles: without this its steps take ten times as long
    try:
        (mg_hist, mg_params), (ag_hist, ag_params) = (moons_demo(V, M, 6) for V, M in SIDES)
    finally:
        gc.enable()
    for step, ((mg_loss, mg_acc), (ag_loss, ag_acc)) in enumerate(zip(mg_hist, ag_hist)):
        assert ag_loss == pytest.approx(mg_loss, rel=1e-9, abs=1e-12), step
        assert ag_acc == mg_acc, step
    assert ag_params == pytest.approx(mg_params, rel=1e-9, abs=1e-12)
    assert mg_hist[-1][0] < mg_hist[0][0]  # it trains, so the comparison covers updates


def test_same_seed_same_initial_weights():
    weights = []
    for _, MLP in SIDES:
        random.seed(7)
        weights.append([p.data for p in MLP(3, [4, 4, 1]).parameters()])
    assert weights[0] == weights[1]  # bit for bit: the same draws, in the same order
    assert len(weights[1]) == 4 * 4 + 4 * 5 + 5


def trace(root):
    """The lecture's graph walk: every node reachable through _prev, and the edges."""
    nodes, edges, stack = set(), set(), [root]
    while stack:
        v = stack.pop()
        if v in nodes:
            continue
        nodes.add(v)
        for child in v._prev:
            edges.add((child, v))
            stack.append(child)
    return nodes, edges


def test_the_traced_graph_is_micrograd_s():
    def described(root):
        nodes, edges = trace(root)

        def key(v):
            return (round(v.data, 9), v._op)

        return sorted(key(v) for v in nodes), sorted((key(c), key(p)) for c, p in edges)

    mg_nodes, mg_edges = described(more_ops_graph(mg_engine.Value)[2])
    ag_nodes, ag_edges = described(more_ops_graph(ag_engine.Value)[2])
    assert ag_nodes == mg_nodes and ag_edges == mg_edges
    assert {op for _, op in ag_nodes} >= {"+", "*", "ReLU", "**2", "**3", "**-1", ""}


def test_repeated_backward_gives_micrograd_numbers():
    grads = []
    for Value, _ in SIDES:
        a, b, g = more_ops_graph(Value)
        g.backward()
        first = (a.grad, b.grad)
        g.backward()  # micrograd adds into intermediate grads and propagates the sums again
        grads.append((first, (a.grad, b.grad)))
    (mg_first, mg_second), (ag_first, ag_second) = grads
    assert ag_first == pytest.approx(mg_first, rel=1e-12)
    assert ag_second == pytest.approx(mg_second, rel=1e-12)
    assert not math.isclose(mg_second[0], 2 * mg_first[0])  # so the test can tell the semantics apart
    # micrograd's published values for this expression (its README)
    assert ag_first == pytest.approx((138.8338, 645.5773), abs=1e-4)


def test_ints_stay_ints_as_in_micrograd():
    def kinds(V):
        return [type(x.data) for x in (V(3), V(3) + 2, V(3) * 2, V(3) ** 2, V(3) / 2, -V(3), V(3).relu(), V(3) * 0.5)]

    assert kinds(ag_engine.Value) == kinds(mg_engine.Value)
    assert repr(ag_engine.Value(3)) == "Value(data=3, grad=0.0)"  # micrograd prints grad=0: its grad starts as an int


def test_results_keep_the_class_and_constants_are_nodes():
    V = ag_engine.Value
    a = V(2.0)
    y = 3 * a + 1
    assert type(y) is V and y._op == "+"
    assert sorted(v.data for v in y._prev) == [1.0, 6.0]
    assert repr(V(1.5)) == "Value(data=1.5, grad=0.0)"
    with pytest.raises(TypeError):
        a ** V(2.0)  # noqa: B018 (micrograd supports only number powers)
    assert type(a.tanh()) is V and type(a.exp().log()) is V
