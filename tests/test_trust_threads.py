"""Threads: graphs built and differentiated in several Python threads
at once stay correct; grad mode is per thread; a compiled graph used from two
threads either works or raises a clear RuntimeError; long replays release the
GIL, so other Python threads run meanwhile.

The engine's graph code runs under the GIL, so what can go wrong is what
happens around the points where Python code or another thread can run in the
middle of an engine call: between bytecodes (the tests shrink the switch
interval so that threads interleave at almost every one), inside long replays
(which release the GIL), and inside callbacks such as a ``watch`` iterable.

``ARENAGRAD_THREAD_ITERS`` scales the iteration counts (default 2000 graphs
per thread; the replay tests make a tenth as many calls).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager

import arenagrad as ag
import pytest
from arenagrad import _core
from conftest import live

ITERS = int(os.environ.get("ARENAGRAD_THREAD_ITERS", "2000"))
CALLS = max(ITERS // 10, 2)
THREADS = 4


@contextmanager
def fast_switching(interval=1e-5):
    """Make the interpreter switch threads every few bytecodes."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(targets, timeout=120):
    """Start the targets together; re-raise the first exception any of them raised."""
    errors = []
    barrier = threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                fn()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish (deadlock?)"
    if errors:
        raise errors[0]


def close(got, want, rel=1e-9, abs_=1e-12):
    return math.isclose(got, want, rel_tol=rel, abs_tol=abs_)


@pytest.fixture
def engine_clean(request):
    """The test leaves a consistent arena and, if it passed, as many live
    nodes as it found (a failed test's traceback still holds its Values)."""
    before = live()
    failed = request.session.testsfailed
    yield
    _core._check_invariants()
    if request.session.testsfailed == failed:
        assert live() == before


# ------------------------------------------------------------- eager graphs


def f_and_grad(x, y):
    """The function the threads build, and its gradient in closed form."""
    t = math.tanh(x * y)
    e = math.exp(x / y)
    s = 1.0 / (1.0 + math.exp(y - x))  # softmax([x, y])[0]
    f = t + e * math.sin(x) + math.log(y) + y**3 + (x + y + 2.0) + (x * y + 1.5 * y) + s + max(x - y, 0.0)
    relu = 1.0 if x > y else 0.0
    dx = (1 - t * t) * y + e / y * math.sin(x) + e * math.cos(x) + 1.0 + y + s * (1 - s) + relu
    dy = (1 - t * t) * x - e * x / (y * y) * math.sin(x) + 1.0 / y + 3 * y * y + 1.0 + x + 1.5 - s * (1 - s) - relu
    return f, dx, dy


def build(a, b):
    return (
        (a * b).tanh()
        + (a / b).exp() * a.sin()
        + b.log()
        + b**3
        + ag.sum([a, b, 2.0])
        + ag.dot([a, b], [b, 1.5])
        + ag.softmax([a, b])[0]
        + (a - b).relu()
    )


def test_threads_build_and_differentiate_concurrently(engine_clean):
    def worker(seed):
        def run():
            rng = random.Random(seed)
            for _ in range(ITERS):
                x, y = rng.uniform(-2, 2), rng.uniform(0.5, 3)
                a, b = ag.Value(x), ag.Value(y)
                out = build(a, b)
                out.backward()
                f, dx, dy = f_and_grad(x, y)
                assert close(out.data, f), (seed, x, y, out.data, f)
                assert close(a.grad, dx) and close(b.grad, dy), (seed, x, y, a.grad, dx, b.grad, dy)
                # A second backward accumulates into the leaves only.
                out.backward()
                assert close(a.grad, 2 * dx) and close(b.grad, 2 * dy)
                assert out.grad == 1.0

        return run

    with fast_switching():
        run_threads([worker(s) for s in range(THREADS)])


def test_threads_share_leaves_eagerly(engine_clean):
    """Several threads differentiate graphs over the same leaves: every
    contribution lands (eager backward runs under the GIL as one step)."""
    a, b = ag.Value(0.7), ag.Value(1.3)
    _, dx, dy = f_and_grad(0.7, 1.3)

    def run():
        for _ in range(ITERS):
            build(a, b).backward()

    with fast_switching():
        run_threads([run] * THREADS)
    n = THREADS * ITERS
    assert close(a.grad, n * dx) and close(b.grad, n * dy)
    del a, b


