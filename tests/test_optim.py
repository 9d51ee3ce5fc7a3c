"""Optimizers and schedulers: hand-worked steps, and whole trajectories against torch.optim.

The parameters are a stand-in class with float ``.data``/``.grad``: the optimizers may
rely on nothing else, so this is the narrowest fixture that exercises them. One test
also runs on real ``arenagrad.Value``s when the engine is built.
"""

import math

import numpy as np
import pytest
from arenagrad import optim


class P:
    """Minimal parameter: what an optimizer may assume of an arenagrad Value."""

    def __init__(self, x):
        self.data = x
        self.grad = 0.0


# A fixed quartic objective: f(x) = sum(A * (x - C)**2 + B * x**4). Its gradient is
# computed here in numpy from the current parameter values, the same for both libraries.
X0 = np.array([0.5, -1.2, 2.0, 0.0, 0.3])
A = np.array([1.0, 2.0, 0.5, 3.0, 0.7])
C = np.array([1.0, 0.5, -1.0, 0.25, 0.0])
B = np.array([0.1, 0.05, 0.2, 0.0, 0.3])
STEPS = 6


def grad_fn(x):
    return 2 * A * (x - C) + 4 * B * x**3


def run_ours(make_opt, steps=STEPS, on_step=None, param=P):
    ps = [param(float(x)) for x in X0]
    opt = make_opt(ps)
    traj = []
    for _ in range(steps):
        g = grad_fn(np.array([p.data for p in ps]))
        for p, gi in zip(ps, g):
            p.grad = float(gi)
        opt.step()
        if on_step is not None:
            on_step()
        traj.append([p.data for p in ps])
    return np.array(traj)


def run_torch(make_opt, steps=STEPS, on_step=None):
    torch = pytest.importorskip("torch")
    t = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    opt = make_opt(torch, [t])
    traj = []
    for _ in range(steps):
        t.grad = torch.from_numpy(grad_fn(t.detach().numpy().copy()))
        opt.step()
        if on_step is not None:
            on_step()
        traj.append(t.detach().numpy().copy())
    return np.array(traj)


def assert_trajectories_match(ours, ref):
    # The run must actually move, or matching would prove nothing.
    assert np.abs(ours[-1] - X0).max() > 1e-3
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ SGD: against torch

SGD_CONFIGS = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
    dict(lr=0.02, momentum=0.5, maximize=True),
    dict(lr=0.02, maximize=True, weight_decay=0.2),
]


@pytest.mark.parametrize("kw", SGD_CONFIGS, ids=lambda kw: ",".join(kw))
def test_sgd_matches_torch(kw):
    ours = run_ours(lambda ps: optim.SGD(ps, **kw))
    ref = run_torch(lambda torch, ts: torch.optim.SGD(ts, foreach=False, **kw))
    assert_trajectories_match(ours, ref)


def test_sgd_positional_order_is_torchs():
    # SGD(params, lr, momentum, dampening, weight_decay, nesterov), as in torch.
    ours = run_ours(lambda ps: optim.SGD(ps, 0.05, 0.9, 0, 0.01, True))
    ref = run_torch(lambda torch, ts: torch.optim.SGD(ts, 0.05, 0.9, 0, 0.01, True, foreach=False))
    assert_trajectories_match(ours, ref)


# ----------------------------------------------------------------- Adam: against torch

ADAM_CONFIGS = [
    dict(),
    dict(lr=0.1),
    dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.1, betas=(0.3, 0.9)),  # 1 - beta1 >= 0.5: the other branch of torch's lerp
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, amsgrad=True),
    dict(lr=0.1, weight_decay=0.05, amsgrad=True),
    dict(lr=0.1, maximize=True),
]


@pytest.mark.parametrize("kw", ADAM_CONFIGS, ids=lambda kw: ",".join(kw) or "default")
def test_adam_matches_torch(kw):
    ours = run_ours(lambda ps: optim.Adam(ps, **kw))
    ref = run_torch(lambda torch, ts: torch.optim.Adam(ts, foreach=False, **kw))
    assert_trajectories_match(ours, ref)  # even lr=1e-3 moves ~6e-3 in 6 steps


