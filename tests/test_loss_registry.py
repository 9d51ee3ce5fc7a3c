"""One loss registry (``nn.LOSSES``): each loss, reached from ``nn.functional``, from
``nn.CompiledStep`` and from the trainer, gives the value of an independent formula.

The formulas are written out here with ``math`` on the model's outputs read as plain
floats; nothing expected is computed by arenagrad's losses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from arenagrad import nn
from arenagrad.data import to_pm1
from arenagrad.nn import functional as F
from arenagrad.train import TrainConfig, load_dataset, resolve_config, train


def softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / math.fsum(e) for v in e]


def cross_entropy(rows, labels):
    return math.fsum(math.log(math.fsum(math.exp(v) for v in r)) - r[t] for r, t in zip(rows, labels)) / len(rows)


def squared_error(rows, targets):
    diffs = [p - t for r, tr in zip(rows, targets) for p, t in zip(r, tr)]
    return math.fsum(d * d for d in diffs) / len(diffs)


def one_hot_rows(labels, k):
    return [[1.0 if j == t else 0.0 for j in range(k)] for t in labels]


# name -> (classes, how the expected loss follows from the outputs as floats and the labels)
FORMULAS = {
    "cross-entropy": (3, lambda rows, y: cross_entropy(rows, y)),
    "softmax-mse": (3, lambda rows, y: squared_error([softmax(r) for r in rows], one_hot_rows(y, 3))),
    "mse": (3, lambda rows, y: squared_error(rows, one_hot_rows(y, 3))),
    "hinge": (
        2,
        lambda rows, y: math.fsum(max(0.0, 1 - (1 if t == 1 else -1) * r[0]) for r, t in zip(rows, y)) / len(rows),
    ),
}
# mse without classes is a regression's squared error
REGRESSION = lambda rows, y: squared_error(rows, [[t] for t in y])  # noqa: E731
# the functional each name stands for
FUNCTIONS = {
    "cross-entropy": F.cross_entropy,
    "softmax-mse": F.softmax_mse_loss,
    "mse": F.mse_loss,
    "hinge": F.hinge_loss,
}


def test_every_registered_loss_is_tested_here():
    assert set(FORMULAS) == set(nn.LOSSES) == set(FUNCTIONS)
    for name, loss in nn.LOSSES.items():
        assert loss.function is FUNCTIONS[name], name  # reachable from nn.functional


def batch(classes, n=7, features=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, features))
    y = rng.normal(size=n) if classes is None else rng.integers(0, classes, n)
    if classes is not None:
        y[:classes] = np.arange(classes)  # every class present
    return X, y


def model_and_rows(outputs, X, hidden=5, seed=3):
    model = nn.MLP(X.shape[1], [hidden, outputs], seed=seed)
    outs = [model(x) for x in X.tolist()]
    rows = [[o.data] if outputs == 1 else [v.data for v in o] for o in outs]
    return model, outs, rows


CASES = [(name, classes) for name, (classes, _) in FORMULAS.items()] + [("mse", None)]


def expected(name, classes, rows, y):
    return REGRESSION(rows, y) if classes is None else FORMULAS[name][1](rows, y)


@pytest.mark.parametrize("name, classes", CASES)
def test_functional_compiled_step_and_entry_agree_with_the_formula(name, classes):
    loss = nn.LOSSES[name]
    X, y = batch(classes)
    k = loss.num_outputs(classes)
    model, outs, rows = model_and_rows(k, X)
    want = expected(name, classes, rows, y)

    # nn.functional, with targets made as the registry says (one-hot rows, -1/+1, numbers)
    targets = {
        "cross-entropy": one_hot_rows(y, 3),
        "softmax-mse": one_hot_rows(y, 3),
        "hinge": [1.0 if t == 1 else -1.0 for t in y],
    }.get(name)
    if name == "mse":
        targets = y.tolist() if classes is None else one_hot_rows(y, 3)
    assert FUNCTIONS[name](outs, targets).data == pytest.approx(want, rel=1e-12)
    # the entry itself, from labels
    assert loss(outs, loss.targets(y, classes)).data == pytest.approx(want, rel=1e-12)
    # a recorded step, replayed (twice: the second run reads the same placeholders again)
    step = nn.CompiledStep(model, name, batch_size=len(y), in_features=X.shape[1], num_classes=classes)
    assert step.loss(X, y) == pytest.approx(want, rel=1e-12)
    assert step.loss(X, y) == pytest.approx(want, rel=1e-12)


def test_cross_entropy_with_class_indices_equals_one_hot_rows():
    X, y = batch(3)
    _, outs, rows = model_and_rows(3, X)
    want = cross_entropy(rows, y)
    assert F.cross_entropy(outs, y.tolist()).data == pytest.approx(want, rel=1e-12)
    assert F.cross_entropy(outs, one_hot_rows(y, 3)).data == pytest.approx(want, rel=1e-12)


def test_cross_entropy_with_soft_targets_is_torchs():
    # -sum(p * log_softmax(x)) for probabilities that do not come from one class
    X, _ = batch(3)
    _, outs, rows = model_and_rows(3, X)
    probs = [[0.2, 0.5, 0.3]] * len(rows)
    want = math.fsum(-math.fsum(p * math.log(s) for p, s in zip(ps, softmax(r))) for ps, r in zip(probs, rows))
    assert F.cross_entropy(outs, probs).data == pytest.approx(want / len(rows), rel=1e-12)


# The dataset each loss trains on: three classes, two classes, a regression.
TRAINER_CASES = [
    ("cross-entropy", "spiral"),
    ("softmax-mse", "spiral"),
    ("mse", "spiral"),
    ("hinge", "moons"),
    ("mse", "sine"),
]


@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize("name, dataset", TRAINER_CASES)
def test_the_trainer_takes_the_formulas_loss(name, dataset, compile, tmp_path):
    # One epoch of one batch holding every sample: the epoch's loss is the loss of the
    # model as initialised (the update comes after), on the whole training set.
    config = TrainConfig(
        dataset=dataset,
        loss=name,
        samples=30,
        hidden=[6],
        epochs=1,
        batch_size=1000,
        compile=compile,
        plots=False,
        quiet=True,
        out=str(tmp_path),
    )
    classes = {"spiral": 3, "moons": 2, "sine": None}[dataset]
    X, y, _, _ = load_dataset(resolve_config(config))
    k = 1 if name == "hinge" or classes is None else classes
    _, _, rows = model_and_rows(k, X, hidden=6, seed=config.seed)  # the trainer's model, made again
    result = train(config)
    assert result.history["loss"][0] == pytest.approx(expected(name, classes, rows, y), rel=1e-12)


def test_hinge_targets_are_the_one_pm1_mapping():
    hinge = nn.LOSSES["hinge"]
    for labels in ([0, 1, 1, 0], [-1, 1, 1, -1]):
        np.testing.assert_array_equal(hinge.targets(labels), [-1.0, 1.0, 1.0, -1.0])
        np.testing.assert_array_equal(hinge.targets(labels), to_pm1(labels))
    with pytest.raises(ValueError):
        hinge.targets([0, 2])
    # 0/1 and -1/+1 labels give one loss in a recorded step
    X, y = batch(2)
    model = nn.MLP(2, [4, 1], seed=1)
    step = nn.CompiledStep(model, "hinge", batch_size=len(y), in_features=2)
    assert step.loss(X, y) == step.loss(X, 2 * y - 1)


@pytest.mark.parametrize(
    "name, classes, why",
    [
        ("cross-entropy", None, "num_classes >= 2"),
        ("softmax-mse", 1, "num_classes >= 2"),
        ("hinge", 3, "two classes"),
    ],
)
def test_a_loss_refuses_labels_it_cannot_read(name, classes, why):
    loss = nn.LOSSES[name]
    assert not loss.accepts(classes)
    with pytest.raises(ValueError, match=why):
        nn.CompiledStep(nn.MLP(2, [2]), name, batch_size=1, in_features=2, num_classes=classes)


def test_unknown_loss_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown loss 'regression-mse'; expected one of cross-entropy, mse"):
        nn.CompiledStep(nn.MLP(2, [1]), "regression-mse", batch_size=1, in_features=2)
