"""arenagrad.nn: structure, micrograd compatibility, initialisation, state_dict, save/load.

References are micrograd (pip-installed), PyTorch float64 (skipped where missing) and
plain-float arithmetic on weights read straight off the ``Value``\\ s; nothing expected
is computed by the module under test.
"""

from __future__ import annotations

import math
import zipfile

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import nn
from arenagrad.random import manual_seed
from conftest import live as live_nodes

micrograd_nn = pytest.importorskip("micrograd.nn")
from micrograd.engine import Value as MValue  # noqa: E402


def snapshot(model):
    """Plain floats of every parameter, for "unchanged" checks."""
    return [p.data for p in model.parameters()]


# ----------------------------------------------------------------- structure


def test_parameter_counts():
    assert len(nn.Neuron(10).parameters()) == 11
    assert len(nn.Layer(3, 10).parameters()) == 40
    assert len(nn.MLP(3, [100, 200, 2]).parameters()) == 21002
    assert len(nn.Linear(3, 5).parameters()) == 20
    assert len(nn.Linear(3, 5, bias=False).parameters()) == 15


def test_micrograd_attributes_and_order():
    m = nn.MLP(2, [3, 1])
    assert len(m.layers) == 2 and len(m.layers[0].neurons) == 3
    n = m.layers[0].neurons[1]
    assert len(n.w) == 2 and isinstance(n.b, ag.Value)
    assert n.nonlin is True and m.layers[1].neurons[0].nonlin is False
    # micrograd's order: layer by layer, neuron by neuron, w then b.
    want = [p for layer in m.layers for neuron in layer.neurons for p in neuron.w + [neuron.b]]
    got = m.parameters()
    assert len(got) == len(want) and all(a is b for a, b in zip(got, want))


def test_parameters_are_leaves_with_grad():
    for p in nn.MLP(2, [4, 1]).parameters():
        assert p.is_leaf and p.requires_grad


def test_named_parameters_and_state_dict_layout():
    m = nn.MLP(2, [3, 1])
    names = [n for n, _ in m.named_parameters()]
    assert names[:3] == ["layers.0.neurons.0.w.0", "layers.0.neurons.0.w.1", "layers.0.neurons.0.b"]
    assert len(names) == len(set(names)) == 13
    sd = m.state_dict()
    assert list(sd)[:2] == ["layers.0.neurons.0.w", "layers.0.neurons.0.b"]
    assert sd["layers.0.neurons.2.w"].shape == (2,) and sd["layers.0.neurons.2.b"].shape == ()
    assert sd["layers.1.neurons.0.w"].shape == (3,)
    assert all(a.dtype == np.float64 for a in sd.values())
    n = m.layers[0].neurons[2]
    assert sd["layers.0.neurons.2.w"].tolist() == [n.w[0].data, n.w[1].data]

    lin = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    sd = lin.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight"]
    assert sd["0.weight"].shape == (2, 3) and sd["0.bias"].shape == (2,) and sd["2.weight"].shape == (1, 2)
    assert sd["0.weight"][1, 2] == lin[0].weight[1][2].data


def test_state_dict_is_a_copy():
    m = nn.Neuron(3)
    sd = m.state_dict()
    before = m.w[0].data
    sd["w"][0] = 123.0
    assert m.w[0].data == before


