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

#include "graph.hpp"
#include "value.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace ag {

static constexpr uint32_t NONE = 0xffffffffu;

// Replays longer than this release the GIL (other Python threads run meanwhile).
static constexpr size_t GIL_RELEASE_NODES = 20000;

struct Compiled {
  // Entries [0, nleaves) are leaves, the rest follow in topological order.
  std::vector<uint8_t> op, flags;
  std::vector<uint32_t> a, b;  // operand indices; n-ary: a = first arg, b = slot count
  std::vector<double> aux, val, grad;
  std::vector<uint32_t> args;   // n-ary operand indices (NONE for a number slot)
  std::vector<double> argnum;   // n-ary number slots
  std::vector<Node*> leaf_nodes;  // referenced: replay reads their data, writes their grad
  std::vector<Node*> out_nodes;   // referenced: forward writes their data
  std::vector<uint32_t> out_index;
  std::vector<Node*> watch_nodes;  // referenced: forward writes their data too
  std::vector<uint32_t> watch_index;
  std::vector<uint8_t> fed;         // leaf i receives a gradient (a swept consumer, or it is an output)
  std::vector<double> prev_leaves;  // the leaves' values before the running forward, to undo a failed one
  size_t nleaves = 0;
  bool stale = false;  // a failed forward could not be undone: backward refuses until one succeeds
  std::atomic<bool> busy{false};

  Compiled(py::object outputs, py::object watch);
  ~Compiled();
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;

  py::object forward();
  void backward(py::object grad_outputs);
  py::list leaves() const;
  void set_data(py::object values, py::object array);
  size_t size() const { return op.size(); }
  std::string repr() const {
    return "CompiledGraph(outputs=" + std::to_string(out_nodes.size()) + ", nodes=" + std::to_string(size()) +
           ", leaves=" + std::to_string(nleaves) + ")";
  }

 private:
  // Entry k's operands as its op struct reads them: a binary op's left and
  // right (the constant for a CONST side), an n-ary op's slots.
  double lhs(size_t k) const { return (flags[k] & CONST_A) ? aux[k] : val[a[k]]; }
  double rhs(size_t k) const { return (flags[k] & CONST_B) ? aux[k] : val[b[k]]; }
  // Entry k's n-ary operands: slots [0, nodes) index into val, the rest are
  // numbers in argnum (both start at a[k]; b[k] counts them).
  NaryShape shape(size_t k) const { return nary_shape(op[k], b[k], flags[k] & CONST_Y); }
  double slot(size_t k, NaryShape sh, size_t i) const {
    return i < sh.nodes ? val[args[a[k] + i]] : argnum[a[k] + i];
  }
  template <class F> void for_each_operand(size_t k, F f) const {  // f(entry) for each node operand
    if (is_nary(op[k])) {
      NaryShape sh = shape(k);
      for (uint32_t j = 0; j < sh.nodes; ++j) f(args[a[k] + j]);
    } else {
      if (a[k] != NONE) f(a[k]);
      if (b[k] != NONE) f(b[k]);
    }
  }

  // Returns the failing entry, or NONE. No Python calls: may run without the GIL.
  uint32_t run_forward(Err& err);
  void run_backward();
  // Runs f (which must not throw), without the GIL if the graph is long
  // enough to be worth it. Not py::gil_scoped_release: at interpreter exit,
  // taking the GIL back ends a daemon thread (pthread_exit), and doing that
  // inside a destructor terminates the whole process.
  template <class F> void replay(F f) {
    if (size() <= GIL_RELEASE_NODES) {
      f();
      return;
    }
    PyThreadState* ts = PyEval_SaveThread();
    f();
    PyEval_RestoreThread(ts);
  }
  // The entry with the first non-finite value, or NONE (detect_anomaly).
  uint32_t first_nonfinite() const;
  // Whether leaf i's gradient is written back: as eager backward decides,
  // by the leaf's requires_grad now, not when it was compiled.
  bool writes_back(size_t i) const { return fed[i] && (leaf_nodes[i]->flags & REQUIRES_GRAD); }
  bool receives(uint32_t i) const { return i < nleaves ? writes_back(i) : bool(flags[i] & REQUIRES_GRAD); }

