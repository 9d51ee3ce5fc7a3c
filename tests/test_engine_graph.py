"""Graph semantics: accumulation, requires_grad, no_grad, identity, lifetime, depth.

Expected gradients here are worked by hand or in closed form; node counts come
from ``ag.engine_stats()`` before and after, never from a formula the engine uses.
"""

from __future__ import annotations

import math
import random
import sys
import threading

import arenagrad as ag
import pytest
from arenagrad import _core
from conftest import live
from op_reference import REFERENCE, engine_op

V = ag.Value


def slots() -> int:
    return ag.engine_stats()["side_slots_live"]


# ------------------------------------------------------------- accumulation


def test_leaf_grads_accumulate_across_backward_calls():
    a, b = V(2.0), V(-3.0)
    y = a * b + a  # dy/da = b + 1 = -2, dy/db = a = 2
    y.backward()
    assert (a.grad, b.grad) == (-2.0, 2.0)
    y.backward()
    assert (a.grad, b.grad) == (-4.0, 4.0)
    z = a * a  # a second graph over the same leaf keeps adding
    z.backward()
    assert a.grad == -4.0 + 4.0


def test_intermediate_grads_are_those_of_the_last_call():
    a, b = V(2.0), V(-3.0)
    c = a * b
    y = c * c + c  # dy/dc = 2c + 1 = -11
    y.backward()
    assert c.grad == -11.0
    y.backward()
    assert c.grad == -11.0, "an intermediate's grad must not accumulate across calls"
    assert a.grad == 2 * (-11.0 * -3.0)  # leaves do
    assert y.grad == 1.0


def test_intermediate_shared_by_two_outputs_keeps_the_last_outputs_grad():
    a = V(1.5)
    c = a * 2.0
    y1 = c * 3.0
    y2 = c * 5.0
    y1.backward()
    assert c.grad == 3.0
    y2.backward()
    assert c.grad == 5.0
    assert a.grad == 2.0 * 3.0 + 2.0 * 5.0
    assert y1.grad == 1.0  # y1 is outside y2's graph: untouched by the second call


def test_leaf_backward_adds_seed():
    a = V(4.0)
    a.backward()
    a.backward(3.0)
    assert a.grad == 4.0


def test_backward_gradient_argument_scales():
    a, b = V(2.0), V(5.0)
    y = a * b
    y.backward(gradient=2.0)
    assert (a.grad, b.grad, y.grad) == (10.0, 4.0, 2.0)
    a2 = V(2.0)
    (a2 * 3.0).backward(-0.5)  # positional
    assert a2.grad == -1.5
    a3 = V(2.0)
    (a3 * 3.0).backward(gradient=None)  # None means the default seed 1
    assert a3.grad == 3.0


def test_grad_is_settable_for_zero_grad():
    a = V(1.0)
    (a * 7).backward()
    assert a.grad == 7.0
    a.grad = 0.0
    (a * 7).backward()
    assert a.grad == 7.0


# ------------------------------------------------------------- requires_grad


def test_requires_grad_false_leaves_stay_zero():
    a = V(2.0)
    k = V(3.0, requires_grad=False)
    assert a.requires_grad and not k.requires_grad
    y = a * k + k * k
    assert y.requires_grad
    y.backward()
    y.backward()
    assert k.grad == 0.0
    assert a.grad == 6.0


def test_results_of_constant_only_values_do_not_require_grad():
    k = V(3.0, requires_grad=False)
    y = (k * 2).exp() + k
    assert not y.requires_grad
    assert not ag.sum([k, k]).requires_grad


@pytest.mark.parametrize(
    "make",
    [
        lambda: V(1.0, requires_grad=False),
        lambda: V(1.0, requires_grad=False) * 3 + 1,
        lambda: ag.dot([V(1.0, requires_grad=False)], [2.0]),
        lambda: V(1.0).detach(),
    ],
    ids=["leaf", "expr", "dot", "detached"],
)
def test_backward_on_value_without_grad_raises(make):
    v = make()
    with pytest.raises(RuntimeError):
        v.backward()


def test_requires_grad_settable_on_leaf_only():
    a = V(1.0, requires_grad=False)
    a.requires_grad = True
    y = a * 4
    y.backward()
    assert a.grad == 4.0
    with pytest.raises(RuntimeError):
        y.requires_grad = False
    assert y.requires_grad


def test_turning_requires_grad_off_after_building_stops_accumulation():
    a, b = V(2.0), V(3.0)
    y = a * b
    b.requires_grad = False
    y.backward()
    assert a.grad == 3.0 and b.grad == 0.0


