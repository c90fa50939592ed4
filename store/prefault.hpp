// Heap the state parser is about to fill, mapped in one call ahead of it.
#pragma once

#include <cstddef>

namespace azlb::store {

// Makes the next `bytes` of allocations come from memory already mapped.
// Best effort: on a kernel without MADV_POPULATE_WRITE nothing changes.
void prefault_heap(std::size_t bytes);

}  // namespace azlb::store
