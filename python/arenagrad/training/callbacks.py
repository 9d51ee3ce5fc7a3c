"""Callbacks: what a training run does besides training, hooked into the loop.

The loop (:func:`arenagrad.train.train`) calls each hook of every callback in order; a hook
does nothing unless a subclass overrides it. Before training, every file the callbacks
say they will write (:meth:`Callback.files`) is checked, so a run does not train for a
minute and then fail to save its pictures. :class:`ProgressBar` is here; the pictures
are in :mod:`arenagrad.train.pictures`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO

from ..nn import functional as F
from ..nn.loss import Loss
from ..output import writing
from .config import TrainConfig
from .datasets import Dataset, Split

__all__ = ["Run", "Callback", "CallbackList", "ProgressBar", "format_metric"]


@dataclass
class Run:
    """A training run as the callbacks see it; the loop adds to ``history`` and ``seconds``,
    the callbacks to ``files``."""

    config: TrainConfig  # resolved: no None left but digits' samples and noise
    dataset: Dataset
    data: Split
    model: Any
    criterion: Loss
    out: Path
    batch_size: int  # the batch actually used: at most the training set
    batches: int  # per epoch
    log: Callable[[str], None]  # a note for the user (nothing when quiet)
    history: Dict[str, List[float]] = field(default_factory=dict)
    files: List[Path] = field(default_factory=list)
    seconds: float = 0.0  # spent in the minibatch steps so far

    @property
    def sizes(self) -> List[int]:
        """The MLP's layer sizes, ``[inputs, hidden..., outputs]``."""
        return [self.dataset.features, *self.config.hidden, self.criterion.num_outputs(self.dataset.classes)]


class Callback:
    """Base class: hooks the training loop calls, each a no-op here."""

    def files(self, run: Run) -> List[Path]:
        """Every file the callback will write in ``run`` (checked before training)."""
        return []

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch, with the model as initialised."""

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        """Before the first batch of ``epoch`` (counted from 1)."""

    def on_batch_end(self, run: Run, loss: float, outputs: List[Any], labels: List[Any]) -> None:
        """After the optimizer step of one batch: its loss and the model's outputs on it."""

    def on_epoch_end(self, run: Run, epoch: int, metrics: Dict[str, float]) -> None:
        """After ``epoch``'s evaluation: ``loss`` and ``train_acc``/``test_acc`` (or ``_mse``)."""

    def on_train_end(self, run: Run) -> None:
        """After the last epoch."""

    def close(self) -> None:
        """Last of all, also when the run fails: release what the callback holds open."""


class CallbackList:
    """Callbacks called in order; a file one cannot write is a TrainError (one line)."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def files(self, run: Run) -> List[Path]:
        """Every file the callbacks will write."""
        return [path for cb in self.callbacks for path in cb.files(run)]

    def call(self, hook: str, *args: Any) -> None:
        """``hook(*args)`` of every callback, e.g. ``call("on_epoch_end", run, epoch, metrics)``."""
        with writing():
            for cb in self.callbacks:
                getattr(cb, hook)(*args)


def format_metric(name: str, value: float, long: bool = False) -> str:
    """``"loss 0.3010"``, ``"train acc 97.5%"`` (long: ``"train accuracy 97.5%"``), ``"test MSE 0.0123"``."""
    if name == "loss":
        return f"loss {value:.4f}"
    split, kind = name.split("_")
    if kind == "acc":
        return f"{split} {'accuracy' if long else 'acc'} {100 * value:.1f}%"
    return f"{split} MSE {value:.4f}"


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss (and accuracy), then the epoch's metrics;
    a line about the run before it and the time per epoch after it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Optional[Any] = None

    def on_train_begin(self, run: Run) -> None:
        c, d = run.config, run.data
        run.log(
            f"training {c.dataset}: MLP {'-'.join(map(str, run.sizes))} ({c.activation}, "
            f"{len(run.model.parameters())} parameters), {len(d.y_train)} training samples"
            + (f", {len(d.y_test)} held out" if d.y_test is not None else "")
            + f", {c.loss} loss, {c.optimizer} lr={c.lr}"
            + (f" momentum={c.momentum}" if c.optimizer == "sgd" else "")
            + f", batch {run.batch_size}, {c.epochs} epochs"
        )

    def on_epoch_begin(self, run: Run, epoch: int) -> None:
        from tqdm.auto import tqdm

        epochs = run.config.epochs
        self.bar = tqdm(
            total=run.batches,
            desc=f"epoch {epoch:>{len(str(epochs))}}/{epochs}",
            unit="batch",
            leave=True,
            file=self.stream,
            dynamic_ncols=True,
        )
        self.seen = 0
        self.loss_sum = self.correct = 0.0

    def on_batch_end(self, run: Run, loss: float, outputs: List[Any], labels: List[Any]) -> None:
        n = len(labels)
        self.seen += n
        self.loss_sum += loss * n
        shown = format_metric("loss", self.loss_sum / self.seen)
        if run.dataset.task == "classification":
            self.correct += F.accuracy(outputs, labels) * n
            shown += f" acc {100 * self.correct / self.seen:.1f}%"
        self.bar.set_postfix_str(shown, refresh=False)  # type: ignore[union-attr]
        self.bar.update(1)  # type: ignore[union-attr]

    def on_epoch_end(self, run: Run, epoch: int, metrics: Dict[str, float]) -> None:
        self.bar.set_postfix_str(" ".join(format_metric(k, v) for k, v in metrics.items()))  # type: ignore[union-attr]
        self.close()

    def on_train_end(self, run: Run) -> None:
        run.log(
            f"{run.config.dataset}: {run.seconds / run.config.epochs:.3f} seconds per epoch "
            f"({len(run.data.y_train)} samples, batch {run.batch_size})"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
