/* The floor for compiled replay: the many-scalar-ops graph of
 * docs/architecture.md as the best hand-written C tape we know for the same
 * work, built and replayed with no Python at all.
 *
 *   cc -O3 -o tape tape.c -lm && ./tape 10000 40 3
 *
 * "The same work" is what ag.compile(output) then forward() + backward() do:
 *   - the tape holds only what the output depends on (of the 20,100 nodes
 *     built for 10,000 ops, 17,512 remain), in the engine's own order: the
 *     build step below runs the engine's two-pass traversal (graph.hpp,
 *     count_consumers and consumers_first) over the graph the engine builds
 *     (a softmax is a hidden node and one node per output), so every node
 *     gets the slot the engine gives it;
 *   - the same formulas (cpp/ops.hpp), with glibc's exp and log1p where the
 *     engine has its own (cpp/vmath.hpp): values agree to a few ulps.
 * What makes it the best C we know rather than a transcription of the engine:
 *   - a softmax is one record: one max, four exps, one sum, one division
 *     and four products forward (no logsumexp: nothing here reads it); backward,
 *     dx_j = y_j (g_j - sum_i g_i y_i) from its outputs' values and
 *     gradients, no exp. Its output nodes are slots, not records;
 *   - nothing is recomputed: softplus keeps sigmoid(x), made from the
 *     exp(-|x|) its forward computes anyway, for its backward;
 *   - no generality: four fixed-arity record kinds in one array of structs,
 *     one switch per record, flat value and gradient arrays, no checks for
 *     infinities, NaNs or failed ops (this graph has none);
 *   - a sum is a + b + c + d.
 *
 * Usage: tape [ops [reps [warmup [dump]]]]. Prints
 *   1. records, nodes (leaves included, as CompiledGraph.num_nodes counts
 *      them), the output value;
 *   2. ns per forward + backward for each of the `reps` timed runs, after
 *      `warmup` untimed ones;
 * and with dump = 1, in the order of the benchmark's Python list of nodes
 * (the hidden softmax nodes excluded; "nan" for a node the output does not
 * depend on),
 *   3. every node's value;
 *   4. every node's d(output)/d(node). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------- the graph, as built */

enum { LEAF, SOFTPLUS, SUM4, MUL, SM4, SMOUT };

static int *gop, (*gin)[4], *gnin, ng;  /* graph nodes in creation order */

static int node(int o, int n, int a, int b, int c, int d) {
  gop[ng] = o;
  gnin[ng] = n;
  gin[ng][0] = a; gin[ng][1] = b; gin[ng][2] = c; gin[ng][3] = d;
  return ng++;
}

/* ------------------------------------------------------------ the tape */

typedef struct {
  int op;
  int out;     /* its slot in val and grad (a softmax: none) */
  int in[4];   /* operand slots */
  int keep[4]; /* a softmax: its four outputs' slots (their values and
                  gradients); softplus: the slot of its kept sigmoid(x) */
} Rec;

static Rec *tape; /* forward order; backward runs it in reverse */
static int ntape;
static double *val, *grad;
static int nslots, root;

static void forward(void) {
  double *v = val;
  for (const Rec *t = tape, *end = tape + ntape; t < end; ++t) {
    switch (t->op) {
      case SOFTPLUS: {
        double x = v[t->in[0]];
        double e = exp(-fabs(x)); /* exp(-x) for x >= 0, exp(x) below: sigmoid's two branches */
        v[t->out] = (x > 0 ? x : 0.0) + log1p(e);
        v[t->keep[0]] = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        break;
      }
      case SUM4: v[t->out] = v[t->in[0]] + v[t->in[1]] + v[t->in[2]] + v[t->in[3]]; break;
      case MUL: v[t->out] = v[t->in[0]] * v[t->in[1]]; break;
      case SM4: {
        double x0 = v[t->in[0]], x1 = v[t->in[1]], x2 = v[t->in[2]], x3 = v[t->in[3]];
        double m = x0;
        m = x1 > m ? x1 : m;
        m = x2 > m ? x2 : m;
        m = x3 > m ? x3 : m;
        double e0 = exp(x0 - m), e1 = exp(x1 - m), e2 = exp(x2 - m), e3 = exp(x3 - m);
        double s = e0 + e1 + e2 + e3;
        double inv = 1.0 / s;
        v[t->keep[0]] = e0 * inv;
        v[t->keep[1]] = e1 * inv;
        v[t->keep[2]] = e2 * inv;
        v[t->keep[3]] = e3 * inv;
        break;
      }
    }
  }
}

