"""Losses (arenagrad.nn.functional, alias arenagrad.losses): values and gradients.

References: PyTorch float64 (only the torch tests are skipped where it is missing),
plain-float formulas written out here with ``math``, and central finite differences of
those plain-float formulas.
"""

from __future__ import annotations

import math

import arenagrad as ag
import arenagrad.losses as losses
import numpy as np
import pytest
from arenagrad.nn import functional as F
from conftest import live

REDUCTIONS = ["mean", "sum", "none"]


def vals(xs):
    return [ag.Value(float(x)) for x in xs]


def fd(f, xs, h=1e-6):
    """Central differences of the plain-float function ``f(list) -> float``."""
    out = []
    for i in range(len(xs)):
        up, dn = list(xs), list(xs)
        up[i] += h
        dn[i] -= h
        out.append((f(up) - f(dn)) / (2 * h))
    return out


def scalar_of(loss, reduction):
    """A scalar to backpropagate from any reduction (weights make "none" non-trivial)."""
    if reduction != "none":
        return loss
    flat = [v for row in loss for v in row] if isinstance(loss[0], list) else loss
    return ag.dot(flat, [1.0 + 0.5 * i for i in range(len(flat))])


def torch_scalar(t, reduction):
    torch = pytest.importorskip("torch")
    if reduction != "none":
        return t
    flat = t.flatten()
    return (flat * torch.tensor([1.0 + 0.5 * i for i in range(flat.numel())], dtype=torch.float64)).sum()


def test_losses_module_is_functional():
    for name in F.__all__:
        assert getattr(losses, name) is getattr(F, name)


