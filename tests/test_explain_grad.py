"""explain_grad: the paths from out to a leaf, their products, their count and sum.

References: the formulas, a brute-force path enumeration written here, finite differences
of plain-float functions, and .grad after backward (the thing being explained)."""

from __future__ import annotations

import math
import sys

import arenagrad as ag
import pytest
from arenagrad.chain_rule import local_derivatives
from conftest import HYPO
from hypothesis import given
from hypothesis import strategies as st


def lecture():
    a, b = ag.Value(2.0, label="a"), ag.Value(-3.0, label="b")
    c, f = ag.Value(10.0, label="c"), ag.Value(-2.0, label="f")
    e = a * b
    d = e + c
    L = d * f + a * a  # a reaches L through e and d, and through a*a
    L.label = "L"
    L.backward()
    return L, a, b, c, f, e, d


def test_the_two_paths_to_a_and_their_products():
    L, a, b, _, f, e, d = lecture()
    ex = ag.viz.explain_grad(a, L)
    assert ex.num_paths == 2 and not ex.truncated
    products = sorted(p.product for p in ex.paths)
    assert products == [2 * 2.0, -2.0 * 1 * -3.0]  # through a*a: 2a; through d*f: f * 1 * b
    assert ex.total == a.grad == 10.0
    via_d = next(p for p in ex.paths if d in p.nodes)
    assert via_d.nodes[0] is L and via_d.nodes[-1] is a and via_d.factors == (1.0, -2.0, 1.0, -3.0)
    assert len(via_d.factors) == len(via_d.nodes) - 1


def test_repr_is_a_table_with_both_checks():
    L, a, *_ = lecture()
    text = repr(ag.viz.explain_grad(a, L))
    lines = text.splitlines()
    assert lines[0].startswith("d L / d a = 10: the sum over 2 paths")
    assert "a.grad = 10 \u2713" in lines[1] and "finite difference 10 \u2713" in lines[1]
    assert lines[2].split()[:2] == ["#", "path"] and len(lines) == 5
    assert "L \u2192 " in text and "\u00d7" in text
    html = ag.viz.explain_grad(a, L)._repr_html_()
    assert html.count("<tr>") == 1 + 2 and "\u2713" in html  # the header and two paths


def test_a_stale_grad_is_flagged():
    L, a, *_ = lecture()
    a.grad += 1  # as if backward ran twice without zero_grad
    assert "\u2717" in repr(ag.viz.explain_grad(a, L)).splitlines()[1]


def test_grads_and_data_are_left_as_they_were():
    L, a, b, c, f, e, d = lecture()
    every = [L, a, b, c, f, e, d, *L.inputs]
    before = [(v.data, v.grad) for v in every]
    ex = ag.viz.explain_grad(b, L)
    ex.finite_difference()
    assert [(v.data, v.grad) for v in every] == before


def test_local_derivatives_of_known_ops_restore_grads():
    x, y = ag.Value(3.0), ag.Value(-0.5)
    x.grad, y.grad = 7.0, 11.0
    prod = x * y
    prod.grad = 5.0
    assert local_derivatives(prod) == {x: -0.5, y: 3.0}
    assert local_derivatives(x * x) == {x: 6.0}
    assert local_derivatives(x.tanh())[x] == pytest.approx(1 - math.tanh(3.0) ** 2, rel=1e-15)
    assert local_derivatives(x / y) == {x: 1 / -0.5, y: pytest.approx(-3.0 / 0.25)}
    assert (x.grad, y.grad, prod.grad) == (7.0, 11.0, 5.0)


def test_many_paths_are_counted_exactly_and_capped():
    x = ag.Value(1.001, label="x")
    v = x
    for _ in range(100):
        v = v * x + v  # every layer doubles (and more) the paths to x
    v.backward()
    ex = ag.viz.explain_grad(x, v, max_paths=5)
    assert len(ex.paths) == 5 and ex.truncated
    # paths(k) = 2 * paths(k - 1) + 1 (v*x: through v, and x itself; + v: through v),
    # but the first layer's x*x is one edge (d(x*x)/dx = 2x): paths(1) = 2.
    n = 2
    for _ in range(99):
        n = 2 * n + 1
    assert n == 3 * 2**99 - 1
    assert ex.num_paths == n
    assert ex.total == pytest.approx(x.grad, rel=1e-12)
    assert f"showing 5 of {n:,} paths" in repr(ex)


def test_a_deep_chain_has_one_path_and_needs_no_recursion():
    x = ag.Value(0.3)
    v = x
    for _ in range(100_000):
        v = v * 1.00001
    v.backward()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        ex = ag.viz.explain_grad(x, v, max_paths=2)
        text = repr(ex)
    finally:
        sys.setrecursionlimit(limit)
    assert ex.num_paths == 1 and len(ex.paths[0].nodes) == 100_001
    assert ex.total == pytest.approx(x.grad, rel=1e-12) and "more\u2026" in text