# ------------------------------------------------------------------ no_grad


def _assert_untracked(v, data):
    assert isinstance(v, ag.Value)
    assert v.data == pytest.approx(data, rel=1e-15)
    assert v.is_leaf and not v.requires_grad
    assert v.inputs == () and v.op == ""


def test_no_grad_results_are_untracked_leaves():
    a, b = V(2.0), V(3.0)
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        _assert_untracked(a * b, 6.0)
        _assert_untracked(a + 1, 3.0)
        _assert_untracked(2**a, 4.0)
        _assert_untracked(-a, -2.0)
        _assert_untracked(a.tanh(), math.tanh(2.0))
        _assert_untracked(a.leaky_relu(0.1), 2.0)
        _assert_untracked(ag.sum([a, b, 1.0]), 6.0)
        _assert_untracked(ag.sum([a, b]), 5.0)  # all Values: the engine's list fast path
        _assert_untracked(ag.sum((a, b)), 5.0)
        _assert_untracked(ag.mean([a, b]), 2.5)
        _assert_untracked(ag.dot([a, b], [b, 1.0]), 9.0)
        _assert_untracked(ag.dot([a, b], [b, a]), 12.0)
        _assert_untracked(ag.dot([a, b], [0.5, 2.0]), 7.0)
        _assert_untracked(ag.dot([0.5, 2.0], (a, b)), 7.0)
        _assert_untracked(ag.logsumexp([a, b]), math.log(math.exp(2) + math.exp(3)))
        for o in ag.softmax([a, b]) + ag.log_softmax([a, b]):
            assert o.is_leaf and not o.requires_grad and o.inputs == ()
    assert ag.is_grad_enabled()
    y = a * b
    assert y.requires_grad and not y.is_leaf and y.inputs[0] is a
    y.backward()
    assert a.grad == 3.0


def test_no_grad_allocates_no_graph():
    a, b = V(2.0), V(3.0)
    base, base_slots = live(), slots()
    with ag.no_grad():
        y = ((a * 3 + 1).exp() * a).tanh()
        s = ag.softmax([a, y, 1.0])
        d = [ag.dot([a, b], [b, a]), ag.dot([a, b], [1.0, 2.0]), ag.sum([a, b]), ag.mean([a, 1.0])]
        assert live() == base + 1 + 3 + 4  # y, the three outputs, the four results only
        assert slots() == base_slots
    del y, s, d
    assert live() == base


def test_no_grad_as_decorator_nested_and_on_exception():
    a = V(2.0)

    @ag.no_grad()
    def evaluate(x):
        assert not ag.is_grad_enabled()
        return x * x

    r = evaluate(a)
    assert r.is_leaf and not r.requires_grad and r.data == 4.0
    assert ag.is_grad_enabled()

    with ag.no_grad():
        with ag.no_grad():
            pass
        assert not ag.is_grad_enabled(), "leaving an inner no_grad must not re-enable recording"
        with ag.enable_grad():
            assert ag.is_grad_enabled()
            t = a * 2
            assert t.requires_grad and t.inputs[0] is a
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()

    with pytest.raises(ZeroDivisionError):
        with ag.no_grad():
            a / 0
    assert ag.is_grad_enabled()
    with pytest.raises(KeyError):
        with ag.no_grad():
            raise KeyError("x")
    assert ag.is_grad_enabled()
    y = a * a
    assert not y.is_leaf
    y.backward()
    assert a.grad == 4.0


def test_set_grad_enabled_returns_previous_mode():
    try:
        assert ag.set_grad_enabled(False) is True
        assert not ag.is_grad_enabled()
        assert (V(1.0) + 1).is_leaf
        assert ag.set_grad_enabled(True) is False
    finally:
        ag.set_grad_enabled(True)


def test_grad_mode_is_per_thread():
    seen = []
    with ag.no_grad():
        t = threading.Thread(target=lambda: seen.append((ag.is_grad_enabled(), (V(1.0) * 2).is_leaf)))
        t.start()
        t.join()
        assert not ag.is_grad_enabled()
    assert seen == [(True, False)]


# ----------------------------------------------------- identity and metadata


