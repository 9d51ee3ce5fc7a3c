"""The datasets ``arenagrad train`` learns, each with its shape and its own defaults.

Settings a run leaves at ``None`` take the dataset's default, so every dataset trains
well without tuning. The four 2-D toy sets share one recipe (a small MLP, SGD with
momentum 0.9, minibatches); the numbers were checked to reach >= 95% training accuracy
with seed 0 well before the last epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

from .. import data
from ..options import OptionError

__all__ = ["Dataset", "DATASETS", "DATASET_DEFAULTS", "Split", "load_dataset", "describe_defaults"]


@dataclass(frozen=True)
class Dataset:
    """One learnable dataset.

    Attributes:
        name: what ``--dataset`` calls it.
        features: inputs per sample.
        classes: number of classes, or ``None`` for a regression.
        make: ``make(n, noise=..., seed=...) -> (X, y)`` for a generated dataset; ``None``
            for a fixed one.
        size: the number of samples of a fixed dataset (``None`` for a generated one).
        defaults: the value of every setting a run leaves at ``None``.
        truth: for a regression, the noise-free target (drawn with the fit).
    """

    name: str
    features: int
    classes: Optional[int]
    make: Optional[Callable[..., Tuple[np.ndarray, np.ndarray]]]
    defaults: Dict[str, Any]
    size: Optional[int] = None
    truth: Optional[Callable[[np.ndarray], np.ndarray]] = None

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return "regression" if self.classes is None else "classification"


_TOY = dict(
    samples=200,
    noise=0.1,
    hidden=[16, 16],
    epochs=50,
    lr=0.1,
    momentum=0.9,
    batch_size=25,
    loss="cross-entropy",
    optimizer="sgd",
    test_split=0.0,
)

#: Every dataset, by name.
DATASETS: Dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("linear", 2, 2, data.make_linear, _TOY),
        Dataset("xor", 2, 2, data.make_xor, _TOY),
        Dataset("moons", 2, 2, data.make_moons, _TOY),
        Dataset("circles", 2, 2, data.make_circles, dict(_TOY, noise=0.05)),
        Dataset(
            "spiral",
            2,
            3,
            data.make_spiral,
            dict(_TOY, samples=300, noise=0.2, hidden=[32, 32], epochs=100, lr=0.01, optimizer="adam"),
        ),
        Dataset(
            "sine",
            1,
            None,
            data.make_sine,
            dict(_TOY, samples=100, hidden=[30], epochs=200, lr=0.01, batch_size=10, loss="mse"),
            truth=np.sin,
        ),
        Dataset(
            "digits",
            64,
            10,
            None,
            dict(_TOY, samples=None, noise=None, hidden=[32], epochs=15, lr=0.05, batch_size=16, test_split=0.2),
            size=1797,
        ),
    )
}

#: Each dataset's defaults, by name (the ``defaults`` of :data:`DATASETS`).
DATASET_DEFAULTS: Dict[str, Dict[str, Any]] = {name: d.defaults for name, d in DATASETS.items()}


class Split(NamedTuple):
    """A dataset's samples, split for training and testing (no test split: ``None``\\ s)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]


def load_dataset(c: Any) -> Split:
    """The samples a resolved :class:`~arenagrad.train.TrainConfig` asks for.

    Raises:
        OptionError: the digits need scikit-learn, which is not installed.
    """
    d = DATASETS[c.dataset]
    if d.make is not None:
        X, y = d.make(c.samples, noise=c.noise, seed=c.seed)
    else:
        try:
            X, y = data.load_digits()
        except ImportError as err:
            raise OptionError(f"the digits dataset needs scikit-learn ({err})") from None
        X, y = X[: c.samples], y[: c.samples]  # samples=None: all of them
    if c.test_split:
        X_tr, X_te, y_tr, y_te = data.train_test_split(X, y, test_size=c.test_split, seed=c.seed)
        return Split(X_tr, y_tr, X_te, y_te)
    return Split(X, y, None, None)


def describe_defaults() -> str:
    """The table of per-dataset defaults that ``arenagrad train -h`` ends with."""
    columns = [
        ("samples", "samples", ">7"),
        ("noise", "noise", ">5"),
        ("hidden", "hidden", "<7"),
        ("epochs", "epochs", ">6"),
        ("lr", "lr", ">5"),
        ("optimizer", "optimizer", "<9"),
        ("batch_size", "batch", ">5"),
        ("loss", "loss", "<13"),
        ("test_split", "test", "<4"),
    ]

    def cell(name: str, d: Dataset) -> str:
        value = d.defaults[name]
        if value is None:  # a fixed dataset: all its samples, no noise
            return str(d.size) if name == "samples" else "-"
        if isinstance(value, list):
            return " ".join(map(str, value))
        return f"{value:g}" if isinstance(value, float) else str(value)

    head = ("  " + f"{'dataset':<8}" + "".join(f" {title:{align}}" for _, title, align in columns)).rstrip()
    rows = [
        ("  " + f"{d.name:<8}" + "".join(f" {cell(n, d):{align}}" for n, _, align in columns)).rstrip()
        for d in DATASETS.values()
    ]
    return "\n".join(
        [
            "per-dataset defaults (used for every option left out):",
            head,
            *rows,
            "  sgd uses momentum 0.9 unless --momentum is given; adam ignores --momentum.",
        ]
    )
