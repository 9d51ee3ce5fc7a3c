"""Second order per row of a batch (``cg.hessian(rows)``, ``hvp(v, rows)``,
``jvp(t, rows)``, ``jacobian(rows)``) and with respect to leaves that do not
require grad.

Row i's answer must be what the same call without rows gives with the inputs
set to row i, bit for bit, for any thread count; that call is itself checked
against torch and finite differences in test_second_order.py, and here once
more directly on a batch against torch's per-row Hessians.
"""

from __future__ import annotations

import arenagrad as ag
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_batch import ctrl_c_after
from test_second_order import HYPO, graph_steps, random_graph


def same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def one_row_at_a_time(cg, X, call):
    """call(cg) with the inputs set to each row in turn, stacked."""
    keep = [v.data for v in cg.inputs]
    out = []
    for row in X:
        for v, x in zip(cg.inputs, row):
            v.data = float(x)
        out.append(np.asarray(call(cg), dtype=np.float64))
    for v, x in zip(cg.inputs, keep):
        v.data = x
    return np.array(out)


def test_leaves_that_do_not_require_grad_get_their_true_derivatives():
    # f = x^2 w with x not requiring grad: the Hessian over (x, w) is
    # [[2w, 2x], [2x, 0]]. requires_grad decides what backward writes to .grad,
    # not what a Hessian is (torch.autograd.functional.hessian agrees).
    x, w = ag.Value(1.5, requires_grad=False), ag.Value(2.0)
    cg = ag.compile((x * x) * w)
    assert [id(v) for v in cg.leaves] == [id(x), id(w)]
    assert same_bits(cg.hessian(), [[4.0, 3.0], [3.0, 0.0]])
    assert same_bits(cg.jacobian(), [[6.0, 2.25]])
    assert same_bits(cg.hvp([1.0, -1.0]), [1.0, 3.0])
    assert cg.jvp([0.0, 1.0]) == 2.25
    assert x.grad == 0.0 and w.grad == 0.0


def test_a_constant_part_with_nan_second_derivatives_does_not_leak():
    # c ** x with c < 0 computed from numbers only: d2/dc2 of c**x is NaN there,
    # and c has no tangent, so it must not enter x's Hessian entry.
    x = ag.Value(2.0)
    c = ag.Value(-1.5, requires_grad=False) * 1.0  # an entry with no leaf the user sees...
    cg = ag.compile((c * c) ** x)  # (2.25)^x: d2/dx2 = log(2.25)^2 2.25^x
    want = np.log(2.25) ** 2 * 2.25**2.0
    np.testing.assert_allclose(cg.hessian()[-1, -1], want, rtol=1e-14)
    assert np.isfinite(cg.hessian()).all()


@HYPO
@given(
    steps=graph_steps,
    n_rows=st.integers(0, 40),
    seed=st.integers(0, 2**31),
    inputs_require_grad=st.booleans(),
)
def test_each_row_is_the_unbatched_call_bit_for_bit(steps, n_rows, seed, inputs_require_grad, threads):
    xs = [ag.Value(v, requires_grad=inputs_require_grad) for v in (0.3, -0.4)]
    shared = ag.Value(0.7)
    out = random_graph(steps, xs + [shared])
    cg = ag.compile(out, inputs=xs)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n_rows, 2))
    n = len(cg.leaves)
    v = rng.uniform(-1, 1, size=n)
    V = rng.uniform(-1, 1, size=(n_rows, n))
    calls = {
        "hessian": (lambda g: g.hessian(X), lambda g: g.hessian()),
        "jacobian": (lambda g: g.jacobian(X), lambda g: g.jacobian()),
        "hvp": (lambda g: g.hvp(v, X), lambda g: g.hvp(v)),
        "jvp": (lambda g: g.jvp(v, X), lambda g: g.jvp(v)),
    }
    for name, (batched, single) in calls.items():
        want = one_row_at_a_time(cg, X, single)
        for count in (1, 2):
            threads(count)
            got = batched(cg)
            assert same_bits(got, want.reshape(got.shape)), (name, count)
    # a direction per row
    want = np.array([one_row_at_a_time(cg, X[i : i + 1], lambda g: g.hvp(V[i]))[0] for i in range(n_rows)])
    assert same_bits(cg.hvp(V, X), want.reshape(n_rows, n))
    assert shared.grad == 0.0 and all(x.grad == 0.0 for x in xs)


