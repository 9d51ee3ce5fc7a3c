"""One table of independent references for every op of the engine: ``REFERENCE``.

Keyed by the op's name in ``arenagrad._core.ops()``, each entry says

* ``call``: how to apply the op in the engine (``engine_op(name)`` reads it; for a
  unary op with a Value method it is derived from the name: ``getattr(v, name)(*params)``);
* ``f``: the op on plain floats (``math``, Python's float rules), ``f(*operands, *params)``;
  one float, or a list of floats for the multi-output ops;
* ``torch``: the op in PyTorch, ``torch(torch_module, *tensors, *params)``, used in float64
  and only where torch is importable (this module never imports it);
* ``points``: a hypothesis strategy drawing a tuple of operands where the op is smooth
  (away from kinks and domain edges), so that central finite differences of ``f`` are a
  valid reference for the gradient;
* ``edges``: the kinks and domain edges, each with its value and derivative written down
  by hand from the math (and the convention PyTorch shares), since finite differences
  mean nothing there;
* ``params``: values of the op's optional parameter to test besides its default.

Adding an op is one line, e.g. a copy of ``sin``::

    "sinb": unary(math.sin, "sin", reals),

``tests/test_engine_ops.py`` checks every op of ``_core.ops()`` against this table
(``test_every_op_has_a_reference`` fails, naming the op, when an entry is missing).
Nothing here calls the engine to produce an expected value.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Optional

import arenagrad as ag
from conftest import TORCH_REL
from hypothesis import strategies as st

# ----------------------------------------------------------------- points

reals = st.floats(-3, 3)
away_from_zero = st.floats(-3, 3).filter(lambda x: abs(x) > 1e-3)  # abs, relu: off the kink
positive = st.floats(0.05, 5)  # log, sqrt: well inside the domain
wide = st.floats(-8, 8)  # sigmoid, softplus: into the tails
denominators = st.floats(-3, 3).filter(lambda b: abs(b) > 0.1)
pow_bases = st.floats(0.1, 3)  # a negative base has no real fractional power
real_lists = st.lists(reals, min_size=1, max_size=5).map(tuple)
# dot's operands: xs then ys, of equal length
pairs_of_lists = st.integers(1, 4).flatmap(lambda n: st.lists(reals, min_size=2 * n, max_size=2 * n)).map(tuple)

# ----------------------------------------------------------------- plain floats


def relu(x):
    return x if x > 0 or x != x else 0.0  # NaN passes through


def leaky_relu(x, slope=0.01):  # 0.01: torch's default slope
    return x if x > 0 else slope * x


def sigmoid(x):
    """1 / (1 + e^-x) without overflow at either end."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def softplus(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow."""
    return (x if x > 0 else 0.0) + math.log1p(math.exp(-abs(x)))


def py_pow(a, b):
    """Python's float ``**`` (ZeroDivisionError for 0.0 ** negative, OverflowError), except
    that a negative base to a fractional power raises ValueError, as ``math.pow`` does,
    where ``**`` would go complex."""
    if a < 0 and math.isfinite(b) and not b.is_integer():
        return math.pow(a, b)
    return a**b


def logsumexp(*xs):
    m = max(xs)
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


def softmax(*xs):
    L = logsumexp(*xs)
    return [math.exp(x - L) for x in xs]


def log_softmax(*xs):
    L = logsumexp(*xs)
    return [x - L for x in xs]


def dot(*xys):
    n = len(xys) // 2
    return math.fsum(x * y for x, y in zip(xys[:n], xys[n:]))


# ----------------------------------------------------------------- the table


@dataclass(frozen=True)
class Edge:
    """A kink or domain edge: operands (all Values), the op's value there and its
    derivative by each operand (one row per output for multi-output ops), by hand."""

    args: tuple
    value: Any
    grad: Any
    params: tuple = ()


def at(*args, value, grad, params=()):
    return Edge(tuple(args), value, grad, tuple(params))


