// exp, log and log1p for the op table, written so that the compiler can
// vectorise a loop that calls them: no branches (selects only), no calls, no
// tables, only double and 64-bit integer adds, multiplies and shifts.
//
// Why not the C library's: its exp and log are scalar calls, and they decide
// the speed of batched replay. The op table uses these in every path (eager,
// replay, batched), so that a row of a batch is bit-identical to the eager
// engine whatever the vector width: the same operations in the same order
// give the same bits in a vector lane as in a scalar register (the build
// turns off floating-point contraction, so no path gets a fused multiply-add
// the other lacks). Both are within about 1 ulp of the correctly rounded
// result (tests/test_engine_ops.py compares with Python's math module).
#pragma once
#include <cstdint>
#include <cstring>

namespace ag {
namespace vm {

inline uint64_t bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline double from_bits(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// ln 2 split so that n * LN2_HI is exact for |n| < 2**21 (fdlibm's split).
constexpr double LN2_HI = 6.93147180369123816490e-01;
constexpr double LN2_LO = 1.90821492927058770002e-10;
// Adding this rounds a double of magnitude < 2**51 to an integer, which the
// low bits of the sum then hold.
constexpr double ROUND = 0x1.8p52;

// 2**n for an integer-valued n in [-1022, 1023].
inline double pow2(double n) { return from_bits((bits(n + ROUND) + 1023) << 52); }

// e**x: x = n ln2 + r with |r| <= ln2 / 2, r = hi - lo with hi exact;
// e**r - 1 - r by its Taylor series to r**13 (error below 2**-60), and
// 1 + hi added without rounding error, so that only the last addition
// rounds: the result is the correctly rounded one but within a small fraction
// of an ulp of a tie. Then scaled by 2**n in two halves so that every n from
// underflow to overflow stays in range.
inline double exp(double x) {
  double xc = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);  // NaN passes
  double n = (xc * 1.4426950408889634 + ROUND) - ROUND;
  double hi = xc - n * LN2_HI, lo = n * LN2_LO;
  double r = hi - lo;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  double q = (r * r) * p;
  double s = 1.0 + hi;
  double y = s + (((1.0 - s) + hi) + (q - lo));
  double n1 = (n * 0.5 + ROUND) - ROUND;
  return y * pow2(n1) * pow2(n - n1);
}

// log x for x > 0 (fdlibm's __ieee754_log, as selects): x = 2**k m with m
// in [sqrt(2)/2, sqrt(2)), log m = 2 atanh(f / (2 + f)), f = m - 1.
// log(0) = -inf, log(+inf) = inf, NaN for x < 0 or NaN.
inline double log(double x) {
  bool tiny = x < 2.2250738585072014e-308;  // subnormal: scale into the normal range
  double xs = tiny ? x * 18014398509481984.0 : x;  // 2**54
  uint64_t u = bits(xs);
  // The biased exponent as a double, through the bits of 2**52 + e.
  double e = from_bits(0x4330000000000000ULL | (u >> 52)) - (4503599627370496.0 + 1023.0);
  double m = from_bits((u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  bool big = m > 1.4142135623730951;
  m = big ? m * 0.5 : m;
  double k = (big ? e + 1.0 : e) - (tiny ? 54.0 : 0.0);
  double f = m - 1.0;
  double s = f / (2.0 + f);
  double z = s * s, w = z * z;
  double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  double t2 = z * (6.666666666666735130e-01 +
                   w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  double R = t2 + t1;
  double hfsq = 0.5 * f * f;
  double y = k * LN2_HI - ((hfsq - (s * (hfsq + R) + k * LN2_LO)) - f);
  y = x == 0 ? -__builtin_inf() : y;
  y = x == __builtin_inf() ? x : y;
  return x < 0 || x != x ? __builtin_nan("") : y;
}

// log(1 + x), accurate for small x: log(w) + c / w, w = 1 + x rounded and c
// its rounding error (exact, by Fast2Sum with the larger operand first).
inline double log1p(double x) {
  double w = 1.0 + x;
  double c = (x > 1.0 || x < -1.0) ? (x - w) + 1.0 : (1.0 - w) + x;
  double y = log(w) + c / w;
  y = w == 1.0 ? x : y;  // |x| below half an ulp of 1, where log1p(x) = x
  y = x == -1.0 ? -__builtin_inf() : y;
  return x == __builtin_inf() ? x : y;
}

}  // namespace vm
}  // namespace ag
