"""Every engine op: its value and its gradient, against independent references.

The ops are those of ``arenagrad._core.ops()``; their references are the one table
``REFERENCE`` in ``op_reference.py`` (a plain-float function, a PyTorch function, the
points to draw and the kinks and domain edges with their derivatives by hand). For
every op, with every operand a Value or a plain number in turn:

* ``test_op_against_finite_differences``: the value against the plain-float function,
  the gradient by every Value operand against central finite differences of it, eager
  and replayed by ``ag.compile``; needs nothing but ``math``;
* ``test_op_edges``: at kinks and domain edges (abs and relu at 0, sqrt and log near 0,
  pow with negative or zero bases, ...) the value and derivative written down by hand;
* ``test_op_against_torch`` and ``test_op_edges_against_torch``: the same against
  PyTorch float64, a second independent reference (skipped where torch is missing);
* ``test_every_op_has_a_reference``: the table names exactly the engine's ops.
"""

from __future__ import annotations

import math

import arenagrad as ag
import pytest
from arenagrad import _core
from conftest import FD_ABS, FD_REL, HYPO, TORCH_ABS, TORCH_REL, assert_close, fd_grad, torch_grads
from hypothesis import given, settings
from hypothesis import strategies as st
from op_reference import REFERENCE, engine_op, reals

V = ag.Value

OPS = {op["name"]: op for op in _core.ops()}
EDGES = [(name, e) for name, ref in REFERENCE.items() for e in ref.edges]

# The engine and the plain-float function evaluate the same formula, but fused ops
# may sum in another order: a few ulps.
VALUE_REL = 1e-13
VALUE_ABS = 1e-14
# At the edges inputs may be large (softmax at 1000: an ulp of the logsumexp is 1e-13
# of the result); any wrong convention is off by far more.
EDGE_REL = 1e-12


def is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def reference(name):
    ref = REFERENCE.get(name)
    if ref is None:
        pytest.fail(f"op {name!r} has no entry in REFERENCE (tests/op_reference.py)")
    return ref


def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


# ------------------------------------------------------------------ coverage


def test_every_op_has_a_reference():
    """REFERENCE names exactly the ops of ``_core.ops()``: a new op without a
    reference entry (or an entry for an op the engine lacks) fails here, by name."""
    missing = [name for name in OPS if name not in REFERENCE]
    unknown = [name for name in REFERENCE if name not in OPS]
    assert not missing and not unknown, (
        f"ops without a REFERENCE entry in tests/op_reference.py: {missing}; "
        f"REFERENCE entries for ops the engine does not have: {unknown}"
    )


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_entries_agree_with_the_op_table(name):
    """Each entry has the op's arity; a unary op spelled through a Value method has the
    method of its name (``engine_op`` derives the call from it); an op with a parameter
    is tested at a value besides the default."""
    op = OPS.get(name)
    if op is None:
        pytest.fail(f"REFERENCE entry {name!r} names no op of _core.ops()")
    ref = REFERENCE[name]
    assert ref.arity == op["arity"], f"{name}: REFERENCE says {ref.arity}, the engine {op['arity']}"
    if op["arity"] == "unary" and ref.call is None:
        assert op["method"] == name, f"{name}: no Value method of that name; give the entry a call="
    assert bool(ref.params) == (op["param"] is not None), f"{name}: parameter {op['param']}, tested at {ref.params}"


# ------------------------------------------------------------------ the table-driven tests


