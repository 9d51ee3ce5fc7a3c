"""``arenagrad.optimize.minimize``: scipy's optimisers with exact derivatives.

``fun`` is written once on Values; it is recorded once and replayed by every
call scipy makes, which gets the value, the exact gradient (``jac``) and, for
the methods that use them, exact Hessian-vector products (``hessp``, by
forward-over-reverse on the tape) or the Hessian (``hess``)::

    from arenagrad.optimize import minimize

    def rosenbrock(x):
        return ag.sum([100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1)])

    result = minimize(rosenbrock, [-1.2, 1.0] * 50, method="trust-ncg")

A recording is one path through ``fun``: a branch on data (``if x[0] > 0``) is
frozen as it went at ``x0``. Each evaluation therefore also runs ``fun``
eagerly and compares (``check=True``, the default); a different value means
``fun`` took another path there, and ``minimize`` raises ``ValueError``
instead of optimising a different function. scipy is an optional extra.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from ._core import Value
from .replay import compile as compile_graph

__all__ = ["minimize", "Recorded"]

#: scipy's methods that take a Hessian-vector product, and those that take the Hessian.
HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
HESS_METHODS = {"dogleg", "trust-exact"}


class Recorded:
    """``fun`` recorded once at ``x0``, evaluated by replay at any ``x``."""

    def __init__(self, fun: Callable[[List[Value]], Value], x0: Sequence[float], check: bool = True) -> None:
        self.fun = fun
        self.check = check
        self.xs = [Value(float(v)) for v in np.asarray(x0, dtype=float).ravel()]
        out = fun(self.xs)
        if not isinstance(out, Value):
            raise TypeError(f"fun must return a Value, not {type(out).__name__}")
        self.out = out
        self.tape = compile_graph(out)
        # Where each x sits among the tape's leaves (which may hold constants too).
        position = {id(v): j for j, v in enumerate(self.tape.leaves)}
        self._order = [position[id(x)] for x in self.xs]
        self._num_leaves = len(position)
        self.evaluations = 0

    def _at(self, x: Any) -> None:
        x = np.asarray(x, dtype=float).ravel()
        if x.shape != (len(self.xs),):
            raise ValueError(f"x has {x.size} entries, the recording {len(self.xs)}")
        self.tape.set_data(self.xs, x)

    def value(self, x: Any) -> float:
        """fun(x), by replay; checked against an eager evaluation when ``check``."""
        self._at(x)
        self.evaluations += 1
        got = self.tape.forward()
        if self.check:
            eager = self.fun([Value(float(v), requires_grad=False) for v in np.asarray(x, dtype=float).ravel()])
            if not (eager.data == got or (np.isnan(eager.data) and np.isnan(got))):
                raise ValueError(
                    f"fun took another path at x = {np.asarray(x).tolist()!r}: the recording gives {got!r}, "
                    f"fun itself {eager.data!r} (a branch on data, such as `if x[0] > 0`, is frozen as it went "
                    "at x0; write it with Values (relu, abs) or minimise each branch separately)"
                )
        return got

    def gradient(self, x: Any) -> np.ndarray:
        """The exact gradient at x."""
        self._at(x)
        return self._reorder(self.tape.jacobian()[0])

    def hessp(self, x: Any, p: Any) -> np.ndarray:
        """The Hessian at x times p (forward-over-reverse on the tape)."""
        self._at(x)
        return self._reorder(self.tape.hvp(self._to_leaves(p)))

    def hessian(self, x: Any) -> np.ndarray:
        """The dense Hessian at x."""
        self._at(x)
        H = self.tape.hessian()
        return H[np.ix_(self._order, self._order)]

    def _reorder(self, over_leaves: np.ndarray) -> np.ndarray:
        return np.asarray(over_leaves)[self._order]

    def _to_leaves(self, p: Any) -> np.ndarray:
        v = np.zeros(self._num_leaves)
        v[self._order] = np.asarray(p, dtype=float).ravel()
        return v


def minimize(
    fun: Callable[[List[Value]], Value],
    x0: Sequence[float],
    method: Optional[str] = None,
    check: bool = True,
    **scipy_kwargs: Any,
) -> Any:
    """``scipy.optimize.minimize`` on ``fun`` (a function of a list of Values, one per
    coordinate of ``x0``, returning a Value), with the exact gradient, and the exact
    Hessian-vector product or Hessian for the methods that use them.

    Returns scipy's ``OptimizeResult``. ``check`` compares each replayed value with an
    eager call of ``fun`` (see the module docstring); other keyword arguments go to scipy.
    """
    try:
        from scipy.optimize import minimize as scipy_minimize
    except ImportError:
        raise ImportError("arenagrad.optimize needs scipy: pip install scipy") from None
    rec = Recorded(fun, x0, check=check)
    kwargs = dict(scipy_kwargs)
    kwargs.setdefault("jac", rec.gradient)
    name = (method or "").lower()
    if name in HESSP_METHODS and "hess" not in kwargs:
        kwargs.setdefault("hessp", rec.hessp)
    if name in HESS_METHODS:
        kwargs.setdefault("hess", rec.hessian)
    return scipy_minimize(rec.value, np.asarray(x0, dtype=float).ravel(), method=method, **kwargs)
