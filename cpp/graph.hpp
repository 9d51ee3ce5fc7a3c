// Traversals over the node graph: operand iteration, the backward sweep,
// topological ordering. Everything here is iterative: graphs of ten million
// nodes are normal and the C stack must not grow with them.
#pragma once
#include <vector>

#include "node.hpp"
#include "ops.hpp"

namespace ag {

// Calls f(Node*) for every node operand of n (constant operands are skipped).
template <class F> inline void for_each_input(const Node* n, F f) {
  if (n->op == LEAF) return;
  if (is_nary(n->op)) {
    uint32_t k = (n->flags & CONST_Y) ? n->nin / 2 : n->nin;
    for (uint32_t i = 0; i < k; ++i) f(n->args[i].node);
  } else {
    if (n->in[0]) f(n->in[0]);
    if (n->in[1]) f(n->in[1]);
  }
}

// Post-order of the non-leaf nodes that require grad and are reachable from
// root (root last). Leaves are not listed: the sweep only writes into them.
// The returned vector is reused by the next call.
const std::vector<Node*>& topo_order(Node* root);

// Every node reachable from root, leaves included, in post-order.
// Used by compile and export; the returned vector is reused by the next call.
const std::vector<Node*>& reachable(Node* root);

// Reverse-mode sweep from root, seeded with `seed`: leaf gradients
// accumulate, intermediate gradients are overwritten.
void backward(Node* root, double seed);

// The local backward step of one node: adds g * d(node)/d(input) into the
// grad of every input that requires grad.
void backward_step(Node* n);

uint32_t next_epoch();

}  // namespace ag