static void backward(void) {
  double *g = grad;
  const double *v = val;
  memset(g, 0, nslots * sizeof *g);
  g[root] = 1.0;
  for (const Rec *t = tape + ntape; t-- > tape;) {
    switch (t->op) {
      case SOFTPLUS: g[t->in[0]] += g[t->out] * v[t->keep[0]]; break;
      case SUM4: {
        const double gk = g[t->out];
        g[t->in[0]] += gk;
        g[t->in[1]] += gk;
        g[t->in[2]] += gk;
        g[t->in[3]] += gk;
        break;
      }
      case MUL: {
        const double gk = g[t->out];
        g[t->in[0]] += gk * v[t->in[1]];
        g[t->in[1]] += gk * v[t->in[0]];
        break;
      }
      case SM4: {
        const double y0 = v[t->keep[0]], y1 = v[t->keep[1]], y2 = v[t->keep[2]], y3 = v[t->keep[3]];
        const double g0 = g[t->keep[0]], g1 = g[t->keep[1]], g2 = g[t->keep[2]], g3 = g[t->keep[3]];
        const double c = g0 * y0 + g1 * y1 + g2 * y2 + g3 * y3;
        g[t->in[0]] += y0 * (g0 - c);
        g[t->in[1]] += y1 * (g1 - c);
        g[t->in[2]] += y2 * (g2 - c);
        g[t->in[3]] += y3 * (g3 - c);
        break;
      }
    }
  }
}

/* ------------------------------------------- the engine's traversal order */

/* graph.hpp's count_consumers then consumers_first from one root, over node
 * indices: calls emit order into `emitted` (roots first, leaves last). */