def test_custom_module_registration():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = ag.Value(2.0)  # a scalar parameter
            self.body = nn.Linear(2, 2, seed=0)  # a submodule
            self.heads = [nn.Neuron(2, seed=1), nn.Neuron(2, seed=2)]  # a list of submodules
            self.table = [[ag.Value(1.0), ag.Value(2.0)], [ag.Value(3.0), ag.Value(4.0)]]
            self._cache = ag.Value(9.0)  # private: not a parameter
            self.width = 2  # plain attribute

        def forward(self, x):
            h = self.body(x)
            return [self.scale * head(h) for head in self.heads]

    net = Net()
    sd = net.state_dict()
    assert list(sd) == [
        "scale",
        "table",
        "body.weight",
        "body.bias",
        "heads.0.w",
        "heads.0.b",
        "heads.1.w",
        "heads.1.b",
    ]
    assert sd["table"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert len(net.parameters()) == 1 + 4 + 6 + 3 + 3
    assert not any(p is net._cache for p in net.parameters())
    assert [n for n, _ in net.named_children()] == ["body", "heads.0", "heads.1"]
    assert len(list(net.modules())) == 4
    out = net([1.0, -1.0])
    assert len(out) == 2 and isinstance(out[0], ag.Value)


def test_micrograd_style_subclass_without_super_init():
    # micrograd's Module has no __init__, and its subclasses define __call__, not forward.
    class Old(nn.Module):
        def __init__(self):
            self.l1 = nn.Layer(2, 3, seed=0)
            self.l2 = nn.Layer(3, 1, nonlin=False, seed=1)

        def __call__(self, x):
            return self.l2(self.l1(x))

        def parameters(self):  # micrograd subclasses override this; keep it working
            return self.l1.parameters() + self.l2.parameters()

    m = Old()
    assert len(m.parameters()) == 9 + 4
    assert set(m.state_dict()) == {f"l{i}.neurons.{j}.{p}" for i, n in ((1, 3), (2, 1)) for j in range(n) for p in "wb"}
    assert isinstance(m([1.0, 2.0]), ag.Value)
    assert m.training is True
    m.eval()
    assert m.l1.training is False and m.l1.neurons[0].training is False
    m.zero_grad()


def test_shared_parameter_listed_once():
    n = nn.Neuron(2, seed=0)
    seq = nn.Sequential(n, n)
    assert len(seq.parameters()) == 3
    assert len(list(seq.named_parameters())) == 3


def test_train_eval_propagates():
    m = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Sequential(nn.Tanh()))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())


def test_zero_grad():
    m = nn.MLP(2, [3, 1], seed=0)
    m([1.0, 2.0]).backward()
    assert any(p.grad != 0.0 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad == 0.0 for p in m.parameters())


def test_deep_nesting_does_not_recurse():
    m = nn.Neuron(1, seed=0)
    for _ in range(3000):  # beyond Python's default recursion limit
        m = nn.Sequential(m)
    assert len(m.parameters()) == 2
    assert len(list(m.modules())) == 3001


def test_repr():
    assert repr(nn.Linear(2, 3)) == "Linear(in_features=2, out_features=3, bias=True)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Neuron(3, nonlin=False)) == "Neuron(3, activation='linear')"
    assert repr(nn.MLP(2, [16, 16, 1])) == (
        "MLP(\n"
        "  (layers): [\n"
        "    (0): Layer(2, 16, activation='relu')\n"
        "    (1): Layer(16, 16, activation='relu')\n"
        "    (2): Layer(16, 1, activation='linear')\n"
        "  ]\n"
        ")"
    )
    assert repr(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Sequential(nn.Tanh()))) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=4, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Tanh()\n"
        "  )\n"
        ")"
    )

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = [nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1), nn.Tanh()]

    assert repr(Heads()) == (
        "Heads(\n  (heads): [\n    (0-2): 3 x Linear(in_features=2, out_features=1, bias=True)\n    (3): Tanh()\n  ]\n)"
    )


# ---------------------------------------------------- micrograd compatibility


def copy_into_micrograd(model, mg_model):
    ours, theirs = model.parameters(), mg_model.parameters()
    assert len(ours) == len(theirs)
    for p, q in zip(ours, theirs):
        q.data = p.data


@pytest.mark.parametrize("nouts", [[1], [4, 1], [5, 4, 3], [16, 16, 1]])
def test_mlp_matches_micrograd(nouts):
    model = nn.MLP(3, nouts, init="uniform", seed=7)
    ref = micrograd_nn.MLP(3, nouts)
    copy_into_micrograd(model, ref)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=3).tolist()
        xs, xm = [ag.Value(v) for v in x], [MValue(v) for v in x]  # inputs as Values too
        out, mout = model(xs), ref(xm)
        if nouts[-1] == 1:
            assert isinstance(out, ag.Value) and isinstance(mout, MValue)
            out, mout = [out], [mout]
        assert len(out) == len(mout)
        for a, b in zip(out, mout):
            assert a.data == pytest.approx(b.data, rel=1e-12, abs=1e-12)
        # A scalar that mixes every output, so every parameter gets a gradient.
        model.zero_grad()
        ref.zero_grad()
        loss = out[0] * out[0]
        mloss = mout[0] * mout[0]
        for i, (a, b) in enumerate(zip(out[1:], mout[1:])):
            loss = loss + (i + 2.0) * a * a.relu()  # micrograd's Value has no tanh
            mloss = mloss + (i + 2.0) * b * b.relu()
        loss.backward()
        mloss.backward()
        for p, q in zip(model.parameters(), ref.parameters()):
            assert p.grad == pytest.approx(q.grad, rel=1e-12, abs=1e-12)
        for a, b in zip(xs, xm):
            assert a.grad == pytest.approx(b.grad, rel=1e-12, abs=1e-12)