def test_inputs_identity():
    a, b = V(2.0), V(3.0)
    c = a * b
    assert c.inputs[0] is a and c.inputs[1] is b
    assert (a + 2).inputs == (a,) and (a + 2).inputs[0] is a
    assert (2 - a).inputs[0] is a
    assert a.tanh().inputs[0] is a
    assert (a * a).inputs == (a, a)
    s = ag.sum([a, b, a])
    assert len(s.inputs) == 3 and s.inputs[0] is a and s.inputs[1] is b and s.inputs[2] is a
    assert a.inputs == ()


def test_inputs_of_dropped_intermediates_are_live_and_stable():
    a, b = V(2.0), V(3.0)
    y = ((a * b) + a).tanh()  # intermediates have no Python handle
    inner = y.inputs[0]
    assert inner.op == "+"
    assert inner is y.inputs[0], "the same node must come back as the same Value"
    prod = inner.inputs[0]
    assert prod.op == "*" and prod.inputs[0] is a and prod.inputs[1] is b
    assert prod.data == 6.0
    del inner, prod
    y.backward()
    dy = 1 - math.tanh(8.0) ** 2
    assert y.inputs[0].grad == pytest.approx(dy, rel=1e-15)  # intermediate grads are kept in the node
    assert a.grad == pytest.approx(dy * (3.0 + 1.0), rel=1e-15)
    assert b.grad == pytest.approx(dy * 2.0, rel=1e-15)


def test_softmax_outputs_read_a_shared_logsumexp_node():
    a, b = V(0.5), V(-1.0)
    outs = ag.softmax([a, b])
    assert outs[0].inputs[0] is a and outs[1].inputs[0] is b
    L0, L1 = outs[0].inputs[1], outs[1].inputs[1]
    assert L0 is L1 and L0.op == "logsumexp"
    assert L0.inputs == (a, b)


def _every_op(name):
    """Op ``name`` through its REFERENCE spelling, on ``a`` if unary, else on ``a, b``
    (a multi-output op: its last output)."""

    def make(a, b):
        y = engine_op(name)(*((a,) if REFERENCE[name].arity == "unary" else (a, b)))
        return y[-1] if isinstance(y, list) else y

    return make


# Every op, plus the other spellings: a number on either side, builtin abs.
OP_NAMES = [(_every_op(name), name) for name in REFERENCE] + [
    (lambda a, b: a + 1, "+"),
    (lambda a, b: 1 + a, "+"),
    (lambda a, b: 1 - a, "-"),
    (lambda a, b: 2 * a, "*"),
    (lambda a, b: 1 / a, "/"),
    (lambda a, b: a**2, "**"),
    (lambda a, b: 2**a, "**"),
    (lambda a, b: abs(a), "abs"),
    (lambda a, b: ag.softmax([a, b])[0], "softmax"),
]


@pytest.mark.parametrize("make,name", OP_NAMES, ids=[f"{i}:{n}" for i, (_, n) in enumerate(OP_NAMES)])
def test_op_names_and_is_leaf(make, name):
    """A result's ``.op`` (and ``._op``) is its op's name; leaves have ``""``."""
    a, b = V(2.0), V(3.0)
    y = make(a, b)
    assert y.op == name
    assert y._op == name
    assert not y.is_leaf
    assert a.is_leaf and a.op == "" and a._op == ""


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a + 1.5,
        lambda a: 1.5 * a,
        lambda a: ag.sum([a, 1.5]),
        lambda a: ag.dot([a], [1.5]),
        lambda a: ag.dot([a, 2.0], [a, 1.5]),
        lambda a: ag.mean([a, 1.5]),
        lambda a: ag.logsumexp([a, 1.5]),
        lambda a: ag.softmax([a, 1.5])[0].inputs[1],  # the shared logsumexp node
    ],
    ids=["add", "mul", "sum", "dot-const-ys", "dot-mixed", "mean", "logsumexp", "softmax"],
)
def test_inputs_do_not_list_numbers(make):
    # Value.inputs is documented as "The Values this one was computed from
    # (numbers are not listed)". A number operand must not appear as a Value.
    a = V(2.0)
    y = make(a)
    assert all(i is a for i in y.inputs), f"{y.op}.inputs = {y.inputs!r}"


def test_detach():
    a = V(2.0)
    y = a * 3
    d = y.detach()
    assert d is not y and d.data == 6.0
    assert d.is_leaf and not d.requires_grad and d.inputs == ()
    z = d * a
    z.backward()
    assert a.grad == 6.0  # only the direct path; nothing flows through d into y
    assert y.grad == 0.0
    y.data = 100.0
    assert d.data == 6.0  # a copy, not a view


