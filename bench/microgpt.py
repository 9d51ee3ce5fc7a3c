"""A pure-Python client in the style of Karpathy's microgpt (a one-layer GPT on
characters, scalar autograd, Adam), written against any micrograd-style ``Value``:
its own (``MicroValue`` below, as the original keeps it) or ``arenagrad.Value``
swapped in with nothing else changed. Part of ``bench/run.py`` (section
``microgpt``).

The original trains on a list of names it downloads; this machine has no network,
so the documents are pseudo-names drawn from a seeded generator. The model, the
graph it builds (35,000 to 84,000 MicroValue nodes a step, by the document's
length, 56,000 on average over the first 60 steps; 30,000 to 78,000 as arenagrad
counts them, a constant operand being no node of its own) and the update are the
same shape.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Dict, List


class MicroValue:
    """microgpt's scalar: data, grad, the children and the local gradients."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data: float, children: tuple = (), local_grads: tuple = ()) -> None:
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other: Any) -> MicroValue:
        other = other if isinstance(other, MicroValue) else MicroValue(other)
        return MicroValue(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other: Any) -> MicroValue:
        other = other if isinstance(other, MicroValue) else MicroValue(other)
        return MicroValue(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k: float) -> MicroValue:
        return MicroValue(self.data**k, (self,), (k * self.data ** (k - 1),))

    def log(self) -> MicroValue:
        return MicroValue(math.log(self.data), (self,), (1 / self.data,))

    def exp(self) -> MicroValue:
        e = math.exp(self.data)
        return MicroValue(e, (self,), (e,))

    def relu(self) -> MicroValue:
        return MicroValue(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self) -> MicroValue:
        return self * -1

    def __radd__(self, other: Any) -> MicroValue:
        return self + other

    def __sub__(self, other: Any) -> MicroValue:
        return self + (-other)

    def __rsub__(self, other: Any) -> MicroValue:
        return other + (-self)

    def __rmul__(self, other: Any) -> MicroValue:
        return self * other

    def __truediv__(self, other: Any) -> MicroValue:
        return self * other**-1

    def __rtruediv__(self, other: Any) -> MicroValue:
        return other * self**-1

    def backward(self) -> None:
        topo: List[MicroValue] = []
        visited = set()

        def build(v: MicroValue) -> None:
            if v not in visited:
                visited.add(v)
                for child in v._children:
                    build(child)
                topo.append(v)

        build(self)
        self.grad = 1
        for v in reversed(topo):
            for child, local in zip(v._children, v._local_grads):
                child.grad += local * v.grad


def documents(n: int = 2000, seed: int = 42) -> List[str]:
    """Pseudo-names: alternating consonant and vowel runs, 3 to 9 letters."""
    rng = random.Random(seed)
    vowels, consonants = "aeiouy", "bcdfghjklmnprstvwz"
    docs = []
    for _ in range(n):
        length = rng.randint(3, 9)
        docs.append("".join(rng.choice(vowels if i % 2 else consonants) for i in range(length)))
    return docs


