// Compiled replay (compile.cpp): a recorded graph flattened into
// structure-of-arrays in topological order; batched replay over many input
// rows (batch.cpp) reads the same arrays.
#pragma once
#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "node.hpp"
#include "ops.hpp"

namespace ag {

static constexpr uint32_t NONE = 0xffffffffu;

// Marks a compiled graph busy for one call: two threads replaying the same
// graph at once would race on its arrays.
struct BusyGuard {
  std::atomic<bool>& flag;
  explicit BusyGuard(std::atomic<bool>& f) : flag(f) {
    if (flag.exchange(true))
      throw std::runtime_error(
          "this compiled graph is already running (in another thread, or in code it called, such as a signal "
          "handler); compile one graph per thread");
  }
  ~BusyGuard() { flag.store(false); }
};

struct Batch;  // batch.hpp
struct SecondCache;  // second.cpp
struct SecondCacheFree {
  void operator()(SecondCache* p) const;
};

struct Compiled {
  // Entries [0, nleaves) are leaves, the rest follow in topological order.
  std::vector<uint8_t> op, flags;
  std::vector<uint32_t> a, b;  // operand indices; n-ary: a = first arg, b = slot count
  std::vector<double> aux, val, grad;
  // n-ary slots: the entry a slot reads, or NONE for a number (in argnum).
  // A softmax entry's slots [n, 2n) and [2n, 3n) are both its outputs'
  // entries (their values, which its forward writes, and their gradients):
  // outputs the graph does not reach get an entry of their own after the
  // nodes' (see nnodes), so that every one has a place.
  std::vector<uint32_t> args;
  std::vector<double> argnum;
  size_t nnodes = 0;  // entries [0, nnodes) are the graph's nodes
  // What ops that keep a value for backward (ops.hpp, Keeps) kept in the last
  // forward, one double each: where an entry's is, its Entry in eval_list and
  // sweep_list says.
  std::vector<double> kept;
  // One entry as single-row replay reads it: entry k's op, flags, a and b side
  // by side. In eval_list and sweep_list, a unary op that keeps a value for
  // backward has where in kept in b, which a unary op does not otherwise
  // use. Read from one 16-byte record rather than from four arrays, the
  // 10,000-op graph's single-row backward took 0.90x the time, forward 0.98x
  // (paired runs).
  struct Entry {
    uint32_t k, a, b;
    uint8_t op, flags;
  };
  Entry entry(size_t k) const { return {uint32_t(k), a[k], b[k], op[k], flags[k]}; }
  // The entries forward computes, in order (not a softmax output: its value
  // is its softmax's to write), and those backward steps through, in sweep
  // order (those that require grad and pass gradients on). Lists rather than
  // tests per entry: on the 10,000-op graph's single-row replay, backward
  // 53 -> 44 us; forward about 1%.
  std::vector<Entry> eval_list, sweep_list;
  std::vector<Node*> leaf_nodes;  // referenced: replay reads their data, writes their grad
  std::vector<Node*> out_nodes;   // referenced: forward writes their data
  std::vector<uint32_t> out_index;
  std::vector<Node*> watch_nodes;  // referenced: forward writes their data too
  std::vector<uint32_t> watch_index;
  std::vector<Node*> input_nodes;  // referenced: the leaves that vary by row in a batched replay
  std::vector<uint8_t> fed;         // leaf i receives a gradient (a swept consumer, or it is an output)
  std::vector<double> prev_leaves;  // the leaves' values before the running forward, to undo a failed one
  size_t nleaves = 0;
  bool stale = false;  // a failed forward could not be undone: backward refuses until one succeeds
  bool is_single = false;  // compiled from one Value (forward returns a float), not a list
  std::atomic<bool> busy{false};
  std::unique_ptr<Batch> batch;  // the batched-replay plan, when compiled with inputs
  std::unique_ptr<SecondCache, SecondCacheFree> second_cache;  // second order's buffers, kept between calls

  Compiled(pybind11::object outputs, pybind11::object watch, pybind11::object inputs);
  ~Compiled();
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;