 public:
  bool is_single = false;  // compiled from one Value (forward returns a float), not a list
};

// Every live compiled graph, for the invariant checker (check.cpp). Never
// destroyed: no static destructor may run at exit under a replaying thread.
static std::vector<const Compiled*>& live_graphs = *new std::vector<const Compiled*>;

std::vector<Node*> compiled_refs() {
  std::vector<Node*> r;
  for (const Compiled* c : live_graphs) {
    r.insert(r.end(), c->leaf_nodes.begin(), c->leaf_nodes.end());
    r.insert(r.end(), c->out_nodes.begin(), c->out_nodes.end());
    r.insert(r.end(), c->watch_nodes.begin(), c->watch_nodes.end());
  }
  return r;
}

// Marks the compiled graph busy for one call: two threads replaying the same
// graph at once would race on its arrays.
struct BusyGuard {
  std::atomic<bool>& flag;
  explicit BusyGuard(std::atomic<bool>& f) : flag(f) {
    if (flag.exchange(true))
      throw std::runtime_error(
          "this compiled graph is already running in another thread; compile one graph per thread");
  }
  ~BusyGuard() { flag.store(false); }
};

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

Compiled::Compiled(py::object outputs, py::object watch) {
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

  // The same traversal as eager backward, over every reachable node: the
  // emission order is the backward sweep order, its reverse a valid
  // forward order. Leaves go first, in order of appearance.
  std::vector<Node*> order;
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
      bool cy = n->flags & CONST_Y;
      uint32_t nn = cy ? n->nin / 2 : n->nin;
      a[i] = static_cast<uint32_t>(args.size());
      b[i] = n->nin;
      for (uint32_t s = 0; s < n->nin; ++s) {
        if (s < nn) {
          args.push_back(n->args[s].node->index);
          argnum.push_back(0.0);
        } else {
          args.push_back(NONE);
          argnum.push_back(n->args[s].num);
        }
      }
    } else {
      if (n->in[0]) a[i] = n->in[0]->index;
      if (n->in[1]) b[i] = n->in[1]->index;
    }
  }
  for (Node* r : roots) out_index.push_back(r->index);
  for (Node* w : watch_nodes) watch_index.push_back(w->index);
  fed.assign(nleaves, 0);
  for (size_t k = nleaves; k < N; ++k)
    if (flags[k] & REQUIRES_GRAD)
      for_each_operand(k, [&](uint32_t i) {
        if (i < nleaves) fed[i] = 1;
      });
  for (uint32_t k : out_index)
    if (k < nleaves) fed[k] = 1;
  prev_leaves.resize(nleaves);

  // Everything that allocates is done: from here on nothing can fail, so the
  // references taken below are always given back by the destructor.
  leaf_nodes.assign(order.begin(), order.begin() + nleaves);
  out_nodes = roots;
  live_graphs.push_back(this);
  for (Node* n : leaf_nodes) incref(n);
  for (Node* r : out_nodes) incref(r);
  for (Node* w : watch_nodes) incref(w);
}

Compiled::~Compiled() {
  live_graphs.erase(std::find(live_graphs.begin(), live_graphs.end(), this));
  for (Node* n : leaf_nodes) decref(n);
  for (Node* n : out_nodes) decref(n);
  for (Node* n : watch_nodes) decref(n);
}

