"""Fuzzing the public API with hypothesis' stateful testing (issue 6).

A ``RuleBasedStateMachine`` drives the engine with random sequences of what a
user can do: make leaves (0, negatives, huge, subnormal, nan, inf, ints,
bools, numpy scalars, ints too large for a float, numbers whose conversion
runs Python code that empties the list being read), apply every unary, binary
(Value op Value, Value op number, number op Value) and n-ary op including the
ones that raise (over lists, tuples, generators and iterables that raise part
way, whose exception must pass through unchanged), run softmax/log_softmax,
drop Python references, call backward, zero and set grads, set data, work under ``no_grad``, compile
random Values (with ``watch``) and replay them (forward, backward,
set_data), drop compiled graphs and read ``.inputs``/``_prev``/``.op``.

Every Value the machine holds has a *record*: a pure-Python shadow of its
data (computed with ``math`` and Python floats, following the documented
semantics: Python float rules for ``/`` and ``**``, ``math``'s errors for
``log``/``sqrt``/``exp``/``sin``/``cos``), its grad, its requires_grad flag,
its op name, its inputs and its parameters. Records outlive the Values they
shadow, so the machine knows the whole graph the engine should hold.

Gradients are the shadow's own: after every backward, ``shadow.sweep`` runs
a reverse sweep in Python over the records (derivatives written from the math,
each with a rounding bound; see shadow.py), and every grad it says the
backward wrote, of ops (this call's) and leaves (added to what they had), held
or reached through ``.inputs``, must agree with it within that bound. Grads
are never read back from the engine into the shadow. After every rule:

* ``_core._check_invariants()`` passes (reference counts, wrappers, inputs,
  free list, requires_grad propagation);
* ``live_nodes`` is exactly the number of nodes reachable from the held
  Values and the live compiled graphs (one per record, plus the constant
  leaves that mean/logsumexp/softmax/dot make for numbers): no leak, no early
  free; ``wrapped`` is the number of held Values;
* every held Value's data, grad (where the shadow knows it), requires_grad
  and is_leaf agree with its record.

A failing op must raise the type the shadow predicts and leave live_nodes as
it was. Compiled replay is checked against an eager rebuild of the same graph
from the leaves' current data, bit for bit, as documented: forward() gives the
eager values (or the same kind of error), and a one-output backward() adds to
each leaf's .grad the gradient eager backward accumulates into a zeroed one.
Every replayed backward, of one output or several (each with its own seed,
one listed twice seeded twice), adds to each leaf's .grad what the shadow's
sweep from those seeds gives at the rebuild's data. At teardown everything is
dropped and live_nodes returns to where the run started.

The machine runs in a child interpreter: the invariant checker walks the whole
arena, which never shrinks, so after the million-node tests of the engine
suite every check would cost 0.1 s; and a crash found by the fuzzer then
fails this test with its output instead of killing the pytest run.

Budget: ``ARENAGRAD_FUZZ_EXAMPLES`` (default 100) runs of
``ARENAGRAD_FUZZ_STEPS`` (default 50) steps, about 7 s on two cores.
``python tests/test_trust_fuzz.py`` runs the machine in the current process.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import subprocess
import sys
import weakref
from pathlib import Path

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from op_reference import REFERENCE, engine_op
from shadow import sweep

EXPECTED = (ValueError, ZeroDivisionError, OverflowError, TypeError)

# ------------------------------------------------------------------- numbers

INF, NAN = math.inf, math.nan
SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -3.0,
    3.5,
    1e16,
    -1e16,
    1e300,
    -1e300,
    1e308,
    1e-300,
    -1e-310,
    5e-324,
    709.0,
    710.0,
    -746.0,
    INF,
    -INF,
    NAN,
]


class Clearing(np.int64):
    """A number whose conversion runs Python code: it empties the list it was
    passed in (``target``, a weak reference set by ``EngineMachine.container``),
    dropping that list's references to its Values while the engine reads them."""

    def __float__(self):
        target = getattr(self, "target", lambda: None)()
        if target is not None:
            target.clear()
        return float(int(self))


class WeakList(list):
    """A list that ``Clearing`` items can refer to without a reference cycle."""


class Boom(Exception):
    """Raised part way through iterating an op's argument; must pass through."""


class Failing:
    """An iterable that yields ``items[:k]`` and then raises ``Boom``."""

    def __init__(self, items, k):
        self.items, self.k = list(items), k

    def __iter__(self):
        yield from self.items[: self.k]
        raise Boom(f"after {self.k} items")


floats = st.one_of(
    st.sampled_from(SPECIAL),
    st.floats(-5.0, 5.0),
    st.floats(allow_nan=True, allow_infinity=True),
)
# Every kind of number the engine accepts, including one it must reject with
# OverflowError (an int too large for a float).
numbers = st.one_of(
    floats,
    floats,
    st.integers(-3, 3),
    st.sampled_from([True, False, 2**70, 10**400, -(10**400)]),
    floats.map(np.float64),
    st.integers(-3, 3).map(np.int64),
    st.sampled_from([np.float32(0.1), np.float32(-2.5)]),
    st.integers(-3, 3).map(Clearing),
)
# Things that are not numbers: TypeError wherever a number is expected.
bad = st.sampled_from(["x", None, 1j, b"1", (1.0,)])


def as_float(x):
    """The engine's reading of a number operand (same errors as the engine)."""
    if isinstance(x, Clearing):
        return float(int(x))  # without running its side effect
    if isinstance(x, (bool, int, float, np.integer, np.floating)):
        return float(x)  # OverflowError for ints beyond a float
    raise TypeError(f"not a number: {x!r}")


def same(a: float, b: float) -> bool:
    """Bit-level agreement of two floats, except that any NaN equals any NaN."""
    return a == b or (a != a and b != b)


