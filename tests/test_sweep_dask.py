"""Sweeps on a real Dask ``distributed.LocalCluster`` (2 worker processes): the same table as
local processes and as a plain loop calling ``train()``, shared objects arriving once per
worker, a killed worker costing one retried run. Skipped where ``distributed`` is missing
(CI installs it through the dask extra).
"""

from __future__ import annotations

import os

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402  (after the skip: dask comes with distributed)
from arenagrad import cli  # noqa: E402
from arenagrad.sweep import map_runs  # noqa: E402
from test_sweep_api import Probe, fragile, report  # noqa: E402
from test_sweep_cli import SMALL, assert_matches_reference, read_csv, reference_table, sweep_killing_a_worker  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # A lost task comes back to arenagrad at once, so its tries are counted there.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The plain loop calling train() (test_sweep_cli.reference_table)."""
    return reference_table(str(tmp_path_factory.mktemp("reference")))


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_a_sweep_on_a_running_scheduler_is_the_local_processes_table(client, tmp_path, capsys, reference):
    tables = {}
    for name, backend in {"dask": ["--scheduler", client.scheduler.address], "local": ["--workers", "2"]}.items():
        out = tmp_path / name
        assert cli.main(["sweep", *SMALL, "--no-plots", "--out", str(out), *backend]) == 0
        tables[name] = read_csv(out / "sweep.csv")
    assert f"on Dask at {client.scheduler.address}" in capsys.readouterr().out
    assert_matches_reference(tables["dask"], reference)
    assert without_seconds(tables["dask"]) == without_seconds(tables["local"])


def test_scheduler_local_starts_and_stops_a_cluster(tmp_path, capsys, reference):
    argv = ["sweep", *SMALL, "--no-plots", "--quiet", "--out", str(tmp_path)]
    assert cli.main([*argv, "--scheduler", "local", "--workers", "2"]) == 0
    assert "(2 workers)" in capsys.readouterr().out
    assert_matches_reference(read_csv(tmp_path / "sweep.csv"), reference)


def test_shared_objects_arrive_once_per_worker(client):
    table = map_runs(report, list(range(24)), shared={"probe": Probe("x" * 100_000)}, client=client, progress=False)
    pids = {row["pid"] for row in table}
    assert pids == set(client.run(os.getpid).values())  # both workers ran some
    assert {row["unpickled"] for row in table} == {1}
    assert {row["payload"] for row in table} == {100_000}


def test_runs_that_raise_are_error_rows(client):
    table = map_runs(fragile, [1, 2, 3, 4], client=client, progress=False)
    assert [(row["status"], row.get("result"), row["tries"]) for row in table] == [
        ("ok", 10, 1),
        ("ok", 20, 1),
        ("error", None, 1),
        ("ok", 40, 1),
    ]
    assert table[2]["error"] == "ValueError: three is not allowed"


def test_a_killed_worker_costs_one_retried_run_on_dask(client, tmp_path, reference):
    table = sweep_killing_a_worker(tmp_path, client=client)
    assert [row["tries"] for row in table] == [1, 1, 1, 1, 1, 2, 1, 1]
    assert_matches_reference(table, reference)
