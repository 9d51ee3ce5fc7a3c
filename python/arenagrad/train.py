"""The training run behind ``arenagrad train``, usable from Python.

::

    from arenagrad.train import TrainConfig, train
    result = train(TrainConfig(dataset="xor", epochs=30, out="out/xor"))
    print(result.train_acc, result.files)

A run builds a dataset, an :class:`~arenagrad.nn.MLP`, a loss and an optimizer from a
:class:`TrainConfig`, then runs PyTorch's training loop for ``epochs`` epochs of shuffled
minibatches and evaluates the whole training set (and the test split, where there is
one) after every epoch under ``no_grad()``. The rest is callbacks: a tqdm bar per epoch,
the pictures (the decision boundary every ``plot_every`` epochs and at the end, its
animated GIF, the loss/accuracy curves, the fitted curve for regression) and optionally
the graphviz graph of one sample's loss.

Settings left at ``None`` take the dataset's own default (:data:`DATASET_DEFAULTS`), so
every dataset trains well without tuning. Bad settings raise :class:`TrainError` (a
``ValueError``) with a one-line message, before any work is done.

The parts live in :mod:`arenagrad.training`: ``config`` (the settings, their bounds, the
checks across them), ``datasets``, ``callbacks`` and ``pictures``.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from . import nn
from .data import ArrayDataset, DataLoader
from .grad_mode import no_grad
from .nn import functional as F
from .output import check_writable, prepare_out
from .training.callbacks import Callback, CallbackList, ProgressBar, Run, format_metric
from .training.config import (
    ACTIVATIONS,
    LIMITS,
    LOSSES,
    OPTIMIZERS,
    TrainConfig,
    TrainError,
    count_parameters,
    resolve_config,
    step_bytes,
)
from .training.datasets import DATASET_DEFAULTS, DATASETS, Split, load_dataset
from .training.pictures import LossGraph, Pictures

__all__ = [
    "DATASETS",
    "LOSSES",
    "OPTIMIZERS",
    "ACTIVATIONS",
    "DATASET_DEFAULTS",
    "LIMITS",
    "TrainConfig",
    "TrainResult",
    "TrainError",
    "Callback",
    "resolve_config",
    "load_dataset",
    "evaluate",
    "train",
    "count_parameters",
    "step_bytes",
]

# forward and backward on one batch: (xb, yb) -> (the loss, the model's outputs)
Step = Callable[[List[List[float]], List[Any]], Tuple[float, List[Any]]]
# what evaluate() measures, the result's fields of the same names
_METRICS = ("train_acc", "test_acc", "train_mse", "test_mse")


@dataclass
class TrainResult:
    """What a run produced: final metrics, per-epoch history, written files, the model."""

    config: TrainConfig
    task: str  # "classification" or "regression"
    train_acc: Optional[float] = None
    test_acc: Optional[float] = None
    train_mse: Optional[float] = None
    test_mse: Optional[float] = None
    final_loss: float = float("nan")
    # time spent in the minibatch steps only (not the per-epoch evaluation or the pictures)
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    history: Dict[str, List[float]] = field(default_factory=dict)
    files: List[Path] = field(default_factory=list)
    model: Any = None

    def epochs_to(self, accuracy: float) -> Optional[int]:
        """First epoch whose training accuracy reached ``accuracy`` (a fraction), or None."""
        for epoch, acc in zip(self.history.get("epoch", []), self.history.get("train_acc", [])):
            if acc >= accuracy:
                return int(epoch)
        return None

    def summary(self) -> str:
        """The one-line verdict the CLI prints last."""
        metrics = {k: getattr(self, k) for k in _METRICS}
        shown = ", ".join(format_metric(k, v, long=True) for k, v in metrics.items() if v is not None)
        return (
            f"{self.config.dataset}: final {shown} after {self.config.epochs} epochs "
            f"({self.seconds:.1f} s, {self.seconds_per_epoch:.3f} s/epoch)"
        )


def train(config: TrainConfig, stream: Optional[TextIO] = None, callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train as ``arenagrad train`` does and return the metrics, history and files.

    Args:
        config: the settings; ``None`` fields take the dataset's defaults.
        stream: where progress goes (default ``sys.stderr``).
        callbacks: more callbacks, called after the run's own (progress, pictures, graph).

    Raises:
        TrainError: bad settings, an output that cannot be written, a diverging loss.
    """
    c = resolve_config(config)
    stream = stream if stream is not None else sys.stderr
    out = prepare_out(c.out)
    data = load_dataset(c)
    dataset, criterion = DATASETS[c.dataset], LOSSES[c.loss]
    model = nn.MLP(
        dataset.features, c.hidden + [criterion.num_outputs(dataset.classes)], activation=c.activation, seed=c.seed
    )
    optimizer = OPTIMIZERS[c.optimizer](model.parameters(), c)
    loader = DataLoader(ArrayDataset(data.X_train, data.y_train), batch_size=c.batch_size, shuffle=True, seed=c.seed)
    run = Run(
        c,
        dataset,
        data,
        model,
        criterion,
        out,
        batch_size=min(c.batch_size, len(data.y_train)),
        batches=len(loader),
        log=_log(c.quiet, stream),
    )
    step = _step(run)
    hooks = CallbackList([*_own_callbacks(c, stream), *callbacks])
    check_writable(hooks.files(run))  # every file the run will write, before any training

    try:
        hooks.call("on_train_begin", run)
        for epoch in range(1, c.epochs + 1):
            hooks.call("on_epoch_begin", run, epoch)
            model.train()
            start, total = time.perf_counter(), 0.0
            with _diverging(c, epoch):
                for xb, yb in loader:
                    optimizer.zero_grad()
                    loss, outputs = step(xb, yb)  # forward and backward
                    optimizer.step()
                    total += loss * len(yb)
                    hooks.call("on_batch_end", run, loss, outputs, yb)
            run.seconds += time.perf_counter() - start

            model.eval()
            metrics = {"loss": total / len(data.y_train), **evaluate(model, data, dataset.task)}
            if not math.isfinite(metrics["loss"]):
                raise TrainError(f"the loss diverged (became {metrics['loss']}) at epoch {epoch}; {_diverged_hint(c)}")
            for key, value in {"epoch": epoch, **metrics}.items():
                run.history.setdefault(key, []).append(value)
            hooks.call("on_epoch_end", run, epoch, metrics)
        hooks.call("on_train_end", run)
    finally:
        hooks.call("close")

    last = {key: values[-1] for key, values in run.history.items()}
    return TrainResult(
        config=c,
        task=dataset.task,
        **{k: last.get(k) for k in _METRICS},
        final_loss=last["loss"],
        seconds=run.seconds,
        seconds_per_epoch=run.seconds / c.epochs,
        history=run.history,
        files=run.files,
        model=model,
    )


