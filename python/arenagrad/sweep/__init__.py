"""Many independent runs at once: hyperparameter sweeps and many small problems, on local
processes or a Dask cluster (docs/sweeps.md).

* :func:`map_runs` maps a picklable function over a grid or a list of problems and
  returns a table (one dict per run; :func:`to_frame` makes it a pandas DataFrame).
* :func:`run_sweep` is ``arenagrad sweep``: every combination of ``train`` options.

The parts, one module each: ``tasks`` (what travels to a worker and back), ``local``
(worker processes), ``dask`` (a ``distributed`` cluster), ``runner`` (retries, progress,
Ctrl-C), ``training`` (the sweep of ``train``), ``table`` and ``pictures``.
"""

from __future__ import annotations

from .runner import Interrupted, map_runs, to_frame
from .training import SweepConfig, SweepResult, run_sweep, train_run

__all__ = ["map_runs", "to_frame", "Interrupted", "SweepConfig", "SweepResult", "run_sweep", "train_run"]
