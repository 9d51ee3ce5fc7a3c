// The arena: fixed-size nodes carved from 64-byte-aligned chunks, recycled
// through an intrusive free list, and a size-classed side pool for the
// operand lists of n-ary ops. Memory is kept for reuse, never returned, so a
// training loop that builds the same graph every step allocates nothing after
// its first step.
#include <cstdlib>
#include <new>
#include <vector>

#include "node.hpp"

namespace ag {
namespace pool {

static Node* free_head = nullptr;
static size_t live_nodes = 0;

// Never destroyed: a static with a destructor would be torn down at exit
// under any thread still running in the engine.
static std::vector<Node*>& chunks = *new std::vector<Node*>;
static constexpr size_t CHUNK_NODES = 1 << 14;  // 1 MiB of nodes per chunk

// Carves a new chunk onto the free list; false when out of memory.
static bool grow() {
  void* mem = std::aligned_alloc(64, CHUNK_NODES * sizeof(Node));
  if (!mem) return false;
  Node* c = static_cast<Node*>(mem);
  try {
    chunks.push_back(c);
  } catch (const std::bad_alloc&) {
    std::free(mem);
    return false;
  }
  // Thread the new chunk onto the free list in address order so that a graph
  // built in one go lies contiguously in memory.
  for (size_t i = 0; i + 1 < CHUNK_NODES; ++i) c[i].next_free = &c[i + 1];
  c[CHUNK_NODES - 1].next_free = free_head;
  for (size_t i = 0; i < CHUNK_NODES; ++i) {
    c[i].stamp = 0;
    c[i].op = OP_FREE;
  }
  free_head = c;
  return true;
}

// alloc and free_node are the per-op hot path; link-time optimisation
// (pybind11_add_module turns it on) inlines them into their callers.
Node* alloc() {
  if (!free_head && !grow()) return nullptr;
  Node* n = free_head;
  free_head = n->next_free;
  ++live_nodes;
  return n;
}

void free_node(Node* n) {
  n->op = OP_FREE;
  n->py = nullptr;
  n->next_free = free_head;
  free_head = n;
  --live_nodes;
}

size_t live() { return live_nodes; }
Node* free_list() { return free_head; }
size_t capacity() { return chunks.size() * CHUNK_NODES; }
Node* chunk(size_t i) { return chunks[i]; }
size_t chunk_nodes() { return CHUNK_NODES; }
size_t chunk_count() { return chunks.size(); }

void reset_stamps() {
  for (Node* c : chunks)
    for (size_t i = 0; i < CHUNK_NODES; ++i) c[i].stamp = 0;
}

// Side pool: blocks of 2^k slots, one free list per k. Blocks up to 2^12
// slots come from shared 64 KiB slabs; larger ones are malloc'd once and then
// recycled through their class's free list like the rest.
static constexpr int CLASSES = 33;
static constexpr int SLAB_CLASS_MAX = 12;
static constexpr size_t SLAB_SLOTS = 1 << 13;
static Slot* free_lists[CLASSES];
static Slot* slab = nullptr;
static size_t slab_left = 0;
static size_t slots_in_use = 0;

static int size_class(uint32_t n) {
  int k = 2;
  while ((uint64_t(1) << k) < n) ++k;
  return k;
}

Slot* alloc_slots(uint32_t n) {
  int k = size_class(n);
  size_t size = size_t(1) << k;
  Slot* s = free_lists[k];
  if (s) {
    free_lists[k] = reinterpret_cast<Slot*>(s[0].node);
  } else if (k <= SLAB_CLASS_MAX) {
    if (slab_left < size) {
      slab = static_cast<Slot*>(std::malloc(SLAB_SLOTS * sizeof(Slot)));
      if (!slab) { slab_left = 0; return nullptr; }
      slab_left = SLAB_SLOTS;  // what was left of the old slab is dropped (under half a slab)
    }
    s = slab;
    slab += size;
    slab_left -= size;
  } else {
    s = static_cast<Slot*>(std::malloc(size * sizeof(Slot)));
    if (!s) return nullptr;
  }
  slots_in_use += size;
  return s;
}

void free_slots(Slot* s, uint32_t n) {
  int k = size_class(n);
  s[0].node = reinterpret_cast<Node*>(free_lists[k]);
  free_lists[k] = s;
  slots_in_use -= size_t(1) << k;
}

size_t slots_live() { return slots_in_use; }

}  // namespace pool
}  // namespace ag
