"""The engine's own exp, log and log1p (cpp/vmath.hpp).

They replace glibc's so that batched replay's vectorised lanes give the same
bits as the scalar path. Checked here: accuracy against mpmath (an independent
reference, at 100 bits), agreement with Python's math module (glibc) to within
one ulp, the special values, and that the vector lanes (AVX-512, AVX2 or SSE2,
whichever the CPU has) give eager's bits at the edges of each range.
"""

from __future__ import annotations

import math

import arenagrad as ag
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")  # torch (installed for the tests) depends on it via sympy

INF = math.inf


def ulps(got: float, exact) -> float:
    """|got - exact| in units of the last place of the exact value, rounded to a double."""
    e = float(exact)
    if got == e:
        return 0.0
    if e == 0.0 or math.isinf(e):
        return math.inf
    return float(abs(mpmath.mpf(got) - exact)) / math.ulp(e)


def sample(rng, lo, hi, n):
    return list(rng.uniform(lo, hi, n))


RNG = np.random.default_rng(20261129)
EXP_POINTS = sample(RNG, -708.0, 709.7, 1500) + sample(RNG, -1.0, 1.0, 500) + [1.0, 0.5, 2.0, 10.0, -1.0, 1e-300]
EXP_SUBNORMAL = sample(RNG, -745.0, -708.5, 300)
LOG_POINTS = (
    [float(x) for x in np.exp(RNG.uniform(-700.0, 700.0, 1500))]
    + sample(RNG, 0.5, 2.0, 500)
    + [float(k) for k in range(1, 101)]
)
LOG1P_POINTS = sample(RNG, -0.999, 1.0, 1000) + [float(x) for x in 10.0 ** RNG.uniform(-300, -1, 500)]


@pytest.fixture(autouse=True)
def _precision():
    with mpmath.workprec(100):
        yield


def test_exp_is_within_half_an_ulp_and_a_bit():
    worst = max(ulps(ag.Value(x).exp().data, mpmath.exp(mpmath.mpf(x))) for x in EXP_POINTS)
    assert worst < 0.52
    # Subnormal results: the last step rounds twice at most.
    worst = max(ulps(ag.Value(x).exp().data, mpmath.exp(mpmath.mpf(x))) for x in EXP_SUBNORMAL)
    assert worst <= 1.0


def test_log_and_log1p_are_within_an_ulp():
    assert max(ulps(ag.Value(x).log().data, mpmath.log(mpmath.mpf(x))) for x in LOG_POINTS) < 0.87
    # log1p is reached through softplus, log1p(exp(-|t|)) plus max(t, 0): its
    # exact value bounds the two routines' errors together.
    for x in LOG1P_POINTS[:300]:
        t = x * 30.0
        got = ag.Value(t).softplus().data
        assert ulps(got, mpmath.log1p(mpmath.exp(mpmath.mpf(t)))) < 1.5, t


def test_the_same_double_as_the_math_module_within_one_ulp():
    for x in EXP_POINTS + EXP_SUBNORMAL:
        y, ref = ag.Value(x).exp().data, math.exp(x)
        assert abs(y - ref) <= math.ulp(ref), x
    for x in LOG_POINTS:
        y, ref = ag.Value(x).log().data, math.log(x)
        assert abs(y - ref) <= math.ulp(ref), x
    # The values a reader of micrograd's examples sees.
    assert ag.Value(1.0).exp().data == math.e
    assert ag.Value(2.0).exp().data == math.exp(2.0)


@pytest.mark.parametrize(
    "x, want",
    [
        (0.0, 1.0),
        (-0.0, 1.0),
        (-INF, 0.0),
        (709.782712893384, 1.7976931348622732e308),
        (-745.1332191019411, 5e-324),
        (-745.1332191019412, 0.0),
        (-746.0, 0.0),
        (-1e300, 0.0),
        (-708.5, 2.006132305331306e-308),
    ],
)
def test_exp_at_the_edges(x, want):
    assert ag.Value(x).exp().data == want


def test_exp_overflow_and_nan_behave_as_math_exp():
    with pytest.raises(OverflowError):
        ag.Value(709.7827128933841).exp()
    with pytest.raises(OverflowError):
        ag.Value(1e300).exp()
    assert ag.Value(INF).exp().data == INF
    assert math.isnan(ag.Value(math.nan).exp().data)


@pytest.mark.parametrize(
    "x, want",
    [
        (5e-324, -744.4400719213812),
        (2.2250738585072014e-308, -708.3964185322641),
        (1e308, 709.1962086421661),
        (1.0, 0.0),
        (INF, INF),
    ],
)
def test_log_at_the_edges(x, want):
    assert ag.Value(x).log().data == want


def test_log_outside_its_domain_raises_and_nan_passes():
    for x in (0.0, -0.0, -1.0, -INF):
        with pytest.raises(ValueError):
            ag.Value(x).log()
    assert math.isnan(ag.Value(math.nan).log().data)


