"""micrograd's demo notebook (moons, 2-16-16-1 MLP, SVM loss, SGD) and the other toy sets.

The demo trains with micrograd's exact recipe: hinge loss ``relu(1 - y * score)``
averaged over the 100 samples, plus ``1e-4 * sum(p * p)``, full-batch SGD with learning
rate ``1.0 - 0.9 * k / 100``. Side by side with micrograd itself for a few steps the
losses, gradients and updated weights agree to 1e-12; alone it reaches 100% training
accuracy within the notebook's 100 steps. Each test runs in a few seconds at most.
"""

from __future__ import annotations

import numpy as np
import pytest
import workloads
from arenagrad import data, nn
from arenagrad.nn import functional as F

micrograd_nn = pytest.importorskip("micrograd.nn")
from micrograd.engine import Value as MValue  # noqa: E402


def micrograd_loss(model, X, y):
    """The notebook's ``loss()`` (bench/workloads.py holds it, verbatim apart from names)."""
    return workloads.micrograd_style_loss(MValue, model, X, y)


def arenagrad_loss(model, X, y):
    scores = [model(x) for x in X]
    total = F.hinge_loss(scores, y) + F.l2_penalty(model.parameters(), alpha=1e-4)
    return total, F.accuracy(scores, y)


def moons(n, seed):
    X, y = data.make_moons(n, noise=0.1, seed=seed)
    return X.tolist(), data.to_pm1(y).tolist()


def test_training_steps_match_micrograd():
    X, y = moons(30, seed=3)  # 30 samples keep micrograd's side quick
    ours = nn.MLP(2, [16, 16, 1], init="uniform", seed=0)
    ref = micrograd_nn.MLP(2, [16, 16, 1])
    for p, q in zip(ours.parameters(), ref.parameters()):
        q.data = p.data
    for k in range(3):
        loss, acc = arenagrad_loss(ours, X, y)
        mloss, macc = micrograd_loss(ref, X, y)
        assert loss.data == pytest.approx(mloss.data, rel=1e-12)
        assert acc == macc
        for model, total in ((ours, loss), (ref, mloss)):
            model.zero_grad()
            total.backward()
            learning_rate = 1.0 - 0.9 * k / 100
            for p in model.parameters():
                p.data -= learning_rate * p.grad
        for p, q in zip(ours.parameters(), ref.parameters()):
            assert p.grad == pytest.approx(q.grad, rel=1e-10, abs=1e-13)
            assert p.data == pytest.approx(q.data, rel=1e-12, abs=1e-13)


def train_demo(X, y, seed, steps=100):
    model = nn.MLP(2, [16, 16, 1], init="uniform", seed=seed)
    first_perfect = None
    for k in range(steps):
        total_loss, acc = arenagrad_loss(model, X, y)
        if acc == 1.0 and first_perfect is None:
            first_perfect = k
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    final_loss, final_acc = arenagrad_loss(model, X, y)
    return first_perfect, final_acc, final_loss.data


def test_moons_demo_reaches_full_accuracy():
    X, y = moons(100, seed=0)
    first, acc, loss = train_demo(X, y, seed=0)
    assert first is not None and first < 100
    assert acc == 1.0
    assert loss < 0.05


def test_moons_demo_on_the_notebooks_data():
    # The notebook draws make_moons after np.random.seed(1337): the same as random_state=1337.
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.make_moons(n_samples=100, noise=0.1, random_state=1337)
    first, acc, loss = train_demo(X.tolist(), (2 * y - 1).tolist(), seed=0)
    assert first is not None and acc == 1.0 and loss < 0.05


# ------------------------------------------------------------- toy datasets


def fit(model, X, y, loss_fn, steps, lr=0.05, momentum=0.9):
    """Full-batch SGD with heavy-ball momentum, written out so only nn and losses are under test."""
    params = model.parameters()
    velocity = [0.0] * len(params)
    first = None
    for _ in range(steps):
        out = [model(x) for x in X]
        loss = loss_fn(out, y) + F.l2_penalty(params, alpha=1e-4)
        if first is None:
            first = loss.data
        model.zero_grad()
        loss.backward()
        for i, p in enumerate(params):
            velocity[i] = momentum * velocity[i] + p.grad
            p.data -= lr * velocity[i]
    return first, [model(x) for x in X]


CLASSIFICATION = {
    # name: (make(seed), hidden widths, classes, loss, steps)
    "linear": (lambda s: data.make_linear(50, seed=s), [8], 2, "hinge", 40),
    "xor": (lambda s: data.make_xor(60, seed=s), [8, 8], 2, "hinge", 150),
    "moons": (lambda s: data.make_moons(60, seed=s), [16, 16], 2, "hinge", 150),
    "circles": (lambda s: data.make_circles(60, seed=s), [8, 8], 2, "bce", 150),
    "spiral": (lambda s: data.make_spiral(90, seed=s), [16, 16], 3, "ce", 250),
}


@pytest.mark.parametrize("name", list(CLASSIFICATION))
def test_toy_classification_is_learnable(name):
    make, hidden, classes, loss, steps = CLASSIFICATION[name]
    X, y = make(1)
    X = X.tolist()
    if loss == "hinge":
        y, loss_fn = data.to_pm1(y).tolist(), F.hinge_loss
    elif loss == "bce":
        y, loss_fn = y.tolist(), F.binary_cross_entropy_with_logits
    else:
        y, loss_fn = y.tolist(), F.cross_entropy
    model = nn.MLP(2, hidden + [1 if classes == 2 else classes], seed=1)
    first, out = fit(model, X, y, loss_fn, steps)
    acc = F.accuracy(out, y)
    assert acc >= 0.95, f"{name}: training accuracy {acc}"
    assert loss_fn(out, y).data < 0.5 * first


def test_sine_regression_is_learnable():
    X, y = data.make_sine(40, noise=0.1, seed=1)
    y = y.tolist()
    model = nn.MLP(1, [16, 16, 1], activation="tanh", seed=1)
    first, out = fit(model, X.tolist(), y, F.mse_loss, steps=200, lr=0.02)
    mse = F.mse_loss(out, y).data
    # sin has variance 1/2 on [-pi, pi]; the noise floor is 0.01.
    assert first > 0.2
    assert mse < 0.05, f"sine: training MSE {mse}"
    # Not just the mean: predictions follow sin(x) itself.
    pred = np.array([v.data for v in out])
    assert np.corrcoef(pred, np.sin(X[:, 0]))[0, 1] > 0.97
