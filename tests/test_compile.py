"""Compiled replay: bit-identical to eager, same errors, nothing changed on failure."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import nn
from arenagrad.nn import functional as F
from conftest import live

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import workloads  # noqa: E402


def eager_grads(leaves, out):
    for v in leaves:
        v.grad = 0.0
    out.backward()
    return [v.grad for v in leaves]


def test_design_graph_replay_is_bit_identical_to_eager():
    leaves, nodes = workloads.scalar_graph_arenagrad(ag, 2000)
    out = nodes[-1]
    want_grads = eager_grads(leaves, out)
    want = out.data
    for v in leaves:
        v.grad = 0.0
    step = ag.compile(out)
    assert step.forward() == want
    step.backward()
    assert [v.grad for v in leaves] == want_grads

    # New leaf data: replay against a freshly built eager graph on the same data.
    rng = np.random.default_rng(0)
    new = rng.uniform(-1, 1, len(leaves))
    step.set_data(leaves, new)
    for v in leaves:
        v.grad = 0.0
    got = step.forward()
    step.backward()
    got_grads = [v.grad for v in leaves]
    # A fresh eager graph built from the new data (building reads .data).
    fresh, nodes3 = workloads.scalar_graph_arenagrad(ag, 2000, leaf_values=new)
    nodes3[-1].backward()
    assert got == nodes3[-1].data
    assert got_grads == [v.grad for v in fresh]
    assert out.data == got  # forward writes the output's data


def test_design_graph_value_matches_published_and_torch():
    leaves, nodes = workloads.scalar_graph_arenagrad(ag, 10_000)
    assert len(nodes) == 17_600
    assert nodes[-1].data == workloads.SCALAR_GRAPH_10K_OUTPUT
    step = ag.compile(nodes[-1])
    assert step.forward() == workloads.SCALAR_GRAPH_10K_OUTPUT
    torch = pytest.importorskip("torch")
    tl, tn = workloads.scalar_graph_torch(torch, 2000)
    al, an = workloads.scalar_graph_arenagrad(ag, 2000)
    tn[-1].backward()
    c = ag.compile(an[-1])
    c.forward()
    c.backward()
    assert an[-1].data == pytest.approx(tn[-1].item(), rel=1e-12)
    for a, t in zip(al, tl):
        tg = 0.0 if t.grad is None else t.grad.item()
        assert a.grad == pytest.approx(tg, rel=1e-9, abs=1e-15)


def test_mlp_cross_entropy_replay_matches_eager_exactly():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 3))
    y = rng.integers(0, 4, 20)
    m = nn.MLP(3, [8, 4], seed=3)
    rows = [[ag.Value(float(v), requires_grad=False) for v in r] for r in X]
    loss = F.cross_entropy([m(r) for r in rows], y.tolist())
    step = ag.compile(loss)
    m.zero_grad()
    loss.backward()
    want = [p.grad for p in m.parameters()]
    m.zero_grad()
    assert step.forward() == loss.data
    step.backward()
    assert [p.grad for p in m.parameters()] == want
    # Leaf gradients accumulate across replays as across eager calls. A replay
    # sums its contributions from zero and adds them once (so that threads
    # replaying over shared leaves lose nothing), so a second call matches
    # eager to rounding, not bit for bit.
    step.backward()
    twice = [p.grad for p in m.parameters()]
    m.zero_grad()
    loss.backward()
    loss.backward()
    assert twice == pytest.approx([p.grad for p in m.parameters()], rel=1e-13)
    assert twice == [2 * g for g in want]  # g + g is exact


def test_multiple_outputs_and_output_gradients():
    a, b = ag.Value(1.5), ag.Value(-0.5)
    u = a * b
    v = (a + b).tanh()
    step = ag.compile([u, v])
    assert step.forward() == [u.data, v.data]
    step.backward([2.0, 3.0])
    t = math.tanh(1.0)
    assert a.grad == pytest.approx(2.0 * -0.5 + 3.0 * (1 - t * t))
    assert b.grad == pytest.approx(2.0 * 1.5 + 3.0 * (1 - t * t))
    with pytest.raises(ValueError, match="2 outputs"):
        step.backward([1.0])


def test_an_output_listed_twice_gets_both_seeds():
    """As torch.autograd.backward([u, u], [g1, g2]): u's gradient is g1 + g2."""
    x = ag.Value(0.4)
    u = x.sin() * 3.0
    step = ag.compile([u, u])
    step.forward()
    step.backward([2.0, 5.0])
    assert x.grad == pytest.approx(7.0 * 3.0 * math.cos(0.4), rel=1e-15)
    x.grad = 0.0
    step.backward()  # default seeds: 1 each
    assert x.grad == pytest.approx(2.0 * 3.0 * math.cos(0.4), rel=1e-15)
    # Two outputs sharing a subgraph: the contributions add up at x.
    x.grad = 0.0
    v = u * u
    ag.compile([u, v]).backward([1.0, 1.0])
    su = 3.0 * math.sin(0.4)
    assert x.grad == pytest.approx((1.0 + 2.0 * su) * 3.0 * math.cos(0.4), rel=1e-14)


