"""micrograd's own tests and code, run on arenagrad.

References, in order of independence: the numbers micrograd publishes in its
README/tests, PyTorch in float64, and micrograd's ``Value`` (installed as
``micrograd==0.1.0``) evaluating the very same expression.
"""

from __future__ import annotations

import inspect
import random
import types

import arenagrad as ag
import pytest

# ---------------------------------------------------- micrograd's test_engine


def sanity_check(Value):
    """micrograd/test/test_engine.py::test_sanity_check, verbatim apart from the Value."""
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    return x, y


def more_ops(Value):
    """micrograd/test/test_engine.py::test_more_ops, verbatim apart from the Value."""
    a, b, g = more_ops_graph(Value)
    g.backward()
    return a, b, g


def more_ops_graph(Value):
    """test_more_ops's expression, before its backward."""
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    return a, b, g


def test_sanity_check_hand_values():
    # By hand: z = 3x + 2 = -10, q = relu(z) + z x = 40, h = z^2 = 100,
    # y = h + q + q x = -20; dy/dx = 6z + (3x + z)(1 + x) + q = 46.
    x, y = sanity_check(ag.Value)
    assert y.data == -20.0
    assert x.grad == 46.0


def test_sanity_check_vs_torch(torch):
    x, y = sanity_check(ag.Value)
    tx = torch.tensor([-4.0], dtype=torch.float64, requires_grad=True)
    tz = 2 * tx + 2 + tx
    tq = tz.relu() + tz * tx
    th = (tz * tz).relu()
    ty = th + tq + tq * tx
    ty.backward()
    assert y.data == ty.item()
    assert x.grad == tx.grad.item()


def test_sanity_check_vs_micrograd():
    from micrograd.engine import Value as MgValue

    x, y = sanity_check(ag.Value)
    mx, my = sanity_check(MgValue)
    assert y.data == my.data
    assert x.grad == mx.grad


def test_more_ops_published_values():
    # micrograd's README: "prints 24.7041, the outcome of this forward pass",
    # "prints 138.8338, i.e. the numerical value of dg/da",
    # "prints 645.5773, i.e. the numerical value of dg/db".
    a, b, g = more_ops(ag.Value)
    assert abs(g.data - 24.7041) < 1e-4
    assert abs(a.grad - 138.8338) < 1e-4
    assert abs(b.grad - 645.5773) < 1e-4


