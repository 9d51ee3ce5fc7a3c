"""The optimisers ``arenagrad minimize`` compares on a function of two Values: gradient
descent and momentum (``optim.SGD``), L-BFGS (scipy, with the engine's exact gradients)
and Newton's method (the exact Hessian of the compiled graph)::

    from arenagrad.descent import FUNCTIONS, descend

    path = descend("newton", FUNCTIONS["rosenbrock"], steps=50)
    path.fs[-1], path.status     # 0.0, "converged: |gradient| < 1e-10 after 7 steps"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ._core import Value

__all__ = ["Function", "FUNCTIONS", "METHODS", "Path", "descend"]

#: Momentum's factor, as the lecture's and PyTorch's examples use.
MOMENTUM = 0.9
#: Newton stops with the gradient's norm below this; it is L-BFGS's gtol.
GTOL = 1e-10


@dataclass(frozen=True)
class Function:
    """A function of two Values with the start and step size that suit it."""

    f: Callable[[Value, Value], Value]
    formula: str
    start: Tuple[float, float]
    lr: float
    minimum: Optional[Tuple[float, float]] = None  # where it is, if it has one


FUNCTIONS: Dict[str, Function] = {
    # micrograd's README example turned into a descent: no minimum (see the CLI's help).
    "cubic": Function(
        lambda x, y: ((x - y) ** 3 + y.exp()).relu() + y, "relu((x - y)^3 + exp(y)) + y", (1.0, 2.0), 0.05
    ),
    # The classic curved valley: plain descent crawls along it, Newton jumps.
    "rosenbrock": Function(
        lambda x, y: (1 - x) ** 2 + 100 * (y - x * x) ** 2,
        "(1 - x)^2 + 100 (y - x^2)^2",
        (-1.2, 1.0),
        0.001,
        (1.0, 1.0),
    ),
}

METHODS = ("gd", "momentum", "lbfgs", "newton")


@dataclass
class Path:
    """The points a method visited, from the start, ``f`` at each, and how it ended."""

    method: str
    xs: List[float] = field(default_factory=list)
    ys: List[float] = field(default_factory=list)
    fs: List[float] = field(default_factory=list)
    evaluations: int = 0  # calls of f (with its gradient, or Hessian for newton)
    status: str = ""

    def visit(self, x: float, y: float, f: float) -> None:
        self.xs.append(x)
        self.ys.append(y)
        self.fs.append(f)


def descend(
    method: str,
    fn: Function,
    start: Optional[Tuple[float, float]] = None,
    lr: Optional[float] = None,
    steps: int = 200,
) -> Path:
    """Minimise ``fn`` from ``start`` (default: the function's) with ``method``.

    ``gd`` and ``momentum`` take ``steps`` steps of size ``lr`` (default: the
    function's); ``lbfgs`` and ``newton`` take at most ``steps``: Newton stops once the
    gradient's norm is below 1e-10, L-BFGS when scipy's tests say it has converged
    (``gtol`` 1e-10, or too small a relative reduction of f). A method that leaves f's
    domain (an overflow, a math domain error) stops there; its status says so and its
    path ends at the last good point.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    x0, y0 = start if start is not None else fn.start
    run = {"gd": _sgd, "momentum": _sgd, "lbfgs": _lbfgs, "newton": _newton}[method]
    path = Path(method)
    try:
        run(path, fn, float(x0), float(y0), fn.lr if lr is None else lr, steps)
    except (OverflowError, ZeroDivisionError, ValueError) as err:
        path.status = f"left the domain of f after {max(len(path.fs) - 1, 0)} steps ({err})"
    if not path.fs:
        raise OverflowError(f"f cannot be evaluated at the start ({x0}, {y0})")
    return path


def _sgd(path: Path, fn: Function, x0: float, y0: float, lr: float, steps: int) -> None:
    from .optim import SGD

    x, y = Value(x0), Value(y0)
    opt = SGD([x, y], lr=lr, momentum=MOMENTUM if path.method == "momentum" else 0.0)
    for i in range(steps + 1):
        f = fn.f(x, y)
        path.evaluations += 1
        if not np.isfinite(f.data):
            raise OverflowError(f"f = {f.data}")
        path.visit(x.data, y.data, f.data)
        if i == steps:
            break
        opt.zero_grad()
        f.backward()
        opt.step()
    path.status = f"ran {steps} steps"


def _lbfgs(path: Path, fn: Function, x0: float, y0: float, lr: float, steps: int) -> None:
    from .optimize import minimize

    def f2(v: List[Value]) -> Value:
        return fn.f(v[0], v[1])

    def visit(xk: np.ndarray) -> None:
        path.visit(float(xk[0]), float(xk[1]), f2([Value(float(xk[0])), Value(float(xk[1]))]).data)

    visit(np.array([x0, y0]))
    result = minimize(f2, [x0, y0], method="L-BFGS-B", callback=visit, options={"maxiter": steps, "gtol": GTOL})
    path.evaluations = int(result.nfev)
    path.status = f"{result.message} after {result.nit} steps"


def _newton(path: Path, fn: Function, x0: float, y0: float, lr: float, steps: int) -> None:
    from .optimize import Recorded

    # f recorded once and replayed; the gradient and Hessian come in (x, y) order
    rec = Recorded(lambda v: fn.f(v[0], v[1]), [x0, y0], check=False)
    at = np.array([x0, y0])
    for i in range(steps + 1):
        f = rec.value(at)
        path.evaluations += 1
        if not np.isfinite(f):
            raise OverflowError(f"f = {f}")
        path.visit(float(at[0]), float(at[1]), f)
        g = rec.gradient(at)
        if np.linalg.norm(g) < GTOL:
            path.status = f"converged: |gradient| < {GTOL:g} after {i} steps"
            return
        if i == steps:
            break
        try:
            step = np.linalg.solve(rec.hessian(at), g)
        except np.linalg.LinAlgError:
            path.status = f"stopped after {i} steps: the Hessian is singular there"
            return
        at = at - step
    path.status = f"ran {steps} steps"
