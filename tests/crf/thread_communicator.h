// Tests: N ranks as threads of one process (a Communicator without MPI).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
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

  // Point-to-point as a rendezvous: a send leaves its buffer here, the receiver copies from
  // it when it finishes its receive, and the send finishes only after that (so a sender that
  // changes its buffer too early, or waits in the wrong order, shows).
  using Key = std::tuple<int, int, uint64_t>;  // from, to, number of the message between them
  void post(const Key& key, const char* data, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mail_mutex_);
    mail_[key] = Letter{data, bytes, false};
    mail_ready_.notify_all();
  }
  void take(const Key& key, char* data, std::size_t bytes) {
    std::unique_lock<std::mutex> lock(mail_mutex_);
    mail_ready_.wait(lock, [&] { return mail_.count(key) != 0; });
    Letter& letter = mail_[key];
    if (letter.bytes != bytes) throw std::logic_error("point-to-point sizes differ");
    if (bytes > 0) std::memcpy(data, letter.data, bytes);
    letter.taken = true;
    mail_ready_.notify_all();
  }
  void wait_taken(const Key& key) {
    std::unique_lock<std::mutex> lock(mail_mutex_);
    mail_ready_.wait(lock, [&] { return mail_[key].taken; });
    mail_.erase(key);
  }

 private:
  struct Letter {
    const char* data;
    std::size_t bytes;
    bool taken;
  };
  std::map<Key, Letter> mail_;
  std::mutex mail_mutex_;
  std::condition_variable mail_ready_;

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
  std::size_t send_start(const char* data, std::size_t bytes, int peer) override {
    check_peer(peer);
    const ThreadGroup::Key key{rank_, peer, sent_[static_cast<std::size_t>(peer)]++};
    group_.post(key, data, bytes);
    tickets_.push_back(Ticket{true, key, nullptr, 0, false});
    return tickets_.size() - 1;
  }
  std::size_t recv_start(char* data, std::size_t bytes, int peer) override {
    check_peer(peer);
    const ThreadGroup::Key key{peer, rank_, received_[static_cast<std::size_t>(peer)]++};
    tickets_.push_back(Ticket{false, key, data, bytes, false});
    return tickets_.size() - 1;
  }
  void finish(std::size_t ticket) override {
    if (ticket >= tickets_.size() || tickets_[ticket].done)
      throw std::logic_error("finish: ticket not open");
    Ticket& t = tickets_[ticket];
    if (t.send)
      group_.wait_taken(t.key);
    else
      group_.take(t.key, t.data, t.bytes);
    t.done = true;
  }
  void barrier() override { group_.exchange(rank_, std::string()); }
  [[noreturn]] void abort(int) override { throw std::logic_error("abort"); }

 private:
  struct Ticket {
    bool send;
    ThreadGroup::Key key;
    char* data;  // receives: where the bytes go
    std::size_t bytes;
    bool done;
  };
  void check_peer(int peer) const {
    if (peer < 0 || peer >= size() || peer == rank_) throw std::logic_error("bad peer");
  }
  ThreadGroup& group_;
  int rank_;
  std::vector<uint64_t> sent_ = std::vector<uint64_t>(static_cast<std::size_t>(group_.size()), 0);
  std::vector<uint64_t> received_ = std::vector<uint64_t>(static_cast<std::size_t>(group_.size()), 0);
  std::vector<Ticket> tickets_;
};

}  // namespace septa::crf::test_support
