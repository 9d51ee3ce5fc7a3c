"""Gradients agree with PyTorch everywhere (issue 6): random graphs and a digits epoch.

1. ``test_random_graphs_match_torch``: hypothesis draws a *program* (leaf values, which
   leaves require grad, and a list of op choices with operand indices) over every op of
   the engine (``REFERENCE`` in ``op_reference.py``, whose engine and torch spellings
   build both graphs): every unary op, ``+ - * / **`` as Value-Value, Value-number and
   number-Value (``**`` with a Value exponent too), the n-ary ``sum``, ``mean``, ``dot``
   (Values.Values and Values.floats), ``logsumexp`` and the multi-output ``softmax`` and
   ``log_softmax`` (operand lists of random width, with repeats and mixed-in numbers).
   The program is built in arenagrad and in PyTorch float64 side by side; the output is a
   weighted sum of the last few nodes. Every node's value and every leaf's gradient are
   compared with torch, in eager mode and then in compiled mode (``ag.compile``, new leaf
   data, ``forward()``/``backward()``), and the replay is compared bit for bit with an
   eager graph rebuilt at the new data.

2. ``test_digits_epoch_matches_torch``: one full epoch of the 64-32-10 MLP on the digits
   with cross-entropy and SGD with momentum, against the same network in torch; every
   parameter's gradient at every step and every parameter's value after every step.

``ARENAGRAD_TRUST_EXAMPLES`` sets the number of random programs: 200 by default (about 5 s
on two cores; the digits epoch takes about 1.5 s more), and the issue's "thousands" with
``ARENAGRAD_TRUST_EXAMPLES=3000`` (about 70-85 s) or 20000 (about 6 minutes).

Tolerances
----------
Values and gradients are compared at relative 1e-9. Two engines that round differently
(torch's ``x ** 2`` is ``x * x``; its softplus, sigmoid, softmax and sums are computed
with other formulas or in another order) legitimately differ by an ulp or so per op, and
random graphs contain cancellations (``a - b`` with ``a ~ b``, a gradient that is the sum
of opposite path contributions) that turn those ulps into an arbitrarily large *relative*
difference of a small result. So each comparison also gets an absolute floor, ``FLOOR``
times a first-order bound of the rounding error carried by that quantity, computed here in
plain Python from the arenagrad values (running error analysis):

* a node's ``mag`` is ``intrinsic + sum_i |dy/dx_i| * mag(x_i)`` (a leaf's is ``|x|``):
  the magnitude of everything added up to make it; its rounding error is a few ulps of
  ``mag``;
* a leaf's ``gmag`` is the reverse sweep of the same graph with every local derivative
  replaced by the magnitude of the terms it is computed from plus its sensitivity to the
  inputs' rounding (``sum_j |dp/dx_j| * mag(x_j)``); the rounding error of the leaf's
  gradient is a few ulps of ``gmag``.

``FLOOR = 1e-13`` is about 450 ulps of that bound. Over 20,000 random programs (662,000
comparisons) the largest difference was 2.6 ulps of it; the floor was needed (relative
1e-9 alone would have failed) in 0.5% of the comparisons, always where the result is
much smaller than the terms it came from. A wrong derivative is off by O(1) of the bound.
Where nothing cancels, ``gmag`` is ``|grad|`` and the check is plain relative 1e-9.
``TINY`` (1e-300) absolute is allowed everywhere for results below float64's normal range.

Points where a comparison would be meaningless are not drawn: an op is skipped, for both
engines, and the graph goes on, when arenagrad raises a domain error (the test then checks
that Python's float/math raise the same and that torch gives nan/inf there), when its
input is within ``EDGE`` times its rounding bound of a kink (relu/abs/leaky_relu at 0) or
of a domain edge (log, sqrt, division, power at 0), when a value, local derivative or
bound is not finite, beyond ``BIG`` or below ``TINY``, and for a negative base with a Value
exponent (d/db a**b = a**b log a is NaN in both engines, and a NaN would make every later
comparison vacuous). The replay at new leaf data keeps every op (it is the recorded graph):
there a domain error must make ``forward()`` raise too, and if an op sits on a kink or
edge only the bit-for-bit comparison with eager mode is made.
"""

from __future__ import annotations

import math
import os
import struct
import sys
import time

import arenagrad as ag
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from op_reference import REFERENCE, engine_op  # noqa: E402