def test_item_float_and_data():
    a = V(2.5)
    assert a.item() == 2.5 and type(a.item()) is float
    assert float(a) == 2.5 and type(float(a)) is float
    assert type(a.data) is float and type(a.grad) is float
    # An int stays an int, as micrograd keeps it, through int arithmetic only.
    assert V(3).data == 3 and type(V(3).data) is int and type(V(3).item()) is float
    assert type((V(3) + 2).data) is int and type((V(3) * 2.5).data) is float and type((V(3) / 1).data) is float
    assert type((V(3) ** 2).data) is int and type((V(3) ** -1).data) is float
    assert V(True).data == 1.0 and type(V(True).data) is float
    assert repr(V(3)) == "Value(data=3, grad=0.0)"
    b = V(3)
    b.data = 0.5
    assert type(b.data) is float
    # dot's constant-ys bit is the int bit of other nodes: it must not leak (found by the torch test)
    d = -ag.dot([V(1.5)], [1.0])
    assert d.data == -1.5 and type(d.data) is float
    assert math.exp(a) == math.exp(2.5)  # math functions see a float via __float__


def test_data_is_settable_and_used_by_later_ops():
    a = V(1.0)
    a.data = 4.0
    y = a.sqrt()
    assert y.data == 2.0
    y.backward()
    assert a.grad == 0.25


def test_repr():
    assert repr(V(2.0)) == "Value(data=2.0, grad=0.0)"
    assert repr(V(2)) == "Value(data=2, grad=0.0)"  # an int as micrograd prints it
    a = V(-1.5)
    (a * 3).backward()
    assert repr(a) == "Value(data=-1.5, grad=3.0)"
    assert repr(V(0.1)) == "Value(data=0.1, grad=0.0)"  # shortest round-trip form, like float repr
    assert repr(V(float("nan"))) == "Value(data=nan, grad=0.0)"
    assert str(V(1e300)) == "Value(data=1e+300, grad=0.0)"


def test_comparisons():
    a, b = V(2.0), V(3.0)
    assert a < b and b > a and a <= b and b >= a and not (a > b)
    assert a < 3 and a <= 2 and a >= 2.0 and not (a > 2)
    assert 3 > a and 1 < a and 2 <= a and 2.0 >= a
    assert sorted([b, a, V(-1.0)])[0].data == -1.0
    assert max([a, b]) is b
    # == is identity, as in micrograd (so Values can live in sets)
    assert a == a and not (a == V(2.0)) and a != V(2.0)
    assert not (a == 2.0) and a != 2.0
    with pytest.raises(TypeError):
        a < "x"  # noqa: B015
    with pytest.raises(TypeError):
        a < None  # noqa: B015


def test_values_in_sets_and_dicts():
    a, b, c = V(1.0), V(1.0), V(2.0)
    s = {a, b, a, c}
    assert len(s) == 3 and a in s and b in s
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b"
    assert hash(a) == hash(a)
    y = a + b
    assert y.inputs[0] in s and y.inputs[0] is a
    assert set(y._prev) == {a, b} and isinstance(y._prev, set)


# ------------------------------------------------------------------ numpy


def test_numpy_scalar_operands():
    np = pytest.importorskip("numpy")
    for k in (np.float32(1.5), np.float64(1.5), np.int64(3), np.int32(-2), np.float16(0.5)):
        kf = float(k)
        for make, want, dwant in [
            (lambda v: v + k, 2.0 + kf, 1.0),
            (lambda v: k + v, 2.0 + kf, 1.0),
            (lambda v: v * k, 2.0 * kf, kf),
            (lambda v: k * v, 2.0 * kf, kf),
            (lambda v: k - v, kf - 2.0, -1.0),
            (lambda v: v / k, 2.0 / kf, 1 / kf),
            (lambda v: k / v, kf / 2.0, -kf / 4.0),
            (lambda v: v**k, 2.0**kf, kf * 2.0 ** (kf - 1)),
        ] + ([(lambda v: k**v, kf**2.0, kf**2.0 * math.log(kf))] if kf > 0 else []):
            a = V(2.0)
            y = make(a)
            assert isinstance(y, ag.Value), f"{type(k).__name__}: got {type(y)}"
            assert y.data == pytest.approx(want, rel=1e-15)
            y.backward()
            assert a.grad == pytest.approx(dwant, rel=1e-15)
    assert V(np.float32(2.5)).data == 2.5
    assert V(np.int64(7)).data == 7.0
    assert V(2.0) < np.float64(3.0)


