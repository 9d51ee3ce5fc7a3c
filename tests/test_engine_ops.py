"""Every engine op: its value and its gradient, against independent references.

For each op and each operand form the tests draw points with hypothesis and compare
  * the value with ``math`` on plain floats,
  * the gradient with central finite differences of that plain-float function,
  * value and gradient with PyTorch in float64 (where torch is importable).
Points are drawn away from kinks (abs, relu at 0) and domain edges (log, sqrt near
0, division near 0) so that finite differences are meaningful there; the kinks
themselves are checked separately against PyTorch's conventions.
"""

from __future__ import annotations

import math
import operator

import pytest
from conftest import FD_ABS, FD_REL, HYPO, TORCH_ABS, TORCH_REL, assert_close, fd_grad, torch_grads
from hypothesis import given
from hypothesis import strategies as st

import arenagrad as ag

V = ag.Value

# ----------------------------------------------------------------- strategies

reals = st.floats(-3, 3)
away_from_zero = st.floats(-3, 3).filter(lambda x: abs(x) > 1e-3)
positive = st.floats(0.05, 5)  # log, sqrt: well inside the domain
exp_range = st.floats(-5, 5)
small_lists = st.lists(reals, min_size=1, max_size=7)


def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


# ------------------------------------------------------- unary: three worlds
# One name, three implementations: the engine's Value method, math on floats,
# torch on float64 tensors. Expressions below are written once against `U`
# and evaluated in all three worlds.


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


FLOAT_UNARY = {
    "neg": lambda x: -x,
    "abs": abs,
    "relu": lambda x: x if x > 0 else 0.0,
    "leaky_relu": lambda x: x if x > 0 else 0.01 * x,  # torch's and the engine's default slope
    "leaky_relu_0.2": lambda x: x if x > 0 else 0.2 * x,
    "tanh": math.tanh,
    "sigmoid": _sigmoid,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "softplus": _softplus,
    "sin": math.sin,
    "cos": math.cos,
}

ENGINE_UNARY = {
    "neg": lambda v: -v,
    "abs": lambda v: v.abs(),
    "relu": lambda v: v.relu(),
    "leaky_relu": lambda v: v.leaky_relu(),
    "leaky_relu_0.2": lambda v: v.leaky_relu(0.2),
    "tanh": lambda v: v.tanh(),
    "sigmoid": lambda v: v.sigmoid(),
    "exp": lambda v: v.exp(),
    "log": lambda v: v.log(),
    "sqrt": lambda v: v.sqrt(),
    "softplus": lambda v: v.softplus(),
    "sin": lambda v: v.sin(),
    "cos": lambda v: v.cos(),
}


def _torch_unary(torch, name):
    F = torch.nn.functional
    return {
        "neg": lambda t: -t,
        "abs": torch.abs,
        "relu": torch.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, 0.01),
        "leaky_relu_0.2": lambda t: F.leaky_relu(t, 0.2),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "softplus": F.softplus,
        "sin": torch.sin,
        "cos": torch.cos,
    }[name]


def U(name, x):
    """Apply unary op `name` in whichever world x lives in."""
    if isinstance(x, ag.Value):
        return ENGINE_UNARY[name](x)
    if is_torch(x):
        import torch

        return _torch_unary(torch, name)(x)
    return FLOAT_UNARY[name](x)


UNARY_CASES = [
    # name, points, torch tolerance (rel)
    ("neg", reals, TORCH_REL),
    ("abs", away_from_zero, TORCH_REL),
    ("relu", away_from_zero, TORCH_REL),
    ("leaky_relu", away_from_zero, TORCH_REL),
    ("leaky_relu_0.2", away_from_zero, TORCH_REL),
    ("tanh", reals, TORCH_REL),
    ("sigmoid", st.floats(-8, 8), TORCH_REL),
    ("exp", exp_range, TORCH_REL),
    ("log", positive, TORCH_REL),
    ("sqrt", positive, TORCH_REL),
    # The engine computes softplus as max(x, 0) + log1p(exp(-|x|)) and its
    # derivative as sigmoid(x); torch uses log1p(exp(x)) and z/(z+1) with
    # z = exp(x). Equal in exact arithmetic, a few ulps apart in floating point.
    ("softplus", st.floats(-8, 8), 1e-13),
    ("sin", reals, TORCH_REL),
    ("cos", reals, TORCH_REL),
]


