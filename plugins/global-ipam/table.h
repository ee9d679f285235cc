#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace global_ipam::cli {

// A text table for the operator: rows in the order added, columns padded to their widest
// cell and separated by two spaces, the last column not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace global_ipam::cli
