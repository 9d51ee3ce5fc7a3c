"""Batched replay: one compiled graph over the rows of an array.

The contract (``ag.compile``'s docstring): row i of ``forward(X)`` and of the
input gradients is bit-identical to the eager engine run with the inputs set
to ``X[i]``; a shared leaf's ``.grad`` gets the sum of the rows' gradients
(within 1e-12 relative of the exact sum of the eager ones), the same bits for
every thread count; an error in a row raises what eager raises, names the
row, and changes nothing.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core
from hypothesis import example, given, settings
from hypothesis import strategies as st

UNARY = [op for op in _core.ops() if op["arity"] == "unary"]
BINARY = ["+", "-", "*", "/", "**", "softmax", "log_softmax"]
NARY = ["sum", "mean", "dot", "logsumexp"]
ALL_OPS = [op["name"] for op in _core.ops()]


# ------------------------------------------------------------- random graphs
#
# A program is a list of steps; each appends one or more nodes computed from
# earlier ones (picked by index modulo the node count). Ops with a restricted
# domain are given operands inside it, so that most graphs are defined on
# every row; what is left (overflow, say) must then fail alike in both engines.


def unary(name, x):
    if name == "neg":
        return -x
    if name == "log":
        return (x * x + 0.5).log()
    if name == "sqrt":
        return (x * x + 0.1).sqrt()
    if name == "exp":
        return (x.tanh() * 3.0).exp()
    return getattr(x, name)()


def apply(step, nodes):
    kind, name, picks, const, side = step
    a, b = nodes[picks[0] % len(nodes)], nodes[picks[1] % len(nodes)]
    if kind == "unary":
        return [unary(name, a)]
    if kind == "binary":
        if name in ("softmax", "log_softmax"):
            group = [nodes[p % len(nodes)] for p in picks]
            return list(getattr(ag, name)(group))
        if side == 1:
            b = const  # a number operand (CONST_B)
        elif side == 2:
            a = const  # CONST_A
        if name == "+":
            return [a + b]
        if name == "-":
            return [a - b]
        if name == "*":
            return [a * b]
        if name == "/":
            return [a / (b * b + 0.5) if isinstance(b, ag.Value) else a / (b * b + 0.5)]
        # **: a positive base, any exponent
        base = a * a + 0.5 if isinstance(a, ag.Value) else a * a + 0.5
        return [base ** (b.tanh() * 2.0 if isinstance(b, ag.Value) else b)]
    group = [nodes[p % len(nodes)] for p in picks]
    if name == "dot":
        half = max(1, len(group) // 2)
        return [ag.dot(group[:half], group[half : 2 * half])]
    return [getattr(ag, name)(group)]


def build(program, inputs, shared):
    nodes = list(inputs) + list(shared)
    for step in program:
        nodes.extend(apply(step, nodes))
    return nodes[-1]


def steps():
    unary_step = st.tuples(
        st.just("unary"),
        st.sampled_from([op["name"] for op in UNARY]),
        st.lists(st.integers(0, 99), min_size=2, max_size=2),
    )
    binary_step = st.tuples(
        st.just("binary"), st.sampled_from(BINARY), st.lists(st.integers(0, 99), min_size=2, max_size=4)
    )
    nary_step = st.tuples(st.just("nary"), st.sampled_from(NARY), st.lists(st.integers(0, 99), min_size=2, max_size=6))
    return st.tuples(
        st.one_of(unary_step, binary_step, nary_step), st.floats(-2, 2), st.sampled_from([0, 0, 1, 2])
    ).map(lambda t: (t[0][0], t[0][1], t[0][2], t[1], t[2]))


def leaves(values, requires_grad=True):
    return [ag.Value(float(v), requires_grad=requires_grad) for v in values]


def largest_grad(out):
    """The largest |grad| of any node in out's graph: the size of the terms a
    gradient is summed from, which bounds its rounding error when they cancel."""
    seen, stack, big = set(), [out], 0.0
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        big = max(big, abs(v.grad) if math.isfinite(v.grad) else 0.0)
        stack.extend(v._prev)
    return big


def eager_rows(program, X, shared_values, inputs_require_grad=True):
    """Per row: (value, input grads, shared grads, largest node grad) from the
    eager engine, or the exception it raised."""
    rows = []
    for x in X:
        ins, sh = leaves(x, inputs_require_grad), leaves(shared_values)
        try:
            out = build(program, ins, sh)
            if out.requires_grad:
                out.backward()
        except (ValueError, ZeroDivisionError, OverflowError) as e:
            rows.append(e)
            continue
        rows.append((out.data, [v.grad for v in ins], [v.grad for v in sh], largest_grad(out)))
    return rows


def same_bits(a, b):
    return np.array_equal(
        np.asarray(a, dtype=np.float64).view(np.int64), np.asarray(b, dtype=np.float64).view(np.int64)
    )


def same_bits_but_nan_signs(a, b):
    """same_bits, a NaN of either sign being any NaN: which of two NaN operands
    (nan + -nan) an add returns is the compiler's choice (it may swap them)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    nans = np.isnan(a)
    return np.array_equal(nans, np.isnan(b)) and same_bits(a[~nans], b[~nans])