def test_leaves_are_stable_and_exclude_numbers():
    x, w = ag.Value(2.0, requires_grad=False), ag.Value(3.0)
    out = ag.mean([x * w, 5.0, w.exp()])
    step = ag.compile(out)
    assert step.leaves == ag.compile(out).leaves
    assert set(map(id, step.leaves)) == {id(x), id(w)}
    assert step.num_nodes >= 5 and "CompiledGraph" in repr(step)


@pytest.mark.parametrize(
    "build, data, exc",
    [
        (lambda x: x.log(), -1.0, ValueError),
        (lambda x: 1.0 / x, 0.0, ZeroDivisionError),
        (lambda x: (x * 10).exp(), 100.0, OverflowError),
        (lambda x: x**0.5, -4.0, ValueError),
    ],
)
def test_replay_errors_match_eager_and_change_nothing(build, data, exc):
    x = ag.Value(1.0)
    out = build(x) * 2
    step = ag.compile(out)
    step.backward()
    grad_before, out_before = x.grad, out.data
    x.data = data
    with pytest.raises(exc):
        build(ag.Value(data))  # eager raises the same type
    with pytest.raises(exc):
        step.forward()
    assert x.data == data and x.grad == grad_before and out.data == out_before


def test_softplus_backward_reads_what_the_last_good_forward_kept():
    # Replay keeps softplus's exp from forward for backward (eager recomputes
    # it): right after compile, after a new forward and after a failed one,
    # backward must give eager's bits at the values of the last good forward.
    def eager_grad(d):
        x = ag.Value(d)
        (x.softplus() * x).log().backward()
        return x.grad

    x = ag.Value(0.7)
    out = (x.softplus() * x).log()  # log fails where x <= 0
    step = ag.compile(out)
    step.backward()
    assert x.grad == eager_grad(0.7)
    good = 0.7
    for d in (2.5, -30.0, 40.0):
        x.data, x.grad = d, 0.0
        if d < 0:
            with pytest.raises(ValueError):
                step.forward()
        else:
            step.forward()
            good = d
        step.backward()
        assert x.grad == eager_grad(good), d


