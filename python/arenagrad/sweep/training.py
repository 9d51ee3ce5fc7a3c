"""``arenagrad sweep``: every combination of the ``train`` options given several values,
trained on local processes or a Dask cluster, as ``sweep.csv`` and pictures.

::

    from arenagrad.sweep import SweepConfig, run_sweep
    result = run_sweep(SweepConfig(runs={"lr": [0.03, 0.1], "hidden": [[8], [16, 16]]}, seeds=3, workers=2))
    result.table[0]["train_acc"], result.files

Every run is checked (:func:`plan`) before any work is sent: a value out of bounds or a
combination ``train`` refuses is one :class:`~arenagrad.options.OptionError`. A run is
:func:`train_run` on a worker: ``train()`` without pictures or progress, seeded, so the
table is the same whichever backend ran it (the ``seconds`` column excepted).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, TextIO, Tuple

from ..grad_mode import no_grad
from ..options import OptionError, Range, check_options, option, several
from ..output import check_writable, prepare_out
from ..train import TrainConfig, resolve_config, train
from ..training.callbacks import Callback, Run, format_metric
from .local import default_workers
from .pictures import plot_heatmap
from .runner import Interrupted, map_runs
from .table import best_run, cell, write_csv
from .tasks import expand

__all__ = ["SweepConfig", "SweepResult", "plan", "plan_fields", "train_run", "run_sweep"]

# The train options a sweep sets itself: where and what it draws, and its own progress.
_NOT_SWEPT = ("out", "grid", "plots", "quiet", "plot_every", "gif", "graphviz")


@dataclass
class SweepConfig:
    """Everything ``arenagrad sweep`` takes."""

    runs: Dict[str, List[Any]] = several(
        TrainConfig,
        "options of each run (as for 'arenagrad train'), each taking one or more values",
        skip=_NOT_SWEPT,
    )
    seeds: Optional[int] = option(
        None, "run K seeds of each combination (--seed 0 1 .. K-1)", Range(int, 1, 10_000), metavar="K"
    )
    workers: Optional[int] = option(
        None,
        "local worker processes; with --scheduler local, the LocalCluster's",
        Range(int, 1, 1024),
        metavar="N",
        default_text="the machine's cores",
    )
    scheduler: Optional[str] = option(
        None,
        "run on Dask: tcp://HOST:PORT of a running scheduler, or 'local' for a LocalCluster started for the "
        "sweep (needs the dask extra)",
        metavar="ADDRESS",
    )
    retries: int = option(
        1, "times a run whose worker died is run again before it is reported failed", Range(int, 0, 10), metavar="N"
    )
    out: str = option("sweep", "where sweep.csv and the pictures go; checked before any run", metavar="DIR")
    grid: int = option(60, "grid points per side of the best run's decision boundary", Range(int, 5, 400), metavar="N")
    plots: bool = option(True, "draw the heatmap and the best run's pictures")
    quiet: bool = option(False, "no progress bar or notes, only the final line")


@dataclass
class SweepResult:
    """What a sweep produced: the table (one row per run), the files, the wall time."""

    config: SweepConfig
    table: List[Dict[str, Any]]
    files: List[Path]
    seconds: float
    where: str  # "2 local processes", "Dask at tcp://..."

    def summary(self) -> str:
        """The one-line verdict the CLI prints last."""
        ok = sum(row["status"] == "ok" for row in self.table)
        line = f"sweep: {len(self.table)} runs ({ok} ok) in {self.seconds:.1f} s on {self.where}"
        best = best_run(self.table)
        if best is not None:
            row, metric = best
            varied = " ".join(f"{k}={cell(row[k])}" for k in self.varied())
            line += f"; best {format_metric(metric, row[metric], long=True)}"
            line += f" (run {row['run']}: {varied})" if varied else f" (run {row['run']})"
        return line

    def varied(self) -> List[str]:
        """The options given several values (seeds included)."""
        return [name for name, values in _grid(self.config).items() if len(values) > 1]


def _grid(config: SweepConfig) -> Dict[str, List[Any]]:
    """The options given several values, with ``--seeds K`` as ``seed: [0 .. K-1]``.

    Raises:
        OptionError: both ``--seed`` and ``--seeds``.
    """
    grid = dict(config.runs)
    if config.seeds is not None:
        if "seed" in grid:
            raise OptionError("give either --seed values or --seeds K, not both")
        grid["seed"] = list(range(config.seeds))
    return grid


def plan_fields() -> List[str]:
    """The train options each run of a sweep is given (the rest the sweep sets itself)."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _NOT_SWEPT]


