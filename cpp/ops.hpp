// The op table: every operation's forward value, domain check, local
// derivative, display name, kind and docstring, side by side, one struct per op.
//
// Adding an op is one struct here and one line in the matching list at the
// bottom; docs/architecture.md, "How to add an op", has the recipe. Eager
// building (value.cpp, nary.cpp), the Value methods (value.cpp), the backward
// sweep (graph.cpp), replay (compile.cpp), the invariant checker and the
// Python-side table (`_core.ops()`, which viz and the tests read) are all
// generated from these lists.
//
// Errors follow Python's float and math module: the forward reports what
// went wrong and the caller raises ZeroDivisionError, ValueError or
// OverflowError before anything is allocated, so a failed op changes nothing.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "vmath.hpp"

namespace ag {

enum Err { OK = 0, ERR_DOMAIN, ERR_ZERODIV, ERR_OVERFLOW };

// What an op is, for pictures (viz colours nodes by it) and the docs.
enum Kind { ARITHMETIC, ACTIVATION, EXP_LOG };
constexpr const char* KIND_NAMES[] = {"arithmetic", "activation", "exp_log"};

// A unary op is a Value method of its own name unless it says otherwise
// (`method = false`: neg is spelled -x); `param`, if any, is the method's
// one optional argument, stored in the node (leaky_relu's slope).
struct UnaryOp {
  static constexpr bool method = true;
  static constexpr const char* param = nullptr;
  static constexpr double param_default = 0.0;
};

// An overflow is an infinite result from finite inputs (math.exp(1000)).
inline Err overflow_if(double y, double x) {
  return (std::isinf(y) && std::isfinite(x)) ? ERR_OVERFLOW : OK;
}

// ---------------------------------------------------------------- unary ops
// f(x, p, y) computes y; d(x, y, p) is dy/dx. p is the node's parameter.

struct Neg : UnaryOp {
  static constexpr const char* name = "neg";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "-x.";
  static constexpr bool method = false;
  static Err f(double x, double, double& y) { y = -x; return OK; }
  static double d(double, double, double) { return -1.0; }
  static double d2(double, double, double) { return 0.0; }
};

struct Abs : UnaryOp {
  static constexpr const char* name = "abs";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "|x| (also abs(v)); its derivative at 0 is 0.";
  static Err f(double x, double, double& y) { y = std::fabs(x); return OK; }
  static double d(double x, double, double) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
  static double d2(double, double, double) { return 0.0; }
};

struct Relu : UnaryOp {
  static constexpr const char* name = "relu";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "max(0, x); its derivative at 0 is 0.";
  static Err f(double x, double, double& y) { y = x > 0 || std::isnan(x) ? x : 0.0; return OK; }
  // NaN passes its gradient through as it passes its value, as in torch.
  static double d(double x, double, double) { return x > 0 || std::isnan(x) ? 1.0 : 0.0; }
  static double d2(double, double, double) { return 0.0; }
};

struct LeakyRelu : UnaryOp {  // p = the slope for x <= 0
  static constexpr const char* name = "leaky_relu";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "x if x > 0 else slope * x.";
  static constexpr const char* param = "slope";
  static constexpr double param_default = 0.01;
  static Err f(double x, double p, double& y) { y = x > 0 ? x : p * x; return OK; }
  static double d(double x, double, double p) { return x > 0 ? 1.0 : p; }
  static double d2(double, double, double) { return 0.0; }
};

struct Tanh : UnaryOp {
  static constexpr const char* name = "tanh";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "Hyperbolic tangent.";
  static Err f(double x, double, double& y) { y = std::tanh(x); return OK; }
  static double d(double, double y, double) { return 1.0 - y * y; }
  static double d2(double, double y, double) { return -2.0 * y * (1.0 - y * y); }
};

struct Sigmoid : UnaryOp {
  static constexpr const char* name = "sigmoid";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "1 / (1 + exp(-x)), computed without overflow.";
  // Always inlined, so that where d and d2 both want it (second order) the
  // compiler computes it once.
  AG_ALWAYS_INLINE static Err f(double x, double, double& y) {
    // exp of minus |x| never overflows.
    y = of_exp(x, vm::exp(-std::fabs(x)));
    return OK;
  }
  // f's bits where near(x) (|x| <= 708), without exp's selects for the
  // special cases (vmath.hpp's exp_near): for lane loops.
  static bool near(double x) { return vm::exp_is_near(-std::fabs(x)); }
  AG_ALWAYS_INLINE static Err f_near(double x, double, double& y) {
    y = of_exp(x, vm::exp_near(-std::fabs(x)));
    return OK;
  }
  // sigmoid(x) from e = exp(-|x|); softplus's forward has e in hand.
  // One division, its numerator selected: a lane loop computed both quotients.
  static double of_exp(double x, double e) { return (x >= 0 ? 1.0 : e) / (1.0 + e); }
  static double d(double, double y, double) { return y * (1.0 - y); }
  static double d2(double, double y, double) { return y * (1.0 - y) * (1.0 - 2.0 * y); }
};

struct Exp : UnaryOp {
  static constexpr const char* name = "exp";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "e**x; OverflowError when the result does not fit a float.";
  static Err f(double x, double, double& y) { y = vm::exp(x); return overflow_if(y, x); }
  // f's bits where near(x) (x in [-708, 709]: e^x is finite), for lane loops:
  // vm::exp's early return for the rest makes a vector loop compute both of
  // its paths for every row (a batch of exps took 1.16x the time).
  static bool near(double x) { return vm::exp_is_near(x); }
  AG_ALWAYS_INLINE static Err f_near(double x, double, double& y) {
    y = vm::exp_near(x);
    return OK;
  }
  static double d(double, double y, double) { return y; }
  static double d2(double, double y, double) { return y; }
};

struct Log : UnaryOp {
  static constexpr const char* name = "log";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "Natural logarithm; ValueError for x <= 0.";
  static Err f(double x, double, double& y) {
    y = vm::log(x);  // computed before the check, so that batched replay vectorises
    return x <= 0 ? ERR_DOMAIN : OK;  // NaN passes through, as math.log(nan)
  }
  static double d(double x, double, double) { return 1.0 / x; }
  static double d2(double x, double, double) { return -1.0 / (x * x); }
};

struct Sqrt : UnaryOp {
  static constexpr const char* name = "sqrt";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "Square root; ValueError for x < 0.";
  static Err f(double x, double, double& y) {
    if (x < 0) return ERR_DOMAIN;
    y = std::sqrt(x);
    return OK;
  }
  static double d(double, double y, double) { return 0.5 / y; }
  static double d2(double, double y, double) { return -0.25 / (y * y * y); }
};

struct Softplus : UnaryOp {  // log(1 + e^x), stable for large |x|
  static constexpr const char* name = "softplus";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "log(1 + exp(x)), stable for large |x|.";
  static Err f(double x, double p, double& y) {
    double kept;
    return f(x, p, y, kept);
  }
  // Its derivative, sigmoid(x), is made from the exp forward computes
  // anyway: replay, single-row and batched, has room to keep that exp
  // (d_kept reads it back), eager recomputes it (d); the same bits either way.
  static Err f(double x, double, double& y, double& kept) { return f_as<false>(x, y, kept); }
  // f's bits where near(x) (|x| <= 708: neither exp nor log1p meets a
  // special case), with none of the selects for those cases, which a lane
  // loop would compute for every row.
  static bool near(double x) { return Sigmoid::near(x); }
  static Err f_near(double x, double, double& y, double& kept) { return f_as<true>(x, y, kept); }
  template <bool Near> AG_ALWAYS_INLINE static Err f_as(double x, double& y, double& kept) {
    kept = Near ? vm::exp_near(-std::fabs(x)) : vm::exp(-std::fabs(x));
    y = (x > 0 ? x : 0.0) + (Near ? vm::log1p_near(kept) : vm::log1p(kept));
    return OK;
  }
  static double d_kept(double x, double kept) { return Sigmoid::of_exp(x, kept); }
  static double d(double x, double, double) {
    double y;
    Sigmoid::f(x, 0, y);
    return y;
  }
  static double d2(double x, double, double) {
    double y;
    Sigmoid::f(x, 0, y);
    return Sigmoid::d(x, y, 0);
  }
};

struct Sin : UnaryOp {
  static constexpr const char* name = "sin";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "Sine; ValueError for infinite x.";
  static Err f(double x, double, double& y) {
    if (std::isinf(x)) return ERR_DOMAIN;  // math.sin(inf) raises
    y = std::sin(x);
    return OK;
  }
  static double d(double x, double, double) { return std::cos(x); }
  static double d2(double x, double, double) { return -std::sin(x); }
};

struct Cos : UnaryOp {
  static constexpr const char* name = "cos";
  static constexpr Kind kind = ACTIVATION;
  static constexpr const char* doc = "Cosine; ValueError for infinite x.";
  static Err f(double x, double, double& y) {
    if (std::isinf(x)) return ERR_DOMAIN;
    y = std::cos(x);
    return OK;
  }
  static double d(double x, double, double) { return -std::sin(x); }
  static double d2(double x, double, double) { return -std::cos(x); }
};

// --------------------------------------------------------------- binary ops
// f(a, b, y) computes y; d(a, b, y, da, db) gives dy/da and dy/db. Either
// operand may be a constant (the node's CONST_A / CONST_B flag); its
// derivative is then computed and dropped.

struct Add {
  static constexpr const char* name = "+";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "a + b.";
  static Err f(double a, double b, double& y) { y = a + b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = 1.0; }
  static void d2(double, double, double, double& aa, double& ab, double& bb) { aa = ab = bb = 0.0; }
};

struct Sub {
  static constexpr const char* name = "-";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "a - b.";
  static Err f(double a, double b, double& y) { y = a - b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = -1.0; }
  static void d2(double, double, double, double& aa, double& ab, double& bb) { aa = ab = bb = 0.0; }
};

struct Mul {
  static constexpr const char* name = "*";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "a * b.";
  static Err f(double a, double b, double& y) { y = a * b; return OK; }
  static void d(double a, double b, double, double& da, double& db) { da = b; db = a; }
  static void d2(double, double, double, double& aa, double& ab, double& bb) {
    aa = bb = 0.0;
    ab = 1.0;
  }
};

struct Div {
  static constexpr const char* name = "/";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "a / b; ZeroDivisionError for b == 0.";
  static Err f(double a, double b, double& y) {
    if (b == 0) return ERR_ZERODIV;
    y = a / b;
    return OK;
  }
  static void d(double, double b, double y, double& da, double& db) {
    da = 1.0 / b;
    db = -y / b;
  }
  static void d2(double, double b, double y, double& aa, double& ab, double& bb) {
    aa = 0.0;
    ab = -1.0 / (b * b);
    bb = 2.0 * y / (b * b);
  }
};

struct Pow {
  static constexpr const char* name = "**";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "a ** b, as Python's float: ValueError for a fractional power of a negative number.";
  static Err f(double a, double b, double& y) {
    // As Python's float: 0.0 ** -1 and (-8.0) ** 0.5 raise; infinities do not.
    if (a == 0 && b < 0 && std::isfinite(b)) return ERR_ZERODIV;
    if (a < 0 && std::isfinite(a) && std::isfinite(b) && b != std::floor(b)) return ERR_DOMAIN;
    y = std::pow(a, b);
    return (std::isinf(y) && std::isfinite(a) && std::isfinite(b)) ? ERR_OVERFLOW : OK;
  }
  // a ** 2, the lecture's square, is the common case: pow(a, 1) is a and
  // pow(a, 0) is 1 exactly (C99), so these skip a libm pow call (15-20 ns)
  // with the same bits for every a but a NaN (whose sign glibc's pow drops
  // and micrograd's 2 * a ** 1.0 keeps, as this does).
  static void d(double a, double b, double y, double& da, double& db) {
    da = b == 0 ? 0.0 : b * (b == 2 ? a : std::pow(a, b - 1));
    // d/db a^b = a^b log a; at a == 0 PyTorch takes the limit 0 for b >= 0 (a
    // negative b raises in the forward, except -inf: there, and for NaN, the
    // formula's -inf and NaN stand, as in torch).
    db = a == 0 && b >= 0 ? 0.0 : y * vm::log(a);
  }
  // Second derivatives of a^b, zero where the first ones are held at zero;
  // at a == 0 otherwise the formulas' values stand.
  static void d2(double a, double b, double y, double& aa, double& ab, double& bb) {
    aa = b == 0 || b == 1 ? 0.0 : b * (b - 1) * (b == 2 ? 1.0 : std::pow(a, b - 2));
    ab = b == 0 ? 1.0 / a : (b == 2 ? a : std::pow(a, b - 1)) * (1.0 + b * vm::log(a));
    bb = a == 0 && b >= 0 ? 0.0 : y * vm::log(a) * vm::log(a);
  }
};

// One output of ag.softmax: a projection of its softmax node (Softmax, below),
// which computes all of them at once; f leaves the value that node wrote.
// The operands are (x_i, the softmax node), aux is i. Its reverse step is its
// softmax node's (fused_reverse): that node reads every output's gradient.
// d and d2 are its local derivatives, for forward mode and second order, as
// if y = exp(x_i - L), L the softmax node's logsumexp: d/dx_i = y, d/dL = -y.
struct SoftmaxOut {
  static constexpr const char* name = "softmax";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "One output of ag.softmax: exp(x_i - max) / sum_j exp(x_j - max).";
  static constexpr bool fused_reverse = true;
  static Err f(double, double, double&) { return OK; }
  static void d(double, double, double y, double& da, double& db) { da = y; db = -y; }
  static void d2(double, double, double y, double& aa, double& ab, double& bb) {
    aa = bb = y;
    ab = -y;
  }
};

// log_softmax(x)_i = x_i - L.
struct LogSoftmaxOut {
  static constexpr const char* name = "log_softmax";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "One output of ag.log_softmax: x_i - logsumexp(x).";
  static Err f(double a, double b, double& y) { y = a - b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = -1.0; }
  static void d2(double, double, double, double& aa, double& ab, double& bb) { aa = ab = bb = 0.0; }
};

// ---------------------------------------------------------------- n-ary ops
// An operand over a block of rows, for an op whose lane form takes them
// (src_operands): its lanes p, or (p null) the value s of every row.
struct Src {
  const double* p;
  double s;
};
// Whether an n-ary op's lane form takes its operands as Src (Dot's does), so
// that its uniform operands need no broadcast lanes.
template <class S, class = void> struct SrcOperands : std::false_type {};
template <class S> struct SrcOperands<S, std::void_t<decltype(S::src_operands)>> : std::true_type {};

// x(i) reads operand i; n counts operands (for Dot: pairs). d calls
// acc(i, g * dy/dx_i) for each operand; Dot's second operand list is i >= n.

struct Sum {  // p = the sum of any numbers folded in
  static constexpr const char* name = "sum";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "ag.sum(values): the sum of Values and numbers, one node.";
  template <class X> static Err f(size_t n, X x, double p, double& y) {
    double s = p;
    for (size_t i = 0; i < n; ++i) s += x(i);
    y = s;
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X, double, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g);
  }
  // g times the Hessian of y times the operands' tangents, for L tangents at
  // once: t(i) points at operand i's L tangents, dx[i] is dy/dx_i (d with
  // g = 1), and acc(i, j, v) adds v = g (H t_j)_i.
  template <class X, class T, class Acc> static void d2t(size_t, X, double, const double*, T, double, size_t, Acc) {}
  // f and d over a block of w rows, for batched replay: x(i) points at operand
  // i's w lanes, acc(i, c) adds the lanes c to its gradient. The same
  // operations in the same order per row as f and d, so the same bits.
  static constexpr bool lane_form = true;
  // Four operands per pass over y (in f's order), not one: a pass per
  // operand stored and reloaded y n + 1 times.
  template <class X> AG_ALWAYS_INLINE static void f_lanes(size_t n, X x, double p, double* y, size_t w) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const double *a = x(i), *b = x(i + 1), *c = x(i + 2), *d = x(i + 3);
      for (size_t r = 0; r < w; ++r) {
        double s = i ? y[r] : p;
        y[r] = (((s + a[r]) + b[r]) + c[r]) + d[r];
      }
    }
    if (i == 0)
      for (size_t r = 0; r < w; ++r) y[r] = p;
    for (; i < n; ++i)
      for (size_t r = 0; r < w; ++r) y[r] += x(i)[r];
  }
  template <class X, class Acc> AG_ALWAYS_INLINE static void d_lanes(size_t n, X, const double*, const double* g, double*, size_t, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g);
  }
};

