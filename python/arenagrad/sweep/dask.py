"""Running a sweep's tasks on Dask (``distributed``): a running scheduler or a LocalCluster.

The function and the shared objects reach each worker once, as a worker plugin
(:class:`Setup`): the scheduler hands it to every worker, and to any worker that joins or
restarts later, and the worker unpickles it once and keeps it until the sweep ends. Each
task then carries only its items and the plugin's name. (A scattered, broadcast future
would also arrive once, but Dask's active memory manager may drop a copy that no waiting
task needs and fetch it again later: twice on one worker, which a plugin never is.)

Tasks are kept in flight only as many as the cluster has threads. A task waiting on a
worker counts, to the scheduler, as running there: were it queued behind a run whose
worker dies, Dask would charge it a failed try too. Keeping no queue on the workers makes
a death cost exactly the run that was executing; the price is one round trip per run
between a run's end and the next one's start (milliseconds, see bench/sweep_bench.py).

A run lost with its worker comes back as ``KilledWorker`` once the scheduler has retried
it ``distributed.scheduler.allowed-failures`` times itself; :func:`connect` starts a
LocalCluster with that set to 0, so that every try is counted here.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..options import OptionError
from .local import children_ignore_ctrl_c
from .tasks import Event, Outcome, Task, run_chunk

try:
    from distributed import WorkerPlugin, get_worker
except ImportError:  # the module still imports, for connect() to say what is missing
    WorkerPlugin = object  # type: ignore[misc,assignment]

__all__ = ["DaskBackend", "Setup", "connect"]

# How often the number of threads in the cluster is asked again (workers come and go).
_RECOUNT_SECONDS = 1.0


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise OptionError("--scheduler needs Dask: pip install 'arenagrad[dask]'") from None
    return distributed


@contextlib.contextmanager
def connect(address: str, workers: Optional[int] = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (``tcp://HOST:PORT``), or for a
    ``distributed.LocalCluster`` of ``workers`` one-thread processes started for the
    duration when ``address`` is ``"local"``.

    Raises:
        OptionError: Dask is not installed, or the scheduler cannot be reached.
    """
    distributed = _distributed()
    if address == "local":
        import dask

        # Every lost try reaches us (and is counted) rather than being retried unseen. One
        # thread per process: a run holds the GIL. Any free port for the scheduler's web
        # server, so that two sweeps (or a notebook's own cluster) do not collide.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}), children_ignore_ctrl_c():
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise OptionError(f"cannot reach the Dask scheduler at {address}: {err}") from None
    with client:
        yield client


class Setup(WorkerPlugin):  # type: ignore[misc,valid-type]
    """A worker plugin holding a sweep's function and shared objects on each worker."""

    def __init__(self, fn: Callable[..., Any], shared: Dict[str, Any]) -> None:
        self.work = (fn, shared)  # not "setup": the name of the hook a plugin may define


def _run_on_worker(name: str, items: Sequence[Tuple[int, Any]]) -> List[Outcome]:
    """A task: run the items with the setup the plugin ``name`` brought to this worker."""
    setup: Setup = get_worker().plugins[name]  # type: ignore[assignment]
    return run_chunk(setup.work, items)


class DaskBackend:
    """Runs tasks on the workers of ``client``.

    Args:
        client: a ``distributed.Client``.
        fn: the function, called ``fn(item, **shared)``.
        shared: objects every call receives, sent once to each worker.
    """

    def __init__(self, client: Any, fn: Callable[..., Any], shared: Dict[str, Any]) -> None:
        distributed = _distributed()
        self.client = client
        self.killed = distributed.KilledWorker
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.plugin = f"arenagrad-sweep-{self.name}-{uuid.uuid4().hex}"
        client.register_plugin(Setup(fn, shared), name=self.plugin)
        self.done = distributed.as_completed(loop=client.loop)
        self.tasks: Dict[str, Task] = {}
        self.slots, self.counted = 1, -_RECOUNT_SECONDS

    def capacity(self) -> int:
        """How many tasks may be in flight: the cluster's threads (at least one)."""
        if time.monotonic() - self.counted >= _RECOUNT_SECONDS:
            self.slots = max(1, sum(self.client.nthreads().values()))
            self.counted = time.monotonic()
        return self.slots

    def submit(self, task: Task) -> None:
        """Send ``task`` to the scheduler (a new key per try)."""
        key = f"arenagrad-{self.name}-{task.id}-{uuid.uuid4().hex}"
        future = self.client.submit(_run_on_worker, self.plugin, task.items, key=key, pure=False)
        self.tasks[future.key] = task
        self.done.add(future)

    def next_event(self) -> Event:
        """Wait for a task to come back, or to be lost with its worker."""
        future = next(self.done)
        task = self.tasks.pop(future.key)
        if future.status == "finished":
            return Event(task, future.result())
        err = future.exception() if future.status == "error" else None
        if isinstance(err, self.killed):
            tries = getattr(err, "allowed_failures", 0) + 1
            return Event(task, None, tries=tries, reason=f"its worker died ({type(err).__name__})")
        reason = f"{type(err).__name__}: {err}" if err is not None else f"the task was {future.status}"
        return Event(task, [Outcome("error", error=reason)] * len(task.items))

    def cancel(self) -> None:
        """Cancel every task still in flight."""
        self.client.cancel(list(self.done.futures))
        self.done.clear()

    def close(self) -> None:
        """Take the function and shared objects off the workers."""
        self.client.unregister_worker_plugin(self.plugin)