def near(got: float, want: float, tol: float) -> bool:
    """``same``, or finite and within ``tol`` absolutely."""
    if same(got, want):
        return True
    if not (math.isfinite(got) and math.isfinite(want)):
        return False
    return abs(got - want) <= tol


# ------------------------------------------------- shadow semantics (Python)
# The scalar ops' shadows are REFERENCE's plain-float functions (math and Python's
# float rules: NaN passes through relu, sigmoid and softplus do not overflow, ``**``
# raises as Python's float and math.pow do). ``True``: the engine computes the same
# float operations, so the result must agree bit for bit; otherwise to 1e-12.

EXACT = {"neg", "abs", "relu", "leaky_relu", "+", "-", "*", "/"}
PARAM = {op["name"]: op["param"] for op in _core.ops()}  # (name, default) or None
UNARY = {name: (ref.f, name in EXACT) for name, ref in REFERENCE.items() if ref.arity == "unary"}
# softmax and log_softmax are binary nodes too, made by the n-ary rule
BINARY = {name: (ref.f, name in EXACT) for name, ref in REFERENCE.items() if ref.arity == "binary" and not ref.multi}
NARY = ["sum", "mean", "logsumexp", "softmax", "log_softmax"]  # besides dot, which has its own rule


def unary_args(slope):
    """The parameter as passed: none (the op's default), or the drawn one."""
    return () if slope is None else (slope,)


def py_logsumexp(xs):
    """Max-shifted, as documented; NaN anywhere gives NaN."""
    m = -INF
    for x in xs:
        m = x if x > m else m
    if math.isinf(m):
        return NAN if any(x != x for x in xs) else m
    s = 0.0
    for x in xs:
        s += math.exp(x - m)
    return m + math.log(s)


def seq_sum(xs, start=0.0):
    s = start
    for x in xs:
        s += x
    return s


# ---------------------------------------------------------------- records

_ids = itertools.count()
# Orders writes of .data: a node is stale (its data is not its op applied to its
# inputs' current data) when an input was written after it, or it was itself.
_clock = itertools.count()


class Rec:
    """What the machine knows about one engine node.

    ``children`` are the node's Value inputs, in ``.inputs`` order; ``hidden``
    counts the constant leaves the engine made for number operands (nodes,
    but not listed in ``.inputs``); ``spec`` says how to rebuild the node and,
    with its operands and parameter, what its derivatives are (shadow.py).
    """

    def __init__(self, op, data, rg, children=(), spec=("leaf",), hidden=0):
        self.op = op  # '' for a leaf
        self.data = data
        self.grad = 0.0  # the shadow's; None: unknown (see shadow.py)
        self.gtol = 0.0  # how far the engine's grad may be from it (rounding)
        self.stamp = next(_clock)
        self.assigned = False  # .data written (not computed from the inputs)
        self.rg = rg
        self.children = list(children)
        self.spec = spec
        self.hidden = hidden
        self.value = None  # the held Value, if any
        self.id = next(_ids)

    @property
    def is_leaf(self):
        return self.op == ""

    def __repr__(self):
        return f"r{self.id}<{self.op or 'leaf'} {self.data!r}>"


def closure(roots):
    """Every record reachable from roots (through inputs), each once."""
    seen = {}
    stack = list(roots)
    while stack:
        r = stack.pop()
        if id(r) in seen:
            continue
        seen[id(r)] = r
        stack.extend(r.children)
    return list(seen.values())


def bits_equal(a: float, b: float) -> bool:
    """The same float, telling -0.0 from 0.0 (any NaN equals any NaN)."""
    return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (a != a and b != b)


def spec_args(rec):
    """The records that rebuilding rec needs first."""
    kind = rec.spec[0]
    if kind == "leaf":
        return []
    if kind == "unary":
        return rec.children
    if kind == "binary":
        items = rec.spec[2:]
    elif kind in ("nary", "softmax_L"):
        items = rec.spec[2]
    elif kind == "dot":
        items = list(rec.spec[1]) + list(rec.spec[2])
    else:  # softmax_out: its logsumexp's operands
        items = rec.spec[1].spec[2]
    return [x for x in items if isinstance(x, Rec)]


def rebuild(rec, memo):
    """An eager copy of rec's graph from its leaves' current data (grad mode on).

    memo maps id(record) to its copy; iterative, since graphs are as deep as a
    run is long."""
    stack = [rec]
    while stack:
        r = stack[-1]
        if id(r) in memo:
            stack.pop()
            continue
        missing = [x for x in spec_args(r) if id(x) not in memo]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        rebuild_one(r, memo)
    return memo[id(rec)]


def rebuild_one(rec, memo):
    """rec's copy, its operands' copies being in memo."""
    kind = rec.spec[0]

    def arg(x):
        return memo[id(x)] if isinstance(x, Rec) else x

    if kind == "leaf":
        v = ag.Value(rec.data, requires_grad=rec.rg)
    elif kind == "unary":
        _, name, slope = rec.spec
        v = engine_op(name)(arg(rec.children[0]), *unary_args(slope))
    elif kind == "binary":
        _, op, a, b = rec.spec
        v = engine_op(op)(arg(a), arg(b))
    elif kind == "nary":
        _, fn, items = rec.spec
        v = getattr(ag, fn)([arg(x) for x in items])
    elif kind == "dot":
        _, xs, ys = rec.spec
        v = ag.dot([arg(x) for x in xs], [arg(y) for y in ys])
    elif kind in ("softmax_L", "softmax_out"):
        L = rec if kind == "softmax_L" else rec.spec[1]
        _, fn, items, outs = L.spec
        got = getattr(ag, fn)([arg(x) for x in items])
        memo[id(L)] = got[0].inputs[-1]  # the hidden logsumexp node
        for o, g in zip(outs, got):
            memo[id(o)] = g
        return
    else:  # pragma: no cover
        raise AssertionError(kind)
    memo[id(rec)] = v


