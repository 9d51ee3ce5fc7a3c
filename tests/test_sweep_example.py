"""The 10,000-problem example of docs/sweeps.md, run as the page shows it: as a script, and
from Python with its fits checked against numpy's least squares and its compiled graph
counted as it arrives in each worker process."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from arenagrad.sweep import map_runs
from test_sweep_api import UNPICKLED, Probe

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sweeps.md"


@pytest.fixture
def example(tmp_path, monkeypatch):
    """docs/sweeps.md's example, written to many_fits.py in a directory on the path (the
    worker processes, started with spawn, inherit the path and import it by name)."""
    text = DOCS.read_text()
    code = re.search(r"```python\n(# many_fits\.py\n.*?)```", text, re.S).group(1)
    (tmp_path / "many_fits.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("many_fits", None)
    yield importlib.import_module("many_fits")
    sys.modules.pop("many_fits", None)


def fit_and_count(problem, model, probe):
    """The example's fit, and how often this process has unpickled the shared objects."""
    return {**sys.modules["many_fits"].fit(problem, model), "pid": os.getpid(), "unpickled": UNPICKLED["count"]}


def test_the_example_runs_as_the_script_it_shows(example, tmp_path):
    done = subprocess.run(
        [sys.executable, "many_fits.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("10000 fits; {'run': 0, 'w': ")
    assert "10000/10000" in done.stderr  # the bar


def test_ten_thousand_fits_are_least_squares_with_the_graph_sent_once_per_worker(example):
    problems = example.make_problems(10_000)
    shared = {"model": example.LineFit(), "probe": Probe("graph and probe pickle together")}
    table = map_runs(fit_and_count, problems, shared=shared, chunksize=500, workers=2, progress=False)

    assert [row["run"] for row in table] == list(range(10_000))
    assert {row["status"] for row in table} == {"ok"}
    fitted = np.array([[row["w"], row["b"]] for row in table])
    exact = np.array([np.polyfit(x, y, 1) for x, y in problems])
    assert np.abs(fitted - exact).max() < 1e-9

    per_process = {}
    for row in table:
        per_process.setdefault(row["pid"], set()).add(row["unpickled"])
    assert len(per_process) == 2 and os.getpid() not in per_process
    assert all(counts == {1} for counts in per_process.values())  # 5,000 fits each, one copy of the graph
