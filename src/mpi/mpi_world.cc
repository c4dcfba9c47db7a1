// The MPI implementation of septa::Communicator (MPI_COMM_WORLD), used when the process was
// started by an MPI launcher; otherwise the job is this one process.
#include <mpi.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <string>
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

/*
 * Open MPI's start-up on one host: MPI_Init probes every point-to-point layer (pml) it was built
 * with, and on Debian's build the probe of the `cm` layer (its PSM and libfabric transports)
 * takes 0.2-0.3 s per rank, after which it picks `ob1` (shared memory between the ranks of a
 * host) anyway: measured on the project's 2-core machine, MPI_Init of 2 ranks 0.25-0.38 s by
 * default and 0.02-0.07 s with `--mca pml ob1` (mpirun of a program that only initialises and
 * finalises: 0.39-0.56 s -> 0.11-0.25 s), against a 2-rank CoNLL-2000 `-a separate` run of
 * about 2 s. So when every rank of the job runs on this host (Open MPI's local size equals the
 * world size) and neither the environment nor an MCA parameter file names a pml (an exclusion
 * such as Debian's `pml = ^ucx` names none), septa asks for ob1 before MPI_Init. Jobs over
 * several hosts keep Open MPI's own choice (UCX or PSM on a fast network).
 */
bool names_pml(const std::string& file) {
  std::FILE* in = std::fopen(file.c_str(), "r");
  if (in == nullptr) return false;
  bool named = false;
  char line[512];
  while (!named && std::fgets(line, sizeof line, in) != nullptr) {
    const char* at = line;
    while (*at == ' ' || *at == '\t') ++at;
    if (std::strncmp(at, "pml", 3) != 0) continue;
    at += 3;
    while (*at == ' ' || *at == '\t') ++at;
    if (*at != '=') continue;
    ++at;
    while (*at == ' ' || *at == '\t') ++at;
    named = *at != '^';
  }
  std::fclose(in);
  return named;
}

void prefer_shared_memory_pml() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  if (size == nullptr || local == nullptr || std::strcmp(size, local) != 0) return;
  if (std::getenv("OMPI_MCA_pml") != nullptr) return;
  std::string user_file;
  if (const char* home = std::getenv("HOME")) user_file = std::string(home) + "/.openmpi/mca-params.conf";
  for (const std::string& file : {std::string("/etc/openmpi/openmpi-mca-params.conf"), user_file})
    if (!file.empty() && names_pml(file)) return;
  setenv("OMPI_MCA_pml", "ob1", 0);
}

/*
 * Open MPI's PMIx client talks to the launcher over a loopback TCP socket without TCP_NODELAY,
 * and MPI_Finalize's fence sends a few small messages in a row: Nagle's algorithm holds the
 * later ones until the launcher acknowledges the first, which it delays (Linux's delayed ACK,
 * 40 ms). MPI_Finalize took 45-60 ms per job on the project machine (1 or 2 ranks, a program
 * that only initialises and finalises), 4-10 ms with TCP_NODELAY set on the process's TCP
 * sockets after MPI_Init. Open MPI's own TCP transport (btl tcp) sets it already; the flag
 * changes only when small writes leave, never what arrives.
 */
void send_small_writes_at_once() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  const int own = dirfd(dir);
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == own) continue;
    int type = 0;
    socklen_t length = sizeof type;
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &length) != 0 ||
        type != SOCK_STREAM)
      continue;
    sockaddr_storage address{};
    socklen_t address_length = sizeof address;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&address), &address_length) != 0 ||
        (address.ss_family != AF_INET && address.ss_family != AF_INET6))
      continue;
    const int one = 1;
    setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  closedir(dir);
}

int checked_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error("MPI message of " + std::to_string(bytes) + " bytes exceeds 2 GiB");
  return static_cast<int>(bytes);
}

