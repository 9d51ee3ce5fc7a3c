"""Datasets, DataLoader, toy generators, digits and splits, and the package RNG."""

import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from arenagrad import data
from arenagrad import random as agrandom

# ------------------------------------------------------------------------ ArrayDataset


def test_dataset_items_are_python_numbers():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    ds = data.ArrayDataset(X, np.array([0, 1, 2, 1]))
    assert len(ds) == 4
    x, y = ds[2]
    assert x == [6.0, 7.0, 8.0] and all(type(v) is float for v in x)
    assert y == 2 and type(y) is int
    assert ds[-1][1] == 1
    with pytest.raises(IndexError):
        ds[4]


def test_dataset_label_kinds():
    X = np.zeros((3, 2))
    y_float = data.ArrayDataset(X, [0.5, 1.5, 2.5])[1][1]
    assert y_float == 1.5 and type(y_float) is float
    y_bool = data.ArrayDataset(X, np.array([True, False, True]))[0][1]
    assert y_bool == 1 and type(y_bool) is int
    y_2d = data.ArrayDataset(X, np.arange(6.0).reshape(3, 2))[2][1]
    assert y_2d == [4.0, 5.0] and all(type(v) is float for v in y_2d)
    assert data.ArrayDataset(X)[0] == ([0.0, 0.0], None)


def test_dataset_1d_X_is_one_feature():
    ds = data.ArrayDataset(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 0]))
    assert ds.X.shape == (3, 1)
    assert ds[1] == ([2.0], 1)


@pytest.mark.parametrize(
    "X, y, shown",
    [
        (np.zeros((2, 2, 2)), None, r"\(2, 2, 2\)"),
        (np.float64(3.0), None, r"\(\)"),
        (np.zeros((4, 2)), np.zeros(3), r"\(4, 2\).*\(3,\)"),
        (np.zeros((4, 2)), np.zeros((4, 1, 1)), r"\(4, 1, 1\)"),
        (np.zeros((4, 2)), np.zeros((5, 2)), r"\(5, 2\)"),
    ],
)
def test_dataset_bad_shapes_name_the_shapes(X, y, shown):
    with pytest.raises(ValueError, match=shown):
        data.ArrayDataset(X, y)


def test_dataset_rejects_non_numeric_labels():
    with pytest.raises(ValueError, match="numeric"):
        data.ArrayDataset(np.zeros((2, 1)), np.array(["a", "b"]))


# -------------------------------------------------------------------------- DataLoader


def ids_dataset(n=10):
    # Row i is [i, -i] and its label is i, so a batch tells which samples it holds.
    X = np.column_stack([np.arange(n), -np.arange(n)]).astype(np.float64)
    return data.ArrayDataset(X, np.arange(n))


def epoch_ids(loader):
    batches = list(loader)
    for xb, yb in batches:
        assert [int(x[0]) for x in xb] == yb  # rows and labels stay aligned
    return [yb for _, yb in batches]


@pytest.mark.parametrize(
    "batch_size, drop_last, sizes",
    [
        (3, False, [3, 3, 3, 1]),
        (3, True, [3, 3, 3]),
        (5, False, [5, 5]),
        (5, True, [5, 5]),
        (1, False, [1] * 10),
        (20, False, [10]),
        (20, True, []),
    ],
)
def test_loader_batching(batch_size, drop_last, sizes):
    loader = data.DataLoader(ids_dataset(10), batch_size=batch_size, drop_last=drop_last)
    batches = epoch_ids(loader)
    assert [len(b) for b in batches] == sizes
    assert len(loader) == len(sizes)
    # Without shuffle the samples come in dataset order.
    assert sum(batches, []) == list(range(sum(sizes)))


