#include "store/prefault.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

// The short-lived command line's heap on transparent huge pages (see
// heap_on_huge_pages): the region of the heap already on them.
constexpr std::uintptr_t kHuge = 2u << 20;
constexpr std::size_t kMaxHuge = 16u << 20;  // larger requests take the 4 KB path
std::atomic<bool> huge_heap{false};
std::uintptr_t huge_begin = 0, huge_end = 0;  // under prefault_heap's mutex

std::uintptr_t huge_up(std::uintptr_t a) { return (a + kHuge - 1) & ~(kHuge - 1); }

// The heap's next `bytes` on transparent huge pages. A block taken from the
// top of the heap is cut where a 2 MB page can begin above every page the
// process has touched (the part below stays allocated: address space, not
// new memory), and the pages from there are advised and mapped; the block's
// rest goes back to the top, where the next allocations come from. A 2 MB
// range with a page already in it would stay on 4 KB pages.
// False when the heap is not glibc's (a sanitizer's allocator moves a block
// it shrinks): the 4 KB path then.
bool prefault_huge(std::size_t bytes) {
  const auto brk0 = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  const std::size_t want = huge_up(bytes);
  void* block = std::malloc(want + kHuge);
  if (!block) return true;
  const auto at = reinterpret_cast<std::uintptr_t>(block);
  const bool more = at >= huge_begin && at < huge_end;
  const std::uintptr_t from = more ? huge_end : huge_up(std::max(at, brk0));
  const std::uintptr_t end = more ? huge_up(at + bytes) : from + want;
  // The block must reach `end`: a block at the heap's top grows in place.
  if (end > at + want + kHuge) {
    void* grown = std::realloc(block, end - at);
    if (grown != block) {  // moved: not at the top (or not glibc's allocator); nothing is advised
      std::free(grown ? grown : block);
      return false;
    }
  }
  if (!more) {
    if (from - at >= 64) {
      // The remainder's chunk header sits just below `from`.
      void* head = std::realloc(block, from - at - 32);
      if (head != block) {  // moved (never for a shrink in glibc; ASan's does): nothing is advised
        std::free(head);
        return false;
      }
      block = nullptr;
    }
    huge_begin = from;
  }
  std::free(block);
  if (end <= from) return true;
  // Inside the heap: the block reached `end`.
  ::madvise(reinterpret_cast<void*>(from), end - from, MADV_HUGEPAGE);
  ::madvise(reinterpret_cast<void*>(from), end - from, MADV_POPULATE_WRITE);
  huge_end = end;
  return true;
}

}  // namespace

// Why: on a VM a page never touched costs ~8 us at its first write even when
// MADV_POPULATE_WRITE mapped it (the host backs it then), ~17 us when it
// faults too; a 2 MB page costs ~0.1 ms in all. A command on a 1,000-endpoint
// state touches ~2 MB of new heap: 9.6 -> 7.4 ms for `vm show` on a file.
void heap_on_huge_pages(bool on) {
  huge_heap = on;
  // The heap's top is never given back while on (its huge pages would be
  // split); glibc's default when off.
  mallopt(M_TRIM_THRESHOLD, on ? INT32_MAX : 128 * 1024);
}

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
    if (huge_heap && bytes <= kMaxHuge && prefault_huge(bytes)) return;
    if (2 * bytes > trim && !huge_heap) {
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
