// Pipes for splicing bulk transfers socket to socket. Each costs two file
// descriptors, so a worker keeps a bounded number and lends them only to
// connections that are moving a lot of data; an empty pipe is reused.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/proxy/fd_budget.hpp"

namespace azlb::engine {

struct Pipe {
  int r = -1, w = -1;
};

class PipePool {
 public:
  PipePool(std::uint32_t max_pipes, int pipe_bytes, FdBudget&);
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // A pipe's index, or -1 when all are lent or the descriptor budget is spent.
  int take();
  // An empty pipe goes back to the pool; one still holding bytes is closed.
  void give_back(int index, bool empty);
  const Pipe& at(int index) const { return pipes_[static_cast<std::size_t>(index)]; }
  int capacity() const { return pipe_bytes_; }

 private:
  std::vector<Pipe> pipes_;
  std::vector<int> idle_;    // open and empty
  std::vector<int> closed_;  // slots without a pipe
  int pipe_bytes_;
  FdBudget& fds_;
};

}  // namespace azlb::engine
