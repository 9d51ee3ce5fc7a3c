"""Errors behave like Python floats, and a failed op leaves the graph as it was.

Each failing call is made against a live graph whose gradients are known by hand;
afterwards the arena holds exactly as many nodes as before and that graph still
backpropagates to the same gradients.
"""

from __future__ import annotations

import math

import arenagrad as ag
import pytest
from conftest import live
from op_reference import REFERENCE, engine_op

V = ag.Value
inf = float("inf")
nan = float("nan")


class Graph:
    """a = 2, b = -3, y = tanh(a*b) + a*a*b: gradients worked by hand."""

    def __init__(self):
        self.a, self.b = V(2.0), V(-3.0)
        self.mid = self.a * self.b
        self.y = self.mid.tanh() + self.a * self.a * self.b
        sech2 = 1 - math.tanh(-6.0) ** 2
        self.want_a = sech2 * -3.0 + 2 * 2.0 * -3.0
        self.want_b = sech2 * 2.0 + 2.0 * 2.0
        self.want_y = math.tanh(-6.0) + 4.0 * -3.0

    def check_intact(self):
        self.a.grad = 0.0
        self.b.grad = 0.0
        assert self.y.data == self.want_y
        self.y.backward()
        assert self.a.grad == pytest.approx(self.want_a, rel=1e-15)
        assert self.b.grad == pytest.approx(self.want_b, rel=1e-15)


@pytest.fixture
def graph():
    g = Graph()
    g.check_intact()
    return g


def expect_failure(graph, exc, fn, match=None):
    """fn(graph) raises exc; no node is leaked or freed; the graph still works."""
    before = live()
    with pytest.raises(exc, match=match) as info:
        fn(graph)
    del info  # the traceback holds frames, not nodes, but be strict
    assert live() == before, f"a failed op changed live_nodes from {before} to {live()}"
    graph.check_intact()


# --------------------------------------------------------------- arithmetic

ZERO_DIV = {
    "V/0": lambda g: g.y / 0,
    "V/0.0": lambda g: g.y / 0.0,
    "V/-0.0": lambda g: g.a / -0.0,
    "V/V(0)": lambda g: g.y / V(0.0),
    "V/(V-V)": lambda g: g.a / (g.b - g.b),
    "0/V(0)": lambda g: 0 / V(0.0),
    "number/V(0)": lambda g: 1.0 / (g.a * 0),
    "V(0)**-1": lambda g: V(0.0) ** -1,
    "V(0)**-0.5": lambda g: (g.a * 0) ** -0.5,
    "V(0)**V(-1)": lambda g: V(0.0) ** V(-1.0),
    "0**V(-1)": lambda g: 0 ** (g.b / 3),
    "nan/0": lambda g: V(nan) / 0,  # like float: nan / 0.0 raises too
    "inf/0": lambda g: V(inf) / 0,
}


@pytest.mark.parametrize("name", list(ZERO_DIV))
def test_zero_division(graph, name):
    expect_failure(graph, ZeroDivisionError, ZERO_DIV[name])


def test_zero_division_like_python_float():
    # The reference: Python's own float.
    with pytest.raises(ZeroDivisionError):
        1.0 / 0.0  # noqa: B018 (the expression is the test)
    with pytest.raises(ZeroDivisionError):
        0.0**-1


DOMAIN = {
    "log(0)": lambda g: V(0.0).log(),
    "log(-0.0)": lambda g: V(-0.0).log(),
    "log(-1)": lambda g: (g.a - 3).log(),
    "log(-inf)": lambda g: V(-inf).log(),
    "sqrt(-1)": lambda g: (g.a - 3).sqrt(),
    "sqrt(-1e-300)": lambda g: V(-1e-300).sqrt(),
    "V(-8)**(1/3)": lambda g: V(-8.0) ** (1 / 3),
    "V(-8)**V(0.5)": lambda g: V(-8.0) ** V(0.5),
    "(-8)**V(0.5)": lambda g: (-8) ** V(0.5),
    "b**0.5 in graph": lambda g: g.b**0.5,
    "sin(inf)": lambda g: V(inf).sin(),  # math.sin(inf) raises ValueError
    "cos(-inf)": lambda g: V(-inf).cos(),
}


