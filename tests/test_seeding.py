"""``random.seed`` makes models, shuffles and data sets reproducible; ``manual_seed`` overrides it.

The rule (``arenagrad.random``): an explicit ``seed=`` wins; after ``ag.manual_seed(n)``
``seed=None`` draws from the package generator; otherwise each ``seed=None`` draw takes its
seed from Python's ``random`` module, as micrograd's weights do.
"""

from __future__ import annotations

import random
import subprocess
import sys

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import data, nn
from arenagrad import random as agrandom


@pytest.fixture(autouse=True)
def python_random_mode():
    # Other tests call manual_seed, which sticks for the process; and these tests reseed
    # Python's random, which other tests should not inherit.
    state = random.getstate()
    agrandom.use_python_random()
    yield
    agrandom.use_python_random()
    random.setstate(state)


def weights(model: nn.Module) -> list[float]:
    return [p.data for p in model.parameters()]


BUILDERS = {
    "MLP": lambda: nn.MLP(2, [16, 16, 1]),
    "Layer": lambda: nn.Layer(3, 4),
    "Neuron": lambda: nn.Neuron(5),
    "Linear": lambda: nn.Linear(3, 4),
    "Sequential": lambda: nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_random_seed_fixes_the_initial_weights(name):
    build = BUILDERS[name]
    random.seed(1337)
    a = weights(build())
    random.seed(1337)
    b = weights(build())
    random.seed(1338)
    c = weights(build())
    assert a == b
    assert a != c


def test_models_built_in_a_row_differ():
    random.seed(0)
    a, b = nn.MLP(2, [4, 1]), nn.MLP(2, [4, 1])
    assert weights(a) != weights(b)
    # The second model is a function of the random state the first one left behind.
    random.seed(0)
    nn.MLP(2, [4, 1])
    assert weights(nn.MLP(2, [4, 1])) == weights(b)


def test_manual_seed_wins_over_random_seed():
    ag.manual_seed(7)
    random.seed(1)
    a = weights(nn.MLP(2, [4, 1]))
    ag.manual_seed(7)
    random.seed(2)
    b = weights(nn.MLP(2, [4, 1]))
    assert a == b
    # ... until use_python_random hands seed=None back to Python's random.
    agrandom.use_python_random()
    random.seed(1)
    c = weights(nn.MLP(2, [4, 1]))
    random.seed(1)
    assert weights(nn.MLP(2, [4, 1])) == c != a


def test_rejected_manual_seed_keeps_following_random():
    with pytest.raises(TypeError):
        ag.manual_seed(1.5)
    with pytest.raises(ValueError):
        ag.manual_seed(-1)
    random.seed(3)
    a = weights(nn.Neuron(4))
    random.seed(3)
    assert weights(nn.Neuron(4)) == a


def test_explicit_seed_ignores_and_keeps_random_state():
    random.seed(1)
    a = weights(nn.MLP(2, [4, 1], seed=5))
    after = random.random()
    random.seed(2)
    assert weights(nn.MLP(2, [4, 1], seed=5)) == a
    random.seed(1)
    assert random.random() == after  # building with seed= drew nothing from random


def test_data_sets_splits_and_shuffles_follow_random_seed():
    def run(k):
        random.seed(k)
        X, y = data.make_moons(40)
        split = data.train_test_split(X, y, test_size=0.25)
        loader = data.DataLoader(data.ArrayDataset(X, y), batch_size=40, shuffle=True)
        epochs = [next(iter(loader))[1] for _ in range(2)]
        return X, [s.tolist() for s in split], epochs

    X1, split1, epochs1 = run(5)
    X2, split2, epochs2 = run(5)
    X3, _, _ = run(6)
    np.testing.assert_array_equal(X1, X2)
    assert split1 == split2
    assert epochs1 == epochs2
    assert epochs1[0] != epochs1[1]  # each epoch draws a new order
    assert not np.array_equal(X1, X3)


def test_get_rng_follows_random_seed_until_manual_seed():
    random.seed(9)
    a = agrandom.get_rng().random(3)
    random.seed(9)
    np.testing.assert_array_equal(agrandom.get_rng().random(3), a)
    rng = agrandom.get_rng()
    assert agrandom.manual_seed(9) is rng  # one object throughout, reseeded in place
    assert agrandom.rng_from(None) is rng


# micrograd's demo.ipynb, cut to a few steps: random.seed, the moons, a 2-16-16-1 MLP, the
# SVM loss with L2 and SGD, nothing seeded but Python's random.
DEMO = """
import random
from arenagrad import data
from arenagrad.nn import MLP
from arenagrad.nn import functional as F

random.seed({seed})
X, y = data.make_moons(100, noise=0.1)
X, y = X.tolist(), data.to_pm1(y).tolist()
model = MLP(2, [16, 16, 1])
for k in range(3):
    scores = [model(x) for x in X]
    loss = F.hinge_loss(scores, y) + F.l2_penalty(model.parameters(), alpha=1e-4)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= (1.0 - 0.9 * k / 100) * p.grad
    print(repr(loss.data))
"""


def run_demo(seed: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", DEMO.format(seed=seed)], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.split()


def test_micrograd_demo_is_reproducible_across_processes():
    first = run_demo(1337)
    assert len(first) == 3
    assert run_demo(1337) == first
    assert run_demo(1338) != first
