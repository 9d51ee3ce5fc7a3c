// Compiled replay: a recorded graph flattened into structure-of-arrays in
// topological order, so that forward and backward are two tight loops over
// plain arrays with no Python and no pointer chasing.
//
// Values, and gradients from zeroed .grad, are bit-identical to the eager
// engine: the same op structs compute them, in the same order.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "compile.hpp"

#include "batch.hpp"

#include "gil.hpp"
#include "graph.hpp"
#include "value.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace ag {

// Replays longer than this release the GIL (other Python threads run meanwhile).
static constexpr size_t GIL_RELEASE_NODES = 20000;

// Runs f (which must not throw), without the GIL if the graph is long enough
// to be worth it. Not py::gil_scoped_release, which takes the GIL back in a
// destructor: at interpreter exit, where CPython ends a daemon thread there
// (see take_gil_back), that terminates the whole process.
template <class F> static void replay(size_t nodes, F f) {
  if (nodes <= GIL_RELEASE_NODES) {
    f();
    return;
  }
  PyThreadState* ts = PyEval_SaveThread();
  f();
  take_gil_back(ts);
}

std::string Compiled::repr() const {
  return "CompiledGraph(outputs=" + std::to_string(out_nodes.size()) + ", nodes=" + std::to_string(nnodes) +
         ", leaves=" + std::to_string(nleaves) + (batch ? ", inputs=" + std::to_string(input_nodes.size()) : "") +
         ")";
}

// Every live compiled graph, for the invariant checker (check.cpp). Never
// destroyed: no static destructor may run at exit under a replaying thread.
static std::vector<const Compiled*>& live_graphs = *new std::vector<const Compiled*>;

std::vector<Node*> compiled_refs() {
  std::vector<Node*> r;
  for (const Compiled* c : live_graphs) {
    r.insert(r.end(), c->leaf_nodes.begin(), c->leaf_nodes.end());
    r.insert(r.end(), c->out_nodes.begin(), c->out_nodes.end());
    r.insert(r.end(), c->watch_nodes.begin(), c->watch_nodes.end());
    r.insert(r.end(), c->input_nodes.begin(), c->input_nodes.end());
  }
  return r;
}

static Node* node_arg(py::handle h, const std::string& what) {
  if (!is_value(h.ptr())) throw py::type_error(what + " must be a Value, not '" + Py_TYPE(h.ptr())->tp_name + "'");
  return node_of(h.ptr());
}

static double number_of(py::handle h, const std::string& what) {
  double d;
  if (!number_arg(h.ptr(), what.c_str(), &d)) throw py::error_already_set();
  return d;
}

// A list or tuple copy of a sequence argument (not a string), holding its items.
static py::tuple sequence_arg(py::handle h, const std::string& what) {
  if (PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()) || !PySequence_Check(h.ptr()))
    throw py::type_error(what + " must be a sequence, not '" + Py_TYPE(h.ptr())->tp_name + "'");
  PyObject* t = PySequence_Tuple(h.ptr());
  if (!t) throw py::error_already_set();
  return py::reinterpret_steal<py::tuple>(t);
}

