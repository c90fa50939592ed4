// Plain aligned text tables, the way `docker ps` or `kubectl get` print them.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace azlb::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }
  void print(std::ostream&, const std::string& indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace azlb::cli