@dataclass(frozen=True)
class Ref:
    arity: str  # as in _core.ops(): 'unary', 'binary', 'nary'
    f: Callable
    torch: Callable
    points: st.SearchStrategy
    edges: tuple = ()
    params: tuple = ()
    call: Optional[Callable] = None  # None: the Value method of the op's name
    multi: bool = False  # one output per operand (softmax, log_softmax)
    torch_rel: float = TORCH_REL


def unary(f, torch, points, edges=(), params=(), call=None, torch_rel=TORCH_REL):
    """A unary op; ``torch`` is the name of a function in ``torch`` or a callable."""
    tf = (lambda T, t, *p: getattr(T, torch)(t, *p)) if isinstance(torch, str) else torch
    return Ref("unary", f, tf, points.map(lambda x: (x,)), tuple(edges), tuple(params), call, torch_rel=torch_rel)


def binary(op, f=None, points=(reals, reals), edges=()):
    """An arithmetic operator: the same Python operator in the engine, on floats and on tensors."""
    return Ref("binary", f or op, lambda T, a, b: op(a, b), st.tuples(*points), tuple(edges), call=op)


def nary(call, f, torch, points, edges=(), arity="nary", multi=False, torch_rel=TORCH_REL):
    return Ref(arity, f, torch, points, tuple(edges), call=call, multi=multi, torch_rel=torch_rel)


nan, inf = math.nan, math.inf
# Exactly representable points near 0: sqrt(2^-1000) = 2^-500, log(2^-1000) = -1000 ln 2.
TINY = 2.0**-1000