class MicroGPT:
    """The model and its training step over a given Value class."""

    def __init__(self, Value: Callable[[float], Any], n_embd: int = 16, n_head: int = 4, block_size: int = 16) -> None:
        self.Value = Value
        self.docs = documents()
        self.chars = sorted(set("".join(self.docs)))
        self.bos = len(self.chars)
        self.vocab = len(self.chars) + 1
        self.n_embd, self.n_head, self.head_dim, self.block_size = n_embd, n_head, n_embd // n_head, block_size
        rng = random.Random(42)

        def matrix(rows: int, cols: int, std: float = 0.08) -> List[List[Any]]:
            return [[Value(rng.gauss(0, std)) for _ in range(cols)] for _ in range(rows)]

        self.sd: Dict[str, List[List[Any]]] = {
            "wte": matrix(self.vocab, n_embd),
            "wpe": matrix(block_size, n_embd),
            "lm_head": matrix(self.vocab, n_embd),
            "wq": matrix(n_embd, n_embd),
            "wk": matrix(n_embd, n_embd),
            "wv": matrix(n_embd, n_embd),
            "wo": matrix(n_embd, n_embd),
            "fc1": matrix(4 * n_embd, n_embd),
            "fc2": matrix(n_embd, 4 * n_embd),
        }
        self.params = [p for mat in self.sd.values() for row in mat for p in row]
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)
        self.steps = 0

    @staticmethod
    def linear(x: List[Any], w: List[List[Any]]) -> List[Any]:
        return [sum(wi * xi for wi, xi in zip(wo, x)) for wo in w]

    @staticmethod
    def softmax(logits: List[Any]) -> List[Any]:
        top = max(v.data for v in logits)
        exps = [(v - top).exp() for v in logits]
        total = sum(exps)
        return [e / total for e in exps]

    @staticmethod
    def rmsnorm(x: List[Any]) -> List[Any]:
        ms = sum(xi * xi for xi in x) / len(x)
        scale = (ms + 1e-5) ** -0.5
        return [xi * scale for xi in x]

    def gpt(self, token: int, pos: int, keys: List[List[Any]], values: List[List[Any]]) -> List[Any]:
        sd, hd = self.sd, self.head_dim
        x = [t + p for t, p in zip(sd["wte"][token], sd["wpe"][pos])]
        x = self.rmsnorm(x)
        residual = x
        x = self.rmsnorm(x)
        q, k, v = self.linear(x, sd["wq"]), self.linear(x, sd["wk"]), self.linear(x, sd["wv"])
        keys.append(k)
        values.append(v)
        attended: List[Any] = []
        for h in range(self.n_head):
            s = h * hd
            qh = q[s : s + hd]
            scores = [sum(qh[j] * kt[s + j] for j in range(hd)) / hd**0.5 for kt in keys]
            weights = self.softmax(scores)
            attended.extend(sum(weights[t] * values[t][s + j] for t in range(len(values))) for j in range(hd))
        x = [a + b for a, b in zip(self.linear(attended, sd["wo"]), residual)]
        residual = x
        x = [xi.relu() for xi in self.linear(self.rmsnorm(x), sd["fc1"])]
        x = [a + b for a, b in zip(self.linear(x, sd["fc2"]), residual)]
        return self.linear(x, sd["lm_head"])

    def loss(self) -> Any:
        """The next document's mean next-character loss, as a graph."""
        doc = self.docs[self.steps % len(self.docs)]
        tokens = [self.bos] + [self.chars.index(c) for c in doc] + [self.bos]
        n = min(self.block_size, len(tokens) - 1)
        keys: List[List[Any]] = []
        values: List[List[Any]] = []
        losses = []
        for pos in range(n):
            probs = self.softmax(self.gpt(tokens[pos], pos, keys, values))
            losses.append(-probs[tokens[pos + 1]].log())
        return (1 / n) * sum(losses)

    def step(self, lr: float = 0.01, beta1: float = 0.85, beta2: float = 0.99, eps: float = 1e-8) -> float:
        """One training step (forward, backward, Adam); the loss before it."""
        loss = self.loss()
        loss.backward()
        self.steps += 1
        t = self.steps
        for i, p in enumerate(self.params):
            self.m[i] = beta1 * self.m[i] + (1 - beta1) * p.grad
            self.v[i] = beta2 * self.v[i] + (1 - beta2) * p.grad**2
            m_hat = self.m[i] / (1 - beta1**t)
            v_hat = self.v[i] / (1 - beta2**t)
            p.data -= lr * m_hat / (v_hat**0.5 + eps)
            p.grad = 0
        return loss.data