uint32_t Compiled::run_forward(Err& err) {
  const size_t N = op.size();
  double* v = val.data();
  for (size_t k = nleaves; k < N; ++k) {
    Err e = with_op<Err>(op[k], [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (t.arity == UNARY) {
        return S::f(v[a[k]], aux[k], v[k]);
      } else if constexpr (t.arity == BINARY) {
        return S::f(lhs(k), rhs(k), v[k]);
      } else {
        NaryShape sh = shape(k);
        return S::f(sh.count, [&](size_t i) { return slot(k, sh, i); }, aux[k], v[k]);
      }
    });
    if (e) {
      err = e;
      return static_cast<uint32_t>(k);
    }
  }
  return NONE;
}

void Compiled::run_backward() {
  const size_t N = op.size();
  const double* v = val.data();
  double* g = grad.data();
  const uint8_t* fl = flags.data();
  // Unlike eager backward, no requires-grad test per input: an entry that
  // does not require grad is never swept and, if a leaf, never written back,
  // so what it receives here is scratch.
  for (size_t k = N; k-- > nleaves;) {
    if (!(fl[k] & REQUIRES_GRAD)) continue;
    const double gk = g[k];
    with_op<void>(op[k], [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (t.arity == UNARY) {
        g[a[k]] += gk * S::d(v[a[k]], v[k], aux[k]);
      } else if constexpr (t.arity == BINARY) {
        double dx, dy;
        S::d(lhs(k), rhs(k), v[k], dx, dy);
        if (a[k] != NONE) g[a[k]] += gk * dx;
        if (b[k] != NONE) g[b[k]] += gk * dy;
      } else {
        NaryShape sh = shape(k);
        const uint32_t* ix = args.data() + a[k];
        S::d(sh.count, [&](size_t i) { return slot(k, sh, i); }, v[k], gk, [&](size_t i, double d) {
          if (i < sh.nodes) g[ix[i]] += d;
        });
      }
    });
  }
}

uint32_t Compiled::first_nonfinite() const {
  for (size_t k = nleaves; k < size(); ++k)
    if (!std::isfinite(val[k])) return static_cast<uint32_t>(k);
  return NONE;
}

py::object Compiled::forward() {
  BusyGuard busy_guard(busy);
  std::copy(val.begin(), val.begin() + nleaves, prev_leaves.begin());
  for (size_t i = 0; i < nleaves; ++i) val[i] = leaf_nodes[i]->data;
  Err err = OK;
  uint32_t failed = NONE;
  replay([&] { failed = run_forward(err); });
  if (failed != NONE) {
    // Same exception as eager mode, formatted before the values are undone.
    uint32_t k = failed;
    double x = 0, y = 0;
    bool binary = is_binary(op[k]);
    if (is_unary(op[k])) x = val[a[k]];
    if (binary) {
      x = lhs(k);
      y = rhs(k);
    }
    raise_op_error(op_name(op[k]), err, x, y, binary);
  } else if (anomaly_enabled && (failed = first_nonfinite()) != NONE) {
    raise_anomaly(op_name(op[failed]), "forward", val[failed]);
  }
  if (failed != NONE) {
    // A failed forward changes nothing: recompute the values of the last
    // good leaves (the same loop over the same inputs gives the same bits).
    // Only if that too fails (leaf data changed between building and
    // compiling) is there no consistent state to return to.
    std::copy(prev_leaves.begin(), prev_leaves.end(), val.begin());
    Err again = OK;
    uint32_t refailed = NONE;
    replay([&] { refailed = run_forward(again); });
    stale = refailed != NONE;
    throw py::error_already_set();
  }
  stale = false;
  for (size_t i = 0; i < out_nodes.size(); ++i) out_nodes[i]->data = val[out_index[i]];
  for (size_t i = 0; i < watch_nodes.size(); ++i) watch_nodes[i]->data = val[watch_index[i]];
  if (is_single) return py::float_(val[out_index[0]]);
  py::list r;
  for (uint32_t i : out_index) r.append(val[i]);
  return r;
}

