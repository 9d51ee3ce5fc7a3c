"""pickle and copy.deepcopy of Values (leaves, and graphs as their reachable
subgraph), models and compiled graphs; corrupted pickles are refused."""

from __future__ import annotations

import copy
import gc
import math
import pickle

import arenagrad as ag
import pytest
from arenagrad import Value, _core, nn
from arenagrad.micrograd.engine import Value as MicrogradValue


def graph():
    a, b = Value(2.0, label="a"), Value(-3.0)
    c = (a * b + 1.5).tanh()
    c.label = "c"
    d = ag.sum([c, a, 2.0]) + ag.dot([a, b], [1.0, 2.0]) + a.leaky_relu(0.2) * 0.5
    return a, b, d


def grads_by_formula(a, b):
    t = math.tanh(a * b + 1.5)
    dt = 1 - t * t
    return dt * b + 1 + 1 + 0.5, dt * a + 2.0  # leaky_relu(2.0) is 2.0: slope 1


def walk(root):
    seen, todo = {}, [root]
    while todo:
        v = todo.pop()
        if id(v) not in seen:
            seen[id(v)] = v
            todo.extend(v.inputs)
    return list(seen.values())


@pytest.mark.parametrize("copier", [lambda x: pickle.loads(pickle.dumps(x)), copy.deepcopy], ids=["pickle", "deepcopy"])
def test_a_graph_comes_back_whole(copier):
    a, b, d = graph()
    d2, a2 = copier([d, a])
    assert d2.data == d.data and d2.op == d.op
    labels = {v.label for v in walk(d2)}
    assert {"a", "c"} <= labels
    assert any(v is a2 for v in walk(d2))  # the leaf pickled beside it is the one in its graph
    d2.backward()
    assert (a2.grad, walk(d2)) and a.grad == 0.0  # the copy's leaves, not the original's
    b2 = next(v for v in walk(d2) if v.is_leaf and v.data == -3.0)
    assert [a2.grad, b2.grad] == pytest.approx(grads_by_formula(2.0, -3.0), rel=1e-14)


def test_leaves_keep_what_they_hold():
    v = Value(1.5, requires_grad=False, label="x")
    v.grad = 0.25
    v.extra = [1, 2]
    w = pickle.loads(pickle.dumps(v))
    assert (w.data, w.grad, w.requires_grad, w.label, w.extra) == (1.5, 0.25, False, "x", [1, 2])


def test_shared_nodes_stay_shared():
    a = Value(0.5)
    u = a.exp()
    v = u * u + u
    v2 = pickle.loads(pickle.dumps(v))
    uu = v2.inputs[0]
    assert uu.inputs[0] is uu.inputs[1] is v2.inputs[1]
    v2.backward()
    leaf = uu.inputs[0].inputs[0]
    assert leaf.grad == pytest.approx(2 * math.exp(1.0) + math.exp(0.5), rel=1e-14)


def test_a_million_node_chain():
    x = Value(0.5)
    y = x
    for _ in range(1_000_000):
        y = y * 1.0
    y2 = pickle.loads(pickle.dumps(y, protocol=pickle.HIGHEST_PROTOCOL))
    y2.backward()
    leaf = y2
    for _ in range(1_000_000):
        leaf = leaf.inputs[0]
    assert leaf.is_leaf and leaf.grad == 1.0 and x.grad == 0.0
    del y, y2, leaf
    gc.collect()


def test_models_and_compiled_graphs():
    model = nn.MLP(2, [4, 1], seed=0)
    twin = copy.deepcopy(model)
    assert [p.data for p in twin.parameters()] == [p.data for p in model.parameters()]
    assert not set(map(id, twin.parameters())) & set(map(id, model.parameters()))
    back = pickle.loads(pickle.dumps(model))
    assert back([0.3, -0.2]).data == model([0.3, -0.2]).data

    a, b, d = graph()
    step = ag.compile([d, b * 2])
    step2 = pickle.loads(pickle.dumps(step))
    assert step2.forward() == step.forward()
    leaves2 = step2.leaves
    assert len(leaves2) == 2 and not {id(v) for v in leaves2} & {id(a), id(b)}
    step2.backward([1.0, 0.0])
    a2 = next(v for v in leaves2 if v.data == 2.0)
    assert a2.grad == pytest.approx(grads_by_formula(2.0, -3.0)[0], rel=1e-14)


def test_micrograd_values_keep_their_class():
    z = MicrogradValue(2.0) * 3 + 1
    z2 = pickle.loads(pickle.dumps(z))
    assert type(z2) is MicrogradValue and z2._op == "+" and z2.data == 7.0
    assert sorted(v.data for v in z2._prev) == [1.0, 6.0]


def test_python_backward_is_refused():
    x = Value(1.0)
    out = Value(1.0, (x,), "f")
    out._backward = lambda: None
    with pytest.raises(TypeError, match="_backward"):
        pickle.dumps(out * 2)


def corrupted():
    _, _, d = graph()
    fn, (cls, leaves, table, attrs, root) = d.__reduce__()
    yield "root out of range", (cls, leaves, table, attrs, 10**6)
    yield "root is a leaf", (cls, leaves, table, attrs, 0)
    yield "forward reference", (cls, leaves, [table[0][:5] + ((len(leaves) + 5, None),)] + table[1:], attrs, root)
    yield "bad op", (cls, leaves, [(250,) + table[0][1:]] + table[1:], attrs, root)
    yield "leaf op", (cls, leaves, [(0,) + table[0][1:]] + table[1:], attrs, root)
    yield "flags", (cls, leaves, [(table[0][0], 255) + table[0][2:]] + table[1:], attrs, root)
    yield "not a tuple", (cls, leaves, ["row"] + table[1:], attrs, root)
    yield "negative index", (cls, leaves, [table[0][:5] + ((-1, None),)] + table[1:], attrs, root)
    yield "leaf is not a Value", (cls, [1.0] + leaves[1:], table, attrs, root)
    yield "not a Value class", (int, leaves, table, attrs, root)
    yield "attrs key", (cls, leaves, table, {"x": {"label": "y"}}, root)
    yield "attrs value", (cls, leaves, table, {root: {3: "y"}}, root)
    yield "huge n-ary", (cls, leaves, table[:-1] + [(table[-1][0], 0, 0.0, 0.0, 0.0, (0,) * 3)], attrs, root)


@pytest.mark.parametrize("what, args", list(corrupted()), ids=[w for w, _ in corrupted()])
def test_corrupted_pickles_are_refused(what, args):
    before = ag.engine_stats()["live_nodes"]
    with pytest.raises((ValueError, TypeError)):
        _core._restore(*args)
    gc.collect()
    _core._check_invariants()
    assert ag.engine_stats()["live_nodes"] <= before


def test_a_leaf_class_that_makes_something_else_is_refused():
    class Odd(Value):
        def __new__(cls, *args, **kwargs):
            return 3

    with pytest.raises(ValueError, match="not a Value"):
        _core._restore(Odd, 1.0, 0.0, True, None)
    w = _core._restore(Value, 3, 0.5, False, None)  # an int's data comes back as one
    assert (w.data, type(w.data), w.grad, w.requires_grad) == (3, int, 0.5, False)
