"""Datasets and batching for a scalar engine: numpy in, Python floats out.

A scalar model is called once per sample, ``model(x)`` with ``x`` a list of floats (the
micrograd convention), so :class:`DataLoader` yields batches as lists of Python rows
rather than arrays. The toy generators are the classic 2-D classification sets
(linear, XOR, moons, circles, spiral) and a 1-D regression (sine), built with numpy
alone. ``seed=None`` follows Python's ``random`` state, or ``arenagrad.manual_seed`` once
it has been called (see :mod:`arenagrad.random`).
"""

from __future__ import annotations

import math
import operator
import reprlib
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from .random import SeedLike, rng_from

__all__ = [
    "ArrayDataset",
    "DataLoader",
    "make_linear",
    "make_xor",
    "make_moons",
    "make_circles",
    "make_spiral",
    "make_sine",
    "to_pm1",
    "one_hot",
    "load_digits",
    "train_test_split",
]


# ----------------------------------------------------------------------------- datasets


class ArrayDataset:
    """Rows of a feature matrix ``X`` with optional labels or targets ``y``.

    Args:
        X: ``(n, d)`` array-like of numbers, converted to float64; a 1-D ``X`` is read as
            ``n`` samples of one feature, ``(n, 1)``.
        y: optional ``(n,)`` labels/targets or ``(n, k)`` targets. Integer (or bool)
            labels become int64, anything else float64.

    ``dataset[i]`` is ``(x_row, y_i)``: ``x_row`` a list of Python floats, ``y_i`` a Python
    int (integer labels), a float, a list of floats (2-D ``y``), or ``None`` without ``y``.
    """

    def __init__(self, X: Any, y: Any = None) -> None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d) or 1-D (n,), got shape {X.shape}")
        if y is not None:
            y = np.asarray(y)
            if y.dtype == np.bool_ or np.issubdtype(y.dtype, np.integer):
                y = y.astype(np.int64, copy=False)
            elif np.issubdtype(y.dtype, np.number):
                y = y.astype(np.float64, copy=False)
            else:
                raise ValueError(f"y must be numeric, got dtype {y.dtype}")
            if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, k) to match "
                    f"X of shape {X.shape}, got shape {y.shape}"
                )
        self.X: np.ndarray = X
        self.y: Optional[np.ndarray] = y

    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, i: int) -> Tuple[List[float], Any]:
        # tolist() turns numpy scalars into Python ones, which the engine's Value takes
        # without a conversion per operation.
        return self.X[i].tolist(), None if self.y is None else self.y[i].tolist()

    def __repr__(self) -> str:
        y = "None" if self.y is None else f"{self.y.shape} {self.y.dtype}"
        return f"ArrayDataset(X={self.X.shape}, y={y})"


class DataLoader:
    """Iterate over a dataset in mini-batches, as ``torch.utils.data.DataLoader``.

    Each ``iter(loader)`` is a new epoch. A batch is ``(xb, yb)``: ``xb`` a list of rows
    (each a list of Python floats), ``yb`` the list of their labels (or ``None`` when the
    dataset has no ``y``).

    Args:
        dataset: an :class:`ArrayDataset`, or any object with ``__len__`` and a
            ``__getitem__`` returning ``(x, y)`` pairs.
        batch_size: samples per batch (> 0).
        shuffle: draw a new order every epoch.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        seed: seed for the shuffling; the loader keeps its own generator, so epochs differ
            from each other but the whole sequence repeats for the same seed. ``None``
            draws each epoch's order by :func:`arenagrad.random.rng_from`: from Python's
            ``random`` state (``random.seed``), or from the package generator once
            ``arenagrad.manual_seed`` has been called.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: SeedLike = None,
    ) -> None:
        batch_size = operator.index(batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self) -> Iterator[Tuple[List[List[float]], Any]]:
        n = len(self.dataset)
        if self.shuffle:
            # Draw the order now, not at the first next(), so seeding before iter() counts.
            rng = self._rng if self._rng is not None else rng_from(None)
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[Tuple[List[List[float]], Any]]:
        bs, n = self.batch_size, len(order)
        stop = n - n % bs if self.drop_last else n
        ds = self.dataset
        fast = isinstance(ds, ArrayDataset)
        for start in range(0, stop, bs):
            idx = order[start : start + bs]
            if fast:
                # One fancy-index and one tolist() per batch instead of per row.
                xb = ds.X[idx].tolist()
                yb = None if ds.y is None else ds.y[idx].tolist()
            else:
                pairs = [ds[i] for i in idx.tolist()]
                xb = [x for x, _ in pairs]
                yb = [y for _, y in pairs]
            yield xb, yb


# --------------------------------------------------------------------------- generators


def _check_args(n: int, noise: float) -> int:
    n = operator.index(n)
    if n <= 0:
        raise ValueError(f"n must be a positive integer, got {n}")
    if not noise >= 0:  # also catches NaN
        raise ValueError(f"noise must be non-negative, got {noise}")
    return n


def _shuffled(rng: np.random.Generator, X: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    # Generators build the classes one after the other; mix them so an unshuffled
    # DataLoader still sees every class in every batch.
    perm = rng.permutation(len(y))
    return X[perm], y[perm]


def make_linear(n: int = 100, noise: float = 0.1, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Two classes on either side of the line ``x0 + x1 = 0``.

    Each class fills a 2 x 0.9 strip starting 0.1 away from the line (so without noise
    the classes are separable with a margin), then Gaussian noise of standard deviation
    ``noise`` is added to both coordinates. Labels 0 (below) / 1 (above), balanced.

    Returns:
        ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)``.
    """
    n = _check_args(n, noise)
    rng = rng_from(seed)
    y = np.arange(n) % 2
    along = rng.uniform(-1.0, 1.0, n)  # position along the boundary
    across = rng.uniform(0.1, 1.0, n) * np.where(y == 1, 1.0, -1.0)  # signed distance
    s = 1.0 / math.sqrt(2.0)
    X = np.column_stack([s * (across - along), s * (across + along)])
    X += rng.normal(scale=noise, size=X.shape)
    return _shuffled(rng, X, y.astype(np.int64))


