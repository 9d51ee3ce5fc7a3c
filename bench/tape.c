/* The floor for compiled replay: the many-scalar-ops graph of
 * docs/architecture.md as a hand-written C tape (structure of arrays, one switch
 * per node), built and replayed with no Python at all.
 *
 *   cc -O2 -o tape tape.c -lm && ./tape 10000 200
 *
 * prints: nodes, output value, median ns per forward+backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { LEAF, SOFTPLUS, SUM4, MUL, LSE4, SMOUT };

static int *op, (*in)[4];
static double *val, *grad;
static int n;

static int add(int o, int a, int b, int c, int d) {
  op[n] = o;
  in[n][0] = a; in[n][1] = b; in[n][2] = c; in[n][3] = d;
  return n++;
}

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

static void forward(void) {
  for (int k = 0; k < n; ++k) {
    int *i = in[k];
    switch (op[k]) {
      case SOFTPLUS: {
        double x = val[i[0]];
        val[k] = (x > 0 ? x : 0.0) + log1p(exp(-fabs(x)));
        break;
      }
      case SUM4: val[k] = val[i[0]] + val[i[1]] + val[i[2]] + val[i[3]]; break;
      case MUL: val[k] = val[i[0]] * val[i[1]]; break;
      case LSE4: {
        double m = val[i[0]];
        for (int j = 1; j < 4; ++j) m = val[i[j]] > m ? val[i[j]] : m;
        double s = 0;
        for (int j = 0; j < 4; ++j) s += exp(val[i[j]] - m);
        val[k] = m + log(s);
        break;
      }
      case SMOUT: val[k] = exp(val[i[0]] - val[i[1]]); break;
      default: break;
    }
  }
}

static void backward(void) {
  for (int k = 0; k < n; ++k) grad[k] = 0.0;
  grad[n - 1] = 1.0;
  for (int k = n - 1; k >= 0; --k) {
    int *i = in[k];
    double g = grad[k];
    switch (op[k]) {
      case SOFTPLUS: grad[i[0]] += g * sigmoid(val[i[0]]); break;
      case SUM4: for (int j = 0; j < 4; ++j) grad[i[j]] += g; break;
      case MUL: grad[i[0]] += g * val[i[1]]; grad[i[1]] += g * val[i[0]]; break;
      case LSE4: for (int j = 0; j < 4; ++j) grad[i[j]] += g * exp(val[i[j]] - val[k]); break;
      case SMOUT: grad[i[0]] += g * val[k]; grad[i[1]] -= g * val[k]; break;
      default: break;
    }
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int ops = argc > 1 ? atoi(argv[1]) : 10000, reps = argc > 2 ? atoi(argv[2]) : 200;
  int cap = 100 + 2 * ops + 16;
  op = malloc(cap * sizeof *op); in = malloc(cap * sizeof *in);
  val = malloc(cap * sizeof *val); grad = malloc(cap * sizeof *grad);
  /* `nodes` is the Python list of the benchmark: the hidden logsumexp of each
   * softmax is on the tape but not in the list. */
  int *nodes = malloc(cap * sizeof *nodes), nn = 0;
  for (int i = 0; i < 100; ++i) { val[n] = 0.01 * i; nodes[nn++] = add(LEAF, 0, 0, 0, 0); }
  for (int k = 0; k < ops; ++k) {
    int *t = nodes + nn;
    switch (k % 4) {
      case 0: nodes[nn++] = add(SOFTPLUS, t[-10], 0, 0, 0); break;
      case 1: nodes[nn++] = add(SUM4, t[-30], t[-25], t[-20], t[-15]); break;
      case 2: nodes[nn++] = add(MUL, t[-20], t[-10], 0, 0); break;
      case 3: {
        int L = add(LSE4, t[-4], t[-3], t[-2], t[-1]);
        int o[4];
        for (int j = 0; j < 4; ++j) o[j] = add(SMOUT, t[-4 + j], L, 0, 0);
        for (int j = 0; j < 4; ++j) nodes[nn++] = o[j];
        break;
      }
    }
  }
  /* The output must be the last tape entry for the seed above. */
  double *times = malloc(reps * sizeof *times);
  for (int r = 0; r < reps; ++r) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    forward();
    backward();
    clock_gettime(CLOCK_MONOTONIC, &b);
    times[r] = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  }
  qsort(times, reps, sizeof *times, cmp);
  printf("%d %.17g %.1f\n", nn, val[n - 1], times[reps / 2]);
  return 0;
}