Compiled::Compiled(py::object outputs, py::object watch, py::object inputs) {
  std::vector<Node*> roots;
  py::tuple outs;  // holds the outputs (a generator's Values have no other owner)
  if (is_value(outputs.ptr())) {
    roots.push_back(node_of(outputs.ptr()));
    is_single = true;
  } else {
    if (!py::isinstance<py::iterable>(outputs) || py::isinstance<py::str>(outputs))
      throw py::type_error("compile() takes a Value or a list of Values, not '" +
                           std::string(Py_TYPE(outputs.ptr())->tp_name) + "'");
    outs = py::tuple(outputs);
    for (py::handle h : outs) roots.push_back(node_arg(h, "compile(): each output"));
    if (roots.empty()) throw py::value_error("compile(): expected at least one output, got an empty list");
  }

  // Collect the watched Values before traversing: iterating a Python
  // iterable runs Python code, which may itself traverse the graph. The
  // tuple keeps them alive until they are referenced below.
  py::tuple watched;
  if (!watch.is_none()) {
    if (!py::isinstance<py::iterable>(watch) || py::isinstance<py::str>(watch))
      throw py::type_error("compile(): watch must be an iterable of Values, not '" +
                           std::string(Py_TYPE(watch.ptr())->tp_name) + "'");
    watched = py::tuple(watch);
    for (py::handle h : watched) watch_nodes.push_back(node_arg(h, "compile(): each watched value"));
  }
  // The inputs of a batched replay: leaves, each listed once.
  py::tuple input_list;
  std::vector<Node*> ins;
  if (!inputs.is_none()) {
    if (!py::isinstance<py::iterable>(inputs) || py::isinstance<py::str>(inputs) || is_value(inputs.ptr()))
      throw py::type_error("compile(): inputs must be a list of leaf Values, not '" +
                           std::string(Py_TYPE(inputs.ptr())->tp_name) + "'");
    input_list = py::tuple(inputs);
    for (size_t i = 0; i < input_list.size(); ++i) {
      std::string what = "compile(): inputs[" + std::to_string(i) + "]";
      Node* n = node_arg(input_list[i], what);
      if (n->op != LEAF) throw py::value_error(what + " is not a leaf; only leaves can vary by row");
      if (std::find(ins.begin(), ins.end(), n) != ins.end()) throw py::value_error(what + " is listed twice");
      ins.push_back(n);
    }
  }

  // The same traversal as eager backward, over every reachable node: the
  // emission order is the backward sweep order, its reverse a valid
  // forward order. Leaves go first, in order of appearance.
  std::vector<Node*> order;
  std::vector<bool> in_graph;
  if (in_traversal())
    throw std::runtime_error("compile() cannot run inside a Python _backward: a backward is running");
  if (!reserve_traversal()) throw std::bad_alloc();
  {
    Traversing busy;
    std::vector<Node*> emitted;
    emitted.reserve(pool::live());
    auto all = [](Node*) { return true; };
    count_consumers(roots.data(), roots.size(), all, [](Node*) {});
    // Watched Values must be in the graph: reached by this traversal.
    uint32_t e = current_epoch();
    for (size_t i = 0; i < watch_nodes.size(); ++i)
      if (watch_nodes[i]->stamp != e)
        throw py::value_error("compile(): watch[" + std::to_string(i) + "] is not part of the graph of the outputs");
    // An input the outputs do not read is allowed (its column is ignored).
    for (size_t i = 0; i < ins.size(); ++i) in_graph.push_back(ins[i]->stamp == e);
    consumers_first(roots.data(), roots.size(), all, [&](Node* n) { emitted.push_back(n); });
    for (size_t i = emitted.size(); i-- > 0;)
      if (emitted[i]->op == LEAF) order.push_back(emitted[i]);
    nleaves = order.size();
    for (size_t i = emitted.size(); i-- > 0;)
      if (emitted[i]->op != LEAF) order.push_back(emitted[i]);
  }
  if (order.size() >= NONE) throw py::value_error("compile(): graph too large (more than 2**32 - 2 nodes)");

  for (Node* n : order)
    if (n->op == CUSTOM)
      throw py::type_error(
          "compile(): the graph has a Value built with a Python _backward (Value(data, children, op)); "
          "replay runs only arenagrad's own ops");
  size_t N = order.size();
  for (size_t i = 0; i < N; ++i) order[i]->index = static_cast<uint32_t>(i);
  op.resize(N);
  flags.resize(N);
  a.assign(N, NONE);
  b.assign(N, NONE);
  aux.resize(N);
  val.resize(N);
  grad.assign(N, 0.0);
  for (size_t i = 0; i < N; ++i) {
    Node* n = order[i];
    op[i] = n->op;
    flags[i] = n->flags;
    aux[i] = n->aux;
    val[i] = n->data;
    if (n->op == LEAF) {
      continue;
    } else if (is_nary(n->op)) {
      const uint32_t nn = nary_shape(n).nodes;
      a[i] = static_cast<uint32_t>(args.size());
      b[i] = n->nin;
      for (uint32_t s = 0; s < n->nin; ++s) {
        if (s < nn) {
          args.push_back(n->args[s].node->index);
          argnum.push_back(0.0);
        } else {
          args.push_back(NONE);  // a softmax's outputs: set below
          argnum.push_back(n->op == SOFTMAX && s >= 2 * nn ? 0.0 : n->args[s].num);
        }
      }
    } else {
      if (n->op == SOFTMAX_OUT && !softmax_output_matches(n))
        throw py::value_error("compile(): a softmax output that does not match its softmax node");
      if (n->in[0]) a[i] = n->in[0]->index;
      if (n->in[1]) b[i] = n->in[1]->index;
    }
  }
  // A softmax entry's slots [n, 3n) are its outputs' entries (twice: their
  // values, then their gradients, as the node's are y and the outputs): its
  // forward writes them, its backward reads them. An output the graph does
  // not reach gets an entry after the nodes', which nothing sweeps.
  nnodes = N;
  auto give_output = [&](uint32_t h, uint32_t i, uint32_t e) {
    const uint32_t n = b[h] / 3;
    if (args[a[h] + n + i] != NONE) throw py::value_error("compile(): two outputs for one slot of a softmax node");
    args[a[h] + n + i] = args[a[h] + 2 * n + i] = e;
  };
  for (size_t k = nleaves; k < N; ++k)
    if (op[k] == SOFTMAX_OUT) give_output(b[k], static_cast<uint32_t>(aux[k]), static_cast<uint32_t>(k));
  for (size_t h = nleaves; h < N; ++h) {
    if (op[h] != SOFTMAX) continue;
    const uint32_t n = b[h] / 3;
    for (uint32_t i = 0; i < n; ++i) {
      if (args[a[h] + n + i] != NONE) continue;
      give_output(static_cast<uint32_t>(h), i, static_cast<uint32_t>(op.size()));
      op.push_back(SOFTMAX_OUT);
      flags.push_back(0);
      a.push_back(args[a[h] + i]);
      b.push_back(static_cast<uint32_t>(h));
      aux.push_back(i);
      val.push_back(argnum[a[h] + n + i]);
      grad.push_back(0.0);
    }
  }
  if (op.size() >= NONE) throw py::value_error("compile(): graph too large (more than 2**32 - 2 nodes)");
  for (Node* r : roots) out_index.push_back(r->index);
  for (Node* w : watch_nodes) watch_index.push_back(w->index);
  for (size_t k = nleaves; k < size(); ++k)
    if (op[k] == SOFTMAX) aux[k] = 0.0;
  auto want = [&](uint32_t o) {
    if (op[o] == SOFTMAX) aux[o] = 1.0;
  };
  for (size_t k = nleaves; k < size(); ++k)
    if (op[k] != SOFTMAX_OUT) for_each_operand(k, want);
  for (uint32_t k : out_index) want(k);
  for (uint32_t k : watch_index) want(k);
  for (size_t k = nleaves; k < size(); ++k)
    if (op[k] == SOFTMAX && !wants_value(k)) val[k] = 0.0;  // never computed, never read: kept finite for anomaly checks
  // Kept values as forward would keep them from val, which backward reads
  // until a forward runs.
  std::vector<uint32_t> keep_at(size(), NONE);  // entry k's kept value is kept[keep_at[k]]
  size_t nkept = 0;
  for (size_t k = nleaves; k < size(); ++k)
    if (keeps(op[k])) keep_at[k] = static_cast<uint32_t>(nkept++);
  kept.resize(nkept);
  for (size_t k = nleaves; k < size(); ++k)
    if (keep_at[k] != NONE) {
      double y = 0;
      with_op<void>(op[k], [&](auto t) {
        using S = typename decltype(t)::op;
        if constexpr (Keeps<S>::value) S::f(val[a[k]], aux[k], y, kept[keep_at[k]]);
      });
    }
  auto listed = [&](size_t k) {
    Entry e = entry(k);
    if (keep_at[k] != NONE) e.b = keep_at[k];
    return e;
  };
  for (size_t k = nleaves; k < size(); ++k)
    if (op[k] != SOFTMAX_OUT) eval_list.push_back(listed(k));
  for (size_t k = size(); k-- > nleaves;)
    if ((flags[k] & REQUIRES_GRAD) && own_reverse(op[k])) sweep_list.push_back(listed(k));
  fed.assign(nleaves, 0);
  for (size_t k = nleaves; k < size(); ++k)
    if (flags[k] & REQUIRES_GRAD)
      for_each_operand(k, [&](uint32_t i) {
        if (i < nleaves) fed[i] = 1;
      });
  for (uint32_t k : out_index)
    if (k < nleaves) fed[k] = 1;
  prev_leaves.resize(nleaves);
  if (!inputs.is_none()) {
    std::vector<uint32_t> entries;
    for (size_t i = 0; i < ins.size(); ++i) entries.push_back(in_graph[i] ? ins[i]->index : NONE);
    batch = plan_batch(*this, entries);
  }

  // Everything that allocates is done: from here on nothing can fail, so the
  // references taken below are always given back by the destructor.
  leaf_nodes.assign(order.begin(), order.begin() + nleaves);
  out_nodes = roots;
  live_graphs.push_back(this);
  for (Node* n : leaf_nodes) incref(n);
  for (Node* r : out_nodes) incref(r);
  for (Node* w : watch_nodes) incref(w);
  input_nodes = ins;
  for (Node* n : input_nodes) incref(n);
}

