// The MPI implementation of septa::Communicator (MPI_COMM_WORLD), used when the process was
// started by an MPI launcher; otherwise the job is this one process.
#include <mpi.h>

#include <cstdlib>
#include <limits>

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
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce(std::vector<uint64_t>& values, Op op) override {
    MPI_Op mpi_op = op == Op::kSum ? MPI_SUM : op == Op::kMax ? MPI_MAX : op == Op::kMin ? MPI_MIN : MPI_BOR;
    MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_count(values.size()), MPI_UINT64_T, mpi_op,
                  MPI_COMM_WORLD);
  }

  std::vector<std::string> allgather(const std::string& mine) override {
    int count = checked_count(mine.size());
    std::vector<int> counts(size_), displacements(size_);
    MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      displacements[r] = checked_count(total);
      total += static_cast<std::size_t>(counts[r]);
    }
    checked_count(total);
    std::string all(total, '\0');
    MPI_Allgatherv(mine.data(), count, MPI_BYTE, all.data(), counts.data(), displacements.data(),
                   MPI_BYTE, MPI_COMM_WORLD);
    std::vector<std::string> parts(size_);
    for (int r = 0; r < size_; ++r) parts[r] = all.substr(displacements[r], counts[r]);
    return parts;
  }

  void broadcast(std::string& bytes, int root) override {
    unsigned long long count = bytes.size();
    MPI_Bcast(&count, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD);
    bytes.resize(count);
    MPI_Bcast(bytes.data(), checked_count(count), MPI_BYTE, root, MPI_COMM_WORLD);
  }

  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }

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