@st.composite
def operands(draw, ref):
    """Operands from the op's points, a mask saying which are Values (the rest are plain
    numbers: ``x * 2``, ``2 * x``, dot with constant ys or xs, ...) and the parameters."""
    xs = list(draw(ref.points))
    n = len(xs)
    form = "values" if ref.arity == "unary" else draw(st.sampled_from(["values", "first half", "second half", "mixed"]))
    if form == "values":
        mask = [True] * n
    elif form == "first half":  # V op n; dot(Values, numbers)
        mask = [i < (n + 1) // 2 for i in range(n)]
    elif form == "second half":  # n op V; dot(numbers, Values)
        mask = [i >= n // 2 for i in range(n)]
    else:
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        mask[draw(st.integers(0, n - 1))] = True  # at least one Value
    params = draw(st.sampled_from([()] + [(p,) for p in ref.params]))
    return xs, mask, params


def engine_jacobian(name, xs, mask, params, replay):
    """The op in the engine at ``xs`` (Values where ``mask``): its output values and,
    per output, the gradient by each Value operand (one backward per output).

    ``replay``: build the graph at ``2 * xs`` (same signs, integers stay integers),
    ``ag.compile`` it, set the leaves to ``xs`` and take values and gradients from
    ``forward()`` and ``backward()``.
    """
    start = [2 * x if replay else x for x in xs]
    args = [V(s) if m else x for s, x, m in zip(start, xs, mask)]
    leaves = [a for a in args if isinstance(a, ag.Value)]
    outs = as_list(engine_op(name)(*args, *params))
    for o in outs:
        assert isinstance(o, ag.Value) and o.op == name, f"{name}: got {o!r} with op {o.op!r}"
    if replay:
        step = ag.compile(outs)
        for v, x in zip(leaves, (x for x, m in zip(xs, mask) if m)):
            v.data = x
        values = step.forward()

        def backward(k):
            step.backward([1.0 if j == k else 0.0 for j in range(len(outs))])

    else:
        values = [o.data for o in outs]

        def backward(k):
            outs[k].backward()

    rows = []
    for k in range(len(outs)):
        for v in leaves:
            v.grad = 0.0
        backward(k)
        rows.append([v.grad for v in leaves])
    return values, rows


def torch_jacobian(torch, ref, xs, mask, params):
    """The same in PyTorch float64 (numbers become constant tensors)."""
    ts = [torch.tensor(float(x), dtype=torch.float64, requires_grad=m) for x, m in zip(xs, mask)]
    leaves = [t for t, m in zip(ts, mask) if m]
    out = ref.torch(torch, *ts, *params).reshape(-1)
    rows = [[g.item() for g in torch.autograd.grad(o, leaves, retain_graph=True)] for o in out]
    return out.tolist(), rows


def describe(name, xs, mask, params):
    args = ", ".join(f"V({x!r})" if m else repr(x) for x, m in zip(xs, mask))
    return f"{name}({args}{''.join(f', {p!r}' for p in params)})"


@pytest.mark.parametrize("name", list(OPS))
@HYPO
@given(data=st.data())
def test_op_against_finite_differences(name, data):
    """Value against the plain-float reference and gradient by every Value operand
    against its central finite differences (every output of a multi-output op),
    eager and replayed. No torch needed."""
    ref = reference(name)
    xs, mask, params = data.draw(operands(ref), label="xs, mask, params")

    def f(*x):
        return as_list(ref.f(*x, *params))

    want = f(*xs)
    fd = [[d for d, m in zip(fd_grad(lambda *x: f(*x)[k], xs), mask) if m] for k in range(len(want))]
    what = describe(name, xs, mask, params)
    for replay in (False, True):
        mode = "replayed" if replay else "eager"
        values, rows = engine_jacobian(name, xs, mask, params, replay)
        assert_close(values, want, rel=VALUE_REL, abs_=VALUE_ABS, what=f"{what} {mode} value")
        for k, (row, fd_row) in enumerate(zip(rows, fd)):
            assert_close(row, fd_row, rel=FD_REL, abs_=FD_ABS, what=f"{what} {mode}: d out[{k}] vs finite differences")


@pytest.mark.parametrize("name", list(OPS))
@HYPO
@given(data=st.data())
def test_op_against_torch(name, data, torch):
    """Value and gradient by every Value operand against PyTorch float64, eager and replayed."""
    ref = reference(name)
    xs, mask, params = data.draw(operands(ref), label="xs, mask, params")
    want, want_rows = torch_jacobian(torch, ref, xs, mask, params)
    what = describe(name, xs, mask, params)
    for replay in (False, True):
        mode = "replayed" if replay else "eager"
        values, rows = engine_jacobian(name, xs, mask, params, replay)
        assert_close(values, want, rel=ref.torch_rel, abs_=TORCH_ABS, what=f"{what} {mode} value vs torch")
        for k, (row, t_row) in enumerate(zip(rows, want_rows)):
            assert_close(row, t_row, rel=ref.torch_rel, abs_=TORCH_ABS, what=f"{what} {mode}: d out[{k}] vs torch")


def edge_id(edge):
    return f"{edge[0]}{edge[1].args}" + (f"-param{edge[1].params}" if edge[1].params else "")


@pytest.mark.parametrize("name,edge", EDGES, ids=[edge_id(e) for e in EDGES])
def test_op_edges(name, edge):
    """At a kink or domain edge (finite differences are meaningless there) the value
    and the derivative by every operand equal those written down by hand, eager and
    replayed. NaN expects NaN."""
    ref = REFERENCE[name]
    values_want = as_list(edge.value)
    rows_want = [as_list(r) for r in (edge.grad if ref.multi else [edge.grad])]
    mask = [True] * len(edge.args)
    what = describe(name, edge.args, mask, edge.params)
    for replay in (False, True):
        mode = "replayed" if replay else "eager"
        values, rows = engine_jacobian(name, edge.args, mask, edge.params, replay)
        assert_close(values, values_want, rel=EDGE_REL, abs_=1e-300, what=f"{what} {mode} value")
        for k, (row, want) in enumerate(zip(rows, rows_want)):
            assert_close(row, want, rel=EDGE_REL, abs_=1e-300, what=f"{what} {mode}: d out[{k}]")


@pytest.mark.parametrize("name,edge", EDGES, ids=[edge_id(e) for e in EDGES])
def test_op_edges_against_torch(name, edge, torch):
    """At the same kinks and edges the engine follows PyTorch's conventions."""
    ref = REFERENCE[name]
    mask = [True] * len(edge.args)
    want, want_rows = torch_jacobian(torch, ref, edge.args, mask, edge.params)
    values, rows = engine_jacobian(name, edge.args, mask, edge.params, replay=False)
    what = describe(name, edge.args, mask, edge.params)
    assert_close(values, want, rel=ref.torch_rel, abs_=TORCH_ABS, what=f"{what} value vs torch")
    for k, (row, t_row) in enumerate(zip(rows, want_rows)):
        assert_close(row, t_row, rel=ref.torch_rel, abs_=TORCH_ABS, what=f"{what}: d out[{k}] vs torch")


# ------------------------------------------------------------------ any float at all
# The draws above stay where finite differences mean something. Here every float is
# fair: zeros of both signs, subnormals, the edges of exp's range, huge magnitudes,
# infinities and NaN. The engine must do what its plain-float function does, as
# Python floats do: the same value, or the same exception.

SPECIAL = [
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1e-300,
    -1e-300,
    1.0,
    -1.0,
    709.78,
    710.0,
    -745.2,
    -746.0,
    1e300,
    -1e300,
    1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
]
ANY_FLOAT = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))
SCALAR_OPS = [name for name, ref in REFERENCE.items() if ref.arity in ("unary", "binary") and not ref.multi]
DOMAIN_ERRORS = (ValueError, ZeroDivisionError, OverflowError)