def test_amsgrad_changes_the_trajectory():
    # Guards the amsgrad comparison above: it is only meaningful if the maximum kicks in.
    plain = run_ours(lambda ps: optim.Adam(ps, lr=0.1))
    ams = run_ours(lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True))
    assert np.abs(plain - ams).max() > 1e-6


# --------------------------------------------------------- schedulers: against torch

SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.5, end_factor=0.9, total_iters=4)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=7)),
]


@pytest.mark.parametrize("name,kw", SCHEDULERS, ids=lambda v: str(v))
def test_scheduler_lr_sequence_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    opt = optim.SGD([P(1.0)], lr=0.1)
    sched = getattr(optim, name)(opt, **kw)
    t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([t], lr=0.1)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    ours, ref = [sched.get_last_lr()], [tsched.get_last_lr()]
    assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    for _ in range(12):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        ours.append(sched.get_last_lr())
        ref.append(tsched.get_last_lr())
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    assert all(isinstance(lr, list) and len(lr) == 1 for lr in ours)
    np.testing.assert_allclose(np.array(ours), np.array(ref), rtol=1e-12)


def test_sgd_with_steplr_matches_torch():
    holder = {}

    def ours_opt(ps):
        opt = optim.SGD(ps, lr=0.1, momentum=0.9)
        holder["ours"] = optim.StepLR(opt, step_size=2, gamma=0.3)
        return opt

    def torch_opt(torch, ts):
        opt = torch.optim.SGD(ts, lr=0.1, momentum=0.9, foreach=False)
        holder["torch"] = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)
        return opt

    ours = run_ours(ours_opt, on_step=lambda: holder["ours"].step())
    ref = run_torch(torch_opt, on_step=lambda: holder["torch"].step())
    assert_trajectories_match(ours, ref)


# ------------------------------------------------------- hand-worked, no torch needed


def sgd_steps(grads, p0=1.0, **kw):
    p = P(p0)
    opt = optim.SGD([p], **kw)
    out = []
    for g in grads:
        p.grad = g
        opt.step()
        out.append(p.data)
    return out


def test_sgd_plain_by_hand():
    # p = 1 - 0.1*1 = 0.9; p = 0.9 - 0.1*2 = 0.7
    assert sgd_steps([1.0, 2.0], lr=0.1) == pytest.approx([0.9, 0.7], abs=1e-15)


def test_sgd_momentum_by_hand():
    # step 1: buf = g1 = 1            p = 1   - 0.1*1   = 0.9
    # step 2: buf = 0.9*1 + 2 = 2.9   p = 0.9 - 0.1*2.9 = 0.61
    assert sgd_steps([1.0, 2.0], lr=0.1, momentum=0.9) == pytest.approx([0.9, 0.61], abs=1e-15)


def test_sgd_dampening_by_hand():
    # The first buffer is the raw gradient (no dampening), as in torch.
    # step 1: buf = 1                       p = 0.9
    # step 2: buf = 0.9*1 + (1-0.5)*2 = 1.9 p = 0.9 - 0.19 = 0.71
    got = sgd_steps([1.0, 2.0], lr=0.1, momentum=0.9, dampening=0.5)
    assert got == pytest.approx([0.9, 0.71], abs=1e-15)


def test_sgd_nesterov_by_hand():
    # step 1: buf = 1;   g = 1 + 0.9*1 = 1.9;     p = 1 - 0.19 = 0.81
    # step 2: buf = 2.9; g = 2 + 0.9*2.9 = 4.61;  p = 0.81 - 0.461 = 0.349
    got = sgd_steps([1.0, 2.0], lr=0.1, momentum=0.9, nesterov=True)
    assert got == pytest.approx([0.81, 0.349], abs=1e-15)