Compiled::~Compiled() {
  live_graphs.erase(std::find(live_graphs.begin(), live_graphs.end(), this));
  for (Node* n : leaf_nodes) decref(n);
  for (Node* n : out_nodes) decref(n);
  for (Node* n : watch_nodes) decref(n);
  for (Node* n : input_nodes) decref(n);
}

uint32_t Compiled::run_forward(double* v, Err& err, double* keep) const {
  if (keep) {
    for (const Entry& e : eval_list)
      if ((err = eval<true>(e, v, keep))) return e.k;
  } else {
    for (const Entry& e : eval_list)
      if ((err = eval(e, v))) return e.k;
  }
  return NONE;
}

void Compiled::sweep(double* g) const {
  const double* v = val.data();
  // Unlike eager backward, no requires-grad test per input: an entry that
  // does not require grad is never swept and, if a leaf, never written back,
  // so what it receives here is scratch.
  const double* keep = kept.data();
  for (const Entry& e : sweep_list) step<true>(e, v, g, [g](uint32_t i, double d) { g[i] += d; }, keep);
}

void Compiled::set_error_at(size_t k, Err err, const double* v) const {
  double x = 0, y = 0;
  bool binary = is_binary(op[k]);
  if (is_unary(op[k])) x = v[a[k]];
  if (binary) {
    x = lhs(k, v);
    y = rhs(k, v);
  }
  raise_op_error(op_name(op[k]), err, x, y, binary);
}