def make_xor(n: int = 100, noise: float = 0.1, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Four clusters, one per quadrant; label 1 where the coordinates' signs differ.

    Points are uniform in ``0.1 <= |x0|, |x1| <= 1`` of their quadrant (the quadrants are
    used in turn, so the classes are balanced), plus Gaussian noise ``noise``.

    Returns:
        ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)`` in {0, 1}.
    """
    n = _check_args(n, noise)
    rng = rng_from(seed)
    quadrant = np.arange(n) % 4
    sx = np.where(quadrant & 1, -1.0, 1.0)
    sy = np.where(quadrant & 2, -1.0, 1.0)
    X = rng.uniform(0.1, 1.0, (n, 2)) * np.column_stack([sx, sy])
    y = (sx != sy).astype(np.int64)
    X += rng.normal(scale=noise, size=X.shape)
    return _shuffled(rng, X, y)


def _two_classes(
    rng: np.random.Generator, outer: np.ndarray, inner: np.ndarray, noise: float
) -> Tuple[np.ndarray, np.ndarray]:
    """sklearn's moons/circles tail: class 0 the ``outer`` points, class 1 the
    ``inner`` ones (each a ``(2, k)`` array of x and y rows), shuffled, then
    Gaussian noise of standard deviation ``noise`` on every coordinate."""
    X = np.hstack([outer, inner]).T
    y = np.hstack([np.zeros(outer.shape[1], np.int64), np.ones(inner.shape[1], np.int64)])
    X, y = _shuffled(rng, X, y)
    X += rng.normal(scale=noise, size=X.shape)
    return X, y


def make_moons(n: int = 100, noise: float = 0.1, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, constructed as ``sklearn.datasets.make_moons``.

    Class 0 is the upper half of the unit circle (``n // 2`` points, evenly spaced),
    class 1 the lower half circle centred at (1, 0.5); the samples are shuffled and
    Gaussian noise of standard deviation ``noise`` is added.

    Returns:
        ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)`` in {0, 1}.
    """
    n = _check_args(n, noise)
    rng = rng_from(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    outer = np.vstack([np.cos(t_out), np.sin(t_out)])
    inner = np.vstack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5])
    return _two_classes(rng, outer, inner, noise)