def test_sgd_weight_decay_and_maximize_by_hand():
    # g = 1 + 0.5*2 = 2; p = 2 - 0.1*2 = 1.8
    assert sgd_steps([1.0], p0=2.0, lr=0.1, weight_decay=0.5) == pytest.approx([1.8])
    # maximize: g = -1 (then decay: -1 + 0.5*2 = 0); p unchanged
    assert sgd_steps([1.0], p0=2.0, lr=0.1, weight_decay=0.5, maximize=True) == pytest.approx([2.0])
    assert sgd_steps([1.0], p0=2.0, lr=0.1, maximize=True) == pytest.approx([2.1])


def test_adam_two_steps_by_hand():
    p = P(1.0)
    opt = optim.Adam([p], lr=0.01)  # betas (0.9, 0.999), eps 1e-8
    # step 1: m = 0.1*3, v = 0.001*9; bias-corrected m = 3, sqrt(v) = 3 -> p moves by
    # lr * 3 / (3 + eps). eps shows at 1e-11 of the step, above the 1e-15 tolerance.
    p.grad = 3.0
    opt.step()
    assert p.data == pytest.approx(1.0 - 0.01 * 3.0 / (3.0 + 1e-8), abs=1e-15)
    # step 2 with g = -1: m = 0.9*0.3 - 0.1 = 0.17, v = 0.999*0.009 + 0.001 = 0.009991
    # corrections 1 - 0.9**2 = 0.19 and 1 - 0.999**2 = 0.001999
    p.grad = -1.0
    opt.step()
    expected = 1.0 - 0.01 * 3.0 / (3.0 + 1e-8) - 0.01 * (0.17 / 0.19) / (math.sqrt(0.009991 / 0.001999) + 1e-8)
    assert p.data == pytest.approx(expected, abs=1e-15)
    assert opt.state["step"] == 2


def test_amsgrad_three_steps_by_hand():
    """Gradients 3, 0, 0: v falls after the first step, so amsgrad divides by the
    first step's v (0.009) where plain Adam would use the smaller current one."""
    p = P(1.0)
    opt = optim.Adam([p], lr=0.01, amsgrad=True)
    want = 1.0
    m_t = [0.3, 0.27, 0.243]  # 0.9 m + 0.1 g
    for t, g in enumerate([3.0, 0.0, 0.0], start=1):
        p.grad = g
        opt.step()
        vmax = 0.009  # v is 0.009, 0.008991, 0.008982...: the maximum stays the first
        want -= 0.01 / (1 - 0.9**t) * m_t[t - 1] / (math.sqrt(vmax) / math.sqrt(1 - 0.999**t) + 1e-8)
        assert p.data == pytest.approx(want, abs=1e-15), t


def test_steplr_and_linearlr_by_hand():
    opt = optim.SGD([P(0.0)], lr=1.0)
    s = optim.StepLR(opt, step_size=2, gamma=0.5)
    seen = [s.get_last_lr()[0]]
    for _ in range(5):
        s.step()
        seen.append(opt.lr)
    assert seen == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])

    opt = optim.SGD([P(0.0)], lr=1.0)
    s = optim.LinearLR(opt, start_factor=0.5, end_factor=1.0, total_iters=2)
    assert opt.lr == pytest.approx(0.5)  # construction applies epoch 0
    s.step()
    assert opt.lr == pytest.approx(0.75)
    s.step()
    s.step()
    assert opt.lr == pytest.approx(1.0)


# ----------------------------------------------------------------- optimizer plumbing


def test_zero_grad_sets_zero_float():
    ps = [P(1.0), P(2.0)]
    for p in ps:
        p.grad = 5.0
    optim.SGD(ps, lr=0.1).zero_grad()
    assert [p.grad for p in ps] == [0.0, 0.0]
    assert all(type(p.grad) is float for p in ps)