struct Mean {
  static constexpr const char* name = "mean";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "ag.mean(values): the arithmetic mean, one node.";
  template <class X> static Err f(size_t n, X x, double, double& y) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += x(i);
    y = s / double(n);
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X, double, double g, Acc acc) {
    double gi = g / double(n);
    for (size_t i = 0; i < n; ++i) acc(i, gi);
  }
  template <class X, class T, class Acc> static void d2t(size_t, X, double, const double*, T, double, size_t, Acc) {}
  static constexpr bool lane_form = true;  // as Sum's
  template <class X> AG_ALWAYS_INLINE static void f_lanes(size_t n, X x, double, double* y, size_t w) {
    for (size_t r = 0; r < w; ++r) y[r] = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t r = 0; r < w; ++r) y[r] += x(i)[r];
    for (size_t r = 0; r < w; ++r) y[r] = y[r] / double(n);
  }
  template <class X, class Acc>
  AG_ALWAYS_INLINE static void d_lanes(size_t n, X, const double*, const double* g, double* t, size_t w, Acc acc) {
    for (size_t r = 0; r < w; ++r) t[r] = g[r] / double(n);
    for (size_t i = 0; i < n; ++i) acc(i, t);
  }
};

struct Dot {  // sum_i x(i) * x(n + i)
  static constexpr const char* name = "dot";
  static constexpr Kind kind = ARITHMETIC;
  static constexpr const char* doc = "ag.dot(xs, ys): the sum of xs[i] * ys[i], one node.";
  template <class X> static Err f(size_t n, X x, double, double& y) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += x(i) * x(n + i);
    y = s;
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X x, double, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) {
      acc(i, g * x(n + i));
      acc(n + i, g * x(i));
    }
  }
  template <class X, class T, class Acc>
  static void d2t(size_t n, X, double, const double*, T t, double g, size_t L, Acc acc) {
    for (size_t i = 0; i < n; ++i) {
      const double *ta = t(i), *tb = t(n + i);
      for (size_t j = 0; j < L; ++j) {
        acc(i, j, g * tb[j]);
        acc(n + i, j, g * ta[j]);
      }
    }
  }
  // Over a block of w rows x(i) is operand i's Src: its lanes, or one value
  // for every row (a shared weight, a number), read as that scalar rather
  // than broadcast into lanes (a layer's weights are most of its operands).
  // Per row, the same products added in the same order as f: the same bits.
  static constexpr bool lane_form = true;
  static constexpr bool src_operands = true;
  template <class X> AG_ALWAYS_INLINE static void f_lanes(size_t n, X x, double, double* y, size_t w) {
    for (size_t r = 0; r < w; ++r) y[r] = 0;
    for (size_t i = 0; i < n; ++i) {
      const Src a = x(i), b = x(n + i);
      if (a.p && b.p) {
        for (size_t r = 0; r < w; ++r) y[r] += a.p[r] * b.p[r];
      } else if (a.p || b.p) {
        const double* v = a.p ? a.p : b.p;
        const double s = a.p ? b.s : a.s;
        for (size_t r = 0; r < w; ++r) y[r] += v[r] * s;
      } else {
        const double t = a.s * b.s;
        for (size_t r = 0; r < w; ++r) y[r] += t;
      }
    }
  }
  // d over a block of rows as products: prod(j, f) adds g[r] * f[r] (f the
  // other factor's Src) to operand j, in d's order. Batched backward makes
  // each product where it adds it, with no lanes of partials in between (the
  // same bits: the product rounds before the add).
  static constexpr bool product_lanes = true;
  template <class X, class Prod> AG_ALWAYS_INLINE static void d_products(size_t n, X x, const double*, Prod prod) {
    for (size_t i = 0; i < n; ++i) {
      prod(i, x(n + i));
      prod(n + i, x(i));
    }
  }
};