def test_layer_and_neuron_match_micrograd():
    layer = nn.Layer(4, 3, init="uniform", seed=1)
    ref = micrograd_nn.Layer(4, 3)
    copy_into_micrograd(layer, ref)
    x = [0.3, -0.7, 1.1, 2.0]
    assert [v.data for v in layer(x)] == pytest.approx([v.data for v in ref(x)], rel=1e-12, abs=1e-12)

    one = nn.Layer(4, 1, nonlin=False, seed=2)
    ref1 = micrograd_nn.Layer(4, 1, nonlin=False)
    copy_into_micrograd(one, ref1)
    out = one(x)
    assert isinstance(out, ag.Value)  # micrograd unwraps a one-neuron layer
    assert out.data == pytest.approx(ref1(x).data, rel=1e-12, abs=1e-12)

    n = nn.Neuron(4, nonlin=False, init="uniform", seed=3)
    refn = micrograd_nn.Neuron(4, nonlin=False)
    copy_into_micrograd(n, refn)
    assert n(x).data == pytest.approx(refn(x).data, rel=1e-12, abs=1e-12)


def test_inputs_may_be_tuples_arrays_and_one_neuron_outputs():
    m = nn.MLP(2, [3, 1], seed=0)
    ref = m([0.5, -0.25]).data
    assert m((0.5, -0.25)).data == ref
    assert m(np.array([0.5, -0.25])).data == ref
    # A width-1 hidden layer returns a Value (micrograd's convention); the next layer takes it.
    narrow = nn.MLP(2, [1, 2], seed=0)
    out = narrow([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2
    n = nn.Neuron(1, nonlin=False, seed=0)
    assert n(3.0).data == n.w[0].data * 3.0  # a bare number is a one-feature sample


def test_wrong_input_width_raises():
    with pytest.raises(ValueError, match="expects 2 inputs, got 3"):
        nn.MLP(2, [3, 1])([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="expects 3 inputs, got 2"):
        nn.Neuron(3)([1.0, 2.0])
    with pytest.raises(ValueError, match="expects 2 inputs"):
        nn.Linear(2, 1)([1.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Neuron(0),
        lambda: nn.Layer(2, 0),
        lambda: nn.MLP(2, []),
        lambda: nn.Linear(0, 2),
        lambda: nn.Neuron(2, activation="gelu"),
        lambda: nn.MLP(2, [2], activation="swish"),
        lambda: nn.Layer(2, 2, init="orthogonal"),
    ],
)
def test_bad_constructor_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_one_fused_node_per_weighted_sum():
    # 2-16-16-1: per hidden neuron dot + add + relu, per output neuron dot + add.
    m = nn.MLP(2, [16, 16, 1], seed=0)
    before = live_nodes()
    out = m([0.5, -0.5])
    assert live_nodes() - before == 16 * 3 + 16 * 3 + 2
    del out
    assert live_nodes() == before


# --------------------------------------------------------------- activations


def test_neuron_activations_against_plain_floats():
    x = [0.4, -1.3, 0.8]
    formulas = {
        "relu": lambda s: max(s, 0.0),
        "tanh": math.tanh,
        "sigmoid": lambda s: 1.0 / (1.0 + math.exp(-s)),
        "linear": lambda s: s,
        "leaky_relu": lambda s: s if s > 0 else 0.2 * s,
    }
    for act, f in formulas.items():
        for seed in range(4):  # both signs of the pre-activation
            n = nn.Neuron(3, activation=act, seed=seed, negative_slope=0.2)
            n.b.data = 0.1 * seed - 0.15
            s = math.fsum(w.data * xi for w, xi in zip(n.w, x)) + n.b.data
            assert n(x).data == pytest.approx(f(s), rel=1e-12, abs=1e-15), act


def test_activation_is_settable():
    n = nn.Neuron(2, seed=0)
    n.b.data = -100.0
    assert n([1.0, 1.0]).data == 0.0  # relu clamps
    n.nonlin = False
    assert n.activation == "linear"
    assert n([1.0, 1.0]).data < -90
    n.activation = "leaky_relu"
    n.negative_slope = 0.5
    lin = sum(w.data for w in n.w) - 100.0
    assert n([1.0, 1.0]).data == pytest.approx(0.5 * lin)
    with pytest.raises(ValueError):
        n.activation = "softmax"


class SquaredNeuron(nn.Neuron):
    """A neuron with a forward of its own: the square of its weighted sum, counted."""

    calls = 0

    def forward(self, x):
        SquaredNeuron.calls += 1
        z = ag.dot(self.w, x) + self.b
        return z * z


def test_layer_calls_a_neuron_subclass_forward():
    layer = nn.Layer(3, 2, seed=0)
    layer.neurons = [SquaredNeuron(3, seed=s) for s in (1, 2)]
    for n, b in zip(layer.neurons, (0.3, -0.2)):
        n.b.data = b
    x = [0.5, -1.0, 2.0]
    SquaredNeuron.calls = 0
    out = layer(x)
    assert SquaredNeuron.calls == 2
    want = [(math.fsum(w.data * xi for w, xi in zip(n.w, x)) + n.b.data) ** 2 for n in layer.neurons]
    assert [v.data for v in out] == pytest.approx(want, rel=1e-12)
    # inside an MLP too, and its parameters are the model's
    mlp = nn.MLP(3, [2, 1], seed=0)
    mlp.layers[0] = layer
    hidden = [v.data for v in layer(x)]
    last = mlp.layers[1].neurons[0]
    assert mlp(x).data == pytest.approx(math.fsum(w.data * h for w, h in zip(last.w, hidden)) + last.b.data)
    assert len(mlp.parameters()) == 2 * 4 + 3
    mlp(x).backward()
    assert all(p.grad != 0.0 for p in layer.neurons[0].w)


def test_mlp_hidden_activation_and_linear_output():
    m = nn.MLP(2, [3, 2], activation="tanh", seed=0)
    assert [n.activation for n in m.layers[0].neurons] == ["tanh"] * 3
    assert [n.activation for n in m.layers[1].neurons] == ["linear"] * 2


def test_activation_modules_elementwise():
    xs = [ag.Value(-2.0), ag.Value(0.5)]
    assert [v.data for v in nn.ReLU()(xs)] == [0.0, 0.5]
    assert [v.data for v in nn.LeakyReLU(0.1)(xs)] == pytest.approx([-0.2, 0.5])
    assert [v.data for v in nn.Tanh()(xs)] == pytest.approx([math.tanh(-2.0), math.tanh(0.5)])
    assert [v.data for v in nn.Sigmoid()(xs)] == pytest.approx([1 / (1 + math.exp(2.0)), 1 / (1 + math.exp(-0.5))])
    assert nn.ReLU()(ag.Value(-1.0)).data == 0.0
    nested = nn.Tanh()([[ag.Value(0.1)], [ag.Value(0.2), ag.Value(0.3)]])
    assert [len(row) for row in nested] == [1, 2]
    assert [v.data for row in nested for v in row] == pytest.approx([math.tanh(0.1), math.tanh(0.2), math.tanh(0.3)])
    assert nn.Identity()(xs) is xs


# ------------------------------------------------------------ initialisation


def test_seed_reproducible_and_global_rng():
    a = nn.MLP(3, [8, 1], seed=5)
    b = nn.MLP(3, [8, 1], seed=5)
    c = nn.MLP(3, [8, 1], seed=6)
    assert snapshot(a) == snapshot(b) != snapshot(c)
    # Neurons of one layer must differ (one stream per constructor, not one per neuron).
    for layer in (a.layers[0], nn.Layer(3, 4, seed=0), nn.Layer(3, 4, seed=0, init="uniform")):
        rows = [tuple(w.data for w in n.w) for n in layer.neurons]
        assert len(set(rows)) == len(rows)
    manual_seed(123)
    d = nn.MLP(3, [8, 1])
    manual_seed(123)
    e = nn.MLP(3, [8, 1])
    f = nn.MLP(3, [8, 1])
    assert snapshot(d) == snapshot(e) != snapshot(f)


def test_uniform_init_is_micrographs():
    m = nn.MLP(4, [50, 1], init="uniform", seed=0)
    w = np.array([p.data for n in m.layers[0].neurons for p in n.w])
    assert w.min() >= -1 and w.max() <= 1 and w.min() < -0.9 and w.max() > 0.9
    assert all(n.b.data == 0.0 for layer in m.layers for n in layer.neurons)


def test_kaiming_and_xavier_scales():
    fan_in, fan_out = 400, 50
    relu = nn.Layer(fan_in, fan_out, seed=0)  # default: He normal
    w = np.array([p.data for n in relu.neurons for p in n.w])
    assert w.std() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.03)
    assert abs(w.mean()) < 0.01

    tanh = nn.Layer(fan_in, fan_out, activation="tanh", seed=0)  # default: Glorot uniform
    w = np.array([p.data for n in tanh.neurons for p in n.w])
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3.0), rel=0.03)

    lin = nn.Linear(fan_in, fan_out, seed=0, init="xavier")
    w = np.array([[p.data for p in row] for row in lin.weight])
    assert w.shape == (fan_out, fan_in) and np.abs(w).max() <= bound

    leaky = nn.Layer(fan_in, fan_out, activation="leaky_relu", negative_slope=0.5, seed=0)
    w = np.array([p.data for n in leaky.neurons for p in n.w])
    assert w.std() == pytest.approx(math.sqrt(2.0 / (1.25 * fan_in)), rel=0.03)


