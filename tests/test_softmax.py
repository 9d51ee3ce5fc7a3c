"""ag.softmax as one fused multi-output op (ops.hpp's Softmax and SoftmaxOut).

A hidden node computes logsumexp L as its value and every output
exp(x_i - max) / sum at once, keeping the outputs for its backward; each
output is a node reading (x_i, that node). Checked here: the values against
mpmath, the hidden node's value against ag.logsumexp (a separate op struct),
gradients against finite differences and torch, replay (single row, batched,
second order) against eager bit for bit when outputs are dropped or
repeated, and that a pickle cannot pair an output with the wrong node.
"""

from __future__ import annotations

import math
import pickle

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core
from hypothesis import given, settings
from hypothesis import strategies as st

mpmath = pytest.importorskip("mpmath")

finite = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False)


def mp_softmax(xs):
    mpmath.mp.prec = 120
    e = [mpmath.exp(mpmath.mpf(x)) for x in xs]
    s = mpmath.fsum(e)
    return [v / s for v in e], mpmath.log(s)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=7))
def test_values_are_within_a_few_ulps_of_mpmath(xs):
    outs = ag.softmax([ag.Value(x) for x in xs])
    want, L = mp_softmax(xs)
    m = max(xs)
    for x, o, w in zip(xs, outs, want):
        # exp's 0.52 ulp, the division's and the n roundings of the sum, and the rounding
        # of x - max, which exp turns into a relative error (any max-shifted softmax has it)
        tol = (len(xs) + 4) * math.ulp(float(w)) + float(w) * math.ulp(abs(x - m)) + 1e-300
        assert abs(o.data - float(w)) <= tol, (xs, o.data, float(w))
    assert outs[0].inputs[1].data == pytest.approx(float(L), rel=1e-15, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(finite, st.sampled_from([math.inf, -math.inf, math.nan, 710.0, -745.0])), min_size=1, max_size=6)
)
def test_the_hidden_node_is_logsumexp_to_the_bit(xs):
    """The hidden node's value is ag.logsumexp's (LogSumExp::f, a separate struct), special values included."""
    h = ag.softmax([ag.Value(x) for x in xs])[0].inputs[1]
    want = ag.logsumexp([ag.Value(x) for x in xs]).data
    assert h.op == "logsumexp"
    assert np.float64(h.data).tobytes() == np.float64(want).tobytes()


def test_infinite_operands_give_what_exp_x_minus_logsumexp_gives():
    """No shift exists for an infinite max: exp(x_i - L) per output, 0 or NaN, as before fusion."""
    got = [o.data for o in ag.softmax([ag.Value(math.inf), ag.Value(1.0)])]
    assert math.isnan(got[0]) and got[1] == 0.0
    assert all(math.isnan(o.data) for o in ag.softmax([ag.Value(-math.inf)] * 3))
    assert [o.data for o in ag.softmax([ag.Value(-math.inf), ag.Value(0.0)])] == [0.0, 1.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=5), st.lists(st.floats(-2.0, 2.0), min_size=5, max_size=5))
def test_gradients_match_central_differences(xs, ws):
    """sum_i w_i softmax(x)_i, and the hidden node's own gradient (it is logsumexp)."""
    vs = [ag.Value(x) for x in xs]
    outs = ag.softmax(vs)
    loss = ag.sum([w * o for w, o in zip(ws, outs)]) + outs[0].inputs[1] * 0.5
    loss.backward()

    def f(p):
        m = max(p)
        e = [math.exp(x - m) for x in p]
        s = math.fsum(e)
        return math.fsum(w * v / s for w, v in zip(ws, e)) + 0.5 * (m + math.log(s))

    h = 1e-6
    for i, v in enumerate(vs):
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        assert v.grad == pytest.approx((f(up) - f(down)) / (2 * h), abs=1e-7)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    xs = [0.3, -1.7, 2.2, 0.0]
    ws = [1.5, -0.5, 2.0, 0.25]
    vs = [ag.Value(x) for x in xs]
    ag.sum([w * o for w, o in zip(ws, ag.softmax(vs))]).backward()
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    (torch.softmax(t, 0) * torch.tensor(ws, dtype=torch.float64)).sum().backward()
    for v, g in zip(vs, t.grad.tolist()):
        assert v.grad == pytest.approx(g, rel=1e-14, abs=1e-16)