  pybind11::object forward(pybind11::object rows);
  pybind11::object value_and_grad(pybind11::object rows, pybind11::object grad_outputs);
  // Second order (second.cpp), at the leaves' current data, or per row of
  // `rows` for a graph compiled with inputs; nothing is written to .grad.
  // Tangents and results are indexed as leaves() lists them.
  pybind11::object jvp(pybind11::object tangents, pybind11::object rows);
  pybind11::object hvp(pybind11::object v, pybind11::object rows);
  pybind11::object hessian(pybind11::object rows);
  pybind11::object jacobian(pybind11::object rows);
  pybind11::object backward(pybind11::object grad_outputs);
  pybind11::list leaves() const;
  void set_data(pybind11::object values, pybind11::object array);
  size_t size() const { return op.size(); }
  std::string repr() const;
  // Whether a softmax entry's own value (its logsumexp) is read by anything:
  // an op besides its outputs, or as an output or watched Value (aux, which
  // its op does not use, says so). If not, replay skips computing it.
  bool wants_value(size_t k) const { return aux[k] != 0.0; }
  // Reads slot i of n-ary entry e from the values v.
  double slot(const Entry& e, size_t i, const double* v) const {
    uint32_t o = args[e.a + i];
    return o != NONE ? v[o] : argnum[e.a + i];
  }
  double slot(size_t k, size_t i, const double* v) const { return slot(entry(k), i, v); }