struct LogSumExp {  // max-shifted so that no exp overflows
  static constexpr const char* name = "logsumexp";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "ag.logsumexp(values): log(sum(exp(v))), max-shifted.";
  template <class X> static Err f(size_t n, X x, double, double& y) {
    double m = -INFINITY;
    for (size_t i = 0; i < n; ++i) m = x(i) > m ? x(i) : m;
    if (std::isinf(m)) {  // all -inf, or some +inf: the shift would make NaN
      bool nan = false;
      for (size_t i = 0; i < n; ++i) nan |= std::isnan(x(i));
      y = nan ? NAN : m;
      return OK;
    }
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += vm::exp(x(i) - m);
    y = m + vm::log(s);
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X x, double y, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g * vm::exp(x(i) - y));
  }
  // As f and d, lane by lane in blocks of up to 64 (the special cases as
  // selects, so that the loops vectorise): the same operations per row.
  static constexpr bool lane_form = true;
  template <class X> AG_ALWAYS_INLINE static void f_lanes(size_t n, X x, double, double* y, size_t w) {
    for (size_t r0 = 0; r0 < w; r0 += 64) {
      const size_t k = w - r0 < 64 ? w - r0 : 64;
      double m[64], s[64], nan[64];  // nan: 0, or NaN once some operand is NaN
      for (size_t r = 0; r < k; ++r) m[r] = -INFINITY, s[r] = 0, nan[r] = 0;
      for (size_t i = 0; i < n; ++i) {
        const double* xi = x(i) + r0;
        for (size_t r = 0; r < k; ++r) m[r] = xi[r] > m[r] ? xi[r] : m[r], nan[r] = xi[r] != xi[r] ? NAN : nan[r];
      }
      for (size_t i = 0; i < n; ++i) {
        const double* xi = x(i) + r0;
        for (size_t r = 0; r < k; ++r) s[r] += vm::exp_lanes(xi[r] - m[r]);
      }
      for (size_t r = 0; r < k; ++r) {
        double v = m[r] + vm::log(s[r]);
        y[r0 + r] = std::isinf(m[r]) ? m[r] + nan[r] : v;
      }
    }
  }
  template <class X, class Acc>
  AG_ALWAYS_INLINE static void d_lanes(size_t n, X x, const double* y, const double* g, double* t, size_t w, Acc acc) {
    for (size_t i = 0; i < n; ++i) {
      const double* xi = x(i);
      for (size_t r = 0; r < w; ++r) t[r] = g[r] * vm::exp_lanes(xi[r] - y[r]);
      acc(i, t);
    }
  }
  // The Hessian is diag(p) - p p^T, p = softmax(x) = dx.
  template <class X, class T, class Acc>
  static void d2t(size_t n, X, double, const double* p, T t, double g, size_t L, Acc acc) {
    for (size_t j = 0; j < L; ++j) {
      double pt = 0;
      for (size_t i = 0; i < n; ++i) pt += p[i] * t(i)[j];
      for (size_t i = 0; i < n; ++i) acc(i, j, g * (p[i] * t(i)[j] - p[i] * pt));
    }
  }
};

