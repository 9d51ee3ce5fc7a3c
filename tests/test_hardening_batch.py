"""Batched replay and second order under a hostile user: each case runs in a
subprocess and asserts on its exit status (a crash is a failing exit, never a
passing test).

1. out of memory (``RLIMIT_AS``) in a batch, a Hessian or the thread pool is
   ``MemoryError``, and the graph works afterwards;
2. the interpreter exits while a daemon thread is inside a batch on the pool;
3. a ``CompiledGraph`` made without ``__init__`` refuses the new methods;
4. Python code run while the engine reads a batch's arguments cannot re-enter
   the graph;
5. signal handlers that replay while the pool works on a batch change nothing,
   and one that forks leaves both processes working;
6. second order's buffers kept between calls never serve a call of another width.
"""

from __future__ import annotations

import pytest
from test_hardening_engine import assert_clean_exit, exit_while_a_daemon_thread_runs, run_child

MLP = """
import numpy as np, arenagrad as ag
rng = np.random.default_rng(0)
xs = [ag.Value(0.0, requires_grad=False) for _ in range(2)]
w = [[ag.Value(float(v)) for v in rng.normal(size=2)] for _ in range(16)]
hidden = [ag.dot(wi, xs).tanh() for wi in w]
out = ag.sum(hidden) ** 2
cg = ag.compile(out, inputs=xs)


def each_under_the_cap(cap, *calls):
    # Prints, per call, whether it raised MemoryError under an address-space cap.
    limit_memory(cap)
    for call in calls:
        try:
            call()
            print("no error")
        except MemoryError:
            print("MemoryError")
    unlimit()
"""


@pytest.mark.no_sanitizer
def test_out_of_memory_in_a_batch_is_memory_error_and_changes_nothing():
    proc = run_child(
        MLP
        + """
ag.set_num_threads(2)
small = rng.normal(size=(100, 2))
want = cg.forward(small)
X = rng.normal(size=(1_000_000, 2))
each_under_the_cap(2 << 20, lambda: cg.forward(X), lambda: cg.backward(), lambda: cg.value_and_grad(X))
ag._core._check_invariants()
assert (cg.forward(small) == want).all()
g = cg.backward()
print("done", g.shape)
""",
        limits=True,
    )
    assert_clean_exit(proc, "done (100, 2)")
    assert proc.stdout.startswith("MemoryError\n"), proc.stdout
    assert "no error" not in proc.stdout.splitlines()[0]
    assert proc.stdout.splitlines()[2] == "MemoryError", proc.stdout  # value_and_grad