# -------------------------------------------------------------------- vs torch


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_against_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=7).tolist(), rng.normal(size=7).tolist()
    ps = vals(p)
    out = F.mse_loss(ps, t, reduction=reduction)
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.mse_loss(pt, torch.tensor(t, dtype=torch.float64), reduction=reduction)
    got = [v.data for v in out] if reduction == "none" else [out.data]
    assert got == pytest.approx(ref.flatten().tolist(), rel=1e-12, abs=1e-15)
    scalar_of(out, reduction).backward()
    torch_scalar(ref, reduction).backward()
    assert [v.grad for v in ps] == pytest.approx(pt.grad.tolist(), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_rows_against_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ps = [vals(row) for row in p]
    out = F.mse_loss(ps, t, reduction=reduction)  # numpy targets
    pt = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.mse_loss(pt, torch.tensor(t), reduction=reduction)
    if reduction == "none":
        assert [len(r) for r in out] == [3] * 4
        got = [v.data for row in out for v in row]
    else:
        got = [out.data]
    assert got == pytest.approx(ref.flatten().tolist(), rel=1e-12, abs=1e-15)
    scalar_of(out, reduction).backward()
    torch_scalar(ref, reduction).backward()
    assert [v.grad for row in ps for v in row] == pytest.approx(pt.grad.flatten().tolist(), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_against_torch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3.0, size=(5, 4))
    targets = [0, 3, 1, 1, 2]
    rows = [vals(r) for r in logits]
    out = F.cross_entropy(rows, np.array(targets), reduction=reduction)
    lt = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(lt, torch.tensor(targets), reduction=reduction)
    got = [v.data for v in out] if reduction == "none" else [out.data]
    assert got == pytest.approx(ref.flatten().tolist(), rel=1e-12)
    scalar_of(out, reduction).backward()
    torch_scalar(ref, reduction).backward()
    assert [v.grad for r in rows for v in r] == pytest.approx(lt.grad.flatten().tolist(), rel=1e-11, abs=1e-15)


def test_cross_entropy_extreme_logits_against_torch():
    torch = pytest.importorskip("torch")
    logits = [[1000.0, -1000.0, 0.0], [-800.0, -805.0, -790.0], [1e-3, 0.0, -1e-3]]
    targets = [1, 0, 2]
    rows = [vals(r) for r in logits]
    out = F.cross_entropy(rows, targets, reduction="sum")
    lt = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(lt, torch.tensor(targets), reduction="sum")
    assert math.isfinite(out.data)
    assert out.data == pytest.approx(ref.item(), rel=1e-12)
    out.backward()
    ref.backward()
    assert [v.grad for r in rows for v in r] == pytest.approx(lt.grad.flatten().tolist(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_against_torch(reduction):
    torch = pytest.importorskip("torch")
    x = [-800.0, -30.0, -2.0, -0.1, 0.0, 0.3, 4.0, 50.0, 900.0]
    y = [1.0, 0.0, 0.25, 1.0, 0.5, 0.0, 1.0, 0.0, 1.0]  # includes confidently wrong logits
    xs = vals(x)
    out = F.binary_cross_entropy_with_logits(xs, y, reduction=reduction)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.tensor(y, dtype=torch.float64), reduction=reduction
    )
    got = [v.data for v in out] if reduction == "none" else [out.data]
    # abs: torch's formula loses relative precision on tiny losses (about 1e-13 at
    # x = -30, y = 0); the test below checks those against math.log1p instead.
    assert got == pytest.approx(ref.flatten().tolist(), rel=1e-12, abs=1e-14)
    scalar_of(out, reduction).backward()
    torch_scalar(ref, reduction).backward()
    assert [v.grad for v in xs] == pytest.approx(xt.grad.tolist(), rel=1e-12, abs=1e-14)


def test_bce_with_logits_keeps_tiny_losses_accurate():
    # Confidently right logits: the loss is log1p(exp(-|x|)), tiny but not zero.
    x = [-30.0, -40.0, 35.0, 40.0]
    y = [0.0, 0, 1.0, 1]
    xs = vals(x)
    out = F.binary_cross_entropy_with_logits(xs, y, reduction="none")
    want = [math.log1p(math.exp(-abs(v))) for v in x]
    assert [v.data for v in out] == pytest.approx(want, rel=1e-12, abs=0)
    ag.sum(out).backward()
    # d/dx = sigmoid(x) - y, which is sigmoid(x) for y = 0 and -sigmoid(-x) for y = 1
    want_grad = [1 / (1 + math.exp(-v)) if t == 0 else -1 / (1 + math.exp(v)) for v, t in zip(x, y)]
    assert [v.grad for v in xs] == pytest.approx(want_grad, rel=1e-9, abs=0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_against_torch(reduction):
    torch = pytest.importorskip("torch")
    s = [-2.0, -0.5, 0.2, 0.99, 1.7, -1.3]
    y = [1, -1, 1, -1, 1, -1]
    ss = vals(s)
    out = F.hinge_loss(ss, y, reduction=reduction)
    st = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    per = torch.relu(1 - torch.tensor(y, dtype=torch.float64) * st)
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    got = [v.data for v in out] if reduction == "none" else [out.data]
    assert got == pytest.approx(ref.flatten().tolist(), rel=1e-12)
    scalar_of(out, reduction).backward()
    torch_scalar(ref, reduction).backward()
    assert [v.grad for v in ss] == pytest.approx(st.grad.tolist(), rel=1e-12)


# ------------------------------------------------------ vs plain-float formulas


def test_hinge_is_micrographs_formula():
    s = [0.3, -1.2, 2.5, -0.4]
    y = [1, 1, -1, -1]
    ss = vals(s)
    out = F.hinge_loss(ss, y)

    def plain(sv):
        return sum(max(0.0, 1 + -yi * si) for yi, si in zip(y, sv)) * (1.0 / len(sv))

    assert out.data == pytest.approx(plain(s), rel=1e-15)
    out.backward()
    assert [v.grad for v in ss] == pytest.approx(fd(plain, s), rel=1e-6)


def test_mse_and_bce_against_finite_differences():
    p = [0.4, -1.1, 2.2]
    t = [0.0, 1.0, 1.0]
    ps = vals(p)
    F.mse_loss(ps, t).backward()
    mse = lambda v: sum((a - b) ** 2 for a, b in zip(v, t)) / len(v)  # noqa: E731
    assert [x.grad for x in ps] == pytest.approx(fd(mse, p), rel=1e-6)

    xs = vals(p)
    F.binary_cross_entropy_with_logits(xs, t, reduction="sum").backward()

    def bce(v):
        sig = [1 / (1 + math.exp(-a)) for a in v]
        return -sum(b * math.log(s) + (1 - b) * math.log(1 - s) for s, b in zip(sig, t))

    assert [x.grad for x in xs] == pytest.approx(fd(bce, p), rel=1e-6)


def test_cross_entropy_against_finite_differences():
    logits = [[0.5, -0.2, 1.5], [2.0, 0.1, -1.0]]
    targets = [2, 1]
    flat = [v for r in logits for v in r]
    rows = [vals(r) for r in logits]
    F.cross_entropy(rows, targets).backward()

    def plain(v):
        total = 0.0
        for i, t in enumerate(targets):
            r = v[3 * i : 3 * i + 3]
            total += math.log(sum(math.exp(a) for a in r)) - r[t]
        return total / len(targets)

    assert [v.grad for r in rows for v in r] == pytest.approx(fd(plain, flat), rel=1e-6)


def test_l2_penalty_is_alpha_sum_of_squares():
    ps = vals([0.5, -2.0, 3.0])
    reg = F.l2_penalty(ps, alpha=1e-4)
    assert reg.data == pytest.approx(1e-4 * (0.25 + 4.0 + 9.0), rel=1e-15)
    reg.backward()
    assert [p.grad for p in ps] == pytest.approx([2e-4 * 0.5, 2e-4 * -2.0, 2e-4 * 3.0], rel=1e-15)
    assert F.l2_penalty([], alpha=1.0).data == 0.0


def test_l2_penalty_of_a_module():
    from arenagrad import nn

    m = nn.MLP(2, [3, 1], seed=0)
    want = 0.5 * sum(p.data**2 for p in m.parameters())
    assert F.l2_penalty(m, alpha=0.5).data == pytest.approx(want, rel=1e-14)


def test_single_sample_forms():
    assert F.mse_loss(ag.Value(3.0), 1.0).data == 4.0
    assert F.hinge_loss(ag.Value(0.25), -1).data == 1.25
    row = vals([1.0, 2.0, 3.0])
    want = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 1.0
    assert F.cross_entropy(row, 0).data == pytest.approx(want, rel=1e-14)


def test_numbers_are_accepted_as_predictions():
    # A loss of constants is still a Value (e.g. to log a baseline), without errors.
    assert F.mse_loss([1.0, 3.0], [0.0, 0.0]).data == 5.0
    assert F.hinge_loss([0.5], [1]).data == 0.5
    assert F.cross_entropy([[0.0, 0.0]], [1]).data == pytest.approx(math.log(2))


def test_accuracy():
    assert F.accuracy(vals([0.5, -0.2, 0.1, -3.0]), [1, -1, -1, -1]) == 0.75
    assert F.accuracy([0.5, -0.2], np.array([1, 0])) == 1.0  # 0/1 labels too
    rows = [vals([0.1, 0.9, 0.0]), vals([2.0, 1.0, 0.0]), [0.0, 0.0, 5.0]]
    assert F.accuracy(rows, [1, 0, 1]) == pytest.approx(2 / 3)


def test_graph_size_of_fused_losses():
    n = 50
    rows = [vals([0.1 * i, -0.2, 0.3]) for i in range(n)]
    before = live()
    loss = F.cross_entropy(rows, [i % 3 for i in range(n)])
    # per sample: one logsumexp and one subtraction; then one mean
    assert live() - before == 2 * n + 1
    del loss
    ps = vals(range(n))
    before = live()
    reg = F.l2_penalty(ps)
    assert live() - before == 2  # dot, then the scale
    del reg


# ------------------------------------------------------------------- errors


def test_length_mismatch_names_arguments():
    with pytest.raises(ValueError, match="preds has 2 entries but targets has 3"):
        F.mse_loss(vals([1, 2]), [1, 2, 3])
    with pytest.raises(ValueError, match="scores has 3 entries but labels has 2"):
        F.hinge_loss(vals([1, 2, 3]), [1, -1])
    with pytest.raises(ValueError, match="logits has 2 rows but targets has 1"):
        F.cross_entropy([vals([1, 2]), vals([3, 4])], [0])
    with pytest.raises(ValueError, match="logits has 1 entries but targets has 2"):
        F.binary_cross_entropy_with_logits(vals([1]), [0, 1])
    with pytest.raises(ValueError, match=r"preds\[1\] has 1 entries but targets\[1\] has 2"):
        F.mse_loss([vals([1, 2]), vals([3])], [[0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"logits\[1\] has 2 entries, logits\[0\] has 3"):
        F.cross_entropy([vals([1, 2, 3]), vals([1, 2])], [0, 0])


@pytest.mark.parametrize(
    "targets, pattern",
    [
        ([0, 3], r"targets\[1\] is 3, outside the 3 classes"),
        ([-1, 0], r"targets\[0\] is -1"),
        ([0, 1.0], r"targets\[1\] is 1.0, not an integer"),
        ([0, "a"], r"targets\[1\] is 'a'"),
        ([True, 0], r"targets\[0\] is True"),
    ],
)
def test_cross_entropy_bad_targets(targets, pattern):
    rows = [vals([1, 2, 3]), vals([3, 2, 1])]
    with pytest.raises(ValueError, match=pattern):
        F.cross_entropy(rows, targets)


def test_bad_labels_and_targets():
    with pytest.raises(ValueError, match=r"labels\[1\] is 0"):
        F.hinge_loss(vals([1, 2]), [1, 0])
    with pytest.raises(ValueError, match=r"targets\[0\] is 1.5"):
        F.binary_cross_entropy_with_logits(vals([1, 2]), [1.5, 0])
    with pytest.raises(ValueError, match=r"targets\[1\] is -0.1"):
        F.binary_cross_entropy_with_logits(vals([1, 2]), [1, -0.1])


def test_bad_reduction_and_empty_inputs():
    for fn, args in [
        (F.mse_loss, (vals([1]), [1])),
        (F.hinge_loss, (vals([1]), [1])),
        (F.cross_entropy, ([vals([1, 2])], [0])),
        (F.binary_cross_entropy_with_logits, (vals([1]), [1])),
    ]:
        with pytest.raises(ValueError, match="reduction"):
            fn(*args, reduction="avg")
        with pytest.raises(ValueError, match="empty"):
            fn([], [])