@pytest.mark.parametrize("name,points,torch_rel", UNARY_CASES, ids=[c[0] for c in UNARY_CASES])
@HYPO
@given(data=st.data())
def test_unary_value_and_grad(name, points, torch_rel, data, torch):
    x = data.draw(points, label="x")
    f = FLOAT_UNARY[name]
    a = V(x)
    y = ENGINE_UNARY[name](a)
    assert isinstance(y, ag.Value)
    assert_close(y.data, f(x), rel=1e-14, abs_=1e-15, what=f"{name}({x}) value")
    y.backward()
    assert_close(a.grad, fd_grad(f, [x])[0], rel=FD_REL, abs_=FD_ABS, what=f"{name}'({x}) vs finite differences")
    ty, tg = torch_grads(torch, _torch_unary(torch, name), [x])
    assert_close(y.data, ty, rel=torch_rel, abs_=TORCH_ABS, what=f"{name}({x}) vs torch")
    assert_close(a.grad, tg[0], rel=torch_rel, abs_=TORCH_ABS, what=f"{name}'({x}) vs torch")


@pytest.mark.parametrize("name", ["abs", "relu", "leaky_relu", "leaky_relu_0.2"])
@pytest.mark.parametrize("x", [0.0, -0.0])
def test_kink_gradients_follow_torch(name, x, torch):
    # At the kink finite differences are meaningless; the convention is torch's.
    a = V(x)
    y = ENGINE_UNARY[name](a)
    y.backward()
    ty, tg = torch_grads(torch, _torch_unary(torch, name), [x])
    assert y.data == ty == 0.0
    assert a.grad == tg[0], f"{name}'({x}): engine {a.grad}, torch {tg[0]}"


def test_builtin_abs_is_the_abs_op():
    a = V(-2.5)
    y = abs(a)
    assert isinstance(y, ag.Value) and y.data == 2.5 and y.op == "abs"
    y.backward()
    assert a.grad == -1.0


def test_unary_plus_returns_the_same_object():
    a = V(1.5)
    assert (+a) is a
    b = a * 2
    assert (+b) is b


def test_leaky_relu_slope_keyword_and_positional():
    for call in (lambda v: v.leaky_relu(0.3), lambda v: v.leaky_relu(slope=0.3)):
        a = V(-2.0)
        y = call(a)
        assert y.data == pytest.approx(-0.6, rel=1e-15)
        y.backward()
        assert a.grad == 0.3
    a = V(-2.0)
    y = a.leaky_relu(2)  # an int slope is a number like any other
    y.backward()
    assert y.data == -4.0 and a.grad == 2.0


def test_exp_extremes_and_sigmoid_tails():
    # sigmoid must not overflow at either end and keeps a finite derivative.
    for x in (-800.0, 800.0):
        a = V(x)
        y = a.sigmoid()
        y.backward()
        assert y.data == _sigmoid_stable(x)
        assert a.grad == pytest.approx(_sigmoid_stable(x) * (1 - _sigmoid_stable(x)), abs=1e-300)
    a = V(-800.0)
    y = a.exp()
    assert y.data == 0.0 == math.exp(-800.0)
    # softplus for large |x| is x (or 0) without overflow.
    assert V(800.0).softplus().data == 800.0
    assert V(-800.0).softplus().data == 0.0


def _sigmoid_stable(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# ------------------------------------------------------------------ binary ops

BINARY = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}

# Operand points per op: denominators away from 0, pow bases positive (a
# negative base with a fractional exponent is a domain error, tested below and
# in test_engine_errors).
BINARY_POINTS = {
    "+": (reals, reals),
    "-": (reals, reals),
    "*": (reals, reals),
    "/": (reals, st.floats(-3, 3).filter(lambda b: abs(b) > 0.1)),
    "**": (st.floats(0.1, 3), st.floats(-3, 3)),
}