EXAMPLES = int(os.environ.get("ARENAGRAD_TRUST_EXAMPLES", "200"))
TRUST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    # The explain phase re-runs a failing program hundreds of times for a few comments.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)

REL = 1e-9  # the tolerance
FLOOR = 1e-13  # times the first-order rounding bound (module docstring)
EDGE = 1e-10  # closer than this (relative to mag) to a kink or domain edge: skipped
BIG = 1e100  # values, local derivatives and mags beyond this: skipped
# Below float64's normal range (2.2e-308) a result has no relative precision left: torch's
# sigmoid(-712) is 1/(1+exp(712)) = 0 where the true value (and arenagrad's) is 5.9e-310.
# Ops whose value or local derivative is nonzero but below TINY are skipped; a gradient
# can still underflow along a path, so every comparison also allows TINY absolute.
TINY = 1e-300
F64 = torch.float64

UNARY = [name for name, ref in REFERENCE.items() if ref.arity == "unary"]
BINARY = [name for name, ref in REFERENCE.items() if ref.arity == "binary" and not ref.multi]
# n-ary and multi-output ops, and dot with a list of numbers as ys
NARY = [name for name, ref in REFERENCE.items() if ref.arity == "nary" or ref.multi] + ["dot_floats"]
PARAM = {op["name"]: op["param"] for op in ag._core.ops()}  # (name, default) or None
DOMAIN_ERRORS = (ValueError, ZeroDivisionError, OverflowError)


# ------------------------------------------------------------------ the ops, three ways
# For every op: how arenagrad computes it and how torch computes it (both from
# REFERENCE), and (in plain floats) its local derivatives with the magnitudes the
# tolerance floors are built from.


def _params(name, slope):
    """The drawn slope, for ops that take a parameter (leaky_relu)."""
    return (slope,) if PARAM[name] is not None else ()


def _arena_unary(name, x, slope):
    return engine_op(name)(x, *_params(name, slope))


def _torch_unary(name, t, slope):
    return REFERENCE[name].torch(torch, t, *_params(name, slope))


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _unary_local(name, x, slope):
    """(p, |terms of p|, |p'|): the derivative, the magnitude it is computed from, f''."""
    if name == "neg":
        return -1.0, 1.0, 0.0
    if name == "abs":
        return math.copysign(1.0, x), 1.0, 0.0
    if name == "relu":
        return (1.0, 1.0, 0.0) if x > 0 else (0.0, 0.0, 0.0)
    if name == "leaky_relu":
        return (1.0, 1.0, 0.0) if x > 0 else (slope, abs(slope), 0.0)
    if name == "tanh":
        t = math.tanh(x)
        return 1 - t * t, 1 + t * t, 2 * abs(t) * (1 - t * t)
    if name == "sigmoid":
        s = _sig(x)
        return s * (1 - s), s * (1 + s), s * (1 - s) * abs(1 - 2 * s)
    if name == "exp":
        e = math.exp(x)
        return e, e, e
    if name == "log":
        return 1 / x, 1 / abs(x), 1 / (x * x)
    if name == "sqrt":
        r = math.sqrt(x)
        return 0.5 / r, 0.5 / r, 0.25 / (x * r)
    if name == "softplus":
        s = _sig(x)
        return s, s, s * (1 - s)
    if name == "sin":
        return math.cos(x), abs(math.cos(x)), abs(math.sin(x))
    if name == "cos":
        return -math.sin(x), abs(math.sin(x)), abs(math.cos(x))
    # An op with no line above (a new one, say) is covered all the same: its
    # derivatives by central differences of REFERENCE's plain-float function.
    # They only size the tolerances, so their own error (about 1e-10 relative
    # here) does not matter; the lines above are exact where it does (kinks).
    ref, args = REFERENCE[name], _params(name, slope)
    h = 1e-5 * max(1.0, abs(x))
    lo, mid, hi = (ref.f(t, *args) for t in (x - h, x, x + h))
    p = (hi - lo) / (2 * h)
    return p, abs(p), abs(hi - 2 * mid + lo) / (h * h)


def _ipow(a, b):
    """a ** b in floats, inf where it overflows or divides by zero, nan where undefined."""
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.inf if a == 0 else math.nan