def plain(f, args):
    """(value, None) or (None, exception type) of the plain-float function."""
    try:
        return f(*args), None
    except DOMAIN_ERRORS as e:
        return None, type(e)


# One op call per draw: a budget ten times the usual one takes well under a second
# per op and reaches the special values and both ends of the range; with torch in
# the loop, five times (about half a second per op).
ANY_FLOAT_HYPO = settings(HYPO, max_examples=10 * HYPO.max_examples)
ANY_FLOAT_TORCH_HYPO = settings(HYPO, max_examples=5 * HYPO.max_examples)


@pytest.mark.parametrize("name", SCALAR_OPS)
@ANY_FLOAT_HYPO
@given(data=st.data())
def test_op_on_any_float_matches_its_plain_float_function(name, data):
    ref = REFERENCE[name]
    args = data.draw(st.tuples(*[ANY_FLOAT] * (1 if ref.arity == "unary" else 2)), label="operands")
    want, error = plain(ref.f, args)
    if error is not None:
        with pytest.raises(error):
            engine_op(name)(*[ag.Value(a) for a in args])
        return
    got = engine_op(name)(*[ag.Value(a) for a in args]).data
    if math.isnan(want):
        assert math.isnan(got), (name, args, got)
    else:
        # A few ulps (the engine may evaluate the same formula in another order);
        # below the normal range there are no ulps to spare.
        assert math.isclose(got, want, rel_tol=1e-13, abs_tol=1e-307), (name, args, got, want)