def test_softplus_and_sigmoid_at_extremes():
    assert ag.Value(-800.0).softplus().data == 0.0
    assert ag.Value(800.0).softplus().data == 800.0
    assert ag.Value(-1e-20).softplus().data == math.log(2.0)
    assert ag.Value(-800.0).sigmoid().data == 0.0
    assert ag.Value(800.0).sigmoid().data == 1.0
    assert ag.Value(-740.0).sigmoid().data == math.exp(-740.0)


EDGE_ROWS = (
    [[x] for x in np.linspace(-745.5, 709.7, 97)]
    + [[x] for x in (-INF, -1e300, -746.0, -745.1332191019411, -708.4, 0.0, -0.0, 1e-310, 5e-324)]
    + [[x] for x in RNG.uniform(-30.0, 30.0, 150)]
)


@pytest.mark.parametrize(
    "name, build",
    [
        ("exp", lambda x: x.exp()),
        ("log", lambda x: (x * x + 5e-324).log()),
        ("softplus", lambda x: x.softplus()),
        ("sigmoid", lambda x: x.sigmoid()),
        ("logsumexp", lambda x: ag.logsumexp([x, x * 0.5, -x])),
        ("softmax", lambda x: ag.sum([s * (i + 1) for i, s in enumerate(ag.softmax([x, x * 0.5, -x, 1.0]))])),
    ],
)
def test_vector_lanes_give_eager_bits_across_the_range(name, build):
    """Hundreds of rows, so that the widest lanes run, at the edges of each range."""
    x = ag.Value(0.0, requires_grad=False)
    y = build(x)
    cg = ag.compile(y, inputs=[x])
    rows = np.array(EDGE_ROWS)
    got = cg.forward(rows)
    gx = cg.backward()[:, 0]
    for i, (v,) in enumerate(EDGE_ROWS):
        xe = ag.Value(float(v))
        ye = build(xe)
        ye.backward()
        assert got[i].tobytes() == np.float64(ye.data).tobytes(), (name, v, got[i], ye.data)
        assert gx[i].tobytes() == np.float64(xe.grad).tobytes(), (name, v, gx[i], xe.grad)


def test_batched_exp_at_the_ends_of_its_near_range_is_eager_bits():
    """A batched exp runs exp_near over a block whose rows are all in [-708, 709] and
    exp over any other: blocks that hold subnormal results (below -708) or results
    near overflow (above 709) and nothing else far, as the edge rows above do not."""
    xs = np.concatenate([np.linspace(-746.0, -700.0, 256), np.linspace(700.0, 709.78, 256)])
    x = ag.Value(0.0, requires_grad=False)
    got = ag.compile(x.exp(), inputs=[x]).forward(xs[:, None])
    want = np.array([ag.Value(float(v)).exp().data for v in xs])
    assert got.tobytes() == want.tobytes()


def test_exp_scaled_before_the_sum_is_the_near_forms_bits():
    """Scalar exp scales its terms by 2^n before summing them where every term stays
    normal; the lane loops' exp_near multiplies the sum by 2^n (vmath.hpp); the two
    must agree. A batched softmax of (x, 0) runs exp_near and its first output is e^x
    exactly for x <= -40 (1 / (1 + e^x) rounds to 1); eager Value.exp runs exp.
    Dense rows in [-708, -600], where a scaled low term starts to lose bits near -700,
    and random rows over the rest of the range."""
    rng = np.random.default_rng(7)
    xs = np.concatenate([np.linspace(-708.0, -600.0, 400_000), rng.uniform(-708.0, -40.0, 200_000)])
    x = ag.Value(0.0, requires_grad=False)
    exp_near = ag.compile(ag.softmax([x, 0.0])[0], inputs=[x]).forward(xs[:, None])
    exp = np.array([ag.Value(float(v)).exp().data for v in xs])
    differ = np.flatnonzero(exp_near.view(np.int64) != exp.view(np.int64))
    assert differ.size == 0, [(xs[i], exp[i], exp_near[i]) for i in differ[:5]]


def test_replayed_softmax_gradients_are_eager_bits_with_repeated_operands():
    """Replay reads logsumexp's derivative from the softmax outputs: with an operand
    listed twice, and with a logsumexp that has no softmax beside it, the same bits."""
    a, b = ag.Value(0.3), ag.Value(-1.2)
    outs = ag.softmax([a, a, b])
    lse = ag.logsumexp([a, b])
    loss = outs[0] * 2.0 + outs[1] * 3.0 + outs[2] * 5.0 + lse * 7.0
    cg = ag.compile(loss)
    cg.forward()
    cg.backward()
    ga, gb = a.grad, b.grad
    a.grad = b.grad = 0.0
    loss.backward()
    assert (ga, gb) == (a.grad, b.grad)