def _times(d, m):
    # |d| * m with 0 * inf = 0: a quantity without rounding error (m == 0) adds none.
    return 0.0 if m == 0 else abs(d) * m


def _binary_local(op, a, b, ma, mb, y, b_is_node):
    """[(p_a, pm_a), (p_b, pm_b)] for y = a op b; pm includes forward-error sensitivity."""
    if op == "+":
        return [(1.0, 1.0), (1.0, 1.0)]
    if op == "-":
        return [(1.0, 1.0), (-1.0, 1.0)]
    if op == "*":
        return [(b, abs(b) + mb), (a, abs(a) + ma)]
    if op == "/":
        pa, pb = 1 / b, -a / (b * b)
        return [
            (pa, abs(pa) + _times(1 / (b * b), mb)),
            (pb, abs(pb) + _times(1 / (b * b), ma) + _times(2 * a / b**3, mb)),
        ]
    assert op == "**"
    pa = 0.0 if b == 0 else b * _ipow(a, b - 1)
    pm_a = abs(pa) + _times(b * (b - 1) * _ipow(a, b - 2), ma)
    if b_is_node:  # then a >= 0 (negative bases with a Value exponent are skipped)
        la = math.log(a) if a > 0 else 0.0
        pm_a += _times(_ipow(a, b - 1) * (1 + b * la), mb)
        pb = 0.0 if a == 0 else y * la
        pm_b = abs(pb) + _times(_ipow(a, b - 1) * (b * la + 1), ma) + _times(y * la * la, mb)
    else:
        pb, pm_b = 0.0, 0.0  # a constant exponent receives nothing
    return [(pa, pm_a), (pb, pm_b)]


def _softmax_floats(xs):
    m = max(xs)
    es = [math.exp(x - m) for x in xs]
    s = math.fsum(es)
    return [e / s for e in es], m + math.log(s)


