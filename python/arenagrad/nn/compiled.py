"""Compiled training steps: record a model and its loss once for a fixed batch
size, then replay the recorded graph for every batch at C speed.

Inputs and targets become placeholder leaves (``requires_grad=False``) whose
``.data`` is overwritten per batch; the parameters are the model's own
Values, so any optimizer works unchanged::

    step = nn.CompiledStep(model, "cross-entropy", batch_size=50, in_features=2, num_classes=2)
    for xb, yb in loader:               # numpy arrays or lists
        opt.zero_grad()
        loss = step(xb, yb)             # forward + backward, grads in model.parameters()
        opt.step()

A batch of another size (the last, short one) gets its own recording, made on
first use and kept; at most ``max_recordings`` (4) are kept, the least recently
used one is dropped to make room for a new size.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import numpy as np

import arenagrad as ag

from .. import _core
from ..replay import compile as _compile
from . import functional as F

# A loss builder gets the model's outputs for the placeholder batch and the
# placeholder targets, and returns the loss Value.
LossBuilder = Callable[[List[Any], List[Any]], Any]


def _cross_entropy(outs: List[Any], targets: List[List[Any]]) -> Any:
    # One-hot targets as data: logsumexp(row) - dot(onehot, row) equals
    # logsumexp(row) - row[t], but the class is data, not graph structure.
    return ag.mean([ag.logsumexp(o) - ag.dot(t, o) for o, t in zip(outs, targets)])


def _softmax_mse(outs: List[Any], targets: List[List[Any]]) -> Any:
    # The seed trainer's loss: squared error between softmax probabilities and one-hot.
    return F.mse_loss([ag.softmax(o) for o in outs], targets)


def _hinge(outs: List[Any], targets: List[Any]) -> Any:
    # Labels are +-1 placeholders: micrograd's max-margin loss.
    return ag.mean([(1 - y * s).relu() for s, y in zip(outs, targets)])


def _mse(outs: List[Any], targets: List[Any]) -> Any:
    return F.mse_loss(outs, targets)


class _Recording(NamedTuple):
    """One batch size's recording: placeholders, the compiled graph, the outputs."""

    inputs: List[List[Any]]
    targets: List[Any]
    graph: Any  # CompiledGraph
    outputs: List[Any]


LOSSES: Dict[str, LossBuilder] = {
    "cross-entropy": _cross_entropy,
    "mse": _softmax_mse,
    "hinge": _hinge,
    "regression-mse": _mse,
}


