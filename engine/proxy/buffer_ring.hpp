// A ring of provided buffers: the kernel picks a free buffer when a receive
// completes, so an idle connection holds no memory of ours.
#pragma once

#include <liburing.h>

#include <cstdint>

namespace azlb::engine {

class BufferRing {
 public:
  // `count` must be a power of two.
  BufferRing(io_uring& ring, std::uint16_t group, std::uint32_t count, std::uint32_t size);
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  std::uint16_t group() const { return group_; }
  std::uint32_t size() const { return size_; }
  char* data(std::uint16_t id) const { return base_ + static_cast<std::size_t>(id) * size_; }
  // Hands a buffer back to the kernel once its contents have been sent.
  void recycle(std::uint16_t id);

 private:
  io_uring& ring_;
  io_uring_buf_ring* br_ = nullptr;
  char* base_ = nullptr;
  std::uint16_t group_;
  std::uint32_t count_, size_;
  std::size_t ring_bytes_;
};

}  // namespace azlb::engine
