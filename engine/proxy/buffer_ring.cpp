#include "engine/proxy/buffer_ring.hpp"

#include <sys/mman.h>

#include <cstring>
#include <stdexcept>
#include <string>

namespace azlb::engine {

BufferRing::BufferRing(io_uring& ring, std::uint16_t group, std::uint32_t count, std::uint32_t size)
    : ring_(ring), group_(group), count_(count), size_(size) {
  // liburing 2.3 has no io_uring_setup_buf_ring: map the ring ourselves,
  // page-aligned as the kernel requires, and register it.
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) throw std::runtime_error("cannot map buffer ring");
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  if (int r = io_uring_register_buf_ring(&ring_, &reg, 0); r != 0)
    throw std::runtime_error(std::string("cannot register buffer ring: ") + std::strerror(-r));
  void* mem_data = mmap(nullptr, static_cast<std::size_t>(count) * size, PROT_READ | PROT_WRITE,
                        MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem_data == MAP_FAILED) throw std::runtime_error("cannot map buffers");
  base_ = static_cast<char*>(mem_data);
  for (std::uint32_t i = 0; i < count; ++i)
    io_uring_buf_ring_add(br_, data(static_cast<std::uint16_t>(i)), size, static_cast<std::uint16_t>(i),
                          io_uring_buf_ring_mask(count), static_cast<int>(i));
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
}

BufferRing::~BufferRing() {
  io_uring_unregister_buf_ring(&ring_, group_);
  munmap(br_, ring_bytes_);
  munmap(base_, static_cast<std::size_t>(count_) * size_);
}

void BufferRing::recycle(std::uint16_t id) {
  io_uring_buf_ring_add(br_, data(id), size_, id, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace azlb::engine