def test_per_row_hessians_match_torch(torch):
    # f(x, y; a) = a tanh(x y) + log(1 + x^2) y^3, inputs x, y, shared a.
    x, y = ag.Value(0.0, requires_grad=False), ag.Value(0.0, requires_grad=False)
    a = ag.Value(0.8)
    cg = ag.compile(a * (x * y).tanh() + (1 + x * x).log() * y**3, inputs=[x, y])
    X = np.random.default_rng(3).normal(size=(25, 2))
    H = cg.hessian(X)
    order = [[id(x), id(y), id(a)].index(id(v)) for v in cg.leaves]

    def f(z):
        return z[2] * torch.tanh(z[0] * z[1]) + torch.log(1 + z[0] ** 2) * z[1] ** 3

    for i, (xi, yi) in enumerate(X):
        z = torch.tensor([xi, yi, 0.8], dtype=torch.float64)
        want = torch.autograd.functional.hessian(f, z).numpy()[np.ix_(order, order)]
        np.testing.assert_allclose(H[i], want, rtol=1e-9, atol=1e-12)


def test_shapes_and_argument_errors():
    x, w = ag.Value(0.0, requires_grad=False), ag.Value(2.0)
    cg = ag.compile((x * w).tanh(), inputs=[x])
    X = np.linspace(-1, 1, 7).reshape(7, 1)
    assert cg.hessian(X).shape == (7, 2, 2)
    assert cg.jacobian(X).shape == (7, 1, 2)
    assert cg.jvp([1.0, 0.0], X).shape == (7,)
    assert cg.hvp(np.ones((7, 2)), X).shape == (7, 2)
    assert cg.hessian(np.zeros((0, 1))).shape == (0, 2, 2)
    several = ag.compile([x * w, x + w], inputs=[x])
    assert several.jvp([1.0, 0.0], X).shape == (7, 2)
    assert several.jacobian(X).shape == (7, 2, 2)
    with pytest.raises(ValueError, match=r"hessian\(\): rows must be an \(N, 1\) array"):
        cg.hessian(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"hvp\(\): v must have one entry per leaf \(2\), or be an \(N, 2\)"):
        cg.hvp(np.ones((6, 2)), X)
    with pytest.raises(TypeError, match="must be a real number"):
        cg.hessian([[None]])
    with pytest.raises(TypeError, match="compiled with inputs"):
        ag.compile((x * w).tanh()).hessian(X)
    with pytest.raises(ValueError, match="one output"):
        several.hessian(X)


def test_an_error_in_a_row_names_it_and_changes_nothing():
    x, w = ag.Value(1.0, requires_grad=False), ag.Value(2.0)
    cg = ag.compile((x * w).log(), inputs=[x])
    X = np.array([[1.0], [2.0], [3.0], [-1.0], [-2.0]])
    with pytest.raises(ValueError, match=r"math domain error.*\(in row 3 of the batch\)"):
        cg.hessian(X)
    assert x.data == 1.0 and w.grad == 0.0
    np.testing.assert_allclose(cg.hessian(X[:3])[:, 1, 1], -1 / 4)  # d2/dw2 log(x w) = -1/w^2
    y = ag.Value(3.0, requires_grad=False)
    cg = ag.compile((y - 2.0).sqrt() * w, inputs=[y])
    with pytest.raises(ValueError, match=r"\(in row 1 of the batch\)"):
        cg.jacobian(np.array([[3.0], [1.0]]))


def test_detect_anomaly_names_the_row_as_forward_does():
    x, w = ag.Value(1.0, requires_grad=False), ag.Value(2.0)
    cg = ag.compile(x * w * 1e308, inputs=[x])
    X = np.array([[0.1], [1.0]])  # row 1 overflows to inf
    cg.hessian(X)  # without anomaly mode inf passes, as in eager
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"\* produced inf in forward.*\(in row 1 of the batch\)"):
            cg.hessian(X)
        with pytest.raises(FloatingPointError, match=r"\(in row 1 of the batch\)"):
            cg.forward(X)


