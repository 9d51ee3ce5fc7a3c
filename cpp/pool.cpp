// The arena: fixed-size nodes carved from 1 MiB chunks, recycled lowest
// address first, and a size-classed side pool for the operand lists of n-ary
// ops. Memory is kept for reuse, never returned, so a training loop that
// builds the same graph every step allocates nothing after its first step.
//
// Why lowest address first rather than a free list: a free list hands nodes
// back in the order the last graph was released (depth first from its
// output), so step after step a graph's nodes scatter over the arena. On
// microgpt's 76k-node step that made backward 1.3 ms and release 0.8 ms after
// 150 steps, against 0.7 and 0.24 ms with the same nodes in address order.
// With a bitmap of free slots, a graph built in one go lies in creation order
// whatever was freed before, and backward and release walk it in order.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include "node.hpp"

namespace ag {
namespace pool {

// A chunk is CHUNK_BYTES aligned to CHUNK_BYTES, so a node finds its chunk by
// masking its address. Slot 0 holds the chunk's header, the rest are nodes.
static constexpr size_t CHUNK_BYTES = size_t(1) << 20;
static constexpr size_t CHUNK_SLOTS = CHUNK_BYTES / sizeof(Node);
static constexpr size_t CHUNK_WORDS = CHUNK_SLOTS / 64;  // bitmap words per chunk
static_assert(CHUNK_WORDS % 64 == 0 && sizeof(Node) <= 64, "a chunk's slots fill whole words of both bitmaps");

struct Header {
  size_t first_word;  // the chunk's first word in free_bits
};

static size_t live_nodes = 0;

// Never destroyed: a static with a destructor would be torn down at exit
// under any thread still running in the engine.
static std::vector<Node*>& chunks = *new std::vector<Node*>;
// Bit i of word w: slot (w % CHUNK_WORDS) * 64 + i of chunk w / CHUNK_WORDS
// is free. summary has a bit per word of free_bits, set if it has one, so
// that finding the next free slot skips 4,096 full slots per word it reads.
static std::vector<uint64_t>& free_bits = *new std::vector<uint64_t>;
static std::vector<uint64_t>& summary = *new std::vector<uint64_t>;
// Every word of free_bits below this one is empty.
static size_t low_word = 0;
// The hot path's view of the vectors above (one load each, not two).
static uint64_t* words = nullptr;
static uint64_t* summary_words = nullptr;
static Node** chunk_at = nullptr;
static size_t nwords = 0;

static void refresh_views() {
  words = free_bits.data();
  summary_words = summary.data();
  chunk_at = chunks.data();
  nwords = free_bits.size();
}

// Room for `need` items, doubling the capacity so that growing the arena
// copies its bitmaps O(log) times, not once per chunk (exactly `need` if a
// doubling does not fit). Throws std::bad_alloc.
template <class T> static void room(std::vector<T>& v, size_t need) {
  if (v.capacity() >= need) return;
  try {
    v.reserve(std::max(need, 2 * v.capacity()));
  } catch (const std::bad_alloc&) {
    v.reserve(need);
  }
}

// Tests only (fail_grow_at): the step of the next grow() that fails.
static int fail_step = -1;
static void step(int k) {
  if (fail_step == k) {
    fail_step = -1;
    throw std::bad_alloc();
  }
}
void fail_grow_at(int k) { fail_step = k; }

// CHUNK_BYTES of zeroed memory aligned to CHUNK_BYTES, or nullptr. Mapped
// twice the size and trimmed to the aligned part: aligned_alloc keeps the
// whole span, which would halve the nodes that fit under RLIMIT_AS.
static void* map_chunk() {
#if defined(__unix__) || defined(__APPLE__)
  const size_t span = 2 * CHUNK_BYTES;
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (start + CHUNK_BYTES - 1) & ~uintptr_t(CHUNK_BYTES - 1);
  if (aligned > start) munmap(p, aligned - start);
  if (start + span > aligned + CHUNK_BYTES)
    munmap(reinterpret_cast<void*>(aligned + CHUNK_BYTES), start + span - aligned - CHUNK_BYTES);
  return reinterpret_cast<void*>(aligned);
#else
  return std::aligned_alloc(CHUNK_BYTES, CHUNK_BYTES);
#endif
}

// Adds a chunk with every node slot free; false when out of memory, with
// the arena as it was.
static bool grow() {
  const size_t first = free_bits.size();
  try {
    step(1);
    room(chunks, chunks.size() + 1);
    step(2);
    room(free_bits, first + CHUNK_WORDS);
    step(3);
    room(summary, (first + CHUNK_WORDS) / 64);
    step(0);
  } catch (const std::bad_alloc&) {
    refresh_views();  // a reserve that succeeded has moved its vector
    return false;
  }
  void* mem = map_chunk();
  if (!mem) {
    refresh_views();
    return false;
  }
  // Nothing below allocates: the room is reserved.
  Node* c = static_cast<Node*>(mem);
  new (mem) Header{first};
  chunks.push_back(c);
  free_bits.resize(first + CHUNK_WORDS, ~uint64_t(0));
  free_bits[first] &= ~uint64_t(1);  // slot 0: the header
  summary.resize((first + CHUNK_WORDS) / 64, ~uint64_t(0));
  for (size_t i = 1; i < CHUNK_SLOTS; ++i) {
    c[i].stamp = 0;
    c[i].op = OP_FREE;
  }
  refresh_views();
  return true;
}

// The slow half of alloc: the next word with a free slot, through the
// summary, growing the arena if there is none; 0 if out of memory, else the
// word's index plus one.
__attribute__((noinline)) static size_t next_word() {
  size_t s = low_word / 64;
  uint64_t m = s < summary.size() ? summary[s] & (~uint64_t(0) << (low_word % 64)) : 0;
  while (!m && ++s < summary.size()) m = summary[s];
  if (!m) {
    s = summary.size();
    if (!grow()) return 0;
    m = summary[s];
  }
  low_word = s * 64 + size_t(__builtin_ctzll(m));
  return low_word + 1;
}

// alloc and free_node are the per-op hot path; link-time optimisation
// (pybind11_add_module turns it on) inlines them into their callers.
Node* alloc() {
  size_t w = low_word;
  if (w >= nwords || !words[w]) {
    if (!(w = next_word())) return nullptr;
    --w;
  }
  const uint64_t bits = words[w];
  words[w] = bits & (bits - 1);
  if (!words[w]) summary_words[w / 64] &= ~(uint64_t(1) << (w % 64));
  ++live_nodes;
  return chunk_at[w / CHUNK_WORDS] + (w % CHUNK_WORDS) * 64 + size_t(__builtin_ctzll(bits));
}

// A node's bit in free_bits (word position / 64), through its chunk's header.
size_t position(const Node* n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(n);
  const Node* c = reinterpret_cast<const Node*>(a & ~uintptr_t(CHUNK_BYTES - 1));
  return reinterpret_cast<const Header*>(c)->first_word * 64 + size_t(n - c);
}

void free_node(Node* n) {
  n->op = OP_FREE;
  n->py = nullptr;
  const size_t pos = position(n), w = pos / 64;
  if (!words[w]) summary_words[w / 64] |= uint64_t(1) << (w % 64);
  words[w] |= uint64_t(1) << (pos % 64);
  if (w < low_word) low_word = w;
  --live_nodes;
}

bool is_free(const Node* n) {
  const size_t pos = position(n);
  return (words[pos / 64] >> (pos % 64)) & 1;
}

size_t live() { return live_nodes; }
size_t capacity() { return chunks.size() * (CHUNK_SLOTS - 1); }
Node* chunk(size_t i) { return chunks[i] + 1; }
size_t chunk_nodes() { return CHUNK_SLOTS - 1; }
size_t chunk_count() { return chunks.size(); }

void reset_stamps() {
  for (Node* c : chunks)
    for (size_t i = 1; i < CHUNK_SLOTS; ++i) c[i].stamp = 0;
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