def test_set_data_checks_shape_and_leaves():
    xs = [[ag.Value(0.0, requires_grad=False) for _ in range(3)] for _ in range(2)]
    out = ag.sum([ag.sum(r) for r in xs])
    step = ag.compile(out)
    step.set_data(xs, np.arange(6.0).reshape(2, 3))
    assert step.forward() == 15.0
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        step.set_data(xs, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not a leaf"):
        step.set_data([out], np.zeros(1))
    with pytest.raises(TypeError):
        step.set_data([1.0], np.zeros(1))
    assert step.forward() == 15.0  # failed calls changed nothing


def test_compiled_graph_keeps_its_leaves_alive():
    before = live()
    x = ag.Value(3.0)
    step = ag.compile((x * x).relu())
    del x
    leaf = step.leaves[0]
    leaf.data = 4.0
    assert step.forward() == 16.0
    del leaf, step
    assert live() == before


def test_compile_rejects_bad_outputs():
    with pytest.raises(TypeError):
        ag.compile(3.0)
    with pytest.raises(ValueError):
        ag.compile([])
    with pytest.raises(TypeError):
        ag.compile([ag.Value(1.0), "x"])


@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("loss", ["cross-entropy", "softmax-mse", "hinge", "mse"])
def test_compiled_step_matches_eager_step(loss, alpha):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(13, 2))
    k = 3 if loss in ("cross-entropy", "softmax-mse") else 1
    y = rng.integers(0, k, 13) if k > 1 else (rng.integers(0, 2, 13) if loss == "hinge" else rng.normal(size=13))
    eager, compiled = nn.MLP(2, [5, k], seed=4), nn.MLP(2, [5, k], seed=4)
    # An L2 penalty (alpha large enough to weigh in the gradients) is the same
    # number whatever the batch: the replay computes it once per batch.
    penalty = None if alpha is None else (lambda: F.l2_penalty(compiled.parameters(), alpha=alpha))
    step = nn.CompiledStep(
        compiled, loss, batch_size=5, in_features=2, num_classes=k if k > 1 else None, penalty=penalty
    )
    for lo, hi in [(0, 5), (5, 10), (10, 13), (3, 8)]:  # a short batch, then the first size again
        xb, yb = X[lo:hi], y[lo:hi]
        eager.zero_grad()
        compiled.zero_grad()
        outs = [eager(r) for r in xb.tolist()]
        if loss == "cross-entropy":
            e = F.cross_entropy(outs, yb.tolist())
        elif loss == "softmax-mse":
            e = F.mse_loss([ag.softmax(o) for o in outs], np.eye(k)[yb].tolist())
        elif loss == "hinge":
            e = F.hinge_loss(outs, [1 if t else -1 for t in yb])
        else:
            e = F.mse_loss(outs, yb.tolist())
        if alpha is not None:
            e = e + F.l2_penalty(eager.parameters(), alpha=alpha)
        e.backward()
        assert step.loss(xb, yb) == pytest.approx(e.data, rel=1e-12)  # no gradients: changes none
        got = step(xb, yb)
        assert got == pytest.approx(e.data, rel=1e-12)
        for p, q in zip(eager.parameters(), compiled.parameters()):
            assert q.grad == pytest.approx(p.grad, rel=1e-9, abs=1e-15)
    with pytest.raises(ValueError, match="shape"):
        step(X[:5, :1], y[:5])


def test_compiled_step_penalty_reads_parameters_only():
    # The replay adds the penalty once per batch: one that reads the sample
    # (here the model's last output, an activity penalty) would be row 0's
    # value, not eager's, so it is refused when the step is made.
    model = nn.MLP(2, [4, 1], seed=1)
    last = {}

    def remembering(x):
        last["out"] = model(x)
        return last["out"]

    with pytest.raises(ValueError, match="reads the sample"):
        nn.CompiledStep(remembering, "hinge", batch_size=4, in_features=2, penalty=lambda: last["out"] ** 2)
    # A number is a constant of the loss: the loss moves by it, the gradients do not.
    X = np.array([[0.5, -1.0], [2.0, 0.25], [-1.5, 1.0]])
    y = np.array([1, 0, 1])
    plain = nn.CompiledStep(model, "hinge", batch_size=3, in_features=2)
    shifted = nn.CompiledStep(model, "hinge", batch_size=3, in_features=2, penalty=lambda: 0.75)
    model.zero_grad()
    base = plain(X, y)
    grads = [p.grad for p in model.parameters()]
    model.zero_grad()
    assert shifted(X, y) == base + 0.75
    assert [p.grad for p in model.parameters()] == grads
    assert shifted.loss(X, y) == base + 0.75


@pytest.mark.parametrize("dataset, loss", [("moons", "cross-entropy"), ("xor", "hinge"), ("sine", "mse")])
def test_trainer_compile_flag_gives_the_eager_run(tmp_path, dataset, loss):
    from arenagrad.train import TrainConfig, train

    runs = []
    for compiled in (False, True):
        cfg = TrainConfig(
            dataset=dataset,
            loss=loss,
            epochs=3,
            samples=60,
            batch_size=16,
            plots=False,
            quiet=True,
            out=str(tmp_path / str(compiled)),
            compile=compiled,
        )
        runs.append(train(cfg))
    eager, replay = runs
    assert replay.history["loss"] == pytest.approx(eager.history["loss"], rel=1e-9)
    for p, q in zip(eager.model.parameters(), replay.model.parameters()):
        assert q.data == pytest.approx(p.data, rel=1e-9, abs=1e-12)


def test_cli_accepts_compile(tmp_path):
    from arenagrad.cli import main

    assert (
        main(
            ["train", "--epochs", "2", "--samples", "40", "--no-plots", "--quiet", "--compile", "--out", str(tmp_path)]
        )
        == 0
    )