@pytest.mark.parametrize("form", ["V op V", "V op n", "n op V"])
@pytest.mark.parametrize("sym", list(BINARY))
@HYPO
@given(data=st.data())
def test_binary_value_and_grad(sym, form, data, torch):
    pa, pb = BINARY_POINTS[sym]
    x = data.draw(pa, label="a")
    z = data.draw(pb, label="b")
    f = BINARY[sym]
    want = f(x, z)
    if form == "V op V":
        a, b = V(x), V(z)
        y = f(a, b)
        leaves, idx = [a, b], [0, 1]
    elif form == "V op n":
        a = V(x)
        y = f(a, z)
        leaves, idx = [a], [0]
    else:
        b = V(z)
        y = f(x, b)
        leaves, idx = [b], [1]
    assert isinstance(y, ag.Value)
    assert y.op == sym
    assert_close(y.data, want, rel=1e-15, abs_=0.0, what=f"{x} {sym} {z}")
    y.backward()
    fd = fd_grad(f, [x, z])
    for leaf, i in zip(leaves, idx):
        assert_close(leaf.grad, fd[i], rel=FD_REL, abs_=FD_ABS, what=f"d({x} {sym} {z})/d{'ab'[i]} vs FD")

    # torch: the constant side is a plain Python float, as in the engine.
    def tf(ta, tb):
        return f(ta if form != "n op V" else x, tb if form != "V op n" else z)

    ty, tg = torch_grads(torch, tf, [x, z])
    assert_close(y.data, ty, rel=TORCH_REL, abs_=TORCH_ABS, what=f"{x} {sym} {z} vs torch")
    for leaf, i in zip(leaves, idx):
        assert_close(leaf.grad, tg[i], rel=TORCH_REL, abs_=TORCH_ABS, what=f"d({x} {sym} {z})/d{'ab'[i]} vs torch")


@pytest.mark.parametrize("form", ["V op V", "V op n"])
@pytest.mark.parametrize("base", [-2.5, -1.0, 0.5, 3.0])
@pytest.mark.parametrize("k", [-3, -2, 2, 3, 0, 1])
def test_pow_integer_exponents_of_any_sign_base(base, k, form, torch):
    # Integer exponents are defined for negative bases. With a Value exponent
    # d/dk a^k = a^k log(a) is NaN for a < 0, as in torch.
    a = V(base)
    y = a ** (V(float(k)) if form == "V op V" else k)
    assert y.data == pytest.approx(base**k, rel=1e-15)
    y.backward()
    want_da = k * base ** (k - 1) if k != 0 else 0.0
    assert_close(a.grad, want_da, rel=1e-14, abs_=0.0, what=f"d({base}**{k})/da")
    t_a = torch.tensor(base, dtype=torch.float64, requires_grad=True)
    t_k = torch.tensor(float(k), dtype=torch.float64, requires_grad=True)
    ty = t_a ** (t_k if form == "V op V" else k)
    ty.backward()
    assert_close(a.grad, t_a.grad.item(), rel=TORCH_REL, abs_=TORCH_ABS, what="da vs torch")
    if form == "V op V":
        exponent = y.inputs[1]
        assert_close(exponent.grad, t_k.grad.item(), rel=TORCH_REL, abs_=TORCH_ABS, what="dk vs torch")


def test_pow_at_zero_base_matches_torch(torch):
    # 0 ** b for b >= 0: d/db is taken as 0 (torch's limit), d/da is b*0**(b-1).
    for b in (0.0, 0.5, 1.0, 2.0, 3.0):
        a, e = V(0.0), V(b)
        y = a**e
        y.backward()
        ty, (tga, tgb) = torch_grads(torch, lambda ta, tb: ta**tb, [0.0, b])
        assert y.data == ty
        assert_close(a.grad, tga, rel=0, what=f"d(0**{b})/da")
        assert_close(e.grad, tgb, rel=0, what=f"d(0**{b})/db")


# ------------------------------------------------- the same Value used twice

SELF_CASES = {
    "a*a": lambda a: a * a,
    "a+a": lambda a: a + a,
    "a-a": lambda a: a - a,
    "a/a": lambda a: a / a,
    "a**a": lambda a: a**a,
    "a*a*a": lambda a: a * a * a,
    "(a+a)*a": lambda a: (a + a) * a,
}


@pytest.mark.parametrize("name", list(SELF_CASES))
@HYPO
@given(x=st.floats(0.1, 3))
def test_same_value_used_twice(name, x, torch):
    f = SELF_CASES[name]
    a = V(x)
    y = f(a)
    assert_close(y.data, f(x), rel=1e-15, what=f"{name} at {x}")
    y.backward()
    assert_close(a.grad, fd_grad(f, [x])[0], rel=FD_REL, abs_=FD_ABS, what=f"d{name} vs FD")
    ty, tg = torch_grads(torch, f, [x])
    assert_close(a.grad, tg[0], rel=TORCH_REL, abs_=TORCH_ABS, what=f"d{name} vs torch")