def one_output(x):
    """Only output 1 is used: the others are not in the graph compile sees."""
    return ag.softmax([x, x * 0.5, -x, 1.0])[1] * 3.0


def repeated(x):
    outs = ag.softmax([x, x, x * 0.5])
    return outs[2] * 2.0 + outs[0] * 5.0


def with_logsumexp(x):
    """The hidden node is read as well: replay computes its value only then."""
    outs = ag.softmax([x, -x, x * x])
    return outs[0] * 2.0 + outs[0].inputs[1] * 0.5


@pytest.mark.parametrize(
    "build", [one_output, repeated, with_logsumexp], ids=["one output", "repeated operand", "logsumexp read"]
)
def test_replay_gives_eager_bits(build):
    """Single-row and batched replay, with outputs the graph does not reach (the
    replay gives them an entry of their own) and with an operand listed twice."""
    rows = np.array(
        [[-800.0], [-3.0], [-0.0], [0.25], [7.5], [math.inf], [-math.inf], [700.0]]
        + [[v] for v in np.linspace(-40, 40, 41)]
    )
    x = ag.Value(0.0, requires_grad=False)
    cg = ag.compile(build(x), inputs=[x])
    got, gx = cg.forward(rows), cg.backward()[:, 0]
    x1 = ag.Value(0.0)
    single = ag.compile(build(x1))
    for i, (v,) in enumerate(rows):
        xe = ag.Value(float(v))
        ye = build(xe)
        ye.backward()
        want_y, want_g = np.float64(ye.data).tobytes(), np.float64(xe.grad).tobytes()
        assert got[i].tobytes() == want_y and gx[i].tobytes() == want_g, (v, got[i], ye.data, gx[i], xe.grad)
        x1.data, x1.grad = float(v), 0.0
        assert np.float64(single.forward()).tobytes() == want_y
        single.backward()
        assert np.float64(x1.grad).tobytes() == want_g


def test_num_nodes_counts_the_graph_not_the_entries_for_unreached_outputs():
    a = ag.Value(0.5)
    y = ag.softmax([a, a * 2.0, 1.0])[0]
    # a, 1.0 (a constant leaf), a * 2, the hidden node, output 0
    assert ag.compile(y).num_nodes == 5


def test_second_order_of_one_output_matches_torch():
    torch = pytest.importorskip("torch")
    xs = [0.4, -0.3, 1.1]
    vs = [ag.Value(x) for x in xs]
    y = ag.softmax([vs[0] * vs[1], vs[1], vs[2].tanh()])[0]
    H = ag.compile(y).hessian()

    def f(t):
        return torch.softmax(torch.stack([t[0] * t[1], t[1], torch.tanh(t[2])]), 0)[0]

    want = torch.autograd.functional.hessian(f, torch.tensor(xs, dtype=torch.float64))
    np.testing.assert_allclose(H, want.numpy(), rtol=1e-12, atol=1e-14)


def test_a_pickle_round_trip_keeps_values_gradients_and_replay():
    a, b = ag.Value(0.3), ag.Value(-1.2)
    y = ag.softmax([a, b, a * b])[2] * 4.0
    y2 = pickle.loads(pickle.dumps(y))
    y.backward()
    y2.backward()
    a2, b2 = y2.inputs[0].inputs[0].inputs
    assert (y2.data, a2.grad, b2.grad) == (y.data, a.grad, b.grad)
    a2.data = 0.7
    cg = ag.compile(y2)
    a.data = 0.7
    assert cg.forward() == ag.compile(y).forward()
    _core._check_invariants()


def tampered(change):
    a, b = ag.Value(0.3), ag.Value(-1.2)
    y = ag.softmax([a, b])[1]
    fn, (cls, leaves, table, attrs, root) = y.__reduce__()
    return (cls, leaves, change(table), attrs, root)


def output_row(table, change):
    """The table with its last row, the softmax output, changed."""
    return table[:-1] + [change(table[-1])]


