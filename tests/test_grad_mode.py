"""Grad-mode switches on generator functions, and their setters' argument checks."""

import inspect

import arenagrad as ag
import pytest
from arenagrad import _core


@pytest.fixture(autouse=True)
def _modes_restored():
    assert ag.is_grad_enabled() and not ag.is_anomaly_enabled()
    yield
    grad, anomaly = ag.is_grad_enabled(), ag.is_anomaly_enabled()
    _core.set_grad_enabled(True)  # restore before failing, so one failure stays one
    _core.set_detect_anomaly(False)
    assert grad, "the test left recording off"
    assert not anomaly, "the test left anomaly detection on"


def _records() -> bool:
    """Does an op on a Value record a graph right now?"""
    return (ag.Value(1.0) * 2.0).requires_grad


# ------------------------------------------------------------------ generators


def test_no_grad_on_a_generator_covers_its_body_but_not_the_caller():
    seen = []

    @ag.no_grad()
    def gen(n):
        for i in range(n):
            seen.append(("body", ag.is_grad_enabled(), _records()))
            yield i

    assert inspect.isgeneratorfunction(gen)
    it = gen(3)
    assert ag.is_grad_enabled()  # creating it runs nothing
    for _ in it:
        # The caller's code between yields keeps the caller's mode.
        seen.append(("caller", ag.is_grad_enabled(), _records()))
    assert seen == [("body", False, False), ("caller", True, True)] * 3


def test_no_grad_without_parentheses_on_a_generator():
    @ag.no_grad
    def gen():
        yield ag.is_grad_enabled()
        yield ag.is_grad_enabled()

    out = []
    for v in gen():
        out.append((v, ag.is_grad_enabled()))
    assert out == [(False, True), (False, True)]


def test_enable_grad_on_a_generator_inside_no_grad():
    @ag.enable_grad()
    def gen():
        yield _records()
        yield _records()

    with ag.no_grad():
        out = []
        for v in gen():
            out.append((v, ag.is_grad_enabled(), _records()))
    assert out == [(True, False, False)] * 2


def test_detect_anomaly_on_a_generator():
    @ag.detect_anomaly()
    def gen():
        yield ag.is_anomaly_enabled()
        yield ag.is_anomaly_enabled()

    out = [(v, ag.is_anomaly_enabled()) for v in gen()]
    assert out == [(True, False), (True, False)]


def test_generator_mode_is_set_per_resumption_from_the_callers_current_mode():
    @ag.no_grad()
    def gen():
        yield ag.is_grad_enabled()
        yield ag.is_grad_enabled()

    it = gen()
    assert next(it) is False and ag.is_grad_enabled()
    with ag.no_grad():
        assert next(it) is False
        assert not ag.is_grad_enabled()  # the caller's no_grad is still on after the yield
    assert ag.is_grad_enabled()


def test_generator_send_throw_close_and_return_value():
    log = []

    @ag.no_grad()
    def echo():
        received = yield "ready"
        log.append(("send", received, ag.is_grad_enabled()))
        try:
            yield received * 2
        except KeyError as e:
            log.append(("throw", e.args[0], ag.is_grad_enabled()))
        try:
            yield "caught"
        except GeneratorExit:
            log.append(("close", None, ag.is_grad_enabled()))
            raise

    it = echo()
    assert next(it) == "ready"
    assert it.send(5) == 10 and ag.is_grad_enabled()
    assert it.throw(KeyError("k")) == "caught" and ag.is_grad_enabled()
    it.close()
    assert ag.is_grad_enabled()
    assert log == [("send", 5, False), ("throw", "k", False), ("close", None, False)]

    @ag.no_grad()
    def returns():
        yield 1
        return "done"

    def outer():
        result = yield from returns()
        return result

    g = outer()
    assert next(g) == 1
    with pytest.raises(StopIteration) as stop:
        next(g)
    assert stop.value.value == "done"


def test_generator_exception_propagates_and_mode_is_restored():
    @ag.no_grad()
    def boom():
        yield 1
        raise ValueError("inside")

    it = boom()
    next(it)
    with pytest.raises(ValueError, match="inside"):
        next(it)
    assert ag.is_grad_enabled()

    @ag.no_grad()
    def boom_first():
        raise RuntimeError("at once")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="at once"):
        next(boom_first())
    assert ag.is_grad_enabled()


def test_an_unfinished_generator_leaves_the_mode_alone():
    @ag.no_grad()
    def gen():
        yield 1
        yield 2

    it = gen()
    next(it)
    del it  # closed by the garbage collector, inside no_grad, then restored
    assert ag.is_grad_enabled() and _records()


def test_plain_functions_still_decorated_as_before():
    @ag.no_grad()
    def f():
        return ag.is_grad_enabled()

    assert f() is False and ag.is_grad_enabled()


# ------------------------------------------------------------ setters' arguments


@pytest.mark.parametrize("bad", [None, 0, 1, 2.5, "yes", [True]])
def test_set_grad_enabled_takes_a_bool_only(bad):
    with pytest.raises(TypeError, match="set_grad_enabled.*expects a bool"):
        ag.set_grad_enabled(bad)
    assert ag.is_grad_enabled()  # unchanged


@pytest.mark.parametrize("bad", [None, 0, "on"])
def test_set_detect_anomaly_and_detect_anomaly_take_a_bool_only(bad):
    with pytest.raises(TypeError, match="expects a bool"):
        ag.set_detect_anomaly(bad)
    with pytest.raises(TypeError, match="detect_anomaly.*expects a bool"):
        ag.detect_anomaly(bad)
    assert not ag.is_anomaly_enabled()


def test_set_grad_enabled_still_returns_the_previous_mode():
    try:
        assert ag.set_grad_enabled(False) is True
        assert not _records()
        assert ag.set_grad_enabled(True) is False
        assert _records()
    finally:
        ag.set_grad_enabled(True)
