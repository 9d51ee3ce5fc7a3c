"""``arenagrad minimize --method``: gradient descent, momentum, L-BFGS and Newton on the
same function, checked against the analytic derivatives of Rosenbrock's function
written out here (not the engine's), and the command's picture and errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from arenagrad.cli import main
from arenagrad.demos import MinimizeConfig, run_minimize
from arenagrad.descent import FUNCTIONS, descend
from arenagrad.options import OptionError, check_options

PNG = b"\x89PNG\r\n\x1a\n"
ROSENBROCK = FUNCTIONS["rosenbrock"]


def grad(x, y):
    """Rosenbrock's gradient, (1 - x)^2 + 100 (y - x^2)^2, by hand."""
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def hessian(x, y):
    return np.array([[2 - 400 * (y - x * x) + 800 * x * x, -400 * x], [-400 * x, 200.0]])


def test_gradient_descent_and_momentum_take_torch_sgds_steps():
    lr, p = 0.001, np.array([-1.2, 1.0])
    gd = descend("gd", ROSENBROCK, steps=2)
    for i in range(2):
        p = p - lr * grad(*p)
        np.testing.assert_allclose([gd.xs[i + 1], gd.ys[i + 1]], p, rtol=1e-13)
    # momentum 0.9: b = g on the first step, b = 0.9 b + g after (torch.optim.SGD)
    mo = descend("momentum", ROSENBROCK, steps=3)
    p, b = np.array([-1.2, 1.0]), None
    for i in range(3):
        g = grad(*p)
        b = g if b is None else 0.9 * b + g
        p = p - lr * b
        np.testing.assert_allclose([mo.xs[i + 1], mo.ys[i + 1]], p, rtol=1e-13)
    assert gd.status == "ran 2 steps" and gd.evaluations == 3


def test_newton_takes_exact_newton_steps_and_converges():
    path = descend("newton", ROSENBROCK, steps=50)
    p = np.array([-1.2, 1.0])
    for i in range(3):
        p = p - np.linalg.solve(hessian(*p), grad(*p))
        np.testing.assert_allclose([path.xs[i + 1], path.ys[i + 1]], p, rtol=1e-12)
    assert abs(path.xs[-1] - 1) < 1e-12 and abs(path.ys[-1] - 1) < 1e-12
    assert path.status.startswith("converged") and len(path.fs) <= 10


def test_lbfgs_converges_with_the_engines_gradients():
    pytest.importorskip("scipy")
    path = descend("lbfgs", ROSENBROCK, steps=200)
    assert abs(path.xs[-1] - 1) < 1e-5 and abs(path.ys[-1] - 1) < 1e-5
    assert path.fs[-1] < 1e-10
    assert 0 < path.evaluations < 100


def test_newton_stops_where_the_hessian_is_singular():
    # relu((x - y)^3 + exp(y)) + y: once the relu is off f is y alone, its Hessian 0
    path = descend("newton", FUNCTIONS["cubic"], start=(-5.0, 0.0), steps=10)
    assert path.status == "stopped after 0 steps: the Hessian is singular there"
    assert path.fs == [0.0]


def test_a_method_that_overflows_keeps_its_path_so_far():
    path = descend("gd", ROSENBROCK, lr=0.05, steps=100)
    assert path.status.startswith("left the domain of f after ")
    assert len(path.fs) < 101 and np.isfinite(path.fs).all()


def test_the_command_compares_methods_on_one_picture(tmp_path, capsys):
    code = main(
        ["minimize", "--function", "rosenbrock", "--method", "gd", "momentum", "newton", "--out", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("minimize: from f = 24.2000, gd ") and "; newton 0 in 7 steps" in out
    assert "newton: converged: |gradient| < 1e-10 after 7 steps, 8 evaluations of f" in err
    assert (tmp_path / "minimize.png").read_bytes()[:8] == PNG


def test_lbfgs_without_scipy_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(OptionError, match="needs scipy"):
        run_minimize(MinimizeConfig(method=["lbfgs"], out=str(tmp_path), plot=False))


def test_unknown_methods_are_refused():
    with pytest.raises(OptionError, match="unknown method 'adam'"):
        check_options(MinimizeConfig(method=["gd", "adam"]))
    with pytest.raises(SystemExit):
        main(["minimize", "--method", "adam"])
    with pytest.raises(ValueError, match="unknown method"):
        descend("adam", ROSENBROCK)