def test_same_value_twice_exact():
    a = V(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    b = V(3.0)
    (b + b).backward()
    assert b.grad == 2.0
    c = V(3.0)
    (c - c).backward()
    assert c.grad == 0.0


# ------------------------------------------------------ composite expressions
# Written once against operators and U(), evaluated on floats, Values and tensors.

COMPOSITES = {
    "tanh(ab+c)(a-c)/(b^2+1)": lambda a, b, c: U("tanh", a * b + c) * (a - c) / (b * b + 1),
    "exp(sig(a)b)-log(c^2+1)+a^3/4": lambda a, b, c: U("exp", U("sigmoid", a) * b) - U("log", c * c + 1) + a**3 / 4,
    "softplus(a-b)sin(c)+cos(ac)^2-3/(2+b^2)": lambda a, b, c: U("softplus", a - b) * U("sin", c)
    + U("cos", a * c) ** 2
    - 3 / (2 + b * b),
    "sqrt(a^2+b^2+1)*(-c)+2**b": lambda a, b, c: U("sqrt", a * a + b * b + 1) * U("neg", c) + 2**b,
    "((a*b)-(b*c)).tanh()*a+a*a*b": lambda a, b, c: U("tanh", a * b - b * c) * a + a * a * b,
    "(1-a)/(1+b*b)-c**3+5": lambda a, b, c: (1 - a) / (1 + b * b) - c**3 + 5,
}


@pytest.mark.parametrize("name", list(COMPOSITES))
@HYPO
@given(x=reals, z=reals, w=reals)
def test_composite_expressions(name, x, z, w, torch):
    f = COMPOSITES[name]
    a, b, c = V(x), V(z), V(w)
    y = f(a, b, c)
    want = f(x, z, w)
    # Same operations in the same order as the float evaluation: a few ulps at most.
    assert_close(y.data, want, rel=1e-13, abs_=1e-14, what=f"{name} value")
    y.backward()
    fd = fd_grad(f, [x, z, w])
    ty, tg = torch_grads(torch, f, [x, z, w])
    assert_close(y.data, ty, rel=1e-13, abs_=1e-14, what=f"{name} vs torch")
    for leaf, d_fd, d_t, nm in zip((a, b, c), fd, tg, "abc"):
        assert_close(leaf.grad, d_fd, rel=FD_REL, abs_=FD_ABS, what=f"d{name}/d{nm} vs FD")
        # Gradients are sums over paths; the order of accumulation differs
        # from torch's, so allow rounding to compound slightly beyond 1e-12.
        assert_close(leaf.grad, d_t, rel=1e-11, abs_=1e-12, what=f"d{name}/d{nm} vs torch")


def test_relu_composite_with_kink_avoided(torch):
    # micrograd's favourite: relu of a product, away from the kink.
    for x, z in [(-3.0, 2.0), (1.5, -0.5), (2.0, 3.0), (-1.0, -2.0)]:
        f = lambda a, b: U("relu", a * b + b**3) * a - U("relu", b - a)  # noqa: E731
        a, b = V(x), V(z)
        y = f(a, b)
        assert y.data == f(x, z)
        y.backward()
        ty, tg = torch_grads(torch, f, [x, z])
        fd = fd_grad(f, [x, z])
        assert_close([a.grad, b.grad], fd, rel=FD_REL, abs_=FD_ABS, what="relu composite vs FD")
        assert_close([a.grad, b.grad], tg, rel=TORCH_REL, abs_=TORCH_ABS, what="relu composite vs torch")


# ----------------------------------------------------------------- fused ops


def _operands(xs, mask):
    """Values where mask is True, plain floats elsewhere."""
    return [V(x) if m else x for x, m in zip(xs, mask)]


def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _values_and_mask(data, min_size=1):
    xs = data.draw(st.lists(reals, min_size=min_size, max_size=7), label="xs")
    mask = data.draw(st.lists(st.booleans(), min_size=len(xs), max_size=len(xs)), label="mask")
    if not any(mask):
        mask[data.draw(st.integers(0, len(xs) - 1), label="forced")] = True
    return xs, mask


def _check_fused(y, ops, xs, mask, float_f, torch_f, torch, value_rel=1e-13, torch_rel=TORCH_REL):
    assert isinstance(y, ag.Value)
    assert_close(y.data, float_f(*xs), rel=value_rel, abs_=1e-14, what="value")
    y.backward()
    fd = fd_grad(float_f, xs)
    ty, tg = torch_grads(torch, torch_f, xs)
    assert_close(y.data, ty, rel=value_rel, abs_=1e-14, what="value vs torch")
    for o, m, d_fd, d_t in zip(ops, mask, fd, tg):
        if not m:
            continue
        assert_close(o.grad, d_fd, rel=FD_REL, abs_=FD_ABS, what="grad vs FD")
        assert_close(o.grad, d_t, rel=torch_rel, abs_=TORCH_ABS, what="grad vs torch")


@HYPO
@given(data=st.data())
def test_sum(data, torch):
    xs, mask = _values_and_mask(data)
    ops = _operands(xs, mask)
    y = ag.sum(ops)
    assert y.op == "sum"
    # Summation order may differ from Python's (numbers are folded first): a few ulps.
    _check_fused(
        y, ops, xs, mask, lambda *v: math.fsum(v), lambda *t: torch.stack(list(t)).sum(), torch, value_rel=1e-13
    )


@HYPO
@given(data=st.data())
def test_mean(data, torch):
    xs, mask = _values_and_mask(data)
    ops = _operands(xs, mask)
    y = ag.mean(ops)
    assert y.op == "mean"
    _check_fused(
        y, ops, xs, mask, lambda *v: math.fsum(v) / len(v), lambda *t: torch.stack(list(t)).mean(), torch
    )


@pytest.mark.parametrize("form", ["Values.Values", "Values.floats", "floats.Values", "mixed"])
@HYPO
@given(data=st.data())
def test_dot(form, data, torch):
    n = data.draw(st.integers(1, 6), label="n")
    xs = data.draw(st.lists(reals, min_size=n, max_size=n), label="xs")
    ys = data.draw(st.lists(reals, min_size=n, max_size=n), label="ys")
    if form == "Values.Values":
        mx, my = [True] * n, [True] * n
    elif form == "Values.floats":
        mx, my = [True] * n, [False] * n
    elif form == "floats.Values":
        mx, my = [False] * n, [True] * n
    else:
        mx = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="mx")
        my = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="my")
        mx[0] = True  # at least one Value somewhere
    ox, oy = _operands(xs, mx), _operands(ys, my)
    y = ag.dot(ox, oy)
    assert y.op == "dot"

    def f(*v):
        return math.fsum(v[i] * v[n + i] for i in range(n))

    def tf(*t):
        return torch.stack([t[i] * t[n + i] for i in range(n)]).sum()

    _check_fused(y, ox + oy, xs + ys, mx + my, f, tf, torch)