@pytest.mark.parametrize(
    "change",
    [
        lambda t: output_row(t, lambda r: r[:4] + (0.0,) + r[5:]),  # slot 0 is a, the operand is b
        lambda t: output_row(t, lambda r: r[:4] + (5.0,) + r[5:]),  # no slot 5
        lambda t: output_row(t, lambda r: r[:4] + (math.nan,) + r[5:]),
        lambda t: output_row(t, lambda r: r[:4] + (0.5,) + r[5:]),
        lambda t: output_row(t, lambda r: r[:5] + ((r[5][1], r[5][1]),)),  # the operand is the node
        lambda t: (
            [(t[0][0], t[0][1] & ~8) + t[0][2:5] + (t[0][5][:2],)] + t[1:]
        ),  # the node without its outputs' values
    ],
    ids=["wrong slot", "slot out of range", "nan slot", "fractional slot", "operand is the node", "no kept values"],
)
def test_a_pickle_cannot_pair_an_output_with_the_wrong_node(change):
    with pytest.raises(ValueError, match="corrupted or foreign"):
        _core._restore(*tampered(change))
    _core._check_invariants()


def test_a_backward_takes_only_the_gradients_of_outputs_it_reaches():
    """The hidden node reads its outputs' .grad: one that this backward does not reach
    still holds the last backward's, which must not count (nor in replay)."""
    a, b = ag.Value(0.3), ag.Value(-1.2)
    outs = ag.softmax([a, b])
    (outs[0] * 10.0).backward()
    assert outs[0].grad == 10.0
    a.grad = b.grad = 0.0
    (outs[1] * 3.0).backward()  # outs[0].grad is still 10
    s0, s1 = outs[0].data, outs[1].data
    assert a.grad == pytest.approx(-3.0 * s1 * s0, rel=1e-15)
    assert b.grad == pytest.approx(3.0 * s1 * (1 - s1), rel=1e-15)


def test_stepping_by_hand_reads_what_the_outputs_hold():
    """The lecture's way: v._backward() node by node, outputs first; the hidden node
    then takes what the outputs' .grad hold, as a sweep would."""
    a, b = ag.Value(0.3), ag.Value(-1.2)
    outs = ag.softmax([a, b])
    hidden = outs[0].inputs[1]
    outs[0].grad, outs[1].grad = 2.0, -1.0
    outs[0]._backward()
    outs[1]._backward()
    hidden._backward()
    s0, s1 = outs[0].data, outs[1].data
    c = 2.0 * s0 - 1.0 * s1
    assert a.grad == pytest.approx(s0 * (2.0 - c), rel=1e-15)
    assert b.grad == pytest.approx(s1 * (-1.0 - c), rel=1e-15)


def test_a_hidden_value_replay_skips_is_neither_stale_nor_an_anomaly():
    """Replay skips the log for a hidden node nothing reads; built at NaN, then replayed
    at finite data under detect_anomaly, nothing is reported; watched, it is computed."""
    a = ag.Value(math.nan)
    outs = ag.softmax([a, ag.Value(1.0)])
    y = outs[1] * 2.0
    hidden = outs[0].inputs[1]
    cg = ag.compile(y)
    watched = ag.compile(y, watch=[hidden])
    a.data = 0.5
    with ag.detect_anomaly():
        assert cg.forward() == 2.0 / (1.0 + math.exp(-0.5))
        watched.forward()
    assert hidden.data == ag.logsumexp([0.5, 1.0]).data


def test_an_output_no_backward_reaches_adds_no_nan():
    """softmax([x, y, inf]) has a NaN output; a loss that reads only a finite one must not
    get 0 * NaN into the others' gradients (eager, single-row and batched replay)."""
    a = ag.Value(0.5)
    x = ag.Value(0.25, requires_grad=False)
    y = ag.softmax([a, x, math.inf])[1] * 3.0
    y.backward()
    assert a.grad == 0.0  # d softmax_1 / d a is -y1 * y0 = 0 here
    a.grad = 0.0
    cg = ag.compile(y)
    cg.forward()
    cg.backward()
    assert a.grad == 0.0
    batched = ag.compile(y, inputs=[x])
    _, gx = batched.value_and_grad(np.array([[0.25], [-1.0]]))
    assert (gx == 0.0).all()