@pytest.mark.parametrize("name", list(DOMAIN))
def test_domain_errors(graph, name):
    expect_failure(graph, ValueError, DOMAIN[name])


def test_domain_reference_is_math():
    for f, x in [(math.log, 0.0), (math.log, -1.0), (math.sqrt, -1.0), (math.sin, inf)]:
        with pytest.raises(ValueError):
            f(x)
    with pytest.raises(ValueError):
        math.pow(-8.0, 1 / 3)


OVERFLOW = {
    "exp(1000)": lambda g: V(1000.0).exp(),
    "exp(710)": lambda g: (g.a * 355).exp(),
    "V(10)**400": lambda g: V(10.0) ** 400,
    "10**V(400)": lambda g: 10 ** V(400.0),
    "V(10)**V(400)": lambda g: V(10.0) ** V(400.0),
    "V(-10)**401": lambda g: V(-10.0) ** 401,
    "y**400": lambda g: (g.y * 100) ** 400,
}


@pytest.mark.parametrize("name", list(OVERFLOW))
def test_overflow(graph, name):
    expect_failure(graph, OverflowError, OVERFLOW[name])


def test_overflow_reference_is_python():
    with pytest.raises(OverflowError):
        math.exp(1000)
    with pytest.raises(OverflowError):
        10.0**400  # noqa: B018 (the expression is the test)
    with pytest.raises(OverflowError):
        float(10**400)


def test_int_too_large_for_a_float(graph):
    expect_failure(graph, OverflowError, lambda g: V(10**400))
    expect_failure(graph, OverflowError, lambda g: g.a + 10**400)


def test_float_overflow_in_plain_arithmetic_is_inf_like_float():
    # 1e308 * 10 is inf for Python floats, without an exception.
    assert (V(1e308) * 10).data == 1e308 * 10 == inf
    assert (V(1e308) + V(1e308)).data == inf
    assert (V(-1e308) - 1e308).data == -inf


# ---------------------------------------------------------------- TypeError

BAD_OPERANDS = {
    "V+str": (lambda g: g.a + "a", "str"),
    "str+V": (lambda g: "a" + g.a, "str"),
    "V*None": (lambda g: g.y * None, "NoneType"),
    "None*V": (lambda g: None * g.y, "NoneType"),
    "V-list": (lambda g: g.a - [1.0], "list"),
    "V/dict": (lambda g: g.a / {}, "dict"),
    "V**str": (lambda g: g.a ** "2", "str"),
    "str**V": (lambda g: "2" ** g.a, "str"),
    "V+complex": (lambda g: g.a + 1j, "complex"),
    "pow(V,2,3)": (lambda g: pow(g.a, 2, 3), "int"),
    "Value('x')": (lambda g: V(data="x"), "str"),
    "Value(None)": (lambda g: V(None), "NoneType"),
    "Value([1.0])": (lambda g: V([1.0]), "list"),
    "Value(1j)": (lambda g: V(1j), "complex"),
    "sum([1,'a'])": (lambda g: ag.sum([1, "a"]), "str"),
    "sum([y,'a'])": (lambda g: ag.sum([g.y, g.a, "a"]), "str"),
    "sum(5)": (lambda g: ag.sum(5), "int"),
    "mean([a,None])": (lambda g: ag.mean([g.a, None]), "NoneType"),
    "dot([a],['x'])": (lambda g: ag.dot([g.a], ["x"]), "str"),
    "dot(['x'],[a])": (lambda g: ag.dot(["x"], [g.a]), "str"),
    # lists that start like the engine's fast paths (Values, or Values against floats)
    "dot([a,b],[1.0,'x'])": (lambda g: ag.dot([g.a, g.b], [1.0, "x"]), "str"),
    "dot((a,b),(b,None))": (lambda g: ag.dot((g.a, g.b), (g.b, None)), "NoneType"),
    "dot([1.0,'x'],[a,b])": (lambda g: ag.dot([1.0, "x"], [g.a, g.b]), "str"),
    "sum((a,b,None))": (lambda g: ag.sum((g.a, g.b, None)), "NoneType"),
    "logsumexp([a,object])": (lambda g: ag.logsumexp([g.a, object()]), "object"),
    "softmax([a,b,str])": (lambda g: ag.softmax([g.a, g.b, "c"]), "str"),
    "log_softmax([None])": (lambda g: ag.log_softmax([None]), "NoneType"),
    "leaky_relu('x')": (lambda g: g.a.leaky_relu("x"), "str"),
    "backward('x')": (lambda g: g.y.backward("x"), "str"),
}