def test_more_ops_vs_torch(torch):
    a, b, g = more_ops(ag.Value)
    ta = torch.tensor([-4.0], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    tc = ta + tb
    td = ta * tb + tb**3
    tc = tc + tc + 1
    tc = tc + 1 + tc + (-ta)
    td = td + td * 2 + (tb + ta).relu()
    td = td + 3 * td + (tb - ta).relu()
    te = tc - td
    tf = te**2
    tg = tf / 2.0
    tg = tg + 10.0 / tf
    tg.backward()
    assert g.data == pytest.approx(tg.item(), rel=1e-12)
    assert a.grad == pytest.approx(ta.grad.item(), rel=1e-12)
    assert b.grad == pytest.approx(tb.grad.item(), rel=1e-12)


def test_more_ops_vs_micrograd():
    from micrograd.engine import Value as MgValue

    a, b, g = more_ops(ag.Value)
    ma, mb, mg = more_ops(MgValue)
    # micrograd divides as x * y**-1 and subtracts as x + (-y): a few ulps apart.
    assert g.data == pytest.approx(mg.data, rel=1e-12)
    assert a.grad == pytest.approx(ma.grad, rel=1e-12)
    assert b.grad == pytest.approx(mb.grad, rel=1e-12)


# ------------------------------------------------ micrograd code, unchanged


def trace(root):
    """micrograd's trace_graph.ipynb helper, verbatim."""
    # builds a set of all nodes and edges in a graph
    nodes, edges = set(), set()

    def build(v):
        if v not in nodes:
            nodes.add(v)
            for child in v._prev:
                edges.add((child, v))
                build(child)

    build(root)
    return nodes, edges


class FakeDigraph:
    """Records what graphviz.Digraph would draw (graphviz need not be installed)."""

    def __init__(self, **kwargs):
        self.nodes = {}
        self.edges = []

    def node(self, name, label, **kwargs):
        self.nodes[name] = label

    def edge(self, a, b):
        self.edges.append((a, b))


def draw_dot(root, Digraph=FakeDigraph):
    """micrograd's draw_dot, verbatim apart from the injectable Digraph."""
    dot = Digraph(format="svg", graph_attr={"rankdir": "LR"})  # LR = left to right

    nodes, edges = trace(root)
    for n in nodes:
        uid = str(id(n))
        # for any value in the graph, create a rectangular ('record') node for it
        dot.node(name=uid, label="{ data %.4f | grad %.4f }" % (n.data, n.grad), shape="record")  # noqa: UP031 (micrograd's own line)
        if n._op:
            # if this value is a result of some operation, create an op node for it
            dot.node(name=uid + n._op, label=n._op)
            # and connect this node to it
            dot.edge(uid + n._op, uid)

    for n1, n2 in edges:
        # connect n1 to the op node of n2
        dot.edge(str(id(n1)), str(id(n2)) + n2._op)

    return dot


def shared_dag(Value, keep_intermediates):
    a, b = Value(2.0), Value(-3.0)
    c = a * b  # used three times
    d = c + a  # a used twice
    e = c * d
    f = e + c
    sq = f * f  # the same node twice: one edge in a set
    out = sq + b
    held = (c, d, e, f, sq) if keep_intermediates else ()
    return a, b, out, held


@pytest.mark.parametrize("keep_intermediates", [True, False])
def test_trace_on_shared_dag(keep_intermediates):
    from micrograd.engine import Value as MgValue

    a, b, out, held = shared_dag(ag.Value, keep_intermediates)
    nodes, edges = trace(out)
    # a, b, c, d, e, f, sq, out; edges by hand:
    # a->c b->c c->d a->d c->e d->e e->f c->f f->sq sq->out b->out
    assert len(nodes) == 8
    assert len(edges) == 11
    assert a in nodes and b in nodes and out in nodes
    for child, parent in edges:
        assert child in nodes and parent in nodes  # identity is stable across _prev calls
    assert {n._op for n in nodes} == {"", "*", "+"}
    assert sum(1 for n in nodes if n._op == "") == 2
    # the same code on micrograd's own Value agrees
    ma, mb, mout, _ = shared_dag(MgValue, True)
    mnodes, medges = trace(mout)
    assert (len(mnodes), len(medges)) == (len(nodes), len(edges))


def test_draw_dot_runs_unchanged():
    a, b, out, _ = shared_dag(ag.Value, keep_intermediates=False)
    out.backward()
    dot = draw_dot(out)
    # 8 value records + 6 op nodes; 6 op->value edges + 11 value->op edges
    assert len(dot.nodes) == 8 + 6
    assert len(dot.edges) == 6 + 11
    assert dot.nodes[str(id(a))].startswith("{ data 2.0000 | grad ")
    assert dot.nodes[str(id(out)) + "+"] == "+"


def test_draw_dot_grads_match_torch(torch):
    a, b, out, _ = shared_dag(ag.Value, keep_intermediates=False)
    out.backward()
    ta = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    tc = ta * tb
    tf = tc * (tc + ta) + tc
    tout = tf * tf + tb
    tout.backward()
    assert out.data == tout.item()
    assert a.grad == ta.grad.item() and b.grad == tb.grad.item()


def _micrograd_nn_with(Value):
    """micrograd/nn.py's source, executed unchanged except for which Value it imports."""
    import micrograd.nn

    src = inspect.getsource(micrograd.nn)
    assert "from micrograd.engine import Value" in src
    mod = types.ModuleType("nn_on_" + Value.__module__.replace(".", "_"))
    mod.__dict__["Value"] = Value
    exec(compile(src.replace("from micrograd.engine import Value", ""), "micrograd/nn.py", "exec"), mod.__dict__)
    return mod


def _train(nn, Value, steps=3):
    """micrograd's demo.ipynb training loop (hinge loss + L2), on a fixed tiny set."""
    state = random.getstate()
    random.seed(1337)  # micrograd's nn draws its weights from the global generator
    try:
        model = nn.MLP(2, [8, 8, 1])
    finally:
        random.setstate(state)
    rng = random.Random(7)
    X = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(10)]
    y = [1 if x0 * x1 > 0 else -1 for x0, x1 in X]
    history = []
    for k in range(steps):
        inputs = [list(map(Value, xrow)) for xrow in X]
        scores = list(map(model, inputs))
        losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        alpha = 1e-4
        reg_loss = alpha * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        grads = [p.grad for p in model.parameters()]
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        history.append((total_loss.data, grads, [p.data for p in model.parameters()]))
    return history


def test_micrograd_nn_and_training_loop_run_unchanged():
    from micrograd.engine import Value as MgValue

    ours = _train(_micrograd_nn_with(ag.Value), ag.Value)
    ref = _train(_micrograd_nn_with(MgValue), MgValue)
    assert len(ours) == len(ref) == 3
    for (l1, g1, p1), (l2, g2, p2) in zip(ours, ref):
        assert l1 == pytest.approx(l2, rel=1e-12)
        assert len(g1) == len(g2) == 2 * 8 + 8 + 8 * 8 + 8 + 8 + 1
        assert g1 == pytest.approx(g2, rel=1e-10, abs=1e-13)
        assert p1 == pytest.approx(p2, rel=1e-10, abs=1e-13)
    assert any(g != 0 for g in ours[0][1]), "the loop must actually train"
