// Second order on a compiled graph: forward-mode tangents (jvp), Hessian-vector
// products by forward-over-reverse (hvp), dense Hessians and Jacobians, at the
// leaves' current data or per row of a batch. Every op's second derivative
// sits beside its first in the op table (ops.hpp: d2 for unary and binary
// ops, d2t for n-ary ones).
//
// Derivatives are taken with respect to every leaf leaves() lists, whatever
// its requires_grad (which only decides what backward writes to .grad), as
// torch.autograd.functional.hessian does; nothing is written to .grad.
//
// Several directions go through the tape together (lanes): each entry's first
// and second derivatives are computed once and applied to every lane, so a
// dense Hessian costs one derivative evaluation per entry per chunk of
// columns, not per column. One direction is the same code with one lane.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "batch.hpp"
#include "compile.hpp"
#include "errors.hpp"
#include "modes.hpp"
#include "threads.hpp"

namespace py = pybind11;

namespace ag {

namespace second {

// Hessian columns per pass over the tape: bounds the lanes' memory (two
// doubles per entry per lane) while sharing each entry's derivatives.
constexpr size_t MAX_LANES = 16;

enum What { JVP, HVP, HESSIAN, JACOBIAN };
const char* const WHAT_NAME[] = {"jvp()", "hvp()", "hessian()", "jacobian()"};

// What the second-order passes share for one graph: the leaves the user
// sees, and which entries depend on them (the others have no tangent and
// pass no gradient; skipping them keeps a NaN derivative of a constant part
// from turning a zero tangent into NaN).
struct Shape {
  std::vector<uint32_t> leaves;  // entries of leaves(), in its order
  std::vector<uint8_t> live;
  size_t max_slots = 0;  // the most operand slots of an n-ary entry (a dot's pairs count twice)

  explicit Shape(const Compiled& c) : live(c.size(), 0) {
    for (size_t i = 0; i < c.nleaves; ++i)
      if (!(c.leaf_nodes[i]->flags & NUMBER)) {
        leaves.push_back(static_cast<uint32_t>(i));
        live[i] = 1;
      }
    for (size_t k = c.nleaves; k < c.size(); ++k) {
      c.for_each_operand(k, [&](uint32_t o) { live[k] |= live[o]; });
      if (is_nary(c.op[k])) max_slots = std::max<size_t>(max_slots, c.b[k]);
    }
  }
};

// The passes at one point (values v), L directions at a time. Lanes of one
// entry are contiguous: dot[k * L + j] is entry k's tangent along direction j.
struct Lanes {
  const Compiled& c;
  const Shape& s;
  std::vector<double> dot, g, gd, part, zero;
  std::vector<uint8_t> reach;  // the entries `out` depends on: the only ones a sweep from it visits
  uint32_t marked = NONE;      // the `out` reach is for: it depends on the graph alone

  Lanes(const Compiled& c, const Shape& s, size_t max_lanes)
      : c(c), s(s), dot(c.size() * max_lanes), g(c.size()), gd(c.size() * max_lanes), part(s.max_slots),
        zero(max_lanes, 0.0), reach(c.size()) {}

  // As eager backward, a sweep from `out` visits only what `out` depends on:
  // another output's operand with an infinite derivative (sqrt at 0) must not
  // make 0 * inf = NaN in this one's row of a Jacobian.
  void mark(uint32_t out) {
    if (out == marked) return;
    marked = out;
    std::fill(reach.begin(), reach.end(), 0);
    reach[out] = 1;
    for (size_t k = out + 1; k-- > c.nleaves;)
      if (reach[k]) c.for_each_operand(k, [&](uint32_t o) { reach[o] = 1; });
  }

  // A second derivative times a tangent; an exactly zero tangent adds nothing,
  // even where the second derivative is not finite (d2/dx dp of x ** p at x < 0
  // must not spoil d2/dx2 along a direction that leaves p alone).
  static double along(double d2, double t) { return t != 0.0 ? d2 * t : 0.0; }

  // The leaves' lanes: lane j of leaf leaves[i] is t(i, j).
  template <class T> void seed(size_t L, T t) {
    std::fill(dot.begin(), dot.begin() + c.nleaves * L, 0.0);
    for (size_t i = 0; i < s.leaves.size(); ++i)
      for (size_t j = 0; j < L; ++j) dot[s.leaves[i] * L + j] = t(i, j);
  }

  // Forward mode: an entry's tangent is the sum over its operands of its
  // partial derivative times theirs (its backward step with a gradient of 1,
  // summed instead of scattered).
  // FL: the lane count when known at compile time (hvp's one), else 0.
  template <size_t FL = 0> void tangents(const double* v, size_t lanes) {
    const size_t L = FL ? FL : lanes;
    for (size_t k = c.nleaves; k < c.size(); ++k) {
      double* dk = dot.data() + k * L;
      std::fill(dk, dk + L, 0.0);
      if (!s.live[k]) continue;
      c.partials(k, v, [&](uint32_t i, double d) {
        if (!s.live[i]) return;
        const double* di = dot.data() + size_t(i) * L;
        for (size_t j = 0; j < L; ++j) dk[j] += d * di[j];
      });
    }
  }