def plan(config: SweepConfig) -> List[Dict[str, Any]]:
    """Every run of the sweep as the options it trains with (the dataset's defaults filled
    in), in order: the options vary in the order ``TrainConfig`` declares them, the first
    (the dataset) slowest, the seed fastest.

    Raises:
        OptionError: a value or a combination ``train`` would refuse, naming the run.
    """
    check_options(config)
    if config.scheduler not in (None, "local") and "://" not in config.scheduler:
        raise OptionError(f"--scheduler takes 'local' or an address such as tcp://HOST:8786, got {config.scheduler!r}")
    if config.workers is not None and config.scheduler not in (None, "local"):
        raise OptionError("--workers is for local processes or --scheduler local; a running cluster has its own")
    runs: List[Dict[str, Any]] = []
    for combo in expand(_grid(config))[0]:
        try:
            resolved = resolve_config(TrainConfig(**combo))
        except OptionError as err:
            given = " ".join(f"{k}={cell(v)}" for k, v in combo.items())
            raise OptionError(f"{err} (run {len(runs)}: {given})" if given else str(err)) from None
        runs.append({name: getattr(resolved, name) for name in plan_fields()})
    return runs


class _FinalLosses(Callback):
    """The loss of the trained model on the whole training set and the test split."""

    def __init__(self) -> None:
        self.losses: Dict[str, Optional[float]] = {}

    def on_train_end(self, run: Run) -> None:
        data, criterion = run.data, run.criterion
        with no_grad():
            for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
                targets = None if X is None else criterion.targets(y, run.dataset.classes)
                loss = None if X is None else criterion([run.model(x) for x in X.tolist()], targets)
                self.losses[f"{split}_loss"] = None if loss is None else loss.data


def train_run(options: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """One run of a sweep, on a worker: ``train()`` with ``options``, no pictures, no progress.

    Returns:
        The final loss on the training set and the test split, and the accuracy (or MSE for
        a regression) of each; ``None`` where there is no test split.
    """
    losses = _FinalLosses()
    # A directory of its own: train() probes that its output directory is writable.
    with tempfile.TemporaryDirectory(prefix="arenagrad-run-") as out:
        config = TrainConfig(**options, out=out, quiet=True, plots=False, gif=False)
        result = train(config, callbacks=[losses])
    metrics = ("train_acc", "test_acc") if result.task == "classification" else ("train_mse", "test_mse")
    return {**losses.losses, **{name: getattr(result, name) for name in metrics}}


def _files(config: SweepConfig, out: Path) -> List[Path]:
    return [out / "sweep.csv"] + ([out / "sweep_heatmap.png"] if config.plots else [])


@contextlib.contextmanager
def _backend(config: SweepConfig, client: Any) -> Iterator[Tuple[Any, str]]:
    """The Dask client to run on (``None``: local processes), and where that is, in words."""
    if client is not None:
        yield client, f"Dask at {client.scheduler.address}"
    elif config.scheduler is None:
        yield None, f"{config.workers or default_workers()} local processes"
    else:
        from .dask import connect

        with connect(config.scheduler, config.workers) as dask_client:
            workers = len(dask_client.nthreads())
            yield dask_client, f"Dask at {dask_client.scheduler.address} ({workers} workers)"


def run_sweep(config: SweepConfig, stream: Optional[TextIO] = None, client: Any = None) -> SweepResult:
    """Train every run of the sweep, write ``sweep.csv`` and the pictures, return the table.

    Args:
        config: the sweep.
        stream: where the notes go (default ``sys.stderr``; the progress bar is on stderr).
        client: a ``distributed.Client`` to run on, in place of ``config.scheduler``.

    Raises:
        OptionError: a bad setting or combination, an output that cannot be written, a
            scheduler that cannot be reached; all before any run is sent.
        Interrupted: Ctrl-C; the partial table was written first.
    """
    stream = stream if stream is not None else sys.stderr
    runs = plan(config)
    out = prepare_out(config.out)
    check_writable(_files(config, out))
    log = (lambda message: None) if config.quiet else (lambda message: print(message, file=stream, flush=True))

    start = time.perf_counter()
    with _backend(config, client) as (dask_client, where):
        log(f"sweep: {len(runs)} runs on {where}")
        try:
            table = map_runs(
                train_run,
                runs,
                client=dask_client,
                workers=None if dask_client is not None else config.workers,
                retries=config.retries,
                progress=not config.quiet,
            )
        except Interrupted as stop:
            path = write_csv(stop.table, out / "sweep.csv")
            log(f"interrupted: wrote {path} with the runs that finished")
            raise
    result = SweepResult(config, table, [write_csv(table, out / "sweep.csv")], time.perf_counter() - start, where)
    if config.plots:
        result.files += _pictures(result, out)
    return result


def _pictures(result: SweepResult, out: Path) -> List[Path]:
    """The heatmap over the two options that vary most, and the best run as train draws it."""
    config = result.config
    varied = sorted((k for k in result.varied() if k != "seed"), key=lambda k: -len(_grid(config)[k]))
    axes, over = varied[:2], [k for k in result.varied() if k not in varied[:2]]
    files = [plot_heatmap(result.table, axes, over, out / "sweep_heatmap.png")]
    best = best_run(result.table)
    if best is not None:
        row = best[0]
        # Runs are seeded: training the best one again here gives its model back, drawn by
        # train()'s own pictures (the decision boundary at the last epoch, the curves).
        again = TrainConfig(
            **{k: row[k] for k in plan_fields()},
            out=str(out / "best_run"),
            quiet=True,
            gif=False,
            grid=config.grid,
            plot_every=row["epochs"],
        )
        files += train(again).files
    return files