@pytest.mark.parametrize("name", SCALAR_OPS)
@ANY_FLOAT_TORCH_HYPO
@given(data=st.data())
def test_op_gradient_on_any_float_matches_torch(name, data, torch):
    """Where the value is defined, the gradient is torch's in float64, whatever the
    magnitude (NaN where torch gives NaN)."""
    ref = REFERENCE[name]
    args = data.draw(st.tuples(*[ANY_FLOAT] * (1 if ref.arity == "unary" else 2)), label="operands")
    want, error = plain(ref.f, args)
    if error is not None:
        return
    vs = [ag.Value(a) for a in args]
    engine_op(name)(*vs).backward()
    _, t_grads = torch_grads(torch, lambda *ts: ref.torch(torch, *ts), args)
    for k, (v, t) in enumerate(zip(vs, t_grads)):
        if math.isnan(t):
            assert math.isnan(v.grad), (name, args, k, v.grad, t)
        else:
            assert math.isclose(v.grad, t, rel_tol=ref.torch_rel, abs_tol=TORCH_ABS), (name, args, k, v.grad, t)


# ------------------------------------------------------------------ unary ops: spellings


def U(name, x):
    """Apply unary op ``name`` (from REFERENCE) to a Value, a float or a tensor."""
    if isinstance(x, ag.Value):
        return engine_op(name)(x)
    if is_torch(x):
        import torch

        return REFERENCE[name].torch(torch, x)
    return REFERENCE[name].f(x)


def test_builtin_abs_is_the_abs_op():
    """``abs(v)`` builds the abs op, with derivative sign(x)."""
    a = V(-2.5)
    y = abs(a)
    assert isinstance(y, ag.Value) and y.data == 2.5 and y.op == "abs"
    y.backward()
    assert a.grad == -1.0


def test_unary_plus_returns_the_same_object():
    """``+v`` is ``v`` itself: no node."""
    a = V(1.5)
    assert (+a) is a
    b = a * 2
    assert (+b) is b


def test_leaky_relu_slope_keyword_and_positional():
    """The slope may be given by position or keyword, and as an int."""
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
    """sigmoid neither overflows nor loses its derivative at either end; exp underflows
    to 0 and softplus is x (or 0) for large |x|."""
    for x in (-800.0, 800.0):
        a = V(x)
        y = a.sigmoid()
        y.backward()
        assert y.data == _sigmoid_stable(x)
        assert a.grad == 0.0  # underflows, and is neither inf nor nan
    # Deep in the tail but above underflow: sigmoid(-600) = e^-600 / (1 + e^-600) and
    # its derivative e^-600 (1 + e^-600)^-2 are e^-600 to the last bit.
    a = V(-600.0)
    y = a.sigmoid()
    y.backward()
    assert y.data == pytest.approx(math.exp(-600.0), rel=1e-14)
    assert a.grad == pytest.approx(math.exp(-600.0), rel=1e-14)
    a = V(-800.0)
    y = a.exp()
    assert y.data == 0.0 == math.exp(-800.0)
    assert V(800.0).softplus().data == 800.0
    assert V(-800.0).softplus().data == 0.0


