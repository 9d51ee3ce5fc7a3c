"""The benchmark workloads, each written once and run against several engines.

Kept apart from ``run.py`` (which times and reports) so that tests can check
that every engine computes the same numbers on the same workload.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

# ---------------------------------------------------------------- many-ops graph


def scalar_graph_arenagrad(ag: Any, n_ops: int, leaf_values: Optional[Sequence[float]] = None) -> Tuple[list, list]:
    """docs/architecture.md's many-scalar-ops graph, built with arenagrad.

    100 leaves x_i = 0.01 i (or `leaf_values`), then op k by k % 4:
    softplus(nodes[-10]); one 4-input sum; nodes[-20] * nodes[-10];
    softmax(nodes[-4:]) (4 nodes). Returns (leaves, nodes); the output is nodes[-1].
    """
    if leaf_values is None:
        leaf_values = [0.01 * i for i in range(100)]
    nodes = [ag.Value(float(v)) for v in leaf_values]
    leaves = list(nodes)
    for k in range(n_ops):
        m = k & 3
        if m == 0:
            nodes.append(nodes[-10].softplus())
        elif m == 1:
            nodes.append(ag.sum((nodes[-30], nodes[-25], nodes[-20], nodes[-15])))
        elif m == 2:
            nodes.append(nodes[-20] * nodes[-10])
        else:
            nodes.extend(ag.softmax(nodes[-4:]))
    return leaves, nodes


def scalar_graph_torch(torch: Any, n_ops: int) -> Tuple[list, list]:
    """The same graph with PyTorch 0-d float64 tensors (eager autograd)."""
    F = torch.nn.functional
    nodes = [torch.tensor(0.01 * i, dtype=torch.float64, requires_grad=True) for i in range(100)]
    leaves = list(nodes)
    for k in range(n_ops):
        m = k & 3
        if m == 0:
            nodes.append(F.softplus(nodes[-10]))
        elif m == 1:
            nodes.append(torch.stack((nodes[-30], nodes[-25], nodes[-20], nodes[-15])).sum())
        elif m == 2:
            nodes.append(nodes[-20] * nodes[-10])
        else:
            nodes.extend(torch.softmax(torch.stack(nodes[-4:]), 0).unbind())
    return leaves, nodes


def scalar_graph_jax(jax: Any, jnp: Any, x: Any, n_ops: int) -> Any:
    """The same graph as a JAX function of the 100 leaves ``x``; its output."""
    nodes = [x[i] for i in range(100)]
    for k in range(n_ops):
        m = k & 3
        if m == 0:
            nodes.append(jax.nn.softplus(nodes[-10]))
        elif m == 1:
            nodes.append(nodes[-30] + nodes[-25] + nodes[-20] + nodes[-15])
        elif m == 2:
            nodes.append(nodes[-20] * nodes[-10])
        else:
            s = jax.nn.softmax(jnp.stack(nodes[-4:]))
            nodes.extend(s[i] for i in range(4))
    return nodes[-1]


def scalar_graph_casadi(casadi: Any, x: Any, n_ops: int) -> Any:
    """The same graph as a CasADi SX expression of the 100 symbols ``x``; its output."""
    nodes = [x[i] for i in range(100)]
    for k in range(n_ops):
        m = k & 3
        if m == 0:
            v = nodes[-10]
            nodes.append(casadi.fmax(v, 0) + casadi.log1p(casadi.exp(-casadi.fabs(v))))
        elif m == 1:
            nodes.append(nodes[-30] + nodes[-25] + nodes[-20] + nodes[-15])
        elif m == 2:
            nodes.append(nodes[-20] * nodes[-10])
        else:
            group = nodes[-4:]
            top = casadi.fmax(casadi.fmax(group[0], group[1]), casadi.fmax(group[2], group[3]))
            e = [casadi.exp(v - top) for v in group]
            total = e[0] + e[1] + e[2] + e[3]
            nodes.extend(v / total for v in e)
    return nodes[-1]


# ------------------------------------------------------------ micrograd's moons


def moons_data(n: int = 100, seed: int = 1) -> Tuple[List[List[float]], List[float]]:
    """micrograd's demo data: make_moons(100, noise=0.1), labels -1/+1."""
    import numpy as np
    from arenagrad.data import make_moons

    X, y = make_moons(n, noise=0.1, seed=seed)
    return X.tolist(), (np.asarray(y) * 2 - 1).astype(float).tolist()


def micrograd_style_loss(Value: Callable, model: Any, X: Sequence, y: Sequence, alpha: float = 1e-4):
    """micrograd's demo.ipynb loss, verbatim but for the Value class passed in.

    SVM max-margin loss plus L2, written as micrograd's users write it (Python's
    sum, one Value per input feature).
    """
    inputs = [list(map(Value, xrow)) for xrow in X]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(y, scores)]
    return total_loss, sum(accuracy) / len(accuracy)


def micrograd_style_step(Value: Callable, model: Any, X: Sequence, y: Sequence, k: int) -> float:
    """One step of micrograd's demo: forward, backward, SGD with its lr decay."""
    total_loss, _ = micrograd_style_loss(Value, model, X, y)
    model.zero_grad()
    total_loss.backward()
    lr = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= lr * p.grad
    return total_loss.data


def torch_moons_step(torch: Any, model: Any, opt: Any, X: Any, y: Any, alpha: float = 1e-4) -> float:
    """The same step in batched PyTorch eager: one tensor op per layer."""
    scores = model(X).squeeze(1)
    data_loss = torch.relu(1 - y * scores).mean()
    reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
    loss = data_loss + reg_loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def torch_moons(torch: Any, X: Sequence, y: Sequence) -> Callable[[], float]:
    """PyTorch's moons step, ready to run: the same MLP 2-16-16-1 (float64, seeded,
    one thread) and SGD; each call is one step of ``torch_moons_step``."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    ).double()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    Xt, yt = torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    return lambda: torch_moons_step(torch, net, opt, Xt, yt)


# The 10,000-op graph's output, float64, agreed by PyTorch (docs/architecture.md).
SCALAR_GRAPH_10K_OUTPUT = 0.12589713828547422
