"""``map_runs``: a picklable function over a grid or a list of problems, on local processes
or a Dask cluster, as a table with one row per run.

::

    from arenagrad.sweep import map_runs, to_frame

    def objective(lr, width):              # a module-level (or notebook) function
        ...
        return {"loss": loss}

    table = map_runs(objective, {"lr": [0.01, 0.1], "width": [8, 16]})     # 4 runs, local
    table = map_runs(objective, grid, client=distributed.Client("tcp://scheduler:8786"))
    to_frame(table)                        # a pandas DataFrame

A row holds the run's position (``run``), the item's keys when it is a dict (a grid's
combination), what the function returned (a dict's keys, else a ``result`` column), and
``status``, ``tries``, ``seconds`` and ``error``. Rows come in the input's order, whichever
backend ran them and however they finished.

A run whose worker dies (a killed process, a lost machine) is run again, at most
``retries`` times, and then reported with status ``"failed"``; a run that raises is
reported with status ``"error"`` and not retried, since it would raise again. Ctrl-C
cancels what is still to run and raises :class:`Interrupted`, which holds the table so far.
"""

from __future__ import annotations

import collections
import math
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .local import LocalBackend, default_workers
from .tasks import Event, Outcome, Spread, Task, chunks, expand

__all__ = ["map_runs", "to_frame", "Interrupted", "BOOKKEEPING"]

#: The columns every row ends with.
BOOKKEEPING = ("status", "tries", "seconds", "error")

Row = Dict[str, Any]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`map_runs`: outstanding runs were cancelled; ``table`` holds every
    row, those that had not finished with status ``"cancelled"``."""

    def __init__(self, table: List[Row]) -> None:
        super().__init__(f"interrupted after {sum(r['status'] != 'cancelled' for r in table)} of {len(table)} runs")
        self.table = table


def map_runs(
    fn: Callable[..., Any],
    grid_or_problems: Union[Dict[str, Sequence[Any]], Sequence[Any]],
    *,
    shared: Optional[Dict[str, Any]] = None,
    client: Any = None,
    workers: Optional[int] = None,
    retries: int = 1,
    chunksize: int = 1,
    progress: bool = True,
) -> List[Row]:
    """Run ``fn`` on every combination of a grid or every problem of a list, in parallel.

    Args:
        fn: a picklable function (module-level; with cloudpickle installed, as it is with
            Dask, also one defined in a notebook). A grid's combination is passed as keyword
            arguments, ``fn(lr=0.1, width=8)``; a problem as the one positional argument,
            ``fn(problem)``. Return a dict (its keys become columns) or any value.
        grid_or_problems: a dict of lists (every combination, the first key varying
            slowest) or a list of problems.
        shared: keyword arguments every call also receives, sent once to each worker
            rather than with every run: a dataset, a model, a compiled graph.
        client: a ``distributed.Client`` to run on; ``None`` runs on local processes.
        workers: local processes (default: the machine's cores); not with ``client``.
        retries: times a run lost with its worker is run again before it is "failed".
        chunksize: runs per task; many tiny runs go faster in chunks (a chunk is retried
            whole).
        progress: a tqdm bar counting finished runs, on stderr.

    Returns:
        One row per run, in the input's order.

    Raises:
        Interrupted: Ctrl-C; outstanding runs were cancelled, ``.table`` holds the rows.
    """
    if client is not None and workers is not None:
        raise ValueError("workers is for local processes; a Dask client brings its own")
    if not (isinstance(retries, int) and retries >= 0):
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if not (isinstance(chunksize, int) and chunksize >= 1):
        raise ValueError(f"chunksize must be a positive integer, got {chunksize!r}")
    items, is_grid = expand(grid_or_problems)
    call = Spread(fn) if is_grid else fn
    tasks = chunks(items, chunksize)
    if client is not None:
        from .dask import DaskBackend

        backend: Any = DaskBackend(client, call, dict(shared or {}))
    else:
        backend = LocalBackend(min(workers or default_workers(), max(1, len(tasks))), call, dict(shared or {}))
    return _drive(backend, tasks, items, retries, progress)


def _drive(backend: Any, tasks: List[Task], items: List[Any], retries: int, progress: bool) -> List[Row]:
    """Keep the backend busy with tasks, retry lost ones, and collect the rows."""
    from tqdm.auto import tqdm

    rows: Dict[int, Row] = {}
    tries = [0] * len(tasks)
    todo = collections.deque(tasks)
    in_flight = 0
    bar = tqdm(total=len(items), unit="run", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        while todo or in_flight:
            while todo and in_flight < backend.capacity():
                backend.submit(todo.popleft())
                in_flight += 1
            event: Event = backend.next_event()
            in_flight -= 1
            task = event.task
            tries[task.id] += event.tries
            outcomes = event.outcomes
            if outcomes is None:
                if tries[task.id] <= retries:
                    todo.appendleft(task)  # before the rest: a retried run is not left for last
                    continue
                outcomes = [Outcome("failed", error=f"lost {tries[task.id]} times: {event.reason}")] * len(task.items)
            for (index, item), outcome in zip(task.items, outcomes):
                rows[index] = _row(index, item, outcome, tries[task.id])
            bar.update(len(task.items))
    except KeyboardInterrupt:
        backend.cancel()
        raise Interrupted(_table(rows, tasks, tries, Outcome("cancelled"))) from None
    finally:
        bar.close()
        backend.close()
    return [rows[index] for index in range(len(items))]


def _table(rows: Dict[int, Row], tasks: List[Task], tries: List[int], missing: Outcome) -> List[Row]:
    """Every run's row in the input's order, ``missing`` standing in for those not finished."""
    return [
        rows[index] if index in rows else _row(index, item, missing, tries[task.id])
        for task in tasks
        for index, item in task.items
    ]


def _row(index: int, item: Any, outcome: Outcome, tries: int) -> Row:
    row: Row = {"run": index}
    if isinstance(item, dict):
        row.update(item)
    if isinstance(outcome.value, dict):
        row.update(outcome.value)
    elif outcome.value is not None:
        row["result"] = outcome.value
    seconds = outcome.seconds if outcome.seconds is not None else math.nan
    row.update(status=outcome.status, tries=tries, seconds=seconds, error=outcome.error)
    return row


def to_frame(table: List[Row]) -> Any:
    """The table as a pandas DataFrame indexed by ``run`` (needs pandas).

    Raises:
        ImportError: pandas is not installed.
    """
    import pandas as pd

    return pd.DataFrame(table).set_index("run")