REFERENCE: dict[str, Ref] = {
    "neg": unary(operator.neg, "neg", reals, call=operator.neg),
    "abs": unary(abs, "abs", away_from_zero, edges=[at(0.0, value=0.0, grad=0.0), at(-0.0, value=0.0, grad=0.0)]),
    # NaN passes through with its gradient, as in torch
    "relu": unary(
        relu,
        "relu",
        away_from_zero,
        edges=[at(0.0, value=0.0, grad=0.0), at(-0.0, value=0.0, grad=0.0), at(nan, value=nan, grad=1.0)],
    ),
    "leaky_relu": unary(
        leaky_relu,
        lambda T, t, *slope: T.nn.functional.leaky_relu(t, *slope),
        away_from_zero,
        params=[0.2],
        # at 0 the slope applies (x > 0 is false), as in torch
        edges=[
            at(0.0, value=0.0, grad=0.01),
            at(-0.0, value=0.0, grad=0.01),
            at(0.0, value=0.0, grad=0.2, params=[0.2]),
        ],
    ),
    "tanh": unary(math.tanh, "tanh", reals),
    # At +-800 the derivative underflows to 0 for any formula y(1-y)k; at -600 it is
    # e^-600 (1 + e^-600 rounds to 1), far above the comparison's absolute floor, so a
    # wrong factor shows. The +-800 edges check that nothing overflows into inf or nan.
    "sigmoid": unary(
        sigmoid,
        "sigmoid",
        wide,
        edges=[
            at(-600.0, value=math.exp(-600.0), grad=math.exp(-600.0)),
            at(800.0, value=1.0, grad=0.0),
            at(-800.0, value=0.0, grad=0.0),
        ],
    ),
    "exp": unary(math.exp, "exp", st.floats(-5, 5)),
    "log": unary(math.log, "log", positive, edges=[at(TINY, value=-1000 * math.log(2), grad=2.0**1000)]),
    "sqrt": unary(
        math.sqrt, "sqrt", positive, edges=[at(TINY, value=2.0**-500, grad=2.0**499), at(0.0, value=0.0, grad=inf)]
    ),
    # The engine's derivative is sigmoid(x); torch forms z/(z+1) with z = e^x: a few ulps apart.
    # torch's default threshold=20 returns x itself above 20, i.e. a derivative of exactly 1
    # where the true one is 1 - 2e-9; above 40 the linear branch is exact in float64.
    "softplus": unary(
        softplus,
        lambda T, t: T.nn.functional.softplus(t, beta=1.0, threshold=40.0),
        wide,
        edges=[at(800.0, value=800.0, grad=1.0), at(-800.0, value=0.0, grad=0.0)],
        torch_rel=1e-13,
    ),
    # sin'(x) = cos(x), cos'(x) = -sin(x): at pi/2 the signs are plain to see
    "sin": unary(math.sin, "sin", reals, edges=[at(math.pi / 2, value=1.0, grad=math.cos(math.pi / 2))]),
    "cos": unary(math.cos, "cos", reals, edges=[at(math.pi / 2, value=math.cos(math.pi / 2), grad=-1.0)]),
    "+": binary(operator.add),
    "-": binary(operator.sub),
    "*": binary(operator.mul),
    "/": binary(operator.truediv, points=(reals, denominators)),
    # d/da a^b = b a^(b-1) (0 where b == 0); d/db a^b = a^b ln a: NaN for a < 0, and 0 at
    # a == 0 (torch's limit) where a^b is defined.
    "**": binary(
        operator.pow,
        f=py_pow,
        points=(pow_bases, reals),
        edges=[
            at(-2.0, 3.0, value=-8.0, grad=(12.0, nan)),
            at(-2.0, -1.0, value=-0.5, grad=(-0.25, nan)),
            at(-1.5, 2.0, value=2.25, grad=(-3.0, nan)),
            at(-2.0, 0.0, value=1.0, grad=(0.0, nan)),
            at(0.0, 0.0, value=1.0, grad=(0.0, 0.0)),
            at(0.0, 0.5, value=0.0, grad=(inf, 0.0)),
            at(0.0, 1.0, value=0.0, grad=(1.0, 0.0)),
            at(0.0, 2.0, value=0.0, grad=(0.0, 0.0)),
            at(0.0, 3.0, value=0.0, grad=(0.0, 0.0)),
        ],
    ),
    # The per-output nodes of ag.softmax / ag.log_softmax (their operands: x_i and the
    # shared logsumexp), reached through those functions. Large equal inputs: no overflow,
    # s = (1/2, 1/2); d s_k/d x_i = s_k (delta_ki - s_i), d log s_k / d x_i = delta_ki - s_i.
    "softmax": nary(
        lambda *v: ag.softmax(v),
        softmax,
        lambda T, *t: T.softmax(T.stack(t), 0),
        real_lists,
        edges=[at(1000.0, 1000.0, value=[0.5, 0.5], grad=[[0.25, -0.25], [-0.25, 0.25]])],
        arity="binary",
        multi=True,
    ),
    "log_softmax": nary(
        lambda *v: ag.log_softmax(v),
        log_softmax,
        lambda T, *t: T.log_softmax(T.stack(t), 0),
        real_lists,
        edges=[at(1000.0, 1000.0, value=[-math.log(2)] * 2, grad=[[0.5, -0.5], [-0.5, 0.5]])],
        arity="binary",
        multi=True,
    ),
    "sum": nary(lambda *v: ag.sum(v), lambda *x: math.fsum(x), lambda T, *t: T.stack(t).sum(), real_lists),
    "mean": nary(lambda *v: ag.mean(v), lambda *x: math.fsum(x) / len(x), lambda T, *t: T.stack(t).mean(), real_lists),
    # operands: xs then ys (the first half, the second half)
    "dot": nary(
        lambda *v: ag.dot(v[: len(v) // 2], v[len(v) // 2 :]),
        dot,
        lambda T, *t: T.dot(T.stack(t[: len(t) // 2]), T.stack(t[len(t) // 2 :])),
        pairs_of_lists,
    ),
    "logsumexp": nary(
        lambda *v: ag.logsumexp(v),
        logsumexp,
        lambda T, *t: T.logsumexp(T.stack(t), 0),
        real_lists,
        edges=[at(1000.0, 1000.0, value=1000 + math.log(2), grad=(0.5, 0.5))],
    ),
}


def engine_op(name: str) -> Callable:
    """The engine's spelling of op ``name``: a function of its operands (Values or
    numbers), then its parameters."""
    ref = REFERENCE[name]
    if ref.call is not None:
        return ref.call
    return lambda v, *params: getattr(v, name)(*params)