@pytest.mark.no_sanitizer
def test_out_of_memory_in_a_hessian_is_memory_error():
    proc = run_child(
        """
import numpy, arenagrad as ag  # numpy loaded before the cap: the Hessian is a numpy array
xs = [ag.Value(0.001 * i) for i in range(3000)]
f = ag.sum([(xs[i] * xs[(i + 1) % 3000]).tanh() for i in range(3000)])
cg = ag.compile(f)
limit_memory(8 << 20)  # the Hessian is 72 MB
try:
    cg.hessian()
    print("no error")
except MemoryError:
    print("MemoryError")
unlimit()
v = [1.0] * 3000
print("done", len(cg.hvp(v)))
""",
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone 3000")


@pytest.mark.no_sanitizer
def test_out_of_memory_in_hessians_per_row_is_memory_error():
    # 1,000,000 rows of 34 x 34 Hessians is 9 GB: the answer's own array fails,
    # and under a tighter cap so do the workers' lanes; the graph works afterwards.
    proc = run_child(
        MLP
        + """
ag.set_num_threads(2)
small = rng.normal(size=(10, 2))
want = cg.hessian(small)
X = rng.normal(size=(1_000_000, 2))
V = np.ones((10, len(cg.leaves)))
each_under_the_cap(8 << 20, lambda: cg.hessian(X), lambda: cg.hessian(small), lambda: cg.hvp(V, small))
ag._core._check_invariants()
print("done", (cg.hessian(small) == want).all())
""",
        limits=True,
    )
    assert_clean_exit(proc, "done True")
    assert proc.stdout.startswith("MemoryError\n"), proc.stdout


@pytest.mark.no_sanitizer
def test_no_room_for_pool_threads_runs_on_the_calling_thread():
    # A thread's stack is mapped when it starts: under the cap no helper thread
    # can start, and the batch runs on the calling thread alone, same bits.
    proc = run_child(
        MLP
        + """
X = rng.normal(size=(5000, 2))
ag.set_num_threads(1)
want = cg.forward(X)
ag.set_num_threads(4)
limit_memory(1 << 20)
try:
    got = cg.forward(X)
    print("same" if (got.view(np.int64) == want.view(np.int64)).all() else "differs")
except MemoryError:
    print("MemoryError")
unlimit()
print("done", (cg.forward(X) == want).all())
""",
        limits=True,
    )
    assert_clean_exit(proc, "done True")
    assert proc.stdout.splitlines()[0] in ("same", "MemoryError"), proc.stdout


@pytest.mark.no_sanitizer
@pytest.mark.parametrize(
    "call",
    ["cg.forward(X)", "cg.backward()", "cg.value_and_grad(X)", "cg.hessian(X[:20_000])"],
    ids=["forward", "backward", "value_and_grad", "hessian"],
)
def test_interpreter_exit_while_a_daemon_thread_is_in_a_batch(call):
    setup = (
        MLP
        + """
ag.set_num_threads(2)
X = rng.normal(size=(200_000, 2))
cg.forward(X)
"""
    )
    assert_clean_exit(exit_while_a_daemon_thread_runs(setup, call), "exiting")


def test_python_code_in_an_argument_cannot_reenter_the_graph():
    # An item of grad_outputs (or of the rows) runs Python while the engine
    # converts it; a replay of the same graph from there is refused, and the
    # graph is whole afterwards.
    proc = run_child(
        MLP
        + """
X = rng.normal(size=(50, 2))
want = cg.forward(X)
class Sneaky(np.float32):  # a numpy scalar: the engine converts it with __float__
    def __float__(self):
        cg.forward(X * 2)
        return 1.0
for call in (lambda: cg.backward(np.array([Sneaky(1.0)] * 50, dtype=object)),
             lambda: cg.forward(np.array([[Sneaky(1.0), 0.5]] * 50, dtype=object))):
    try:
        call()
        print("no error")
    except RuntimeError as e:
        assert "already running" in str(e), e
        print("refused")
ag._core._check_invariants()
assert (cg.forward(X) == want).all()
print("done", cg.backward().shape)
"""
    )
    assert_clean_exit(proc, "refused\nrefused\ndone (50, 2)")


def test_signal_handlers_that_replay_while_the_pool_works_change_nothing():
    # Python's signal handlers run on the calling thread while the pool
    # threads work on the batch: one that replays another graph over rows
    # (enough for the pool, which is taken, so it runs on that thread alone)
    # and one that tries the same graph (refused) leave the batch's bits as
    # they were.
    proc = run_child(
        MLP
        + """
import signal
X = rng.normal(size=(300_000, 2))
other = ag.compile(ag.sum(w[0]) * xs[0] * xs[1], inputs=xs)
small = X[:50_000]
ag.set_num_threads(2)
want_y, want_g = cg.value_and_grad(X)
want_other = other.forward(small)
ran = {"other": 0, "refused": 0}
def handler(signum, frame):
    assert (other.forward(small) == want_other).all()
    ran["other"] += 1
    try:
        cg.forward(small)
    except RuntimeError as e:
        assert "already running" in str(e), e
        ran["refused"] += 1
    signal.setitimer(signal.ITIMER_REAL, 0.05)  # the next once this one is done, however slow the build
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.05)
for _ in range(3):
    y, g = cg.value_and_grad(X)
    assert (y.view(np.int64) == want_y.view(np.int64)).all()
    assert (g.view(np.int64) == want_g.view(np.int64)).all()
signal.setitimer(signal.ITIMER_REAL, 0)
ag._core._check_invariants()
print("done", ran["refused"] > 0)  # some ran inside a batch (outside one, the same graph replays)
"""
    )
    assert_clean_exit(proc, "done True")


@pytest.mark.no_sanitizer
def test_a_fork_in_a_signal_handler_during_a_batch_leaves_both_processes_working():
    # The child has the calling thread only: its copy of the batch, whose pool
    # threads' chunks are gone, is a RuntimeError there (not a wait for ever
    # on threads that do not exist, nor rows left unwritten); the parent's
    # batch is whole.
    proc = run_child(
        MLP
        + """
import os, signal, time
X = rng.normal(size=(400_000, 2))
ag.set_num_threads(2)
want_y, want_g = cg.value_and_grad(X)
child = []
def handler(signum, frame):
    if not child:
        child.append(os.fork())
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.02)
try:
    y, g = cg.value_and_grad(X)
    outcome = "same" if (y == want_y).all() and (g == want_g).all() else "differs"
except RuntimeError as e:
    outcome = "refused" if "forked" in str(e) else repr(e)
if child == [0]:
    print("child", outcome, flush=True)
    os._exit(0)
deadline = time.time() + 60
while not os.waitpid(child[0], os.WNOHANG)[0]:
    if time.time() > deadline:
        os.kill(child[0], signal.SIGKILL)
        print("child hung")
        break
    time.sleep(0.02)
print("parent", outcome)
"""
    )
    assert_clean_exit(proc, "parent same")
    assert "child refused" in proc.stdout or "child same" in proc.stdout, proc.stdout


def test_second_orders_kept_buffers_never_serve_a_call_of_another_width():
    # Second order keeps its buffers between calls: an hvp's (one lane) must
    # not serve a later Hessian's (16 lanes), which would write past them. In
    # a subprocess, so that such a write is a failing exit status here, not a
    # crash of the suite: the Hessians after hvps equal a fresh graph's.
    proc = run_child(
        """
import numpy as np, arenagrad as ag
def build():
    xs = [ag.Value(0.3 * i - 0.5, requires_grad=False) for i in range(3)]
    w = [ag.Value(0.2 * i + 0.1) for i in range(20)]
    h = [ag.sum([(x * wi).tanh() for x, wi in zip(xs, w[j : j + 3])]) for j in range(17)]
    return ag.compile(ag.logsumexp(h), inputs=xs)
g = build()
v = np.random.default_rng(4).normal(size=22)  # one per leaf: 3 inputs, 19 weights read
X = np.random.default_rng(3).normal(size=(50, 3))
for _ in range(3):
    g.hvp(v)
    g.hvp(v, X)
    assert g.hessian().tobytes() == build().hessian().tobytes()
    assert g.hessian(X).tobytes() == build().hessian(X).tobytes()
print("done")
"""
    )
    assert_clean_exit(proc, "done")
