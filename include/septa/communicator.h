// The one interface between septa's training code and a distributed engine (MPI): rank and
// size, collectives over byte buffers, and a job-wide abort. Training code never calls MPI; the
// MPI implementation lives in its own library (septa_world), linked only by the command line.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace septa {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  enum class Op { kSum, kMax, kMin, kOr };
  // values[i] = op over all ranks' values[i]; every rank passes the same count. Integers only,
  // so the result never depends on the reduction order.
  virtual void allreduce(std::vector<uint64_t>& values, Op op) = 0;
  // Every rank's buffer, in rank order, on every rank (`mine` moves into its place).
  virtual std::vector<std::string> allgather(std::string mine) = 0;
  // Personalised exchange: to[q] (one buffer per rank) goes to rank q; returns the buffers the
  // ranks sent to this one, in rank order.
  virtual std::vector<std::string> alltoall(const std::vector<std::string>& to) = 0;
  // alltoall into `from` (resized to one buffer per rank), whose buffers the caller keeps from
  // one exchange to the next: with MPI a buffer is only grown, and zero-filled, by as much as
  // its message is longer than the last one (-a separate's round messages, every round).
  virtual void alltoall_into(const std::vector<std::string>& to, std::vector<std::string>& from) {
    from = alltoall(to);
  }
  // allgather of the `bytes` bytes at `mine` into `from` (resized to one buffer per rank; this
  // rank's left as it is), whose buffers the caller keeps from one call to the next, as
  // alltoall_into's: with MPI each is only grown, and zero-filled, by what its message adds.
  virtual void allgather_into(const char* mine, std::size_t bytes, std::vector<std::string>& from) {
    std::vector<std::string> parts = allgather(std::string(mine, bytes));
    from.resize(parts.size());
    for (std::size_t q = 0; q < parts.size(); ++q)
      if (q != static_cast<std::size_t>(rank())) from[q] = std::move(parts[q]);
  }
  // `bytes` of rank `root` on every rank.
  virtual void broadcast(std::string& bytes, int root) = 0;
  // An allgather whose sizes every rank knows: rank r's counts[r] bytes land in out at offset
  // counts[0] + ... + counts[r-1]; this rank's come from `mine` (which may already be their
  // place in out). With MPI one step straight into out; by default through allgather().
  virtual void allgather_sized(const char* mine, char* out, const std::vector<std::size_t>& counts) {
    const std::size_t me = static_cast<std::size_t>(rank());
    const std::vector<std::string> parts = allgather(std::string(mine, counts.at(me)));
    std::size_t at = 0;
    for (std::size_t r = 0; r < parts.size(); ++r) {
      if (parts[r].size() != counts.at(r)) std::abort();  // every rank passes the same counts
      if (r != me || out + at != mine) std::copy(parts[r].begin(), parts[r].end(), out + at);
      at += counts[r];
    }
  }
  // An alltoall whose sizes both sides know: to[q] goes to rank q into from[r] of rank q (r
  // this rank), which the caller has sized already (from[r] of this rank is left as it is;
  // equal sizes on both sides, empty ones move nothing). With MPI one step of point-to-point
  // transfers straight into the kept buffers (no size slot, no allocation, no zero fill); by
  // default through alltoall().
  virtual void alltoall_sized(const std::vector<std::string>& to, std::vector<std::string>& from) {
    const std::size_t me = static_cast<std::size_t>(rank());
    std::vector<std::string> parts = alltoall(to);
    for (std::size_t r = 0; r < parts.size(); ++r) {
      if (r == me) continue;
      if (parts[r].size() != from.at(r).size()) std::abort();  // both sides pass the same sizes
      from[r] = std::move(parts[r]);
    }
  }
  // Nonblocking point-to-point, to overlap transfers with work: send_start / recv_start begin
  // moving `bytes` bytes to / from rank `peer` (not this one) and return a ticket; finish(ticket)
  // returns once that send buffer may be changed again / the bytes have arrived. Between two
  // ranks, receives match sends in the order both were started (equal sizes on both sides);
  // tickets may be finished in any order, each once, and a buffer is left alone until then.
  virtual std::size_t send_start(const char* data, std::size_t bytes, int peer) = 0;
  virtual std::size_t recv_start(char* data, std::size_t bytes, int peer) = 0;
  virtual void finish(std::size_t ticket) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (a fatal error on one rank); never returns.
  [[noreturn]] virtual void abort(int code) = 0;
};

// One process: the collectives are identities.
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce(std::vector<uint64_t>&, Op) override {}
  std::vector<std::string> allgather(std::string mine) override {
    std::vector<std::string> parts(1);
    parts[0] = std::move(mine);
    return parts;
  }
  std::vector<std::string> alltoall(const std::vector<std::string>& to) override { return {to.at(0)}; }
  void broadcast(std::string&, int) override {}
  // No other rank to send to or receive from.
  std::size_t send_start(const char*, std::size_t, int) override { std::abort(); }
  std::size_t recv_start(char*, std::size_t, int) override { std::abort(); }
  void finish(std::size_t) override { std::abort(); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

// The processes of this job: an MPI communicator when septa was built with SEPTA_WITH_MPI and
// launched by mpirun (or another MPI launcher), else a LocalCommunicator. Create it once per
// process; destroying it finalises MPI.
std::unique_ptr<Communicator> make_world_communicator();

}  // namespace septa
