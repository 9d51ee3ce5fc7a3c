"""detect_anomaly: the first NaN or infinity raises FloatingPointError naming the op."""

from __future__ import annotations

import math
import threading

import arenagrad as ag
import pytest
from conftest import live


def test_off_by_default_nan_and_inf_propagate_as_floats():
    x = ag.Value(float("inf"))
    assert math.isnan((x - x).data)
    assert (ag.Value(1e308) * 10).data == math.inf


@pytest.mark.parametrize(
    "make, op",
    [
        (lambda x: x * 1e308 * 10, "*"),
        (lambda x: x - float("inf") + float("inf"), "-"),
        (lambda x: ag.sum([x, float("inf")]), "sum"),
        (lambda x: ag.dot([x, x], [1e308, 1e308]), "dot"),
        (lambda x: ag.logsumexp([x, float("inf")]), "logsumexp"),
        (lambda x: ag.softmax([x, float("nan")]), "softmax"),
        (lambda x: (x * float("nan")).relu(), "*"),
    ],
)
def test_forward_raises_naming_the_op_and_builds_nothing(make, op):
    x = ag.Value(2.0)
    before = live()
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=re_op(op)):
            make(x)
    assert live() == before
    make(x)  # outside the block: no error


def re_op(op: str) -> str:
    return "^" + "".join("\\" + c if not c.isalnum() else c for c in op) + " produced"


def test_backward_raises_naming_the_op():
    x = ag.Value(0.0)
    y = x.sqrt() * 0.0 + 1.0  # d sqrt at 0 is inf; times 0 is nan
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"^sqrt produced nan in backward"):
            y.backward()
    assert math.isnan(x.grad)


def test_compiled_replay_checks_too():
    x = ag.Value(1.0)
    y = (x * 2).exp()
    step = ag.compile(y)
    x.data = 400.0  # exp(800) overflows: the replay raises OverflowError as eager does
    with pytest.raises(OverflowError):
        step.forward()
    x.data = float("inf")
    step.forward()  # inf in, inf out: floats propagate
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"\* produced inf"):
            step.forward()
    z = ag.Value(0.0)
    w = z.sqrt() * 0.0
    s = ag.compile(w)
    with ag.detect_anomaly():
        s.forward()
        with pytest.raises(FloatingPointError, match=r"^sqrt produced nan in backward"):
            s.backward()


def test_mode_is_per_thread_and_restored():
    seen = []
    with ag.detect_anomaly():
        t = threading.Thread(target=lambda: seen.append(ag.is_anomaly_enabled()))
        t.start()
        t.join()
        assert ag.is_anomaly_enabled()
    assert seen == [False] and not ag.is_anomaly_enabled()

    @ag.detect_anomaly()
    def f():
        return ag.is_anomaly_enabled()

    assert f() and not ag.is_anomaly_enabled()