uint32_t Compiled::first_nonfinite(const double* v, uint32_t end) const {
  const size_t stop = std::min<size_t>(end, size());
  for (size_t k = nleaves; k < stop; ++k)
    if (!std::isfinite(v[k])) return static_cast<uint32_t>(k);
  return NONE;
}

// Entries run in index order, so the ones before a failing op are those
// computed: an inf there is what eager, checking each op as it is built,
// would have raised before reaching the op (((x * 1e308) * 10).log()).
uint32_t Compiled::first_failure(const double* v, uint32_t failed, Err& err, bool anomaly) const {
  const uint32_t bad = anomaly ? first_nonfinite(v, failed) : NONE;
  if (bad == NONE) return failed;
  err = OK;
  return bad;
}

py::object Compiled::forward(py::object rows) {
  BusyGuard busy_guard(busy);
  if (!rows.is_none()) {
    if (!batch)
      throw py::type_error("forward(): rows need a graph compiled with inputs=[...], the leaves that vary by row");
    return batch_forward(*this, rows);
  }
  std::copy(val.begin(), val.begin() + nleaves, prev_leaves.begin());
  for (size_t i = 0; i < nleaves; ++i) val[i] = leaf_nodes[i]->data;
  Err err = OK;
  uint32_t failed = NONE;
  replay(size(), [&] { failed = run_forward(val.data(), err, kept.data()); });
  failed = first_failure(val.data(), failed, err, anomaly_enabled);
  if (failed != NONE) {
    // The error is formatted before the values are undone.
    if (err) set_error_at(failed, err, val.data());
    else raise_anomaly(op_name(op[failed]), "forward", val[failed]);
    // A failed forward changes nothing: recompute the values of the last
    // good leaves (the same loop over the same inputs gives the same bits).
    // Only if that too fails (leaf data changed between building and
    // compiling) is there no consistent state to return to.
    std::copy(prev_leaves.begin(), prev_leaves.end(), val.begin());
    Err again = OK;
    uint32_t refailed = NONE;
    replay(size(), [&] { refailed = run_forward(val.data(), again, kept.data()); });
    stale = refailed != NONE;
    throw py::error_already_set();
  }
  stale = false;
  if (batch) batch->ready = false;  // backward() now means this forward's
  for (size_t i = 0; i < out_nodes.size(); ++i) out_nodes[i]->data = val[out_index[i]];
  for (size_t i = 0; i < watch_nodes.size(); ++i) watch_nodes[i]->data = val[watch_index[i]];
  if (is_single) return py::float_(val[out_index[0]]);
  py::list r;
  for (uint32_t i : out_index) r.append(val[i]);
  return r;
}