@no_grad()
def evaluate(model: Any, data: Split, task: str) -> Dict[str, float]:
    """``train_acc`` and ``test_acc`` (classification) or ``train_mse`` and ``test_mse``
    (regression) of ``model`` on the splits there are, recording no graph."""
    metrics: Dict[str, float] = {}
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test, data.y_test)):
        if X is None:
            continue
        outputs = [model(x) for x in X.tolist()]
        if task == "classification":
            metrics[f"{split}_acc"] = F.accuracy(outputs, y)
        else:
            metrics[f"{split}_mse"] = F.mse_loss(outputs, y).data
    return metrics


def _own_callbacks(c: TrainConfig, stream: TextIO) -> List[Callback]:
    """The run's own callbacks: the progress bar (unless quiet), the pictures, the loss graph."""
    own: List[Callback] = [] if c.quiet else [ProgressBar(stream)]
    if c.plots:
        own.append(Pictures())
    if c.graphviz:
        own.append(LossGraph())
    return own


def _step(run: Run) -> Step:
    """Forward and backward on one batch: eager, or a replay of a recording (``--compile``)."""
    model, criterion, classes = run.model, run.criterion, run.dataset.classes
    if run.config.compile:
        recorded = nn.CompiledStep(
            model, criterion, batch_size=run.batch_size, in_features=run.dataset.features, num_classes=classes
        )
        return lambda xb, yb: (recorded(xb, yb), recorded.outputs)

    def eager(xb: List[List[float]], yb: List[Any]) -> Tuple[float, List[Any]]:
        outputs = [model(x) for x in xb]
        loss = criterion(outputs, criterion.targets(yb, classes))
        loss.backward()
        return loss.data, outputs

    return eager


@contextlib.contextmanager
def _diverging(c: TrainConfig, epoch: int) -> Iterator[None]:
    """Weights that blow up are a TrainError blaming the learning rate, in one line.

    The engine raises as Python floats do (OverflowError, ZeroDivisionError); numpy's
    overflow warnings from the optimizer's update stay quiet, since the check of the
    epoch's loss reports the divergence once.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            yield
    except (OverflowError, ZeroDivisionError) as err:
        raise TrainError(f"the loss diverged at epoch {epoch} ({err}); {_diverged_hint(c)}") from None


def _diverged_hint(c: TrainConfig) -> str:
    hint = f"try a smaller --lr than {c.lr}"
    if c.weight_decay:
        hint += f" or a smaller --weight-decay than {c.weight_decay}"
    return hint


def _log(quiet: bool, stream: TextIO) -> Callable[[str], None]:
    """A note for the user on ``stream``, or nothing when ``quiet``."""
    if quiet:
        return lambda message: None
    return lambda message: print(message, file=stream, flush=True)