# ------------------------------------------------------ Linear and Sequential


def test_linear_and_sequential_against_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Tanh(), nn.Linear(4, 2, seed=1), nn.Sigmoid())
    ref = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2), torch.nn.Sigmoid()
    ).double()
    with torch.no_grad():
        for i in (0, 2):
            ours[i].bias[0].data = 0.3 * i - 0.1  # a nonzero bias too
            w = [[p.data for p in row] for row in ours[i].weight]
            ref[i].weight.copy_(torch.tensor(w, dtype=torch.float64))
            ref[i].bias.copy_(torch.tensor([p.data for p in ours[i].bias], dtype=torch.float64))
    x = [0.5, -1.0, 2.0]
    xs = [ag.Value(v) for v in x]
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out, tout = ours(xs), ref(xt)
    assert [v.data for v in out] == pytest.approx(tout.tolist(), rel=1e-12)
    (out[0] * 2.0 + out[1]).backward()
    (tout[0] * 2.0 + tout[1]).backward()
    assert [v.grad for v in xs] == pytest.approx(xt.grad.tolist(), rel=1e-12)
    for i in (0, 2):
        want = ref[i].weight.grad.flatten().tolist()
        assert [p.grad for row in ours[i].weight for p in row] == pytest.approx(want, rel=1e-12)
        assert [p.grad for p in ours[i].bias] == pytest.approx(ref[i].bias.grad.tolist(), rel=1e-12)