def _sigmoid_stable(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# ------------------------------------------------------------------ pow with integer exponents

POW_INT = [(base, k) for base in (-2.5, -1.0, 0.5, 3.0) for k in (-3, -2, 0, 1, 2, 3)]


@pytest.mark.parametrize("form", ["V op V", "V op n"])
@pytest.mark.parametrize("base,k", POW_INT)
def test_pow_integer_exponents_of_any_sign_base(base, k, form):
    """Integer exponents are defined for negative bases: d/da a^k = k a^(k-1) (0 for
    k = 0), and with a Value exponent d/dk a^k = a^k ln a, NaN for a < 0."""
    a = V(base)
    y = a ** (V(float(k)) if form == "V op V" else k)
    assert y.data == pytest.approx(base**k, rel=1e-15)
    y.backward()
    want_da = k * base ** (k - 1) if k != 0 else 0.0
    assert_close(a.grad, want_da, rel=1e-14, abs_=0.0, what=f"d({base}**{k})/da")
    if form == "V op V":
        want_dk = base**k * math.log(base) if base > 0 else math.nan
        assert_close(y.inputs[1].grad, want_dk, rel=1e-14, abs_=0.0, what=f"d({base}**{k})/dk")


@pytest.mark.parametrize("form", ["V op V", "V op n"])
@pytest.mark.parametrize("base,k", POW_INT)
def test_pow_integer_exponents_match_torch(base, k, form, torch):
    """The same against PyTorch float64."""
    a = V(base)
    y = a ** (V(float(k)) if form == "V op V" else k)
    y.backward()
    t_a = torch.tensor(base, dtype=torch.float64, requires_grad=True)
    t_k = torch.tensor(float(k), dtype=torch.float64, requires_grad=True)
    ty = t_a ** (t_k if form == "V op V" else k)
    ty.backward()
    assert_close(y.data, ty.item(), rel=TORCH_REL, abs_=TORCH_ABS, what="value vs torch")
    assert_close(a.grad, t_a.grad.item(), rel=TORCH_REL, abs_=TORCH_ABS, what="da vs torch")
    if form == "V op V":
        assert_close(y.inputs[1].grad, t_k.grad.item(), rel=TORCH_REL, abs_=TORCH_ABS, what="dk vs torch")


@pytest.mark.parametrize("k", [2, 3, -1, 0.5])
def test_pow_derivative_is_micrograds_formula_to_the_bit(k):
    """d/da a**k is micrograd's ``other * self.data**(other - 1)`` with Python's float
    pow, to the bit, in eager, replay and batched replay; a**2's second derivative is
    exactly 2. (The square's derivative skips a pow call: a ** 1.0 is a exactly.)"""
    import numpy as np

    rng = np.random.default_rng(7)
    bases = rng.uniform(0.01, 3.0, 300) * (1.0 if k == 0.5 else rng.choice([-1.0, 1.0], 300))
    want = [k * float(b) ** (k - 1) for b in bases]
    a = V(float(bases[0]))
    y = a**k
    cg = ag.compile(y, inputs=[a])
    for b, w in zip(bases, want):
        e = V(float(b))
        (e**k).backward()
        assert e.grad == w, (b, e.grad, w)
        cg.set_data([a], [float(b)])
        cg.forward()
        a.grad = 0.0
        cg.backward()
        assert a.grad == w, ("replay", b)
    _, gx = cg.value_and_grad(bases.reshape(-1, 1))
    assert gx[:, 0].tolist() == want
    if k == 2:
        assert ag.compile(V(1.7) ** 2).hessian().tolist() == [[2.0]]


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
def test_same_value_used_twice(name, x):
    """A Value feeding both operands: its gradient sums both paths (vs finite differences)."""
    f = SELF_CASES[name]
    a = V(x)
    y = f(a)
    assert_close(y.data, f(x), rel=1e-15, what=f"{name} at {x}")
    y.backward()
    assert_close(a.grad, fd_grad(f, [x])[0], rel=FD_REL, abs_=FD_ABS, what=f"d{name} vs FD")


@pytest.mark.parametrize("name", list(SELF_CASES))
@HYPO
@given(x=st.floats(0.1, 3))
def test_same_value_used_twice_matches_torch(name, x, torch):
    """The same against PyTorch float64."""
    f = SELF_CASES[name]
    a = V(x)
    f(a).backward()
    _, tg = torch_grads(torch, f, [x])
    assert_close(a.grad, tg[0], rel=TORCH_REL, abs_=TORCH_ABS, what=f"d{name} vs torch")


def test_same_value_twice_exact():
    """a*a, a+a, a-a at 3: gradients 6, 2, 0 exactly."""
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
    "softplus(a-b)sin(c)+cos(ac)^2-3/(2+b^2)": lambda a, b, c: (
        U("softplus", a - b) * U("sin", c) + U("cos", a * c) ** 2 - 3 / (2 + b * b)
    ),
    "sqrt(a^2+b^2+1)*(-c)+2**b": lambda a, b, c: U("sqrt", a * a + b * b + 1) * U("neg", c) + 2**b,
    "((a*b)-(b*c)).tanh()*a+a*a*b": lambda a, b, c: U("tanh", a * b - b * c) * a + a * a * b,
    "(1-a)/(1+b*b)-c**3+5": lambda a, b, c: (1 - a) / (1 + b * b) - c**3 + 5,
}


@pytest.mark.parametrize("name", list(COMPOSITES))
@HYPO
@given(x=reals, z=reals, w=reals)
def test_composite_expressions(name, x, z, w):
    """Chains of ops: value against the same expression on floats, gradients against
    its finite differences."""
    f = COMPOSITES[name]
    a, b, c = V(x), V(z), V(w)
    y = f(a, b, c)
    # Same operations in the same order as the float evaluation: a few ulps at most.
    assert_close(y.data, f(x, z, w), rel=1e-13, abs_=1e-14, what=f"{name} value")
    y.backward()
    fd = fd_grad(f, [x, z, w])
    for leaf, d_fd, nm in zip((a, b, c), fd, "abc"):
        assert_close(leaf.grad, d_fd, rel=FD_REL, abs_=FD_ABS, what=f"d{name}/d{nm} vs FD")


