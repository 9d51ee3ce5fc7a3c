// The op table: every operation's forward value, domain check, local
// derivative and display name, side by side, one struct per op.
//
// Adding an op: write its struct here and add one line to the matching list
// at the bottom. Eager building (value.cpp, nary.cpp), the backward sweep
// (graph.cpp) and replay (compile.cpp) are generic over these lists.
//
// Errors follow Python's float and math module: the forward reports what
// went wrong and the caller raises ZeroDivisionError, ValueError or
// OverflowError before anything is allocated, so a failed op changes nothing.
#pragma once
#include <cmath>
#include <cstddef>

namespace ag {

enum Err { OK = 0, ERR_DOMAIN, ERR_ZERODIV, ERR_OVERFLOW };

// An overflow is an infinite result from finite inputs (math.exp(1000)).
inline Err overflow_if(double y, double x) {
  return (std::isinf(y) && std::isfinite(x)) ? ERR_OVERFLOW : OK;
}

// ---------------------------------------------------------------- unary ops
// f(x, p, y) computes y; d(x, y, p) is dy/dx. p is the node's parameter.

struct Neg {
  static constexpr const char* name = "neg";
  static Err f(double x, double, double& y) { y = -x; return OK; }
  static double d(double, double, double) { return -1.0; }
};

struct Abs {
  static constexpr const char* name = "abs";
  static Err f(double x, double, double& y) { y = std::fabs(x); return OK; }
  static double d(double x, double, double) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }
};

struct Relu {
  static constexpr const char* name = "relu";
  static Err f(double x, double, double& y) { y = x > 0 || std::isnan(x) ? x : 0.0; return OK; }
  static double d(double x, double, double) { return x > 0 ? 1.0 : 0.0; }
};

struct LeakyRelu {  // p = negative slope
  static constexpr const char* name = "leaky_relu";
  static Err f(double x, double p, double& y) { y = x > 0 ? x : p * x; return OK; }
  static double d(double x, double, double p) { return x > 0 ? 1.0 : p; }
};

struct Tanh {
  static constexpr const char* name = "tanh";
  static Err f(double x, double, double& y) { y = std::tanh(x); return OK; }
  static double d(double, double y, double) { return 1.0 - y * y; }
};

struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static Err f(double x, double, double& y) {
    // Two branches so that exp never overflows.
    if (x >= 0) {
      y = 1.0 / (1.0 + std::exp(-x));
    } else {
      double e = std::exp(x);
      y = e / (1.0 + e);
    }
    return OK;
  }
  static double d(double, double y, double) { return y * (1.0 - y); }
};

struct Exp {
  static constexpr const char* name = "exp";
  static Err f(double x, double, double& y) { y = std::exp(x); return overflow_if(y, x); }
  static double d(double, double y, double) { return y; }
};

struct Log {
  static constexpr const char* name = "log";
  static Err f(double x, double, double& y) {
    if (x <= 0) return ERR_DOMAIN;  // NaN passes through, as math.log(nan)
    y = std::log(x);
    return OK;
  }
  static double d(double x, double, double) { return 1.0 / x; }
};

struct Sqrt {
  static constexpr const char* name = "sqrt";
  static Err f(double x, double, double& y) {
    if (x < 0) return ERR_DOMAIN;
    y = std::sqrt(x);
    return OK;
  }
  static double d(double, double y, double) { return 0.5 / y; }
};

struct Softplus {  // log(1 + e^x), stable for large |x|
  static constexpr const char* name = "softplus";
  static Err f(double x, double, double& y) {
    y = (x > 0 ? x : 0.0) + std::log1p(std::exp(-std::fabs(x)));
    return OK;
  }
  static double d(double x, double, double) {
    double y;
    Sigmoid::f(x, 0, y);
    return y;
  }
};

struct Sin {
  static constexpr const char* name = "sin";
  static Err f(double x, double, double& y) {
    if (std::isinf(x)) return ERR_DOMAIN;  // math.sin(inf) raises
    y = std::sin(x);
    return OK;
  }
  static double d(double x, double, double) { return std::cos(x); }
};

struct Cos {
  static constexpr const char* name = "cos";
  static Err f(double x, double, double& y) {
    if (std::isinf(x)) return ERR_DOMAIN;
    y = std::cos(x);
    return OK;
  }
  static double d(double x, double, double) { return -std::sin(x); }
};