  // Entry k's operands as its op struct reads them: a binary op's left and
  // right (the constant for a CONST side), an n-ary op's slots, from values v.
  double lhs(const Entry& e, const double* v) const { return (e.flags & CONST_A) ? aux[e.k] : v[e.a]; }
  double rhs(const Entry& e, const double* v) const { return (e.flags & CONST_B) ? aux[e.k] : v[e.b]; }
  double lhs(size_t k, const double* v) const { return lhs(entry(k), v); }
  double rhs(size_t k, const double* v) const { return rhs(entry(k), v); }
  // Entry k's n-ary operands: slots [0, nodes) index into the values, the
  // rest are numbers in argnum (both start at a[k]; b[k] counts them).
  AG_ALWAYS_INLINE NaryShape shape(const Entry& e) const { return nary_shape(e.op, e.b, e.flags & CONST_Y); }
  AG_ALWAYS_INLINE NaryShape shape(size_t k) const { return shape(entry(k)); }
  template <class F> void for_each_operand(size_t k, F f) const {  // f(entry) for each node operand
    if (is_nary(op[k])) {
      NaryShape sh = shape(k);
      for (uint32_t j = 0; j < sh.nodes; ++j) f(args[a[k] + j]);
    } else {
      if (a[k] != NONE) f(a[k]);
      if (b[k] != NONE) f(b[k]);
    }
  }
  // Computes entry k into v[k] from the values v; what its op struct reports.
  // With Keep, an op that keeps a value for backward writes it into `keep`.
  template <bool Keep = false> Err eval(const Entry& e, double* v, double* keep = nullptr) const {
    const uint32_t k = e.k;
    return with_op<Err>(e.op, [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (t.arity == UNARY) {
        if constexpr (Keep && Keeps<S>::value) return S::f(v[e.a], aux[k], v[k], keep[e.b]);
        return S::f(v[e.a], aux[k], v[k]);
      } else if constexpr (t.arity == BINARY) {
        return S::f(lhs(e, v), rhs(e, v), v[k]);
      } else if constexpr (MultiOutput<S>::value) {
        const size_t n = shape(e).count;
        const uint32_t* ix = args.data() + e.a;
        return S::f(
            n, [&](size_t i) { return v[ix[i]]; }, [&](size_t i) -> double& { return v[ix[n + i]]; }, v[k],
            wants_value(k));
      } else {
        return S::f(shape(e).count, [&](size_t i) { return slot(e, i, v); }, aux[k], v[k]);
      }
    });
  }
  Err eval(size_t k, double* v) const { return eval(entry(k), v); }
  // Entry k's local derivatives times gk: add(entry, gk * d(entry k)/d(operand))
  // for each node operand, in the order eager backward adds them; with Keep,
  // the values forward kept (eval<true>) stand in for recomputing them.
  template <bool Keep = false, class Add>
  void local(const Entry& e, const double* v, double gk, Add add, const double* keep = nullptr) const {
    const uint32_t k = e.k;
    with_op<void>(e.op, [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (t.arity == UNARY) {
        if constexpr (Keep && Keeps<S>::value) return add(e.a, gk * S::d_kept(v[e.a], keep[e.b]));
        add(e.a, gk * S::d(v[e.a], v[k], aux[k]));
      } else if constexpr (t.arity == BINARY) {
        double dx, dy;
        S::d(lhs(e, v), rhs(e, v), v[k], dx, dy);
        if (e.a != NONE) add(e.a, gk * dx);
        if (e.b != NONE) add(e.b, gk * dy);
      } else {
        NaryShape sh = shape(e);
        const uint32_t* ix = args.data() + e.a;
        S::d(sh.count, [&](size_t i) { return slot(e, i, v); }, v[k], gk, [&](size_t i, double d) {
          if (i < sh.nodes) add(ix[i], d);
        });
      }
    });
  }
  // Entry k's local partial derivatives (forward mode and second order).
  template <class Add> void partials(size_t k, const double* v, Add add) const { local(entry(k), v, 1.0, add); }
  // Entry k's backward step with the gradients g, as eager backward takes it:
  // a softmax output passes nothing on, its softmax node reads the outputs'
  // gradients (ops.hpp, Softmax). Tested by op code before local()'s own
  // dispatch rather than in a second with_op: that measured 13% slower on the
  // 10,000-op graph's single-row backward.
  template <bool Keep = false, class Add>
  void step(const Entry& e, const double* v, const double* g, Add add, const double* keep = nullptr) const {
    if (e.op == SOFTMAX_OUT) return;
    if (e.op == SOFTMAX) {
      const size_t n = shape(e).count;
      const uint32_t* ix = args.data() + e.a;
      Softmax::reverse(
          n, [&](size_t i) { return v[ix[i]]; }, g[e.k],
          [&](size_t i) { return ix[2 * n + i] < nnodes ? g + ix[2 * n + i] : nullptr; },
          [&](size_t i, double d) { add(ix[i], d); });
      return;
    }
    local<Keep>(e, v, g[e.k], add, keep);
  }
  template <class Add> void step(size_t k, const double* v, const double* g, Add add) const {
    step(entry(k), v, g, add);
  }
  // Whether leaf i's gradient is written back: as eager backward decides,
  // by the leaf's requires_grad now, not when it was compiled.
  bool writes_back(size_t i) const { return fed[i] && (leaf_nodes[i]->flags & REQUIRES_GRAD); }
  bool receives(uint32_t i) const { return i < nleaves ? writes_back(i) : bool(flags[i] & REQUIRES_GRAD); }
  // Computes every entry into the values v (leaves set by the caller); returns
  // the failing entry, or NONE. No Python calls: may run without the GIL.
  uint32_t run_forward(double* v, Err& err, double* keep = nullptr) const;
  // The entry with the first non-finite value in v, among the entries before
  // `end` (every entry by default), or NONE (detect_anomaly).
  uint32_t first_nonfinite(const double* v, uint32_t end = NONE) const;
  // After run_forward into v reported `failed` (NONE: no op failed), the
  // failure eager would meet first going through the entries in order: under
  // detect_anomaly a non-finite value before the failing op (err is then OK),
  // else the op's error. NONE if nothing failed.
  uint32_t first_failure(const double* v, uint32_t failed, Err& err, bool anomaly) const;
  // The backward sweep into the gradients g (seeded by the caller), at the
  // values in val and what their forward kept.
  void sweep(double* g) const;
  // Sets the Python error eager raises for entry k's op failing with err on the values v.
  void set_error_at(size_t k, Err err, const double* v) const;
};

void bind_compile(pybind11::module_& m);

// Every node a live compiled graph holds a reference to, once per reference
// (for the invariant checker).
std::vector<Node*> compiled_refs();

}  // namespace ag