void Compiled::backward(py::object grad_outputs) {
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
  replay([&] { run_backward(); });
  for (size_t i = 0; i < nleaves; ++i)
    if (writes_back(i)) leaf_nodes[i]->grad += grad[i];
  if (anomaly_enabled) {
    // The first op in sweep order whose step gave an input a non-finite grad.
    for (size_t k = size(); k-- > nleaves;) {
      if (!(flags[k] & REQUIRES_GRAD)) continue;
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

// The array argument of set_data as float64, C order. Numbers only: numpy
// would turn None into NaN and '1.5' into 1.5 without a word.
static py::array_t<double> numbers_array(py::handle array) {
  py::module_ np = py::module_::import("numpy");
  py::array arr = np.attr("asarray")(array);
  char kind = arr.dtype().kind();
  if (kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b')
    return np.attr("ascontiguousarray")(arr, "dtype"_a = "float64").cast<py::array_t<double>>();
  if (kind != 'O')
    throw py::type_error("set_data(): array must hold real numbers, not dtype " +
                         py::str(arr.dtype()).cast<std::string>());
  py::array_t<double> out(std::vector<py::ssize_t>(arr.shape(), arr.shape() + arr.ndim()));
  py::list items = arr.attr("ravel")().attr("tolist")();  // holds the items while they convert
  double* p = out.mutable_data();
  for (size_t i = 0; i < items.size(); ++i)
    p[i] = number_of(items[i], "set_data(): array item " + std::to_string(i));
  return out;
}

void Compiled::set_data(py::object values, py::object array) {
  // values: a flat sequence of leaf Values, or a sequence of such sequences
  // (a batch of rows); array must have the same shape.
  std::vector<Node*> nodes;
  std::vector<py::ssize_t> shape;
  auto leaf = [&](py::handle h, const std::string& where) {
    Node* n = node_arg(h, "set_data(): " + where);
    if (n->op != LEAF)
      throw py::value_error("set_data(): " + where + " is not a leaf; replay recomputes it from the leaves");
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
        leaf(rows.back()[c], where + "[" + std::to_string(c) + "]");
    }
    shape.push_back(width);
  } else {
    for (size_t i = 0; i < seq.size(); ++i) leaf(seq[i], "values[" + std::to_string(i) + "]");
  }
  py::array_t<double> arr = numbers_array(array);
  std::vector<py::ssize_t> got(arr.shape(), arr.shape() + arr.ndim());
  if (got != shape) {
    auto fmt = [](const std::vector<py::ssize_t>& s) {
      std::string r = "(";
      for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
      return r + (s.size() == 1 ? ",)" : ")");
    };
    throw py::value_error("set_data(): array has shape " + fmt(got) + " but values have shape " + fmt(shape));
  }
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
      .def(py::init<py::object, py::object>(), py::arg("outputs"), py::arg("watch") = py::none())
      .def(
          "forward", [](py::handle self) { return self_of(self).forward(); },
          "Recompute from the leaves' current .data; returns the output value (a list for several outputs).")
      .def(
          "backward", [](py::handle self, py::object g) { self_of(self).backward(g); },
          py::arg("grad_outputs") = py::none(),
          "Accumulate d(outputs)/d(leaf) into each leaf's .grad (seeded with 1.0 or grad_outputs).")
      .def_property_readonly(
          "leaves", [](py::handle self) { return self_of(self).leaves(); },
          "The leaf Values the graph reads, in a stable order (numbers folded into ops excluded).")
      .def(
          "set_data", [](py::handle self, py::object v, py::object a) { self_of(self).set_data(v, a); },
          py::arg("values"), py::arg("array"), "Set the .data of leaf Values from a numpy array of the same shape.")
      .def_property_readonly(
          "num_nodes", [](py::handle self) { return self_of(self).size(); }, "Number of nodes, leaves included.")
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
            return py::make_tuple(o, watch.empty() ? py::object(py::none()) : py::object(watch));
          },
          [](py::tuple t) {
            if (t.size() != 2) throw py::value_error("cannot restore a CompiledGraph: malformed state");
            return new Compiled(t[0], t[1]);
          }));
}

}  // namespace ag
