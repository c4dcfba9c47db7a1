// The MPI implementation of septa::Communicator (MPI_COMM_WORLD), used when the process was
// started by an MPI launcher; otherwise the job is this one process.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <thread>

#include "septa/communicator.h"
#include "septa/error.h"

namespace septa {
namespace {

// Whether an MPI launcher (Open MPI's mpirun, Hydra, PMIx) started this process: MPI is only
// initialised then, so a plain "septa train" never pays for it.
bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(variable) != nullptr) return true;
  return false;
}

int checked_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("MPI message of " + std::to_string(bytes) + " bytes exceeds 2 GiB");
  return static_cast<int>(bytes);
}

/*
 * Waits for a nonblocking collective without busy polling. Open MPI's blocking collectives
 * spin on the CPU while a rank waits for a slower one; on a host whose cores are shared (more
 * ranks than free cores, other jobs) the spinning rank takes CPU from the rank it waits for,
 * and it burns CPU that shows as work. Here the wait polls MPI_Test (which also drives the
 * transfer: Open MPI progresses nonblocking collectives only inside MPI calls) for a short
 * spin, then sleeps between polls with a doubling nap capped at kMaxNap. The cost is at most
 * about kMaxNap of latency per collective (and per round of a large transfer); the result is
 * the same bytes as the blocking call.
 */
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kMaxNap = std::chrono::microseconds(1000);

void wait_for(MPI_Request& request) {
  int done = 0;
  const auto spin_end = std::chrono::steady_clock::now() + kSpin;
  do {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  } while (!done && std::chrono::steady_clock::now() < spin_end);
  auto nap = std::chrono::microseconds(5);
  while (!done) {
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, kMaxNap);
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
  }
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    // MPI_Finalize synchronises the ranks with a busy wait: arrive together (rank 0 may still
    // be writing the model).
    barrier();
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce(std::vector<uint64_t>& values, Op op) override {
    MPI_Op mpi_op = op == Op::kSum ? MPI_SUM : op == Op::kMax ? MPI_MAX : op == Op::kMin ? MPI_MIN : MPI_BOR;
    MPI_Request request;
    MPI_Iallreduce(MPI_IN_PLACE, values.data(), checked_count(values.size()), MPI_UINT64_T, mpi_op,
                   MPI_COMM_WORLD, &request);
    wait_for(request);
  }

  std::vector<std::string> allgather(const std::string& mine) override {
    int count = checked_count(mine.size());
    std::vector<int> counts(size_), displacements(size_);
    MPI_Request request;
    MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, &request);
    wait_for(request);
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      displacements[r] = checked_count(total);
      total += static_cast<std::size_t>(counts[r]);
    }
    checked_count(total);
    std::string all(total, '\0');
    MPI_Iallgatherv(mine.data(), count, MPI_BYTE, all.data(), counts.data(),
                    displacements.data(), MPI_BYTE, MPI_COMM_WORLD, &request);
    wait_for(request);
    std::vector<std::string> parts(size_);
    for (int r = 0; r < size_; ++r) parts[r] = all.substr(displacements[r], counts[r]);
    return parts;
  }

  std::vector<std::string> alltoall(const std::vector<std::string>& to) override {
    if (to.size() != static_cast<std::size_t>(size_))
      throw InternalError("alltoall: " + std::to_string(to.size()) + " buffers for " +
                          std::to_string(size_) + " ranks");
    std::vector<int> send_counts(size_), send_displacements(size_);
    std::vector<int> counts(size_), displacements(size_);
    std::string out;
    for (int q = 0; q < size_; ++q) {
      send_counts[q] = checked_count(to[q].size());
      send_displacements[q] = checked_count(out.size());
      out += to[q];
    }
    MPI_Request request;
    MPI_Ialltoall(send_counts.data(), 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD,
                  &request);
    wait_for(request);
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      displacements[r] = checked_count(total);
      total += static_cast<std::size_t>(counts[r]);
    }
    checked_count(total);
    std::string all(total, '\0');
    MPI_Ialltoallv(out.data(), send_counts.data(), send_displacements.data(), MPI_BYTE,
                   all.data(), counts.data(), displacements.data(), MPI_BYTE, MPI_COMM_WORLD,
                   &request);
    wait_for(request);
    std::vector<std::string> parts(size_);
    for (int r = 0; r < size_; ++r) parts[r] = all.substr(displacements[r], counts[r]);
    return parts;
  }

  void broadcast(std::string& bytes, int root) override {
    unsigned long long count = bytes.size();
    MPI_Request request;
    MPI_Ibcast(&count, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD, &request);
    wait_for(request);
    bytes.resize(count);
    MPI_Ibcast(bytes.data(), checked_count(count), MPI_BYTE, root, MPI_COMM_WORLD, &request);
    wait_for(request);
  }

  void barrier() override {
    MPI_Request request;
    MPI_Ibarrier(MPI_COMM_WORLD, &request);
    wait_for(request);
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator() {
  if (!launched_by_mpi()) return std::make_unique<LocalCommunicator>();
  return std::make_unique<MpiCommunicator>();
}

}  // namespace septa
