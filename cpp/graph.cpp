#include "graph.hpp"

#include <cstdint>

namespace ag {

const char* op_name(int op) {
  switch (op) {
#define AG_NAME(E, S) \
  case E:             \
    return S::name;
    AG_UNARY_OPS(AG_NAME) AG_BINARY_OPS(AG_NAME) AG_NARY_OPS(AG_NAME)
#undef AG_NAME
    default:
      return "";
  }
}

// ------------------------------------------------------------------ release

void release(Node* n) {
  // Walk the nodes whose count dropped to zero. The first input that dies
  // is followed directly (the common chain case needs no stack); any others
  // wait in `work`.
  static std::vector<Node*> work;
  size_t base = work.size();  // release never re-enters, but stay correct if it did
  Node* next = n;
  while (next) {
    Node* x = next;
    next = nullptr;
    for_each_input(x, [&](Node* in) {
      if (--in->refs == 0) {
        if (!next) next = in;
        else work.push_back(in);
      }
    });
    if (is_nary(x->op)) pool::free_slots(x->args, x->nin);
    pool::free_node(x);
    if (!next && work.size() > base) {
      next = work.back();
      work.pop_back();
    }
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

// Pointers are 8-aligned; the low bit marks a node whose inputs are done.
static inline Node* tag(Node* n) { return reinterpret_cast<Node*>(reinterpret_cast<uintptr_t>(n) | 1); }
static inline bool tagged(Node* n) { return reinterpret_cast<uintptr_t>(n) & 1; }
static inline Node* untag(Node* n) { return reinterpret_cast<Node*>(reinterpret_cast<uintptr_t>(n) & ~uintptr_t(1)); }

// Iterative depth-first post-order. `visit` runs once per node as it is first
// expanded (backward uses it to zero intermediate gradients in the same pass).
// A node with a single unvisited input continues straight into it without a
// stack round trip: chains, the common deep case, cost one push per node.
template <class Descend, class Visit>
static void postorder(Node* root, std::vector<Node*>& order, Descend descend, Visit visit) {
  static std::vector<Node*> stack;
  uint32_t e = next_epoch();
  order.clear();
  stack.clear();
  stack.push_back(root);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (tagged(n)) {
      order.push_back(untag(n));
      continue;
    }
    while (n && n->stamp != e) {
      n->stamp = e;
      visit(n);
      stack.push_back(tag(n));
      Node* only = nullptr;
      if (!is_nary(n->op)) {  // the common case, written out: no operand loop
        Node* a = n->in[0];
        Node* b = n->in[1];
        if (a && a->stamp != e && descend(a)) only = a;
        if (b && b != a && b->stamp != e && descend(b)) {
          if (only) stack.push_back(only);
          only = b;
        }
      } else {
        for_each_input(n, [&](Node* in) {
          if (in->stamp == e || !descend(in)) return;
          if (only) stack.push_back(only);
          only = in;
        });
      }
      n = only;
    }
  }
}

const std::vector<Node*>& topo_order(Node* root) {
  static std::vector<Node*> order;
  postorder(
      root, order, [](Node* in) { return in->op != LEAF && (in->flags & REQUIRES_GRAD); }, [](Node*) {});
  return order;
}

const std::vector<Node*>& reachable(Node* root) {
  static std::vector<Node*> order;
  postorder(root, order, [](Node*) { return true; }, [](Node*) {});
  return order;
}

// ----------------------------------------------------------------- backward

static inline void give(Node* in, double g) {
  if (in->flags & REQUIRES_GRAD) in->grad += g;
}

void backward_step(Node* n) {
  const double g = n->grad;
  switch (n->op) {
#define AG_UNARY_CASE(E, S)                               \
  case E:                                                 \
    give(n->in[0], g * S::d(n->in[0]->data, n->data, n->aux)); \
    break;
    AG_UNARY_OPS(AG_UNARY_CASE)
#undef AG_UNARY_CASE

#define AG_BINARY_CASE(E, S)                                       \
  case E: {                                                        \
    double a = (n->flags & CONST_A) ? n->aux : n->in[0]->data;     \
    double b = (n->flags & CONST_B) ? n->aux : n->in[1]->data;     \
    double da, db;                                                 \
    S::d(a, b, n->data, da, db);                                   \
    if (n->in[0]) give(n->in[0], g * da);                          \
    if (n->in[1]) give(n->in[1], g * db);                          \
    break;                                                         \
  }
    AG_BINARY_OPS(AG_BINARY_CASE)
#undef AG_BINARY_CASE

#define AG_NARY_CASE(E, S)                                                          \
  case E: {                                                                         \
    Slot* s = n->args;                                                              \
    bool cy = n->flags & CONST_Y;                                                   \
    uint32_t nn = cy ? n->nin / 2 : n->nin; /* operands that are nodes */           \
    size_t count = (n->op == DOT) ? n->nin / 2 : n->nin;                            \
    auto x = [s, nn](size_t i) { return i < nn ? s[i].node->data : s[i].num; };    \
    S::d(count, x, n->data, g, [s, nn](size_t i, double gi) {                       \
      if (i < nn) give(s[i].node, gi);                                              \
    });                                                                             \
    break;                                                                          \
  }
    AG_NARY_OPS(AG_NARY_CASE)
#undef AG_NARY_CASE
    default:
      break;
  }
}

void backward(Node* root, double seed) {
  if (root->op == LEAF) {
    root->grad += seed;
    return;
  }
  static std::vector<Node*> order;
  postorder(
      root, order, [](Node* in) { return in->op != LEAF && (in->flags & REQUIRES_GRAD); },
      [](Node* n) { n->grad = 0.0; });
  root->grad = seed;
  for (size_t i = order.size(); i-- > 0;) backward_step(order[i]);
}

}  // namespace ag
