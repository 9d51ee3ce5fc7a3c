// Batched replay: one compiled graph over N rows of inputs, a block of rows
// at a time, blocks shared out to a pool of threads.
//
// The contract (tests/test_batch.py): row i of forward(X) is bit-identical to
// eager with the inputs set to X[i], and so are the input gradients; a shared
// leaf's gradient is the sum of the rows' gradients, summed in an order fixed
// by the number of rows alone, so that any thread count gives the same bits.
// Each row runs the op table's own f and d, in the order scalar replay does.
#include "batch.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <mutex>
#include <string>
#include <type_traits>

#include "errors.hpp"
#include "gil.hpp"
#include "modes.hpp"
#include "threads.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace ag {

// Rows are summed in at most this many chunks (each a run of blocks), and the
// chunk sums then in chunk order: the order depends on the row count only.
static constexpr size_t MAX_CHUNKS = 64;
// Work (about lane-ops) the calling thread does between two looks at Ctrl-C: a few ms.
static constexpr double LOOK_WORK = 4e6;
// A block's rows share one pass over the graph, so a wider block spreads
// each entry's dispatch over more rows; a block's values stream through the
// cache once each way (its gradients are reused blocks that stay in L1: see
// plan_gradient_blocks), so a block may be larger than L2. Measured on the
// 10,000-op graph (141 kB of values a row), 1 thread, Xeon VM: 106 us/row at
// 16 rows (2.25 MiB), 100 at 32, 90 at 64, 76 at 128 (18 MiB), 77-102 at
// 256; with 2 threads 72, 72, 47, 39 and 52. The 1,000-op graph: 6.6 us/row
// at 128 rows, 8.9 at 256. The cap is scratch memory per worker.
static constexpr size_t BLOCK_BYTES = 9 << 21;  // 18 MiB

// Below this much work (about lane-ops: 15-30 us on one core) a job runs on
// the calling thread alone. Handing part of it to a pool thread costs that
// thread's wake-up and the wait for it, about 9 us on a 2-core VM whatever
// the job (a 100-row forward of one multiply: 0.4 us on one thread, 8.5 us on
// two), which a small job does not win back. Blocks and chunks do not depend
// on it: the results are the same bits.
static constexpr double SHARED_WORK = 32768;

// Below this much work a batch is not split into two blocks for two cores:
// a block's pass over the graph has a cost of its own, which with a core's
// wake-up (above) outweighs halving a job this small. Measured on the moons
// step's replay (100 rows, 814 lane-ops a row: 81k), 1 or 2 threads: 34 us
// as two blocks of 64 rows, 28 as one of 112.
static constexpr double SPLIT_WORK = 4 * SHARED_WORK;

// The workers a job of `items` items of `item_work` each can use: no more
// than the pool or the items, and one for a small job (SHARED_WORK).
static size_t workers_for(size_t items, double item_work) {
  if (double(items) * item_work < SHARED_WORK) return 1;
  return std::max<size_t>(1, std::min(threads::count(), items));
}

bool run_on_pool(size_t items, double item_work, size_t workers, const std::atomic<size_t>& failed,
                 const std::function<void(size_t, size_t)>& body) {
  workers = std::min(workers, workers_for(items, item_work));
  // The calling thread looks at Ctrl-C between its own items while the pool
  // threads work on: rounds that every thread finished before a look left
  // one idle whenever the other finished first (the 10,000-op batch's 1,000
  // rows were four rounds of two blocks; 0.988x the time without them in
  // paired runs on a quiet host).
  const size_t per_look = std::max<size_t>(1, size_t(LOOK_WORK / std::max(item_work, 1.0)));
  size_t since = 0;
  bool interrupted = false;
  PyThreadState* ts = PyEval_SaveThread();
  const bool whole = threads::run(0, items, workers, body, [&] {
    if (failed.load() != SIZE_MAX) return false;
    if (++since < per_look) return true;
    since = 0;
    take_gil_back(ts);
    interrupted = PyErr_CheckSignals() != 0;
    ts = PyEval_SaveThread();
    return !interrupted;
  });
  take_gil_back(ts);
  if (!whole && !interrupted) {
    PyErr_SetString(PyExc_RuntimeError,
                    "the process forked (in a signal handler) during this batch; the child's copy of the batch "
                    "is incomplete: run it again there");
    return false;
  }
  return !interrupted;
}

void raise_in_row(size_t row) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  PyObject* msg = value ? PyObject_Str(value) : nullptr;
  if (msg) {
    PyErr_Format(type, "%U (in row %zu of the batch)", msg, row);
    Py_DECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
  } else {
    PyErr_Restore(type, value, tb);
  }
  throw py::error_already_set();
}

// f(o) for each output entry o of a multi-output entry e (softmax) that is a
// node of the graph.
template <class F> static void for_each_output(const Compiled& c, uint32_t e, F f) {
  if (!with_op<bool>(c.op[e], [](auto t) { return MultiOutput<typename decltype(t)::op>::value; })) return;
  const size_t cnt = c.shape(e).count;
  const uint32_t* ix = c.args.data() + c.a[e];
  for (size_t i = 0; i < cnt; ++i)
    if (ix[2 * cnt + i] < c.nnodes) f(ix[2 * cnt + i]);
}