@settings(max_examples=60, deadline=None)
@given(
    program=st.lists(steps(), min_size=1, max_size=14),
    n_rows=st.integers(0, 150),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
@example(  # a softmax of one node twice: the shared gradients are rounding noise
    program=[("unary", "neg", [0, 0], 0.0, 0)] * 4
    + [("binary", "softmax", [0, 0], 0.0, 0), ("binary", "softmax", [3, 33], 0.0, 0)],
    n_rows=104,
    k=2,
    seed=0,
)
@example(  # gradients reach an input and a shared leaf through softmax outputs a product reads
    program=[("binary", "softmax", [0, 2], 0.0, 0), ("binary", "*", [4, 1], 0.0, 0), ("binary", "*", [6, 5], 0.0, 0)],
    n_rows=40,
    k=2,
    seed=1,
)
@example(  # one varying node on both sides of a product and of a power
    program=[("unary", "tanh", [0, 0], 0.0, 0), ("binary", "*", [2, 2], 0.0, 0), ("binary", "**", [3, 3], 0.0, 0)],
    n_rows=20,
    k=1,
    seed=2,
)
def test_rows_match_eager_bit_for_bit(program, n_rows, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n_rows, k))
    shared_values = rng.uniform(-1, 1, size=2)
    ins, sh = leaves([0.3] * k), leaves(shared_values)
    try:
        out = build(program, ins, sh)
    except (ValueError, ZeroDivisionError, OverflowError):
        return  # undefined at the recording point: nothing to compile
    cg = ag.compile(out, inputs=ins)
    want = eager_rows(program, X, shared_values)
    failures = [i for i, r in enumerate(want) if isinstance(r, Exception)]
    if failures:
        first = failures[0]
        with pytest.raises(type(want[first]), match=f"row {first} "):
            cg.forward(X)
        return
    Y = cg.forward(X)
    assert Y.shape == (n_rows,)
    assert same_bits(Y, [r[0] for r in want])
    if not out.requires_grad:
        return
    for v in sh:
        v.grad = 0.0
    G = cg.backward()
    assert G.shape == (n_rows, k)
    assert same_bits(G, np.array([r[1] for r in want]).reshape(n_rows, k))
    # Batched replay sums the rows' gradients before the shared part's
    # backward, eager after it: equal within 1e-12 relative, and within a few
    # roundings of the largest term per row where a row's terms cancel (a
    # softmax of one node twice has a true gradient of 0 and both give noise).
    floor = 8 * np.finfo(float).eps * math.fsum(r[3] for r in want)
    for j, v in enumerate(sh):
        exact = math.fsum(r[2][j] for r in want)
        scale = math.fsum(abs(r[2][j]) for r in want)
        assert abs(v.grad - exact) <= 1e-12 * scale + floor, (j, v.grad, exact)