  // The gradient of entry `out` into g (first order, every live entry).
  void gradient(const double* v, uint32_t out) {
    mark(out);
    std::fill(g.begin(), g.end(), 0.0);
    g[out] = 1.0;
    for (size_t k = c.size(); k-- > c.nleaves;)
      if (s.live[k] && reach[k])
        c.step(k, v, g.data(), [&](uint32_t i, double d) {
          if (s.live[i]) g[i] += d;
        });
  }

  // The reverse sweep from `out` carrying gradients g and, per lane, their
  // derivatives gd along the tangents (forward-over-reverse: gd at a leaf is
  // (H t_j) there).
  template <size_t FL = 0> void reverse(const double* v, size_t lanes, uint32_t out) {
    const size_t L = FL ? FL : lanes;
    mark(out);
    std::fill(g.begin(), g.end(), 0.0);
    std::fill(gd.begin(), gd.begin() + c.size() * L, 0.0);
    g[out] = 1.0;
    for (size_t k = c.size(); k-- > c.nleaves;) {
      if (!s.live[k] || !reach[k]) continue;
      const double gk = g[k];
      const double* gdk = gd.data() + k * L;
      with_op<void>(c.op[k], [&](auto t) {
        using S = typename decltype(t)::op;
        if constexpr (t.arity == UNARY) {
          const uint32_t a = c.a[k];
          const double x = v[a], d = S::d(x, v[k], c.aux[k]), d2 = S::d2(x, v[k], c.aux[k]);
          const double* ta = dot.data() + size_t(a) * L;
          double* ga = gd.data() + size_t(a) * L;
          g[a] += gk * d;
          for (size_t j = 0; j < L; ++j) ga[j] += gdk[j] * d + gk * along(d2, ta[j]);
        } else if constexpr (t.arity == BINARY) {
          double da, db, aa, ab, bb;
          S::d(c.lhs(k, v), c.rhs(k, v), v[k], da, db);
          S::d2(c.lhs(k, v), c.rhs(k, v), v[k], aa, ab, bb);
          // A side without tangents (a number, or computed from numbers
          // only) has its second derivatives skipped, not multiplied by 0:
          // they may be NaN (log of a negative base in **).
          const bool ca = (c.flags[k] & CONST_A) || !s.live[c.a[k]];
          const bool cb = (c.flags[k] & CONST_B) || !s.live[c.b[k]];
          const double* ta = ca ? zero.data() : dot.data() + size_t(c.a[k]) * L;
          const double* tb = cb ? zero.data() : dot.data() + size_t(c.b[k]) * L;
          if (!ca) {
            double* ga = gd.data() + size_t(c.a[k]) * L;
            g[c.a[k]] += gk * da;
            for (size_t j = 0; j < L; ++j) ga[j] += gdk[j] * da + gk * (along(aa, ta[j]) + along(ab, tb[j]));
          }
          if (!cb) {
            double* gb = gd.data() + size_t(c.b[k]) * L;
            g[c.b[k]] += gk * db;
            for (size_t j = 0; j < L; ++j) gb[j] += gdk[j] * db + gk * (along(ab, ta[j]) + along(bb, tb[j]));
          }
        } else {
          NaryShape sh = c.shape(k);
          const uint32_t* ix = c.args.data() + c.a[k];
          auto x = [&](size_t i) { return c.slot(k, i, v); };
          auto in = [&](size_t i) { return i < sh.nodes && s.live[ix[i]]; };
          const size_t slots = c.b[k];
          std::fill(part.begin(), part.begin() + slots, 0.0);
          S::d(sh.count, x, v[k], 1.0, [&](size_t i, double d) { part[i] += d; });
          for (size_t i = 0; i < slots; ++i) {
            if (!in(i)) continue;
            double* gi = gd.data() + size_t(ix[i]) * L;
            g[ix[i]] += gk * part[i];
            for (size_t j = 0; j < L; ++j) gi[j] += part[i] * gdk[j];
          }
          auto tan = [&](size_t i) { return in(i) ? dot.data() + size_t(ix[i]) * L : zero.data(); };
          S::d2t(sh.count, x, v[k], part.data(), tan, gk, L, [&](size_t i, size_t j, double d) {
            if (in(i)) gd[size_t(ix[i]) * L + j] += d;
          });
        }
      });
    }
  }