// Gradient lane blocks for backward, reused. An entry's gradient is live
// from its first contribution (in sweep order) to the step that reads it last
// (its own, or its softmax node's for a softmax output), after which backward
// zeroes the block for the next entry: the blocks in use at once are few
// where operands are near their consumers, so a block's gradients stay in L1
// while its values stream, and backward need not zero one block per entry
// first. Block 0 stays zero: the gradient of an entry nothing reaches.
// Inputs keep theirs to the end (they are the gradients backward returns).
static void plan_gradient_blocks(const Compiled& c, Batch& p) {
  const size_t N = c.size();
  p.gslot.assign(N, NONE);
  std::vector<uint32_t> free_blocks;
  uint32_t ngrad = 1;
  auto take = [&](uint32_t o) {
    if (o == NONE || o >= N || p.slot[o] == NONE || p.gslot[o] != NONE) return;
    if (free_blocks.empty()) {
      p.gslot[o] = ngrad++;
    } else {
      p.gslot[o] = free_blocks.back();
      free_blocks.pop_back();
    }
  };
  auto give = [&](uint32_t o) {
    if (o < N && p.gslot[o] != NONE) free_blocks.push_back(p.gslot[o]);
  };
  for (uint32_t k : c.out_index) take(k);
  for (size_t q = p.vary.size(); q-- > 0;) {
    uint32_t e = p.vary[q];
    if (!p.sweep[e] || !own_reverse(c.op[e])) continue;
    c.for_each_operand(e, take);
    give(e);
    for_each_output(c, e, give);
  }
  p.ngrad = ngrad;
}

std::unique_ptr<Batch> plan_batch(const Compiled& c, const std::vector<uint32_t>& inputs) {
  auto p = std::make_unique<Batch>();
  const size_t N = c.size();
  p->input_entry = inputs;
  p->slot.assign(N, NONE);
  p->kept_slot.assign(N, NONE);
  std::vector<uint8_t> varies(N, 0);
  for (uint32_t e : inputs)
    if (e != NONE) varies[e] = 1;
  uint32_t& nslots = p->nslots;
  for (size_t i = 0; i < c.nleaves; ++i)
    if (varies[i]) p->slot[i] = nslots++;
  for (size_t k = c.nleaves; k < N; ++k) {
    c.for_each_operand(k, [&](uint32_t o) { varies[k] |= varies[o]; });
    if (varies[k]) {
      p->slot[k] = nslots++;
      if (keeps(c.op[k])) p->kept_slot[k] = nslots++;
      p->vary.push_back(static_cast<uint32_t>(k));
      p->row_work += 1 + (is_nary(c.op[k]) ? c.b[k] : is_binary(c.op[k]) ? 2 : 1);
    } else {
      p->uniform.push_back(static_cast<uint32_t>(k));
    }
  }
  // Backward passes through what eager backward sweeps and through all that
  // varies, so that input gradients are there for inputs made with
  // requires_grad=False too (what eager would give them if they required it).
  p->sweep.assign(N, 0);
  // (A softmax output the graph does not reach has an entry only to hold
  // its value: it is never swept.)
  for (size_t k = c.nleaves; k < c.nnodes; ++k) p->sweep[k] = (c.flags[k] & REQUIRES_GRAD) || varies[k];
  // Uniform entries that receive gradients from rows (through a varying
  // consumer, or as an output) sum them per chunk.
  p->bound.assign(N, NONE);
  auto bind = [&](uint32_t o) {
    if (!varies[o] && p->bound[o] == NONE) p->bound[o] = static_cast<uint32_t>(p->nbound++);
  };
  for (uint32_t k : p->vary)
    if (p->sweep[k]) c.for_each_operand(k, bind);
  for (uint32_t k : c.out_index) bind(k);
  p->bcast_at.assign(N, NONE);
  for (uint32_t k : p->vary) {
    if (!is_nary(c.op[k])) continue;
    p->max_slots = std::max<size_t>(p->max_slots, c.b[k]);
    if (with_op<bool>(c.op[k], [](auto t) { return SrcOperands<typename decltype(t)::op>::value; })) continue;
    p->bcast_at[k] = static_cast<uint32_t>(p->nbcast);
    for (uint32_t i = 0; i < c.b[k]; ++i) {
      uint32_t o = c.args[c.a[k] + i];
      if (o == NONE || !varies[o]) ++p->nbcast;
    }
  }
  plan_gradient_blocks(c, *p);
  const size_t row_bytes = (size_t(nslots) + p->ngrad) * sizeof(double);
  size_t w = 128;
  while (w > 16 && w * row_bytes > BLOCK_BYTES) w /= 2;
  p->width = w;
  return p;
}

