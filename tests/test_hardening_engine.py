"""The engine cannot be crashed or corrupted from Python.

Each crash class runs in a child interpreter and is judged by its exit status
(a segfault or abort is a negative status, never a passing test):

1. Python code that runs while the engine reads a caller's container (an
   item's ``__float__``, a sequence's ``__iter__``/``__getitem__``) and drops
   the container's items;
2. exceptions raised while iterating pass through unchanged;
3. out of memory (``RLIMIT_AS``) is ``MemoryError`` with the graph unchanged,
   and releasing a graph allocates nothing;
4. interpreter exit while a daemon thread is inside a replay;
5. a ``CompiledGraph`` made by ``__new__`` without ``__init__``;

and in process:

6. a failed replay changes nothing;
7. replay follows eager semantics when a leaf's ``requires_grad`` changes
   after compiling;
8. bad arguments get Python errors naming the argument;
11. ``detect_anomaly`` names ``inf`` when a gradient is infinite.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import arenagrad as ag
import numpy as np
import pytest
from arenagrad import _core
from conftest import live

FUSED = ["sum", "mean", "logsumexp", "softmax", "log_softmax"]


def run_child(code: str, limits: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (after LIMIT's helpers if ``limits``);
    its exit status tells a crash apart."""
    source = (LIMIT if limits else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(proc: subprocess.CompletedProcess, expect_out: str = "") -> None:
    assert proc.returncode == 0, (
        f"exit status {proc.returncode}{' (killed by a signal)' if proc.returncode < 0 else ''}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    assert "terminate called" not in proc.stderr
    assert expect_out in proc.stdout, proc.stdout


# Sets RLIMIT_AS to what the process maps now plus `extra` bytes: the next
# large allocation fails wherever it is made.
LIMIT = """
import resource
def limit_memory(extra):
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, resource.RLIM_INFINITY))
def unlimit():
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
def under_the_cap(extra, call):
    # Runs call() with `extra` bytes left; prints whether it raised MemoryError.
    limit_memory(extra)
    try:
        call()
        print("no error")
    except MemoryError:
        print("MemoryError")
    finally:
        unlimit()
"""

# ------------------------------------------- 1. Python code inside a read


def test_items_converted_by_python_code_that_empties_the_list_stay_alive():
    # np.float32 subclass: its __float__ runs during the engine's read and
    # frees every Value the list held; new Values made right after would
    # adopt freed nodes if the engine had not kept its own references.
    proc = run_child(
        """
        import gc, numpy as np, arenagrad as ag
        class Clearing(np.float32):
            def __float__(self):
                items.clear(); gc.collect(); return 1.0
        for fn in ["sum", "mean", "logsumexp", "softmax", "log_softmax", "dot"]:
            items = [ag.Value(float(i)) for i in range(5)] + [Clearing(2.0)]
            r = ag.dot(items, [1.0] * 6) if fn == "dot" else getattr(ag, fn)(items)
            r = r[-1] if isinstance(r, list) else r
            decoys = [ag.Value(100.0 + i) for i in range(20)]
            ag._core._check_invariants()
            r.backward()
            ag._core._check_invariants()
            print(fn, r.data)
        print("done")
        """
    )
    assert_clean_exit(proc, "done")
    got = dict(line.split() for line in proc.stdout.splitlines()[:-1])
    xs = [0.0, 1.0, 2.0, 3.0, 4.0, 1.0]
    lse = math.log(sum(math.exp(x) for x in xs))
    assert float(got["sum"]) == pytest.approx(sum(xs), rel=1e-15)
    assert float(got["mean"]) == pytest.approx(sum(xs) / 6, rel=1e-15)
    assert float(got["logsumexp"]) == pytest.approx(lse, rel=1e-15)
    assert float(got["softmax"]) == pytest.approx(math.exp(1.0 - lse), rel=1e-14)
    assert float(got["log_softmax"]) == pytest.approx(1.0 - lse, rel=1e-14)
    assert float(got["dot"]) == pytest.approx(sum(xs), rel=1e-15)


def test_parameters_whose_attributes_free_the_list_stay_alive():
    # _core._gather / _scatter read a non-Value's attribute with Python code
    # that empties the caller's list and collects: the engine's own tuple
    # keeps every Value alive, and decoys made then do not take their nodes.
    proc = run_child(
        """
        import gc, numpy as np, arenagrad as ag
        class Clearing:
            grad = 0.0
            @property
            def data(self):
                params.clear(); gc.collect(); return 1.0
            @data.setter
            def data(self, v):
                params.clear(); gc.collect()
        params = [ag.Value(2.0), Clearing(), ag.Value(3.0)]
        got = ag._core._gather(params, "data")
        decoys = [ag.Value(-1.0) for _ in range(50)]
        params[:] = [ag.Value(2.0), Clearing(), ag.Value(3.0)]
        a, c = params[0], params[2]
        ag._core._scatter(params, "data", np.array([5.0, 6.0, 7.0]))
        decoys += [ag.Value(-2.0) for _ in range(50)]
        ag._core._check_invariants()
        print("done", got.tolist(), a.data, c.data)
        """
    )
    assert_clean_exit(proc, "done [2.0, 1.0, 3.0] 5.0 7.0")


def test_list_of_values_emptied_by_a_collection_inside_the_read():
    # An optimizer's list (Values only) is read in place; Python code can run
    # inside the read all the same (a collection during an allocation; the
    # first call's import of numpy's C API). A finalizer that empties the list
    # then must give RuntimeError, as a list changed during iteration does,
    # never a read past its end.
    proc = run_child(
        """
        import gc, numpy as np, arenagrad as ag
        params = [ag.Value(float(i)) for i in range(2000)]
        def empty(phase, info):
            if phase == "start" and params:
                params.clear()
        gc.callbacks.append(empty)
        gc.set_threshold(1)
        outcomes = []
        for call in (lambda: ag._core._gather(params, "data"), lambda: ag._core._scatter(params, "grad", 1.0)):
            params[:] = [ag.Value(float(i)) for i in range(2000)]
            try:
                r = call()
                outcomes.append("read" if r is None or len(r) == 2000 else "short")
            except RuntimeError as e:
                assert "changed size" in str(e), e
                outcomes.append("RuntimeError")
        gc.set_threshold(700)
        ag._core._check_invariants()
        print("done", outcomes[0])
        """
    )
    assert_clean_exit(proc, "done RuntimeError")


def test_arena_growth_that_fails_at_any_step_leaves_the_arena_usable():
    # Growing the arena reserves room in three vectors and maps a chunk; out
    # of memory at any of those steps is MemoryError, and the nodes already
    # carved stay usable (a reserve that succeeded before a later one failed
    # had moved its vector: the allocator must not keep reading the old one).
    proc = run_child(
        """
        import arenagrad as ag
        from arenagrad import _core
        def stats():
            s = ag.engine_stats()
            return s["live_nodes"], s["capacity_nodes"]
        keep = []
        for step in (3, 2, 1, 0, 3, 2):
            live, cap = stats()
            keep += [ag.Value(1.0) for _ in range(cap - live)]  # the arena is full
            _core._fail_next_grow(step)
            try:
                keep.append(ag.Value(2.0))
                print("no error at step", step)
            except MemoryError:
                pass
            assert stats()[1] == cap
            del keep[:300]  # frees in the first chunk and the last, then reuses them
            del keep[-300:]
            keep += [ag.Value(3.0) for _ in range(600)]
            _core._check_invariants()
            keep.append(ag.Value(4.0))  # a growth that succeeds
            assert stats()[1] > cap
        print("done", sum(v.data for v in keep[-600:-1]) == 3.0 * 599)
        """
    )
    assert_clean_exit(proc, "done True")
    assert "no error" not in proc.stdout


def test_sequence_whose_getitem_drops_its_items_stays_safe():
    proc = run_child(
        """
        import gc, arenagrad as ag
        class Dropping:
            def __init__(self, vs): self.vs = vs
            def __len__(self): return 3
            def __getitem__(self, i):
                if i >= 3: raise IndexError(i)
                v = self.vs[i]
                if i == 2: self.vs = None; gc.collect()
                return v
        for fn in ["sum", "mean", "logsumexp", "softmax"]:
            r = getattr(ag, fn)(Dropping([ag.Value(1.0), ag.Value(2.0), ag.Value(3.0)]))
            r = r[0] if isinstance(r, list) else r
            decoys = [ag.Value(-1.0) for _ in range(20)]
            ag._core._check_invariants()
            r.backward()
        a, b = ag.Value(1.0), ag.Value(2.0)
        cg = ag.compile(a * b)
        cg.set_data(Dropping([a, b, a]), [3.0, 4.0, 3.0])
        decoys = [ag.Value(-1.0) for _ in range(20)]
        print("done", cg.forward())
        """
    )
    assert_clean_exit(proc, "done 12.0")


# ------------------------------------------- 2. exceptions pass through


class Custom(Exception):
    pass


def failing_sequence(exc):
    class Failing:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise exc

    return Failing()


@pytest.mark.parametrize("fn", FUSED + ["dot"])
def test_domain_error_inside_a_generator_passes_through(fn):
    # live() collects garbage first: a collection during the test freed an
    # earlier test's nodes once (on Python 3.10), and read as fewer than before.
    before = live()
    xs = [1.0, -1.0]
    with pytest.raises(ValueError, match="math domain error"):
        if fn == "dot":
            ag.dot((ag.Value(x).log() for x in xs), [1.0, 1.0])
        else:
            getattr(ag, fn)(ag.Value(x).log() for x in xs)
    assert live() == before


@pytest.mark.parametrize("fn", FUSED)
@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError, OSError, Custom])
def test_exceptions_from_a_custom_sequence_pass_through(fn, exc):
    with pytest.raises(exc):
        getattr(ag, fn)(failing_sequence(exc("from the sequence")))


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_exceptions_from_dot_arguments_pass_through(exc):
    with pytest.raises(exc):
        ag.dot([ag.Value(1.0)], failing_sequence(exc("ys")))
    with pytest.raises(exc):
        ag.dot(failing_sequence(exc("xs")), [1.0])