static int traverse(int r, int *emitted) {
  int *pending = calloc(ng, sizeof *pending), *seen = calloc(ng, sizeof *seen);
  int *stack = malloc(ng * sizeof *stack), sp = 0, ne = 0;
  seen[r] = 1;
  stack[sp++] = r;
  while (sp) {
    int n = stack[--sp];
    while (n >= 0) {
      int next = -1;
      for (int j = 0; j < gnin[n]; ++j) {
        int in = gin[n][j];
        if (seen[in]) { ++pending[in]; continue; }
        seen[in] = 1;
        pending[in] = 1;
        if (next >= 0) stack[sp++] = next;
        next = in;
      }
      n = next;
    }
  }
  stack[sp++] = r;
  while (sp) {
    int n = stack[--sp];
    while (n >= 0) {
      emitted[ne++] = n;
      int next = -1;
      for (int j = 0; j < gnin[n]; ++j) {
        int in = gin[n][j];
        if (--pending[in] != 0) continue;
        if (next >= 0) stack[sp++] = next;
        next = in;
      }
      n = next;
    }
  }
  free(pending); free(seen); free(stack);
  return ne;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  int ops = argc > 1 ? atoi(argv[1]) : 10000, reps = argc > 2 ? atoi(argv[2]) : 40;
  int warmup = argc > 3 ? atoi(argv[3]) : 3, dump = argc > 4 ? atoi(argv[4]) : 0;
  if (ops < 4 || reps < 1 || warmup < 0) return 2;

  /* 1. The graph as the engine builds it. `list` is the benchmark's Python
   * list of nodes: a softmax's hidden node is in the graph but not the list. */
  int cap = 100 + 2 * ops + 16;
  gop = malloc(cap * sizeof *gop); gin = malloc(cap * sizeof *gin); gnin = malloc(cap * sizeof *gnin);
  int *list = malloc(cap * sizeof *list), nl = 0;
  for (int i = 0; i < 100; ++i) list[nl++] = node(LEAF, 0, 0, 0, 0, 0);
  for (int k = 0; k < ops; ++k) {
    int *t = list + nl;
    switch (k % 4) {
      case 0: list[nl++] = node(SOFTPLUS, 1, t[-10], 0, 0, 0); break;
      case 1: list[nl++] = node(SUM4, 4, t[-30], t[-25], t[-20], t[-15]); break;
      case 2: list[nl++] = node(MUL, 2, t[-20], t[-10], 0, 0); break;
      case 3: {
        int L = node(SM4, 4, t[-4], t[-3], t[-2], t[-1]);
        int o[4];
        for (int j = 0; j < 4; ++j) o[j] = node(SMOUT, 2, t[-4 + j], L, 0, 0);
        for (int j = 0; j < 4; ++j) list[nl++] = o[j];
        break;
      }
    }
  }

  /* 2. Compile: what the output depends on, in the engine's order (leaves
   * first, then the reverse of the backward sweep), slot = position. */
  int *emitted = malloc(ng * sizeof *emitted);
  int ne = traverse(list[nl - 1], emitted);
  int *slot = malloc(ng * sizeof *slot), N = 0;
  for (int i = 0; i < ng; ++i) slot[i] = -1;
  for (int i = ne; i-- > 0;)
    if (gop[emitted[i]] == LEAF) slot[emitted[i]] = N++;
  for (int i = ne; i-- > 0;)
    if (gop[emitted[i]] != LEAF) slot[emitted[i]] = N++;
  nslots = N;
  root = slot[list[nl - 1]];
  /* Kept values get slots past the nodes: a softplus's sigmoid, and the
   * value of a softmax output the output does not depend on. */
  tape = malloc(ne * sizeof *tape);
  ntape = 0;
  for (int i = ne; i-- > 0;) {
    int n = emitted[i];
    if (gop[n] == LEAF || gop[n] == SMOUT) continue;
    Rec t = {gop[n], slot[n], {0, 0, 0, 0}, {0, 0, 0, 0}};
    for (int j = 0; j < gnin[n]; ++j) t.in[j] = slot[gin[n][j]];
    if (t.op == SOFTPLUS) t.keep[0] = nslots++;
    if (t.op == SM4)
      for (int j = 0; j < 4; ++j) { /* its outputs are the next four nodes */
        int o = n + 1 + j;
        t.keep[j] = slot[o] >= 0 ? slot[o] : nslots++;
      }
    tape[ntape++] = t;
  }
  val = calloc(nslots, sizeof *val);
  grad = calloc(nslots, sizeof *grad);
  for (int i = 0; i < 100; ++i)
    if (slot[i] >= 0) val[slot[i]] = 0.01 * i;

  /* 3. Replay. */
  double *times = malloc(reps * sizeof *times);
  for (int r = 0; r < warmup + reps; ++r) {
    double a = now_ns();
    forward();
    backward();
    double b = now_ns();
    if (r >= warmup) times[r - warmup] = b - a;
  }
  printf("%d %d %.17g\n", ntape, N, val[root]);
  for (int r = 0; r < reps; ++r) printf("%s%.0f", r ? " " : "", times[r]);
  printf("\n");
  if (dump) {
    for (int pass = 0; pass < 2; ++pass) {
      const double *a = pass ? grad : val;
      for (int i = 0; i < nl; ++i) {
        int s = slot[list[i]];
        if (s >= 0) printf("%s%.17g", i ? " " : "", a[s]);
        else printf("%snan", i ? " " : "");
      }
      printf("\n");
    }
  }
  qsort(times, reps, sizeof *times, cmp);
  fprintf(stderr, "median %.0f ns\n", times[reps / 2]);
  return 0;
}