def test_dot_with_shared_values():
    # The same Value on both sides and twice on one side: gradients add up.
    a, b, c = V(2.0), V(-3.0), V(0.5)
    y = ag.dot([a, b, a], [a, c, 4.0])  # a*a + b*c + 4a
    assert y.data == 4.0 - 1.5 + 8.0
    y.backward()
    assert (a.grad, b.grad, c.grad) == (2 * 2.0 + 4.0, 0.5, -3.0)


def test_sum_with_repeated_values_and_numbers():
    a, b = V(1.5), V(-2.0)
    y = ag.sum([a, 2, a, b, 0.25, a])
    assert y.data == 1.5 * 3 + 2 - 2.0 + 0.25
    y.backward()
    assert (a.grad, b.grad) == (3.0, 1.0)
    m = V(4.0)
    z = ag.mean([m, m, 1.0, -1.0])
    z.backward()
    assert z.data == 2.0 and m.grad == 0.5


@HYPO
@given(data=st.data())
def test_logsumexp(data, torch):
    xs, mask = _values_and_mask(data)
    ops = _operands(xs, mask)
    y = ag.logsumexp(ops)
    assert y.op == "logsumexp"
    # torch.logsumexp shifts by the max too, but sums/rounds in its own order
    # and its backward is exp(x - lse): agreement to a few ulps, not bit-exact.
    _check_fused(
        y, ops, xs, mask, lambda *v: _lse(v), lambda *t: torch.logsumexp(torch.stack(list(t)), 0), torch,
        torch_rel=1e-12,
    )