// The node ag.softmax makes: logsumexp(x) as its value and local derivative,
// and the softmax y_i = exp(x_i - max) * (1 / sum) (one max, n exps, one
// sum, one division, one log for L) into out(i) as well, which the outputs
// (SoftmaxOut) read. Its 3n slots are x, then the y it computed (numbers in
// the eager node), then its outputs (pointers that do not own, null once an
// output is freed);
// replay points both halves at the outputs' entries. x(n + i) is y_i.
// Backward from the outputs, no exp: reverse gets a pointer to every
// output's gradient gout(i) and gives dx_j = y_j (g_j - sum_i g_i y_i + g),
// g the gradient reaching L itself. gout(i) is null for an output the sweep
// does not reach: its gradient is 0, and its term is left out rather than
// made 0 * y_i, which is NaN where y_i is (an infinite operand). d is the local dL/dx_j = y_j, for forward mode
// and second order. Listed in _core.ops() once, as logsumexp: to a user it
// is the logsumexp under the softmax.
struct Softmax {
  static constexpr const char* name = "logsumexp";
  static constexpr Kind kind = EXP_LOG;
  static constexpr const char* doc = "The logsumexp under ag.softmax, which computes its outputs.";
  static constexpr bool listed = false;
  static constexpr bool multi_output = true;
  // An infinite max (all -inf, or some +inf) has no shift: L is what
  // LogSumExp gives (the max, or NaN with a NaN operand) and y_i = exp(x_i - L),
  // 0 or NaN. The special rows take that path through the same operations as
  // the others (mm, a select), so the lane form needs no branch for them.
  // With value = false (replay, where nothing reads L) y is left as it is and
  // the log is skipped; the outputs are the same.
  template <class X, class Out> static Err f(size_t n, X x, Out out, double& y, bool value = true) {
    double m = -INFINITY, nan = 0;
    for (size_t i = 0; i < n; ++i) m = x(i) > m ? x(i) : m, nan = x(i) != x(i) ? NAN : nan;
    const bool special = std::isinf(m);
    const double mm = special ? m + nan : m;
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
      double e = vm::exp(x(i) - mm);
      out(i) = e;
      s += e;
    }
    if (value) y = special ? mm : m + vm::log(s);
    if (!special) {
      const double inv = 1.0 / s;  // one division, as PyTorch's softmax: within an ulp of e_i / s
      for (size_t i = 0; i < n; ++i) out(i) = out(i) * inv;
    }
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X x, double, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g * x(n + i));
  }
  template <class X, class G, class Acc> static void reverse(size_t n, X x, double g, G gout, Acc acc) {
    double c = 0;
    for (size_t i = 0; i < n; ++i)
      if (const double* gi = gout(i)) c += *gi * x(n + i);
    c -= g;
    for (size_t i = 0; i < n; ++i) {
      const double* gi = gout(i);
      acc(i, x(n + i) * ((gi ? *gi : 0.0) - c));
    }
  }
  template <class X, class T, class Acc>
  static void d2t(size_t n, X x, double y, const double* p, T t, double g, size_t L, Acc acc) {
    LogSumExp::d2t(n, x, y, p, t, g, L, acc);
  }
  // f over a block of w rows, as LogSumExp's: out(i) points at output i's lanes.
  static constexpr bool lane_form = true;
  template <class X, class Out>
  AG_ALWAYS_INLINE static void f_lanes(size_t n, X x, Out out, double* y, size_t w, bool value = true) {
    for (size_t r0 = 0; r0 < w; r0 += 64) {
      const size_t k = w - r0 < 64 ? w - r0 : 64;
      // Operand 0 starts the max, the NaN flag and the sum (s = 0 + e_0, as
      // f's): the same values as starting from -inf and 0, without the
      // stores of constants GCC would make rep stos (slow to start, 7% of
      // this function). n >= 1: an empty softmax is refused where it is built.
      double m[64], s[64], nan[64], mm[64];
      const double* x0 = x(0) + r0;
      for (size_t r = 0; r < k; ++r) m[r] = x0[r] > -INFINITY ? x0[r] : -INFINITY, nan[r] = x0[r] != x0[r] ? NAN : 0.0;
      for (size_t i = 1; i < n; ++i) {
        const double* xi = x(i) + r0;
        for (size_t r = 0; r < k; ++r) m[r] = xi[r] > m[r] ? xi[r] : m[r], nan[r] = xi[r] != xi[r] ? NAN : nan[r];
      }
      for (size_t r = 0; r < k; ++r) mm[r] = std::isinf(m[r]) ? m[r] + nan[r] : m[r];
      // exp_near first: x_i - max is near (exp_is_near) for every row but
      // one whose operands lie more than 708 apart, or that holds an inf or
      // NaN. If the block has such rows, exp's own path runs again over them.
      int far = 0;
      for (size_t i = 0; i < n; ++i) {
        const double* xi = x(i) + r0;
        double* oi = out(i) + r0;
        for (size_t r = 0; r < k; ++r) {
          double a = xi[r] - mm[r];
          double e = vm::exp_near(a);
          far |= !vm::exp_is_near(a);
          oi[r] = e;
          s[r] = (i ? s[r] : 0.0) + e;
        }
      }
      if (far)  // exp's own path for the rows that need it (a masked softmax has some in every block)
        for (size_t r = 0; r < k; ++r) {
          int row_far = 0;
          for (size_t i = 0; i < n; ++i) row_far |= !vm::exp_is_near(x(i)[r0 + r] - mm[r]);
          if (!row_far) continue;
          for (size_t i = 0; i < n; ++i) {
            double e = vm::exp(x(i)[r0 + r] - mm[r]);
            out(i)[r0 + r] = e;
            s[r] = (i ? s[r] : 0.0) + e;
          }
        }
      if (value)
        for (size_t r = 0; r < k; ++r) {
          double v = m[r] + vm::log(s[r]);
          y[r0 + r] = std::isinf(m[r]) ? mm[r] : v;
        }
      for (size_t r = 0; r < k; ++r) s[r] = std::isinf(m[r]) ? 1.0 : 1.0 / s[r];  // y_i * 1.0 is y_i's bits
      for (size_t i = 0; i < n; ++i) {
        double* oi = out(i) + r0;
        for (size_t r = 0; r < k; ++r) oi[r] = oi[r] * s[r];
      }
    }
  }
  // reverse over a block of w rows: gout(i) points at output i's gradient
  // lanes (null as in reverse); c (w lanes) is scratch.
  template <class X, class G, class Acc>
  AG_ALWAYS_INLINE static void reverse_lanes(size_t n, X x, const double* g, G gout, double* c, double* t, size_t w,
                                             Acc acc) {
    for (size_t r = 0; r < w; ++r) c[r] = 0;
    for (size_t i = 0; i < n; ++i) {
      const double *yi = x(n + i), *gi = gout(i);
      if (gi)
        for (size_t r = 0; r < w; ++r) c[r] += gi[r] * yi[r];
    }
    for (size_t r = 0; r < w; ++r) c[r] -= g[r];
    for (size_t i = 0; i < n; ++i) {
      const double *yi = x(n + i), *gi = gout(i);
      if (gi)
        for (size_t r = 0; r < w; ++r) t[r] = yi[r] * (gi[r] - c[r]);
      else
        for (size_t r = 0; r < w; ++r) t[r] = yi[r] * (0.0 - c[r]);
      acc(i, t);
    }
  }
};