py::object Compiled::value_and_grad(py::object rows, py::object grad_outputs) {
  BusyGuard busy_guard(busy);
  if (!batch)
    throw py::type_error("value_and_grad(): needs a graph compiled with inputs=[...], the leaves that vary by row");
  return batch_value_and_grad(*this, rows, grad_outputs);
}

py::object Compiled::backward(py::object grad_outputs) {
  if (batch && batch->ready) {
    BusyGuard busy_guard(busy);
    return batch_backward(*this, grad_outputs);
  }
  std::vector<double> seeds(out_nodes.size(), 1.0);
  if (!grad_outputs.is_none()) {
    if (is_single && !PySequence_Check(grad_outputs.ptr())) {
      seeds[0] = number_of(grad_outputs, "backward(): grad_outputs");
    } else {
      py::tuple g = sequence_arg(grad_outputs, "backward(): grad_outputs");
      if (g.size() != seeds.size())
        throw py::value_error("backward(): got " + std::to_string(g.size()) + " output gradients for " +
                              std::to_string(seeds.size()) + " outputs");
      for (size_t i = 0; i < seeds.size(); ++i)
        seeds[i] = number_of(g[i], "backward(): grad_outputs[" + std::to_string(i) + "]");
    }
  }
  bool any = false;
  for (Node* n : out_nodes) any |= bool(n->flags & REQUIRES_GRAD);
  if (!any)
    throw std::runtime_error(
        "backward(): no output requires grad (they were built only from Values with "
        "requires_grad=False, or under ag.no_grad())");
  if (stale)
    throw std::runtime_error(
        "backward(): the last forward() failed and no earlier values could be restored; "
        "call forward() with data at which every op is defined first");
  BusyGuard busy_guard(busy);
  // Leaf gradients are summed from zero and added to the leaves' .grad at the
  // end, under the GIL: another thread's replay over the same leaves may run
  // meanwhile, and reading .grad first and writing it back would lose its
  // updates. From zeroed grads (the usual step) this is bit-identical to eager
  // backward; accumulating onto nonzero grads adds the sum in one rounding.
  std::fill(grad.begin(), grad.end(), 0.0);
  for (size_t i = 0; i < out_index.size(); ++i) {
    uint32_t k = out_index[i];
    if (out_index.size() > 1) grad[k] += seeds[i];  // an output listed twice gets both
    else grad[k] = seeds[i];
  }
  replay(size(), [&] { sweep(grad.data()); });
  for (size_t i = 0; i < nleaves; ++i)
    if (writes_back(i)) leaf_nodes[i]->grad += grad[i];
  if (anomaly_enabled) {
    // The first op in sweep order whose step gave an input a non-finite grad.
    for (size_t k = size(); k-- > nleaves;) {
      if (!(flags[k] & REQUIRES_GRAD) || !own_reverse(op[k])) continue;  // as eager's check
      uint32_t bad = NONE;
      for_each_operand(k, [&](uint32_t i) {
        if (bad == NONE && receives(i) && !std::isfinite(grad[i])) bad = i;
      });
      if (bad != NONE) {
        raise_anomaly(op_name(op[k]), "backward", grad[bad]);
        throw py::error_already_set();
      }
    }
  }
  return py::none();
}

py::list Compiled::leaves() const {
  py::list r;
  for (Node* n : leaf_nodes) {
    if (n->flags & NUMBER) continue;  // numbers folded into ops are not the user's leaves
    PyObject* w = wrap(n);
    if (!w) throw py::error_already_set();
    r.append(py::reinterpret_steal<py::object>(w));
  }
  return r;
}