  // One point's answer into out. dir: the direction(s) over the leaves
  // (jvp, hvp); out: m outputs (jvp), n (hvp), n x n (hessian), m x n (jacobian).
  void compute(What what, const double* v, const double* dir, double* out) {
    const size_t n = s.leaves.size(), m = c.out_index.size();
    switch (what) {
      case JVP:
        seed(1, [&](size_t i, size_t) { return dir[i]; });
        tangents<1>(v, 1);
        for (size_t o = 0; o < m; ++o) out[o] = dot[c.out_index[o]];
        break;
      case HVP:
        seed(1, [&](size_t i, size_t) { return dir[i]; });
        tangents<1>(v, 1);  // one lane, known here: no loops over lanes
        reverse<1>(v, 1, c.out_index[0]);
        for (size_t i = 0; i < n; ++i) out[i] = gd[s.leaves[i]];
        break;
      case HESSIAN:
        for (size_t c0 = 0; c0 < n; c0 += MAX_LANES) {  // columns c0 + j: H e_(c0 + j)
          const size_t L = std::min(MAX_LANES, n - c0);
          seed(L, [&](size_t i, size_t j) { return i == c0 + j ? 1.0 : 0.0; });
          tangents(v, L);
          reverse(v, L, c.out_index[0]);
          for (size_t i = 0; i < n; ++i)
            for (size_t j = 0; j < L; ++j) out[i * n + c0 + j] = gd[size_t(s.leaves[i]) * L + j];
        }
        break;
      case JACOBIAN:
        for (size_t o = 0; o < m; ++o) {  // row o: the gradient of output o
          gradient(v, c.out_index[o]);
          for (size_t i = 0; i < n; ++i) out[o * n + i] = g[s.leaves[i]];
        }
        break;
    }
  }
};

}  // namespace second

// What second order keeps between calls on one graph: the shape, and each
// worker's values and lanes (allocating and zeroing them, and finding what the
// output depends on, were a quarter of an hvp on the 10,000-op graph).
struct SecondCache {
  second::Shape s;
  size_t L = 0;  // the lanes the workers' Lanes were made for
  std::vector<second::Lanes> lanes;
  std::vector<std::vector<double>> vals;
  explicit SecondCache(const Compiled& c) : s(c) {}
};

void SecondCacheFree::operator()(SecondCache* p) const { delete p; }

namespace second {

void one_output(const Compiled& c, What what) {
  if (c.out_index.size() != 1)
    throw py::value_error(std::string(WHAT_NAME[what]) + " needs a graph compiled from one output; this one has " +
                          std::to_string(c.out_index.size()) + " (use jacobian() for several)");
}

// A direction over the leaves: (n,), or (N, n) for one per row of N rows.
py::array_t<double> directions(py::handle v, const std::string& what, size_t n, bool per_row, size_t N) {
  py::array_t<double> arr = numbers_array(v, what);
  std::vector<py::ssize_t> got(arr.shape(), arr.shape() + arr.ndim());
  bool ok = (arr.ndim() == 1 && size_t(arr.shape(0)) == n) ||
            (per_row && arr.ndim() == 2 && size_t(arr.shape(0)) == N && size_t(arr.shape(1)) == n);
  if (!ok)
    throw py::value_error(what + " must have one entry per leaf (" + std::to_string(n) + ")" +
                          (per_row ? ", or be an (N, " + std::to_string(n) + ") array with one row per row of rows" : "") +
                          "; got shape " + shape_text(got));
  return arr;
}

// The shape of one point's answer.
std::vector<py::ssize_t> answer_shape(const Compiled& c, What what, size_t n) {
  const py::ssize_t m = py::ssize_t(c.out_index.size()), nn = py::ssize_t(n);
  switch (what) {
    case JVP: return c.is_single ? std::vector<py::ssize_t>{} : std::vector<py::ssize_t>{m};
    case HVP: return {nn};
    case HESSIAN: return {nn, nn};
    default: return {m, nn};
  }
}

size_t answer_size(const std::vector<py::ssize_t>& shape) {
  size_t t = 1;
  for (auto d : shape) t *= size_t(d);
  return t;
}

// At the leaves' current data, or per row of `rows` (the inputs set to the
// row, the other leaves at their current data): row i's answer is what the
// call without rows gives with the inputs set to rows[i], bit for bit. Values
// are computed into the workers' own buffers, so nothing of the graph changes
// (neither .grad nor .data, nor what a pending backward() will read). Rows are
// shared out to the pool without the GIL; the first failing row raises
// eager's error, naming it.
py::object second_order(Compiled& c, What what, py::handle dir_in, py::handle rows_in) {
  const bool batched = !rows_in.is_none();
  if (batched && !c.batch)
    throw py::type_error(std::string(WHAT_NAME[what]) +
                         ": rows need a graph compiled with inputs=[...], the leaves that vary by row");
  BusyGuard busy_guard(c.busy);
  py::array_t<double> rows;
  size_t N = 1, k = 0;
  if (batched) {
    rows = rows_array(c, rows_in, std::string(WHAT_NAME[what]) + ": rows");
    N = rows.shape(0);
    k = rows.shape(1);
  }
  if (!c.second_cache) c.second_cache.reset(new SecondCache(c));
  SecondCache& sc = *c.second_cache;
  const Shape& s = sc.s;
  const size_t n = s.leaves.size();
  py::array_t<double> dir;
  size_t dir_stride = 0;
  if (what == JVP || what == HVP) {
    dir = directions(dir_in, std::string(WHAT_NAME[what]) + ": " + (what == JVP ? "tangents" : "v"), n, batched, N);
    dir_stride = dir.ndim() == 2 ? n : 0;
  }
  std::vector<py::ssize_t> shape = answer_shape(c, what, n);
  const size_t per = answer_size(shape);
  if (batched) shape.insert(shape.begin(), py::ssize_t(N));
  py::array_t<double> out(shape);

  std::vector<double> base(c.nleaves);
  for (size_t i = 0; i < c.nleaves; ++i) base[i] = c.leaf_nodes[i]->data;
  const bool anomaly = anomaly_enabled;
  const size_t workers = std::max<size_t>(1, std::min(threads::count(), N));
  const size_t L = what == HESSIAN ? std::min(MAX_LANES, std::max<size_t>(n, 1)) : 1;
  if (sc.L != L) {
    sc.lanes.clear();
    sc.L = L;
  }
  while (sc.lanes.size() < workers) sc.lanes.emplace_back(c, s, L);  // an allocation that fails leaves fewer: made again next time
  while (sc.vals.size() < workers) sc.vals.emplace_back(c.size());
  std::vector<Lanes>& lanes = sc.lanes;
  std::vector<std::vector<double>>& vals = sc.vals;

  const double* X = batched ? rows.data() : nullptr;
  const double* D = dir ? dir.data() : nullptr;
  double* Y = out.mutable_data();
  // The values of row r into v; the first failing entry, or NONE.
  auto values = [&](size_t r, double* v, Err& err) -> uint32_t {
    std::copy(base.begin(), base.end(), v);
    for (size_t i = 0; i < k; ++i)
      if (c.batch->input_entry[i] != NONE) v[c.batch->input_entry[i]] = X[r * k + i];
    return c.first_failure(v, c.run_forward(v, err), err, anomaly);  // as forward() checks
  };
  std::atomic<size_t> failed{SIZE_MAX};
  auto body = [&](size_t r, size_t w) {
    if (r > failed.load(std::memory_order_relaxed)) return;  // an earlier row failed
    double* v = vals[w].data();
    Err err = OK;
    if (values(r, v, err) != NONE) {
      size_t cur = failed.load();
      while (r < cur && !failed.compare_exchange_weak(cur, r)) {
      }
      return;
    }
    lanes[w].compute(what, v, D ? D + r * dir_stride : nullptr, Y + r * per);
  };
  // About the lane-ops of one row, for how often to look at Ctrl-C.
  const double work = double(c.size()) * (what == HESSIAN    ? 2.0 * double(n)
                                          : what == JACOBIAN ? double(c.out_index.size())
                                                             : 2.0);
  if (!run_on_pool(N, work, workers, failed, body)) throw py::error_already_set();
  const size_t bad = failed.load();
  if (bad != SIZE_MAX) {  // that row again, under the GIL, for eager's message
    std::vector<double>& v = vals[0];
    Err err = OK;
    uint32_t e = values(bad, v.data(), err);
    if (err) c.set_error_at(e, err, v.data());
    else raise_anomaly(op_name(c.op[e]), "forward", v[e]);
    if (!batched) throw py::error_already_set();
    raise_in_row(bad);
  }
  if (what == JVP && !batched) {  // a float, or a list for several outputs, as forward() returns
    if (c.is_single) return py::float_(Y[0]);
    py::list r;
    for (size_t o = 0; o < per; ++o) r.append(Y[o]);
    return r;
  }
  return std::move(out);
}

}  // namespace second

using second::second_order;

py::object Compiled::jvp(py::object tangents_in, py::object rows) {
  return second_order(*this, second::JVP, tangents_in, rows);
}

py::object Compiled::hvp(py::object v_in, py::object rows) {
  second::one_output(*this, second::HVP);
  return second_order(*this, second::HVP, v_in, rows);
}

py::object Compiled::hessian(py::object rows) {
  second::one_output(*this, second::HESSIAN);
  return second_order(*this, second::HESSIAN, py::none(), rows);
}

py::object Compiled::jacobian(py::object rows) {
  return second_order(*this, second::JACOBIAN, py::none(), rows);
}

}  // namespace ag