# Lane loops run exp's cheaper form for x in [-708, 709] (vmath.hpp's
# exp_near; for softmax, x_i - max) over a block of rows, and exp's own path
# again over any other row: one row beyond it, anywhere in a block of 128 or
# in the halves of 64 softmax works in, must not change a bit of any row.
FAR = [708.5, -708.5, 745.0, -750.0, 1e308, -1e308, math.inf, -math.inf, math.nan]
NEAR_RANGE_PROGRAMS = {
    "softplus": [("unary", "softplus", [0, 0], 0.0, 0)],
    "sigmoid": [("unary", "sigmoid", [0, 0], 0.0, 0)],
    "softmax": [("binary", "softmax", [0, 1, 2], 0.0, 0)],
}


@pytest.mark.parametrize("far_at", [None, 0, 63, 64, 127, 128, 201])
@pytest.mark.parametrize("name", sorted(NEAR_RANGE_PROGRAMS))
def test_rows_beyond_the_near_range_of_exp_match_eager(name, far_at):
    program = NEAR_RANGE_PROGRAMS[name]
    X = np.random.default_rng(3).uniform(-3, 3, size=(230, 3))
    X[20] = [708.0, -707.5, 0.5]  # the near range's edges: softplus(708), softmax's -707.5 - 0.5
    X[21] = [-708.0, 0.25, 1.0]
    X[140] = [708.0, 0.25, -708.0]  # a softmax spread beyond it, in another block than far_at's
    X[150] = [-707.9, 354.0, -353.9]
    ins = leaves([0.1, 0.2, 0.3])
    cg = ag.compile(build(program, ins, []), inputs=ins)
    for f in FAR if far_at is not None else [None]:
        if far_at is not None:
            X[far_at] = [f, -f / 2, 0.5]
        want = eager_rows(program, X, [])
        assert same_bits_but_nan_signs(cg.forward(X), [r[0] for r in want]), f
        assert same_bits_but_nan_signs(cg.backward(), np.array([r[1] for r in want])), f


def test_random_programs_cover_every_op():
    """The strategy above can draw every op in the table (a new op must be added)."""
    drawn = {op["name"] for op in UNARY} | set(BINARY) | set(NARY)
    assert drawn == set(ALL_OPS)


# ------------------------------------------------------------- a small model


def mlp_loss(x, params):
    """A 2-8-1 tanh network's squared error against the target 0.5."""
    w1, b1, w2, b2 = params
    hidden = [(ag.dot(w1[j], x) + b1[j]).tanh() for j in range(8)]
    y = ag.dot(w2, hidden) + b2
    return (y - 0.5) ** 2


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return (
        [leaves(rng.normal(size=2)) for _ in range(8)],
        leaves(rng.normal(size=8)),
        leaves(rng.normal(size=8)),
        ag.Value(0.1),
    )


def flat(params):
    w1, b1, w2, b2 = params
    return [v for row in w1 for v in row] + b1 + w2 + [b2]


def test_shared_gradients_are_the_sum_over_rows_and_inputs_get_theirs():
    params = make_params()
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(1).normal(size=(257, 2))
    Y = cg.forward(X)
    G = cg.backward()
    got = [p.grad for p in flat(params)]
    # The reference: the eager engine, one row at a time, inputs requiring grad
    # so that eager computes their gradients too.
    sums = np.zeros(len(got))
    for i, x in enumerate(X):
        for p in flat(params):
            p.grad = 0.0
        xi = leaves(x)
        loss = mlp_loss(xi, params)
        loss.backward()
        assert loss.data == Y[i]
        assert [v.grad for v in xi] == list(G[i])
        sums += [p.grad for p in flat(params)]
    np.testing.assert_allclose(got, sums, rtol=1e-12, atol=1e-15)


def dot_mix(x, w):
    """A dot whose pairs are every kind of operand pair: varying x varying,
    varying x shared, shared x varying, shared x shared, number x each."""
    return ag.dot([x[0], x[1], w[0], w[1], 2.0, x[0], 3.0, -1.5], [x[1], w[2], x[0], w[3], x[1], 0.5, w[0], 4.0]).tanh()