void Compiled::set_data(py::object values, py::object array) {
  // values: a flat sequence of leaf Values, or a sequence of such sequences
  // (a batch of rows); array must have the same shape.
  std::vector<Node*> nodes;
  std::vector<py::ssize_t> shape;
  // where() names an item, built only for an error: an optimiser calls
  // set_data on every evaluation, and naming 100 items cost 15 us a call.
  auto leaf = [&](py::handle h, auto where) {
    Node* n = is_value(h.ptr()) ? node_of(h.ptr()) : node_arg(h, "set_data(): " + where());
    if (n->op != LEAF)
      throw py::value_error("set_data(): " + where() + " is not a leaf; replay recomputes it from the leaves");
    nodes.push_back(n);
  };
  // Tuples hold the items (and rows) until the data is written: a sequence
  // may make its items on the fly, and nothing else would keep them alive.
  py::tuple seq = sequence_arg(values, "set_data(): values");
  std::vector<py::tuple> rows;
  shape.push_back(static_cast<py::ssize_t>(seq.size()));
  bool nested = !seq.empty() && !is_value(seq[0].ptr());
  if (nested) {
    py::ssize_t width = -1;
    for (size_t r = 0; r < seq.size(); ++r) {
      std::string where = "values[" + std::to_string(r) + "]";
      if (is_value(seq[r].ptr()) || !PySequence_Check(seq[r].ptr()) || PyUnicode_Check(seq[r].ptr()))
        throw py::type_error("set_data(): values must be leaf Values or rows of them; " + where + " is '" +
                             Py_TYPE(seq[r].ptr())->tp_name + "'");
      rows.push_back(sequence_arg(seq[r], "set_data(): " + where));
      py::ssize_t w = static_cast<py::ssize_t>(rows.back().size());
      if (width >= 0 && w != width) throw py::value_error("set_data(): values is a ragged list of rows");
      width = w;
      for (size_t c = 0; c < rows.back().size(); ++c)
        leaf(rows.back()[c], [&] { return where + "[" + std::to_string(c) + "]"; });
    }
    shape.push_back(width);
  } else {
    for (size_t i = 0; i < seq.size(); ++i) leaf(seq[i], [&] { return "values[" + std::to_string(i) + "]"; });
  }
  py::array_t<double> arr = numbers_array(array, "set_data(): array");
  std::vector<py::ssize_t> got(arr.shape(), arr.shape() + arr.ndim());
  if (got != shape)
    throw py::value_error("set_data(): array has shape " + shape_text(got) + " but values have shape " +
                          shape_text(shape));
  const double* p = arr.data();
  for (size_t i = 0; i < nodes.size(); ++i) nodes[i]->data = p[i];
}

// The C++ object behind a CompiledGraph. An instance made by
// CompiledGraph.__new__ without __init__ has none: pybind11 would hand the
// method uninitialised memory.
static Compiled* made(py::handle self) {
  auto* inst = reinterpret_cast<py::detail::instance*>(self.ptr());
  auto v_h = inst->get_value_and_holder(py::detail::get_type_info(typeid(Compiled)));
  return v_h.inst && v_h.holder_constructed() ? v_h.value_ptr<Compiled>() : nullptr;
}

static Compiled& self_of(py::handle self) {
  Compiled* c = made(self);
  if (!c) throw py::type_error("CompiledGraph was created without __init__; use ag.compile(outputs)");
  return *c;
}

