// Traversals over the node graph: operand iteration, the backward sweep,
// topological ordering. Everything here is iterative: graphs of ten million
// nodes are normal and the C stack must not grow with them.
#pragma once
#include <cmath>
#include <vector>

#include "node.hpp"
#include "ops.hpp"

namespace ag {

// An n-ary node's operand shape (ops.hpp's nary_shape) from its fields.
inline NaryShape nary_shape(const Node* n) { return nary_shape(n->op, n->nin, n->flags & CONST_Y); }

// Operand i of an n-ary node as its op struct reads it: the node in slot i,
// or the number stored there (dot's CONST_Y half).
inline double slot_value(const Slot* s, NaryShape sh, size_t i) { return i < sh.nodes ? s[i].node->data : s[i].num; }

// Whether softmax output n reads slot aux of the softmax node in[1], whose
// operand there is in[0]: every output ag.softmax makes does, and restore
// (pickle.cpp), compile and the invariant checker hold any other out.
inline bool softmax_output_matches(const Node* n) {
  const Node* h = n->in[1];
  if (!n->in[0] || !h || h->op != SOFTMAX || h->nin % 3) return false;
  const double i = n->aux;
  return i >= 0 && i < h->nin / 3 && i == std::floor(i) && h->args[uint32_t(i)].node == n->in[0];
}

// The slot of softmax node h that points at its output i (Softmax, ops.hpp).
inline Node*& softmax_output_slot(Node* h, uint32_t i) { return h->args[2 * (h->nin / 3) + i].node; }
inline const Node* softmax_output_slot(const Node* h, uint32_t i) { return h->args[2 * (h->nin / 3) + i].node; }

// Calls f(Node*) for every node operand of n (constant operands are skipped;
// a leaf's inputs are null, so it has none).
template <class F> inline void for_each_input(const Node* n, F f) {
  if (!is_nary(n->op)) {
    if (n->in[0]) f(n->in[0]);
    if (n->in[1]) f(n->in[1]);
  } else {
    uint32_t k = nary_shape(n).nodes;
    for (uint32_t i = 0; i < k; ++i) f(n->args[i].node);
  }
}

uint32_t next_epoch();
uint32_t current_epoch();  // the mark of the last traversal
void set_epoch(uint32_t e);  // tests only: bring the wrap-around near

// Reverse topological traversal in two passes, without recursion and
// without materialising an order (PyTorch's dependency counting):
//   1. count_consumers: from the roots, through the nodes `descend` accepts,
//      stamp each node, call visit(node) once, and count in node->pending
//      how many of its consumers lie in the subgraph;
//   2. consumers_first: call emit(node) for each node once all its consumers
//      have been emitted (roots first, leaves last).
// A node with exactly one input that becomes ready is followed directly, so
// a chain never touches the work stack. Eager backward and compile share
// these two functions, which is what makes replay bit-identical to eager.

// The work stack both passes share. Its capacity is reserved up front
// (reserve_traversal) so that a traversal never allocates halfway: running
// out of memory is reported before any gradient or value has been touched.
std::vector<Node*>& traversal_stack();

// Makes room for a traversal over up to every live node (each pass pushes a
// node at most once). false when out of memory; never throws.
bool reserve_traversal();

// The arena hands out nodes in address order, so a node's inputs usually sit
// just below it: traversals run down through memory. Prefetching 64 nodes
// (4 KiB) further down hides the latency of the pointer chase: on a
// million-node chain it took backward from 21 to 9 ns per node. A wrong guess costs
// one wasted prefetch; prefetches never fault.
inline void prefetch_below(const Node* n) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(n) - 64 * sizeof(Node)), 1);
}

template <class Descend, class Visit>
void count_consumers(Node* const* roots, size_t nroots, Descend descend, Visit visit) {
  std::vector<Node*>& stack = traversal_stack();
  stack.clear();
  const uint32_t e = next_epoch();
  for (size_t r = 0; r < nroots; ++r) {
    Node* n = roots[r];
    if (n->stamp == e) continue;
    n->stamp = e;
    n->pending = 0;
    visit(n);
    stack.push_back(n);
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    while (n) {
      prefetch_below(n);
      Node* next = nullptr;
      for_each_input(n, [&](Node* in) {
        if (!descend(in)) return;
        if (in->stamp == e) {
          ++in->pending;
          return;
        }
        in->stamp = e;
        in->pending = 1;
        visit(in);
        if (next) stack.push_back(next);
        next = in;
      });
      n = next;
    }
  }
}

template <class Descend, class Emit>
void consumers_first(Node* const* roots, size_t nroots, Descend descend, Emit emit) {
  std::vector<Node*>& stack = traversal_stack();
  stack.clear();
  for (size_t r = nroots; r-- > 0;)
    if (roots[r]->pending == 0) {
      roots[r]->pending = ~0u;  // pushed; a root listed twice is emitted once
      stack.push_back(roots[r]);
    }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    while (n) {
      prefetch_below(n);
      emit(n);
      Node* next = nullptr;
      for_each_input(n, [&](Node* in) {
        if (!descend(in) || --in->pending != 0) return;
        if (next) stack.push_back(next);
        next = in;
      });
      n = next;
    }
  }
}

// What backward found under detect_anomaly: the first node, in sweep order,
// whose step gave an input a non-finite gradient, and that gradient.
struct Anomaly {
  Node* node = nullptr;
  double grad = 0.0;
  bool python_error = false;  // a CUSTOM node's Python backward raised (the error is set)
};

// Reverse-mode sweep from root, seeded with `seed`: leaf gradients
// accumulate, intermediate gradients are overwritten (PyTorch's semantics),
// or with keep_intermediate added to as well (micrograd's: a second call
// propagates the sums again). Needs
// reserve_traversal() first. With `check` (detect_anomaly) it reports the
// first non-finite gradient; the sweep completes either way.
Anomaly backward(Node* root, double seed, bool check = false, bool keep_intermediate = false);

// The local backward step of one node: adds g * d(node)/d(input) into the
// grad of every input that requires grad. A CUSTOM node's step is its Python
// _backward, run through python_step; false when that raised.
// in_sweep: called by backward(), where a softmax node takes the gradients
// of only the outputs this sweep reached (stamped), not stale ones; a
// Python v._backward() takes whatever its outputs hold.
bool backward_step(Node* n, bool in_sweep = true);

// Runs a CUSTOM node's Python backward (set by the Value type, which owns the
// Python side); false with a Python error set.
extern bool (*python_step)(Node* n);

// True while a backward or compile traversal runs: a Python _backward called
// from one must not start another (they share the work stack and marks).
bool in_traversal();
void set_traversing(bool on);
struct Traversing {  // marks a traversal as running for its scope
  Traversing() { set_traversing(true); }
  ~Traversing() { set_traversing(false); }
};

}  // namespace ag