def make_circles(
    n: int = 100, noise: float = 0.05, factor: float = 0.5, seed: SeedLike = None
) -> Tuple[np.ndarray, np.ndarray]:
    """A circle inside a circle, constructed as ``sklearn.datasets.make_circles``.

    Class 0 is the unit circle (``n // 2`` evenly spaced points), class 1 a circle of
    radius ``factor`` (0 <= factor < 1); shuffled, plus Gaussian noise ``noise``.

    Returns:
        ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)`` in {0, 1}.
    """
    n = _check_args(n, noise)
    if not 0 <= factor < 1:
        raise ValueError(f"factor has to be in [0, 1), got {factor}")
    rng = rng_from(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    outer = np.vstack([np.cos(t_out), np.sin(t_out)])
    inner = np.vstack([factor * np.cos(t_in), factor * np.sin(t_in)])
    return _two_classes(rng, outer, inner, noise)


def make_spiral(
    n: int = 300, noise: float = 0.2, classes: int = 3, seed: SeedLike = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n "spiral" data set).

    Arm ``k`` has radius growing linearly from the centre to 1 while its angle turns
    4 radians from ``2*pi*k/classes``. As in CS231n, ``noise`` is the standard deviation
    of Gaussian noise on the *angle* (radians), not on the coordinates. The ``n`` points
    are split as evenly as possible (the first ``n % classes`` classes get one more).

    Returns:
        ``X`` float64 ``(n, 2)``, ``y`` int64 ``(n,)`` in ``0 .. classes-1``.
    """
    n = _check_args(n, noise)
    classes = operator.index(classes)
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    rng = rng_from(seed)
    y = np.arange(n) % classes
    y.sort()  # class k gets a contiguous run, so positions along the arm are per class
    X = np.empty((n, 2))
    for k in range(classes):
        idx = np.flatnonzero(y == k)
        m = len(idx)
        r = np.linspace(0.0, 1.0, m + 1)[1:]  # skip r=0: every arm would share the origin
        t = 4.0 * r + 2 * np.pi * k / classes + rng.normal(scale=noise, size=m)
        X[idx, 0] = r * np.sin(t)
        X[idx, 1] = r * np.cos(t)
    return _shuffled(rng, X, y.astype(np.int64))


def make_sine(n: int = 100, noise: float = 0.1, seed: SeedLike = None) -> Tuple[np.ndarray, np.ndarray]:
    """Regression data: ``x ~ Uniform[-pi, pi]``, ``y = sin(x) + Normal(0, noise)``.

    Returns:
        ``X`` float64 ``(n, 1)``, ``y`` float64 ``(n,)``.
    """
    n = _check_args(n, noise)
    rng = rng_from(seed)
    x = rng.uniform(-np.pi, np.pi, n)
    y = np.sin(x) + rng.normal(scale=noise, size=n)
    return x.reshape(n, 1), y


def to_pm1(y: Any, dtype: Any = np.int64) -> np.ndarray:
    """Two-class labels as -1/+1 (int64, or ``dtype``), the targets of a hinge loss as in
    micrograd's demo.

    0/1 labels map 0 -> -1 and 1 -> +1; labels that already are -1/+1 are kept. Labels
    are compared exactly: a label that only rounds to 0 or 1 is refused.

    Raises:
        ValueError: a label outside {-1, 0, 1}, both 0 and -1 among the labels, or a
            ``dtype`` that cannot hold -1.
    """
    out = np.dtype(dtype)
    if out.kind not in "if":
        raise ValueError(f"to_pm1 makes -1/+1 labels; dtype {out} cannot hold -1")
    y = np.asarray(y)
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and y.dtype.itemsize <= 8):
        # float64 holds these exactly near 0 and 1, so tests on it are exact;
        # one pass per test (np.isin costs ten times more): a training loop
        # encodes every batch.
        # Float constants, not ints: numpy converts a Python int operand on
        # every call (0.3-0.5 us each, a third of this path).
        t = y.astype(np.float64, copy=False)
        if not np.count_nonzero(np.abs(t) != 1.0):
            return t.astype(out, copy=False)
        if not np.count_nonzero(t != (t > 0.5)):  # each is 1 where above 0.5, else 0
            return np.asarray(t * 2.0 - 1.0, dtype=out)
    elif y.dtype.kind in "fcO":  # long double, complex, Python objects: compared as they are
        try:
            pos = np.asarray(y == 1, dtype=bool)
            if (
                np.count_nonzero(pos | np.asarray(y == -1, dtype=bool)) == y.size
                or np.count_nonzero(pos | np.asarray(y == 0, dtype=bool)) == y.size
            ):
                return np.where(pos, out.type(1), out.type(-1))
        except (TypeError, ValueError):  # an object that cannot be compared with a number
            pass
    raise ValueError(f"to_pm1 expects labels in {{0, 1}} or in {{-1, +1}}, got {_some_labels(y)}")


def _some_labels(y: np.ndarray, most: int = 5) -> str:
    """A few of the distinct labels, for an error message."""
    seen: List[str] = []
    for v in y.flat:
        r = reprlib.repr(v.item() if isinstance(v, np.generic) else v)
        if r not in seen:
            seen.append(r)
            if len(seen) > most:
                return ", ".join(seen[:most]) + ", ..."
    return ", ".join(seen)


def one_hot(y: Any, num_classes: int) -> np.ndarray:
    """Class indices as float64 rows with 1.0 at the class, as ``torch.nn.functional.one_hot``.

    Raises:
        ValueError: ``y`` is not a 1-D array of integers in ``0 .. num_classes - 1``.
    """
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes)):
        raise ValueError(f"labels must be integer class indices in 0..{num_classes - 1}")
    return np.eye(num_classes)[y]


# ------------------------------------------------------------------- real data, splits


def load_digits() -> Tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits (UCI), from scikit-learn's bundled copy (no network).

    Returns:
        ``X`` float64 ``(1797, 64)`` with pixels scaled from 0..16 to [0, 1], ``y`` int64
        ``(1797,)`` in 0..9.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as err:
        raise ImportError("load_digits needs scikit-learn: pip install 'arenagrad[digits]'") from err
    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    return X, y


def train_test_split(
    X: Any, y: Any, test_size: float = 0.2, seed: SeedLike = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split into ``X_train, X_test, y_train, y_test`` (scikit-learn's order).

    Args:
        X, y: arrays with the same first dimension.
        test_size: fraction of the samples in (0, 1) (the test count is rounded up, as in
            scikit-learn) or an absolute number of test samples.
        seed: seed for the shuffle; ``None`` follows ``random.seed`` or
            ``arenagrad.manual_seed`` (see :mod:`arenagrad.random`).
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y must have the same first dimension, got shapes {X.shape} and {y.shape}")
    n = X.shape[0]
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1) as a fraction, got {test_size}")
        n_test = math.ceil(test_size * n)
    else:
        n_test = operator.index(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} with {n} samples leaves an empty train or test set")
    perm = rng_from(seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]
