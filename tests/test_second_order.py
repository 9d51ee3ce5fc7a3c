"""Second order: the op table's second derivatives, Hessian-vector products and
Hessians on a compiled tape, ``ag.grad`` (with ``create_graph``) and
``arenagrad.optimize.minimize``.

References: PyTorch float64 (``torch.autograd.functional.hessian``) where
installed, and central differences of the gradient always (the gradient itself
is checked against finite differences and torch in test_engine_ops.py).
"""

from __future__ import annotations

import math

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core
from conftest import HYPO as BASE_HYPO
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from op_reference import REFERENCE, engine_op

HYPO = settings(BASE_HYPO, max_examples=25)
# A fixed weighting of a multi-output op's outputs, to make one scalar of them.
WEIGHTS = [0.7, -1.3, 0.4, 2.1, -0.6, 1.1, 0.9, -0.2, 1.7, -1.9]


def scalar_of(name, values):
    """The op applied to Values, made one scalar (multi-output ops: a weighted sum)."""
    ref = REFERENCE[name]
    out = engine_op(name)(*values)
    if ref.multi:
        return ag.sum([w * o for w, o in zip(WEIGHTS, out)])
    return out


def torch_scalar_of(torch, name, t):
    ref = REFERENCE[name]
    out = ref.torch(torch, *t.unbind())
    if ref.multi:
        out = sum(w * o for w, o in zip(WEIGHTS, out.unbind() if hasattr(out, "unbind") else out))
    return out


def gradient_at(cg, leaves, x):
    cg.set_data(leaves, np.asarray(x, dtype=float))
    return cg.jacobian()[0]


def in_leaf_order(cg, values):
    """Where each of cg.leaves sits in ``values`` (the order the tape indexes them)."""
    position = {id(v): i for i, v in enumerate(values)}
    return [position[id(v)] for v in cg.leaves]