def test_edge_cases():
    a, b = ag.Value(1.0), ag.Value(2.0)
    out = (a * 3).exp()
    out.backward()
    assert ag.viz.explain_grad(b, out).num_paths == 0 and ag.viz.explain_grad(b, out).total == 0.0
    assert ag.viz.explain_grad(out, out).total == 1.0
    with pytest.raises(ValueError, match="does not require grad"):
        ag.viz.explain_grad(ag.Value(1.0, requires_grad=False), out)
    with pytest.raises(TypeError):
        ag.viz.explain_grad(1.0, out)
    # an intermediate node: total is d out / d node, no finite difference
    mid = out.inputs[0]
    ex = ag.viz.explain_grad(mid, out)
    assert ex.total == pytest.approx(math.exp(3.0)) and ex.finite_difference() is None and "not a leaf" in ex.fd_note


def test_custom_nodes_are_explained_without_a_finite_difference():
    x = ag.Value(0.7)
    t = math.tanh(x.data)
    out = ag.Value(t, (x,), "my_tanh")

    def _backward():
        x.grad += (1 - t * t) * out.grad

    out._backward = _backward
    y = out * 3.0
    y.backward()
    ex = ag.viz.explain_grad(x, y)
    assert ex.total == pytest.approx(3 * (1 - t * t), rel=1e-15) == x.grad
    assert ex.finite_difference() is None and "n/a" in repr(ex)


# ------------------------------------------------------------------ random graphs

OPS = ("*", "+", "-", "tanh", "sigmoid", "exp", "square")


def build(plan, leaves_data):
    """A random DAG; returns (out, leaves, plain-float function of the leaves)."""
    leaves = [ag.Value(x) for x in leaves_data]
    nodes = list(leaves)
    fns = [lambda xs, k=k: xs[k] for k in range(len(leaves))]
    for op, i, j in plan:
        x, y = nodes[i % len(nodes)], nodes[j % len(nodes)]
        fx, fy = fns[i % len(fns)], fns[j % len(fns)]
        if op == "*":
            nodes.append(x * y), fns.append(lambda xs, fx=fx, fy=fy: fx(xs) * fy(xs))
        elif op == "+":
            nodes.append(x + y), fns.append(lambda xs, fx=fx, fy=fy: fx(xs) + fy(xs))
        elif op == "-":
            nodes.append(x - y), fns.append(lambda xs, fx=fx, fy=fy: fx(xs) - fy(xs))
        elif op == "tanh":
            nodes.append(x.tanh()), fns.append(lambda xs, fx=fx: math.tanh(fx(xs)))
        elif op == "sigmoid":
            nodes.append(x.sigmoid()), fns.append(lambda xs, fx=fx: 1 / (1 + math.exp(-fx(xs))))
        elif op == "exp":
            nodes.append(x.tanh().exp()), fns.append(lambda xs, fx=fx: math.exp(math.tanh(fx(xs))))
        else:
            nodes.append(x * x), fns.append(lambda xs, fx=fx: fx(xs) ** 2)
    return nodes[-1], leaves, fns[-1]


def brute_force_paths(out, leaf):
    """Every path out -> leaf as a list of nodes, by plain enumeration (small graphs only)."""
    found, stack = [], [[out]]
    while stack:
        path = stack.pop()
        if path[-1] is leaf:
            found.append(path)
            continue
        for c in dict.fromkeys(path[-1].inputs):
            stack.append(path + [c])
    return found


PLANS = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=14)
DATA = st.lists(st.floats(-1.5, 1.5, allow_nan=False).map(lambda x: round(x, 3)), min_size=2, max_size=4)


@HYPO
@given(PLANS, DATA)
def test_path_sums_equal_grad_and_finite_differences_on_random_graphs(plan, data):
    out, leaves, f = build(plan, data)
    out.backward()
    xs = [v.data for v in leaves]
    for k, leaf in enumerate(leaves):
        ex = ag.viz.explain_grad(leaf, out, max_paths=10_000)
        assert ex.total == pytest.approx(leaf.grad, rel=1e-9, abs=1e-12)
        assert math.fsum(p.product for p in ex.paths) == pytest.approx(leaf.grad, rel=1e-9, abs=1e-12)
        brute = brute_force_paths(out, leaf) if out is not leaf else [[out]]
        assert ex.num_paths == len(brute) == len(ex.paths)
        assert sorted(map(lambda p: tuple(map(id, p)), brute)) == sorted(tuple(map(id, p.nodes)) for p in ex.paths)
        for p in ex.paths:  # each factor is the engine's local derivative on that edge
            for v, c, d in zip(p.nodes, p.nodes[1:], p.factors):
                assert d == local_derivatives(v)[c]
        h = 1e-6 * max(1.0, abs(xs[k]))
        up, down = list(xs), list(xs)
        up[k] += h
        down[k] -= h
        fd = (f(up) - f(down)) / (up[k] - down[k])
        assert ex.total == pytest.approx(fd, rel=1e-5, abs=1e-6)
        if out is not leaf:
            assert ex.finite_difference() == pytest.approx(fd, rel=1e-6, abs=1e-8)
