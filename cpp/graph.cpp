#include "graph.hpp"

#include <cmath>
#include <cstdint>
#include <exception>

namespace ag {

// ------------------------------------------------------------------ release

void release(Node* n) {
  // Nodes whose count reached zero wait on a stack threaded through their own
  // next_dying field, so a graph of any shape is released with no allocation
  // and no recursion (a chain never holds more than one node on the stack).
  n->next_dying = nullptr;
  Node* dying = n;
  while (dying) {
    Node* x = dying;
    dying = x->next_dying;
    if (x->op == SOFTMAX_OUT) {  // its softmax node outlives it: unhook it there
      Node*& back = softmax_output_slot(x->in[1], static_cast<uint32_t>(x->aux));
      if (back == x) back = nullptr;
    }
    for_each_input(x, [&](Node* in) {
      if (--in->refs == 0) {
        in->next_dying = dying;
        dying = in;
      }
    });
    if (is_nary(x->op)) pool::free_slots(x->args, x->nin);
    pool::free_node(x);
  }
}

// ---------------------------------------------------------------- traversal

static uint32_t epoch = 0;

uint32_t next_epoch() {
  if (++epoch == 0) {  // wrapped: clear every stamp so old marks cannot match
    pool::reset_stamps();
    epoch = 1;
  }
  return epoch;
}

uint32_t current_epoch() { return epoch; }
void set_epoch(uint32_t e) { epoch = e; }

std::vector<Node*>& traversal_stack() {
  // Never destroyed (see pool.cpp's chunks): no static destructor at exit.
  static std::vector<Node*>& stack = *new std::vector<Node*>;
  return stack;
}

bool reserve_traversal() {
  try {
    traversal_stack().reserve(pool::live() + 1);
    return true;
  } catch (const std::exception&) {  // bad_alloc, or length_error past max_size
    return false;
  }
}

// ----------------------------------------------------------------- backward

static inline void give(Node* in, double g) {
  if (in->flags & REQUIRES_GRAD) in->grad += g;
}

bool (*python_step)(Node* n) = nullptr;

static bool traversing = false;
bool in_traversal() { return traversing; }
void set_traversing(bool on) { traversing = on; }

bool backward_step(Node* n, bool in_sweep) {
  if (n->op == CUSTOM) return python_step(n);
  const double g = n->grad;
  with_op<void>(n->op, [&](auto t) {
    using S = typename decltype(t)::op;
    if constexpr (FusedReverse<S>::value) {
      // its softmax node's step reads its gradient
    } else if constexpr (MultiOutput<S>::value) {
      const Slot* s = n->args;
      const NaryShape sh = nary_shape(n);
      const uint32_t k = sh.nodes;
      const uint32_t e = current_epoch();
      S::reverse(
          k, [&](size_t i) { return slot_value(s, sh, i); }, g,
          [&](size_t i) -> const double* {
            const Node* o = s[2 * k + i].node;
            return o && (!in_sweep || o->stamp == e) ? &o->grad : nullptr;
          },
          [&](size_t i, double gi) { give(s[i].node, gi); });
    } else if constexpr (t.arity == UNARY) {
      give(n->in[0], g * S::d(n->in[0]->data, n->data, n->aux));
    } else if constexpr (t.arity == BINARY) {
      // A null input is a constant operand, stored in aux.
      double a = (n->flags & CONST_A) ? n->aux : n->in[0]->data;
      double b = (n->flags & CONST_B) ? n->aux : n->in[1]->data;
      double da, db;
      S::d(a, b, n->data, da, db);
      if (n->in[0]) give(n->in[0], g * da);
      if (n->in[1]) give(n->in[1], g * db);
    } else {
      const Slot* s = n->args;
      NaryShape sh = nary_shape(n);
      S::d(sh.count, [&](size_t i) { return slot_value(s, sh, i); }, n->data, g, [&](size_t i, double gi) {
        if (i < sh.nodes) give(s[i].node, gi);
      });
    }
  });
  return true;
}

Anomaly backward(Node* root, double seed, bool check, bool keep_intermediate) {
  if (root->op == LEAF) {
    root->grad += seed;
    return {};
  }
  // Only non-leaf nodes that require grad take part: leaves just receive.
  auto descend = [](Node* in) { return in->op != LEAF && (in->flags & REQUIRES_GRAD); };
  Traversing busy;
  count_consumers(&root, 1, descend, [&](Node* n) {
    if (!keep_intermediate) n->grad = 0.0;
  });
  root->grad = seed;
  Anomaly bad;
  // After a Python backward raised, the sweep still visits every node (so
  // the traversal ends in order) but applies no more steps, as torch stops.
  if (!check) {
    consumers_first(&root, 1, descend, [&](Node* n) {
      if (!bad.python_error && !backward_step(n)) bad.python_error = true;
    });
    return bad;
  }
  consumers_first(&root, 1, descend, [&](Node* n) {
    if (bad.python_error) return;
    if (!backward_step(n)) {
      bad.python_error = true;
      return;
    }
    if (bad.node || !own_reverse(n->op)) return;  // a step that passes nothing on cannot be the culprit
    for_each_input(n, [&](Node* in) {
      if (!bad.node && (in->flags & REQUIRES_GRAD) && !std::isfinite(in->grad)) bad = {n, in->grad};
    });
  });
  return bad;
}

}  // namespace ag