def test_logsumexp_is_stable_for_large_inputs(torch):
    xs = [1000.0, 1001.0, 999.5]
    vs = [V(x) for x in xs]
    y = ag.logsumexp(vs)
    y.backward()
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    ty = torch.logsumexp(t, 0)
    ty.backward()
    assert_close(y.data, ty.item(), rel=1e-15, what="lse(1000..)")
    assert_close([v.grad for v in vs], t.grad.tolist(), rel=1e-12, abs_=1e-15, what="lse grads")


def _softmax(xs):
    L = _lse(xs)
    return [math.exp(x - L) for x in xs]


@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
@HYPO
@given(data=st.data())
def test_softmax_family_weighted_backward(kind, data, torch):
    # Multi-output op: backpropagate a weighted sum of all outputs.
    xs, mask = _values_and_mask(data)
    n = len(xs)
    w = data.draw(st.lists(st.floats(-2, 2), min_size=n, max_size=n), label="w")
    ops = _operands(xs, mask)
    outs = getattr(ag, kind)(ops)
    assert isinstance(outs, list) and len(outs) == n
    ref = _softmax(xs) if kind == "softmax" else [x - _lse(xs) for x in xs]
    for o, r in zip(outs, ref):
        assert isinstance(o, ag.Value) and o.op == kind
        assert_close(o.data, r, rel=1e-13, abs_=1e-15, what=f"{kind} output")
    if kind == "softmax":
        assert math.fsum(o.data for o in outs) == pytest.approx(1.0, rel=1e-14)

    def f(*v):
        out = _softmax(v) if kind == "softmax" else [x - _lse(v) for x in v]
        return math.fsum(wi * oi for wi, oi in zip(w, out))

    def tf(*t):
        s = torch.stack(list(t))
        out = torch.softmax(s, 0) if kind == "softmax" else torch.log_softmax(s, 0)
        return (out * torch.tensor(w, dtype=torch.float64)).sum()

    loss = ag.sum([wi * o for wi, o in zip(w, outs)])
    loss.backward()
    fd = fd_grad(f, xs)
    _, tg = torch_grads(torch, tf, xs)
    for o, m, d_fd, d_t in zip(ops, mask, fd, tg):
        if m:
            assert_close(o.grad, d_fd, rel=FD_REL, abs_=FD_ABS, what=f"{kind} grad vs FD")
            # Softmax's Jacobian-vector product is a sum of n terms that
            # cancel (rows sum to zero); torch forms it as y*(g - sum(g*y)),
            # the engine node by node, so compare with an absolute floor at
            # the scale of the weights.
            assert_close(o.grad, d_t, rel=1e-12, abs_=1e-14, what=f"{kind} grad vs torch")


@pytest.mark.parametrize("kind", ["softmax", "log_softmax"])
def test_softmax_single_output_backward(kind, torch):
    # Backward of one output only: the other outputs are not involved.
    xs = [0.3, -1.2, 2.0, 0.7]
    vs = [V(x) for x in xs]
    outs = getattr(ag, kind)(vs)
    outs[2].backward()
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    tout = torch.softmax(t, 0) if kind == "softmax" else torch.log_softmax(t, 0)
    tout[2].backward()
    assert_close([v.grad for v in vs], t.grad.tolist(), rel=1e-12, abs_=1e-15, what=f"{kind}[2] grads")


def test_fused_ops_accept_generators_and_tuples():
    a, b, c = V(1.0), V(2.0), V(3.0)
    assert ag.sum(v for v in (a, b, c)).data == 6.0
    assert ag.mean((a, b, c)).data == 2.0
    assert ag.dot((x for x in (a, b)), iter([c, 2.0])).data == 1 * 3 + 2 * 2
    y = ag.logsumexp(v * 1 for v in (a, b, c))
    assert y.data == pytest.approx(_lse([1.0, 2.0, 3.0]), rel=1e-15)
    y.backward()
    assert a.grad == pytest.approx(math.exp(1 - _lse([1.0, 2.0, 3.0])), rel=1e-14)
    s = ag.softmax(v for v in (a, b))
    assert len(s) == 2 and s[0].data + s[1].data == pytest.approx(1.0)


def test_fused_ops_accept_numpy_operands():
    np = pytest.importorskip("numpy")
    a = V(1.0)
    y = ag.dot([a, np.float32(2.0)], np.array([3.0, 4.0]))
    assert y.data == 11.0
    y.backward()
    assert a.grad == 3.0
    assert ag.sum(np.array([1.0, 2.5])).data == 3.5