// ----------------------------------------------------------------- the lists
// X(ENUM, Struct). Codes are grouped by arity: leaf, unary, binary, n-ary.

#define AG_UNARY_OPS(X)                                                            \
  X(NEG, Neg) X(ABS, Abs) X(RELU, Relu) X(LEAKY_RELU, LeakyRelu) X(TANH, Tanh)    \
  X(SIGMOID, Sigmoid) X(EXP, Exp) X(LOG, Log) X(SQRT, Sqrt) X(SOFTPLUS, Softplus) \
  X(SIN, Sin) X(COS, Cos)

#define AG_BINARY_OPS(X)                                                   \
  X(ADD, Add) X(SUB, Sub) X(MUL, Mul) X(DIV, Div) X(POW, Pow)             \
  X(SOFTMAX_OUT, SoftmaxOut) X(LOG_SOFTMAX_OUT, LogSoftmaxOut)

#define AG_NARY_OPS(X) X(SUM, Sum) X(MEAN, Mean) X(DOT, Dot) X(LOGSUMEXP, LogSumExp) X(SOFTMAX, Softmax)

enum Op : unsigned char {
  LEAF = 0,
#define AG_ENUM(E, S) E,
  AG_UNARY_OPS(AG_ENUM) UNARY_END,
  AG_BINARY_OPS(AG_ENUM) BINARY_END,
  AG_NARY_OPS(AG_ENUM) NUM_OPS
#undef AG_ENUM
};

