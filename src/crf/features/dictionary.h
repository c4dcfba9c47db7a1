// A bijection between strings and dense ids 0..size-1, in insertion order.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace septa::crf {

class Dictionary {
 public:
  // Id of `name`, or -1 when absent.
  int32_t find(const std::string& name) const {
    const auto it = ids_.find(name);
    return it == ids_.end() ? -1 : it->second;
  }
  // Id of `name`, adding it when absent.
  int32_t add(const std::string& name) {
    const auto [it, inserted] = ids_.try_emplace(name, static_cast<int32_t>(names_.size()));
    if (inserted) names_.push_back(name);
    return it->second;
  }
  // Id of `name`, adding it (moved) when absent.
  int32_t add(std::string&& name) {
    const auto [it, inserted] = ids_.try_emplace(std::move(name), static_cast<int32_t>(names_.size()));
    if (inserted) names_.push_back(it->first);
    return it->second;
  }
  const std::string& name(int32_t id) const { return names_[static_cast<std::size_t>(id)]; }
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  void reserve(std::size_t n) { ids_.reserve(n); names_.reserve(n); }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> names_;  // [size] id -> string
};

}  // namespace septa::crf