def test_loader_batch_types():
    X = np.random.default_rng(0).normal(size=(5, 2))
    xb, yb = next(iter(data.DataLoader(data.ArrayDataset(X, np.arange(5)), batch_size=4)))
    assert len(xb) == 4 and all(len(row) == 2 for row in xb)
    assert all(type(v) is float for row in xb for v in row)
    assert all(type(v) is int for v in yb)
    _, yb = next(iter(data.DataLoader(data.ArrayDataset(X, np.linspace(0, 1, 5)), batch_size=4)))
    assert all(type(v) is float for v in yb)
    _, yb = next(iter(data.DataLoader(data.ArrayDataset(X, np.ones((5, 3))), batch_size=4)))
    assert yb == [[1.0, 1.0, 1.0]] * 4
    xb, yb = next(iter(data.DataLoader(data.ArrayDataset(X), batch_size=4)))
    assert yb is None and len(xb) == 4


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_covers_every_sample_once_per_epoch(drop_last):
    n, bs = 23, 4
    loader = data.DataLoader(ids_dataset(n), batch_size=bs, shuffle=True, drop_last=drop_last, seed=1)
    orders = []
    for _ in range(3):  # re-iterable: each iter() is a fresh epoch
        ids = sum(epoch_ids(loader), [])
        if drop_last:
            assert len(ids) == n // bs * bs and len(set(ids)) == len(ids)
        else:
            assert sorted(ids) == list(range(n))
        orders.append(ids)
    assert orders[0] != list(range(len(orders[0])))  # actually shuffled
    # A new order every epoch: all three differ pairwise.
    assert orders[0] != orders[1] and orders[1] != orders[2] and orders[0] != orders[2]
    if drop_last:
        # The dropped tail is whatever the epoch's order left over, so it changes too.
        dropped = [frozenset(range(n)) - set(ids) for ids in orders]
        assert all(len(d) == n % bs for d in dropped)
        assert len(set(dropped)) == 3, dropped


def test_shuffle_seed_is_reproducible():
    a = data.DataLoader(ids_dataset(30), batch_size=7, shuffle=True, seed=5)
    b = data.DataLoader(ids_dataset(30), batch_size=7, shuffle=True, seed=5)
    c = data.DataLoader(ids_dataset(30), batch_size=7, shuffle=True, seed=6)
    ea = [epoch_ids(a) for _ in range(2)]
    assert ea == [epoch_ids(b) for _ in range(2)]
    assert ea != [epoch_ids(c) for _ in range(2)]


def test_shuffle_without_seed_follows_manual_seed():
    loader = data.DataLoader(ids_dataset(30), batch_size=30, shuffle=True)
    agrandom.manual_seed(123)
    first = epoch_ids(loader)
    agrandom.manual_seed(123)
    assert epoch_ids(loader) == first
    assert epoch_ids(loader) != first


def test_loader_over_a_generic_dataset():
    pairs = [([float(i), 1.0], i % 2) for i in range(5)]
    batches = list(data.DataLoader(pairs, batch_size=2))
    assert batches[0] == ([[0.0, 1.0], [1.0, 1.0]], [0, 1])
    assert batches[-1] == ([[4.0, 1.0]], [0])


@pytest.mark.parametrize("bs", [0, -1])
def test_loader_rejects_bad_batch_size(bs):
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(ids_dataset(4), batch_size=bs)


# -------------------------------------------------------------------------- generators

CLASSIFIERS = {
    "linear": (data.make_linear, 2),
    "xor": (data.make_xor, 2),
    "moons": (data.make_moons, 2),
    "circles": (data.make_circles, 2),
    "spiral": (data.make_spiral, 3),
}
ALL = {**{k: v[0] for k, v in CLASSIFIERS.items()}, "sine": data.make_sine}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classification_shapes_dtypes_labels(name):
    make, k = CLASSIFIERS[name]
    X, y = make(n=101, seed=0)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    counts = np.bincount(y)
    assert len(counts) == k  # every label in 0..k-1 occurs, no other
    assert counts.max() - counts.min() <= 1  # balanced
    assert np.isfinite(X).all()
    # Classes are interleaved, so the first samples are not all one class.
    assert len(set(y[:20].tolist())) > 1