def test_numpy_arrays_are_not_silently_converted():
    np = pytest.importorskip("numpy")
    a = V(2.0)
    # An array operand: numpy's own elementwise behaviour, an object array of Values.
    r = a * np.array([1.0, 3.0])
    assert isinstance(r, np.ndarray) and r.dtype == object and r.shape == (2,)
    assert all(isinstance(x, ag.Value) for x in r)
    assert [x.data for x in r] == [2.0, 6.0]
    r2 = np.array([1.0, 3.0]) + a
    assert [x.data for x in r2] == [3.0, 5.0]
    ag.sum(list(r) + list(r2)).backward()
    assert a.grad == 1.0 + 3.0 + 1.0 + 1.0
    # Not numbers: TypeError, never a silent conversion.
    with pytest.raises(TypeError):
        V(np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        a + np.array(["x"])
    with pytest.raises(TypeError):
        a * np.array([None])
    with pytest.raises(TypeError):
        V(np.complex128(1 + 0j))
    with pytest.raises(TypeError):
        a + np.complex128(1 + 1j)


# --------------------------------------------------------- size and lifetime


def test_node_size():
    stats = ag.engine_stats()
    assert stats["node_bytes"] <= 64
    assert ag.NODE_BYTES == stats["node_bytes"]
    assert stats["capacity_nodes"] >= stats["live_nodes"] >= 0


def test_freed_nodes_are_reused_lowest_first():
    # A graph built after others were released in any order lies in the
    # arena in creation order (backward and release then walk memory in
    # order; a free list handed nodes back in release order, which scattered
    # microgpt's graph step after step).
    rng = random.Random(5)
    first = [V(float(i)) for i in range(3000)]
    freed = sorted(_core._arena_position(v) for v in first)
    rng.shuffle(first)
    while first:
        first.pop()  # released one at a time, in shuffled order
    second = [V(float(i)) for i in range(3000)]
    places = [_core._arena_position(v) for v in second]
    assert places == freed  # the same places, in order, no others
    # A node freed below live ones is the next one handed out.
    hole = places[10]
    del second[10]
    assert _core._arena_position(V(0.0)) == hole
    # A graph released from its output (depth first) leaves the same order.
    x = V(0.5)
    y = x
    for k in range(2000):
        y = (y * x + k).tanh() if k % 3 else y + x * k
    del y
    built = [V(float(i)) for i in range(1000)]
    places = [_core._arena_position(v) for v in built]
    assert places == sorted(places)
    _core._check_invariants()
    with pytest.raises(TypeError):
        _core._arena_position(1.0)


def test_live_nodes_count_values_and_graphs():
    base = live()
    a = V(1.0)
    assert live() == base + 1
    y = (a * 2 + 1).tanh()  # three op nodes
    assert live() == base + 4
    del a
    assert live() == base + 4, "the graph keeps its leaves alive"
    y2 = y.inputs[0].inputs[0].inputs[0]  # reaching into the graph creates no node
    assert live() == base + 4 and y2.data == 1.0
    del y2
    del y
    assert live() == base


def test_fused_ops_release_their_nodes_and_slots():
    base, base_slots = live(), slots()
    a, b = V(1.0), V(2.0)
    outs = ag.softmax([a, b, 3.0, a])
    m = ag.mean([a, 1.0, b])
    d = ag.dot([a, 2.0], [b, a])
    d2 = ag.dot([a, b], [0.5, 0.25])
    s = ag.sum([a, 1.0, b])
    d3 = ag.dot((a, b), (b, a))
    d4 = ag.dot([0.5, 0.25], [a, b])
    s2 = ag.sum((a, b, a))
    ag.sum(outs + [m, d, d2, s, d3, d4, s2]).backward()
    assert live() > base + 2
    del outs, m, d, d2, s, d3, d4, s2
    del a, b
    assert live() == base
    assert slots() == base_slots


def _with_low_recursion_limit(fn):
    """Run fn with the recursion limit just above the current depth."""
    depth = 0
    f = sys._getframe()
    while f is not None:
        depth += 1
        f = f.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 60)
    try:
        return fn()
    finally:
        sys.setrecursionlimit(old)