// --------------------------------------------------------------- binary ops
// f(a, b, y) computes y; d(a, b, y, da, db) gives dy/da and dy/db. Either
// operand may be a constant (the node's CONST_A / CONST_B flag); its
// derivative is then computed and dropped.

struct Add {
  static constexpr const char* name = "+";
  static Err f(double a, double b, double& y) { y = a + b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = 1.0; }
};

struct Sub {
  static constexpr const char* name = "-";
  static Err f(double a, double b, double& y) { y = a - b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = -1.0; }
};

struct Mul {
  static constexpr const char* name = "*";
  static Err f(double a, double b, double& y) { y = a * b; return OK; }
  static void d(double a, double b, double, double& da, double& db) { da = b; db = a; }
};

struct Div {
  static constexpr const char* name = "/";
  static Err f(double a, double b, double& y) {
    if (b == 0) return ERR_ZERODIV;
    y = a / b;
    return OK;
  }
  static void d(double, double b, double y, double& da, double& db) {
    da = 1.0 / b;
    db = -y / b;
  }
};

struct Pow {
  static constexpr const char* name = "**";
  static Err f(double a, double b, double& y) {
    // As Python's float: 0.0 ** -1 and (-8.0) ** 0.5 raise; infinities do not.
    if (a == 0 && b < 0 && std::isfinite(b)) return ERR_ZERODIV;
    if (a < 0 && std::isfinite(a) && std::isfinite(b) && b != std::floor(b)) return ERR_DOMAIN;
    y = std::pow(a, b);
    return (std::isinf(y) && std::isfinite(a) && std::isfinite(b)) ? ERR_OVERFLOW : OK;
  }
  static void d(double a, double b, double y, double& da, double& db) {
    da = b == 0 ? 0.0 : b * std::pow(a, b - 1);
    // d/db a^b = a^b log a; at a == 0 PyTorch takes the limit 0 (for b >= 0).
    db = a == 0 ? 0.0 : y * std::log(a);
  }
};

// softmax(x)_i = exp(x_i - L) with L = logsumexp(x), one such node per output.
struct SoftmaxOut {
  static constexpr const char* name = "softmax";
  static Err f(double a, double b, double& y) { y = std::exp(a - b); return OK; }
  static void d(double, double, double y, double& da, double& db) { da = y; db = -y; }
};

// log_softmax(x)_i = x_i - L.
struct LogSoftmaxOut {
  static constexpr const char* name = "log_softmax";
  static Err f(double a, double b, double& y) { y = a - b; return OK; }
  static void d(double, double, double, double& da, double& db) { da = 1.0; db = -1.0; }
};

// ---------------------------------------------------------------- n-ary ops
// x(i) reads operand i; n counts operands (for Dot: pairs). d calls
// acc(i, g * dy/dx_i) for each operand; Dot's second operand list is i >= n.

struct Sum {  // p = the sum of any numbers folded in
  static constexpr const char* name = "sum";
  template <class X> static Err f(size_t n, X x, double p, double& y) {
    double s = p;
    for (size_t i = 0; i < n; ++i) s += x(i);
    y = s;
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X, double, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g);
  }
};

struct Mean {
  static constexpr const char* name = "mean";
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
};

struct Dot {  // sum_i x(i) * x(n + i)
  static constexpr const char* name = "dot";
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
};

struct LogSumExp {  // max-shifted so that no exp overflows
  static constexpr const char* name = "logsumexp";
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
    for (size_t i = 0; i < n; ++i) s += std::exp(x(i) - m);
    y = m + std::log(s);
    return OK;
  }
  template <class X, class Acc> static void d(size_t n, X x, double y, double g, Acc acc) {
    for (size_t i = 0; i < n; ++i) acc(i, g * std::exp(x(i) - y));
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

#define AG_NARY_OPS(X) X(SUM, Sum) X(MEAN, Mean) X(DOT, Dot) X(LOGSUMEXP, LogSumExp)

enum Op : unsigned char {
  LEAF = 0,
#define AG_ENUM(E, S) E,
  AG_UNARY_OPS(AG_ENUM) UNARY_END,
  AG_BINARY_OPS(AG_ENUM) BINARY_END,
  AG_NARY_OPS(AG_ENUM) NUM_OPS
#undef AG_ENUM
};

inline bool is_unary(int op) { return op > LEAF && op < UNARY_END; }
inline bool is_binary(int op) { return op > UNARY_END && op < BINARY_END; }
inline bool is_nary(int op) { return op > BINARY_END && op < NUM_OPS; }

const char* op_name(int op);  // "" for leaves

}  // namespace ag