def fd_hessian(cg, leaves, x, h=1e-5):
    """Central differences of the gradient, column by column."""
    n = len(x)
    H = np.zeros((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (gradient_at(cg, leaves, x + e) - gradient_at(cg, leaves, x - e)) / (2 * h)
    cg.set_data(leaves, np.asarray(x, dtype=float))
    return H


OPS = [op["name"] for op in _core.ops()]


def test_every_op_has_a_second_derivative_test():
    assert set(OPS) <= set(REFERENCE)


@pytest.mark.parametrize("name", OPS)
@HYPO
@given(data=st.data())
def test_hessian_of_every_op_matches_finite_differences(name, data):
    ref = REFERENCE[name]
    x = np.array(data.draw(ref.points, label="operands"), dtype=float)
    leaves = [ag.Value(float(v)) for v in x]
    cg = ag.compile(scalar_of(name, leaves))
    H = cg.hessian()
    order = in_leaf_order(cg, leaves)
    want = fd_hessian(cg, cg.leaves, x[order])
    np.testing.assert_allclose(H, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", OPS)
@HYPO
@given(data=st.data())
def test_hessian_of_every_op_matches_torch(name, data, torch):
    ref = REFERENCE[name]
    x = np.array(data.draw(ref.points, label="operands"), dtype=float)
    # At an exponent of exactly 0 torch's pow backward masks d/da to 0, and so its
    # mixed second derivative; the true one (and ours, and finite differences) is 1/a.
    assume(not (name == "**" and x[1] == 0))
    leaves = [ag.Value(float(v)) for v in x]
    cg = ag.compile(scalar_of(name, leaves))
    order = in_leaf_order(cg, leaves)
    want = torch.autograd.functional.hessian(
        lambda t: torch_scalar_of(torch, name, t), torch.tensor(x, dtype=torch.float64)
    ).numpy()
    want = want.reshape(len(x), len(x))[np.ix_(order, order)]
    np.testing.assert_allclose(cg.hessian(), want, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------- random graphs over every op


def random_graph(draw_ops, xs):
    """A graph over the leaves xs: each step applies an op to earlier nodes."""
    nodes = list(xs)
    for name, picks in draw_ops:
        ref = REFERENCE[name]
        k = 1 if ref.arity == "unary" else (2 if ref.arity == "binary" else 4)
        args = [nodes[p % len(nodes)] for p in picks[:k]]
        if name in ("log", "sqrt"):
            args = [a * a + 0.5 for a in args]
        elif name == "/":
            args = [args[0], args[1] * args[1] + 0.5]
        elif name == "**":
            args = [args[0] * args[0] + 0.5, args[1].tanh()]
        elif name == "exp":
            args = [args[0].tanh()]
        nodes.append(scalar_of(name, args))
    return nodes[-1]


graph_steps = st.lists(
    st.tuples(st.sampled_from(OPS), st.lists(st.integers(0, 50), min_size=4, max_size=4)), min_size=1, max_size=12
)


@HYPO
@given(
    steps=graph_steps,
    x=st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3),
    v=st.lists(st.floats(-1, 1), min_size=3, max_size=3),
)
def test_hvp_on_random_graphs_matches_finite_differences(steps, x, v):
    xs = [ag.Value(a) for a in x]
    out = random_graph(steps, xs)
    cg = ag.compile(out)
    if len(cg.leaves) != 3:
        return  # a leaf the graph does not reach
    order = in_leaf_order(cg, xs)
    x, v = np.array(x)[order], np.array(v)[order]
    got = cg.hvp(v)
    np.testing.assert_allclose(got, cg.hessian() @ v, rtol=1e-9, atol=1e-9)
    want = fd_hessian(cg, cg.leaves, x) @ v
    # Finite differences are no reference at a kink (relu, abs at 0), where no
    # Hessian exists: there two step sizes disagree (abs), or the one-sided
    # differences of the gradient do (x * relu(x), whose two sides have 2 and 0).
    assume(np.allclose(want, fd_hessian(cg, cg.leaves, x, h=2e-5) @ v, rtol=1e-3, atol=1e-3))
    h, g0 = 1e-5, gradient_at(cg, cg.leaves, x)
    for j in range(len(x)):
        e = np.eye(len(x))[j] * h
        ahead, behind = gradient_at(cg, cg.leaves, x + e) - g0, g0 - gradient_at(cg, cg.leaves, x - e)
        assume(np.allclose(ahead / h, behind / h, rtol=1e-3, atol=1e-3))
    cg.set_data(cg.leaves, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_jvp_and_jacobian_of_several_outputs():
    x, y = ag.Value(0.4), ag.Value(-1.1)
    outs = [x * y, (x - y).tanh(), ag.logsumexp([x, y])]
    cg = ag.compile(outs)
    J = cg.jacobian()
    t = math.tanh(0.4 + 1.1)
    p = math.exp(0.4) / (math.exp(0.4) + math.exp(-1.1))
    want = np.array([[-1.1, 0.4], [1 - t * t, -(1 - t * t)], [p, 1 - p]])
    np.testing.assert_allclose(J, want, rtol=1e-14)
    np.testing.assert_allclose(cg.jvp([2.0, -1.0]), want @ [2.0, -1.0], rtol=1e-14)
    assert x.grad == 0.0 and y.grad == 0.0  # nothing written to .grad
    with pytest.raises(ValueError, match="one output"):
        cg.hvp([1.0, 0.0])
    with pytest.raises(ValueError, match="one entry per leaf"):
        ag.compile(outs[0]).hvp([1.0])


# ------------------------------------------------------------- ag.grad


def test_grad_matches_backward_and_leaves_grad_alone():
    x, y = ag.Value(1.5), ag.Value(-0.5)
    x.grad = 10.0
    u = x * y
    f = (u + x.exp()).tanh()
    gx, gu = ag.grad(f, [x, u])
    assert x.grad == 10.0 and y.grad == 0.0
    x.grad = 0.0
    f.backward()
    assert gx.data == x.grad
    t = math.tanh(-0.75 + math.exp(1.5))
    assert gu.data == pytest.approx(1 - t * t, rel=1e-14)


def test_grad_of_several_outputs_with_weights_and_unused_inputs():
    x, y, z = ag.Value(2.0), ag.Value(3.0), ag.Value(4.0)
    (gx, gy, gz) = ag.grad([x * y, x + y], [x, y, z], grad_outputs=[2.0, -1.0], allow_unused=True)
    assert (gx.data, gy.data, gz) == (2 * 3.0 - 1, 2 * 2.0 - 1, None)
    with pytest.raises(RuntimeError, match="not part of the graph"):
        ag.grad(x * y, [z])
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.grad(x * y, [ag.Value(1.0, requires_grad=False)])


def test_second_derivative_through_create_graph():
    x = ag.Value(1.3)
    f = x**3 * x.sin()
    (g,) = ag.grad(f, [x], create_graph=True)
    (h,) = ag.grad(g, [x])
    s, c = math.sin(1.3), math.cos(1.3)
    assert g.data == pytest.approx(3 * 1.3**2 * s + 1.3**3 * c, rel=1e-14)
    assert h.data == pytest.approx(6 * 1.3 * s + 6 * 1.3**2 * c - 1.3**3 * s, rel=1e-13)


def test_gradient_penalty_matches_torch(torch):
    """loss = f(w, x) + (df/dx)^2, trained in w: the gradient needs second order."""
    w0, x0 = [0.3, -0.8], 0.9
    w = [ag.Value(v) for v in w0]
    x = ag.Value(x0)
    f = (w[0] * x).tanh() * w[1] + (w[1] * x * x).sigmoid()
    (gx,) = ag.grad(f, [x], create_graph=True)
    loss = f + gx * gx
    loss.backward()
    tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    tx = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    tf = torch.tanh(tw[0] * tx) * tw[1] + torch.sigmoid(tw[1] * tx * tx)
    (tgx,) = torch.autograd.grad(tf, [tx], create_graph=True)
    (tf + tgx * tgx).backward()
    np.testing.assert_allclose([v.grad for v in w], tw.grad.numpy(), rtol=1e-12)
    assert x.grad == pytest.approx(tx.grad.item(), rel=1e-12)


# ------------------------------------------------------------- optimize


def rosenbrock(x):
    return ag.sum([100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1)])


def test_trust_ncg_with_exact_hvps_beats_lbfgs_on_rosenbrock_100():
    pytest.importorskip("scipy")
    from arenagrad.optimize import minimize

    x0 = [-1.2, 1.0] * 50
    newton = minimize(rosenbrock, x0, method="trust-ncg", options={"gtol": 1e-10})
    lbfgs = minimize(rosenbrock, x0, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 10_000})
    assert newton.success
    assert np.abs(newton.x - 1).max() < 1e-8
    assert newton.nfev < lbfgs.nfev


def test_minimize_hessian_and_gradient_are_exact():
    pytest.importorskip("scipy")
    from arenagrad.optimize import Recorded

    rec = Recorded(rosenbrock, [0.5, -0.3, 0.2])
    x = np.array([0.5, -0.3, 0.2])
    a, b, c = x
    grad = [
        -400 * a * (b - a * a) - 2 * (1 - a),
        200 * (b - a * a) - 400 * b * (c - b * b) - 2 * (1 - b),
        200 * (c - b * b),
    ]
    np.testing.assert_allclose(rec.gradient(x), grad, rtol=1e-13)
    H = rec.hessian(x)
    np.testing.assert_allclose(H[0], [1200 * a * a - 400 * b + 2, -400 * a, 0], rtol=1e-13)
    np.testing.assert_allclose(rec.hessp(x, [1.0, 2.0, 3.0]), H @ [1.0, 2.0, 3.0], rtol=1e-13)


def test_a_branch_on_data_is_reported_not_optimised():
    pytest.importorskip("scipy")
    from arenagrad.optimize import minimize

    def kinked(x):
        # recorded at 0.5, where the first branch runs; its minimum, -3, is on the other side
        return (x[0] + 3) ** 2 if x[0].data > 0 else (x[0] + 3) ** 2 + 1

    with pytest.raises(ValueError, match="another path"):
        minimize(kinked, [0.5], method="BFGS")
