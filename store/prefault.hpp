// Heap the state parser is about to fill, mapped in one call ahead of it.
#pragma once

#include <cstddef>
#include <string>

namespace azlb::store {

// Makes the next `bytes` of allocations come from memory already mapped.
// Best effort: on a kernel without MADV_POPULATE_WRITE nothing changes.
void prefault_heap(std::size_t bytes);
// From now on prefault_heap puts the heap's next bytes on transparent huge
// pages, and the heap is never trimmed: for a short-lived process (a
// command); the engine, which lives long, turns it off.
void heap_on_huge_pages(bool on);
// The text, its parsed document and the model take about this many bytes of
// heap per byte of TOML (60 MB for a 6.8 MB state of 20,000 VMs).
constexpr std::size_t kParseBytesPerTextByte = 8;

// s.reserve(n), its new pages mapped in one call (a reply being received).
void reserve_mapped(std::string& s, std::size_t n);

}  // namespace azlb::store