def test_sine_shapes_and_values():
    X, y = data.make_sine(n=500, noise=0.0, seed=0)
    assert X.shape == (500, 1) and X.dtype == np.float64
    assert y.shape == (500,) and y.dtype == np.float64
    assert X.min() >= -np.pi and X.max() <= np.pi
    assert X.min() < -3.0 and X.max() > 3.0  # spans the interval
    np.testing.assert_allclose(y, np.sin(X[:, 0]), rtol=0, atol=1e-15)
    X, y = data.make_sine(n=20000, noise=0.1, seed=1)
    assert np.std(y - np.sin(X[:, 0])) == pytest.approx(0.1, rel=0.03)


@pytest.mark.parametrize("name", ALL)
def test_generators_deterministic_by_seed(name):
    make = ALL[name]
    X1, y1 = make(n=50, seed=7)
    X2, y2 = make(n=50, seed=7)
    X3, _ = make(n=50, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    # seed=None draws from the package generator, which manual_seed resets.
    agrandom.manual_seed(3)
    X4, y4 = make(n=50)
    agrandom.manual_seed(3)
    X5, y5 = make(n=50)
    np.testing.assert_array_equal(X4, X5)
    np.testing.assert_array_equal(y4, y5)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("n, noise", [(0, 0.1), (-3, 0.1), (10, -0.1), (10, float("nan"))])
def test_generators_reject_bad_arguments(name, n, noise):
    with pytest.raises(ValueError, match="n must be|noise must be"):
        ALL[name](n=n, noise=noise)


def test_generator_specific_errors():
    with pytest.raises(ValueError, match="factor"):
        data.make_circles(n=10, factor=1.0)
    with pytest.raises(ValueError, match="classes"):
        data.make_spiral(n=10, classes=1)
    with pytest.raises(TypeError):
        data.make_moons(n=10.5)


def test_noise_free_geometry():
    X, y = data.make_linear(n=400, noise=0.0, seed=0)
    margin = (X[:, 0] + X[:, 1]) / np.sqrt(2)  # signed distance to the separating line
    assert (margin[y == 1] >= 0.1 - 1e-12).all() and (margin[y == 0] <= -0.1 + 1e-12).all()

    X, y = data.make_xor(n=400, noise=0.0, seed=0)
    assert ((X[:, 0] * X[:, 1] < 0) == (y == 1)).all()
    assert (np.abs(X) >= 0.1).all() and (np.abs(X) <= 1.0).all()
    assert len({(a, b) for a, b in np.sign(X).tolist()}) == 4

    X, y = data.make_circles(n=400, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.3)

    X, y = data.make_moons(n=400, noise=0.0, seed=0)
    np.testing.assert_allclose(np.hypot(X[y == 0, 0], X[y == 0, 1]), 1.0)
    assert (X[y == 0, 1] >= -1e-12).all()
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1, X[y == 1, 1] - 0.5), 1.0)
    assert (X[y == 1, 1] <= 0.5 + 1e-12).all()

    X, y = data.make_spiral(n=300, noise=0.0, classes=4, seed=0)
    assert set(y.tolist()) == {0, 1, 2, 3}
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() > 0 and r.max() == pytest.approx(1.0)
    # No two points of different classes coincide (arms start off the origin).
    d = np.hypot(*(X[:, None, :] - X[None, :, :]).transpose(2, 0, 1))
    assert d[y[:, None] != y[None, :]].min() > 1e-6


def test_noise_is_gaussian_with_the_given_scale():
    clean, y0 = data.make_circles(n=4000, noise=0.0, seed=0)
    noisy, y1 = data.make_circles(n=4000, noise=0.2, seed=0)
    r0 = np.hypot(*clean.T)
    r1 = np.hypot(*noisy.T)
    # Radial deviation of a 2-D isotropic Gaussian perturbation has std ~ noise.
    assert np.std(r1[y1 == 0] - 1.0) == pytest.approx(0.2, rel=0.1)
    assert np.std(r0 - np.where(y0 == 0, 1.0, 0.5)) < 1e-12