def test_dot_over_rows_reads_shared_operands_and_numbers_as_eager_does():
    """Batched dot takes a shared or number operand as one value for every row
    (no broadcast lanes): the values and input gradients must still be
    eager's bits, the shared ones the sum of eager's."""
    wv = [0.7, -1.3, 0.4, 2.1]
    xs, w = leaves([0.0, 0.0], requires_grad=False), leaves(wv)
    cg = ag.compile(dot_mix(xs, w), inputs=xs)
    X = np.random.default_rng(5).normal(size=(77, 2))
    Y, G = cg.value_and_grad(X)
    sums = [[] for _ in wv]
    for i, x in enumerate(X):
        xi, wi = leaves(x), leaves(wv)
        out = dot_mix(xi, wi)
        out.backward()
        assert out.data == Y[i]
        assert [v.grad for v in xi] == list(G[i])
        for j, v in enumerate(wi):
            sums[j].append(v.grad)
    for v, terms in zip(w, sums):
        assert abs(v.grad - math.fsum(terms)) <= 1e-12 * math.fsum(map(abs, terms))


def test_rows_and_seeds_in_any_layout_or_dtype_give_the_same_numbers():
    """A float64 array in C order is read in place; every other layout, byte
    order or dtype is converted first, to the same numbers."""
    params = make_params(4)
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(6).integers(-3, 4, size=(40, 2)).astype(np.float64)
    S = np.random.default_rng(7).integers(1, 5, size=40).astype(np.float64)
    want_y, want_g = cg.value_and_grad(X, S)
    readonly, wide = X.copy(), np.zeros((40, 4))
    readonly.flags.writeable = False
    wide[:, ::2] = X
    layouts = [np.asfortranarray(X), wide[:, ::2], X.astype(">f8"), X.astype(np.float32), X.astype(np.int64), readonly]
    for rows in layouts:
        for seeds in (S, S.astype(np.float32), np.repeat(S, 2)[::2]):
            y, g = cg.value_and_grad(rows, seeds)
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(g, want_g)
    # A 0-d array is a number, as numpy's conversion makes it one element.
    one_y, one_g = cg.value_and_grad(X[:1], [2.0])
    y, g = cg.value_and_grad(X[:1], np.array(2.0))
    np.testing.assert_array_equal(y, one_y)
    np.testing.assert_array_equal(g, one_g)