def is_rec(x):
    return isinstance(x, Rec)


def stale(rec):
    """rec's data may not be its op applied to its inputs' current data."""
    return rec.assigned or any(c.stamp > rec.stamp for c in rec.children)


def live():
    return ag.engine_stats()["live_nodes"]


class Graph:
    """A live compiled graph: its outputs and watched Values, as records."""

    def __init__(self, cg, outs, single, watch):
        self.cg, self.outs, self.single, self.watch = cg, outs, single, watch

    def __repr__(self):
        return f"Graph(outs={self.outs}, single={self.single}, watch={self.watch})"


# ---------------------------------------------------------------- machine


class EngineMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        ag.set_grad_enabled(True)
        self.grad_mode = True
        self.held = []  # records whose Value the machine holds
        self.graphs = []
        info = _core._check_invariants()
        self.base_live = info["live_nodes"]
        self.base_wrapped = info["wrapped"]

    # -- helpers

    def hold(self, rec, value):
        assert value.requires_grad == rec.rg, (rec, value)
        rec.value = value
        self.held.append(rec)
        return rec

    def result(self, op, data, children, spec, hidden=0):
        """The record of a new op result, as a leaf when recording is off."""
        if not ag.is_grad_enabled():
            return Rec("", data, False, spec=("leaf",))
        rg = any(c.rg for c in children)
        return Rec(op, data, rg, children, spec, hidden)

    def pick(self, data, pool=None):
        return data.draw(st.sampled_from(pool if pool is not None else self.held))

    def pick_input(self, data):
        """A held record for an op's operand; mostly one that requires grad,
        else most graphs would record nothing for the shadow's sweep to check
        (no_grad, detach, leaves without grad and ops on numbers all make
        records that do not)."""
        recording = [r for r in self.held if r.rg]
        if recording and data.draw(st.integers(0, 3)):
            return self.pick(data, recording)
        return self.pick(data)

    def operand(self, data):
        """A held record, a number, or (rarely) something that is not a number."""
        kind = data.draw(st.sampled_from(["value"] * 4 + ["number"] * 3 + ["bad"]))
        if kind == "value" and self.held:
            return self.pick_input(data)
        if kind == "bad":
            return data.draw(bad)
        return data.draw(numbers)

    @staticmethod
    def shadow_of(x):
        return x.data if isinstance(x, Rec) else as_float(x)

    @staticmethod
    def engine_arg(x):
        return x.value if isinstance(x, Rec) else x

    def grad_context(self, data):
        """Run one op as recorded, or inside ``with ag.no_grad()``."""
        return ag.no_grad() if data.draw(st.integers(0, 4)) == 0 else contextlib.nullcontext()

    def apply_scalar_op(self, data, op, shadow, call, exact, children, spec, what):
        """Run one unary or binary op against its shadow: the same failure
        (and no node left behind) or the same value, then hold the result."""
        with self.grad_context(data):
            before = live()
            try:
                want = shadow()
            except EXPECTED as e:
                self.expect_failure(type(e), call, before)
                return
            out = call()
            got = out.data
            tol = 0.0 if exact else 1e-12 * abs(want)
            assert near(got, want, tol), f"{what} = {got!r}, want {want!r}"
            self.maybe_backward(data, self.hold(self.result(op, got, children, spec), out))

    def expect_failure(self, exc_type, fn, before):
        with pytest.raises(exc_type):
            fn()
        assert live() == before, "a failed op changed the number of live nodes"

    def graph_alive(self):
        roots = list(self.held)
        for g in self.graphs:
            roots += g.outs + g.watch
        return closure(roots)

    # -- invariants (checked after every rule)

    @invariant()
    def engine_is_consistent(self):
        info = _core._check_invariants()
        assert ag.is_grad_enabled() == self.grad_mode
        alive = self.graph_alive()
        want = sum(1 + r.hidden for r in alive)
        assert info["live_nodes"] - self.base_live == want, (
            f"live_nodes {info['live_nodes'] - self.base_live} but {want} nodes are reachable"
        )
        assert info["wrapped"] - self.base_wrapped == len(self.held)
        for r in self.held:
            v = r.value
            assert same(v.data, r.data), f"{r}: data {v.data!r}, shadow {r.data!r}"
            if r.grad is not None:
                assert near(v.grad, r.grad, r.gtol), f"{r}: grad {v.grad!r}, shadow {r.grad!r} (within {r.gtol!r})"
            assert v.requires_grad == r.rg, r
            assert v.is_leaf == r.is_leaf, r

    # -- leaves

    @rule(x=st.one_of(numbers, numbers, numbers, numbers, numbers, bad), rg=st.sampled_from([True, False, None]))
    def new_leaf(self, x, rg):
        before = live()
        try:
            want = as_float(x)
        except (TypeError, OverflowError) as e:
            kind = type(e)
            self.expect_failure(kind, lambda: ag.Value(x) if rg is None else ag.Value(x, requires_grad=rg), before)
            return
        v = ag.Value(x) if rg is None else ag.Value(x, requires_grad=rg)
        self.hold(Rec("", want, rg is not False), v)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def detach(self, data):
        r = self.pick(data)
        self.hold(Rec("", r.data, False), r.value.detach())

    # -- ops

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def unary(self, data):
        r = self.pick_input(data)
        name = data.draw(st.sampled_from(sorted(UNARY) + ["pos"]))
        v = r.value
        if name == "pos":
            assert (+v) is v
            return
        slope = None
        if PARAM[name] is not None:  # leaky_relu's slope: the default, a number or not a number
            slope = data.draw(st.one_of(st.none(), numbers, bad))
        if name == "abs" and data.draw(st.booleans()):
            call = lambda: abs(v)  # noqa: E731
        else:
            call = lambda: engine_op(name)(v, *unary_args(slope))  # noqa: E731
        fn, exact = UNARY[name]
        self.apply_scalar_op(
            data,
            name,
            lambda: fn(r.data, *map(as_float, unary_args(slope))),
            call,
            exact,
            [r],
            ("unary", name, slope),
            f"{name}({r.data!r})",
        )

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def binary(self, data):
        op = data.draw(st.sampled_from(sorted(BINARY)))
        form = data.draw(st.sampled_from(["vv", "vn", "nv"]))
        a = self.pick_input(data)
        if form == "vv":
            b = self.pick_input(data)
        else:
            b = data.draw(st.one_of(numbers, numbers, numbers, bad))
            if form == "nv":
                a, b = b, a
        ea, eb = self.engine_arg(a), self.engine_arg(b)
        call = lambda: engine_op(op)(ea, eb)  # noqa: E731
        fn, exact = BINARY[op]
        self.apply_scalar_op(
            data,
            op,
            lambda: fn(self.shadow_of(a), self.shadow_of(b)),
            call,
            exact,
            [x for x in (a, b) if isinstance(x, Rec)],
            ("binary", op, a, b),
            f"({a!r}) {op} ({b!r})",
        )

    def draw_items(self, data):
        n = 0 if data.draw(st.integers(0, 15)) == 15 else data.draw(st.integers(1, 6))
        return [self.operand(data) for _ in range(n)]

    @staticmethod
    def container(data, xs):
        """The items as an op's argument: a list, a list that its ``Clearing``
        items empty while the engine converts them, a tuple, a generator, or
        an iterable that raises ``Boom`` part way."""
        kind = data.draw(st.sampled_from(["list", "list", "clearing", "tuple", "gen", "failing"]))
        if kind == "list":
            return list(xs)
        if kind == "clearing":
            items = WeakList(xs)
            for x in items:
                if isinstance(x, Clearing):
                    x.target = weakref.ref(items)
            return items
        if kind == "tuple":
            return tuple(xs)
        if kind == "failing":
            return Failing(xs, data.draw(st.integers(0, len(xs))))
        return (x for x in xs)

    @rule(data=st.data())
    def nary(self, data):
        fn = data.draw(st.sampled_from(NARY))
        items = self.draw_items(data)
        arg = self.container(data, [self.engine_arg(x) for x in items])
        call = lambda: getattr(ag, fn)(arg)  # noqa: E731
        with self.grad_context(data):
            before = live()
            if isinstance(arg, Failing):
                self.expect_failure(Boom, call, before)
                return
            try:
                xs = [self.shadow_of(x) for x in items]
                if not xs:
                    raise ValueError("empty")
            except EXPECTED as e:
                self.expect_failure(type(e), call, before)
                return
            out = call()
            values = [x for x in items if isinstance(x, Rec)]
            nums = len(items) - len(values)
            if fn in ("softmax", "log_softmax"):
                self.check_softmax(data, fn, items, xs, out)
                return
            got = out.data
            scale = sum(abs(x) for x in xs)
            if fn == "sum":
                want = seq_sum([as_float(x) for x in items if not isinstance(x, Rec)])
                want = seq_sum([x.data for x in values], want)
            elif fn == "mean":
                want = seq_sum(xs) / len(xs)
                scale /= len(xs)
            else:
                want = py_logsumexp(xs)
                scale = 1.0 + max((abs(x) for x in xs if math.isfinite(x)), default=0.0)
            assert near(got, want, 1e-12 * scale), f"{fn}({xs}) = {got!r}, want {want!r}"
            if fn == "sum" and not values:
                rec = Rec("", got, False)  # numbers only: folded into one leaf
            else:
                rec = self.result(fn, got, values, ("nary", fn, items), hidden=0 if fn == "sum" else nums)
            self.maybe_backward(data, self.hold(rec, out))

    def check_softmax(self, data, fn, items, xs, out):
        assert isinstance(out, list) and len(out) == len(items)
        L = py_logsumexp(xs)
        span = 1.0 + max((abs(x) for x in xs if math.isfinite(x)), default=0.0)
        recs = []
        if ag.is_grad_enabled():
            values = [x for x in items if isinstance(x, Rec)]
            got_L = out[0].inputs[-1].data  # the hidden logsumexp node
            assert near(got_L, L, 1e-12 * span), f"{fn}({xs}): logsumexp {got_L!r}, want {L!r}"
            Lrec = Rec(
                "logsumexp",
                got_L,
                any(c.rg for c in values),
                values,
                ("softmax_L", fn, items, recs),
                hidden=len(items) - len(values),
            )
        for i, (x, item, o) in enumerate(zip(xs, items, out)):
            # An error of e in x - L is a relative error of e in exp(x - L).
            if fn == "softmax":
                want = math.exp(x - L)
                tol = 1e-12 * (abs(x) + span) * want
            else:
                want = x - L
                tol = 1e-12 * (abs(x) + span)
            assert near(o.data, want, tol), f"{fn}({xs})[{i}] = {o.data!r}, want {want!r}"
            if ag.is_grad_enabled():
                children = ([item] if isinstance(item, Rec) else []) + [Lrec]
                recs.append(Rec(fn, o.data, Lrec.rg, children, ("softmax_out", Lrec, i)))
            else:
                recs.append(Rec("", o.data, False))
        for r, o in zip(recs, out):
            self.hold(r, o)
        self.maybe_backward(data, self.pick(data, recs))

    @rule(data=st.data())
    def dot(self, data):
        xs = self.draw_items(data)
        n = data.draw(st.integers(0, 6)) if data.draw(st.integers(0, 9)) == 9 else len(xs)
        ys = [self.operand(data) for _ in range(n)]
        ax = self.container(data, [self.engine_arg(x) for x in xs])
        ay = self.container(data, [self.engine_arg(y) for y in ys])
        call = lambda: ag.dot(ax, ay)  # noqa: E731
        with self.grad_context(data):
            before = live()
            try:
                # The engine reads xs whole, then ys: the first failure wins.
                if isinstance(ax, Failing):
                    raise Boom
                sx = [self.shadow_of(x) for x in xs]
                if isinstance(ay, Failing):
                    raise Boom
                sy = [self.shadow_of(y) for y in ys]
                if len(sx) != len(sy) or not sx:
                    raise ValueError("lengths")
            except (Boom, *EXPECTED) as e:
                self.expect_failure(type(e), call, before)
                return
            out = call()
            want = seq_sum([x * y for x, y in zip(sx, sy)])
            got = out.data
            assert near(got, want, 1e-12 * sum(abs(x * y) for x, y in zip(sx, sy))), f"dot = {got!r}, want {want!r}"
            isval = lambda x: isinstance(x, Rec)  # noqa: E731
            px, py = xs, ys
            if any(map(isval, py)) and not any(map(isval, px)):
                px, py = py, px  # the engine keeps the number side as data
            if any(map(isval, py)):
                hidden = sum(not isval(x) for x in px + py)
            else:
                hidden = sum(not isval(x) for x in px)
            children = [x for x in xs + ys if isval(x)]
            self.maybe_backward(data, self.hold(self.result("dot", got, children, ("dot", xs, ys), hidden), out))

    # -- references

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def drop(self, data):
        r = self.pick(data)
        self.held.remove(r)
        r.value = None

    @precondition(lambda self: len(self.held) > 4)
    @rule(data=st.data())
    def drop_many(self, data):
        keep = data.draw(st.lists(st.booleans(), min_size=len(self.held), max_size=len(self.held)))
        for r, k in zip(list(self.held), keep):
            if not k:
                self.held.remove(r)
                r.value = None

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def inspect(self, data):
        """``.inputs``/``_prev``/``.op`` agree with the record; optionally hold the inputs."""
        r = self.pick(data)
        v = r.value
        assert v.op == r.op and v._op == r.op
        ins = v.inputs
        assert isinstance(ins, tuple) and len(ins) == len(r.children), (r, ins, r.children)
        for c, w in zip(r.children, ins):
            if c.value is not None:
                assert w is c.value, "two wrappers for one node"
            assert same(w.data, c.data), (c, w)
            assert w.requires_grad == c.rg and w.is_leaf == c.is_leaf
        assert v._prev == set(ins)
        assert repr(v).startswith("Value(data=")
        assert same(float(v), r.data) and same(v.item(), r.data)
        x = data.draw(floats)
        assert (v < x) == (r.data < x) and (v >= x) == (r.data >= x)
        assert v == v and hash(v) == hash(v)
        if data.draw(st.booleans()):
            for c, w in zip(r.children, ins):
                if c.value is None:
                    self.hold(c, w)  # its grad, where the shadow knows it, is checked from now on

    # -- gradients

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def backward(self, data):
        # mostly an op that records: the shadow's sweep has a graph to check then
        ops = [r for r in self.held if r.rg and not r.is_leaf]
        r = self.pick(data, ops) if ops and data.draw(st.integers(0, 3)) else self.pick(data)
        v = r.value
        form = data.draw(st.sampled_from(["none", "pos", "kw", "bad"]))
        seed = data.draw(floats if form != "bad" else st.sampled_from(["x", 1j, (1.0,), 10**400]))
        call = {
            "none": lambda: v.backward(),
            "pos": lambda: v.backward(seed),
            "kw": lambda: v.backward(gradient=seed),
            "bad": lambda: v.backward(seed),
        }[form]
        if form == "bad":
            self.expect_failure(OverflowError if seed == 10**400 else TypeError, call, live())
            return
        if not r.rg:
            self.expect_failure(RuntimeError, call, live())
            return
        call()
        self.backward_done(r, 1.0 if form == "none" else seed)

    def maybe_backward(self, data, r):
        """Mostly a backward from a new result that records: the backward
        rule alone reaches too few graphs of each op for a wrong derivative of
        one op to show in a run."""
        if r.rg and data.draw(st.integers(0, 3)):
            seed = data.draw(st.one_of(st.just(1.0), st.floats(-5.0, 5.0)))
            r.value.backward(seed)
            self.backward_done(r, seed)

    def backward_done(self, r, g):
        """After ``r.value.backward(g)``: the shadow's sweep, and every grad it wrote."""
        if not r.is_leaf:
            assert same(r.value.grad, g), f"root grad {r.value.grad!r} after backward({g!r})"
        # The shadow's own sweep at the nodes' data as the engine holds it;
        # ops hold this call's gradient, leaves add it to what they had.
        ops, leaves = sweep([(r, g)], self.val, is_rec, stale)
        for rec, got in ops.values():
            rec.grad, rec.gtol = got if got is not None else (None, 0.0)
        for rec, acc in leaves.values():
            got = acc.total(rec.grad, rec.gtol)
            rec.grad, rec.gtol = got if got is not None else (None, 0.0)
        self.check_grads(r, set(ops) | set(leaves))

    @staticmethod
    def val(x):
        """The data of a record or the float of a number operand."""
        return x.data if isinstance(x, Rec) else as_float(x)

    def check_grads(self, root, swept):
        """Every swept record's grad against the shadow's, held or not (the
        invariant checks only the held ones, after every rule)."""
        for r, v in self.values_below([root], swept):
            if r.grad is not None:
                assert near(v.grad, r.grad, r.gtol), f"{r}: grad {v.grad!r}, shadow {r.grad!r} (within {r.gtol!r})"

    @staticmethod
    def values_below(roots, within):
        """(record, Value) for the held roots and every record of ``within``
        (ids) below them, reached through ``.inputs``: a record the machine
        does not hold has no Value of its own."""
        stack = [(r, r.value) for r in roots if r.value is not None]
        seen = set()
        while stack:
            r, v = stack.pop()
            if id(r) in seen:
                continue
            seen.add(id(r))
            yield r, v
            if not r.is_leaf:
                stack.extend((c, w) for c, w in zip(r.children, v.inputs) if id(c) in within)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def set_grads(self, data):
        chosen = data.draw(st.lists(st.sampled_from(self.held), max_size=4))
        x = data.draw(st.one_of(st.just(0.0), floats, bad))
        for r in chosen:
            if isinstance(x, float):
                r.value.grad = x
                r.grad, r.gtol = x, 0.0
            else:
                with pytest.raises(TypeError):
                    r.value.grad = x

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def set_data(self, data):
        """Assign ``.data`` (leaves and, as the API allows, op results)."""
        r = self.pick(data)
        x = data.draw(st.one_of(numbers, bad))
        try:
            want = as_float(x)
        except (TypeError, OverflowError) as e:
            with pytest.raises(type(e)):
                r.value.data = x
            return
        r.value.data = x
        r.data = want
        r.stamp = next(_clock)
        r.assigned = not r.is_leaf

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def toggle_requires_grad(self, data):
        """On a leaf, as torch allows: ops already built keep their flag.

        Not on leaves of a live compiled graph: a replay keeps the flags it
        was compiled with, so the eager rebuild would differ (by design)."""
        r = self.pick(data)
        flag = data.draw(st.booleans())
        if not r.is_leaf:
            with pytest.raises(RuntimeError):
                r.value.requires_grad = flag
            return
        if any(r in closure(g.outs) for g in self.graphs):
            return
        r.value.requires_grad = flag
        r.rg = flag

    @rule(on=st.sampled_from([True, True, False]), how=st.sampled_from(["set", "ctx"]))
    def grad_mode(self, on, how):
        """Switch recording for the following steps (mostly back on: a run
        spent under no_grad builds no graph)."""
        if how == "set":
            assert ag.set_grad_enabled(on) == self.grad_mode
        elif on:
            ag.enable_grad().__enter__()
        else:
            ag.no_grad().__enter__()
        self.grad_mode = on

    # -- compiled replay

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def compile(self, data):
        outs = [self.pick_input(data) for _ in range(data.draw(st.integers(1, 3)))]
        if data.draw(st.integers(0, 3)) == 0:
            outs.append(data.draw(st.sampled_from(outs)))  # listed twice: a seed for each
        single = len(outs) == 1 and data.draw(st.booleans())
        reach = closure(outs)
        watch_kind = data.draw(st.sampled_from(["none", "none", "inside", "outside", "bad", "empty", "notvalue"]))
        watch = []
        if watch_kind == "inside":
            watch = data.draw(st.lists(st.sampled_from(reach), max_size=3))
        elif watch_kind == "outside":
            others = [r for r in self.held if r not in reach]
            if not others:
                return
            watch = [self.pick(data, others)]
        before = live()
        target = outs[0].value if single else [r.value for r in outs]
        if watch_kind == "bad":
            self.expect_failure(TypeError, lambda: ag.compile(target, watch=[outs[0].value, 3.0]), before)
            return
        if watch_kind == "empty":
            self.expect_failure(ValueError, lambda: ag.compile([]), before)
            return
        if watch_kind == "notvalue":
            self.expect_failure(TypeError, lambda: ag.compile([outs[0].value, 1.0]), before)
            return
        # Watched Values the machine does not hold are reached through .inputs.
        handles = [self.handle(w, outs) for w in watch]
        if watch_kind == "outside":
            self.expect_failure(ValueError, lambda: ag.compile(target, watch=handles), before)
            return
        cg = ag.compile(target, watch=handles if watch else None)
        del handles, target
        assert cg.num_nodes == sum(1 + r.hidden for r in reach), (cg.num_nodes, reach)
        leaf_recs = [r for r in reach if r.is_leaf]
        leaves = cg.leaves
        assert len(leaves) == len(leaf_recs)
        for r in leaf_recs:
            if r.value is not None:
                assert sum(w is r.value for w in leaves) == 1
        del leaves
        g = Graph(cg, outs, single, watch)
        self.graphs.append(g)
        if data.draw(st.booleans()):
            self.replay_graph(g, data)

    def handle(self, rec, roots):
        """A Value for rec, which lies in the graph of roots (a path of .inputs)."""
        if rec.value is not None:
            return rec.value
        for root in roots:
            if root.value is None:
                continue
            came_from = {id(root): None}  # id(record) -> (consumer, input index)
            stack = [root]
            while stack:
                r = stack.pop()
                if r is rec:
                    path = []
                    while came_from[id(r)] is not None:
                        r, i = came_from[id(r)]
                        path.append(i)
                    v = root.value
                    for i in reversed(path):
                        v = v.inputs[i]
                    return v
                for i, c in enumerate(r.children):
                    if id(c) not in came_from:
                        came_from[id(c)] = (r, i)
                        stack.append(c)
        raise AssertionError("not reachable")  # pragma: no cover

    @precondition(lambda self: self.graphs)
    @rule(data=st.data())
    def drop_graph(self, data):
        g = self.pick(data, self.graphs)
        self.graphs.remove(g)
        g.cg = None  # hypothesis keeps drawn objects for its report

    def replay_forward(self, g):
        """forward() against an eager rebuild from the leaves' current data.

        Returns the rebuild's data of every record of the graph (the point
        the replay's backward works at), or None if forward raised."""
        recs = g.outs + g.watch
        try:
            memo = {}
            with ag.enable_grad():
                for r in g.outs:
                    rebuild(r, memo)
            fresh = {k: v.data for k, v in memo.items()}
            err = None
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            err = type(e)
        del memo
        before = live()
        if err is not None:
            with pytest.raises((ValueError, ZeroDivisionError, OverflowError)):
                g.cg.forward()
            assert live() == before
            return None
        got = g.cg.forward()
        got = [got] if g.single else got
        for r, x in zip(g.outs, got):
            assert same(x, fresh[id(r)]), f"replay {r}: {x!r}, eager {fresh[id(r)]!r}"
        # forward() writes the outputs' and watched Values' data, nothing else:
        # a written node whose inputs were not (and changed) is now stale.
        t = next(_clock)
        written = [r for r in recs if not bits_equal(r.data, fresh[id(r)])]
        for r in written:
            r.data = fresh[id(r)]
            r.stamp = t
        for r in written:
            r.assigned = not r.is_leaf and any(not bits_equal(c.data, fresh[id(c)]) for c in r.children)
        return fresh

    @precondition(lambda self: self.graphs)
    @rule(data=st.data())
    def replay(self, data):
        self.replay_graph(self.pick(data, self.graphs), data)

    def replay_graph(self, g, data):
        fresh = self.replay_forward(g)
        if fresh is None or not data.draw(st.booleans()):
            return
        reach = closure(g.outs)
        if not any(r.rg for r in g.outs):
            self.expect_failure(RuntimeError, g.cg.backward, live())
            return
        held_leaves = [r for r in reach if r.is_leaf and r.value is not None]
        before = {id(r): r.value.grad for r in held_leaves}
        if g.single:
            seed = data.draw(st.one_of(st.none(), floats))
            as_list = seed is not None and data.draw(st.booleans())
            seeds = [1.0 if seed is None else seed]
            g.cg.backward([seed] if as_list else seed)
            self.replay_matches_eager(g, reach, held_leaves, before, seeds[0])
        else:
            drawn = data.draw(st.one_of(st.none(), st.lists(floats, min_size=len(g.outs), max_size=len(g.outs))))
            seeds = [1.0] * len(g.outs) if drawn is None else drawn
            with pytest.raises(ValueError):
                g.cg.backward([1.0] * (len(g.outs) + 1))
            g.cg.backward(drawn)
        # The shadow's sweep from every output with its own seed (an output
        # listed twice gets both), at the data the replay computed; a replay
        # adds each leaf's sum to its .grad and leaves ops' grads alone.
        val = lambda x: fresh[id(x)] if isinstance(x, Rec) else as_float(x)  # noqa: E731
        _, leaves = sweep(list(zip(g.outs, seeds)), val, is_rec, lambda r: False)
        for rec, acc in leaves.values():
            got = acc.total(rec.grad, rec.gtol)
            rec.grad, rec.gtol = got if got is not None else (None, 0.0)
        for rec, v in self.values_below(g.outs, {id(r) for r in reach}):
            if id(rec) in leaves and rec.grad is not None:
                assert near(v.grad, rec.grad, rec.gtol), (
                    f"{rec}: replay grad {v.grad!r}, shadow {rec.grad!r} (within {rec.gtol!r}), seeds {seeds}"
                )

    @staticmethod
    def replay_matches_eager(g, reach, held_leaves, before, seed):
        """A one-output replay's backward bit for bit against eager backward
        on a rebuild: a replay sums each leaf's contributions from zero, as
        eager backward does into a zeroed grad, and adds the sum to .grad in
        one rounding (documented)."""
        # A rebuild has the flags of the leaves' current requires_grad; the
        # graph's ops keep those they were built with (a leaf may have been
        # toggled since). Compare only where the two agree.
        if not all(r.is_leaf or r.rg == any(c.rg for c in r.children) for r in reach):
            return
        memo = {}
        with ag.enable_grad():
            out = rebuild(g.outs[0], memo)
        out.backward(seed)
        for r in held_leaves:
            want = before[id(r)] + memo[id(r)].grad if r.rg else before[id(r)]
            assert same(r.value.grad, want), (
                f"{r}: replay grad {r.value.grad!r}, want {before[id(r)]!r} + {memo[id(r)].grad!r}"
            )

    @precondition(lambda self: self.graphs)
    @rule(data=st.data())
    def replay_set_data(self, data):
        g = self.pick(data, self.graphs)
        pool = [r for r in self.held if r.is_leaf]
        chosen = data.draw(st.lists(st.sampled_from(pool), max_size=6)) if pool else []
        new = data.draw(st.lists(floats, min_size=len(chosen), max_size=len(chosen)))
        values = [r.value for r in chosen]
        arr = np.array(new, dtype=float)
        shape = data.draw(st.sampled_from(["flat", "rows", "wrong", "nonleaf"]))
        if shape == "wrong":
            with pytest.raises(ValueError):
                g.cg.set_data(values, np.zeros(len(values) + 1))
            return
        if shape == "nonleaf":
            ops = [r for r in self.held if not r.is_leaf]
            if not ops:
                return
            with pytest.raises(ValueError):
                g.cg.set_data(values + [self.pick(data, ops).value], np.zeros(len(values) + 1))
            return
        if shape == "rows" and len(values) % 2 == 0 and values:
            g.cg.set_data([values[i : i + 2] for i in range(0, len(values), 2)], arr.reshape(-1, 2))
        else:
            g.cg.set_data(values if data.draw(st.booleans()) else tuple(values), arr)
        for r, x in zip(chosen, new):
            r.data = x
            r.stamp = next(_clock)
        if data.draw(st.booleans()):
            self.replay_forward(g)

    def teardown(self):
        # Runs in a `finally`: after a failed step the traceback still holds
        # that step's Values, so only a clean run is held to the count.
        failing = sys.exc_info()[0] is not None
        ag.set_grad_enabled(True)
        for r in self.held:
            r.value = None
        self.held.clear()
        for g in self.graphs:
            g.cg = None
        self.graphs.clear()
        # No gc.collect(): nothing here holds a Value in a reference cycle,
        # so dropping the last reference must free the nodes at once.
        info = _core._check_invariants()
        if not failing:
            assert info["live_nodes"] == self.base_live, "nodes left alive after every reference was dropped"