def test_moons_matches_sklearn():
    sk = pytest.importorskip("sklearn.datasets")
    Xa, ya = data.make_moons(n=2000, noise=0.0, seed=0)
    Xs, ys = sk.make_moons(n_samples=2000, noise=0.0, random_state=0)
    for label in (0, 1):
        a, s = Xa[ya == label], Xs[ys == label]
        assert len(a) == len(s)
        np.testing.assert_allclose(a.mean(axis=0), s.mean(axis=0), atol=1e-12)
        # Same construction: without noise the two point sets are identical.
        np.testing.assert_allclose(a[np.lexsort(a.T)], s[np.lexsort(s.T)], atol=1e-12)
    Xa, ya = data.make_moons(n=2000, noise=0.1, seed=1)
    Xs, ys = sk.make_moons(n_samples=2000, noise=0.1, random_state=1)
    for label in (0, 1):
        np.testing.assert_allclose(Xa[ya == label].mean(axis=0), Xs[ys == label].mean(axis=0), atol=0.02)
        np.testing.assert_allclose(Xa[ya == label].std(axis=0), Xs[ys == label].std(axis=0), atol=0.02)


def test_circles_matches_sklearn():
    sk = pytest.importorskip("sklearn.datasets")
    Xa, ya = data.make_circles(n=1001, noise=0.0, factor=0.4, seed=0)
    Xs, ys = sk.make_circles(n_samples=1001, noise=0.0, factor=0.4, random_state=0)
    for label in (0, 1):
        a, s = Xa[ya == label], Xs[ys == label]
        np.testing.assert_allclose(a[np.lexsort(a.T)], s[np.lexsort(s.T)], atol=1e-12)


def test_to_pm1():
    out = data.to_pm1(np.array([0, 1, 1, 0]))
    np.testing.assert_array_equal(out, [-1, 1, 1, -1])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(data.to_pm1([1.0, 0.0]), [1, -1])
    with pytest.raises(ValueError, match="0, 1"):
        data.to_pm1(np.array([0, 2]))
    # Labels that already are -1/+1 are kept (the one mapping serves both labellings) ...
    np.testing.assert_array_equal(data.to_pm1(np.array([-1, 1, 1])), [-1, 1, 1])
    # ... but a mix of the two is ambiguous, and refused.
    with pytest.raises(ValueError):
        data.to_pm1(np.array([-1, 0, 1]))
    with pytest.raises(ValueError):
        data.to_pm1(np.array([0.5, 1.0]))
    for bad in (np.array(["0", "1"]), [None, 1], [1, float("nan")]):
        with pytest.raises(ValueError):
            data.to_pm1(bad)
    np.testing.assert_array_equal(data.to_pm1(np.array([True, False])), [1, -1])
    as_float = data.to_pm1(np.array([0.0, 1.0, 1.0]), np.float64)  # a loss's targets, made in one go
    assert as_float.dtype == np.float64
    np.testing.assert_array_equal(as_float, [-1.0, 1.0, 1.0])
    # micrograd's demo passes float -1/+1 labels; they come back as they are.
    np.testing.assert_array_equal(data.to_pm1(np.array([-1.0, 1.0]), np.float64), [-1.0, 1.0])
    np.testing.assert_array_equal(data.to_pm1(np.array([[0, 1], [1, 0]], np.uint8)), [[-1, 1], [1, -1]])
    # Near misses: labels that only round, wrap or overflow to a valid one.
    near = [[2**63 - 1, 1], [2**53 + 1, 1], [1e-300, 1], [0.75, 0], [0.25, 1], [1e300, 1], [np.inf, 1], [1 + 1j, 1]]
    for bad in [np.array(b) for b in near] + [np.array([127, 1], np.int8), np.array([255, 0], np.uint8)]:
        with pytest.raises(ValueError):
            data.to_pm1(bad)
    # Labels that are not float64-sized are compared as they are, not rounded first.
    exact_misses = [
        np.array([0, "1"], dtype=object),
        np.array([0, " 1 "], dtype=object),
        np.array([Fraction(10**20 + 1, 10**20), 0], dtype=object),
        np.array([Decimal("1.0000000000000000000001"), 0], dtype=object),
        np.array([complex(1, 1), 0], dtype=object),
        np.array([10**400, 1], dtype=object),  # no OverflowError on the way
        np.array([np.longdouble(1) + np.longdouble(2) ** -63, 0]) if np.finfo(np.longdouble).nmant > 52 else [2, 0],
    ]
    for bad in exact_misses:
        with pytest.raises(ValueError, match="expects labels"):
            data.to_pm1(bad)
    np.testing.assert_array_equal(data.to_pm1(np.array([1 + 0j, 0j])), [1, -1])
    np.testing.assert_array_equal(data.to_pm1(np.array([Fraction(1), 0], dtype=object)), [1, -1])
    np.testing.assert_array_equal(data.to_pm1(np.array([-1, Decimal(1)], dtype=object)), [-1, 1])
    # The error names the labels it saw.
    with pytest.raises(ValueError, match="got 0, 2"):
        data.to_pm1([0, 2, 2, 0])
    # A result of the dtype asked for, always an array; -1 must fit in it.
    for label, want in ((0, -1), (1, 1), (-1, -1)):
        out = data.to_pm1(label)
        assert isinstance(out, np.ndarray) and out.shape == () and out == want
    with pytest.raises(ValueError, match="cannot hold -1"):
        data.to_pm1([0, 1], np.uint8)