def test_ctrl_c_stops_a_batched_hessian_promptly():
    setup = """
xs = [ag.Value(0.0, requires_grad=False) for _ in range(2)]
w = ag.Value(0.5)
y = xs[0]
for _ in range(2000):
    y = (y * w + xs[1]).tanh()
cg = ag.compile(y, inputs=xs)
X = np.ones((200_000, 2))
"""
    took, after = ctrl_c_after(setup, "cg.hessian(X)", "cg.hessian(X[:3]).shape")
    assert took < 1.5
    assert after == "(3, 3, 3)"


def test_second_order_leaves_the_graph_and_a_pending_backward_alone():
    # hessian() between forward(rows) and backward() must not change what backward
    # returns or adds, nor the outputs' .data.
    x, a = ag.Value(0.0, requires_grad=False), ag.Value(0.7)
    out = (a * x).tanh()
    cg = ag.compile(out, inputs=[x])
    R = np.array([[0.5], [-1.0], [2.0]])
    cg.forward(R)
    want = cg.backward()
    want_grad = a.grad
    a.grad = 0.0
    cg.forward(R)
    before = out.data
    cg.hessian()
    cg.jacobian()
    cg.hvp([1.0, 0.0])
    cg.jvp([1.0, 0.0])
    with pytest.raises(ValueError, match="one entry per leaf"):
        cg.hvp([1.0])
    assert out.data == before
    assert same_bits(cg.backward(), want)
    assert a.grad == want_grad


def test_a_jacobian_row_ignores_what_its_output_does_not_depend_on():
    # sqrt'(0) is inf; d(x*x)/dx at 0 is 0 and must stay 0, as in eager and torch
    x = ag.Value(0.0)
    cg = ag.compile([x * x, x.sqrt()])
    J = cg.jacobian()
    assert J[0, 0] == 0.0 and J[1, 0] == float("inf")


def test_a_nan_mixed_second_derivative_does_not_spoil_the_other_entries(torch):
    # x ** p at x < 0: d2/dx dp involves log(x), NaN; d2/dx2 = p (p - 1) x^(p - 2) = 2 is fine.
    x, p = ag.Value(-2.0), ag.Value(2.0, requires_grad=False)
    cg = ag.compile(x**p)
    H = cg.hessian()
    order = [[id(x), id(p)].index(id(v)) for v in cg.leaves]
    ix, ip = order.index(0), order.index(1)
    assert H[ix, ix] == 2.0
    assert np.isnan(H[ix, ip]) and np.isnan(H[ip, ix])
    want = torch.autograd.functional.hessian(lambda t: t**2.0, torch.tensor(-2.0, dtype=torch.float64))
    assert H[ix, ix] == float(want)


def test_calls_in_any_order_on_one_graph_give_a_fresh_graphs_bits(threads):
    # Second order keeps its buffers between calls on a graph (one lane for
    # hvp, 16 for hessian, what the output depends on for each output): any
    # sequence of calls, thread counts and rows gives what the same call on a
    # freshly compiled graph gives.
    def build():
        xs = [ag.Value(0.3 * i - 0.5, requires_grad=False) for i in range(3)]
        w = [ag.Value(0.2 * i + 0.1) for i in range(20)]
        h = [ag.sum([(x * wi).tanh() for x, wi in zip(xs, w[j : j + 3])]) for j in range(17)]
        out = ag.logsumexp(h) + (xs[0] * w[19]).softplus()
        return ag.compile(out, inputs=xs), ag.compile([out, h[3] * h[5]], inputs=xs)

    X = np.random.default_rng(3).normal(size=(5, 3))
    v = np.random.default_rng(4).normal(size=23)
    calls = [
        ("hessian", lambda g, m: g.hessian()),
        ("hvp", lambda g, m: g.hvp(v)),
        ("hessian rows", lambda g, m: g.hessian(X)),
        ("jvp", lambda g, m: g.jvp(v)),
        ("hvp rows", lambda g, m: g.hvp(v, X)),
        ("jacobian", lambda g, m: m.jacobian()),
        ("jacobian rows", lambda g, m: m.jacobian(X)),
    ]
    g, m = build()
    for n in (1, 2, 1):
        threads(n)
        for name, call in calls + calls[::-1]:
            fresh = build()
            assert same_bits(call(g, m), call(*fresh)), (name, n)