def fuzz_settings():
    return settings(
        max_examples=int(os.environ.get("ARENAGRAD_FUZZ_EXAMPLES", "100")),
        stateful_step_count=int(os.environ.get("ARENAGRAD_FUZZ_STEPS", "50")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def run_fuzz():
    run_state_machine_as_test(EngineMachine, settings=fuzz_settings())


# ------------------------------------------------------------------- tests


def test_fuzz_public_api():
    """The state machine, in a child interpreter (see the module docstring)."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        f"fuzz run failed (exit status {proc.returncode}"
        f"{', killed by a signal: a crash' if proc.returncode < 0 else ''}):\n{proc.stdout}\n{proc.stderr}"
    )


def test_fuzz_covers_every_op():
    """The machine's rules reach every op of ``_core.ops()``: a new op needs its
    shadow here (unary and binary ones come from REFERENCE)."""
    reached = set(UNARY) | set(BINARY) | set(NARY) | {"dot"}
    missing = sorted(op["name"] for op in _core.ops() if op["name"] not in reached)
    assert not missing, f"ops the fuzz machine never applies: {missing}"


def test_requires_grad_toggle_on_a_consumed_leaf_keeps_invariants():
    """Setting requires_grad on a leaf that an op already consumed: allowed,
    as in torch, and the op keeps the flag it was built with. The invariant
    checker used to report this as a violation (found while writing the fuzz
    machine)."""
    a = ag.Value(1.0, requires_grad=False)
    b = a * 2.0
    a.requires_grad = True
    _core._check_invariants()
    del a, b
    c = ag.Value(1.0)
    d = c * 2.0
    c.requires_grad = False
    _core._check_invariants()
    del c, d


def sech2(x):
    """tanh'(x) as 1 / cosh(x)^2: not the 1 - tanh(x)^2 an engine would use."""
    return 1.0 / math.cosh(x) ** 2


def test_compiled_output_listed_twice_is_seeded_twice():
    """``ag.compile([u, u])`` seeds u once per listing, as two outputs: with
    u = tanh(x), backward() gives x.grad = 2 tanh'(x), and seeds (a, b) give
    (a + b) tanh'(x). An engine that kept one seed per node gives half."""
    x0 = 0.7
    x = ag.Value(x0)
    u = x.tanh()
    cg = ag.compile([u, u])
    assert cg.forward() == pytest.approx([math.tanh(x0)] * 2, rel=1e-15, abs=0)
    cg.backward()
    # 1e-14: sech2 and the engine's derivative are each a few ulps from tanh'
    assert x.grad == pytest.approx(2 * sech2(x0), rel=1e-14, abs=0)
    x.grad = 0.0
    cg.backward([1.5, -4.0])  # unequal: the sum, not one seed doubled
    assert x.grad == pytest.approx(-2.5 * sech2(x0), rel=1e-14, abs=0)

    x.grad = 0.0
    leaf_twice = ag.compile([x, x])
    leaf_twice.backward([0.25, 0.5])
    assert x.grad == 0.75  # seeds of a leaf output go straight into .grad: exact


def test_compiled_outputs_sharing_a_subgraph_get_the_sum():
    """``ag.compile([u, v])`` with v = u * x built on u: x gets du/dx + dv/dx
    in one sweep, dv/dx = x tanh'(x) + tanh(x), and u's seed adds to the one
    that reaches it from v (listing u twice more adds twice more)."""
    x0 = -0.4
    x = ag.Value(x0)
    u = x.tanh()
    v = u * x
    du = sech2(x0)
    dv = x0 * sech2(x0) + math.tanh(x0)
    cg = ag.compile([u, v])
    cg.forward()
    cg.backward()
    assert x.grad == pytest.approx(du + dv, rel=1e-14, abs=0)
    x.grad = 0.0
    cg.backward([3.0, -2.0])
    assert x.grad == pytest.approx(3.0 * du - 2.0 * dv, rel=1e-14, abs=0)
    x.grad = 0.0
    ag.compile([u, v, u]).backward([1.0, 1.0, 1.0])
    assert x.grad == pytest.approx(2 * du + dv, rel=1e-14, abs=0)


SET_DATA_FRESH_ITEMS = """
import numpy as np
import arenagrad as ag
x = ag.Value(1.0)
cg = ag.compile(x * 1.0)
class Fresh:
    # A sequence whose items are made on access: nothing else holds them.
    def __len__(self):
        return 2
    def __getitem__(self, i):
        if i >= 2:
            raise IndexError(i)
        return ag.Value(0.0)
cg.set_data(Fresh(), np.array([1.0, 2.0]))
"""


def test_set_data_accepts_a_sequence_that_makes_its_items():
    """CompiledGraph.set_data reads each item's node after the item itself may
    have been freed (it keeps no reference to items it did not get from a
    list): today a sequence of fresh leaves gets a spurious 'value 0 is not a
    leaf' (the node was already released). Found while writing the fuzz
    machine; in a child process because it reads freed memory."""
    proc = subprocess.run([sys.executable, "-c", SET_DATA_FRESH_ITEMS], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr}"


if __name__ == "__main__":
    run_fuzz()