def test_backward_without_grad_raises_like_eager():
    x = ag.Value(2.0, requires_grad=False)
    y = x * x
    with pytest.raises(RuntimeError, match="requires_grad"):
        y.backward()
    step = ag.compile(y)
    assert step.forward() == 4.0
    with pytest.raises(RuntimeError, match="requires_grad"):
        step.backward()


# A loss builder of one's own is recorded per batch size (it may mix samples);
# these give it one-hot targets, as F.cross_entropy reads them.
def recorded_per_batch(model, batch_size, **kw):
    return nn.CompiledStep(model, F.cross_entropy, batch_size=batch_size, in_features=2, target_width=2, **kw)


def test_compiled_step_keeps_at_most_four_recordings_least_recently_used_dropped():
    model = nn.MLP(2, [4, 2], seed=0)
    step = recorded_per_batch(model, 2)
    assert step.max_recordings == 4
    rng = np.random.default_rng(0)

    def batch(n):
        return rng.normal(size=(n, 2)), np.eye(2)[rng.integers(0, 2, n)]

    for n in (3, 4, 5):
        step(*batch(n))
    assert list(step._recordings) == [2, 3, 4, 5]
    step(*batch(2))  # used again: now the most recent
    assert list(step._recordings) == [3, 4, 5, 2]
    step(*batch(6))  # a fifth size drops the least recently used, 3
    assert list(step._recordings) == [4, 5, 2, 6]
    step(*batch(3))  # re-recorded on demand, dropping 4; same numbers as a fresh step
    assert list(step._recordings) == [5, 2, 6, 3]
    xb, yb = batch(3)
    fresh = recorded_per_batch(model, 3)
    assert step.loss(xb, yb) == fresh.loss(xb, yb)


def test_compiled_step_memory_is_bounded_over_many_batch_sizes():
    model = nn.MLP(2, [4, 2], seed=0)
    step = recorded_per_batch(model, 1, max_recordings=2)
    rng = np.random.default_rng(1)

    def call(n):
        step(rng.normal(size=(n, 2)), np.eye(2)[rng.integers(0, 2, n)])

    for n in (7, 8):
        call(n)
    before = live()
    for n in range(9, 40):  # 31 more sizes, each its own graph
        call(n)
    for n in (7, 8):
        call(n)
    assert len(step._recordings) == 2
    assert live() == before  # the dropped graphs were freed


def test_a_named_loss_records_one_sample_for_every_batch_size():
    """Memory does not grow with the batch size, and a short batch needs no new recording."""
    model = nn.MLP(2, [4, 2], seed=0)
    start = live()
    small = nn.CompiledStep(model, "cross-entropy", batch_size=1, in_features=2, num_classes=2)
    one = live() - start
    big = nn.CompiledStep(model, "cross-entropy", batch_size=1000, in_features=2, num_classes=2)
    assert live() - start == 2 * one
    rng = np.random.default_rng(2)
    for n in (1000, 7, 1000):
        before = live()
        big(rng.normal(size=(n, 2)), rng.integers(0, 2, n))
        assert live() == before
    assert big.outputs.shape == (1000, 2)
    del small


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, None])
def test_compiled_step_max_recordings_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="max_recordings"):
        nn.CompiledStep(nn.MLP(2, [2]), "cross-entropy", batch_size=1, in_features=2, num_classes=2, max_recordings=bad)


@pytest.mark.parametrize("outputs", [1, 3])
def test_compiled_forward_is_the_eager_forward_in_chunks(outputs):
    model = nn.MLP(2, [4, outputs], seed=5)
    X = np.random.default_rng(3).normal(size=(11, 2))  # chunks of 4: the last one is short
    forward = nn.CompiledForward(model, in_features=2, batch_size=4)
    with ag.no_grad():  # recorded all the same: the recording makes its own graph
        eager = [model(x) for x in X.tolist()]
        got = nn.CompiledForward(model, in_features=2, batch_size=4)(X)
    want = np.array([[o.data] if outputs == 1 else [v.data for v in o] for o in eager])
    assert got.shape == (11, outputs)
    assert np.array_equal(got, want)  # bit for bit
    for p in model.parameters():  # the replay reads the parameters as they are now
        p.data *= 0.5
    with ag.no_grad():
        halved = [model(x) for x in X.tolist()]
    assert np.array_equal(forward(X)[:, 0], [o.data if outputs == 1 else o[0].data for o in halved])
