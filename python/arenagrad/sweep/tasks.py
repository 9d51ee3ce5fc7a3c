"""What a sweep sends to a worker and gets back: tasks of items, and one outcome per item.

A task is a chunk of items (usually one); the worker calls the user's function on each
item with the shared objects it received once, and returns one :class:`Outcome` per item.
An exception raised by the function is an outcome too (status ``"error"``): a run that
raises would raise again, so it is reported rather than retried. Only a run whose worker
died is tried again (see :mod:`arenagrad.sweep.runner`).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

__all__ = ["Task", "Outcome", "Event", "Spread", "run_chunk", "expand", "chunks"]


class Task(NamedTuple):
    """A chunk of items, each with its position in the input (the table's ``run``)."""

    id: int
    items: List[Tuple[int, Any]]


class Outcome(NamedTuple):
    """What became of one item: ``status`` is ``"ok"`` (``value`` is the function's return),
    ``"error"`` (it raised: ``error``), ``"failed"`` (its worker died on every try) or
    ``"cancelled"`` (interrupted before it ran)."""

    status: str
    value: Any = None
    error: str = ""
    seconds: Optional[float] = None


class Event(NamedTuple):
    """A task that came back: its outcomes, or ``None`` when its worker was lost (``tries``
    says how many tries that cost, ``reason`` how it was lost)."""

    task: Task
    outcomes: Optional[List[Outcome]]
    tries: int = 1
    reason: str = ""


class Spread:
    """Calls ``fn(**item, **shared)``: a grid's combination arrives as keyword arguments."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, item: Dict[str, Any], **shared: Any) -> Any:
        return self.fn(**item, **shared)


def run_chunk(setup: Tuple[Callable[..., Any], Dict[str, Any]], items: Sequence[Tuple[int, Any]]) -> List[Outcome]:
    """Run ``fn(item, **shared)`` for each item of a task, in a worker; ``setup`` is
    ``(fn, shared)``, which reached the worker once."""
    fn, shared = setup
    outcomes = []
    for _, item in items:
        start = time.perf_counter()
        try:
            value = fn(item, **shared)
        except Exception as err:  # the run's own failure: reported, not retried
            outcomes.append(Outcome("error", error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - start))
        else:
            outcomes.append(Outcome("ok", value, seconds=time.perf_counter() - start))
    return outcomes


def expand(grid_or_problems: Any) -> Tuple[List[Any], bool]:
    """The items to run, and whether they are a grid's combinations (passed as keywords).

    A dict of lists is a grid: every combination, the first key varying slowest
    (``{"lr": [1, 2], "width": [8, 16]}`` gives lr=1 width=8, lr=1 width=16, lr=2 ...).
    Anything else iterable is a list of problems, run in order.
    """
    if isinstance(grid_or_problems, dict):
        names = list(grid_or_problems)
        for name, values in grid_or_problems.items():
            if not isinstance(values, (list, tuple, range)) or not len(values):
                raise ValueError(f"grid value {name!r} must be a non-empty list, got {values!r}")
        combos = itertools.product(*(grid_or_problems[name] for name in names))
        return [dict(zip(names, combo)) for combo in combos], True
    return list(grid_or_problems), False


def chunks(items: Sequence[Any], size: int) -> List[Task]:
    """``items`` (with their positions) cut into tasks of ``size`` items."""
    numbered = list(enumerate(items))
    return [Task(i, numbered[start : start + size]) for i, start in enumerate(range(0, len(numbered), size))]
