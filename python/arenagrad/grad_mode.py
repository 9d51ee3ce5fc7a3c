"""``no_grad``/``enable_grad`` (graph recording) and ``detect_anomaly``, as in torch."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from . import _core
from ._core import set_grad_enabled

F = TypeVar("F", bound=Callable[..., Any])


class _Switch:
    """Sets a per-thread engine switch for a ``with`` block and restores it
    after; also a decorator doing the same around each call."""

    _mode: bool
    _set: Callable[[bool], bool]  # the engine's setter; returns the previous mode

    def __enter__(self) -> None:
        self._prev = self._set(self._mode)

    def __exit__(self, *exc: object) -> None:
        self._set(self._prev)

    def __call__(self, fn: F) -> F:
        setter, mode = self._set, self._mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = setter(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                setter(prev)

        return wrapper  # type: ignore[return-value]


class _GradMode(_Switch):
    """Graph recording on or off for a block.

    Usable as ``with no_grad():``, ``@no_grad()`` and, as in torch, ``@no_grad``.
    """

    _set = staticmethod(set_grad_enabled)

    def __new__(cls, fn: Any = None) -> Any:
        self = super().__new__(cls)
        if fn is None:
            return self
        if not callable(fn):
            raise TypeError(f"{cls.__name__}() takes no arguments (or decorates a function), got {fn!r}")
        return self(fn)

    def __init__(self, fn: Any = None) -> None:
        pass


class no_grad(_GradMode):
    """Ops inside ``with ag.no_grad():`` compute values but record no graph.

    Results are leaves with ``requires_grad=False``; use it for evaluation and
    for parameter updates. Per thread, like ``torch.no_grad``.
    """

    _mode = False


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block."""

    _mode = True


class detect_anomaly(_Switch):
    """Inside ``with ag.detect_anomaly():`` the first NaN or infinity is an error.

    Any op whose result is not finite raises ``FloatingPointError`` naming the
    op, before anything is added to the graph; ``backward()`` (eager or
    replayed) raises it naming the op whose backward step produced a
    non-finite gradient, after completing the sweep. Per thread, like
    ``torch.autograd.detect_anomaly``; also usable as a decorator.
    """

    _set = staticmethod(_core.set_detect_anomaly)

    def __init__(self, mode: bool = True) -> None:
        self._mode = mode
