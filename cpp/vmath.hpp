// exp, log and log1p written so that a loop over them vectorises.
//
// glibc's exp and log branch and read tables, so a loop calling them runs one
// element at a time, and its vector versions (libmvec) round differently from
// the scalar ones. The op table uses these instead, in eager, replay and the
// lane loops of batched replay alike: one routine, so batched rows are the
// same bits as eager ones, whatever width the compiler gives the loop.
//
// Each is straight-line code: the special cases (NaN, infinities, zero,
// subnormals, overflow) are selects, or for exp one rare branch that GCC turns
// into a select in a vector loop, and integer work is 64-bit adds, ands, ors
// and shifts, which SSE2 and AVX2 have.
// Accuracy (tests/test_vmath.py checks it against mpmath): exp is within about
// 0.5 ulp (the same double as glibc's for more than 99.8% of inputs; 0.75 ulp
// in the subnormal range), log and log1p within 0.86 ulp (fdlibm's method; a
// last-bit difference from glibc's for about 3% of inputs).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace ag {
namespace vm {

// Inlined even into a loop compiled for another instruction set (batched
// replay's target_clones), where GCC would otherwise call the baseline copy.
#if defined(__GNUC__)
#define AG_ALWAYS_INLINE __attribute__((always_inline)) inline
#define AG_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#else
#define AG_ALWAYS_INLINE inline
#define AG_ALWAYS_INLINE_LAMBDA
#endif

AG_ALWAYS_INLINE uint64_t bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
AG_ALWAYS_INLINE double from_bits(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Adding then subtracting 1.5 * 2^52 rounds a double of magnitude below 2^51
// to the nearest integer; the sum's low bits hold that integer plus 2^51.
constexpr double ROUNDER = 6755399441055744.0;  // 0x1.8p52
constexpr double TWO52 = 4503599627370496.0;     // 0x1p52

// 2^(j/128) for j in [0, 128) as a sum EXP2_HI[j] + EXP2_LO[j] (mpmath, 200 bits).
alignas(64) inline constexpr double EXP2_HI[128] = {
    1.0, 1.0054299011128027, 1.0108892860517005, 1.016378314910953,
    1.0218971486541166, 1.0274459491187637, 1.0330248790212284, 1.0386341019613787,
    1.0442737824274138, 1.0499440858006872, 1.0556451783605572, 1.061377227289262,
    1.0671404006768237, 1.0729348675259756, 1.0787607977571199, 1.0846183622133092,
    1.0905077326652577, 1.0964290818163769, 1.102382583307841, 1.1083684117236787,
    1.1143867425958924, 1.1204377524096067, 1.1265216186082418, 1.1326385195987192,
    1.1387886347566916, 1.1449721444318042, 1.1511892299529827, 1.1574400736337511,
    1.1637248587775775, 1.1700437696832502, 1.1763969916502812, 1.182784710984341,
    1.189207115002721, 1.1956643920398273, 1.202156731452703, 1.2086843236265816,
    1.215247359980469, 1.2218460329727576, 1.22848053610687, 1.2351510639369334,
    1.241857812073484, 1.2486009771892048, 1.255380757024691, 1.2621973503942507,
    1.2690509571917332, 1.275941778396392, 1.2828700160787783, 1.2898358734066657,
    1.2968395546510096, 1.3038812651919358, 1.3109612115247644, 1.318079601266064,
    1.3252366431597413, 1.3324325470831615, 1.339667524053303, 1.3469417862329458,
    1.3542555469368927, 1.3616090206382248, 1.3690024229745905, 1.3764359707545302,
    1.383909881963832, 1.3914243757719262, 1.3989796725383112, 1.4065759938190154,
    1.4142135623730951, 1.4218926021691656, 1.42961333839197, 1.4373759974489824,
    1.4451808069770467, 1.4530279958490526, 1.460917794180647, 1.4688504333369818,
    1.4768261459394993, 1.4848451658727524, 1.4929077282912648, 1.5010140696264256,
    1.5091644275934228, 1.5173590411982147, 1.5255981507445384, 1.533881997840956,
    1.5422108254079407, 1.550584877685, 1.559004400237837, 1.567469639965553,
    1.5759808451078865, 1.5845382652524937, 1.593142151342267, 1.6017927556826934,
    1.6104903319492543, 1.6192351351948637, 1.6280274218573478, 1.6368674497669644,
    1.645755478153965, 1.6546917676561943, 1.6636765803267364, 1.6727101796415966,
    1.681792830507429, 1.6909247992693053, 1.7001063537185235, 1.709337763100463,
    1.718619298122478, 1.7279512309618377, 1.7373338352737062, 1.746767386199169,
    1.7562521603732995, 1.7657884359332727, 1.7753764925265212, 1.785016611318935,
    1.7947090750031072, 1.804454167806624, 1.8142521755003989, 1.8241033854070534,
    1.8340080864093424, 1.843966568958626, 1.8539791250833855, 1.864046048397789,
    1.8741676341103, 1.8843441790323345, 1.8945759815869656, 1.9048633418176741,
    1.9152065613971474, 1.925605943636125, 1.9360617934922943, 1.9465744175792332,
    1.9571441241754002, 1.9677712232331759, 1.978456026387951, 1.9891988469672663,
};
alignas(64) inline constexpr double EXP2_LO[128] = {
    0.0, 9.499186535455032e-17, -1.5234778603368577e-17, -5.77217007319966e-17,
    5.109225028973444e-17, -4.9560741746453704e-17, 7.600838874027088e-18, 5.996273788852511e-17,
    8.551889705537965e-17, 5.592937848127003e-17, 1.759325738772092e-18, -1.1973537085365658e-17,
    -7.899853966841582e-17, -3.839668843358824e-18, -6.656660436056593e-17, 3.166152845816346e-17,
    -3.046782079812471e-17, -5.919933484449316e-17, 5.2660368715706944e-17, -8.786813845180527e-17,
    1.0410278456845571e-16, -6.201085906554179e-17, 5.165856758795457e-17, 3.237356166738e-17,
    8.912812676025408e-17, 4.6412898921700107e-17, 3.250710218863827e-17, -9.1238712311344e-17,
    3.8292048369240935e-17, -1.8477442017900047e-18, 5.554203254218079e-17, 1.542975430079076e-17,
    3.982015231465646e-17, 4.6166036704814814e-17, 6.644981499252301e-17, -4.746725945228984e-17,
    -7.712630692681488e-17, -1.0611021211402691e-16, -1.89878163130253e-17, -1.0755244344307841e-16,
    4.658027591836937e-17, -8.261810999021964e-17, -6.7113898212968784e-18, -3.0844648874738465e-17,
    2.667932131342186e-18, 9.91543024421429e-17, 1.713594918243561e-17, 8.949257530897592e-17,
    2.5382502794888315e-17, 8.647675598267871e-17, -7.181536135519454e-17, -5.4579558271491535e-17,
    -2.8587312100388614e-17, -5.101586630916744e-17, 8.927282594831732e-17, 3.224065101254679e-17,
    7.70094837980299e-17, 1.533787661270668e-18, 9.593797919118849e-17, -6.898588935871801e-17,
    -6.770511658794786e-17, -4.9061748652889893e-17, -9.614213209051323e-17, 7.034914812136422e-18,
    -9.667293313452913e-17, -1.6077828915890244e-17, -1.2031642489053655e-17, -4.2040340164675566e-17,
    -3.0237581349939873e-17, -5.779948609396106e-17, -5.600377186075216e-17, 8.465882756533628e-17,
    -3.483994556892796e-17, 1.0780086764407481e-16, 1.4192920154284036e-17, -6.413767275790235e-17,
    -1.016455327754295e-16, -4.308699472043341e-17, -1.1024941712342561e-16, 8.875226844438446e-17,
    7.949834809697621e-17, -1.4600706590689385e-17, 3.7812070533575275e-17, -1.0352061768849722e-16,
    -1.0136916471278304e-17, -1.9337717034585703e-17, -1.0094406542311964e-16, -6.054917453527784e-17,
    2.4707192569797888e-17, 2.0941334154229092e-17, -6.712955084707084e-17, 7.698325071319876e-17,
    -1.0125679913674773e-16, 9.643294303196029e-17, 5.8909926967131e-17, -5.476715964599563e-17,
    8.199010020581497e-17, -9.66967147439488e-17, -8.0237193703977e-18, -9.868779456632931e-17,
    -1.851380418263111e-17, -1.0750981861204642e-16, 3.164389299292957e-17, -1.0752290483507515e-16,
    2.960140695448873e-17, 9.461315018083268e-17, 6.429731796556572e-17, 1.5330400121031314e-17,
    1.8227458427912087e-17, -5.177222408793318e-17, -9.969531538920349e-17, -1.0159627862277083e-16,
    3.283107224245627e-17, -5.939742026949965e-17, 9.761887490727594e-17, 6.540912680620572e-17,
    -6.122763413004143e-17, -8.226593125533711e-17, 3.4034035352165297e-17, 6.533857514718279e-17,
    -1.0619946056195963e-16, -9.914963769693741e-17, 1.0332385960676326e-16, 6.811022349533877e-17,
    8.960767791036668e-17, -1.0314928011531132e-16, 4.0388753109278167e-17, 8.2051326383692e-18,
};

// e^x = 2^n 2^(j/128) e^r: x = (128 n + j) ln2/128 + r with |r| <= ln2/256
// (Cody-Waite: ln2/128's high part has 35 bits, so k * LN2_N_HI is exact), a
// degree-5 polynomial for e^r - 1 evaluated in two halves (short latency,
// which scalar replay waits on), and the table entry's low part folded in so
// that only the last addition rounds at full scale: about 0.5 ulp, as glibc's.
// exp_parts gives those pieces and u = n + 2046; exp, exp_far and exp_near
// differ only in how they apply 2^n.
struct ExpParts {
  double hi, lo, r, r2, q;
  uint64_t u;
  // 2^(j/128) e^r, in [0.99, 2): hi (1 + (e^r - 1)) + lo
  AG_ALWAYS_INLINE double p() const { return hi + (hi * r + ((hi * r2) * q + lo)); }
};
AG_ALWAYS_INLINE ExpParts exp_parts(double x) {
  constexpr double INV_LN2_N = 184.6649652337873;    // 128 / ln2
  constexpr double LN2_N_HI = 0.005415212347998022;  // ln2 / 128, 35 bits
  constexpr double LN2_N_LO = 1.2655086083325438e-13;  // ln2 / 128 - LN2_N_HI
  // k = round(x 128 / ln2) lies in the low bits of t; k + 2^20 is positive
  // for every x that exp does not send to 0 or inf, so n = floor(k / 128) is
  // a logical shift (no 64-bit arithmetic shift before AVX-512).
  double t = x * INV_LN2_N + ROUNDER;
  double k = t - ROUNDER;
  uint64_t kb = bits(t) - bits(ROUNDER) + (uint64_t(1) << 20);
  uint64_t j = kb & 127;
  double r = (x - k * LN2_N_HI) - k * LN2_N_LO;
  double r2 = r * r;
  double q = (0.5 + r * (1.0 / 6)) + r2 * (1.0 / 24 + r * (1.0 / 120));
  return {EXP2_HI[j], EXP2_LO[j], r, r2, q, (kb >> 7) - (uint64_t(1) << 13) + 2046};
}

// Whether exp_near(x) is exp(x): for x in [-708, 709], n lies in [-1022, 1023]
// and 2^n is one normal number. p 2^n is then rounded once, as exp's two
// factors round it, so the bits are the same.
AG_ALWAYS_INLINE bool exp_is_near(double x) { return x >= -708.0 && x <= 709.0; }

// exp(x) where exp_is_near(x), meaningless elsewhere (NaN included): a fifth
// fewer instructions in a vector loop than exp. Lane loops whose arguments
// are nearly always near (softmax's x_i - max) run it first, then exp again
// where an argument was not.
AG_ALWAYS_INLINE double exp_near(double x) {
  ExpParts e = exp_parts(x);
  return e.p() * from_bits((e.u - 1023) << 52);
}

// 2^n as two factors, each a normal number (u split in halves u1 + u2, each a
// biased exponent: n = (u1 - 1023) + (u2 - 1023)), so that results in the
// subnormal range round once and e^709.78 does not overflow on the way.
AG_ALWAYS_INLINE double exp_far(double x, const ExpParts& e) {
  uint64_t u1 = e.u >> 1;
  double y = (e.p() * from_bits(u1 << 52)) * from_bits((e.u - u1) << 52);
  // Beyond [-746, 710] e^x is 0 or inf, and the bits above are meaningless;
  // NaN stays NaN. A rare branch in scalar code, a select in vector code.
  if (__builtin_expect(!(x >= -746.0 && x <= 710.0), 0)) y = x > 0 ? std::numeric_limits<double>::infinity() : (x != x ? x : 0.0);
  return y;
}

// exp over the lanes of a block of rows: one formula, which GCC vectorises.
AG_ALWAYS_INLINE double exp_lanes(double x) { return exp_far(x, exp_parts(x)); }

// exp for scalar code, the same bits: for x in [-660, 709] it scales hi and
// lo by 2^n before the sum rather than the sum after it, which takes two
// multiplications off the path single-row replay waits on (6% of the 10,000-
// op graph's forward and backward). Scaling by a power of two commutes with
// rounding while the terms stay normal (|lo| >= 2^-60 where not 0, so lo 2^n
// is normal for n >= -962), so the bits are p 2^n's, exp_near's. (Where r is
// tiny, r^2's terms can be subnormal all the same: 4.4 million of 192
// million inputs compared; they are then far too small to move the sums they
// join, and no input differed.) Lane loops call exp_lanes: GCC does not
// vectorise this early return (logsumexp's lane loops ran 1.6x slower), and
// a formula that vectorises with the scaling took a multiplication by 1 back
// onto the scalar path. Exp's, sigmoid's and softplus's lane loops meet exp
// only for a block with a row outside their near forms' range (exp_near
// takes the rest), and run that block as scalar code, or both paths.
AG_ALWAYS_INLINE double exp(double x) {
  ExpParts e = exp_parts(x);
  if (__builtin_expect(!(x >= -660.0 && x <= 709.0), 0)) return exp_far(x, e);
  const double s = from_bits((e.u - 1023) << 52), sh = e.hi * s;
  return sh + (sh * e.r + ((sh * e.r2) * e.q + e.lo * s));
}

// log(m) + e ln2 + c for m in [sqrt(1/2), sqrt(2)) and a small correction c
// (fdlibm's e_log.c method: s = f / (2 + f), log(1 + f) = 2 atanh(s)).
AG_ALWAYS_INLINE double log_reduced(double m, double e, double c) {
  constexpr double LN2_HI = 6.93147180369123816490e-01;
  constexpr double LN2_LO = 1.90821492927058770002e-10;
  constexpr double LG1 = 6.666666666666735130e-01, LG2 = 3.999999999940941908e-01,
                   LG3 = 2.857142874366239149e-01, LG4 = 2.222219843214978396e-01,
                   LG5 = 1.818357216161805012e-01, LG6 = 1.531383769920937332e-01,
                   LG7 = 1.479819860511658591e-01;
  double f = m - 1.0;
  double s = f / (2.0 + f);
  double z = s * s;
  double w = z * z;
  double t1 = w * (LG2 + w * (LG4 + w * LG6));
  double t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
  double R = t2 + t1;
  double hfsq = 0.5 * f * f;
  return e * LN2_HI - ((hfsq - (s * (hfsq + R) + (e * LN2_LO + c))) - f);
}

// x = m 2^e with m in (S/2, S], S = sqrt(2) rounded to nearest (above it),
// for normal x > 0.
// Subtracting the bits of the double after S/2 from x's moves every x whose
// mantissa lies above S into the next binade: the top 12 bits of the
// difference are e (mod 2^12) and x less them is m. Integer adds rather than
// a compare and a select on the mantissa: the same m and e, and 1.5% off a
// 1,000-row batch of the 1,000-op graph.
AG_ALWAYS_INLINE void split(double x, double& m, double& e) {
  constexpr uint64_t OFF = 0x3FE6A09E667F3BCEull;  // bits(S / 2) + 1
  uint64_t d = bits(x) - OFF;
  m = from_bits(bits(x) - (d & (uint64_t(0xFFF) << 52)));
  // e + 2048 in [0, 4096) as a double, through the 2^52 trick (no int64 ->
  // double conversion, nor a 64-bit arithmetic shift, before AVX-512).
  e = from_bits(((d + (uint64_t(2048) << 52)) >> 52) | bits(TWO52)) - (TWO52 + 2048.0);
}

// Natural logarithm; -inf at 0, NaN below, as glibc's.
AG_ALWAYS_INLINE double log(double x) {
  constexpr double INF = std::numeric_limits<double>::infinity();
  bool sub = x < 2.2250738585072014e-308;  // subnormals are scaled into the normal range
  double m, e;
  split(sub ? x * TWO52 : x, m, e);
  double y = log_reduced(m, sub ? e - 52.0 : e, 0.0);
  // Zero, negatives, infinity and NaN: the bits above are meaningless there.
  // (A select, not exp's branch: GCC does not vectorise a loop holding two
  // such branches, as softplus's log1p(exp(x)) would.)
  double sp = x == 0 ? -INF : (x == INF ? x : std::numeric_limits<double>::quiet_NaN());
  return !(x > 0 && x < INF) ? sp : y;
}

// log(1 + x), accurate for small x: u = 1 + x is rounded, and c = (x - (u - 1)) / u
// adds back, to first order, what that rounding lost. u is never subnormal.
// log1p_near is log1p for finite x > -1 other than 0 (the special cases
// log1p adds as selects), meaningless elsewhere.
AG_ALWAYS_INLINE double log1p_near(double x) {
  double u = 1.0 + x;
  double c = (x - (u - 1.0)) / u;
  double m, e;
  split(u, m, e);
  return log_reduced(m, e, c);
}

AG_ALWAYS_INLINE double log1p(double x) {
  constexpr double INF = std::numeric_limits<double>::infinity();
  double y = log1p_near(x);
  double sp = x == -1.0 ? -INF : (x == INF ? x : std::numeric_limits<double>::quiet_NaN());
  y = !(x > -1.0 && x < INF) ? sp : y;  // a select: see log
  return x == 0 ? x : y;  // keeps -0.0
}

}  // namespace vm
}  // namespace ag
