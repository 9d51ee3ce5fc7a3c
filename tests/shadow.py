"""The fuzz machine's own reverse sweep (tests/test_trust_fuzz.py).

The machine keeps a record of every node (op, inputs, parameters, data and
requires_grad). After a backward it asks this module what every gradient
should be, and compares the engine's with that. Nothing here calls the engine.

Derivatives are written from the math (the textbook derivative of each op, at
the documented kinks: abs'(0) = relu'(0) = 0 and leaky_relu'(0) = slope), in
IEEE arithmetic (numpy float64, so that 1/0 is inf and log(-1) is nan rather
than a Python exception). Where a derivative is a function of the op's output
(exp' = exp, tanh' = 1 - tanh^2, ...) it reads the node's data, which the
machine checked against ``op_reference`` when the node was made.

Two float evaluations of the same sweep (the engine's and this one) add and
multiply in different orders and may write a derivative differently
(``(1 - y)(1 + y)`` or ``1 - y*y``), so a gradient comes with a bound on how far
they may legitimately be apart: a first-order running error analysis, carried
through the sweep with the value:

* each local derivative ``d`` comes with ``delta``, how far an accurate
  evaluation of it may be from ours: a few ulps of ``|d|`` for a product or a
  quotient, a few ulps *absolute* where the formula subtracts from 1
  (``1 - y^2``, ``y (1 - y)``: the absolute error stays while ``d`` goes to 0),
  and the exponent's condition number ``|z|`` for ``exp(z)`` (logsumexp's
  derivative ``exp(x - L)``);
* a contribution ``g * d``, ``g`` known to within ``b``, is known to within
  ``b (|d| + delta) + |g| delta``, plus an ulp of the product per evaluation
  and ``TINY`` where it underflows;
* a sum of ``n`` terms may round differently in each order: ``2 n eps``
  times the sum of the terms' magnitudes.

A wrong derivative (a sign, a factor, a missing seed) is off by the size of the
gradient, not by a few ulps of the terms that made it, so a bound that is this
tight still catches it; ``near`` in the machine compares within it. Over 1,000
fuzz runs (2,500 sweeps, 6,000 gradients, 49,000 comparisons counting the
invariant's re-checks) the largest difference was 0.12 of the bound, 99% of
the comparisons agreed bit for bit, and 3% of the gradients were unknown.

Where the result does not follow from the math it is *unknown* (``None``) and
not compared: a step function (abs, relu, leaky_relu) at NaN, a node whose data
is not its op applied to its inputs' current data (``stale``, after ``.data``
was assigned) if its derivative can be read from its output as well as from its
inputs (which one the engine reads is not documented; ``DATA_FREE`` ops read
only their inputs, as anything must), a sum whose terms could overflow in some order (beyond
``LIMIT``), and an infinite factor times a finite one whose sign (or zero)
the rounding bound leaves open. A NaN or infinity that follows from exact
values is compared exactly: ``0 * inf`` is nan, ``inf + -inf`` is nan.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
from op_reference import REFERENCE

EPS = 2.0**-52
TINY = 2.0**-1060  # well above 2**-1075, the absolute rounding of a product that underflows
LIMIT = 1e307  # below float64's max by enough that no order of adding the terms can overflow
# the slope when none is passed: the reference's default (torch's)
LEAKY_DEFAULT = inspect.signature(REFERENCE["leaky_relu"].f).parameters["slope"].default

# Ops whose derivative reads only their inputs' data, and can be written no
# other way: a stale node of these still has a well-defined gradient.
DATA_FREE = {"neg", "+", "-", "*", "sum", "mean", "dot", "log_softmax"}

_sigmoid = REFERENCE["sigmoid"].f


def ieee(fn, *args):
    with np.errstate(all="ignore"):
        return float(fn(*[np.float64(a) for a in args]))


def div(a, b):
    return ieee(np.divide, a, b)


def power(a, b):
    return ieee(np.power, a, b)


def log(a):
    return ieee(np.log, a)


def exp(a):
    return ieee(np.exp, a)


def step(x, below, at_zero):
    """A step function's derivative: 1 above 0, ``below`` under it, ``at_zero``
    at the kink (documented); undefined (None) at NaN."""
    if x != x:
        return None
    return 1.0 if x > 0 else (below if x < 0 else at_zero)


def unary_derivative(name, x, y, p):
    """(d, delta) of ``y = name(x)`` (parameter p) with respect to x."""
    if name == "neg":
        return -1.0, 0.0
    if name == "abs":
        return step(x, -1.0, 0.0), 0.0
    if name == "relu":
        return step(x, 0.0, 0.0), 0.0
    if name == "leaky_relu":
        return step(x, p, p), 0.0  # at 0, x > 0 is false: the slope applies
    if name == "tanh":
        d = 1.0 - y * y
        return d, 4 * EPS * (1.0 + abs(d))
    if name == "sigmoid":
        d = y * (1.0 - y)
        return d, 4 * EPS * (abs(y) + abs(d))
    if name == "exp":
        return y, 2 * EPS * abs(y)
    if name == "log":
        d = div(1.0, x)
        return d, 2 * EPS * abs(d)
    if name == "sqrt":
        d = div(0.5, y)  # 1 / (2 sqrt x): inf at 0, as documented
        return d, 2 * EPS * abs(d)
    if name == "softplus":
        d = _sigmoid(x)  # d/dx log(1 + e^x) = e^x / (1 + e^x)
        return d, 4 * EPS * abs(d)
    if name == "sin":
        d = ieee(np.cos, x)
        return d, 2 * EPS * abs(d)
    if name == "cos":
        d = -ieee(np.sin, x)
        return d, 2 * EPS * abs(d)
    raise AssertionError(f"no derivative for {name}")  # pragma: no cover


def binary_derivative(op, a, b, y):
    """((da, delta_a), (db, delta_b)) of ``y = a op b``."""
    if op == "+":
        return (1.0, 0.0), (1.0, 0.0)
    if op == "-":
        return (1.0, 0.0), (-1.0, 0.0)
    if op == "*":
        return (b, 0.0), (a, 0.0)
    if op == "/":
        da = div(1.0, b)
        db = -div(y, b)  # -a / b^2
        return (da, 2 * EPS * abs(da)), (db, 4 * EPS * abs(db))
    if op == "**":
        # d/da a^b = b a^(b-1), 0 where b == 0; d/db a^b = a^b ln a, 0 at a == 0
        # for b >= 0 (the limit; torch's convention) and NaN for a < 0.
        da = 0.0 if b == 0 else b * power(a, b - 1.0)
        db = 0.0 if (a == 0 and b >= 0) else y * log(a)
        return (da, 8 * EPS * abs(da)), (db, 8 * EPS * abs(db))
    raise AssertionError(f"no derivative for {op}")  # pragma: no cover


def exp_shift(x, L):
    """exp(x - L) and its bound. The shift may be formed otherwise (from the
    max, say), off by an ulp of |x| + |L|; the bound is what exp makes of
    that much change in its argument (which is how far past the underflow
    threshold a zero may be, too)."""
    z = x - L
    d = exp(z)
    if not (math.isfinite(z) and math.isfinite(d)):
        return d, 0.0
    dz = 4 * EPS * (1.0 + abs(z)) + 4 * EPS * abs(L)  # in two terms: no overflow near the top
    return d, exp(z + dz) - d


def derivatives(rec, val, is_node):
    """[(input record, d, delta)] for every Value operand of rec, one entry per
    occurrence (``x * x`` has two); d is None where undefined.

    ``val(x)`` is the data of a record or the float of a number operand.
    """
    kind = rec.spec[0]
    y = val(rec)
    if kind == "unary":
        _, name, slope = rec.spec
        x = rec.children[0]
        p = LEAKY_DEFAULT if slope is None else val(slope)
        d, delta = unary_derivative(name, val(x), y, p)
        return [(x, d, delta)]
    if kind == "binary":
        _, op, a, b = rec.spec
        (da, ea), (db, eb) = binary_derivative(op, val(a), val(b), y)
        out = []
        if is_node(a):
            out.append((a, da, ea))
        if is_node(b):
            out.append((b, db, eb))
        return out
    if kind == "nary" or kind == "softmax_L":
        fn, items = rec.spec[1], rec.spec[2]
        if kind == "softmax_L" or fn == "logsumexp":
            # d/dx_j log sum_i e^x_i = e^(x_j - L)
            return [(x, *exp_shift(val(x), y)) for x in items if is_node(x)]
        if fn == "sum":
            return [(x, 1.0, 0.0) for x in items if is_node(x)]
        if fn == "mean":
            d = 1.0 / len(items)
            return [(x, d, 2 * EPS * d) for x in items if is_node(x)]
        raise AssertionError(fn)  # pragma: no cover
    if kind == "dot":
        _, xs, ys = rec.spec
        out = []
        for x, z in zip(xs, ys):
            if is_node(x):
                out.append((x, val(z), 0.0))
            if is_node(z):
                out.append((z, val(x), 0.0))
        return out
    if kind == "softmax_out":
        L, i = rec.spec[1], rec.spec[2]
        fn, items = L.spec[1], L.spec[2]
        item = items[i]
        # softmax_i = e^(x_i - L): d/dx_i = y, d/dL = -y; log_softmax_i = x_i - L: 1 and -1.
        d = y if fn == "softmax" else 1.0
        out = [(item, d, 2 * EPS * abs(d))] if is_node(item) else []
        return out + [(L, -d, 2 * EPS * abs(d))]
    raise AssertionError(kind)  # pragma: no cover


class Acc:
    """The gradient flowing into one node: the finite terms (their sum,
    magnitude, error bound and count), the NaN/infinite ones (their IEEE sum,
    which does not depend on the order), or unknown."""

    __slots__ = ("sum", "mag", "bound", "n", "special", "unknown")

    def __init__(self):
        self.sum = self.mag = self.bound = 0.0
        self.n = 0
        self.special = None
        self.unknown = False

    def add_exact(self, c):
        if math.isfinite(c):
            self.sum += c
            self.mag += abs(c)
            self.n += 1
        else:
            self.special = c if self.special is None else self.special + c

    def add_product(self, g, b, d, delta):
        """g * d, g known to within b and d to within delta."""
        if g is None or d is None:
            self.unknown = True
            return
        if math.isfinite(g) and math.isfinite(d):
            reach = (abs(g) + b) * (abs(d) + delta)
            if not reach <= LIMIT:  # or NaN
                self.unknown = True
                return
            c = g * d
            self.sum += c
            self.mag += abs(c)
            self.bound += b * (abs(d) + delta) + abs(g) * delta + 2 * EPS * abs(c) + TINY
            self.n += 1
            return
        # A NaN or an infinity: the product is NaN or infinite, set by the
        # signs, unless rounding leaves the finite factor's sign (or zero) open.
        if g != g or d != d or (math.isinf(g) and math.isinf(d)):
            c = g * d
        elif math.isinf(g):
            if delta == 0 or abs(d) > delta:
                c = g * d
            else:
                self.unknown = True
                return
        else:
            if b == 0 or abs(g) > b:
                c = g * d
            else:
                self.unknown = True
                return
        self.special = c if self.special is None else self.special + c

    def total(self, old=0.0, old_bound=0.0):
        """(value, bound) of old plus the terms, or None if unknown."""
        if self.unknown or old is None:
            return None
        special = self.special
        if not math.isfinite(old):
            special = old if special is None else special + old
        if special is not None:
            return special, 0.0  # the finite terms (below LIMIT) cannot change it
        mag = abs(old) + self.mag
        bound = old_bound + self.bound + 2 * EPS * self.n * mag
        if not mag + bound <= LIMIT:  # or NaN
            return None
        return old + self.sum, bound


def sweep(seeds, val, is_node, stale):
    """The reverse sweep from ``seeds`` [(record, seed)] over the records.

    As the engine documents (PyTorch's rules): the ops traversed are those that
    require grad (as built), reached from the seeded records through inputs
    that require grad; each traversed op's gradient starts from zero (a seeded
    one from its seeds); a leaf receives only if it requires grad (now).
    Iterative: consumers first, by counting each op's consumers in the sweep.

    Returns ``ops``, {id: (record, (grad, bound) or None)} for every traversed
    op, and ``leaves``, {id: (record, Acc)} for every leaf that receives.
    """
    acc, ops, leaves = {}, {}, {}
    # which ops are traversed, and how many traversed consumers each has
    consumers = {}
    stack = [r for r, _ in seeds if not r.is_leaf and r.rg]
    for r in stack:
        consumers.setdefault(id(r), 0)
    seen = set()
    while stack:
        r = stack.pop()
        if id(r) in seen:
            continue
        seen.add(id(r))
        for c in r.children:
            if not c.is_leaf and c.rg:
                consumers[id(c)] = consumers.get(id(c), 0) + 1
                stack.append(c)

    def into(r):
        if not r.rg:
            return None
        if r.is_leaf:
            if id(r) not in leaves:
                leaves[id(r)] = (r, Acc())
            return leaves[id(r)][1]
        if id(r) not in acc:
            acc[id(r)] = Acc()
        return acc[id(r)]

    # ag.softmax's hidden node takes its outputs' gradients straight from them
    # (one fused step), so its .grad holds only what its other consumers and
    # seeds give it; the sweep still carries the outputs' terms through it.
    def fused(r):
        return r.spec and r.spec[0] == "softmax_L" and r.spec[1] == "softmax"

    def fused_output(r):
        return r.spec and r.spec[0] == "softmax_out" and fused(r.spec[1])

    own = {}  # id of such a node: an Acc of its .grad

    for r, s in seeds:
        if r.rg:
            into(r).add_exact(s)
            if fused(r):
                own.setdefault(id(r), Acc()).add_exact(s)

    ready = [r for r, _ in seeds if not r.is_leaf and r.rg and consumers[id(r)] == 0]
    done = set()
    while ready:
        r = ready.pop()
        if id(r) in done:  # seeded twice: listed twice in ready
            continue
        done.add(id(r))
        got = acc[id(r)].total()
        ops[id(r)] = (r, own.get(id(r), Acc()).total() if fused(r) else got)
        g, b = got if got is not None else (None, 0.0)
        terms = derivatives(r, val, is_node)
        if r.op not in DATA_FREE and stale(r):
            g = None
        for c, d, delta in terms:
            target = into(c)
            if target is not None:
                target.add_product(g, b, d, delta)
                if fused(c) and not fused_output(r):
                    own.setdefault(id(c), Acc()).add_product(g, b, d, delta)
            if not c.is_leaf and c.rg:
                consumers[id(c)] -= 1
                if consumers[id(c)] == 0:
                    ready.append(c)
    return ops, leaves
