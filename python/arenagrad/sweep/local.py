"""Local worker processes that lose only the run a dying worker was running.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies: every
run in flight fails with ``BrokenProcessPool`` and the other workers are terminated. Here
each worker is a process with its own pipe, so the parent sees exactly which worker died
(its sentinel) and which task it held; that task is reported lost, the worker replaced,
and the others carry on.

Each worker receives the function and the shared objects once, as its start-up argument
(pickled with cloudpickle when it is installed, so functions defined in a notebook travel
too); afterwards only tasks and outcomes cross its pipe. Processes are started with
``spawn``, which behaves the same on Linux, macOS and Windows and never copies the
parent's threads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Dict, Iterator, List, Optional

from .tasks import Event, Outcome, Task, run_chunk

__all__ = ["LocalBackend", "default_workers", "dumps", "children_ignore_ctrl_c"]


def default_workers() -> int:
    """The cores this process may run on (the machine's cores, within any CPU affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def dumps(obj: Any) -> bytes:
    """``obj`` pickled by cloudpickle where installed (functions from ``__main__`` or a
    notebook then travel by value), else by pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def children_ignore_ctrl_c() -> Iterator[None]:
    """Processes started inside inherit an ignored SIGINT (a spawned Python keeps it so).
    Ctrl-C reaches the whole process group; it is the sweep's to handle, by cancelling what
    is left and stopping the workers, not each worker's, which would die mid-run printing
    tracebacks."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class SetupError(Exception):
    """A worker could not load the function and shared objects (sent back as its only message)."""


# The first message of a worker that loaded its function and shared objects.
_READY = "ready"


def _serve(conn: Connection, setup: bytes) -> None:
    """A worker's life: load ``(fn, shared)`` once, then run tasks until told to stop."""
    try:
        loaded = pickle.loads(setup)
    except BaseException:
        conn.send(SetupError(traceback.format_exc(limit=3)))
        return
    conn.send(_READY)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        outcomes = run_chunk(loaded, message.items)
        try:
            conn.send(outcomes)
        except Exception as err:  # a value that does not pickle fails its runs, not the worker
            conn.send([Outcome("error", error=f"the result cannot be sent back: {err}")] * len(outcomes))


class _Worker:
    def __init__(self, context: Any, setup: bytes) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, setup), daemon=True, name="arenagrad-sweep")
        with children_ignore_ctrl_c():  # the parent decides what Ctrl-C cancels
            self.process.start()
        child.close()  # the child's end lives in the child only: EOF when it dies
        self.ready = False
        self.task: Optional[Task] = None

    def read(self) -> Optional[List[Outcome]]:
        """The outcomes the worker has sent back, if it has (noting that it is ready).

        Raises:
            RuntimeError: it could not load the function or shared objects.
        """
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if isinstance(message, SetupError):
                    raise RuntimeError(f"a worker process could not load the function or shared objects:\n{message}")
                if message == _READY:
                    self.ready = True
                else:
                    return message
        except (EOFError, OSError):  # it died, perhaps half-way through sending
            pass
        return None

    def stop(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=None if kill else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalBackend:
    """Runs tasks in ``workers`` local processes, one task per process at a time.

    Args:
        workers: the number of processes (started as tasks arrive).
        fn: the function, called ``fn(item, **shared)``.
        shared: objects every call receives, sent once to each process.
    """

    def __init__(self, workers: int, fn: Callable[..., Any], shared: Dict[str, Any]) -> None:
        self.workers = workers
        self.setup = dumps((fn, shared))
        self.context = multiprocessing.get_context("spawn")
        self.pool: List[_Worker] = []

    def capacity(self) -> int:
        """How many tasks may be in flight at once."""
        return self.workers

    def submit(self, task: Task) -> None:
        """Start ``task`` on an idle process (a new one while there are fewer than ``workers``)."""
        worker = next((w for w in self.pool if w.task is None), None)
        if worker is None:
            worker = _Worker(self.context, self.setup)
            self.pool.append(worker)
        worker.task = task
        try:
            worker.conn.send(task)
        except OSError:  # it died: next_event() finds out, and the task is lost with it
            pass

    def next_event(self) -> Event:
        """Wait for a task to come back, or for the process running one to die.

        Raises:
            RuntimeError: a process died before it had loaded the function (it cannot start).
        """
        while True:
            by_handle = {handle: w for w in self.pool for handle in (w.conn, w.process.sentinel)}
            for handle in wait(list(by_handle)):
                worker = by_handle[handle]
                if worker not in self.pool:
                    continue
                # A result sent just before dying still counts: read the pipe first.
                outcomes = worker.read()
                if outcomes is not None and worker.task is not None:
                    task, worker.task = worker.task, None
                    return Event(task, outcomes)
                if not worker.process.is_alive():
                    self._discard(worker, kill=True)
                    code = worker.process.exitcode
                    if not worker.ready:
                        raise RuntimeError(
                            f"a worker process exited as it started (exit code {code}; its error is above). In a "
                            "script, call map_runs under `if __name__ == '__main__':`, as for any multiprocessing."
                        )
                    if worker.task is not None:
                        return Event(worker.task, None, reason=f"its worker process died (exit code {code})")

    def _discard(self, worker: _Worker, kill: bool) -> None:
        self.pool.remove(worker)
        worker.stop(kill)

    def cancel(self) -> None:
        """Stop every process now, dropping the tasks they hold."""
        for worker in list(self.pool):
            self._discard(worker, kill=True)

    def close(self) -> None:
        """Let idle processes exit; kill any still busy."""
        for worker in list(self.pool):
            self._discard(worker, kill=worker.task is not None)