# ---------------------------------------------------------------- grad mode


def test_no_grad_is_per_thread(engine_clean):
    a_inside, b_checked = threading.Event(), threading.Event()

    def a():
        with ag.no_grad():
            a_inside.set()
            assert b_checked.wait(30)
            assert not ag.is_grad_enabled()
            v = ag.Value(2.0) * 3.0
            assert v.is_leaf and not v.requires_grad and v.op == ""
        assert ag.is_grad_enabled()

    def b():
        assert a_inside.wait(30)
        # A is inside no_grad right now; this thread still records.
        assert ag.is_grad_enabled()
        w = ag.Value(2.0)
        y = w * w
        assert y.requires_grad and y.op == "*"
        y.backward()
        assert w.grad == 4.0
        b_checked.set()

    run_threads([a, b])
    assert ag.is_grad_enabled()

    # Many threads switching their own mode while building.
    def toggler(seed):
        def run():
            rng = random.Random(seed)
            for _ in range(ITERS):
                off = rng.random() < 0.5
                with ag.no_grad() if off else ag.enable_grad():
                    assert ag.is_grad_enabled() is not off
                    x = ag.Value(rng.uniform(-1, 1))
                    y = (x * 2.0).tanh() + ag.sum([x, 1.0])
                    assert y.requires_grad is not off
                    assert (y.op == "") is off
                    if not off:
                        y.backward()
                        assert close(x.grad, 2 * (1 - math.tanh(2 * x.data) ** 2) + 1)

        return run

    with fast_switching():
        run_threads([toggler(s) for s in range(THREADS)])
    assert ag.is_grad_enabled()


# ---------------------------------------------------------- compiled replay


def chain(xs, terms):
    """sum_j 2 * xs[j % n] as a chain of 2 * terms - 1 nodes (exact for small ints)."""
    n = len(xs)
    acc = xs[0] * 2.0
    for j in range(1, terms):
        acc = acc + xs[j % n] * 2.0
    return acc


def test_compiled_graph_hammered_from_two_threads(engine_clean):
    """Same graph, two threads: each call returns the right value or raises
    RuntimeError naming the other thread; never a wrong number or a crash."""
    n, terms = 50, 50_000  # 100k nodes: replays release the GIL, so calls can overlap
    xs = [ag.Value(float(i % 5)) for i in range(n)]
    out = chain(xs, terms)
    cg = ag.compile(out)
    del out
    count = [sum(1 for j in range(terms) if j % n == i) for i in range(n)]
    want = sum(2.0 * (i % 5) * count[i] for i in range(n))
    stats = {"forward": 0, "backward": 0, "busy": 0}
    lock = threading.Lock()

    def run():
        for k in range(CALLS):
            try:
                if k % 2:
                    got = cg.forward()
                    assert got == want, f"replay gave {got!r}, want {want!r}"
                    key = "forward"
                else:
                    cg.backward()
                    key = "backward"
            except RuntimeError as e:
                assert "another thread" in str(e), str(e)
                key = "busy"
            with lock:
                stats[key] += 1

    run_threads([run, run])
    assert stats["forward"] > 0 and stats["backward"] > 0, stats
    # Every successful backward added exactly 2 * count[i] (integers: no rounding).
    for i, x in enumerate(xs):
        assert x.grad == stats["backward"] * 2.0 * count[i], (i, x.grad, stats)
    del cg, xs