/*
 * Waits for a nonblocking collective without unbounded busy polling. Open MPI's blocking
 * collectives spin on the CPU for as long as a rank waits for a slower one; on a host whose cores
 * are shared (more ranks than free cores, other jobs) the spinning rank takes CPU from the rank it
 * waits for. Here the wait polls MPI_Test (which also drives the transfer: Open MPI progresses
 * nonblocking collectives only inside MPI calls) for up to kSpin, then sleeps between polls with
 * a doubling nap capped at kMaxNap; the result is the same bytes as the blocking call.
 * Most waits of a training round are shorter than a few milliseconds, and a nap of up to 1 ms
 * overslept most of them: with kSpin 50 us and kMaxNap 1 ms the 2-rank CoNLL-2000 `-a separate`
 * bench had a wall speed-up of 1.02 (idle 2-core machine); with 2 ms and 200 us, 1.25, and the
 * MPI ctest cases (up to 4 ranks on 2 cores) ran in 8.4 s instead of 32.7 s.
 * The spin yields between polls: on a loaded host the core goes to whatever else is runnable
 * (often the rank being waited for) instead of the poll loop, and on an idle one the yield
 * returns at once. Loaded 2-core machine (load 13), 2-rank CoNLL-2000 `-a separate`, 3
 * alternating pairs: CPU per rank (user + system) about 3.0 -> 2.75 s, wall 19.2 -> 17.3 s.
 * The naps are short and exact (27 Nov 17:00): Linux's default timer slack (50 us) made every
 * nap of 5 us one of 55 us or more; the communicator sets the slack of the waiting thread to
 * 1 us, so a nap of 10 us wakes after about 10 us, and the spin ends after 200 us instead of
 * 2 ms (on a loaded host a spin of 2 ms was mostly sched_yield system calls: about 12% of a
 * rank's CPU samples). At load 5-6, 3 alternating 2-rank runs, system time per rank
 * 0.42-0.48 s -> 0.34-0.44 s.
 */
constexpr auto kSpin = std::chrono::microseconds(200);
constexpr auto kFirstNap = std::chrono::microseconds(10);
constexpr auto kMaxNap = std::chrono::microseconds(100);

// With SEPTA_MPI_PROFILE set, each rank prints at the end how many collective steps it waited
// for and how long in all (the waits for slower ranks and the transfers).
struct WaitProfile {
  bool on = std::getenv("SEPTA_MPI_PROFILE") != nullptr;
  long waits = 0;
  double seconds = 0.0;
  double init_seconds = 0.0;  // MPI_Init's wall time
  // waits by duration: < 20 us, < 100 us, < 500 us, < 2 ms, longer
  long histogram[5] = {0, 0, 0, 0, 0};
  double histogram_seconds[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
};
WaitProfile& wait_profile() {
  static WaitProfile profile;
  return profile;
}

// Polls `poll` (true: done) as described above: spinning with yields for up to kSpin, then
// with naps; one wait of the profile.
template <typename Poll>
void wait_until(Poll poll) {
  const auto start = std::chrono::steady_clock::now();
  const auto spin_end = start + kSpin;
  bool done = poll();
  while (!done && std::chrono::steady_clock::now() < spin_end) {
    std::this_thread::yield();  // a runnable process (the awaited rank) goes first
    done = poll();
  }
  auto nap = kFirstNap;
  while (!done) {
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, kMaxNap);
    done = poll();
  }
  WaitProfile& profile = wait_profile();
  if (profile.on) {
    ++profile.waits;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    profile.seconds += waited;
    const int bucket = waited < 20e-6 ? 0 : waited < 100e-6 ? 1 : waited < 500e-6 ? 2 : waited < 2e-3 ? 3 : 4;
    ++profile.histogram[bucket];
    profile.histogram_seconds[bucket] += waited;
  }
}

void wait_for(int count, MPI_Request* requests) {
  wait_until([&] {
    int done = 0;
    MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    return done != 0;
  });
}

void wait_for(MPI_Request& request) { wait_for(1, &request); }

/*
 * One-step exchange of buffers whose sizes the receivers do not know (alltoall, allgather):
 * every buffer goes out at once point to point (tag kProbedTag), and each receiver matches the
 * message from each peer with MPI_Improbe, sizes its part from the match and receives it
 * straight into it (MPI_Imrecv). Messages between two ranks with one tag match in the order
 * they were sent, and every rank runs the collectives in the same order, so the k-th such
 * exchange on a rank matches the k-th message of each peer. The waiting follows wait_for
 * (spin with yields, then short naps). Before (27 Nov), each collective first moved a
 * fixed-size slot (the size and the first bytes) and a larger buffer followed in a second
 * step: two waits for each of the round messages of -a separate's mix.
 */