def test_million_deep_chain_builds_backprops_and_frees():
    n = 1_000_000
    c = 1.0000001
    base = live()

    def run():
        x = V(0.75)
        y = x
        for _ in range(n):
            y = y * c + 0.0
        assert live() == base + 1 + 2 * n
        y.backward()
        # Closed form: y = x c^n. Backward multiplies n times (each rounding by
        # at most half an ulp), hence the 1e-9 tolerance, not 1e-15.
        assert x.grad == pytest.approx(c**n, rel=1e-9)
        assert y.data == pytest.approx(0.75 * c**n, rel=1e-9)
        del x
        y.backward()  # a second sweep over the same chain
        assert y.inputs[0].inputs[0].grad == pytest.approx(c, rel=1e-15)
        del y  # releases two million nodes without recursion
        assert live() == base

    _with_low_recursion_limit(run)
    assert live() == base


def test_deep_chain_released_from_the_leaf_end_and_in_the_middle():
    base = live()

    def run():
        x = V(1.0)
        y = x
        mid = None
        for i in range(200_000):
            y = (y + 1.0).relu()
            if i == 100_000:
                mid = y
        del x
        assert live() == base + 1 + 400_000
        del y  # the first half stays alive through mid
        assert live() == base + 1 + 2 * 100_001
        mid.backward()
        assert mid.data == 100_002.0
        del mid
        assert live() == base

    _with_low_recursion_limit(run)


def test_deep_diamond_chain_uses_the_work_list():
    # Each level consumes the previous one twice: release must handle two
    # dying inputs per node without recursing.
    base = live()

    def run():
        x = V(0.5)
        y = x
        depth = 100_000
        for _ in range(depth):
            y = y * 0.5 + y * 0.5  # y stays x; dy/dx stays 1
        y.backward()
        assert y.data == 0.5 and x.grad == 1.0
        del x, y
        assert live() == base

    _with_low_recursion_limit(run)


def test_deep_chains_through_fused_ops_fed_by_generators():
    base, base_slots = live(), slots()

    def run():
        x = V(0.5)
        y = x
        n = 50_000
        for _ in range(n):
            y = ag.sum(v for v in (y, x))  # y = y + x
        y.backward()
        assert y.data == 0.5 * (n + 1)
        assert x.grad == n + 1
        x.grad = 0.0
        z = x
        for _ in range(n):
            z = ag.dot((v for v in [z]), (w for w in [1.0]))  # z = z * 1
            z = ag.mean(v for v in (z, z))  # z = z
        z.backward()
        assert z.data == 0.5 and x.grad == 1.0
        x.grad = 0.0
        w = x
        for _ in range(n // 5):
            w = ag.log_softmax(v for v in (w, 0.0))[0] + ag.logsumexp([w, 0.0])  # w = w
        w.backward()
        assert w.data == pytest.approx(0.5, rel=1e-9)
        assert x.grad == pytest.approx(1.0, rel=1e-9)
        del x, y, z, w

    _with_low_recursion_limit(run)
    assert live() == base
    assert slots() == base_slots


def test_wide_graph():
    base = live()
    n = 100_000
    xs = [V(i * 1e-3) for i in range(n)]
    s = ag.sum(xs)
    assert s.data == pytest.approx(math.fsum(i * 1e-3 for i in range(n)), rel=1e-12)
    s.backward()
    assert all(x.grad == 1.0 for x in xs)
    # micrograd style: Python's sum is a 100k-deep chain of additions.
    t = sum(xs)
    t.backward()
    assert all(x.grad == 2.0 for x in xs)
    d = ag.dot(xs, [2.0] * n)
    d.backward()
    assert all(x.grad == 4.0 for x in xs)
    m = ag.mean(xs)
    m.backward()
    assert xs[0].grad == pytest.approx(4.0 + 1.0 / n, rel=1e-15)
    del s, t, d, m, xs
    assert live() == base


def test_no_grad_decorates_without_parentheses():
    @ag.no_grad
    def f(x):
        return x * 2

    y = f(ag.Value(1.0))
    assert y.is_leaf and not y.requires_grad and ag.is_grad_enabled()
    assert f.__name__ == "f"
    with pytest.raises(TypeError):
        ag.no_grad(3)


def test_traversal_epoch_wraparound_keeps_graphs_intact():
    """After 2**32 traversals the stamp counter wraps; every live graph must survive."""
    from arenagrad import _core

    a = ag.Value(3.0)
    y = a * a
    z = (y + a).tanh()
    _core._set_traversal_epoch(2**32 - 3)
    for _ in range(6):  # crosses the wrap
        a.grad = 0.0
        y.backward()
        assert a.grad == 6.0
        step = ag.compile(z)
        assert step.forward() == z.data
    assert y.op == "*" and z.op == "tanh"
    _core._check_invariants()
