// The node record and the arena that holds it.
//
// A node is a plain 64-byte record: no constructor, no virtual table, no owning
// pointers. Nodes are carved from large chunks and recycled through a free
// list, so building a graph never calls malloc per node.
#pragma once
#include <cstddef>
#include <cstdint>

struct _object;
typedef struct _object PyObject;

namespace ag {

struct Node;

// An n-ary node's operands live in a side pool: a slot is either a node or,
// for forms that take numbers directly (dot with constant ys), a number.
union Slot {
  Node* node;
  double num;
};

enum Flag : uint8_t {
  REQUIRES_GRAD = 1,  // gradients flow into this node
  CONST_A = 2,        // binary op: the left operand is the number in aux
  CONST_B = 4,        // binary op: the right operand is the number in aux
  CONST_Y = 8,        // dot: slots [n, 2n) hold numbers, not nodes
  INT_DATA = 8,       // the same bit on a leaf, unary or binary node: its data is an int's
                      // (Value(3), 3 + 2): .data gives it back as an int, as micrograd keeps it
  NUMBER = 16,        // a leaf made for a number operand (not listed in .inputs)
  OWNS_PY = 32,       // it holds a strong reference to its wrapper, which carries something
                      // of its own: attributes, a CUSTOM node's _backward (dialect.cpp)
  PY_TRACKED = 64,    // its wrapper is tracked by Python's cycle collector (has had attributes)
  MICROGRAD = 128,    // made by arenagrad.micrograd: _op reads as micrograd names it ('ReLU', '**2')
};

struct Node {
  double data;
  double grad;
  double aux;  // constant operand, or the op's parameter (leaky_relu slope)
  union {
    Node* in[2];  // unary and binary ops (a null entry is a constant operand)
    struct {
      Slot* args;    // n-ary ops: nin slots in the side pool
      uint32_t nin;
    };
  };
  union {
    PyObject* py;      // the Python Value wrapping this node, if any (borrowed, but see OWNS_PY)
    Node* next_dying;  // during release: the next node to free (a dying node has no wrapper)
  };
  uint32_t refs;   // Python wrapper + consuming nodes
  uint32_t stamp;  // traversal mark: equals the current epoch once visited
  union {          // scratch for whoever walks the graph; one user at a time
    uint32_t pending;  // a traversal: consumers not yet processed
    uint32_t index;    // compile: the node's position in the flattened graph
    uint32_t found;    // the invariant checker: references to it found so far
  };
  uint8_t op;
  uint8_t flags;
};
static_assert(sizeof(Node) <= 64, "a node must fit in 64 bytes");

// The op code of a free node (the invariant checker tells live nodes from
// free ones by it, and checks it against the pool's bitmap).
constexpr uint8_t OP_FREE = 0xff;

namespace pool {

// A free node, the lowest in the arena (its fields are stale), or nullptr
// when the system is out of memory. Never throws.
Node* alloc();
void free_node(Node* n);

Slot* alloc_slots(uint32_t n);  // nullptr when out of memory
void free_slots(Slot* s, uint32_t n);

size_t live();         // nodes in use
size_t capacity();     // nodes carved so far
size_t chunk_count();
Node* chunk(size_t i);  // chunk i's first node; each holds chunk_nodes()
size_t chunk_nodes();
bool is_free(const Node* n);  // whether a node of the arena is free (for the checker)
size_t position(const Node* n);  // its place in the order alloc hands out free nodes (lowest first)
void fail_grow_at(int step);     // tests: make the next growth fail at step 0 (the chunk) .. 3
size_t slots_live();
void reset_stamps();   // set every node's stamp to 0 (epoch wrap-around)

}  // namespace pool

// Frees n and, iteratively, every input whose last consumer it was. Runs
// inside deallocation, where nothing may fail: it allocates nothing.
void release(Node* n);

inline void incref(Node* n) { ++n->refs; }
inline void decref(Node* n) {
  if (--n->refs == 0) release(n);
}

}  // namespace ag
