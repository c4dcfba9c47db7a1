// Tests: N ranks as threads of one process (a Communicator without MPI).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "septa/communicator.h"

namespace septa::crf::test_support {

// N ranks as threads of one process, each collective a write, a barrier, a read and a barrier.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), slots_(static_cast<std::size_t>(size)) {}
  int size() const { return size_; }
  std::vector<std::string> exchange(int rank, std::string mine) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slots_[static_cast<std::size_t>(rank)] = std::move(mine);
    }
    sync();
    std::vector<std::string> all = slots_;
    sync();
    return all;
  }

 private:
  void sync() {
    std::unique_lock<std::mutex> lock(mutex_);
    const unsigned long generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      ready_.notify_all();
    } else {
      ready_.wait(lock, [&] { return generation_ != generation; });
    }
  }
  int size_;
  std::vector<std::string> slots_;
  std::mutex mutex_;
  std::condition_variable ready_;
  int arrived_ = 0;
  unsigned long generation_ = 0;
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void allreduce(std::vector<uint64_t>& values, Op op) override {
    const std::string mine(reinterpret_cast<const char*>(values.data()), 8 * values.size());
    const std::vector<std::string> all = group_.exchange(rank_, mine);
    for (std::size_t i = 0; i < values.size(); ++i) {
      uint64_t v = 0, acc = op == Op::kMin ? UINT64_MAX : 0;
      for (const std::string& part : all) {
        std::memcpy(&v, part.data() + 8 * i, 8);
        acc = op == Op::kSum ? acc + v : op == Op::kMax ? std::max(acc, v)
              : op == Op::kMin ? std::min(acc, v) : (acc | v);
      }
      values[i] = acc;
    }
  }
  std::vector<std::string> allgather(std::string mine) override {
    return group_.exchange(rank_, std::move(mine));
  }
  std::vector<std::string> alltoall(const std::vector<std::string>& to) override {
    // Everyone's buffers for everyone, serialised as (size, bytes) per destination.
    std::string mine;
    for (const std::string& part : to) {
      const uint64_t n = part.size();
      mine.append(reinterpret_cast<const char*>(&n), 8);
      mine.append(part);
    }
    const std::vector<std::string> all = group_.exchange(rank_, std::move(mine));
    std::vector<std::string> out;
    for (const std::string& from : all) {
      std::size_t at = 0;
      for (int q = 0; q < size(); ++q) {
        uint64_t n;
        std::memcpy(&n, from.data() + at, 8);
        if (q == rank_) out.push_back(from.substr(at + 8, n));
        at += 8 + n;
      }
    }
    return out;
  }
  void broadcast(std::string& bytes, int root) override {
    bytes = group_.exchange(rank_, bytes)[static_cast<std::size_t>(root)];
  }
  void barrier() override { group_.exchange(rank_, std::string()); }
  [[noreturn]] void abort(int) override { throw std::logic_error("abort"); }

 private:
  ThreadGroup& group_;
  int rank_;
};

}  // namespace septa::crf::test_support