def test_one_hot():
    out = data.one_hot([2, 0, 1, 2], 3)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert data.one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)
    for bad in ([0, 3], [-1, 0], [0.0, 1.0], [[0, 1]]):
        with pytest.raises(ValueError, match="class indices in 0..2"):
            data.one_hot(bad, 3)


# --------------------------------------------------------------------- digits, splits


def test_load_digits():
    pytest.importorskip("sklearn")
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert sorted(set(y.tolist())) == list(range(10))


def test_load_digits_without_sklearn(monkeypatch):
    # A None entry in sys.modules makes the import fail as if the package were missing.
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'arenagrad\[digits\]'"):
        data.load_digits()


def test_train_test_split_partitions_and_aligns():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    Xtr, Xte, ytr, yte = data.train_test_split(X, y, test_size=0.25, seed=0)
    assert (len(Xtr), len(Xte)) == (7, 3)  # ceil(2.5) test samples, as scikit-learn
    assert sorted(ytr.tolist() + yte.tolist()) == list(range(10))
    np.testing.assert_array_equal(Xtr[:, 0], 2 * ytr)  # rows still match their labels
    np.testing.assert_array_equal(Xte[:, 0], 2 * yte)
    assert ytr.tolist() != sorted(ytr.tolist()) or yte.tolist() != sorted(yte.tolist())
    _, _, _, yte_int = data.train_test_split(X, y, test_size=4, seed=0)
    assert len(yte_int) == 4
    again = data.train_test_split(X, y, test_size=0.25, seed=0)
    np.testing.assert_array_equal(again[3], yte)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, 0, 10, -1])
def test_train_test_split_rejects_bad_sizes(test_size):
    with pytest.raises(ValueError, match="test_size"):
        data.train_test_split(np.zeros((10, 2)), np.zeros(10), test_size=test_size)


def test_train_test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\(10, 2\).*\(9,\)"):
        data.train_test_split(np.zeros((10, 2)), np.zeros(9))


# --------------------------------------------------------------------------------- RNG


def test_manual_seed_reseeds_in_place():
    rng = agrandom.get_rng()
    assert agrandom.manual_seed(42) is rng  # references kept elsewhere stay valid
    np.testing.assert_array_equal(rng.random(5), np.random.default_rng(42).random(5))


def test_rng_from():
    agrandom.manual_seed(0)
    assert agrandom.rng_from(None) is agrandom.get_rng()
    np.testing.assert_array_equal(agrandom.rng_from(9).random(3), np.random.default_rng(9).random(3))
    # An explicit seed must not advance the shared stream.
    agrandom.manual_seed(0)
    agrandom.rng_from(9).random(10)
    np.testing.assert_array_equal(agrandom.get_rng().random(3), np.random.default_rng(0).random(3))
    with pytest.raises(TypeError):
        agrandom.manual_seed(1.5)