def test_step_writes_python_floats_and_accepts_generators():
    ps = [P(1.0), P(2.0)]
    opt = optim.Adam(p for p in ps)  # model.parameters() may be a generator
    ps[0].grad, ps[1].grad = 1.0, -1.0
    opt.step()
    assert all(type(p.data) is float for p in ps)
    assert ps[0].data < 1.0 < 2.0 < ps[1].data


def test_lr_is_writable():
    p = P(1.0)
    opt = optim.SGD([p], lr=0.1)
    opt.lr = 0.0
    p.grad = 1.0
    opt.step()
    assert p.data == 1.0
    opt.lr = 0.5
    opt.step()
    assert p.data == 0.5


def test_closure_result_is_returned():
    p = P(1.0)
    opt = optim.SGD([p], lr=0.1)
    assert opt.step(lambda: 42.0) == 42.0
    assert opt.step() is None


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_state_dict_round_trip_continues_identically(cls):
    kw = dict(lr=0.05, momentum=0.9) if cls is optim.SGD else dict(lr=0.05, amsgrad=True)
    full = run_ours(lambda ps: cls(ps, **kw))

    ps = [P(float(x)) for x in X0]
    opt = cls(ps, **kw)
    for _ in range(3):
        for p, g in zip(ps, grad_fn(np.array([p.data for p in ps]))):
            p.grad = float(g)
        opt.step()
    sd = opt.state_dict()
    assert sd["lr"] == 0.05 and "state" in sd
    assert all(isinstance(v, (int, float, np.ndarray)) for v in sd["state"].values())

    # A fresh optimizer with a different lr: load_state_dict restores lr and the buffers.
    ps2 = [P(p.data) for p in ps]
    opt2 = cls(ps2, lr=1.0, **{k: v for k, v in kw.items() if k != "lr"})
    opt2.load_state_dict(sd)
    assert opt2.lr == 0.05
    for v in sd["state"].values():  # the loaded state must not alias the saved dict
        if isinstance(v, np.ndarray):
            v[:] = 1e6
    rest = []
    for _ in range(STEPS - 3):
        for p, g in zip(ps2, grad_fn(np.array([p.data for p in ps2]))):
            p.grad = float(g)
        opt2.step()
        rest.append([p.data for p in ps2])
    np.testing.assert_array_equal(np.array(rest), full[3:])


