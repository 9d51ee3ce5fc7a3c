"""``no_grad``/``enable_grad`` (graph recording) and ``detect_anomaly``, as in torch.

Each is a ``with`` block and a decorator. Decorating a generator function switches the
mode only while the generator's own code runs (each ``next``, ``send``, ``throw`` and
``close``) and restores the caller's mode at every ``yield``, as torch does, so the code
that consumes the generator is not affected.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Generator, TypeVar

from . import _core

F = TypeVar("F", bound=Callable[..., Any])


def _check_bool(fn_name: str, mode: Any) -> None:
    # pybind11 converts None, 0, 2.5 or any object with __bool__ to a bool without a word;
    # torch takes a bool only, and so do we.
    if not isinstance(mode, bool):
        raise TypeError(f"{fn_name}() expects a bool, got {type(mode).__name__} {mode!r}")


def set_grad_enabled(mode: bool) -> bool:
    """Turn graph recording on or off for this thread; returns the previous mode.

    Raises:
        TypeError: ``mode`` is not a bool (``None``, ``0``, ``"yes"``...).
    """
    _check_bool("set_grad_enabled", mode)
    return _core.set_grad_enabled(mode)


def set_detect_anomaly(mode: bool) -> bool:
    """Turn anomaly detection on or off for this thread; returns the previous mode.

    Raises:
        TypeError: ``mode`` is not a bool.
    """
    _check_bool("set_detect_anomaly", mode)
    return _core.set_detect_anomaly(mode)


def _wrap_generator(setter: Callable[[bool], bool], mode: bool, fn: Callable[..., Generator]) -> Any:
    """``fn`` (a generator function) with the switch set around each resumption only."""

    @functools.wraps(fn)
    def generator(*args: Any, **kwargs: Any) -> Any:
        gen = fn(*args, **kwargs)  # runs nothing of fn's body yet

        def resume(method: Callable[..., Any], *arg: Any) -> Any:
            prev = setter(mode)
            try:
                return method(*arg)
            finally:
                setter(prev)

        try:
            response = resume(gen.send, None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    resume(gen.close)
                    raise
                except BaseException as exc:
                    response = resume(gen.throw, exc)
                else:
                    response = resume(gen.send, request)
        except StopIteration as stop:  # fn returned: so does the wrapper, with its value
            return stop.value

    return generator


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
        import inspect  # on first use: with ast, dis and tokenize it is ~5 ms of `import arenagrad`

        if inspect.isgeneratorfunction(fn):
            return _wrap_generator(setter, mode, fn)  # type: ignore[no-any-return]

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

    Usable as ``with no_grad():``, ``@no_grad()`` and, as in torch, ``@no_grad``. On a
    generator function the mode holds while the generator runs, not between its yields.
    """

    _set = staticmethod(_core.set_grad_enabled)

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
        _check_bool("detect_anomaly", mode)
        self._mode = mode
