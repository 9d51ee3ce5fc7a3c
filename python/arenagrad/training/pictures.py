"""The pictures of a training run, as callbacks: what the model learned, and its graph.

:class:`Pictures` draws the decision boundary (2-D classification) or the fitted curve
(regression) every ``plot_every`` epochs and at the end, their animated GIF, and the
loss and metric curves; :class:`LossGraph` writes the graphviz graph of one sample's loss
(``--graphviz``). The drawing itself is :mod:`arenagrad.plots`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import nn, plots
from .callbacks import Callback, Run, format_metric
from .config import RECORDING_OVERHEAD, step_bytes

__all__ = ["Pictures", "LossGraph", "class_probabilities"]

# The model is evaluated on a picture's grid by replaying a recorded graph (nn.CompiledForward):
# 60 x 60 points every epoch cost seconds in Python. The recording is kept within this size.
_RECORDING_MEGABYTES = 64


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """Class probabilities from a model's ``(n, k)`` outputs: the sigmoid of a single score
    (two classes, hinge loss), else the softmax of the ``k`` scores."""
    if scores.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0], -50, 50)))
        return np.column_stack([1 - p1, p1])
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Pictures(Callback):
    """Decision boundaries or the fitted curve, their GIF, and the training curves."""

    def __init__(self) -> None:
        self.frames: List[Tuple[str, Any]] = []
        self.count = 0

    @staticmethod
    def _kind(run: Run) -> Optional[str]:
        """``"boundary"`` (2-D classification), ``"fit"`` (regression) or ``None`` (digits)."""
        if run.dataset.task == "regression":
            return "fit"
        return "boundary" if run.dataset.features == 2 else None

    def _png(self, run: Run, epoch: int) -> Path:
        return run.out / f"{self._what(run)}_epoch_{epoch}_{run.config.dataset}.png"

    def _gif(self, run: Run) -> Path:
        return run.out / f"{self._what(run)}_{run.config.dataset}.gif"

    def _what(self, run: Run) -> str:
        return "decision_boundary" if self._kind(run) == "boundary" else "regression_fit"

    def _curves(self, run: Run) -> Path:
        return run.out / f"training_curves_{run.config.dataset}.png"

    @staticmethod
    def _wants_png(run: Run, epoch: int) -> bool:
        c = run.config
        return epoch > 0 and (epoch % c.plot_every == 0 or epoch == c.epochs)

    @staticmethod
    def _wants_frame(run: Run, epoch: int) -> bool:
        # Every epoch up to 60 epochs, else about 60 frames; always the last.
        c = run.config
        return c.gif and (epoch % max(1, math.ceil(c.epochs / 60)) == 0 or epoch == c.epochs)

    def files(self, run: Run) -> List[Path]:
        files = [self._curves(run)]
        if self._kind(run) is not None:
            files += [self._png(run, e) for e in range(1, run.config.epochs + 1) if self._wants_png(run, e)]
            if run.config.gif:
                files.append(self._gif(run))
        return files

    def on_train_begin(self, run: Run) -> None:
        kind, X = self._kind(run), run.data.X_train
        if kind is None:
            return
        if kind == "boundary":
            self.xs, self.ys, grid = plots.make_grid(X, steps=run.config.grid)
        else:
            self.xs = np.linspace(X.min(), X.max(), 200)
            grid = self.xs.reshape(-1, 1)
        self.grid = grid
        rows = max(1, _RECORDING_MEGABYTES * 2**20 // (RECORDING_OVERHEAD * step_bytes(1, run.sizes)))
        self.outputs = nn.CompiledForward(run.model, X.shape[1], min(rows, len(grid)))
        self._frame(run, 0, "")

    def on_epoch_end(self, run: Run, epoch: int, metrics: Dict[str, float]) -> None:
        if self._kind(run) is not None:
            train = next(k for k in metrics if k.startswith("train_"))
            self._frame(run, epoch, format_metric(train, metrics[train]))

    def _frame(self, run: Run, epoch: int, note: str) -> None:
        """Draw the model as it is after ``epoch`` (0: before training), if wanted."""
        want_png, want_frame = self._wants_png(run, epoch), self._wants_frame(run, epoch)
        if not (want_png or want_frame):
            return
        scores = self.outputs(self.grid)
        X, y = run.data.X_train, run.data.y_train
        title = f"{run.config.dataset}, epoch {epoch}" + (f": {note}" if note else "")
        if self._kind(run) == "boundary":
            state = class_probabilities(scores).reshape(len(self.ys), len(self.xs), -1)
        else:
            state = scores[:, 0]
        if want_frame:
            self.frames.append((title, state))
        if want_png:
            path = self._png(run, epoch)
            if self._kind(run) == "boundary":
                plots.plot_decision_boundary(X, y, self.xs, self.ys, state, path, title=title)
            else:
                plots.plot_regression(X, y, self.xs, state, path, title=title, truth=self._truth(run))
            self._wrote(run, path)

    def _truth(self, run: Run) -> Optional[np.ndarray]:
        return run.dataset.truth(self.xs) if run.dataset.truth is not None else None

    def _wrote(self, run: Run, path: Path) -> None:
        run.files.append(path)
        self.count += 1

    def on_train_end(self, run: Run) -> None:
        c, X, y = run.config, run.data.X_train, run.data.y_train
        path = self._curves(run)
        plots.plot_history(
            run.history,
            path,
            metric="mse" if run.dataset.task == "regression" else "accuracy",
            title=f"{c.dataset}: MLP {'-'.join(map(str, run.sizes))}, {c.loss} loss, {c.optimizer} lr={c.lr:g}",
        )
        self._wrote(run, path)
        if len(self.frames) > 1:
            path = self._gif(run)
            if self._kind(run) == "boundary":
                plots.save_boundary_gif(self.frames, X, y, self.xs, self.ys, path)
            else:
                plots.save_regression_gif(self.frames, X, y, self.xs, path, truth=self._truth(run))
            self._wrote(run, path)
        run.log(f"wrote {self.count} pictures to {run.out}/")


class LossGraph(Callback):
    """The graphviz graph of one training sample's loss after training (``.dot``, and the
    ``.svg`` picture when graphviz's ``dot`` is installed)."""

    def files(self, run: Run) -> List[Path]:
        path = run.out / f"graph_{run.config.dataset}.svg"
        return [path.with_suffix(".dot"), path]

    def on_train_end(self, run: Run) -> None:
        from .. import viz

        model, criterion = run.model, run.criterion
        x, y = run.data.X_train[0].tolist(), run.data.y_train[:1]
        model.zero_grad()
        loss = criterion([model(x)], criterion.targets(y, run.dataset.classes))
        loss.backward()
        dot, svg = self.files(run)
        try:
            picture = viz.render(
                viz.to_dot(loss, max_nodes=2000, title=f"{run.config.dataset}: loss of one sample"), svg
            )
            run.files += [dot, picture]
            run.log(f"wrote {dot} and {picture}")
        except RuntimeError as err:  # no graphviz: the .dot is written all the same
            run.files.append(dot)
            run.log(f"wrote {dot}; no picture: {err}")
        model.zero_grad()