def test_input_gradients_match_finite_differences():
    params = make_params(3)
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(2).normal(size=(20, 2))
    cg.forward(X)
    G = cg.backward()
    h = 1e-6
    for j in range(2):
        E = np.zeros_like(X)
        E[:, j] = h
        fd = (cg.forward(X + E) - cg.forward(X - E)) / (2 * h)
        np.testing.assert_allclose(G[:, j], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("rows", [5003, 100, 37])  # blocks narrower than the widest for the small ones
def test_the_same_bits_for_every_thread_count(rows, threads):
    params = make_params(4)
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(5).normal(size=(rows, 2))
    results = []
    for n in (1, 2, 3, 7):
        threads(n)
        for p in flat(params):
            p.grad = 0.0
        Y = cg.forward(X)
        G = cg.backward()
        results.append((Y, G, np.array([p.grad for p in flat(params)])))
    for Y, G, S in results[1:]:
        assert same_bits(Y, results[0][0])
        assert same_bits(G, results[0][1])
        assert same_bits(S, results[0][2])


def test_the_same_bits_for_every_thread_count_when_a_batch_is_split_for_two_cores(threads):
    # Enough work to split 150 rows in two blocks (the engine's SPLIT_WORK),
    # each narrower than the widest: there the block width, and so the order
    # shared gradients are summed in, must come from the row count alone.
    rng = np.random.default_rng(11)
    w = leaves(rng.normal(scale=0.5, size=6))
    xs = leaves([0.0, 0.0], requires_grad=False)
    h = xs[0] * w[0] + xs[1] * w[1]
    for i in range(400):
        h = (h * w[i % 6]).tanh() + xs[i % 2] * w[(i + 1) % 6]
    cg = ag.compile(h, inputs=xs)
    X = rng.normal(size=(150, 2))
    grads = []
    for n in (1, 2, 3):
        threads(n)
        for v in w:
            v.grad = 0.0
        cg.value_and_grad(X)
        grads.append(np.array([v.grad for v in w]))
    for g in grads[1:]:
        assert same_bits(g, grads[0])


def test_several_outputs_and_their_gradients():
    x, y = leaves([0.0, 0.0], requires_grad=False)
    w = ag.Value(0.7)
    outs = [x * w + y, (x - y).tanh() * w, w * w]  # the last is the same for every row
    cg = ag.compile(outs, inputs=[x, y])
    X = np.random.default_rng(6).normal(size=(70, 2))
    seeds = np.random.default_rng(7).normal(size=(70, 3))
    Y = cg.forward(X)
    assert Y.shape == (70, 3)
    G = cg.backward(seeds)
    got_w = w.grad
    # Scalar replay, bit-identical to eager, row by row with the same seeds.
    xe, ye, we = leaves([0.0, 0.0, 0.7])
    one = ag.compile([xe * we + ye, (xe - ye).tanh() * we, we * we])
    total = []
    for i in range(70):
        xe.data, ye.data = X[i]
        for v in (xe, ye, we):
            v.grad = 0.0
        assert same_bits(one.forward(), Y[i])
        one.backward(list(seeds[i]))
        assert same_bits([xe.grad, ye.grad], G[i])
        total.append(we.grad)
    assert got_w == pytest.approx(math.fsum(total), rel=1e-12)


# ------------------------------------------------------------- errors


def test_an_error_in_a_row_names_it_and_changes_nothing():
    x = ag.Value(1.0, requires_grad=False)
    w = ag.Value(2.0)
    cg = ag.compile((x * w).log(), inputs=[x])
    good = np.array([[1.0], [2.0], [3.0]])
    Y = cg.forward(good)
    bad = np.array([[1.0], [2.0], [-3.0], [4.0], [-5.0]])
    with pytest.raises(ValueError, match=r"log\(-6\.0\): math domain error \(in row 2 of the batch\)"):
        cg.forward(bad)
    assert w.grad == 0.0
    # backward still means the last good forward's
    G = cg.backward()
    assert list(G[:, 0]) == [1.0, 0.5, 1.0 / 3.0]
    assert w.grad == pytest.approx(1.5, rel=1e-15)
    assert same_bits(cg.forward(good), Y)


def test_a_shared_part_that_fails_raises_as_eager_does():
    x = ag.Value(1.0, requires_grad=False)
    w = ag.Value(2.0)
    cg = ag.compile(x * w.log(), inputs=[x])
    w.data = -1.0
    with pytest.raises(ValueError, match="math domain error"):
        cg.forward(np.ones((4, 1)))


def test_detect_anomaly_names_the_row():
    x = ag.Value(1.0, requires_grad=False)
    cg = ag.compile(x * ag.Value(2.0), inputs=[x])
    X = np.array([[1.0], [float("nan")], [2.0]])
    assert math.isnan(cg.forward(X)[1])  # without anomaly mode NaN passes, as in eager
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"row 1 of the batch"):
            cg.forward(X)


def build_failing(x, y, z):
    """Fails three ways: x = 1 makes an inf that the log turns into a domain
    error (log(-inf)), y = -1 a domain error, z = 1 an inf and nothing more."""
    return ((x * 1e308) * 10.0 * -1.0 + 2e300).log() + y.log() + (z * 1e308) * 10.0


def eager_first_failure(rows):
    """The first row at which eager, building build_failing row by row, raises,
    and what it raises."""
    for i, row in enumerate(rows):
        try:
            build_failing(*[ag.Value(float(v), requires_grad=False) for v in row])
        except (ValueError, FloatingPointError) as e:
            return i, type(e), str(e)
    raise AssertionError("eager raised nothing")


