"""``arenagrad.sweep.map_runs`` on local processes: the table, shared objects sent once per
worker, a worker that dies, runs that raise, Ctrl-C.

The functions the workers run are defined here, at module level: worker processes are
started with spawn and import this module by name to find them.
"""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest
from arenagrad.sweep import Interrupted, map_runs, to_frame

# How many times this process has unpickled a Probe: a shared object sent per run would
# be unpickled once per run, one sent per worker once.
UNPICKLED = {"count": 0}


def _restore(payload):
    UNPICKLED["count"] += 1
    return Probe(payload)


class Probe:
    """A shared object that counts, in each process, how often it was unpickled."""

    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return _restore, (self.payload,)


def power(x, k):
    return {"y": x**k}


def square(problem):
    return problem["x"] ** 2


def report(item, probe):
    return {"pid": os.getpid(), "unpickled": UNPICKLED["count"], "payload": len(probe.payload)}


def fragile(x):
    if x == 3:
        raise ValueError("three is not allowed")
    return x * 10


def die_once(x, marker):
    """Kill this worker process the first time it runs x == 2 (the marker file remembers)."""
    if x == 2 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 100


def always_die(x):
    if x == 1:
        os._exit(7)
    return x


def interrupt_parent(x):
    """Run 0 returns at once; run 1 presses Ctrl-C in the parent a moment later; every run
    but the first takes long enough to be cancelled."""
    if x == 0:
        return x
    if x == 1:
        time.sleep(0.5)
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(30)
    return x


def without(rows, *names):
    return [{k: v for k, v in row.items() if k not in names} for row in rows]


def test_a_grid_gives_every_combination_as_keywords_in_order():
    table = map_runs(power, {"x": [1, 2, 3], "k": [2, 3]}, workers=2, progress=False)
    assert without(table, "seconds") == [
        {"run": i, "x": x, "k": k, "y": x**k, "status": "ok", "tries": 1, "error": ""}
        for i, (x, k) in enumerate([(1, 2), (1, 3), (2, 2), (2, 3), (3, 2), (3, 3)])
    ]
    assert all(row["seconds"] >= 0 for row in table)


def test_shared_objects_travel_once_per_worker_not_per_run():
    table = map_runs(report, list(range(24)), shared={"probe": Probe("x" * 100_000)}, workers=2, progress=False)
    runs_per_pid = {}
    for row in table:
        runs_per_pid[row["pid"]] = runs_per_pid.get(row["pid"], 0) + 1
        assert row["payload"] == 100_000
        assert row["unpickled"] == 1, row  # by the time any run executes, and never again
    assert sum(runs_per_pid.values()) == 24 and max(runs_per_pid.values()) > 1
    assert os.getpid() not in runs_per_pid


def test_a_run_that_raises_is_an_error_row_and_the_rest_finish():
    table = map_runs(fragile, [1, 2, 3, 4], workers=2, progress=False)
    assert [row["status"] for row in table] == ["ok", "ok", "error", "ok"]
    assert [row.get("result") for row in table] == [10, 20, None, 40]
    assert table[2]["error"] == "ValueError: three is not allowed" and table[2]["tries"] == 1


def test_a_killed_worker_costs_only_its_run_which_is_retried(tmp_path):
    marker = str(tmp_path / "died")
    table = map_runs(die_once, [0, 1, 2, 3, 4, 5], shared={"marker": marker}, workers=2, progress=False)
    assert os.path.exists(marker)  # the worker did die
    assert [row["result"] for row in table] == [100, 101, 102, 103, 104, 105]
    assert [row["tries"] for row in table] == [1, 1, 2, 1, 1, 1]
    assert {row["status"] for row in table} == {"ok"}


def test_a_run_whose_worker_always_dies_is_failed_after_one_retry():
    table = map_runs(always_die, [0, 1, 2], workers=2, progress=False)
    assert [row["status"] for row in table] == ["ok", "failed", "ok"]
    assert table[1]["tries"] == 2 and "exit code 7" in table[1]["error"]
    assert "result" not in table[1]

    table = map_runs(always_die, [0, 1, 2], workers=2, retries=0, progress=False)
    assert table[1]["status"] == "failed" and table[1]["tries"] == 1


def test_problems_in_chunks_keep_their_order_and_the_bar_counts_runs(capsys):
    problems = [{"x": x} for x in range(10, 0, -1)]  # dicts: their keys become columns
    table = map_runs(square, problems, chunksize=3, workers=2, progress=True)
    assert [(row["run"], row["x"], row["result"]) for row in table] == [
        (i, x, x * x) for i, x in enumerate(range(10, 0, -1))
    ]
    assert "10/10" in capsys.readouterr().err  # runs, not chunks (4 of them)


def test_ctrl_c_cancels_what_is_left_and_keeps_the_table():
    # Python's own SIGINT handler, which Ctrl-C meets (a run started in the background by
    # a shell inherits SIGINT ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ctrl_c_cancels()
    finally:
        signal.signal(signal.SIGINT, before)


def ctrl_c_cancels():
    start = time.perf_counter()
    with pytest.raises(Interrupted) as stop:
        map_runs(interrupt_parent, [0, 1, 2, 3, 4, 5], workers=2, progress=False)
    assert time.perf_counter() - start < 20  # the sleeping runs were not waited for
    table = stop.value.table
    assert [row["run"] for row in table] == list(range(6))
    assert table[0]["status"] == "ok" and table[0]["result"] == 0
    assert {row["status"] for row in table[1:]} == {"cancelled"}
    assert isinstance(stop.value, KeyboardInterrupt)


def test_bad_arguments_are_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="retries"):
        map_runs(power, [1], retries=-1)
    with pytest.raises(ValueError, match="chunksize"):
        map_runs(power, [1], chunksize=0)
    with pytest.raises(ValueError, match="grid value 'x'"):
        map_runs(power, {"x": []})


def test_a_function_the_workers_cannot_load_is_one_clear_error(monkeypatch):
    import arenagrad.sweep.local as local

    monkeypatch.setattr(local, "dumps", lambda obj: b"not a pickle")
    with pytest.raises(RuntimeError, match="could not load the function"):
        map_runs(power, [1, 2], workers=1, progress=False)


class ExitOnLoad:
    """Unpickling it ends the process: a worker that dies before it is ready."""

    def __reduce__(self):
        return os._exit, (3,)


def test_a_worker_that_dies_as_it_starts_is_one_clear_error(monkeypatch):
    import arenagrad.sweep.local as local

    monkeypatch.setattr(local, "dumps", lambda obj: pickle.dumps(ExitOnLoad()))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"exited as it started \(exit code 3"):
        map_runs(power, [1, 2, 3, 4], workers=2, progress=False)
    assert time.perf_counter() - start < 10  # not a retry per run


def test_to_frame():
    pd = pytest.importorskip("pandas")
    frame = to_frame([{"run": 0, "x": 1, "status": "ok"}, {"run": 1, "x": 2, "status": "error"}])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [0, 1] and list(frame["x"]) == [1, 2]
