#include "store/prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace azlb::store {

namespace {

void populate(void* from, std::size_t bytes) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(from) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(from) + bytes) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

}  // namespace

// Why: loading a large state builds a document and a model about eight times
// the size of the text, and taking one page fault per new page costs more
// than the parsing itself: ~12 us a fault on a VM, against ~0.7 us a page
// mapped by madvise (1,000 endpoints: ~300 faults, 4 ms; 50,000 VMs: 33,000
// faults, ~0.4 s of a 1 s load).
void prefault_heap(std::size_t bytes) {
  // glibc serves a block of up to 32 MiB from the heap once told so (its
  // largest mmap threshold; a larger value is refused): a larger prefault is
  // made of several blocks, side by side on the heap.
  constexpr std::size_t kBlock = 32u << 20;
  constexpr std::size_t kMax = std::size_t{1} << 30;
  bytes = std::min(bytes, kMax);
  if (bytes == 0) return;
  // The blocks come from the heap, not mmap, and their pages stay in the
  // process once freed, for the parser's nodes to land on them. In the
  // long-running engine this keeps at most a parse's worth of heap mapped.
  // (The engine's control thread and its etcd follower may both come here.)
  static std::mutex mutex;
  static std::size_t trim = 0;
  {
    std::lock_guard<std::mutex> lock(mutex);
    mallopt(M_MMAP_THRESHOLD, kBlock);
    if (2 * bytes > trim) {
      trim = 2 * bytes;
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min(trim, std::size_t{INT32_MAX})));
    }
  }
  void* blocks[kMax / kBlock + 1];
  std::size_t n = 0;
  for (std::size_t done = 0; done < bytes; done += kBlock) {
    const std::size_t size = std::min(kBlock - 64, bytes - done);
    void* block = std::malloc(size);
    if (!block) break;
    populate(block, size);
    blocks[n++] = block;
  }
  while (n) std::free(blocks[--n]);
}

void reserve_mapped(std::string& s, std::size_t n) {
  if (n <= s.capacity()) return;
  s.reserve(n);
  populate(s.data() + s.size(), s.capacity() - s.size());
}

}  // namespace azlb::store