// A node a user built in Python, micrograd's way: Value(data, children, op),
// its backward a Python closure assigned to ._backward. Not in the op table:
// no forward, no derivative, never replayed; its operands are slots as an
// n-ary op's are.
constexpr unsigned char CUSTOM = NUM_OPS;

inline bool is_unary(int op) { return op > LEAF && op < UNARY_END; }
inline bool is_binary(int op) { return op > UNARY_END && op < BINARY_END; }
inline bool is_nary(int op) { return op > BINARY_END && op <= CUSTOM; }

// ------------------------------------------------------------- the dispatch

enum Arity { UNARY = 1, BINARY = 2, NARY = 3 };

// Names an op's struct and arity as a type, for with_op's callback.
template <class S, Arity A> struct OpTag {
  using op = S;
  static constexpr Arity arity = A;
};

// The one switch over op codes: calls f(OpTag<Struct, arity>{}) for `op`
// and returns what f returns; for a leaf (or no op) returns R(). Every loop
// that treats ops generically (backward, replay, names) goes through here,
// so a new list line reaches all of them.
template <class R, class F> inline R with_op(int op, F&& f) {
  switch (op) {
#define AG_CASE_UNARY(E, S) \
  case E:                   \
    return f(OpTag<S, UNARY>{});
#define AG_CASE_BINARY(E, S) \
  case E:                    \
    return f(OpTag<S, BINARY>{});
#define AG_CASE_NARY(E, S) \
  case E:                  \
    return f(OpTag<S, NARY>{});
    AG_UNARY_OPS(AG_CASE_UNARY) AG_BINARY_OPS(AG_CASE_BINARY) AG_NARY_OPS(AG_CASE_NARY)
#undef AG_CASE_UNARY
#undef AG_CASE_BINARY
#undef AG_CASE_NARY
    default:
      return R();
  }
}