@pytest.mark.parametrize("anomaly", [False, True], ids=["plain", "detect_anomaly"])
@pytest.mark.parametrize(
    "rows",
    [[[1e-9, 1.0, 1e-9], [1e-9, 1.0, 1.0], [1e-9, -1.0, 1e-9]], [[1e-9, 1.0, 1e-9], [1.0, 1.0, 1e-9]]],
    ids=["an-inf-row-before-a-domain-error-row", "an-inf-then-a-domain-error-in-one-row"],
)
def test_replay_raises_the_failure_eager_meets_first(rows, anomaly):
    # Under detect_anomaly an inf is a failure of its own: before a later row's
    # domain error, and before the domain error it leads to in its own row.
    leaves = [ag.Value(v, requires_grad=False) for v in (1e-9, 1.0, 1e-9)]
    out = build_failing(*leaves)
    cg, single = ag.compile(out, inputs=leaves), ag.compile(out)
    X = np.array(rows)
    with ag.detect_anomaly(anomaly):
        row, error, message = eager_first_failure(rows)
        for call in (cg.forward, cg.value_and_grad, cg.hessian, lambda X: cg.hvp(np.ones(3), X)):
            with pytest.raises(error) as e:
                call(X)
            assert str(e.value) == f"{message} (in row {row} of the batch)"
        for leaf, v in zip(leaves, rows[row]):
            leaf.data = v
        with pytest.raises(error) as e:
            single.forward()
        assert str(e.value) == message


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda cg: cg.forward(np.ones((3, 2))), ValueError, r"\(N, 1\) array"),
        (lambda cg: cg.forward(np.ones(3)), ValueError, r"\(N, 1\) array"),
        (lambda cg: cg.forward([["a"]]), TypeError, "real numbers"),
        (lambda cg: cg.forward([[None]]), TypeError, "real number"),
        (lambda cg: (cg.forward(np.ones((3, 1))), cg.backward(np.ones(4))), ValueError, "shape"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    x = ag.Value(1.0, requires_grad=False)
    cg = ag.compile(x * ag.Value(2.0), inputs=[x])
    with pytest.raises(error, match=match):
        call(cg)


def test_inputs_must_be_distinct_leaves_and_rows_need_inputs():
    x, w = ag.Value(1.0), ag.Value(2.0)
    y = x * w
    with pytest.raises(ValueError, match="not a leaf"):
        ag.compile(y, inputs=[y])
    with pytest.raises(ValueError, match="listed twice"):
        ag.compile(y, inputs=[x, x])
    with pytest.raises(TypeError, match="inputs must be a list"):
        ag.compile(y, inputs=x)
    with pytest.raises(TypeError, match="compiled with inputs"):
        ag.compile(y).forward(np.ones((2, 1)))
    with pytest.raises(ValueError, match="between 1 and"):
        ag.set_num_threads(0)
    with pytest.raises(TypeError, match="must be an int"):
        ag.set_num_threads(2.0)


def test_an_input_the_graph_does_not_read_gets_zero_gradients():
    x, unused = leaves([1.0, 5.0])
    cg = ag.compile(x * x, inputs=[x, unused])
    cg.forward(np.array([[3.0, 9.0]]))
    assert cg.backward().tolist() == [[6.0, 0.0]]


def test_scalar_forward_after_a_batch_keeps_its_meaning():
    x, w = ag.Value(3.0, requires_grad=False), ag.Value(2.0)
    y = x * w
    cg = ag.compile(y, inputs=[x])
    cg.forward(np.array([[1.0], [2.0]]))
    assert y.data == 6.0  # the graph's Values are left alone by a batch
    assert cg.forward() == 6.0
    assert cg.backward() is None
    assert w.grad == 3.0


def test_pickled_graph_keeps_its_inputs():
    params = make_params(8)
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(9).normal(size=(10, 2))
    again = pickle.loads(pickle.dumps(cg))
    assert len(again.inputs) == 2
    assert same_bits(again.forward(X), cg.forward(X))


# ------------------------------------------------------------- threads and signals


def test_other_python_threads_run_during_a_batch():
    params = make_params(10)
    xs = leaves([0.0, 0.0], requires_grad=False)
    cg = ag.compile(mlp_loss(xs, params), inputs=xs)
    X = np.random.default_rng(11).normal(size=(400_000, 2))
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    start = time.perf_counter()
    cg.forward(X)
    end = time.perf_counter()
    done.set()
    t.join()
    during = [s for s in ticks if start < s < end]
    assert end - start < 0.05 or len(during) >= 5, (end - start, len(during))


def ctrl_c_after(setup, call, after, seconds=0.3):
    """Runs `setup` then `call` in a fresh interpreter that presses Ctrl-C on itself
    `seconds` into the call, then `after`; returns (how long the call ran before
    KeyboardInterrupt, or None if it finished; what `after` printed)."""
    script = f"""
import signal, threading, time, os
import numpy as np
import arenagrad as ag
{setup}
# A process started in the background by a shell inherits SIGINT ignored, and
# Python then leaves it so: put back Python's own handler, which Ctrl-C meets.
signal.signal(signal.SIGINT, signal.default_int_handler)
threading.Timer({seconds}, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
start = time.perf_counter()
try:
    {call}
    print("finished")
except KeyboardInterrupt:
    print("interrupted after %.2f s" % (time.perf_counter() - start))
print({after})
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("\n")[:2]
    assert first.startswith("interrupted after"), r.stdout
    return float(first.split()[2]), second


def test_ctrl_c_stops_a_batch_promptly():
    setup = """
xs = [ag.Value(0.0, requires_grad=False) for _ in range(2)]
w = [ag.Value(0.5) for _ in range(40)]
y = xs[0]
for v in w:
    y = (y * v + xs[1]).tanh()
cg = ag.compile(y, inputs=xs)
X = np.ones((4_000_000, 2))  # seconds of work; copying it up front takes a fraction of one (longer under ASan)
"""
    took, after = ctrl_c_after(setup, "cg.forward(X)", "cg.forward(X[:10]).shape")
    assert took < 1.5
    assert after == "(10,)"  # still usable


FORK = """
import multiprocessing as mp
import numpy as np
import arenagrad as ag

def run(_):
    x = ag.Value(0.0, requires_grad=False)
    cg = ag.compile((x * ag.Value(2.0)).tanh(), inputs=[x])
    return float(cg.forward(np.arange(10_000.0).reshape(-1, 1) / 1e4).sum())

if __name__ == "__main__":
    ag.set_num_threads(2)
    here = run(0)  # starts the pool's threads in the parent
    with mp.get_context("fork").Pool(2) as pool:
        there = pool.map(run, range(4))
    print(all(t == here for t in there))
"""


def test_a_forked_child_gets_a_working_pool(tmp_path):
    script = tmp_path / "fork_pool.py"
    script.write_text(textwrap.dedent(FORK))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"


def test_value_and_grad_is_forward_then_backward_in_one_pass():
    """The same bits as forward(rows) then backward(grad_outputs): outputs, input
    gradients and the shared leaves' .grad; for 1 and 2 threads; and the graph is
    left as those two calls leave it: a backward() after it is the same rows'."""
    w = [ag.Value(0.3), ag.Value(-0.7)]
    x = [ag.Value(0.0, requires_grad=False) for _ in range(3)]
    outs = ag.softmax([x[0] * w[0], x[1].softplus(), x[2] * w[1]])
    loss = outs[0] * 2.0 + (x[0] * x[2] + w[0]).exp()
    cg = ag.compile([loss, outs[1]], inputs=x)
    rows = np.random.default_rng(3).normal(size=(203, 3))
    seeds = np.random.default_rng(4).normal(size=(203, 2))
    before = _core.get_num_threads()
    for threads in (1, 2):
        ag.set_num_threads(threads)
        for p in w:
            p.grad = 0.0
        y1, g1 = cg.forward(rows), cg.backward(seeds)
        shared1 = [p.grad for p in w]
        for p in w:
            p.grad = 0.0
        y2, g2 = cg.value_and_grad(rows, seeds)
        assert y2.tobytes() == y1.tobytes() and g2.tobytes() == g1.tobytes()
        assert [p.grad for p in w] == shared1
        for p in w:
            p.grad = 0.0
        assert cg.backward(seeds).tobytes() == g1.tobytes()
        assert [p.grad for p in w] == shared1
    ag.set_num_threads(before)
    single = ag.compile(loss, inputs=x)
    y, g = single.value_and_grad(rows)
    assert y.shape == (203,) and g.shape == (203, 3)
    assert y.tobytes() == single.forward(rows).tobytes()
    with pytest.raises(ValueError, match="grad_outputs must have the shape"):
        cg.value_and_grad(rows, seeds[:5])
    with pytest.raises(TypeError, match="compiled with inputs"):
        ag.compile(loss).value_and_grad(rows)