@pytest.mark.parametrize("name", list(BAD_OPERANDS))
def test_type_errors_name_the_type(graph, name):
    fn, type_name = BAD_OPERANDS[name]
    expect_failure(graph, TypeError, fn, match=rf"\b{type_name}\b")


def test_dot_arity(graph):
    expect_failure(graph, TypeError, lambda g: ag.dot([g.a]))
    expect_failure(graph, TypeError, lambda g: ag.dot([g.a], [g.a], [g.a]))


# --------------------------------------------------------------- ValueError

EMPTY_OR_MISMATCHED = {
    "sum([])": lambda g: ag.sum([]),
    "sum(empty generator)": lambda g: ag.sum(x for x in []),
    "mean([])": lambda g: ag.mean([]),
    "logsumexp([])": lambda g: ag.logsumexp([]),
    "softmax([])": lambda g: ag.softmax([]),
    "log_softmax([])": lambda g: ag.log_softmax(()),
    "dot([],[])": lambda g: ag.dot([], []),
    "dot([a],[a,b])": lambda g: ag.dot([g.a], [g.a, g.b]),
    "dot([a,b],[1.0])": lambda g: ag.dot([g.a, g.b], [1.0]),
}


@pytest.mark.parametrize("name", list(EMPTY_OR_MISMATCHED))
def test_empty_and_mismatched_sequences(graph, name):
    expect_failure(graph, ValueError, EMPTY_OR_MISMATCHED[name])


# ------------------------------------------------------------ attributes


def test_setting_data_or_grad_to_a_non_number(graph):
    def set_data(g):
        g.a.data = "x"

    def set_grad(g):
        g.b.grad = None

    def set_mid_data(g):
        g.mid.data = [1.0]

    expect_failure(graph, TypeError, set_data, match="str")
    expect_failure(graph, TypeError, set_grad, match="NoneType")
    expect_failure(graph, TypeError, set_mid_data, match="list")
    assert graph.a.data == 2.0 and graph.mid.data == -6.0


def test_deleting_attributes(graph):
    def del_data(g):
        del g.a.data

    def del_grad(g):
        del g.a.grad

    expect_failure(graph, (AttributeError, TypeError), del_data)
    expect_failure(graph, (AttributeError, TypeError), del_grad)


def test_read_only_attributes(graph):
    def set_op(g):
        g.y.op = "+"

    def set_inputs(g):
        g.y.inputs = ()

    def set_is_leaf(g):
        g.y.is_leaf = True

    for f in (set_op, set_inputs, set_is_leaf):
        expect_failure(graph, AttributeError, f)
    assert graph.y.op == "+" and not graph.y.is_leaf


def test_requires_grad_on_non_leaf(graph):
    def set_rg(g):
        g.mid.requires_grad = False

    expect_failure(graph, RuntimeError, set_rg)
    assert graph.mid.requires_grad


def test_backward_without_grad(graph):
    expect_failure(graph, RuntimeError, lambda g: V(1.0, requires_grad=False).backward())
    expect_failure(graph, RuntimeError, lambda g: (g.y.detach() * 2).backward())


