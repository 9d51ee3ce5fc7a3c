// Second order on a compiled graph: forward-mode tangents (jvp), Hessian-vector
// products by forward-over-reverse (hvp), dense Hessians and Jacobians. Every
// op's second derivative sits beside its first in the op table (ops.hpp:
// d2 for unary and binary ops, d2t for n-ary ones).
//
// These run under the GIL from start to end (no other thread can replay the
// graph meanwhile) at the leaves' current data, after a forward() that
// refreshes the values; nothing is written to .grad.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "batch.hpp"
#include "compile.hpp"
#include "errors.hpp"

namespace py = pybind11;

namespace ag {

std::vector<uint32_t> Compiled::user_leaves() const {
  std::vector<uint32_t> r;
  for (size_t i = 0; i < nleaves; ++i)
    if (!(leaf_nodes[i]->flags & NUMBER)) r.push_back(static_cast<uint32_t>(i));
  return r;
}

void Compiled::tangents(double* dot) const {
  // An entry's tangent is the sum over its operands of its partial derivative
  // times theirs: its backward step with a gradient of 1, summed instead of
  // scattered.
  const double* v = val.data();
  for (size_t k = nleaves; k < size(); ++k) {
    double s = 0;
    step(k, v, 1.0, [&](uint32_t i, double d) { s += d * dot[i]; });
    dot[k] = s;
  }
}

void Compiled::reverse2(const double* dot, double* g, double* gd) const {
  const double* v = val.data();
  for (size_t k = size(); k-- > nleaves;) {
    if (!(flags[k] & REQUIRES_GRAD)) continue;
    const double gk = g[k], gdk = gd[k];
    with_op<void>(op[k], [&](auto t) {
      using S = typename decltype(t)::op;
      if constexpr (t.arity == UNARY) {
        const double x = v[a[k]], d = S::d(x, v[k], aux[k]), d2 = S::d2(x, v[k], aux[k]);
        g[a[k]] += gk * d;
        gd[a[k]] += gdk * d + gk * d2 * dot[a[k]];
      } else if constexpr (t.arity == BINARY) {
        double da, db, aa, ab, bb;
        S::d(lhs(k, v), rhs(k, v), v[k], da, db);
        S::d2(lhs(k, v), rhs(k, v), v[k], aa, ab, bb);
        // A constant side has no tangent, and its second derivatives are not
        // computed at all: they may be NaN (log of a negative base in **).
        const bool ca = flags[k] & CONST_A, cb = flags[k] & CONST_B;
        const double ta = ca ? 0.0 : dot[a[k]], tb = cb ? 0.0 : dot[b[k]];
        if (!ca) {
          g[a[k]] += gk * da;
          gd[a[k]] += gdk * da + gk * (aa * ta + (cb ? 0.0 : ab * tb));
        }
        if (!cb) {
          g[b[k]] += gk * db;
          gd[b[k]] += gdk * db + gk * ((ca ? 0.0 : ab * ta) + bb * tb);
        }
      } else {
        NaryShape sh = shape(k);
        const uint32_t* ix = args.data() + a[k];
        const double* num = argnum.data() + a[k];
        auto x = [&](size_t i) { return i < sh.nodes ? v[ix[i]] : num[i]; };
        auto tan = [&](size_t i) { return i < sh.nodes ? dot[ix[i]] : 0.0; };
        S::d(sh.count, x, v[k], gk, [&](size_t i, double d) {
          if (i < sh.nodes) g[ix[i]] += d;
        });
        S::d(sh.count, x, v[k], gdk, [&](size_t i, double d) {
          if (i < sh.nodes) gd[ix[i]] += d;
        });
        S::d2t(sh.count, x, v[k], tan, gk, [&](size_t i, double d) {
          if (i < sh.nodes) gd[ix[i]] += d;
        });
      }
    });
  }
}

namespace {

// A direction over the user's leaves, as floats.
std::vector<double> direction(const Compiled& c, py::handle v, const char* what, size_t n) {
  py::array_t<double> arr = numbers_array(v, what);
  if (arr.ndim() != 1 || size_t(arr.shape(0)) != n)
    throw py::value_error(std::string(what) + " must have one entry per leaf (" + std::to_string(n) + "), got shape " +
                          shape_text(std::vector<py::ssize_t>(arr.shape(), arr.shape() + arr.ndim())));
  return std::vector<double>(arr.data(), arr.data() + n);
}

void one_output(const Compiled& c, const char* what) {
  if (c.out_index.size() != 1)
    throw py::value_error(std::string(what) + " needs a graph compiled from one output; this one has " +
                          std::to_string(c.out_index.size()) + " (use jacobian() for several)");
  if (!(c.out_nodes[0]->flags & REQUIRES_GRAD))
    throw std::runtime_error(std::string(what) + ": the output does not require grad");
}

}  // namespace

py::object Compiled::jvp(py::object tangents_in) {
  forward(py::none());
  std::vector<uint32_t> leaves_ = user_leaves();
  std::vector<double> t = direction(*this, tangents_in, "jvp(): tangents", leaves_.size());
  std::vector<double> dot(size(), 0.0);
  for (size_t j = 0; j < leaves_.size(); ++j) dot[leaves_[j]] = t[j];
  tangents(dot.data());
  if (is_single) return py::float_(dot[out_index[0]]);
  py::list r;
  for (uint32_t k : out_index) r.append(dot[k]);
  return r;
}

void Compiled::hvp_at(const std::vector<uint32_t>& leaves_, const double* t, double* out) const {
  std::vector<double> dot(size(), 0.0), g(size(), 0.0), gd(size(), 0.0);
  for (size_t j = 0; j < leaves_.size(); ++j) dot[leaves_[j]] = t[j];
  tangents(dot.data());
  g[out_index[0]] = 1.0;
  reverse2(dot.data(), g.data(), gd.data());
  for (size_t j = 0; j < leaves_.size(); ++j) out[j] = gd[leaves_[j]];
}

py::object Compiled::hvp(py::object v_in) {
  one_output(*this, "hvp()");
  forward(py::none());
  std::vector<uint32_t> leaves_ = user_leaves();
  std::vector<double> t = direction(*this, v_in, "hvp(): v", leaves_.size());
  py::array_t<double> r(static_cast<py::ssize_t>(leaves_.size()));
  hvp_at(leaves_, t.data(), r.mutable_data());
  return std::move(r);
}

py::object Compiled::hessian() {
  one_output(*this, "hessian()");
  forward(py::none());
  std::vector<uint32_t> leaves_ = user_leaves();
  const size_t n = leaves_.size();
  py::array_t<double> H(std::vector<py::ssize_t>{py::ssize_t(n), py::ssize_t(n)});
  std::vector<double> e(n, 0.0), column(n);
  for (size_t j = 0; j < n; ++j) {  // column j: H e_j
    e[j] = 1.0;
    hvp_at(leaves_, e.data(), column.data());
    e[j] = 0.0;
    for (size_t i = 0; i < n; ++i) H.mutable_data()[i * n + j] = column[i];
  }
  return std::move(H);
}

py::object Compiled::jacobian() {
  forward(py::none());
  std::vector<uint32_t> leaves_ = user_leaves();
  const size_t n = leaves_.size(), m = out_index.size();
  py::array_t<double> J(std::vector<py::ssize_t>{py::ssize_t(m), py::ssize_t(n)});
  std::vector<double> g(size());
  for (size_t o = 0; o < m; ++o) {  // row o: the gradient of output o
    std::fill(g.begin(), g.end(), 0.0);
    g[out_index[o]] = 1.0;
    sweep(g.data());
    for (size_t i = 0; i < n; ++i) J.mutable_data()[o * n + i] = g[leaves_[i]];
  }
  return std::move(J);
}

}  // namespace ag