@pytest.mark.parametrize("name", list(COMPOSITES))
@HYPO
@given(x=reals, z=reals, w=reals)
def test_composite_expressions_match_torch(name, x, z, w, torch):
    """The same expressions against PyTorch float64."""
    f = COMPOSITES[name]
    a, b, c = V(x), V(z), V(w)
    y = f(a, b, c)
    y.backward()
    ty, tg = torch_grads(torch, f, [x, z, w])
    assert_close(y.data, ty, rel=1e-13, abs_=1e-14, what=f"{name} vs torch")
    for leaf, d_t, nm in zip((a, b, c), tg, "abc"):
        # Gradients are sums over paths; the order of accumulation differs
        # from torch's, so allow rounding to compound slightly beyond 1e-12.
        assert_close(leaf.grad, d_t, rel=1e-11, abs_=1e-12, what=f"d{name}/d{nm} vs torch")


RELU_POINTS = [(-3.0, 2.0), (1.5, -0.5), (2.0, 3.0), (-1.0, -2.0)]


def _relu_composite(a, b):
    # micrograd's favourite: relu of a product, away from the kink.
    return U("relu", a * b + b**3) * a - U("relu", b - a)


@pytest.mark.parametrize("x,z", RELU_POINTS)
def test_relu_composite_with_kink_avoided(x, z):
    """relu inside a product, off the kink: exact value, gradients vs finite differences."""
    a, b = V(x), V(z)
    y = _relu_composite(a, b)
    assert y.data == _relu_composite(x, z)
    y.backward()
    fd = fd_grad(_relu_composite, [x, z])
    assert_close([a.grad, b.grad], fd, rel=FD_REL, abs_=FD_ABS, what="relu composite vs FD")


@pytest.mark.parametrize("x,z", RELU_POINTS)
def test_relu_composite_matches_torch(x, z, torch):
    """The same against PyTorch float64."""
    a, b = V(x), V(z)
    _relu_composite(a, b).backward()
    _, tg = torch_grads(torch, _relu_composite, [x, z])
    assert_close([a.grad, b.grad], tg, rel=TORCH_REL, abs_=TORCH_ABS, what="relu composite vs torch")


# ----------------------------------------------------------------- fused ops: operand forms


def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def test_dot_with_shared_values():
    """The same Value on both sides and twice on one side: gradients add up."""
    a, b, c = V(2.0), V(-3.0), V(0.5)
    y = ag.dot([a, b, a], [a, c, 4.0])  # a*a + b*c + 4a
    assert y.data == 4.0 - 1.5 + 8.0
    y.backward()
    assert (a.grad, b.grad, c.grad) == (2 * 2.0 + 4.0, 0.5, -3.0)


def test_sum_with_repeated_values_and_numbers():
    """A Value listed k times in sum gets gradient k; in mean k/n."""
    a, b = V(1.5), V(-2.0)
    y = ag.sum([a, 2, a, b, 0.25, a])
    assert y.data == 1.5 * 3 + 2 - 2.0 + 0.25
    y.backward()
    assert (a.grad, b.grad) == (3.0, 1.0)
    m = V(4.0)
    z = ag.mean([m, m, 1.0, -1.0])
    z.backward()
    assert z.data == 2.0 and m.grad == 0.5


def test_softmax_outputs_sum_to_one():
    """softmax's outputs sum to 1 (to rounding), for any operands."""
    outs = ag.softmax([V(0.3), -1.2, V(2.0), V(0.7)])
    assert math.fsum(o.data for o in outs) == pytest.approx(1.0, rel=1e-14)


def test_fused_ops_accept_generators_and_tuples():
    """Operands may come from any iterable."""
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
    """numpy scalars and arrays are numbers like any other."""
    np = pytest.importorskip("numpy")
    a = V(1.0)
    y = ag.dot([a, np.float32(2.0)], np.array([3.0, 4.0]))
    assert y.data == 11.0
    y.backward()
    assert a.grad == 3.0
    assert ag.sum(np.array([1.0, 2.5])).data == 3.5