def test_a_non_iterable_is_still_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match=r"sum\(\): values must be an iterable"):
        ag.sum(3.0)
    with pytest.raises(TypeError, match=r"dot\(\): ys must be an iterable"):
        ag.dot([ag.Value(1.0)], 2.0)


# ------------------------------------------------------- 3. out of memory


@pytest.mark.no_sanitizer
def test_backward_out_of_memory_is_memory_error_and_changes_nothing():
    proc = run_child(
        """
        import arenagrad as ag
        xs = [ag.Value(0.001 * i) for i in range(1000)]
        # A wide graph: backward's work stack must grow with it.
        terms = [(xs[i % 1000] * xs[(7 * i) % 1000]).tanh() for i in range(300_000)]
        out = ag.sum(terms)
        mid = terms[5]
        mid.grad = 42.0
        under_the_cap(1 << 20, out.backward)
        assert all(x.grad == 0.0 for x in xs), "a failed backward changed leaf grads"
        assert mid.grad == 42.0, "a failed backward changed an intermediate grad"
        out.backward()
        assert xs[3].grad != 0.0
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer  # numpy's allocation under an RLIMIT_AS cap hangs under ASan
def test_parameter_gather_out_of_memory_is_memory_error_and_changes_nothing():
    # optim's bulk reads and writes (_core._gather, _core._scatter) allocate
    # an array as large as the parameter list.
    proc = run_child(
        """
        import numpy as np, arenagrad as ag
        from arenagrad import optim
        ps = [ag.Value(float(i)) for i in range(200_000)]  # 1.6 MB arrays: more than the 1 MiB left
        for p in ps[:3]:
            p.grad = 1.0
        opt = optim.SGD(ps, lr=0.5, momentum=0.9)
        under_the_cap(1 << 20, opt.step)
        assert [p.data for p in ps[:3]] == [0.0, 1.0, 2.0], "a failed step changed the data"
        opt.step()
        assert [p.data for p in ps[:3]] == [-0.5, 0.5, 1.5]
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer
def test_releasing_a_wide_graph_under_a_memory_limit_does_not_allocate():
    proc = run_child(
        """
        import arenagrad as ag
        x = ag.Value(0.5)
        # Each term dies with the sum and has its own inputs to release: the
        # release work list holds many nodes at once.
        out = ag.sum([(x * (1e-6 * i)).exp().tanh() for i in range(400_000)])
        limit_memory(0)
        del out
        unlimit()
        assert ag.engine_stats()["live_nodes"] == 1
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "done")


@pytest.mark.no_sanitizer
@pytest.mark.parametrize("fn", FUSED + ["dot"])
def test_fused_op_on_huge_input_out_of_memory_is_memory_error(fn):
    proc = run_child(
        f"""
        import arenagrad as ag
        x = ag.Value(1.0)
        items = [x] * 3_000_000 + [1.0]  # not all Values: the general path
        before = ag.engine_stats()["live_nodes"]
        limit_memory(30 << 20)
        try:
            r = ag.dot(items, items) if "{fn}" == "dot" else ag.{fn}(items)
            print("no error")
        except MemoryError:
            print("MemoryError")
        unlimit()
        assert ag.engine_stats()["live_nodes"] == before
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer
def test_new_arena_chunk_out_of_memory_is_memory_error():
    proc = run_child(
        """
        import arenagrad as ag
        x = ag.Value(1.0)
        keep = []
        limit_memory(64 << 20)
        try:
            while True:
                keep.append(x * 2.0)
        except MemoryError:
            print("MemoryError")
        n = len(keep)
        del keep
        unlimit()
        assert n > 1000
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer
def test_softmax_running_out_of_memory_part_way_leaves_a_consistent_arena():
    """Softmaxes until memory runs out, wherever that falls (the hidden node, its
    slots, an output): MemoryError, and the outputs made so far unhooked and freed."""
    proc = run_child(
        """
        import arenagrad as ag
        xs = [ag.Value(0.01 * i) for i in range(50)]
        keep = []
        limit_memory(64 << 20)
        try:
            while True:
                keep.append(ag.softmax(xs))
        except MemoryError:
            print("MemoryError")
        unlimit()
        ag._core._check_invariants()
        n = len(keep)
        del keep[:-3]
        ag.sum([o for outs in keep for o in outs[:2]]).backward()
        assert n > 100 and xs[0].grad != 0.0
        del keep
        ag._core._check_invariants()
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer
def test_compile_out_of_memory_is_memory_error_and_leaks_no_reference():
    proc = run_child(
        """
        import arenagrad as ag
        xs = [ag.Value(0.001 * i) for i in range(100)]
        out = ag.sum([(xs[i % 100] * xs[(3 * i) % 100]).sin() for i in range(300_000)])
        limit_memory(2 << 20)
        try:
            ag.compile(out)
            print("no error")
        except MemoryError:
            print("MemoryError")
        unlimit()
        ag._core._check_invariants()
        cg = ag.compile(out)
        assert cg.forward() == out.data
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\ndone")


@pytest.mark.no_sanitizer
def test_unpickling_out_of_memory_is_memory_error_and_leaves_a_consistent_arena():
    # A pickled graph (a Value, or a compiled graph) is rebuilt node by node:
    # running out part way must leave no half-made node behind.
    proc = run_child(
        """
        import pickle, arenagrad as ag
        xs = [ag.Value(0.001 * i) for i in range(1000)]
        out = ag.sum([(xs[i % 1000] * xs[(7 * i) % 1000]).tanh() for i in range(100_000)])
        blobs = [pickle.dumps(out), pickle.dumps(ag.compile(out))]
        for extra in (1 << 16, 1 << 20, 8 << 20):
            for blob in blobs:
                under_the_cap(extra, lambda: pickle.loads(blob))
                ag._core._check_invariants()
        again = pickle.loads(blobs[0])
        assert again.data == out.data
        assert ag.compile(again).forward() == out.data
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\n" * 6 + "done")


@pytest.mark.no_sanitizer
def test_micrograd_style_custom_nodes_out_of_memory_is_memory_error():
    # Values made micrograd's way (Value(data, children, op) plus a Python
    # _backward) hold a Python closure per node: building and sweeping them
    # under a cap must raise MemoryError, not crash.
    proc = run_child(
        """
        import arenagrad as ag
        def cube(a):
            out = ag.Value(a.data ** 3, (a,), "cube")
            def _backward():
                a.grad += 3 * a.data ** 2 * out.grad
            out._backward = _backward
            return out
        xs = [ag.Value(0.001 * i) for i in range(100)]
        for extra in (1 << 12, 1 << 20, 8 << 20):
            under_the_cap(extra, lambda: ag.sum([cube(xs[i % 100]) for i in range(100_000)]).backward())
            ag._core._check_invariants()
        assert all(x.grad == 0.0 for x in xs), "a failed build or backward changed leaf grads"
        ag.sum([cube(x) for x in xs]).backward()
        assert xs[5].grad == 3 * xs[5].data ** 2
        print("done")
        """,
        limits=True,
    )
    assert_clean_exit(proc, "MemoryError\n" * 3 + "done")


# ------------------------------------------- 4. exit during a replay


SPIN = """
import threading, time
started = threading.Event()
def spin():
    started.set()
    while True:
        {call}
threading.Thread(target=spin, daemon=True).start()
started.wait()
time.sleep(0.3)
print("exiting")
"""


def exit_while_a_daemon_thread_runs(setup: str, call: str) -> subprocess.CompletedProcess:
    """Runs ``setup``, then ``call`` over and over on a daemon thread; the main
    thread exits 0.3 s after the thread starts, while it is inside a call."""
    return run_child(textwrap.dedent(setup) + SPIN.format(call=call))


@pytest.mark.no_sanitizer
@pytest.mark.parametrize("what", ["forward", "backward"])
def test_interpreter_exit_while_a_daemon_thread_replays(what):
    # The graph is long enough for replays to release the GIL; the main
    # thread exits while the daemon thread is inside one.
    setup = """
        import arenagrad as ag
        x = ag.Value(0.5)
        y = x
        for _ in range(200_000):
            y = (y * 1.0000001).tanh() + 0.1
        cg = ag.compile(y)
        """
    assert_clean_exit(exit_while_a_daemon_thread_runs(setup, f"cg.{what}()"), "exiting")


# --------------------------------------------------- 5. half-made objects


def test_compiled_graph_made_without_init_raises_type_error():
    proc = run_child(
        """
        import numpy as np, arenagrad as ag
        CG = ag.CompiledGraph
        c = CG.__new__(CG)
        rows = np.ones((2, 1))
        calls = [
            lambda: c.forward(), lambda: c.backward(), lambda: c.leaves,
            lambda: c.set_data([], []), lambda: c.num_nodes, lambda: c.num_leaves,
            lambda: c.forward(rows), lambda: c.inputs, lambda: c.value_and_grad(rows),
            lambda: c.hvp([1.0]), lambda: c.hessian(), lambda: c.jvp([1.0]), lambda: c.jacobian(),
        ]
        for call in calls:
            try:
                call()
                print("no error")
            except TypeError as e:
                assert "without __init__" in str(e), e
        print(repr(c))
        class Sub(CG):
            def __init__(self):
                pass
        try:
            Sub()
            print("no error")
        except TypeError:
            pass
        del c
        print("done")
        """
    )
    assert_clean_exit(proc, "done")
    assert "no error" not in proc.stdout
    assert "CompiledGraph(<not initialised>)" in proc.stdout


# ------------------------------------------- 6. a failed replay changes nothing


def test_failed_forward_leaves_values_and_next_backward_as_before():
    x = ag.Value(2.0)
    y = ag.Value(3.0)
    out = (x * y).log() + (x / y).sqrt()
    cg = ag.compile(out)
    x.data = 1.5
    good = cg.forward()
    cg.backward()
    g_good = (x.grad, y.grad)
    x.grad = y.grad = 0.0

    x.data = -1.0  # log and sqrt out of domain
    with pytest.raises(ValueError, match="math domain error"):
        cg.forward()
    assert out.data == good
    cg.backward()
    assert (x.grad, y.grad) == g_good  # the gradient at x = 1.5, not at a mix of points

    # An anomaly-detection failure is undone the same way.
    x.grad = y.grad = 0.0
    x.data, y.data = 1e308, 1e308
    with ag.detect_anomaly(), pytest.raises(FloatingPointError):
        cg.forward()
    cg.backward()
    assert (x.grad, y.grad) == g_good

    # Eager reference at the last good point, independent of replay.
    x2, y2 = ag.Value(1.5), ag.Value(3.0)
    ((x2 * y2).log() + (x2 / y2).sqrt()).backward()
    assert g_good == (x2.grad, y2.grad)


def test_failed_first_forward_with_no_good_point_makes_backward_refuse():
    x = ag.Value(2.0)
    out = x.log()
    x.data = -1.0  # changed between building and compiling
    cg = ag.compile(out)
    with pytest.raises(ValueError):
        cg.forward()
    with pytest.raises(RuntimeError, match="last forward"):
        cg.backward()
    assert x.grad == 0.0
    x.data = 4.0
    assert cg.forward() == math.log(4.0)
    cg.backward()
    assert x.grad == 0.25


# --------------------------------- 7. requires_grad changed after compiling


def grads_after(build, toggle, replay):
    a, b = ag.Value(0.7), ag.Value(-1.3, requires_grad=False)
    out = build(a, b)
    cg = ag.compile(out) if replay else None
    toggle(a, b)
    a.grad = b.grad = 0.0
    if replay:
        cg.forward()
        cg.backward()
    else:
        out.backward()
    return a.grad, b.grad


@pytest.mark.parametrize(
    "build",
    [lambda a, b: (a * b).tanh() + a, lambda a, b: ag.sum([a * b, b.exp(), a]), lambda a, b: ag.dot([a, b], [b, a])],
)
@pytest.mark.parametrize(
    "toggle",
    [
        lambda a, b: setattr(a, "requires_grad", False),
        lambda a, b: setattr(b, "requires_grad", True),
        lambda a, b: (setattr(a, "requires_grad", False), setattr(b, "requires_grad", True)),
    ],
)
def test_replay_follows_eager_when_requires_grad_changes_after_compile(build, toggle):
    eager = grads_after(build, toggle, replay=False)
    replay = grads_after(build, toggle, replay=True)
    assert replay == eager
    # and the toggles have an effect the test can see
    untoggled = grads_after(build, lambda a, b: None, replay=False)
    assert untoggled != eager


# ------------------------------------------------ 8. argument errors


@pytest.fixture
def single():
    x = ag.Value(2.0)
    return x, ag.compile(x * x)


@pytest.fixture
def double():
    x = ag.Value(2.0)
    return x, ag.compile([x * x, x + 1.0])


def test_backward_seed_errors_name_the_argument(single, double):
    _, cg = single
    with pytest.raises(TypeError, match="grad_outputs must be a sequence"):
        cg.backward("x")
    with pytest.raises(OverflowError, match="grad_outputs is too large"):
        cg.backward(10**400)
    with pytest.raises(TypeError, match=r"grad_outputs\[0\] must be a real number, not 'NoneType'"):
        cg.backward([None])
    _, cg2 = double
    with pytest.raises(TypeError, match=r"grad_outputs\[0\] must be a real number"):
        cg2.backward([None, 1.0])
    with pytest.raises(OverflowError, match=r"grad_outputs\[1\] is too large"):
        cg2.backward([1.0, -(10**400)])
    with pytest.raises(TypeError, match="grad_outputs must be a sequence"):
        cg2.backward(1.0)
    with pytest.raises(TypeError, match="grad_outputs must be a sequence"):
        cg2.backward(b"ab")


def test_valid_seeds_still_work(single, double):
    x, cg = single
    cg.backward(np.float32(0.5))
    assert x.grad == 2.0
    cg.backward((2,))
    assert x.grad == 2.0 + 8.0
    x2, cg2 = double
    cg2.backward(np.array([1.0, 2.0]))
    assert x2.grad == 4.0 + 2.0


def test_set_data_rejects_what_is_not_a_number(single):
    x, cg = single
    for bad, err in [
        ([None], TypeError),
        (np.array([None], dtype=object), TypeError),
        (np.array(["1.5"]), TypeError),
        ([1 + 2j], TypeError),
        ([10**400], OverflowError),
    ]:
        with pytest.raises(err, match="set_data"):
            cg.set_data([x], bad)
        assert x.data == 2.0
    with pytest.raises(TypeError, match="set_data"):
        cg.set_data([x], np.array([ag.Value(3.0)], dtype=object))  # data, not graph nodes
    cg.set_data([x], np.array([np.float32(3.0)], dtype=object))
    assert x.data == 3.0
    cg.set_data([x], [True])
    assert x.data == 1.0


def test_set_data_values_errors_name_the_argument(single):
    x, cg = single
    with pytest.raises(TypeError, match=r"values\[0\]\[0\] must be a Value"):
        cg.set_data([[1.0, 2.0]], np.zeros((1, 2)))
    with pytest.raises(TypeError, match=r"values must be leaf Values or rows of them; values\[0\] is 'float'"):
        cg.set_data([1.0, 2.0], np.zeros(2))
    with pytest.raises(TypeError, match="values must be a sequence"):
        cg.set_data(x, [1.0])
    with pytest.raises(TypeError, match=r"values\[1\] must be a Value"):
        cg.set_data([x, "y"], [1.0, 2.0])


def test_compile_argument_errors_name_the_argument():
    x = ag.Value(2.0)
    with pytest.raises(TypeError, match=r"compile\(\): watch must be an iterable of Values, not 'int'"):
        ag.compile(x * x, watch=3)
    with pytest.raises(TypeError, match=r"compile\(\): each output must be a Value, not 'float'"):
        ag.compile([1.0])


@pytest.mark.parametrize("setter", [_core.set_grad_enabled, _core.set_detect_anomaly, ag.set_grad_enabled])
@pytest.mark.parametrize("bad", [None, 0.5, "yes", 1])
def test_modes_are_bools(setter, bad):
    before = (ag.is_grad_enabled(), ag.is_anomaly_enabled())
    with pytest.raises(TypeError):
        setter(bad)
    assert (ag.is_grad_enabled(), ag.is_anomaly_enabled()) == before


# ------------------------------------------------ 11. anomaly names inf


def test_detect_anomaly_names_inf_in_backward_eager_and_replay():
    x = ag.Value(0.0)
    y = x.sqrt()  # d sqrt / dx at 0 is +inf
    with ag.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"sqrt produced inf in backward"):
            y.backward()
        cg = ag.compile(y)
        with pytest.raises(FloatingPointError, match=r"sqrt produced inf in backward"):
            cg.backward()
    z = ag.Value(0.0)
    w = -(z.sqrt())
    with ag.detect_anomaly(), pytest.raises(FloatingPointError, match=r"sqrt produced -inf in backward"):
        w.backward()
