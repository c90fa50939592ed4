#include "store/prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace azlb::store {

// Why: loading a large state builds a document and a model about eight times
// the size of the text, and taking one page fault per new page costs more
// than the parsing itself (1,000 endpoints: ~400 faults at up to 13 us each
// on a VM, against 2.7 ms of parsing). One madvise maps those pages for a
// fraction of that (0.35 ms), and the parse then runs 7 -> 4.5 ms.
void prefault_heap(std::size_t bytes) {
  constexpr std::size_t kMax = 64u << 20;
  if (bytes == 0 || bytes > kMax) return;
  // The block must come from the heap (not its own mmap) and stay in the
  // process once freed, for the parser's nodes to land on its pages. In the
  // long-running engine this keeps at most a parse's worth of heap mapped.
  mallopt(M_MMAP_THRESHOLD, kMax);
  mallopt(M_TRIM_THRESHOLD, 2 * kMax);
  void* block = std::malloc(bytes);
  if (!block) return;
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(block) + page - 1) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(block) + bytes) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  std::free(block);
}

}  // namespace azlb::store