def test_long_replays_release_the_gil(engine_clean):
    """While thread A replays a 400k-node graph, thread B runs Python.

    A window is one forward() or backward() call. A marks the window in
    ``state`` before the call together with the value the call will change
    (the output's data, a leaf's grad); the engine writes those before it
    returns, with the GIL held. So B can see a window with the old value
    only while A is inside the call: if replays kept the GIL, never. How
    many windows B catches depends on how soon the OS runs it (the machine
    may be busy), so the test asks for a few, not most.
    """
    n, terms, windows = 50, 200_000, 100
    xs = [ag.Value(float(i % 5)) for i in range(n)]
    out = chain(xs, terms)
    cg = ag.compile(out)
    state = [None]
    seen = {}  # window -> B's loop iterations while A was inside it
    done = threading.Event()
    b_started = threading.Event()

    def a():
        assert b_started.wait(30)
        for k in range(windows):
            if k % 2 == 0:
                xs[0].data = float(k + 1)  # the output changes with every window
                state[0] = (k, "forward", out.data)
                cg.forward()
            else:
                state[0] = (k, "backward", xs[0].grad)
                cg.backward()
            state[0] = None
        done.set()

    def b():
        b_started.set()
        x0 = xs[0]
        while not done.is_set():
            s = state[0]
            if s is not None:
                k, kind, old = s
                now = out.data if kind == "forward" else x0.grad
                if now == old:  # A has not finished window k
                    seen[k] = seen.get(k, 0) + 1

    run_threads([a, b])
    assert out.data == 2.0 * sum((i % 5 if i else windows - 1) * (terms // n) for i in range(n))
    # If the GIL were held through a replay, B could not see any window open.
    assert len(seen) >= 3, f"B ran inside {len(seen)} of {windows} replays"
    del cg, out, xs


def test_two_compiled_graphs_sharing_leaves_from_two_threads(engine_clean):
    """Two compiled graphs over the same parameters, one per thread (the
    documented 'one graph per thread'): every backward's contribution lands
    in the shared leaves' .grad, as it does with eager backward. Found by
    these tests: replays used to read .grad, release the GIL and write it
    back, so one thread's updates overwrote the other's (half were lost)."""
    n, terms = 50, 50_000
    xs = [ag.Value(float(i % 5)) for i in range(n)]
    graphs = [ag.compile(chain(xs, terms)) for _ in range(2)]
    count = [sum(1 for j in range(terms) if j % n == i) for i in range(n)]

    def worker(cg):
        def run():
            for _ in range(CALLS):
                cg.backward()

        return run

    run_threads([worker(g) for g in graphs])
    lost = [i for i, x in enumerate(xs) if x.grad != 2 * CALLS * 2.0 * count[i]]
    msg = f"{len(lost)} of {n} leaves lost updates: x0.grad = {xs[0].grad}, want {2 * CALLS * 2.0 * count[0]}"
    del graphs, xs
    assert not lost, msg


# ------------------------------------------------ Python code inside compile()

WATCH_REENTRANT = """
import arenagrad as ag
x = ag.Value(0.5)
h = x.tanh() * 2.0           # shared by both outputs
out, other = h.exp(), h.sin()
def watch():
    other.backward()         # a traversal while compile() iterates watch
    yield out
try:
    cg = ag.compile(out, watch=watch())
except (RuntimeError, ValueError):
    raise SystemExit(0)      # refusing is fine
assert cg.num_nodes == 4, cg
assert cg.forward() == out.data
"""

WATCH_THREAD = """
import threading, time
import arenagrad as ag
xs = [ag.Value(0.1 * i) for i in range(10)]
h = xs[0]
for i in range(1, 2000):
    h = h * 0.999 + xs[i % 10].tanh()
out, other = h.exp(), h.sin()
stop = False
def spin():
    while not stop:
        other.backward()     # another thread differentiates a graph sharing h
t = threading.Thread(target=spin)
t.start()
def watch():
    time.sleep(0.01)         # Python code: the other thread runs
    yield out
try:
    cg = ag.compile(out, watch=watch())
    assert cg.num_nodes == 3 * 1999 + 10 + 1, cg
    assert cg.forward() == out.data
except (RuntimeError, ValueError):
    pass
finally:
    stop = True
    t.join()
"""


@pytest.mark.parametrize("script", [WATCH_REENTRANT, WATCH_THREAD], ids=["reentrant", "thread"])
def test_compile_with_a_python_watch_iterable(script):
    """A watch iterable runs Python code inside compile(); a traversal
    meanwhile (the iterable's own, or another thread's) must not corrupt the
    compiled graph. Found by these tests: compile() used to iterate watch
    between its two traversal passes, and the replay then read out of bounds
    (segfault). In a child process, so that a crash fails only this test."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"exit status {proc.returncode}{' (crash)' if proc.returncode < 0 else ''}\n{proc.stdout}\n{proc.stderr}"
    )
