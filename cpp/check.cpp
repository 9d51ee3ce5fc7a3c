// The engine's invariant checker, for tests and fuzzing: walks every chunk of
// the arena and verifies what the fast paths take for granted. O(nodes); never
// called by the engine itself.
#include "check.hpp"

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "compile.hpp"
#include "graph.hpp"
#include "value.hpp"

namespace py = pybind11;

namespace ag {

static void fail(const std::string& what) { throw std::runtime_error("engine invariant violated: " + what); }

py::dict check_invariants() {
  const size_t per = pool::chunk_nodes();
  std::vector<Node*> bases;  // sorted, so that a pointer finds its chunk by binary search
  for (size_t c = 0; c < pool::chunk_count(); ++c) bases.push_back(pool::chunk(c));
  std::sort(bases.begin(), bases.end());
  auto in_arena = [&](const Node* p) {
    auto it = std::upper_bound(bases.begin(), bases.end(), p, std::less<const Node*>());
    if (it == bases.begin()) return false;
    const Node* base = *--it;
    return p < base + per &&
           (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base)) % sizeof(Node) == 0;
  };
  auto each_node = [&](auto f) {
    for (Node* base : bases)
      for (size_t i = 0; i < per; ++i) f(base + i);
  };
  each_node([](Node* n) { n->found = 0; });
  size_t live = 0, wrapped = 0;
  // Pass 1: live nodes, their wrappers, their inputs.
  each_node([&](Node* n) {
    if (n->op == OP_FREE) return;
    ++live;
    if (n->op > CUSTOM) fail("node with unknown op code " + std::to_string(n->op));
    if (n->refs == 0) fail("live node with no references (op " + std::string(op_name(n->op)) + ")");
    if (n->stamp > current_epoch()) fail("stamp from the future");
    if (n->py) {
      ++wrapped;
      if (!is_value(n->py) || node_of(n->py) != n) fail("wrapper does not point back to its node");
      if (Py_REFCNT(n->py) <= 0) fail("wrapper with a non-positive reference count");
      n->found += 1;
    }
    if (is_nary(n->op)) {
      if (n->nin == 0 || !n->args) fail("n-ary node without operands");
      if ((n->flags & CONST_Y) && (n->op != DOT || n->nin % 2)) fail("CONST_Y on a node that is not a dot");
      if (n->op == SOFTMAX) {
        if (n->nin % 3) fail("a softmax node whose slots are not x, y and outputs");
        for (uint32_t i = 0; i < n->nin / 3; ++i) {
          Node* o = softmax_output_slot(n, i);
          if (o && (!in_arena(o) || o->op != SOFTMAX_OUT || o->in[1] != n || o->aux != double(i)))
            fail("a softmax node that points at something other than its output");
        }
      }
    } else if (is_binary(n->op)) {
      if (!n->in[0] != bool(n->flags & CONST_A) || !n->in[1] != bool(n->flags & CONST_B))
        fail("binary node whose constant flags disagree with its inputs");
      const Node* h = n->in[1];
      if (n->op == SOFTMAX_OUT && (!h || !in_arena(h) || h->op == OP_FREE || !softmax_output_matches(n) ||
                                   softmax_output_slot(h, uint32_t(n->aux)) != n))
        fail("a softmax output that does not match its softmax node");
    } else if (is_unary(n->op)) {
      if (!n->in[0] || n->in[1]) fail("unary node without exactly one input");
    } else if (n->in[0] || n->in[1]) {
      fail("leaf with inputs");
    }
    // An op node requires grad iff one of its inputs did when it was built.
    // Op nodes never change the flag, leaves may (the requires_grad setter,
    // as in torch: the existing graph keeps what it was built with).
    bool op_input_rg = false, leaf_input = false;
    for_each_input(n, [&](Node* in) {
      if (!in_arena(in)) fail("input pointer outside the arena");
      if (in->op == OP_FREE) fail("input that has been freed (op " + std::string(op_name(n->op)) + ")");
      in->found += 1;
      if (in->op == LEAF) leaf_input = true;
      else op_input_rg |= bool(in->flags & REQUIRES_GRAD);
    });
    bool rg = n->flags & REQUIRES_GRAD;
    if (n->op != LEAF && ((op_input_rg && !rg) || (rg && !op_input_rg && !leaf_input)))
      fail("requires_grad of an op node does not follow from its inputs'");
  });
  for (Node* n : compiled_refs()) {
    if (n->op == OP_FREE) fail("a compiled graph holds a freed node");
    n->found += 1;
  }
  // Pass 2: every live node has exactly the references found (a leaked node
  // has more than were found, a node about to be freed twice fewer).
  each_node([](Node* n) {
    if (n->op != OP_FREE && n->refs != n->found)
      fail("reference count " + std::to_string(n->refs) + " but " + std::to_string(n->found) +
           " references found (op " + op_name(n->op) + ")");
  });
  if (live != pool::live()) fail("live count " + std::to_string(pool::live()) + " but " + std::to_string(live) + " live nodes");
  // The pool's bitmap marks exactly the free nodes.
  size_t free_count = 0;
  each_node([&](Node* n) {
    const bool free = pool::is_free(n);
    if (free != (n->op == OP_FREE)) fail(free ? "a live node marked free" : "a freed node not marked free");
    free_count += free;
  });
  if (free_count + live != pool::capacity()) fail("free and live nodes do not add up to the arena");
  py::dict d;
  d["live_nodes"] = live;
  d["wrapped"] = wrapped;
  d["free_nodes"] = free_count;
  return d;
}

}  // namespace ag
