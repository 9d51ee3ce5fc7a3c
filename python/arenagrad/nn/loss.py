"""Losses by name: the one table that ``nn.CompiledStep``, the trainer and the CLI read.

A dataset has *labels* (class indices, or numbers for a regression); a loss function of
:mod:`arenagrad.nn.functional` reads *targets* of a layout that does not depend on the
batch: one-hot rows, -1/+1 labels, numbers. That is what lets a recorded step
(``nn.CompiledStep``) keep its targets as placeholders and replay one graph for every
batch, and it is why each entry says how its targets are made from labels:

=================  ======================  =============================  ================
name               function                targets (from labels)          model outputs
=================  ======================  =============================  ================
``cross-entropy``  ``F.cross_entropy``     one-hot rows                   one per class
``softmax-mse``    ``F.softmax_mse_loss``  one-hot rows                   one per class
``mse``            ``F.mse_loss``          one-hot rows, or the numbers   one per class, or
                                           themselves (no classes)        one
``hinge``          ``F.hinge_loss``        -1/+1 (``data.to_pm1``)        one score
=================  ======================  =============================  ================

::

    criterion = nn.LOSSES["cross-entropy"]
    outputs = [model(x) for x in xb]
    loss = criterion(outputs, criterion.targets(yb, num_classes=3))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from .._core import Value
from ..data import one_hot, to_pm1
from . import functional as F

__all__ = ["Loss", "LOSSES", "get_loss"]

# How an entry's targets are made from labels.
_CLASSES = "classes"  # class indices -> one-hot rows; needs the number of classes
_TWO_CLASSES = "two classes"  # 0/1 or -1/+1 labels -> -1/+1; one score per sample
_ANY = "any"  # class indices -> one-hot rows when classes are given, else the numbers


@dataclass(frozen=True)
class Loss:
    """One entry of :data:`LOSSES`: a loss function and the targets it reads.

    Calling the entry calls ``function(outputs, targets)`` and returns the mean loss.
    """

    name: str
    function: Callable[..., Value]
    labels: str  # one of _CLASSES, _TWO_CLASSES, _ANY
    help: str

    def __call__(self, outputs: Sequence[Any], targets: Any) -> Value:
        return self.function(outputs, targets)

    def accepts(self, num_classes: Optional[int]) -> bool:
        """Whether labels of ``num_classes`` classes (``None``: numbers, no classes) fit."""
        if num_classes is not None and num_classes < 2:
            return False
        if self.labels == _CLASSES:
            return num_classes is not None
        if self.labels == _TWO_CLASSES:
            return num_classes in (None, 2)
        return True

    @property
    def takes_numbers(self) -> bool:
        """Whether the loss fits a regression (its targets may be any numbers)."""
        return self.labels == _ANY

    def check(self, num_classes: Optional[int]) -> None:
        """Raise ``ValueError`` unless :meth:`accepts` ``num_classes``."""
        if not self.accepts(num_classes):
            need = {
                _CLASSES: "num_classes >= 2",
                _TWO_CLASSES: "two classes (num_classes None or 2)",
                _ANY: "num_classes None or >= 2",
            }[self.labels]
            raise ValueError(f"loss {self.name!r} needs {need}, got num_classes={num_classes!r}")

    def target_width(self, num_classes: Optional[int]) -> Optional[int]:
        """Numbers per sample in the targets: ``None`` for one number, else ``num_classes``."""
        self.check(num_classes)
        return None if self.labels == _TWO_CLASSES or num_classes is None else num_classes

    def num_outputs(self, num_classes: Optional[int]) -> int:
        """Outputs per sample the model needs: one per class, or one score or value."""
        return self.target_width(num_classes) or 1

    def targets(self, labels: Any, num_classes: Optional[int] = None) -> np.ndarray:
        """The float64 targets :attr:`function` reads, made from a batch of labels.

        Raises:
            ValueError: the labels do not fit (class indices out of range, a third class
                for a two-class loss...) or the loss does not take ``num_classes``.
        """
        return self.encoder(num_classes)(labels)

    def encoder(self, num_classes: Optional[int] = None) -> Callable[[Any], np.ndarray]:
        """:meth:`targets` for ``num_classes``, checked once: a training loop's, for every batch.

        Raises:
            ValueError: the loss does not take ``num_classes``.
        """
        width = self.target_width(num_classes)
        if self.labels == _TWO_CLASSES:
            return partial(to_pm1, dtype=np.float64)
        if width is None:
            return partial(np.asarray, dtype=np.float64)
        return partial(one_hot, num_classes=width)


#: Every loss the trainer (``arenagrad train --loss``) and ``nn.CompiledStep`` know, by name.
LOSSES: Dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("cross-entropy", F.cross_entropy, _CLASSES, "softmax cross entropy of the logits"),
        Loss(
            "mse",
            F.mse_loss,
            _ANY,
            "squared error of the outputs against one-hot targets, or against the values for a regression",
        ),
        Loss(
            "softmax-mse",
            F.softmax_mse_loss,
            _CLASSES,
            "squared error of the softmax probabilities against one-hot targets",
        ),
        Loss("hinge", F.hinge_loss, _TWO_CLASSES, "micrograd's max-margin loss on one score, two classes only"),
    )
}


def get_loss(name: str) -> Loss:
    """The entry of :data:`LOSSES` called ``name``; ``ValueError`` listing them otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None