def bench_microgpt(quick: bool, alternate: Callable[..., Dict[str, float]], block: Callable[..., Any]) -> List[Dict]:
    """microgpt's training step on its own Value and on arenagrad.Value, default GC and
    GC off, in the same rounds; and where arenagrad's step goes (backward and release
    per node of the step's graph)."""
    import gc
    import sys
    import time

    import arenagrad as ag
    from run import row, treatment

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))  # MicroValue.backward recurses
    W = "microgpt training step (1 layer, 16-wide, 4 heads, block 16, Adam), pure-Python client"
    # The same losses on both engines (the client's own check of the swap).
    a, b = MicroGPT(MicroValue), MicroGPT(ag.Value)
    for _ in range(3):
        la, lb = a.step(), b.step()
        assert abs(la - lb) <= 1e-12 * abs(la), (la, lb)
    models = {"mv": MicroGPT(MicroValue), "ag": MicroGPT(ag.Value)}

    def from_the_first_document(model: MicroGPT, gc_off: bool) -> Callable[[int, int], List[float]]:
        """Each step trains on the next document, and a document's length sets its
        graph's size (35,000 to 84,000 nodes): every block starts again from the
        first document, so that all four time the same documents. With the
        collector off, the cycles MicroValue.backward leaves (its recursive
        closure) are collected between steps, untimed, as micrograd's rows do."""
        timed = block(model.step, setup=gc.collect if gc_off else None, gc_off=gc_off)

        def run(warmup: int, reps: int) -> List[float]:
            # Adam's moments and the parameters carry on: only the document
            # (and the bias correction's step count) start again, and the
            # time depends on the document alone.
            model.steps = 0
            return timed(warmup, reps)

        return run

    blocks = {
        "mv": from_the_first_document(models["mv"], False),
        "mv_gc_off": from_the_first_document(models["mv"], True),
        "ag": from_the_first_document(models["ag"], False),
        "ag_gc_off": from_the_first_document(models["ag"], True),
    }
    rounds, warmup, reps = (2, 1, 2) if quick else (3, 1, 5)
    t = {k: v * 1e3 for k, v in alternate(blocks, rounds, warmup, reps).items()}
    # arenagrad's backward and release on the first document's graph, per node
    # that graph holds (as the engine counts them: a constant is no node).
    m = models["ag"]
    m.steps = 0
    back, free, built = [], [], []
    for _ in range(5 if quick else 15):
        before = ag._core.engine_stats()["live_nodes"]
        loss = m.loss()
        built.append(ag._core.engine_stats()["live_nodes"] - before)
        t0 = time.perf_counter()
        loss.backward()
        t1 = time.perf_counter()
        del loss
        t2 = time.perf_counter()
        assert ag._core.engine_stats()["live_nodes"] == before, "release left nodes alive"
        back.append(t1 - t0)
        free.append(t2 - t1)
        for p in m.params:
            p.grad = 0
    assert len(set(built)) == 1, built
    nodes = built[0]
    back.sort()
    free.sort()
    b_ns, r_ns = back[len(back) // 2] / nodes * 1e9, free[len(free) // 2] / nodes * 1e9
    per_node = f"backward {b_ns:.1f} ns/node, release {r_ns:.1f} ns/node"
    docs = f"documents 1-{reps} (after one warm-up step on document 0) in every block"
    return [
        row(
            "microgpt",
            W,
            "arenagrad.Value swapped in, default GC / GC off",
            t["ag"],
            "ms/step",
            vs=f"{t['mv'] / t['ag']:.1f}x faster than microgpt's Value (default GC); "
            f"{t['mv_gc_off'] / t['ag_gc_off']:.1f}x with GC off (arenagrad GC off: {t['ag_gc_off']:.2f} ms)",
            note=f"{docs}; on document 0's graph ({nodes:,} nodes, parameters aside): {per_node}; "
            "the same losses on both; " + treatment(rounds, warmup, reps),
        ),
        row(
            "microgpt",
            W,
            "microgpt's own Value, default GC / GC off",
            t["mv"],
            "ms/step",
            note=f"GC off: {t['mv_gc_off']:.1f} ms (its graphs, held in cycles, collected between steps, untimed)",
        ),
    ]