py::array_t<double> numbers_array(py::handle array, const std::string& what) {
  // The common case, a float64 array in C order of at least one dimension, is
  // what numpy would return as it is: taken without the calls into numpy
  // (1.5 us a call). (ascontiguousarray makes a 0-d array 1-d.)
  if (py::array_t<double, py::array::c_style>::check_(array) && py::reinterpret_borrow<py::array>(array).ndim() > 0)
    return py::reinterpret_borrow<py::array_t<double>>(array);
  py::module_ np = py::module_::import("numpy");
  py::array arr = np.attr("asarray")(array);
  char kind = arr.dtype().kind();
  if (kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b')
    return np.attr("ascontiguousarray")(arr, "dtype"_a = "float64").cast<py::array_t<double>>();
  if (kind != 'O')
    throw py::type_error(what + " must hold real numbers, not dtype " + py::str(arr.dtype()).cast<std::string>());
  py::array_t<double> out(std::vector<py::ssize_t>(arr.shape(), arr.shape() + arr.ndim()));
  py::list items = arr.attr("ravel")().attr("tolist")();  // holds the items while they convert
  double* p = out.mutable_data();
  for (size_t i = 0; i < items.size(); ++i) {
    std::string item = what + " item " + std::to_string(i);
    if (!number_arg(items[i].ptr(), item.c_str(), &p[i])) throw py::error_already_set();
  }
  return out;
}

std::string shape_text(const std::vector<py::ssize_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

namespace {

// The lane loops. Each is the op struct's f or d over rows, kept this plain
// so that the compiler vectorises it (the transcendentals too: vmath.hpp).
// Each is compiled for AVX-512, AVX2 and the x86-64 baseline, and the
// loader picks the best the CPU has (GCC's target_clones): the same source
// with no fused multiply-adds (-ffp-contract=off), so every version gives
// the scalar path's bits, only more rows per instruction.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(AG_NO_CLONES)
#define AG_LANES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AG_LANES
#endif

// Whether a unary op has a cheaper form (f_near) for the rows where near(x).
template <class S, class = void> struct HasNear : std::false_type {};
template <class S> struct HasNear<S, std::void_t<decltype(&S::near)>> : std::true_type {};

// f over the block; an op that keeps a value for its backward (Keeps:
// softplus's exp) keeps it in the lanes `kept`.
template <class S>
AG_LANES int unary_f(const double* __restrict x, double aux, double* __restrict y, double* __restrict kept, size_t n) {
  if constexpr (HasNear<S>::value) {  // f_near over the block, then f if some row was not near
    int bad = 0, far = 0;
    for (size_t r = 0; r < n; ++r) {
      if constexpr (Keeps<S>::value) bad |= S::f_near(x[r], aux, y[r], kept[r]);
      else bad |= S::f_near(x[r], aux, y[r]);
      far |= !S::near(x[r]);
    }
    if (!far) return bad;
  }
  int bad = 0;
  for (size_t r = 0; r < n; ++r) {
    if constexpr (Keeps<S>::value) bad |= S::f(x[r], aux, y[r], kept[r]);
    else bad |= S::f(x[r], aux, y[r]);
  }
  return bad;
}

// d over the block, from what forward kept where the op keeps something (no
// second exp for softplus: 0.94x the time of a 1,000-row batch of the
// 1,000-op graph, 0.97x of the 10,000-op one).
template <class S>
AG_LANES void unary_d(const double* __restrict x, const double* __restrict y, const double* __restrict kept, double aux,
                      const double* __restrict g, double* __restrict gx, size_t n) {
  if constexpr (Keeps<S>::value)
    for (size_t r = 0; r < n; ++r) gx[r] += g[r] * S::d_kept(x[r], kept[r]);
  else
    for (size_t r = 0; r < n; ++r) gx[r] += g[r] * S::d(x[r], y[r], aux);
}

template <class S> AG_LANES int binary_f(Src x, Src y, double* __restrict out, size_t n) {
  int bad = 0;
  if (x.p && y.p) {
    for (size_t r = 0; r < n; ++r) bad |= S::f(x.p[r], y.p[r], out[r]);
  } else if (x.p) {
    for (size_t r = 0; r < n; ++r) bad |= S::f(x.p[r], y.s, out[r]);
  } else {
    for (size_t r = 0; r < n; ++r) bad |= S::f(x.s, y.p[r], out[r]);
  }
  return bad;
}

template <class S>
AG_LANES void binary_d(Src x, Src y, const double* __restrict out, double* __restrict dx, double* __restrict dy, size_t n) {
  if (x.p && y.p) {
    for (size_t r = 0; r < n; ++r) S::d(x.p[r], y.p[r], out[r], dx[r], dy[r]);
  } else if (x.p) {
    for (size_t r = 0; r < n; ++r) S::d(x.p[r], y.s, out[r], dx[r], dy[r]);
  } else {
    for (size_t r = 0; r < n; ++r) S::d(x.s, y.p[r], out[r], dx[r], dy[r]);
  }
}

// binary_d with both operands' lanes varying, its partials added into their
// gradient lanes as they are made: per row the same operations, in the same
// order, as binary_d then add for x then add for y (gx and gy are the same
// lanes for x * x), with no lanes of partials between.
template <class S>
AG_LANES void binary_d_add(const double* __restrict x, const double* __restrict y, const double* __restrict out,
                           const double* __restrict g, double* gx, double* gy, size_t n) {
  if (gx == gy) {
    for (size_t r = 0; r < n; ++r) {
      double dx, dy;
      S::d(x[r], y[r], out[r], dx, dy);
      gx[r] += g[r] * dx;
      gx[r] += g[r] * dy;
    }
    return;
  }
  double* __restrict ga = gx;
  double* __restrict gb = gy;
  for (size_t r = 0; r < n; ++r) {
    double dx, dy;
    S::d(x[r], y[r], out[r], dx, dy);
    ga[r] += g[r] * dx;
    gb[r] += g[r] * dy;
  }
}

// Whether an n-ary op struct has a form over a block of rows (f_lanes, d_lanes).
template <class S, class = void> struct HasLanes : std::false_type {};
template <class S> struct HasLanes<S, std::void_t<decltype(S::lane_form)>> : std::true_type {};

template <class S, class X> AG_LANES void nary_f(size_t n, X x, double aux, double* y, size_t w) {
  S::f_lanes(n, x, aux, y, w);
}

template <class S, class X, class Acc>
AG_LANES void nary_d(size_t n, X x, const double* y, const double* g, double* t, size_t w, Acc acc) {
  S::d_lanes(n, x, y, g, t, w, acc);
}

// Whether an n-ary op's partials over a block are the lanes of its operands
// (d_products): Dot's are.
template <class S, class = void> struct ProductLanes : std::false_type {};
template <class S> struct ProductLanes<S, std::void_t<decltype(S::product_lanes)>> : std::true_type {};

template <class S, class X, class Prod> AG_LANES void nary_d_products(size_t n, X x, const double* g, Prod prod) {
  S::d_products(n, x, g, prod);
}

template <class S, class X, class G, class Acc>
AG_LANES void nary_reverse(size_t n, X x, const double* g, G gout, double* c, double* t, size_t w, Acc acc) {
  S::reverse_lanes(n, x, g, gout, c, t, w, acc);
}

template <class S, class X, class Out>
AG_LANES void nary_f_out(size_t n, X x, Out out, double* y, size_t w, bool value) {
  S::f_lanes(n, x, out, y, w, value);
}

// Sums over a block's rows in an order fixed by n alone, so that shared
// gradients have the same bits for every thread count: row r of each full
// group of eight goes into running sum r % 8 (the last n % 8 rows into the
// first), then the eight are added in a fixed tree (halves first, as a
// vector register splits). Eight, not four: each running sum is
// a chain of dependent adds, and four left the adder waiting (lane_sum was
// 30% of the moons step); eight fill one AVX-512 register or two AVX2 ones,
// with the same bits. The eight are held as two halves of four: as one
// 64-byte vector, GCC kept it on the stack in the AVX2 clone, every add a
// store and two reloads (the moons step's replay 90 -> 35 us on an AVX2
// EPYC). The tree is spelled in vector halves: written on scalars, GCC
// added it one element at a time (half of lane_sum's time).
typedef double V4 __attribute__((vector_size(32)));
typedef double V2 __attribute__((vector_size(16)));
template <class Row> AG_ALWAYS_INLINE double ordered_total(size_t n, Row row) {
  V4 lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};  // running sums 0-3 and 4-7
  size_t r = 0;
  for (; r + 8 <= n; r += 8) {
    V4 a = {row(r), row(r + 1), row(r + 2), row(r + 3)};
    V4 b = {row(r + 4), row(r + 5), row(r + 6), row(r + 7)};
    lo += a;
    hi += b;
  }
  double s0 = lo[0];
  for (; r < n; ++r) s0 += row(r);
  lo[0] = s0;
  V4 h = lo + hi;
  V2 q = __builtin_shufflevector(h, h, 0, 1) + __builtin_shufflevector(h, h, 2, 3);
  return q[0] + q[1];
}

// sum over rows of c[r].
AG_LANES double lane_total(const double* c, size_t n) {
  return ordered_total(n, [c](size_t r) { return c[r]; });
}

// sum over rows of g[r] * d[r].
AG_LANES double lane_sum(const double* g, const double* d, size_t n) {
  return ordered_total(n, [g, d](size_t r) { return g[r] * d[r]; });
}

// The first failure in a batch: its row, and what eager would raise for it.
struct Failure {
  size_t row = SIZE_MAX;
  uint32_t entry = NONE;
  Err err = OK;
  double x = 0, y = 0;          // the failing op's operands (op errors)
  const char* where = nullptr;  // "forward" or "backward" for an anomaly
  double bad = 0;               // the anomaly's non-finite value
};

// One batched forward or backward over N rows.
struct Run {
  const Compiled& c;
  Batch& p;
  const double* X;        // N x k rows
  size_t N, k;
  const double* uval;     // uniform entries' values
  double* Y = nullptr;    // forward: N x m outputs
  const double* seeds = nullptr;  // backward: N x m output gradients, or none for ones
  double* GX = nullptr;   // backward: N x k input gradients
  bool grad = false, anomaly = false;
  // Gradient lane blocks: reused (Batch::gslot), or one per varying entry
  // under detect_anomaly. Set by drive().
  bool reuse = true;
  const uint32_t* gslot = nullptr;
  size_t ngrad = 0;
  size_t W, nslots, nblocks, chunk_blocks, nchunks;
  std::vector<double> bcast;  // see fill_bcast
  std::mutex m;
  Failure fail;
  std::atomic<size_t> fail_row{SIZE_MAX};

  Run(const Compiled& c_, Batch& p_, const double* X_, size_t N_, size_t k_, const double* uval_)
      : c(c_), p(p_), X(X_), N(N_), k(k_), uval(uval_) {
    // At least two blocks where there are rows for them and work enough for
    // two cores (SPLIT_WORK), else as few as fit; W depends on N and the
    // graph alone, never on the thread count (sums over rows are taken block
    // by block).
    const size_t all = (N + 15) / 16 * 16, half = ((N + 1) / 2 + 15) / 16 * 16;
    W = std::min(p.width, std::max<size_t>(16, double(N) * p.row_work < SPLIT_WORK ? all : half));
    nslots = p.nslots;
    nblocks = (N + W - 1) / W;
    chunk_blocks = std::max<size_t>(1, (nblocks + MAX_CHUNKS - 1) / MAX_CHUNKS);
    nchunks = (nblocks + chunk_blocks - 1) / chunk_blocks;
  }

  double* lanes(double* base, uint32_t e) const { return base + size_t(p.slot[e]) * W; }
  // What entry e's forward keeps for its backward (Keeps), or null.
  double* kept_lanes(double* base, uint32_t e) const {
    return p.kept_slot[e] == NONE ? nullptr : base + size_t(p.kept_slot[e]) * W;
  }
  // Entry e's gradient lanes in lg: its reused block (block 0, zero, if
  // nothing reaches it), or with detect_anomaly, which reads them all after
  // backward, its own block as its values have.
  double* glanes(double* lg, uint32_t e) const {
    uint32_t g = gslot[e];
    return lg + size_t(g == NONE ? 0 : g) * W;
  }
  // Zeroes entry e's gradient lanes once they have been read for the last
  // time, for the entry that takes the block next.
  void clear(double* lg, uint32_t e, size_t n) const {
    if (gslot[e] != NONE) std::fill_n(lg + size_t(gslot[e]) * W, n, 0.0);
  }
  Src src(double* lv, uint32_t e) const {
    return p.slot[e] != NONE ? Src{lanes(lv, e), 0.0} : Src{nullptr, uval[e]};
  }
  Src lhs(double* lv, uint32_t e) const { return (c.flags[e] & CONST_A) ? Src{nullptr, c.aux[e]} : src(lv, c.a[e]); }
  Src rhs(double* lv, uint32_t e) const { return (c.flags[e] & CONST_B) ? Src{nullptr, c.aux[e]} : src(lv, c.b[e]); }
  // Pointers to n-ary entry e's slots' lanes: a varying operand's own; a
  // uniform one or a number broadcast once per run (bcast).
  void slot_lanes(double* lv, uint32_t e, const double** ptr) const {
    const uint32_t nin = c.b[e];
    const double* b = bcast.data() + size_t(p.bcast_at[e]) * W;
    for (uint32_t i = 0; i < nin; ++i) {
      uint32_t o = c.args[c.a[e] + i];
      if (o != NONE && p.slot[o] != NONE) {
        ptr[i] = lanes(lv, o);
      } else {
        ptr[i] = b;
        b += W;
      }
    }
  }

  // Src operands of n-ary entry e: a varying operand's lanes; a uniform
  // one's value or a number, as a scalar.
  void slot_srcs(double* lv, uint32_t e, Src* out) const {
    const uint32_t nin = c.b[e];
    for (uint32_t i = 0; i < nin; ++i) {
      uint32_t o = c.args[c.a[e] + i];
      out[i] = o == NONE ? Src{nullptr, c.argnum[c.a[e] + i]} : src(lv, o);
    }
  }

  // The broadcast lanes of every varying n-ary entry's uniform operands and numbers.
  void fill_bcast() {
    bcast.assign(p.nbcast * W, 0.0);
    for (uint32_t e : p.vary) {
      if (p.bcast_at[e] == NONE) continue;  // not n-ary, or takes Src operands
      double* b = bcast.data() + size_t(p.bcast_at[e]) * W;
      for (uint32_t i = 0; i < c.b[e]; ++i) {
        uint32_t o = c.args[c.a[e] + i];
        if (o != NONE && p.slot[o] != NONE) continue;
        std::fill(b, b + W, o != NONE ? uval[o] : c.argnum[c.a[e] + i]);
        b += W;
      }
    }
  }

  void record(const Failure& f) {
    std::lock_guard<std::mutex> lock(m);
    if (f.row < fail.row) {
      fail = f;
      fail_row.store(f.row);
    }
  }

  void record_anomaly(size_t row, uint32_t entry, const char* where, double bad) {
    Failure f;
    f.row = row;
    f.entry = entry;
    f.where = where;
    f.bad = bad;
    record(f);
  }

  // Computes rows [r0, r0 + n) into lv. Returns the first entry whose op
  // failed in some row (err set to what it reported), or NONE.
  uint32_t forward_block(size_t r0, size_t n, double* lv, const double** ptr, int& err) const {
    for (size_t i = 0; i < k; ++i) {
      uint32_t e = p.input_entry[i];
      if (e == NONE) continue;
      double* d = lanes(lv, e);
      for (size_t r = 0; r < n; ++r) d[r] = X[(r0 + r) * k + i];
    }
    for (uint32_t e : p.vary) {
      double* y = lanes(lv, e);
      err = with_op<int>(c.op[e], [&](auto t) -> int {
        using S = typename decltype(t)::op;
        if constexpr (t.arity == UNARY) {
          return unary_f<S>(lanes(lv, c.a[e]), c.aux[e], y, kept_lanes(lv, e), n);
        } else if constexpr (t.arity == BINARY) {
          return binary_f<S>(lhs(lv, e), rhs(lv, e), y, n);
        } else {
          static_assert(HasLanes<S>::value, "an n-ary op needs its lane form (f_lanes, d_lanes) for batched replay");
          const size_t cnt = c.shape(e).count;
          if constexpr (SrcOperands<S>::value) {
            Src* src = reinterpret_cast<Src*>(ptr);
            slot_srcs(lv, e, src);
            nary_f<S>(cnt, [src](size_t i) { return src[i]; }, c.aux[e], y, n);
          } else if constexpr (MultiOutput<S>::value) {
            slot_lanes(lv, e, ptr);
            // Its outputs' lanes are slots [cnt, 2 cnt): written here.
            auto out = [ptr, cnt](size_t i) { return const_cast<double*>(ptr[cnt + i]); };
            nary_f_out<S>(cnt, [ptr](size_t i) { return ptr[i]; }, out, y, n, c.wants_value(e));
          } else {
            slot_lanes(lv, e, ptr);
            nary_f<S>(cnt, [ptr](size_t i) { return ptr[i]; }, c.aux[e], y, n);
          }
          return 0;
        }
      });
      if (err) return e;
    }
    return NONE;
  }

  // An op failed in the block: run its rows one at a time to find the first
  // that fails, and where, with the operands eager would name. Under
  // detect_anomaly a row fails at its first non-finite value if that comes
  // before its failing op, or has no failing op (Compiled::first_failure).
  void locate_failure(size_t r0, size_t n, double* lv, const double** ptr) {
    for (size_t r = 0; r < n; ++r) {
      int err = 0;
      uint32_t e = forward_block(r0 + r, 1, lv, ptr, err);
      if (anomaly && lane_anomaly(r0 + r, 0, e, lv)) return;  // entries before e were computed
      if (e == NONE) continue;
      Failure f;
      f.row = r0 + r;
      f.entry = e;
      f.err = static_cast<Err>(err);
      if (is_unary(c.op[e])) f.x = lanes(lv, c.a[e])[0];
      if (is_binary(c.op[e])) {
        Src x = lhs(lv, e), y = rhs(lv, e);
        f.x = x.p ? x.p[0] : x.s;
        f.y = y.p ? y.p[0] : y.s;
      }
      record(f);
      return;
    }
  }

  // detect_anomaly: whether lane r (row `row`) has a non-finite value at an
  // entry before `end` (every entry by default), recording the first, in
  // forward order, as the row's failure.
  bool lane_anomaly(size_t row, size_t r, uint32_t end, double* lv) {
    for (uint32_t e : p.vary) {
      if (e == end) break;
      double y = lanes(lv, e)[r];
      if (std::isfinite(y)) continue;
      record_anomaly(row, e, "forward", y);
      return true;
    }
    return false;
  }

  // detect_anomaly: the first row of the block with a non-finite value, at
  // the first entry (in forward order) that made one.
  bool forward_anomaly(size_t r0, size_t n, double* lv) {
    for (size_t r = 0; r < n; ++r)
      if (lane_anomaly(r0 + r, r, NONE, lv)) return true;
    return false;
  }

  void backward_block(size_t r0, size_t n, double* lv, double* lg, double* tmp, const double** ptr,
                      double* sums) const {
    std::fill(lg, lg + ngrad * W, 0.0);
    const size_t m = c.out_index.size();
    for (size_t j = 0; j < m; ++j) {
      uint32_t e = c.out_index[j];
      auto seed = [&](size_t r) { return seeds ? seeds[(r0 + r) * m + j] : 1.0; };
      if (p.slot[e] == NONE) {
        double s = 0;
        for (size_t r = 0; r < n; ++r) s += seed(r);
        sums[p.bound[e]] += s;
      } else {
        double* g = glanes(lg, e);
        for (size_t r = 0; r < n; ++r) g[r] = m > 1 ? g[r] + seed(r) : seed(r);  // an output listed twice gets both
      }
    }
    // Adds rows' contributions g[r] * d[r] into operand o: its lanes, or the
    // chunk's sum for a uniform operand.
    auto add = [&](uint32_t o, const double* gk, const double* d) {
      if (o == NONE) return;
      if (p.slot[o] != NONE) {
        double* go = glanes(lg, o);
        for (size_t r = 0; r < n; ++r) go[r] += gk[r] * d[r];
      } else if (p.bound[o] != NONE) {
        sums[p.bound[o]] += lane_sum(gk, d, n);
      }
    };
    for (size_t q = p.vary.size(); q-- > 0;) {
      uint32_t e = p.vary[q];
      if (!p.sweep[e]) continue;
      const double* gk = glanes(lg, e);
      const double* y = lanes(lv, e);
      with_op<void>(c.op[e], [&](auto t) {
        using S = typename decltype(t)::op;
        if constexpr (FusedReverse<S>::value) {
          // its softmax node's step reads its gradient
        } else if constexpr (t.arity == UNARY) {
          unary_d<S>(lanes(lv, c.a[e]), y, kept_lanes(lv, e), c.aux[e], gk, glanes(lg, c.a[e]), n);
        } else if constexpr (t.arity == BINARY) {
          const Src x = lhs(lv, e), z = rhs(lv, e);
          if (x.p && z.p) {  // both vary (lanes), so neither is a number
            binary_d_add<S>(x.p, z.p, y, gk, glanes(lg, c.a[e]), glanes(lg, c.b[e]), n);
          } else {
            double* dx = tmp;
            double* dy = tmp + W;
            binary_d<S>(x, z, y, dx, dy, n);
            add((c.flags[e] & CONST_A) ? NONE : c.a[e], gk, dx);
            add((c.flags[e] & CONST_B) ? NONE : c.b[e], gk, dy);
          }
        } else {
          NaryShape sh = c.shape(e);
          const uint32_t* ix = c.args.data() + c.a[e];
          auto to = [&](size_t i, const double* d) {
            if (i >= sh.nodes) return;
            uint32_t o = ix[i];
            if (p.slot[o] != NONE) {
              double* go = glanes(lg, o);
              for (size_t r = 0; r < n; ++r) go[r] += d[r];
            } else if (p.bound[o] != NONE) {
              sums[p.bound[o]] += lane_total(d, n);
            }
          };
          if constexpr (ProductLanes<S>::value) {
            static_assert(SrcOperands<S>::value, "d_products passes the other factor's Src");
            Src* src = reinterpret_cast<Src*>(ptr);
            slot_srcs(lv, e, src);
            // to(i, gk * f) with the product made where it is added: the same
            // bits. Spelled out here (not add's or lane_sum's calls) so that
            // it is inlined into nary_d_products' clone: a layer's weights
            // make one call per weight per block, and the calls were 5% of
            // the moons step.
            auto prod = [&](size_t i, Src f) AG_ALWAYS_INLINE_LAMBDA {
              if (i >= sh.nodes) return;
              uint32_t o = ix[i];
              if (p.slot[o] != NONE) {
                double* go = glanes(lg, o);
                if (f.p)
                  for (size_t r = 0; r < n; ++r) go[r] += gk[r] * f.p[r];
                else
                  for (size_t r = 0; r < n; ++r) go[r] += gk[r] * f.s;
              } else if (p.bound[o] != NONE) {
                const double* d = f.p;
                const double s = f.s;
                sums[p.bound[o]] += d ? ordered_total(n, [gk, d](size_t r) { return gk[r] * d[r]; })
                                      : ordered_total(n, [gk, s](size_t r) { return gk[r] * s; });
              }
            };
            nary_d_products<S>(sh.count, [src](size_t i) { return src[i]; }, gk, prod);
          } else if constexpr (MultiOutput<S>::value) {
            slot_lanes(lv, e, ptr);
            const size_t cnt = sh.count;
            auto gout = [&](size_t i) -> const double* {
              return ix[2 * cnt + i] < c.nnodes ? glanes(lg, ix[2 * cnt + i]) : nullptr;
            };
            nary_reverse<S>(cnt, [ptr](size_t i) { return ptr[i]; }, gk, gout, tmp + W, tmp, n, to);
            if (reuse)  // its outputs' gradients are read for the last time
              for (size_t i = 0; i < cnt; ++i)
                if (ix[2 * cnt + i] < c.nnodes) clear(lg, ix[2 * cnt + i], n);
          } else {
            slot_lanes(lv, e, ptr);
            nary_d<S>(sh.count, [ptr](size_t i) { return ptr[i]; }, y, gk, tmp, n, to);
          }
        }
        if constexpr (!FusedReverse<S>::value)
          if (reuse) clear(lg, e, n);  // (a softmax output's gradient is read at its softmax node's step)
      });
    }
  }

  // detect_anomaly in backward: the first row with a non-finite gradient, at
  // the first step in sweep order that gave one to a varying operand.
  bool backward_anomaly(size_t r0, size_t n, double* lg) {
    for (size_t r = 0; r < n; ++r)
      for (size_t q = p.vary.size(); q-- > 0;) {
        uint32_t e = p.vary[q];
        if (!p.sweep[e] || !own_reverse(c.op[e])) continue;  // a step that passes nothing on is no culprit
        double bad = 0;
        bool found = false;
        c.for_each_operand(e, [&](uint32_t o) {
          if (!found && p.slot[o] != NONE && !std::isfinite(glanes(lg, o)[r])) {
            found = true;
            bad = glanes(lg, o)[r];
          }
        });
        if (!found) continue;
        record_anomaly(r0 + r, e, "backward", bad);
        return true;
      }
    return false;
  }

  // Chunk ci's blocks in order, on worker w's scratch.
  void chunk(size_t ci, size_t w) {
    double* lv = p.work[w].data();
    double* lg = lv + nslots * W;
    double* tmp = lg + ngrad * W;       // 2 W: a binary op's two derivatives
    static_assert(sizeof(const double*) == sizeof(double), "pointers are kept in the scratch of doubles");
    static_assert(sizeof(Src) == 2 * sizeof(double), "so are Src operands, in the same place");
    auto** ptr = reinterpret_cast<const double**>(tmp + 2 * W);  // 2 max_slots: an n-ary entry's operands
    double* sums = grad ? p.sums.data() + ci * p.nbound : nullptr;
    const size_t m = c.out_index.size();
    for (size_t b = ci * chunk_blocks; b < std::min(nblocks, (ci + 1) * chunk_blocks); ++b) {
      size_t r0 = b * W, n = std::min(W, N - r0);
      if (r0 > fail_row.load(std::memory_order_relaxed)) return;  // an earlier row failed
      int err = 0;
      if (forward_block(r0, n, lv, ptr, err) != NONE) {
        locate_failure(r0, n, lv, ptr);
        return;
      }
      if (anomaly && forward_anomaly(r0, n, lv)) return;
      if (Y)
        for (size_t j = 0; j < m; ++j) {
          uint32_t e = c.out_index[j];
          for (size_t r = 0; r < n; ++r) Y[(r0 + r) * m + j] = p.slot[e] != NONE ? lanes(lv, e)[r] : uval[e];
        }
      if (!grad) continue;
      backward_block(r0, n, lv, lg, tmp, ptr, sums);
      if (anomaly && backward_anomaly(r0, n, lg)) return;
      for (size_t i = 0; i < k; ++i) {
        uint32_t e = p.input_entry[i];
        for (size_t r = 0; r < n; ++r) GX[(r0 + r) * k + i] = e != NONE ? glanes(lg, e)[r] : 0.0;
      }
    }
  }

  // Runs every chunk on the pool without the GIL, letting Ctrl-C in every
  // few milliseconds (run_on_pool). Returns false with the Python error set
  // if a signal handler raised.
  bool drive() {
    reuse = !anomaly;
    gslot = reuse ? p.gslot.data() : p.slot.data();
    ngrad = reuse ? p.ngrad : nslots;
    // Scratch (up to BLOCK_BYTES, twice that under detect_anomaly) only for
    // the workers this job can use: a batch of one block needs one.
    double chunk_work = double(chunk_blocks * W) * std::max(p.row_work, 1.0);
    size_t workers = workers_for(nchunks, chunk_work);
    size_t scratch = (nslots + ngrad + 2) * W + 2 * p.max_slots;  // see chunk()
    fill_bcast();
    if (p.work.size() < workers) p.work.resize(workers);
    for (size_t w = 0; w < workers; ++w)
      if (p.work[w].size() < scratch) p.work[w].resize(scratch);
    if (grad) p.sums.assign(nchunks * p.nbound, 0.0);
    return run_on_pool(nchunks, chunk_work, workers, fail_row, [this](size_t ci, size_t w) { chunk(ci, w); });
  }

  // Raises the failure as eager raises it, naming the row.
  [[noreturn]] void raise_failure() const {
    const Failure& f = fail;
    if (f.where) raise_anomaly(op_name(c.op[f.entry]), f.where, f.bad);
    else raise_op_error(op_name(c.op[f.entry]), f.err, f.x, f.y, is_binary(c.op[f.entry]));
    raise_in_row(f.row);
  }
};

size_t batch_width(const Compiled& c) { return c.out_index.size(); }

}  // namespace

py::array_t<double> rows_array(const Compiled& c, py::handle X, const std::string& what) {
  py::array_t<double> arr = numbers_array(X, what);
  size_t k = c.batch->input_entry.size();
  if (arr.ndim() != 2 || size_t(arr.shape(1)) != k)
    throw py::value_error(what + " must be an (N, " + std::to_string(k) +
                          ") array, one column per input; got shape " +
                          shape_text(std::vector<py::ssize_t>(arr.shape(), arr.shape() + arr.ndim())));
  return arr;
}

// The uniform part once, as eager computes it, from the shared leaves' data.
static std::vector<double> uniform_values(const Compiled& c, const Batch& p, bool anomaly) {
  std::vector<double> uval(c.size());
  for (size_t i = 0; i < c.nleaves; ++i) uval[i] = c.leaf_nodes[i]->data;
  for (uint32_t e : p.uniform) {
    Err err = c.eval(e, uval.data());
    if (err) {
      c.set_error_at(e, err, uval.data());
      throw py::error_already_set();
    }
    if (anomaly && !std::isfinite(uval[e])) {
      raise_anomaly(op_name(c.op[e]), "forward", uval[e]);
      throw py::error_already_set();
    }
  }
  return uval;
}

// forward(rows)'s result shape: (N,), or (N, m) for a list of outputs.
static std::vector<py::ssize_t> result_shape(const Compiled& c, size_t N) {
  return c.is_single ? std::vector<py::ssize_t>{py::ssize_t(N)}
                     : std::vector<py::ssize_t>{py::ssize_t(N), py::ssize_t(batch_width(c))};
}

// grad_outputs as an array of forward(rows)'s shape; an empty one for None (ones).
static py::array_t<double> seeds_of(const Compiled& c, py::handle grad_outputs, size_t N, const std::string& fn) {
  if (grad_outputs.is_none()) return py::array_t<double>();
  py::array_t<double> seeds = numbers_array(grad_outputs, fn + ": grad_outputs");
  std::vector<py::ssize_t> want = result_shape(c, N);
  if (std::vector<py::ssize_t>(seeds.shape(), seeds.shape() + seeds.ndim()) != want)
    throw py::value_error(fn + ": grad_outputs must have the shape of forward()'s result, " + shape_text(want));
  return seeds;
}

// After a run with gradients: the rows' sums, chunk by chunk in order, then
// the uniform part's own backward, as scalar replay sweeps it, into the
// shared leaves' .grad.
static void add_shared_gradients(Compiled& c, Batch& p, const Run& run, const double* uval) {
  std::vector<double> ug(c.size(), 0.0);
  for (size_t e = 0; e < c.size(); ++e) {
    uint32_t s = p.bound[e];
    if (s == NONE) continue;
    double t = 0;
    for (size_t ci = 0; ci < run.nchunks; ++ci) t += p.sums[ci * p.nbound + s];
    ug[e] = t;
  }
  for (size_t q = p.uniform.size(); q-- > 0;) {
    uint32_t e = p.uniform[q];
    if (c.flags[e] & REQUIRES_GRAD) c.step(e, uval, ug.data(), [&](uint32_t o, double d) { ug[o] += d; });
  }
  if (run.anomaly)
    for (size_t i = 0; i < c.nleaves; ++i)
      if (p.slot[i] == NONE && c.writes_back(i) && !std::isfinite(ug[i])) {
        raise_anomaly("sum over rows", "backward", ug[i]);
        throw py::error_already_set();
      }
  for (size_t i = 0; i < c.nleaves; ++i)
    if (p.slot[i] == NONE && c.writes_back(i)) c.leaf_nodes[i]->grad += ug[i];
}

// Frees Batch::next_rows at the end of a call if it is larger than is kept.
struct RowsKept {
  Batch& p;
  ~RowsKept() {
    if (p.next_rows.capacity() * sizeof(double) > Batch::KEEP_ROWS_BYTES) std::vector<double>().swap(p.next_rows);
  }
};

// Makes the call's N rows (in next_rows) and uniform values the state a
// following backward() replays.
static void leave_for_backward(Batch& p, std::vector<double>& uval, size_t N) {
  p.rows.swap(p.next_rows);
  p.uval.swap(uval);
  p.nrows = N;
  p.ready = true;
}

py::object batch_forward(Compiled& c, py::handle X) {
  Batch& p = *c.batch;
  py::array_t<double> rows = rows_array(c, X, "forward(): rows");
  const size_t N = rows.shape(0), k = rows.shape(1);
  bool anomaly = anomaly_enabled;
  std::vector<double> uval = uniform_values(c, p, anomaly);
  py::array_t<double> out(result_shape(c, N));
  RowsKept kept{p};
  p.next_rows.assign(rows.data(), rows.data() + N * k);
  Run run(c, p, p.next_rows.data(), N, k, uval.data());
  run.Y = out.mutable_data();
  run.anomaly = anomaly;
  if (!run.drive()) throw py::error_already_set();
  if (run.fail_row.load() != SIZE_MAX) run.raise_failure();
  // Only a forward that succeeded replaces the state backward reads.
  leave_for_backward(p, uval, N);
  return std::move(out);
}

py::object batch_backward(Compiled& c, py::handle grad_outputs) {
  Batch& p = *c.batch;
  const size_t N = p.nrows, k = p.input_entry.size();
  py::array_t<double> seeds = seeds_of(c, grad_outputs, N, "backward()");
  py::array_t<double> gx(std::vector<py::ssize_t>{py::ssize_t(N), py::ssize_t(k)});
  Run run(c, p, p.rows.data(), N, k, p.uval.data());
  run.grad = true;
  run.anomaly = anomaly_enabled;
  run.seeds = grad_outputs.is_none() ? nullptr : seeds.data();
  run.GX = gx.mutable_data();
  if (!run.drive()) throw py::error_already_set();
  if (run.fail_row.load() != SIZE_MAX) run.raise_failure();
  add_shared_gradients(c, p, run, p.uval.data());
  return std::move(gx);
}

py::object batch_value_and_grad(Compiled& c, py::handle X, py::handle grad_outputs) {
  Batch& p = *c.batch;
  py::array_t<double> rows = rows_array(c, X, "value_and_grad(): rows");
  const size_t N = rows.shape(0), k = rows.shape(1);
  py::array_t<double> seeds = seeds_of(c, grad_outputs, N, "value_and_grad()");
  bool anomaly = anomaly_enabled;
  std::vector<double> uval = uniform_values(c, p, anomaly);
  RowsKept kept{p};
  p.next_rows.assign(rows.data(), rows.data() + N * k);
  Run run(c, p, p.next_rows.data(), N, k, uval.data());
  run.anomaly = anomaly;
  py::array_t<double> out(result_shape(c, N));
  py::array_t<double> gx(std::vector<py::ssize_t>{py::ssize_t(N), py::ssize_t(k)});
  run.Y = out.mutable_data();
  run.grad = true;
  run.seeds = grad_outputs.is_none() ? nullptr : seeds.data();
  run.GX = gx.mutable_data();
  if (!run.drive()) throw py::error_already_set();
  if (run.fail_row.load() != SIZE_MAX) run.raise_failure();
  add_shared_gradients(c, p, run, uval.data());
  // As after forward(rows) then backward(): a backward() now is these rows'
  // (it was the single-row backward at the graph's own values, a gradient
  // nobody asked for added to the shared leaves).
  leave_for_backward(p, uval, N);
  return py::make_tuple(std::move(out), std::move(gx));
}

}  // namespace ag