def test_state_dict_is_a_copy():
    p = P(1.0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = 1.0
    opt.step()
    sd = opt.state_dict()
    opt.step()
    assert sd["state"]["momentum_buffer"][0] == 1.0


def test_load_state_dict_rejects_mismatch():
    opt = optim.SGD([P(1.0), P(2.0)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="2 params"):
        opt.load_state_dict({"lr": 0.1, "state": {"momentum_buffer": np.zeros(3)}})
    with pytest.raises(ValueError, match="unexpected keys"):
        opt.load_state_dict({"betas": (0.9, 0.999)})


def test_duplicate_parameters_are_kept_once():
    p, q = P(1.0), P(2.0)
    with pytest.warns(UserWarning, match="duplicate"):
        opt = optim.SGD([p, q, p], lr=0.1)
    assert opt.params == [p, q]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ps: optim.SGD(ps, lr=-0.1), "Invalid learning rate: -0.1"),
        (lambda ps: optim.SGD(ps, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda ps: optim.SGD(ps, weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda ps: optim.SGD(ps, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum requires"),
        (lambda ps: optim.Adam(ps, lr=-1e-3), "Invalid learning rate: -0.001"),
        (lambda ps: optim.Adam(ps, eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (lambda ps: optim.Adam(ps, betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
        (lambda ps: optim.Adam(ps, betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
        (lambda ps: optim.Adam(ps, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    ],
)
def test_invalid_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make([P(1.0)])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam])
def test_empty_parameter_list(cls):
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        cls(iter([]))


def test_non_parameters_are_rejected():
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(P(1.0))  # a lone parameter, not a list
    with pytest.raises(TypeError, match=".data and .grad"):
        optim.SGD([P(1.0), 3.0])


def test_scheduler_errors():
    opt = optim.SGD([P(1.0)], lr=0.1)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        optim.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        optim.LinearLR(opt, start_factor=1.5)
    with pytest.raises(ValueError, match="Ending multiplicative factor"):
        optim.LinearLR(opt, end_factor=-0.1)
    with pytest.raises(ValueError, match="total_iters"):
        optim.LinearLR(opt, total_iters=0)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        optim.StepLR(object(), step_size=1)


def test_two_schedulers_share_the_initial_lr():
    # As torch's initial_lr: the second scheduler's base is the original lr, not the
    # value the first one already wrote.
    opt = optim.SGD([P(1.0)], lr=0.1)
    optim.LinearLR(opt, start_factor=0.5)
    s = optim.StepLR(opt, step_size=10)
    assert s.base_lr == 0.1


# ------------------------------------------------------------------- the real engine


def test_sgd_on_arenagrad_values():
    pytest.importorskip("arenagrad._core")
    import arenagrad

    a, b = arenagrad.Value(2.0), arenagrad.Value(-3.0)
    opt = optim.SGD([a, b], lr=0.1)
    loss = a * b + a * a  # d/da = b + 2a = 1, d/db = a = 2
    loss.backward()
    assert (a.grad, b.grad) == (1.0, 2.0)
    opt.step()
    assert a.data == pytest.approx(1.9, abs=1e-15)
    assert b.data == pytest.approx(-3.2, abs=1e-15)
    opt.zero_grad()
    assert (a.grad, b.grad) == (0.0, 0.0)


# ------------------------------------------------- engine Values, read in their nodes


def _engine():
    return pytest.importorskip("arenagrad._core")


@pytest.mark.parametrize(
    "make_opt",
    [lambda ps, kw=kw: optim.SGD(ps, **kw) for kw in SGD_CONFIGS]
    + [lambda ps, kw=kw: optim.Adam(ps, **kw) for kw in ADAM_CONFIGS],
)
def test_engine_values_take_the_same_steps_as_plain_objects(make_opt):
    # A step reads and writes an arenagrad Value in its node (_core._gather and
    # _scatter), anything else through its attributes: the same bits either way.
    core = _engine()
    np.testing.assert_array_equal(run_ours(make_opt, param=core.Value), run_ours(make_opt))


def test_bulk_access_honours_subclasses_and_plain_objects():
    core = _engine()
    seen = []

    class Logged(core.Value):
        @property
        def data(self):
            seen.append("get")
            return 7.0

        @data.setter
        def data(self, v):
            seen.append(v)

    a, b, c = core.Value(1.5), Logged(0.0), P(2.5)
    a.grad, b.grad, c.grad = 0.25, 0.5, 1.0
    np.testing.assert_array_equal(core._gather([a, b, c], "data"), [1.5, 7.0, 2.5])
    np.testing.assert_array_equal(core._gather([a, b, c], "grad"), [0.25, 0.5, 1.0])
    core._scatter([a, b, c], "data", np.array([3.0, 4.0, 5.0]))
    assert (a.data, c.data, seen) == (3.0, 5.0, ["get", 4.0])
    core._scatter((x for x in [a, b, c]), "grad", 0.0)
    assert (a.grad, b.grad, c.grad) == (0.0, 0.0, 0.0)


def test_plain_sgd_in_one_loop_only_for_a_list_of_values():
    # Plain SGD updates a list of Values in one C loop; a subclass or any
    # other object (whose attributes may run code) takes the attribute path.
    # Both give p - lr * g as Python computes it.
    core = _engine()

    class Sub(core.Value):
        pass

    for make in (core.Value, Sub, P):
        ps = [core.Value(1.0), make(2.0), core.Value(-3.0)]
        for p, g in zip(ps, (0.5, -0.25, 1.0 / 3.0)):
            p.grad = g
        optim.SGD(ps, lr=0.1).step()
        assert [p.data for p in ps] == [1.0 - 0.1 * 0.5, 2.0 - 0.1 * -0.25, -3.0 - 0.1 * (1.0 / 3.0)]
    v = core.Value(1.0)
    v.grad = 2.0
    assert core._sgd_update([v, P(1.0)], 0.5) is False and v.data == 1.0  # nothing changed
    assert core._sgd_update((v,), 0.5) is False and v.data == 1.0
    assert core._sgd_update([v], 0.5) is True and v.data == 0.0


def test_a_step_turns_int_data_into_float_as_assignment_does():
    core = _engine()
    v = core.Value(3)
    assert repr(v.data) == "3"
    v.grad = 1.0
    optim.SGD([v], lr=0.5).step()
    assert repr(v.data) == "2.5" and type(v.data) is float
    w = core.Value(4)
    w.grad = 0.0
    optim.SGD([w], lr=0.5).step()
    assert type(w.data) is float  # 4 - 0.5 * 0.0 is a float in Python too


def test_bulk_access_errors():
    core = _engine()
    v = core.Value(1.0)
    with pytest.raises(ValueError, match="field"):
        core._gather([v], "value")
    with pytest.raises(ValueError, match="one number per parameter"):
        core._scatter([v, v], "data", np.zeros(3))
    with pytest.raises(TypeError, match="real numbers"):
        core._scatter([v], "data", np.array(["1.0"]))
    with pytest.raises(TypeError):
        core._scatter([v], "data", [None])  # numpy would make it NaN
    with pytest.raises(TypeError):
        core._gather(v, "data")  # not a sequence
    assert v.data == 1.0

    class Bad:
        data, grad = "1.0", None

    with pytest.raises(TypeError):
        core._gather([v, Bad()], "data")
    with pytest.raises(AttributeError):
        core._gather([object()], "grad")


def test_one_number_for_all_is_written_as_assignment_writes_it():
    core = _engine()
    a, b = core.Value(1.5), P(2.5)
    core._scatter([a, b], "data", 0)
    assert (repr(a.data), b.data, type(b.data)) == ("0", 0, int)  # as p.data = 0
    core._scatter([a, b], "grad", np.float64(0.25))
    assert (a.grad, b.grad) == (0.25, 0.25)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),
    ],
)
def test_a_step_whose_write_fails_changes_no_state(make_opt, monkeypatch):
    ps = [P(1.0), P(-2.0)]
    opt = make_opt(ps)
    for p in ps:
        p.grad = 0.5
    opt.step()
    before = opt.state_dict()
    data = [p.data for p in ps]

    def fail(*args):
        raise MemoryError

    monkeypatch.setattr(optim._core, "_scatter", fail)
    with pytest.raises(MemoryError):
        opt.step()
    monkeypatch.undo()
    after = opt.state_dict()
    assert [p.data for p in ps] == data
    assert after.keys() == before.keys()
    for k, v in before["state"].items():
        np.testing.assert_array_equal(after["state"][k], v)
    # and the next step is the one the failed step would have been
    opt.step()
    fresh = make_opt([P(1.0), P(-2.0)])
    for p in fresh.params:
        p.grad = 0.5
    fresh.step()
    fresh.step()
    assert [p.data for p in ps] == [p.data for p in fresh.params]


def test_bulk_access_survives_attributes_that_change_the_list():
    # A parameter whose attribute access empties the caller's list: the call
    # works on what the list held when it was called.
    core = _engine()
    params = []

    class Clearing(P):
        @property
        def data(self):
            params.clear()
            return 1.0

        @data.setter
        def data(self, v):
            params.clear()

    params += [core.Value(2.0), Clearing(0.0), core.Value(3.0)]
    keep = list(params)
    np.testing.assert_array_equal(core._gather(params, "data"), [2.0, 1.0, 3.0])
    params += keep
    core._scatter(params, "data", np.array([5.0, 6.0, 7.0]))
    assert (keep[0].data, keep[2].data, params) == (5.0, 7.0, [])
