"""arenagrad.Value speaks micrograd's dialect: the lecture's constructor, label and
other attributes, _backward (stepped by hand, and as the closure of a custom op),
subclasses and methods added at run time.

The references are the formulas (and finite differences), never the engine."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import textwrap

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import Value, _core
from conftest import fd_grad, live


# micrograd's tanh, as the lecture writes it: a node built from its children,
# its backward a closure over self, t and out.
def lecture_tanh(self):
    x = self.data
    t = (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)
    out = Value(t, (self,), "tanh")

    def _backward():
        self.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


def lecture_mul(self, other):
    out = Value(self.data * other.data, (self, other), "*")

    def _backward():
        self.grad += other.data * out.grad
        other.grad += self.data * out.grad

    out._backward = _backward
    return out


# ------------------------------------------------------------------ the constructor


def test_positional_children_and_op_as_micrograd_writes_them():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = Value(a.data * b.data, (a, b), "*", "c")
    assert c.data == -6.0 and c._op == "*" and c.label == "c"
    assert c._prev == {a, b} and set(c.inputs) == {a, b}
    assert not c.is_leaf and c.requires_grad


def test_requires_grad_is_keyword_only():
    with pytest.raises(TypeError, match="_children"):
        Value(1.0, False)  # micrograd's second argument is the children
    assert Value(1.0, requires_grad=False).requires_grad is False
    assert Value(1.0, (), "", "x", requires_grad=True).label == "x"


@pytest.mark.parametrize(
    "args, err",
    [
        ((1.0, (1.0,)), TypeError),  # children must be Values
        ((1.0, "ab"), TypeError),
        ((1.0, (), 3), TypeError),  # _op must be a str
        ((1.0, (), "", 3), TypeError),  # label too
    ],
)
def test_constructor_rejects_what_micrograd_code_never_passes(args, err):
    before = live()
    with pytest.raises(err):
        Value(*args)
    assert live() == before


def test_size_one_arrays_are_their_element():
    assert Value(np.array([1.5])).data == 1.5
    assert Value(np.array(2.5)).data == 2.5
    assert Value(np.float32(0.5)).data == 0.5
    with pytest.raises(TypeError):
        Value(np.array([1.0, 2.0]))


def test_children_under_no_grad_make_a_leaf():
    a = Value(1.0)
    with ag.no_grad():
        c = Value(2.0, (a,), "f")
    assert c.is_leaf and c.inputs == ()


# ------------------------------------------------------------------ attributes


def test_label_and_any_attribute():
    v = Value(1.0)
    assert v.label == "" and v.__dict__ == {}  # nothing made until used
    v.label = "L"
    v.note = [1, 2]
    assert v.label == "L" and v.note == [1, 2] and v.__dict__ == {"label": "L", "note": [1, 2]}
    w = v * 2  # a node made by an op takes attributes too
    w.label = "w"
    assert w.label == "w" and w.inputs[0].label == "L"
    del v.note
    with pytest.raises(AttributeError):
        v.note  # noqa: B018
    with pytest.raises(AttributeError):
        del v.note


def test_attributes_may_refer_back_and_are_collected():
    before = live()
    for _ in range(100):
        v = Value(1.0) * 3
        v.me = v  # a cycle through the attributes
    del v
    assert live() == before


# ------------------------------------------------------------------ _backward


def test_hand_stepping_an_engine_graph_as_in_the_lecture():
    # o = tanh(a*b + c): o.grad = 1, then each node's _backward in turn.
    a, b, c = Value(2.0), Value(-3.0), Value(10.0)
    e = a * b
    d = e + c
    o = d.tanh()
    o.grad = 1.0
    o._backward()
    assert d.grad == pytest.approx(1 - math.tanh(4.0) ** 2, rel=1e-15)
    d._backward()
    assert e.grad == d.grad and c.grad == d.grad
    e._backward()
    assert a.grad == pytest.approx(-3.0 * d.grad, rel=1e-15) and b.grad == pytest.approx(2.0 * d.grad, rel=1e-15)
    a._backward()  # a leaf's step does nothing
    assert a.grad == pytest.approx(-3.0 * d.grad, rel=1e-15)


def test_custom_ops_give_the_gradient_of_their_formula():
    def f(x, y):
        return lecture_tanh(lecture_mul(x, y) + x)

    def plain(x, y):
        return math.tanh(x * y + x)

    for xs in [(0.3, -0.7), (1.2, 0.4), (-0.5, 2.0)]:
        x, y = Value(xs[0]), Value(xs[1])
        out = f(x, y)
        out.backward()
        assert out.data == pytest.approx(plain(*xs), rel=1e-14)
        assert [x.grad, y.grad] == pytest.approx(fd_grad(plain, xs), rel=1e-7)


def test_custom_op_inside_an_engine_graph_and_backward_twice():
    x = Value(0.5)
    y = lecture_tanh(x) * 2.0 + x.exp()  # the custom node's wrapper is a temporary
    y.backward()
    want = 2 * (1 - math.tanh(0.5) ** 2) + math.exp(0.5)
    assert x.grad == pytest.approx(want, rel=1e-14)
    y.backward()  # leaves accumulate; the custom node's grad is recomputed, not re-added
    assert x.grad == pytest.approx(2 * want, rel=1e-14)


def test_a_custom_node_without_backward_passes_nothing():
    x = Value(1.0)
    out = Value(2.0 * x.data, (x,), "double")  # no _backward assigned, as micrograd's default
    out.backward()
    assert x.grad == 0.0 and out.grad == 1.0


def test_backward_setter_rules():
    x = Value(1.0)
    with pytest.raises(AttributeError, match="Value\\(data, children, op\\)"):
        (x * 2)._backward = lambda: None
    with pytest.raises(AttributeError):
        x._backward = lambda: None
    out = Value(1.0, (x,), "f")
    with pytest.raises(TypeError, match="callable"):
        out._backward = 3


def test_an_error_in_a_closure_comes_out_of_backward_and_leaves_the_engine_sound():
    x = Value(1.0)
    out = Value(1.0, (x,), "f")

    def _backward():
        raise KeyError("boom")

    out._backward = _backward
    with pytest.raises(KeyError, match="boom"):
        (out * 3).backward()
    _core._check_invariants()
    (x * 2).backward()  # the engine still works
    assert x.grad == 2.0


def test_a_closure_cannot_start_another_backward_or_compile():
    x = Value(1.0)
    out = Value(1.0, (x,), "f")
    seen = []

    def _backward():
        for start in (lambda: (x * 2).backward(), lambda: ag.compile(x * 2)):
            try:
                start()
            except RuntimeError as e:
                seen.append(str(e))
        gc.collect()  # the collector may run mid-sweep: nothing in the graph goes

    out._backward = _backward
    (out * 2).backward()
    assert len(seen) == 2 and all("_backward" in s for s in seen)
    _core._check_invariants()


def test_compile_refuses_python_backward():
    out = lecture_tanh(Value(0.2))
    with pytest.raises(TypeError, match="_backward"):
        ag.compile(out * 2)


def test_custom_chains_are_collected_in_one_pass():
    before = live()
    x = Value(0.1)
    y = x
    for _ in range(20_000):  # no recursion anywhere: building, backward, collection
        y = lecture_tanh(y)
    y.backward()
    assert x.grad != 0.0
    del y
    assert live() == before + 1  # x


# ------------------------------------------------------------------ extending the type


def test_subclasses_are_values():
    class ValueExt(Value):
        def double(self):
            return self * 2

    v = ValueExt(3.0, label="v")
    assert isinstance(v, Value) and v.label == "v"
    w = v.double() + v
    assert type(w) is Value and w.data == 9.0  # ops return plain Values, as micrograd's do
    w.backward()
    assert v.grad == 3.0
    z = ag.sum([v, v]) * Value(2.0, (v,), "f")  # subclass instances are operands anywhere
    assert z.data == 12.0
    _core._check_invariants()


def test_methods_added_at_run_time():
    def sigmoid(self):
        return 1 / (1 + (-self).exp())

    Value.sigmoid_added = sigmoid
    try:
        x = Value(0.3)
        y = x.sigmoid_added()
        y.backward()
        s = 1 / (1 + math.exp(-0.3))
        assert y.data == pytest.approx(s, rel=1e-15) and x.grad == pytest.approx(s * (1 - s), rel=1e-14)
    finally:
        del Value.sigmoid_added
    assert not hasattr(Value(1.0), "sigmoid_added")


# ------------------------------------------------------------------ in a child process


def test_exit_with_custom_cycles_alive_is_clean():
    code = textwrap.dedent(
        """
        import math, arenagrad as ag
        from arenagrad import Value
        def t(self):
            out = Value(math.tanh(self.data), (self,), 'tanh')
            def _backward():
                self.grad += (1 - out.data ** 2) * out.grad
            out._backward = _backward
            return out
        keep = []
        for i in range(1000):
            y = t(t(Value(i / 1000)))
            y.label = 'y'
            keep.append(y)
        keep[-1].backward()
        print('ok')
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