def test_linear_returns_list_even_of_one_and_no_bias():
    lin = nn.Linear(2, 1, bias=False, seed=0)
    out = lin([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 1
    w = lin.weight[0]
    assert out[0].data == pytest.approx(w[0].data + 2 * w[1].data)
    assert lin.bias is None


def test_sequential_container():
    a, b = nn.Linear(2, 3), nn.ReLU()
    s = nn.Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b and list(s) == [a, b]
    assert isinstance(s[:1], nn.Sequential) and len(s[:1]) == 1
    s.append(nn.Linear(3, 1))
    assert len(s) == 3 and list(s.state_dict())[-1] == "2.bias"
    with pytest.raises(TypeError):
        nn.Sequential(a, "relu")


# ------------------------------------------------------ loading and saving


def test_load_state_dict_round_trip_keeps_identity():
    src = nn.MLP(3, [4, 2], seed=1)
    dst = nn.MLP(3, [4, 2], seed=2)
    params_before = dst.parameters()
    x = [0.1, 0.2, -0.3]
    assert [v.data for v in dst(x)] != [v.data for v in src(x)]
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert [v.data for v in dst(x)] == [v.data for v in src(x)]
    # Written in place: an optimizer holding the old parameter list still sees them.
    assert all(a is b for a, b in zip(params_before, dst.parameters()))


def test_load_state_dict_strict_errors_leave_model_unchanged():
    m = nn.MLP(2, [3, 1], seed=0)
    good = nn.MLP(2, [3, 1], seed=9).state_dict()
    before = snapshot(m)

    missing = dict(good)
    del missing["layers.1.neurons.0.b"]
    with pytest.raises(KeyError, match="layers.1.neurons.0.b"):
        m.load_state_dict(missing)
    assert snapshot(m) == before

    extra = dict(good, **{"layers.2.neurons.0.w": np.zeros(3)})
    with pytest.raises(KeyError, match="layers.2.neurons.0.w"):
        m.load_state_dict(extra)
    assert snapshot(m) == before

    # The bad entry comes last, after entries that would load fine.
    bad_shape = dict(good, **{"layers.1.neurons.0.w": np.zeros(4)})
    with pytest.raises(ValueError, match=r"layers\.1\.neurons\.0\.w.*\(4,\).*\(3,\)"):
        m.load_state_dict(bad_shape)
    assert snapshot(m) == before

    bad_type = dict(good, **{"layers.1.neurons.0.b": np.array("x")})
    with pytest.raises(ValueError, match="layers.1.neurons.0.b"):
        m.load_state_dict(bad_type)
    bad_complex = dict(good, **{"layers.1.neurons.0.b": np.array(1j)})
    with pytest.raises(ValueError, match="layers.1.neurons.0.b"):
        m.load_state_dict(bad_complex)
    assert snapshot(m) == before


def test_load_state_dict_non_strict():
    m = nn.MLP(2, [3, 1], seed=0)
    sd = {"layers.1.neurons.0.b": np.array(5.0), "junk": np.zeros(2)}
    res = m.load_state_dict(sd, strict=False)
    assert m.layers[1].neurons[0].b.data == 5.0
    assert res.unexpected_keys == ["junk"] and len(res.missing_keys) == 7
    # Shapes are still checked.
    with pytest.raises(ValueError):
        m.load_state_dict({"layers.1.neurons.0.b": np.zeros(2)}, strict=False)


def test_load_state_dict_accepts_lists_and_ints():
    n = nn.Neuron(2)
    n.load_state_dict({"w": [1, 2], "b": 3})
    assert [w.data for w in n.w] == [1.0, 2.0] and n.b.data == 3.0
    assert type(n.b.data) is float


def test_save_load_file_round_trip(tmp_path):
    src = nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Linear(3, 1, seed=1))
    src[0].bias[1].data = 0.25
    path = tmp_path / "model.ckpt"  # no .npz suffix: the name is kept as given
    src.save(path)
    assert path.exists() and not (tmp_path / "model.ckpt.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]  # no temp file left
    with np.load(path, allow_pickle=False) as f:
        assert sorted(f.files) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    dst = nn.Sequential(nn.Linear(2, 3, seed=5), nn.ReLU(), nn.Linear(3, 1, seed=6))
    dst.load(str(path))
    assert snapshot(dst) == snapshot(src)
    x = [0.3, -0.9]
    assert dst(x)[0].data == src(x)[0].data


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_load_bad_files_raise_value_error_and_leave_model_unchanged(tmp_path):
    m = nn.MLP(2, [3, 1], seed=0)
    m.save(tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    other = nn.MLP(2, [4, 1], seed=0)
    other.save(tmp_path / "foreign_shapes.npz")
    np.savez(tmp_path / "foreign_keys.npz", weight=np.zeros((2, 2)))
    np.save(tmp_path / "single.npy", np.zeros(3))
    np.savez(tmp_path / "pickled.npz", **{k: v.astype(object) for k, v in m.state_dict().items()})
    cases = {
        "truncated": _write(tmp_path / "truncated.npz", good[: len(good) // 2]),
        "garbage": _write(tmp_path / "garbage.npz", bytes(range(256)) * 4),
        "text": _write(tmp_path / "text.npz", b"hello, not a checkpoint\n"),
        "empty": _write(tmp_path / "empty.npz", b""),
        "foreign_shapes": tmp_path / "foreign_shapes.npz",
        "foreign_keys": tmp_path / "foreign_keys.npz",
        "single": tmp_path / "single.npy",
        "pickled": tmp_path / "pickled.npz",
    }
    # A member whose bytes were flipped after the zip directory was written.
    flipped = bytearray(good)
    with zipfile.ZipFile(tmp_path / "good.npz") as z:
        info = z.infolist()[-1]
    start = info.header_offset + 30 + len(info.filename) + 80
    flipped[start : start + 8] = b"\xff" * 8
    cases["flipped"] = _write(tmp_path / "flipped.npz", bytes(flipped))

    target = nn.MLP(2, [3, 1], seed=42)
    before = snapshot(target)
    for name, path in cases.items():
        with pytest.raises(ValueError) as info:
            target.load(path)
        assert str(path) in str(info.value), name
        assert snapshot(target) == before, name
    with pytest.raises(ValueError, match="missing key"):
        target.load(cases["foreign_keys"])
    with pytest.raises(FileNotFoundError):
        target.load(tmp_path / "nope.npz")
    target.load(tmp_path / "good.npz")
    assert snapshot(target) == snapshot(m)