inline const char* op_name(int op) {  // "" for leaves
  const char* s = with_op<const char*>(op, [](auto t) { return decltype(t)::op::name; });
  return s ? s : "";
}

// How an n-ary node's nin operand slots split: slots [0, nodes) are nodes,
// the rest numbers (dot's constant ys, CONST_Y; softmax's are its own, see
// Softmax); `count` is what the op counts (dot: pairs). Eager backward and replay read operands through this.
struct NaryShape {
  uint32_t nodes;
  size_t count;
};
AG_ALWAYS_INLINE NaryShape nary_shape(int op, uint32_t nin, bool const_y) {
  if (op == SOFTMAX) return {nin / 3, size_t(nin / 3)};
  return {const_y ? nin / 2 : nin, op == DOT ? size_t(nin / 2) : size_t(nin)};
}

// Traits of an op struct beyond the common members: whether _core.ops()
// lists it (Softmax is listed as the logsumexp it is), whether it writes
// outputs besides its own value (f(n, x, out, y), f_lanes(n, x, out, y, w))
// and reads their gradients (reverse, reverse_lanes).
template <class S, class = void> struct Listed : std::true_type {};
template <class S> struct Listed<S, std::void_t<decltype(S::listed)>> : std::bool_constant<S::listed> {};
template <class S, class = void> struct MultiOutput : std::false_type {};
template <class S> struct MultiOutput<S, std::void_t<decltype(S::multi_output)>> : std::true_type {};
// Whether an op's reverse step is another node's (a softmax output's is its
// softmax node's): its own step passes nothing on, so it is skipped.
template <class S, class = void> struct FusedReverse : std::false_type {};
template <class S> struct FusedReverse<S, std::void_t<decltype(S::fused_reverse)>> : std::true_type {};
// Whether a unary op keeps a value from forward for its backward
// (f(x, p, y, kept), d_kept(x, kept), and f_near(x, p, y, kept) if it has a
// near form) where there is room for one (replay).
template <class S, class = void> struct Keeps : std::false_type {};
template <class S> struct Keeps<S, std::void_t<decltype(S::d_kept)>> : std::true_type {};
inline bool keeps(int op) {
  return with_op<bool>(op, [](auto t) { return Keeps<typename decltype(t)::op>::value; });
}
inline bool own_reverse(int op) {
  return !with_op<bool>(op, [](auto t) { return FusedReverse<typename decltype(t)::op>::value; });
}

}  // namespace ag