def test_many_failures_leak_nothing(graph):
    before = live()
    for _ in range(2000):
        for f in (
            lambda: graph.y / 0,
            lambda: graph.b.log(),
            lambda: V(1000.0).exp(),
            lambda: graph.a + "a",
            lambda: ag.sum([graph.a, graph.b, "x"]),
            lambda: ag.dot([graph.a], [graph.a, graph.b]),
        ):
            try:
                f()
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                pass
            else:
                pytest.fail("expected an exception")
    assert live() == before
    graph.check_intact()


# ------------------------------------------------------- NaN and infinity


def test_nan_propagates_without_exceptions():
    assert math.isnan((V(nan) + 1).data)
    assert math.isnan((1 + V(nan)).data)
    assert math.isnan((V(nan) * 0).data)
    assert math.isnan((V(inf) - V(inf)).data)
    assert math.isnan((V(inf) * 0).data)
    assert math.isnan((V(nan) / 2).data)
    assert math.isnan(ag.sum([V(nan), 1.0]).data)
    assert math.isnan(ag.dot([V(nan)], [1.0]).data)
    assert math.isnan(ag.logsumexp([V(nan), 1.0]).data)
    a = V(nan)
    y = a * a
    y.backward()
    assert math.isnan(y.data) and math.isnan(a.grad)
    assert not (V(nan) < 1) and not (V(nan) > 1)


@pytest.mark.parametrize("name", [name for name, ref in REFERENCE.items() if ref.arity == "unary"])
def test_unary_ops_propagate_nan(name):
    """Every unary op maps NaN to NaN without raising, as its plain-float reference
    does (relu too: torch.relu(nan) and micrograd's relu(nan) are nan)."""
    assert math.isnan(REFERENCE[name].f(nan))
    y = engine_op(name)(V(nan))
    assert math.isnan(y.data), f"{name}(nan) = {y.data}, expected nan"


@pytest.mark.parametrize(
    "name,x,want",
    [
        ("exp", inf, inf),  # math.exp(inf) is inf: not an overflow
        ("exp", -inf, 0.0),
        ("log", inf, inf),
        ("sqrt", inf, inf),
        ("tanh", inf, 1.0),
        ("tanh", -inf, -1.0),
        ("sigmoid", inf, 1.0),
        ("sigmoid", -inf, 0.0),
        ("softplus", inf, inf),
        ("softplus", -inf, 0.0),
        ("relu", inf, inf),
        ("relu", -inf, 0.0),
        ("abs", -inf, inf),
    ],
)
def test_unary_ops_at_infinity(name, x, want):
    assert getattr(V(x), name)().data == want


POW_SPECIAL = [
    (nan, 0.0),
    (1.0, nan),
    (inf, -1.0),
    (-inf, 3.0),
    (-inf, 2.0),
    (2.0, inf),
    (0.5, -inf),
    (-1.0, inf),
    (0.0, inf),
    (inf, 0.5),
    (nan, -1.0),
    (-2.0, nan),
    (-0.0, 0.5),
    (2.0, -1075.0),
    # IEEE pow special cases: Python's float ** (and math.pow) give inf, inf
    # and 0.0 here, not ValueError/ZeroDivisionError: the domain checks are
    # for finite negative bases and a zero base with a finite negative power.
    (-inf, 0.5),
    (0.0, -inf),
    (-inf, -0.5),
]


@pytest.mark.parametrize("x,p", POW_SPECIAL, ids=[f"{x}**{p}" for x, p in POW_SPECIAL])
def test_pow_special_values_like_python_float(x, p):
    want = x**p  # Python's float: the reference the design names
    for form, make in (("V**n", lambda: V(x) ** p), ("V**V", lambda: V(x) ** V(p)), ("n**V", lambda: x ** V(p))):
        try:
            got = make()
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{form} with ({x}) ** ({p}) raised {type(e).__name__}: {e}; Python's float gives {want!r}")
        assert isinstance(got, ag.Value)
        if math.isnan(want):
            assert math.isnan(got.data)
        else:
            assert got.data == want, f"({x}) ** ({p}): engine {got.data}, Python {want}"