constexpr int kProbedTag = 7204;
void exchange_probed(const std::vector<std::pair<const char*, std::size_t>>& to,
                     std::vector<std::string>& from, int me) {
  const int R = static_cast<int>(to.size());
  std::vector<MPI_Request> requests;
  requests.reserve(2 * static_cast<std::size_t>(R));
  for (int q = 0; q < R; ++q) {
    if (q == me) continue;
    requests.emplace_back();
    // MPI only reads a send buffer.
    MPI_Isend(const_cast<char*>(to[q].first), checked_count(to[q].second), MPI_BYTE, q,
              kProbedTag, MPI_COMM_WORLD, &requests.back());
  }
  int unmatched = R - 1;
  std::vector<char> matched(static_cast<std::size_t>(R), 0);
  matched[static_cast<std::size_t>(me)] = 1;
  // Matches what has arrived and starts its receive; true once everything is matched and done.
  const auto progress = [&]() {
    for (int r = 0; r < R && unmatched > 0; ++r) {
      if (matched[static_cast<std::size_t>(r)]) continue;
      int flag = 0;
      MPI_Message message;
      MPI_Status status;
      MPI_Improbe(r, kProbedTag, MPI_COMM_WORLD, &flag, &message, &status);
      if (!flag) continue;
      int count = 0;
      MPI_Get_count(&status, MPI_BYTE, &count);
      std::string& part = from[static_cast<std::size_t>(r)];
      part.resize(static_cast<std::size_t>(count));
      requests.emplace_back();
      MPI_Imrecv(part.data(), count, MPI_BYTE, &message, &requests.back());
      matched[static_cast<std::size_t>(r)] = 1;
      --unmatched;
    }
    int done = 0;
    MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
    return done && unmatched == 0;
  };
  wait_until(progress);
}

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      prefer_shared_memory_pml();
      const auto start = std::chrono::steady_clock::now();
      MPI_Init(nullptr, nullptr);
      wait_profile().init_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    // exact naps in wait_for (see kSpin); this thread only, and the threads it starts later
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    send_small_writes_at_once();
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    const WaitProfile& profile = wait_profile();
    if (profile.on)
      std::fprintf(stderr, "mpi profile: rank %d: MPI_Init %.3f s (pml %s); waited %ld times, %.3f s\n",
                   rank_, profile.init_seconds,
                   std::getenv("OMPI_MCA_pml") ? std::getenv("OMPI_MCA_pml") : "Open MPI's choice",
                   profile.waits, profile.seconds);
    if (profile.on) {
      std::fprintf(stderr, "mpi profile: rank %d waits < 20 us / 100 us / 500 us / 2 ms / longer:", rank_);
      for (int b = 0; b < 5; ++b)
        std::fprintf(stderr, " %ld (%.3f s)", profile.histogram[b], profile.histogram_seconds[b]);
      std::fprintf(stderr, "\n");
    }
    // MPI_Finalize synchronises the ranks with a busy wait: arrive together (rank 0 may still
    // be writing the model).
    barrier();
    const auto start = std::chrono::steady_clock::now();
    MPI_Finalize();
    if (profile.on)
      std::fprintf(stderr, "mpi profile: rank %d: MPI_Finalize %.3f s\n", rank_,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
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

  // Every rank's buffer to every other, point to point in one step (exchange_probed).
  std::vector<std::string> allgather(std::string mine) override {
    std::vector<std::pair<const char*, std::size_t>> to(
        static_cast<std::size_t>(size_), {mine.data(), mine.size()});
    std::vector<std::string> parts(static_cast<std::size_t>(size_));
    exchange_probed(to, parts, rank_);
    parts[static_cast<std::size_t>(rank_)] = std::move(mine);
    return parts;
  }

  // to[q] to rank q, point to point in one step (exchange_probed).
  std::vector<std::string> alltoall(const std::vector<std::string>& to) override {
    if (to.size() != static_cast<std::size_t>(size_))
      throw InternalError("alltoall: " + std::to_string(to.size()) + " buffers for " +
                          std::to_string(size_) + " ranks");
    std::vector<std::pair<const char*, std::size_t>> out;
    out.reserve(to.size());
    for (const std::string& bytes : to) out.emplace_back(bytes.data(), bytes.size());
    std::vector<std::string> parts(to.size());
    exchange_probed(out, parts, rank_);
    parts[static_cast<std::size_t>(rank_)] = to[static_cast<std::size_t>(rank_)];
    return parts;
  }

  // The kept buffers are overwritten in place (exchange_probed resizes each to its message).
  void alltoall_into(const std::vector<std::string>& to, std::vector<std::string>& from) override {
    if (to.size() != static_cast<std::size_t>(size_))
      throw InternalError("alltoall_into: " + std::to_string(to.size()) + " buffers for " +
                          std::to_string(size_) + " ranks");
    std::vector<std::pair<const char*, std::size_t>> out;
    out.reserve(to.size());
    for (const std::string& bytes : to) out.emplace_back(bytes.data(), bytes.size());
    from.resize(to.size());
    exchange_probed(out, from, rank_);
    from[static_cast<std::size_t>(rank_)] = to[static_cast<std::size_t>(rank_)];
  }

  // The same bytes to every other rank, into the kept buffers (exchange_probed).
  void allgather_into(const char* mine, std::size_t bytes, std::vector<std::string>& from) override {
    const std::vector<std::pair<const char*, std::size_t>> to(static_cast<std::size_t>(size_),
                                                              {mine, bytes});
    from.resize(to.size());
    exchange_probed(to, from, rank_);
  }

  // The sizes are known: one MPI_Iallgatherv straight into out (the weights' ranges of the
  // range-split L-BFGS after every trial point: no slot step, no received copies).
  void allgather_sized(const char* mine, char* out, const std::vector<std::size_t>& counts) override {
    if (counts.size() != static_cast<std::size_t>(size_))
      throw InternalError("allgather_sized: " + std::to_string(counts.size()) + " counts for " +
                          std::to_string(size_) + " ranks");
    std::vector<int> count(size_), at(size_);
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      count[r] = checked_count(counts[r]);
      at[r] = checked_count(total);
      total += counts[r];
    }
    checked_count(total);
    char* place = out + at[rank_];
    if (mine != place) std::memcpy(place, mine, counts[rank_]);
    MPI_Request request;
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, count.data(), at.data(), MPI_BYTE,
                    MPI_COMM_WORLD, &request);
    wait_for(request);
  }

  // The sizes are known on both sides: point to point straight into the kept buffers.
  void alltoall_sized(const std::vector<std::string>& to, std::vector<std::string>& from) override {
    if (to.size() != static_cast<std::size_t>(size_) || from.size() != to.size())
      throw InternalError("alltoall_sized: " + std::to_string(to.size()) + " and " +
                          std::to_string(from.size()) + " buffers for " + std::to_string(size_) +
                          " ranks");
    constexpr int kTag = 7202;
    std::vector<MPI_Request> requests;
    requests.reserve(2 * to.size());
    for (int r = 0; r < size_; ++r) {
      if (r == rank_ || from[r].empty()) continue;
      requests.emplace_back();
      MPI_Irecv(from[r].data(), checked_count(from[r].size()), MPI_BYTE, r, kTag, MPI_COMM_WORLD,
                &requests.back());
    }
    for (int q = 0; q < size_; ++q) {
      if (q == rank_ || to[q].empty()) continue;
      requests.emplace_back();
      // MPI only reads a send buffer.
      MPI_Isend(const_cast<char*>(to[q].data()), checked_count(to[q].size()), MPI_BYTE, q, kTag,
                MPI_COMM_WORLD, &requests.back());
    }
    if (!requests.empty()) wait_for(static_cast<int>(requests.size()), requests.data());
  }

  // Requests in start order; a ticket is its request's index (the list restarts once every
  // request has finished).
  std::size_t send_start(const char* data, std::size_t bytes, int peer) override {
    requests_.emplace_back();
    // MPI only reads a send buffer.
    MPI_Isend(const_cast<char*>(data), checked_count(bytes), MPI_BYTE, checked_peer(peer), kPointTag,
              MPI_COMM_WORLD, &requests_.back());
    ++open_;
    return requests_.size() - 1;
  }
  std::size_t recv_start(char* data, std::size_t bytes, int peer) override {
    requests_.emplace_back();
    MPI_Irecv(data, checked_count(bytes), MPI_BYTE, checked_peer(peer), kPointTag, MPI_COMM_WORLD,
              &requests_.back());
    ++open_;
    return requests_.size() - 1;
  }
  void finish(std::size_t ticket) override {
    if (ticket >= requests_.size() || requests_[ticket] == MPI_REQUEST_NULL)
      throw InternalError("finish: ticket " + std::to_string(ticket) + " is not open");
    wait_for(requests_[ticket]);  // sets it to MPI_REQUEST_NULL
    if (--open_ == 0) requests_.clear();
  }

  // The size and the first bytes in one slot; the rest, if any, in a second broadcast.
  void broadcast(std::string& bytes, int root) override {
    const std::size_t slot = slot_bytes(), inline_bytes = slot - sizeof(uint64_t);
    std::string head(slot, '\0');
    if (rank_ == root) fill_slot(head.data(), bytes);
    MPI_Request request;
    MPI_Ibcast(head.data(), static_cast<int>(slot), MPI_BYTE, root, MPI_COMM_WORLD, &request);
    wait_for(request);
    const uint64_t count = slot_size(head.data());
    if (rank_ != root) bytes = slot_payload(head.data(), count, inline_bytes);
    if (count <= inline_bytes) return;
    MPI_Ibcast(bytes.data() + inline_bytes, checked_count(count - inline_bytes), MPI_BYTE, root,
               MPI_COMM_WORLD, &request);
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
  /*
   * A broadcast first moves one fixed-size slot: the buffer's size and its first slot - 8
   * bytes. A buffer that fits arrives in that one step; a larger one follows in a second.
   * (allgather and alltoall moved such slots too until 28 Nov; now exchange_probed.) The slot
   * shrinks with the rank count (64 bytes at least, 4 KiB at most).
   */
  std::size_t slot_bytes() const {
    return std::clamp<std::size_t>(65536 / static_cast<std::size_t>(size_), 64, 4096);
  }
  // slot [slot_bytes()] = the size of `bytes`, then as many of its first bytes as fit.
  void fill_slot(char* slot, const std::string& bytes) const {
    const uint64_t count = bytes.size();
    std::memcpy(slot, &count, sizeof count);
    const std::size_t room = slot_bytes() - sizeof count;
    std::memcpy(slot + sizeof count, bytes.data(), std::min<std::size_t>(bytes.size(), room));
  }
  static uint64_t slot_size(const char* slot) {
    uint64_t count;
    std::memcpy(&count, slot, sizeof count);
    return count;
  }
  // A buffer of the slot's size holding the slot's bytes (the rest to be received into it).
  static std::string slot_payload(const char* slot, uint64_t count, std::size_t room) {
    std::string bytes(static_cast<std::size_t>(count), '\0');
    std::memcpy(bytes.data(), slot + sizeof count, std::min<std::size_t>(bytes.size(), room));
    return bytes;
  }
  int checked_peer(int peer) const {
    if (peer < 0 || peer >= size_ || peer == rank_)
      throw InternalError("point-to-point with rank " + std::to_string(peer) + " from rank " +
                          std::to_string(rank_) + " of " + std::to_string(size_));
    return peer;
  }
  static constexpr int kPointTag = 7203;  // send_start / recv_start (alltoall_sized: 7202)
  std::vector<MPI_Request> requests_;     // [started] point-to-point requests, NULL once finished
  std::size_t open_ = 0;                  // of them not finished
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

std::unique_ptr<Communicator> make_world_communicator() {
  if (!launched_by_mpi()) return std::make_unique<LocalCommunicator>();
  return std::make_unique<MpiCommunicator>();
}

}  // namespace septa