def _nary_local(name, xs, ms, ys, consts):
    """Per output: (intrinsic magnitude, [(p, pm) per operand slot])."""
    n = len(xs)
    if name == "sum":
        return [(math.fsum(abs(x) for x in xs), [(1.0, 1.0)] * n)]
    if name == "mean":
        return [(math.fsum(abs(x) for x in xs) / n, [(1.0 / n, 1.0 / n)] * n)]
    if name in ("dot", "dot_floats"):
        other = consts if name == "dot_floats" else xs[n // 2 :]
        first = xs[: n // 2] if name == "dot" else xs
        om = [0.0] * len(other) if name == "dot_floats" else ms[n // 2 :]
        fm = ms[: n // 2] if name == "dot" else ms
        ps = [(o, abs(o) + m) for o, m in zip(other, om)]
        if name == "dot":
            ps += [(f, abs(f) + m) for f, m in zip(first, fm)]
        return [(math.fsum(abs(f * o) for f, o in zip(first, other)), ps)]
    s, lse = _softmax_floats(xs)
    d = lambda i, j: 1.0 if i == j else 0.0  # noqa: E731
    if name == "logsumexp":
        ps = [(s[i], s[i] + math.fsum(s[i] * (d(i, j) + s[j]) * ms[j] for j in range(n))) for i in range(n)]
        return [(abs(ys[0]) + max(abs(x) for x in xs), ps)]
    outs = []
    for k in range(n):
        ps = []
        for i in range(n):
            if name == "softmax":
                p = s[k] * (d(k, i) - s[i])
                pm = s[k] * (d(k, i) + s[i]) + math.fsum(
                    (s[k] * (d(k, j) + s[j]) * (d(k, i) + s[i]) + s[k] * s[i] * (d(i, j) + s[j])) * ms[j]
                    for j in range(n)
                )
            else:
                p = d(k, i) - s[i]
                pm = d(k, i) + s[i] + math.fsum(s[i] * (d(i, j) + s[j]) * ms[j] for j in range(n))
            ps.append((p, pm))
        intrinsic = s[k] * (1 + abs(xs[k]) + abs(lse)) if name == "softmax" else abs(xs[k]) + abs(lse)
        outs.append((intrinsic, ps))
    return outs


def _py_reference(op, xs):
    """The op on Python floats (REFERENCE's); raises what Python's float and math raise."""
    return REFERENCE[op].f(*xs)


def _bits(x):
    return struct.pack("<d", x)


# ------------------------------------------------------------------ programs


@st.composite
def _operand(draw):
    # Mostly a node (0 = the latest node, so small draws make deep chains), sometimes a
    # plain number mixed in.
    if draw(st.integers(0, 9)) == 9:
        return ("num", draw(NUMBERS))
    return ("ref", draw(st.integers(0, 2**16)))


LEAF_VALUES = st.one_of(st.floats(-3, 3), st.floats(-40, 40))
NUMBERS = st.one_of(st.sampled_from([1.0, 2.0, -1.0, 0.5, 0.0, 3.0, -0.5]), st.floats(-4, 4))
EXPONENTS = st.one_of(st.sampled_from([2.0, 3.0, 0.5, -1.0, -2.0, 1.5, 0.0, 1.0, -0.5]), st.floats(-3, 3))
BASES = st.one_of(st.sampled_from([2.0, 0.5, math.e, 10.0, 0.0, -2.0]), st.floats(-4, 4))
SLOPES = st.one_of(st.sampled_from([0.01, 0.2]), st.floats(0, 1))
WIDTH = st.integers(1, 6)

UNARY_STEP = st.tuples(st.just("unary"), st.sampled_from(UNARY), st.integers(0, 2**16), SLOPES)


@st.composite
def _binary_step(draw):
    op = draw(st.sampled_from(BINARY))
    form = draw(st.sampled_from(["vv", "vn", "nv"]))
    a, b = draw(st.integers(0, 2**16)), draw(st.integers(0, 2**16))
    if op == "**":
        c = draw(EXPONENTS if form == "vn" else BASES)
    else:
        c = draw(NUMBERS)
    return ("binary", op, form, a, b, c)


@st.composite
def _nary_step(draw):
    name = draw(st.sampled_from(NARY))
    w = draw(WIDTH)
    first = ("ref", draw(st.integers(0, 2**16)))  # at least one Value operand
    xs = [first] + draw(st.lists(_operand(), min_size=w - 1, max_size=w - 1))
    ys = []
    if name == "dot":
        ys = draw(st.lists(_operand(), min_size=w, max_size=w))
    elif name == "dot_floats":
        ys = draw(st.lists(NUMBERS, min_size=w, max_size=w))
    return ("nary", name, xs, ys)


STEP = st.one_of(UNARY_STEP, _binary_step(), _nary_step())


@st.composite
def programs(draw):
    n = draw(st.integers(1, 6))
    leaves = draw(st.lists(LEAF_VALUES, min_size=n, max_size=n))
    # Most leaves require grad; some do not (their grad must stay 0, torch's None).
    requires = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n, max_size=n))
    n_steps = draw(st.integers(1, 24))  # drawn first: st.lists alone favours short lists
    steps = draw(st.lists(STEP, min_size=n_steps, max_size=n_steps))
    n_out = draw(st.integers(1, 4))
    weights = draw(
        st.lists(st.one_of(st.sampled_from([1.0, -1.0, 0.5]), st.floats(-2, 2)), min_size=n_out, max_size=n_out)
    )
    # New leaf data for the compiled replay: a relative perturbation or a fresh value.
    new = draw(
        st.lists(
            st.one_of(st.tuples(st.just("rel"), st.floats(-0.5, 0.5)), st.tuples(st.just("new"), LEAF_VALUES)),
            min_size=n,
            max_size=n,
        )
    )
    new_data = [x * (1 + r) if how == "rel" else r for x, (how, r) in zip(leaves, new)]
    how_set = draw(st.sampled_from(["set_data", "attribute"]))
    return dict(leaves=leaves, requires=requires, steps=steps, weights=weights, new_data=new_data, how_set=how_set)


# ------------------------------------------------------------------ building both graphs


class Graph:
    """An arenagrad graph and a torch graph of the same program, plus the error bounds.

    ``realize`` turns drawn steps into concrete ops (operand indices resolved, ops that
    fail or sit on a kink dropped) as it builds; ``replay`` builds an already realized
    program at other leaf values without dropping anything (``errors`` collects what
    arenagrad raises, ``clean`` is cleared if an op sits where torch cannot be compared).
    """

    def __init__(self, leaves, requires):
        self.a = [ag.Value(x, requires_grad=r) for x, r in zip(leaves, requires)]
        self.t = [torch.tensor(x, dtype=F64, requires_grad=r) for x, r in zip(leaves, requires)]
        self.leaf_t = list(self.t)
        self.mag = [abs(x) for x in leaves]
        self.edges = [[] for _ in leaves]  # per node: [(input node, pm)]
        self.realized = []
        self.errors = set()  # replay: types of the domain errors arenagrad raised
        self.clean = True
        self.skips = []

    # ---- one op

    def _operands(self, slots):
        a, t, x, m = [], [], [], []
        for kind, v in slots:
            if kind == "node":
                a.append(self.a[v]), t.append(self.t[v]), x.append(self.a[v].data), m.append(self.mag[v])
            else:
                a.append(v), t.append(torch.tensor(v, dtype=F64)), x.append(v), m.append(0.0)
        return a, t, x, m

    def apply(self, op, strict):
        """Build ``op`` in both engines. Returns None, or why it was not usable."""
        kind, name, slots, extra = op
        a, t, x, m = self._operands(slots)
        try:
            if kind == "unary":
                out_a = [_arena_unary(name, a[0], extra)]
            elif kind == "binary":
                out_a = [_arena_binary(name, a[0], a[1])]
            else:
                out_a = _arena_nary(name, a, extra)
        except DOMAIN_ERRORS as err:
            if strict:
                self.errors.add(type(err))
                return "error"
            self._check_domain_error(kind, name, x, t, err)
            return f"raised {type(err).__name__}"
        if kind == "unary":
            out_t = [_torch_unary(name, t[0], extra)]
        elif kind == "binary":
            out_t = [_torch_binary(name, t[0], t[1])]
        else:
            out_t = _torch_nary(name, t, extra)
        ys = [v.data for v in out_a]
        why = self._unusable(kind, name, slots, x, m, ys, extra)
        if why is None:
            try:
                local = self._local(kind, name, slots, x, m, ys, extra)
                mags = [intrinsic + math.fsum(abs(p) * mi for (p, _), mi in zip(ps, m)) for intrinsic, ps in local]
            except (ArithmeticError, ValueError):  # a derivative or bound overflows in floats
                local, mags = [], [math.inf]
            if any(not (math.isfinite(p) and abs(p) <= BIG and math.isfinite(pm)) for _, ps in local for p, pm in ps):
                why = "derivative not finite or huge"
            elif any(0 < abs(p) < TINY for _, ps in local for p, _ in ps):
                why = "derivative below the normal range"
            elif any(not (math.isfinite(mg) and mg <= BIG) for mg in mags):
                why = "rounding bound not finite or huge"
        if why is not None:
            if not strict:
                return why
            self.clean = False  # kept (the recorded graph has it), but torch is not compared
            local, mags = [(0.0, [(0.0, 0.0)] * len(slots)) for _ in ys], [math.inf] * len(ys)
        for ya, yt, (_, ps), mag in zip(out_a, out_t, local, mags):
            self.a.append(ya)
            self.t.append(yt)
            self.mag.append(mag)
            self.edges.append([(v, pm) for (k, v), (_, pm) in zip(slots, ps) if k == "node"])
        return None

    def _unusable(self, kind, name, slots, x, m, ys, extra):
        if any(not math.isfinite(y) or abs(y) > BIG for y in ys):
            return "result not finite or huge"
        if any(0 < abs(y) < TINY for y in ys):
            return "result below the normal range"
        if kind == "unary" and name in ("relu", "abs", "leaky_relu") and abs(x[0]) <= EDGE * m[0]:
            return "kink"
        if kind == "unary" and name in ("log", "sqrt") and x[0] <= EDGE * m[0]:
            return "domain edge"
        if kind == "binary" and name == "/" and abs(x[1]) <= EDGE * m[1]:
            return "domain edge"
        if kind == "binary" and name == "**":
            if abs(x[0]) <= EDGE * m[0] and m[0] > 0:
                return "domain edge"
            if slots[1][0] == "node" and x[0] < 0:
                return "negative base, Value exponent"
        return None

    @staticmethod
    def _local(kind, name, slots, x, m, ys, extra):
        if kind == "unary":
            p, pterm, dp = _unary_local(name, x[0], extra)
            return [(abs(ys[0]), [(p, pterm + _times(dp, m[0]))])]
        if kind == "binary":
            intrinsic = abs(x[0]) + abs(x[1]) if name in "+-" else abs(ys[0])
            return [(intrinsic, _binary_local(name, x[0], x[1], m[0], m[1], ys[0], slots[1][0] == "node"))]
        return _nary_local(name, x, m, ys, extra)

    @staticmethod
    def _check_domain_error(kind, name, x, t, err):
        """arenagrad raised: Python floats must raise the same, torch must give nan/inf."""
        with pytest.raises(type(err)):
            _py_reference(name, x)
        with torch.no_grad():
            if kind == "unary":
                r = _torch_unary(name, t[0], 0.0)
            else:
                r = _torch_binary(name, t[0], t[1])
        if [ti.item() for ti in t] == x:  # same operands: torch's result must say so too
            assert not math.isfinite(r.item()), f"{name}{tuple(x)}: arenagrad raised {err!r}, torch gave {r.item()!r}"

    # ---- programs

    def realize(self, steps):
        for step in steps:
            op = self._resolve(step)
            why = self.apply(op, strict=False)
            if why is None:
                self.realized.append(op)
            else:
                self.skips.append(why)

    def _resolve(self, step):
        n = len(self.a)

        def ref(r):
            return ("node", n - 1 - r % n)

        def slot(s):
            return ref(s[1]) if s[0] == "ref" else ("num", s[1])

        if step[0] == "unary":
            _, name, r, slope = step
            return ("unary", name, [ref(r)], slope)
        if step[0] == "binary":
            _, op, form, ra, rb, c = step
            sa = ("num", c) if form == "nv" else ref(ra)
            sb = ("num", c) if form == "vn" else ref(rb)
            return ("binary", op, [sa, sb], None)
        _, name, xs, ys = step
        if name == "dot":
            return ("nary", name, [slot(s) for s in xs + ys], None)
        if name == "dot_floats":
            return ("nary", name, [slot(s) for s in xs], list(ys))
        return ("nary", name, [slot(s) for s in xs], None)

    def replay(self, realized):
        # An op that raises, and everything computed from it, becomes a NaN placeholder,
        # so that every op that fails on valid inputs is found: replay evaluates in its
        # own topological order and may report any one of them.
        poisoned = set()
        for op in realized:
            n_out = _n_outputs(op)
            if any(k == "node" and v in poisoned for k, v in op[2]) or self.apply(op, strict=True) == "error":
                poisoned.update(range(len(self.a), len(self.a) + n_out))
                for _ in range(n_out):
                    self.a.append(ag.Value(math.nan))
                    self.t.append(torch.tensor(math.nan, dtype=F64))
                    self.mag.append(math.nan)
                    self.edges.append([])
            self.realized.append(op)

    def reduce(self, weights, nodes=None):
        """out = sum_k w_k * node_k over the last few nodes (one ag.dot node)."""
        if nodes is None:
            k = min(len(weights), len(self.a))
            nodes = list(range(len(self.a) - k, len(self.a)))
        ws = weights[: len(nodes)]
        self.out_nodes = nodes
        self.out_a = ag.dot([self.a[i] for i in nodes], ws)
        self.out_t = torch.dot(torch.stack([self.t[i] for i in nodes]), torch.tensor(ws, dtype=F64))
        self.out_mag = math.fsum(abs(w) * self.mag[i] for w, i in zip(ws, nodes))
        # Reverse sweep with the magnitudes: gmag of every node.
        g = [0.0] * len(self.a)
        for w, i in zip(ws, nodes):
            g[i] += abs(w)
        for j in range(len(self.a) - 1, -1, -1):
            if g[j]:
                for i, pm in self.edges[j]:
                    g[i] += g[j] * pm
        self.gmag = g[: len(self.leaf_t)]


def _n_outputs(op):
    kind, name, slots, _ = op
    return len(slots) if name in REFERENCE and REFERENCE[name].multi else 1


def prune(realized, n_leaves, out_nodes):
    """The ops the output depends on (what ag.compile records), with nodes renumbered."""
    first = []  # index of each op's first output node
    n = n_leaves
    for op in realized:
        first.append(n)
        n += _n_outputs(op)
    live = set(out_nodes)
    keep = [False] * len(realized)
    for j in range(len(realized) - 1, -1, -1):
        if any(first[j] + k in live for k in range(_n_outputs(realized[j]))):
            keep[j] = True
            live.update(v for kind, v in realized[j][2] if kind == "node")
    renum = {i: i for i in range(n_leaves)}
    n, ops = n_leaves, []
    for j, op in enumerate(realized):
        if keep[j]:
            for k in range(_n_outputs(op)):
                renum[first[j] + k] = n + k
            n += _n_outputs(op)
            kind, name, slots, extra = op
            ops.append((kind, name, [(k, renum[v]) if k == "node" else (k, v) for k, v in slots], extra))
    return ops, [renum[i] for i in out_nodes]


def _arena_binary(op, a, b):
    return engine_op(op)(a, b)


def _torch_binary(op, a, b):
    return REFERENCE[op].torch(torch, a, b)


def _arena_nary(name, xs, consts):
    if name == "dot_floats":  # dot's operands are xs then ys: here the ys are numbers
        name, xs = "dot", list(xs) + list(consts)
    r = engine_op(name)(*xs)
    return list(r) if isinstance(r, list) else [r]


def _torch_nary(name, ts, consts):
    if name == "dot_floats":
        name, ts = "dot", list(ts) + [torch.tensor(c, dtype=F64) for c in consts]
    return list(REFERENCE[name].torch(torch, *ts).reshape(-1).unbind(0))


# ------------------------------------------------------------------ comparisons


def _assert_close(got, want, scale, what):
    tol = REL * abs(want) + FLOOR * scale + TINY
    assert abs(got - want) <= tol, (
        f"{what}: arenagrad {got!r}, torch {want!r}, |diff| {abs(got - want):.3g} > tol {tol:.3g} "
        f"(rel {REL} + {FLOOR} x rounding bound {scale:.3g} + {TINY})"
    )


def _describe(g, data):
    return f"leaves={data}, requires={[t.requires_grad for t in g.leaf_t]}, program={g.realized}"


def compare_with_torch(g, data, what):
    """Every node value, the output value and every leaf gradient against torch."""
    desc = _describe(g, data)
    for i, (va, vt) in enumerate(zip(g.a, g.t)):
        _assert_close(va.data, vt.item(), g.mag[i], f"{what}: node {i} value; {desc}")
    _assert_close(g.out_a.data, g.out_t.item(), g.out_mag, f"{what}: output value; {desc}")
    assert g.out_a.requires_grad == g.out_t.requires_grad
    for i, (la, lt) in enumerate(zip(g.a, g.leaf_t)):
        if lt.grad is None:
            assert la.grad == 0.0, f"{what}: leaf {i} gets no gradient in torch, arenagrad {la.grad!r}; {desc}"
        else:
            assert lt.requires_grad
            _assert_close(la.grad, lt.grad.item(), g.gmag[i], f"{what}: d out / d leaf {i}; {desc}")


def _backward_both(g):
    if g.out_t.requires_grad:
        g.out_a.backward()
        g.out_t.backward()
    else:  # built only from leaves with requires_grad=False: both engines refuse
        with pytest.raises(RuntimeError):
            g.out_a.backward()


# ------------------------------------------------------------------ the property test


def check_program(prog):
    # Eager, at the drawn data: build both graphs, dropping unusable ops.
    g = Graph(prog["leaves"], prog["requires"])
    g.realize(prog["steps"])
    g.reduce(prog["weights"])
    for why in g.skips:
        event(f"op skipped: {why}")
    event(f"ops kept: {min(len(g.realized) // 5 * 5, 20)}+")
    _backward_both(g)
    compare_with_torch(g, prog["leaves"], "eager")

    # Compiled: record, move the leaves to new data, replay.
    step = ag.compile(g.out_a)
    new = prog["new_data"]
    if prog["how_set"] == "set_data":
        step.set_data(g.a[: len(new)], np.array(new, dtype=np.float64))
    else:
        for v, x in zip(g.a, new):
            v.data = x
    for v in g.a[: len(new)]:
        v.grad = 0.0

    # The recorded part of the program built eagerly at the new data (nothing dropped).
    ops, out_nodes = prune(g.realized, len(new), g.out_nodes)
    h = Graph(new, prog["requires"])
    h.replay(ops)
    if h.errors:
        event("replay: domain error at the new data")
        with pytest.raises(tuple(h.errors)):
            step.forward()
        return
    h.reduce(prog["weights"], out_nodes)
    got = step.forward()
    assert _bits(got) == _bits(h.out_a.data), f"compiled forward {got!r} != eager {h.out_a.data!r}; {_describe(h, new)}"
    assert _bits(g.out_a.data) == _bits(got), "forward() must write the output's .data"
    if g.out_t.requires_grad:
        step.backward()
        h.out_a.backward()
        for i, (ca, ea) in enumerate(zip(g.a, h.a[: len(new)])):
            assert _bits(ca.grad) == _bits(ea.grad), (
                f"compiled d out / d leaf {i} = {ca.grad!r} != eager {ea.grad!r}; {_describe(h, new)}"
            )
    if not h.clean:
        event("replay: new data near a kink or edge, torch comparison skipped")
        return
    event("replay: compared with torch")
    if h.out_t.requires_grad:
        h.out_t.backward()
    # The compiled graph's leaves carry the replayed gradients; h's torch graph the
    # reference. (h.a's grads are bit-identical to them, checked above.)
    h.a[: len(new)] = g.a[: len(new)]
    compare_with_torch(h, new, "compiled")


@TRUST
@given(prog=programs())
def test_random_graphs_match_torch(prog):
    check_program(prog)


# ------------------------------------------------------------------ digits capstone


def test_digits_epoch_matches_torch():
    from arenagrad.data import ArrayDataset, DataLoader, load_digits, train_test_split
    from arenagrad.nn import functional as AF

    X, y = load_digits()
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, seed=0)
    model = ag.nn.MLP(64, [32, 10], seed=0)
    params = model.parameters()

    # The same network in torch, from the same weights.
    tnet = torch.nn.Sequential(torch.nn.Linear(64, 32, dtype=F64), torch.nn.ReLU(), torch.nn.Linear(32, 10, dtype=F64))
    tlin = [tnet[0], tnet[2]]
    with torch.no_grad():
        for layer, lin in zip(model.layers, tlin):
            lin.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=F64))
            lin.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=F64))

    def torch_params_flat(get):
        # In arenagrad's parameter order: neuron by neuron, its weights then its bias.
        parts = []
        for lin in tlin:
            w, b = get(lin.weight), get(lin.bias)
            parts.append(torch.cat([w, b[:, None]], dim=1).reshape(-1))
        return torch.cat(parts).numpy()

    assert np.array_equal(np.array([p.data for p in params]), torch_params_flat(lambda t: t.detach()))

    opt = ag.optim.SGD(params, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tnet.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(ArrayDataset(X_train, y_train), batch_size=32, shuffle=True, seed=0)

    # Per-parameter gradients are sums over 32 samples of products that may cancel, and
    # torch sums in another order (BLAS), so near-zero gradients get an absolute floor:
    # 1e-12, about 1e-10 of a typical gradient (0.01-0.1). Measured over the epoch: at
    # most 4.4e-16 absolute difference in any gradient or parameter, so the floor has a
    # margin of 2000 (and the largest relative difference was 2.6e-11).
    GRAD_ABS = 1e-12
    steps = 0
    t0 = time.perf_counter()
    for xb, yb in loader:
        loss = AF.cross_entropy([model(x) for x in xb], yb)
        opt.zero_grad()
        loss.backward()

        tloss = torch.nn.functional.cross_entropy(tnet(torch.tensor(xb, dtype=F64)), torch.tensor(yb))
        topt.zero_grad()
        tloss.backward()

        assert loss.data == pytest.approx(tloss.item(), rel=REL), f"step {steps}: loss"
        got = np.array([p.grad for p in params])
        want = torch_params_flat(lambda t: t.grad)
        bad = ~np.isclose(got, want, rtol=REL, atol=GRAD_ABS)
        assert not bad.any(), (
            f"step {steps}: {bad.sum()} gradients differ, first at parameter {np.argmax(bad)}: "
            f"{got[bad][0]!r} vs torch {want[bad][0]!r}"
        )

        opt.step()
        topt.step()
        got = np.array([p.data for p in params])
        want = torch_params_flat(lambda t: t.detach())
        bad = ~np.isclose(got, want, rtol=REL, atol=GRAD_ABS)
        assert not bad.any(), (
            f"after step {steps}: {bad.sum()} parameters differ, first {got[bad][0]!r} vs torch {want[bad][0]!r}"
        )
        steps += 1
    assert steps == len(loader) == 45  # the full epoch: 1437 training samples, batches of 32
    print(f"digits epoch: {steps} steps in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