void bind_compile(py::module_& m) {
  py::class_<Compiled>(m, "CompiledGraph",
                       "A recorded graph flattened for replay: forward() re-reads the leaves' .data and\n"
                       "recomputes every value; backward() accumulates into the leaves' .grad.")
      .def(py::init<py::object, py::object, py::object>(), py::arg("outputs"), py::arg("watch") = py::none(),
           py::arg("inputs") = py::none())
      .def(
          "forward", [](py::handle self, py::object rows) { return self_of(self).forward(rows); },
          py::arg("rows") = py::none(),
          "Recompute from the leaves' current .data; returns the output value (a list for several outputs).\n"
          "With rows, an (N, len(inputs)) array, one replay per row with the inputs set to it: returns an\n"
          "(N,) array (N, outputs) for a list of outputs); the graph's Values are left as they are.")
      .def(
          "backward", [](py::handle self, py::object g) { return self_of(self).backward(g); },
          py::arg("grad_outputs") = py::none(),
          "Accumulate d(outputs)/d(leaf) into each leaf's .grad (seeded with 1.0 or grad_outputs).\n"
          "After forward(rows): shared leaves' .grad gets the sum over rows, and the (N, len(inputs)) array\n"
          "of input gradients is returned; grad_outputs, if given, has forward(rows)'s shape.")
      .def(
          "value_and_grad",
          [](py::handle self, py::object rows, py::object g) { return self_of(self).value_and_grad(rows, g); },
          py::arg("rows"), py::arg("grad_outputs") = py::none(),
          "forward(rows) and backward(grad_outputs) in one pass over the rows (JAX's value_and_grad):\n"
          "returns (forward's result, the (N, len(inputs)) input gradients) and adds the sum over rows\n"
          "into shared leaves' .grad; the same bits as the two calls, without computing each row twice,\n"
          "and the graph is left as they leave it (a backward() after it is these rows' again).")
      .def(
          "jvp", [](py::handle self, py::object t, py::object rows) { return self_of(self).jvp(t, rows); },
          py::arg("tangents"), py::arg("rows") = py::none(),
          "Forward mode at the leaves' current data: the outputs' derivatives along `tangents`\n"
          "(one per leaf, in leaves order); a float, or a list for several outputs. With rows (a graph\n"
          "compiled with inputs): one per row, an (N,) or (N, outputs) array; tangents may be (N, leaves).")
      .def(
          "hvp", [](py::handle self, py::object v, py::object rows) { return self_of(self).hvp(v, rows); },
          py::arg("v"), py::arg("rows") = py::none(),
          "The Hessian of the (one) output times v (one entry per leaf, in leaves order), by\n"
          "forward-over-reverse on the tape; an array. With rows: an (N, leaves) array, one per row;\n"
          "v may be (N, leaves). Leaves' .grad is left alone.")
      .def(
          "hessian", [](py::handle self, py::object rows) { return self_of(self).hessian(rows); },
          py::arg("rows") = py::none(),
          "The dense Hessian of the (one) output with respect to the leaves, in leaves order;\n"
          "with rows, an (N, leaves, leaves) array, one per row.")
      .def(
          "jacobian", [](py::handle self, py::object rows) { return self_of(self).jacobian(rows); },
          py::arg("rows") = py::none(),
          "The (outputs, leaves) Jacobian at the leaves' current data, or (N, outputs, leaves) per row;\n"
          ".grad is left alone.")
      .def_property_readonly(
          "inputs",
          [](py::handle self) {
            py::list r;
            for (Node* n : self_of(self).input_nodes) r.append(py::reinterpret_steal<py::object>(wrap(n)));
            return r;
          },
          "The leaves that vary by row in forward(rows), in column order (empty without inputs=).")
      .def_property_readonly(
          "leaves", [](py::handle self) { return self_of(self).leaves(); },
          "The leaf Values the graph reads, in a stable order (numbers folded into ops excluded).")
      .def(
          "set_data", [](py::handle self, py::object v, py::object a) { self_of(self).set_data(v, a); },
          py::arg("values"), py::arg("array"), "Set the .data of leaf Values from a numpy array of the same shape.")
      .def_property_readonly(
          "num_nodes", [](py::handle self) { return self_of(self).nnodes; }, "Number of nodes, leaves included.")
      .def_property_readonly(
          "num_leaves", [](py::handle self) { return self_of(self).nleaves; }, "Number of leaves.")
      .def("__repr__",
           [](py::handle self) {
             Compiled* c = made(self);
             return c ? c->repr() : std::string("CompiledGraph(<not initialised>)");
           })
      // Pickled as its outputs and watched Values (graphs, by Value's own
      // pickling) and compiled again on load: same leaves, same replay.
      .def(py::pickle(
          [](py::handle self) {
            Compiled& c = self_of(self);
            py::list outs, watch;
            for (Node* n : c.out_nodes) outs.append(py::reinterpret_steal<py::object>(wrap(n)));
            for (Node* n : c.watch_nodes) watch.append(py::reinterpret_steal<py::object>(wrap(n)));
            py::object o = c.is_single ? outs[0] : py::object(outs);
            py::list ins;
            for (Node* n : c.input_nodes) ins.append(py::reinterpret_steal<py::object>(wrap(n)));
            return py::make_tuple(o, watch.empty() ? py::object(py::none()) : py::object(watch),
                                  c.batch ? py::object(ins) : py::object(py::none()));
          },
          [](py::tuple t) {
            if (t.size() != 2 && t.size() != 3) throw py::value_error("cannot restore a CompiledGraph: malformed state");
            return new Compiled(t[0], t[1], t.size() == 3 ? py::object(t[2]) : py::object(py::none()));
          }));
}

}  // namespace ag