class CompiledStep:
    """A model plus loss, recorded per batch size and replayed.

    Args:
        model: any callable mapping one sample (a list of ``in_features``
            Values) to an output Value or a list of them, e.g. an ``nn.MLP``.
        loss: a name from ``LOSSES`` (``"cross-entropy"`` and ``"mse"`` take
            integer class labels, ``"hinge"`` 0/1 or -1/+1 labels,
            ``"regression-mse"`` float targets) or a builder
            ``loss(outputs, targets) -> Value`` over placeholder targets.
        batch_size: the batch size recorded up front.
        in_features: inputs per sample.
        num_classes: classes, for the one-hot targets of the classification losses.
        target_width: for a custom builder, Values per target (None: one Value).
        penalty: optional ``params -> Value`` added to the loss (e.g. L2).
        max_recordings: how many batch sizes keep their recording (default 4). A batch
            of a new size is recorded on first use; when ``max_recordings`` are already
            kept, the least recently used one is dropped first, so a stream of batches
            of ever-changing sizes holds a bounded amount of memory (each recording is
            the whole graph of a batch).
    """

    def __init__(
        self,
        model: Callable[[List[Any]], Any],
        loss: Any,
        batch_size: int,
        in_features: int,
        num_classes: Optional[int] = None,
        target_width: Optional[int] = None,
        penalty: Optional[Callable[[], Any]] = None,
        max_recordings: int = 4,
    ) -> None:
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)} or a callable")
            self.loss_name = loss
            builder = LOSSES[loss]
            if loss in ("cross-entropy", "mse"):
                if not num_classes or num_classes < 2:
                    raise ValueError(f"loss {loss!r} needs num_classes >= 2, got {num_classes!r}")
                target_width = num_classes
            else:
                target_width = None
        elif callable(loss):
            self.loss_name = getattr(loss, "__name__", "custom")
            builder = loss
        else:
            raise TypeError(f"loss must be a name or a callable, not {type(loss).__name__}")
        if batch_size < 1 or in_features < 1:
            raise ValueError(f"batch_size and in_features must be positive, got {batch_size}, {in_features}")
        if isinstance(max_recordings, bool) or not isinstance(max_recordings, int) or max_recordings < 1:
            raise ValueError(f"max_recordings must be a positive integer, got {max_recordings!r}")
        self.max_recordings = max_recordings
        self.model = model
        self.builder = builder
        self.in_features = int(in_features)
        self.num_classes = num_classes
        self.target_width = target_width
        self.penalty = penalty
        # Batch size -> recording, least recently used first.
        self._recordings: "OrderedDict[int, _Recording]" = OrderedDict()
        self._record(int(batch_size))
        #: The model's outputs (Values) for the last batch, refreshed by each call.
        self.outputs: List[Any] = []

    def _record(self, n: int) -> _Recording:
        """Build the graph once for batches of n samples and compile it."""
        # Make room first, so no more than max_recordings graphs are ever alive at once.
        while len(self._recordings) >= self.max_recordings:
            _, dropped = self._recordings.popitem(last=False)  # the least recently used
            if getattr(self, "outputs", None) is dropped.outputs:
                self.outputs = []  # nothing may keep the dropped graph alive
        xs = [[_core.Value(0.0, requires_grad=False) for _ in range(self.in_features)] for _ in range(n)]
        if self.target_width is None:
            ts: List[Any] = [_core.Value(0.0, requires_grad=False) for _ in range(n)]
        else:
            ts = [[_core.Value(0.0, requires_grad=False) for _ in range(self.target_width)] for _ in range(n)]
        outs = [self.model(x) for x in xs]
        loss = self.builder(outs, ts)
        if self.penalty is not None:
            loss = loss + self.penalty()
        # The model's outputs are watched so that forward() refreshes them too:
        # callers read them for accuracy without a second pass.
        flat = [o for out in outs for o in (out if isinstance(out, list) else [out])]
        rec = _Recording(xs, ts, _compile(loss, watch=flat), outs)
        self._recordings[n] = rec
        return rec

    def _targets(self, yb: Any, n: int) -> np.ndarray:
        y = np.asarray(yb)
        if y.shape[:1] != (n,):
            raise ValueError(f"targets have shape {y.shape}, expected {n} entries for a batch of {n}")
        if self.loss_name in ("cross-entropy", "mse"):
            k = self.num_classes
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= k:
                raise ValueError(f"targets must be integer class indices in 0..{k - 1}")
            onehot = np.zeros((n, k))
            onehot[np.arange(n), y] = 1.0
            return onehot
        if self.loss_name == "hinge":
            y = np.asarray(y, dtype=float)
            return np.where(y > 0, 1.0, -1.0)  # 0/1 or -1/+1 labels
        return np.asarray(y, dtype=float)

    def _load(self, xb: Any, yb: Any) -> Any:
        x = np.asarray(xb, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"inputs have shape {x.shape}, expected (batch, {self.in_features})")
        n = x.shape[0]
        rec = self._recordings.get(n)
        if rec is None:
            rec = self._record(n)
        else:
            self._recordings.move_to_end(n)
        rec.graph.set_data(rec.inputs, x)
        rec.graph.set_data(rec.targets, self._targets(yb, n))
        self.outputs = rec.outputs
        return rec.graph

    def __call__(self, xb: Any, yb: Any) -> float:
        """Forward and backward on one batch; gradients accumulate into the parameters."""
        graph = self._load(xb, yb)
        loss = graph.forward()
        graph.backward()
        return loss

    def loss(self, xb: Any, yb: Any) -> float:
        """The loss on one batch, without a backward pass."""
        return self._load(xb, yb).forward()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}: {r.graph.num_nodes} nodes" for n, r in sorted(self._recordings.items()))
        return f"CompiledStep(loss={self.loss_name!r}, recorded={{{sizes}}})"
