// The MPI communicator's collectives (run under mpiexec with 1-4 ranks): every rank checks
// what it receives against what the others must have sent, for buffer sizes around the slot
// that carries small buffers whole (0, 1, slot - 9 .. slot + 1 bytes for 1-4 ranks, and
// 100,000 bytes), different sizes from different ranks in the same call. Exit status 0: passed.
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "septa/communicator.h"

namespace {

// The bytes rank `from` sends to rank `to` in call `call` (`to` = -1: to all), `n` of them.
std::string bytes_of(int from, int to, int call, std::size_t n) {
  std::string s(n, '\0');
  uint32_t x = 2166136261u ^ static_cast<uint32_t>(from * 131 + (to + 1) * 7 + call * 1009);
  for (char& c : s) {
    x = x * 16777619u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// The size rank `from` sends to `to` in call `call`: sizes around the slot boundaries of every
// rank count (4096 - 8 for up to 16 ranks), 0 and 1, and a large one.
std::size_t size_of(int from, int to, int call) {
  static const std::size_t sizes[] = {0, 1, 4087, 4088, 4089, 100000, 7, 4080};
  return sizes[static_cast<std::size_t>(from * 3 + (to + 1) * 5 + call) % 8];
}

int failures = 0;
void expect(bool ok, const char* what, int rank, int peer, int call) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "FAIL: %s: rank %d from %d, call %d\n", what, rank, peer, call);
}

}  // namespace

// Under MPI: the process's TCP stream sockets (Open MPI's PMIx client connection to the
// launcher among them) that exist once the communicator is made; those without TCP_NODELAY.
int tcp_sockets_without_nodelay(int& sockets) {
  int without = 0;
  sockets = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  while (const dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == dirfd(dir)) continue;
    int type = 0;
    socklen_t length = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage address{};
    socklen_t address_length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) != 0 ||
        (address.ss_family != AF_INET && address.ss_family != AF_INET6))
      continue;
    ++sockets;
    int nodelay = 0;
    length = sizeof nodelay;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &length) != 0 || nodelay == 0) ++without;
  }
  closedir(dir);
  return without;
}

int main() {
  std::unique_ptr<septa::Communicator> comm = septa::make_world_communicator();
  const int me = comm->rank(), R = comm->size();
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    // MPI_Finalize's small messages to the launcher leave at once, not after a delayed ACK
    int sockets = 0;
    const int without = tcp_sockets_without_nodelay(sockets);
    expect(without == 0, "TCP sockets without TCP_NODELAY after MPI_Init", me, without, sockets);
  }
  std::vector<std::string> kept;  // alltoall_into's buffers, kept over the calls
  std::vector<std::string> kept_gathered;  // allgather_into's, kept over the calls
  for (int call = 0; call < 16; ++call) {
    // allgather: rank q's buffer on every rank
    const std::vector<std::string> gathered =
        comm->allgather(bytes_of(me, -1, call, size_of(me, -1, call)));
    expect(gathered.size() == static_cast<std::size_t>(R), "allgather count", me, -1, call);
    for (int q = 0; q < R && q < static_cast<int>(gathered.size()); ++q)
      expect(gathered[q] == bytes_of(q, -1, call, size_of(q, -1, call)), "allgather", me, q, call);
    // allgather_into: the same into buffers that held the last call's (longer or shorter)
    // ones; this rank's left as it was
    const std::string mine = bytes_of(me, -1, call, size_of(me, -1, call));
    if (kept_gathered.size() == static_cast<std::size_t>(R)) kept_gathered[me] = "own";
    comm->allgather_into(mine.data(), mine.size(), kept_gathered);
    expect(kept_gathered.size() == static_cast<std::size_t>(R), "allgather_into count", me, -1, call);
    for (int q = 0; q < R && q < static_cast<int>(kept_gathered.size()); ++q)
      if (q != me)
        expect(kept_gathered[q] == gathered[q], "allgather_into", me, q, call);
      else if (call > 0)
        expect(kept_gathered[q] == "own", "allgather_into left this rank's buffer", me, q, call);
    // alltoall: rank q's buffer for this rank
    std::vector<std::string> to(static_cast<std::size_t>(R));
    for (int q = 0; q < R; ++q) to[q] = bytes_of(me, q, call, size_of(me, q, call));
    const std::vector<std::string> got = comm->alltoall(to);
    expect(got.size() == static_cast<std::size_t>(R), "alltoall count", me, -1, call);
    for (int q = 0; q < R && q < static_cast<int>(got.size()); ++q)
      expect(got[q] == bytes_of(q, me, call, size_of(q, me, call)), "alltoall", me, q, call);
    // alltoall_into: the same into buffers that held the last call's (longer or shorter) ones
    comm->alltoall_into(to, kept);
    expect(kept == got, "alltoall_into", me, -1, call);
    // broadcast from each root in turn
    const int root = call % R;
    std::string b = me == root ? bytes_of(root, -2, call, size_of(root, -2, call)) : "stale";
    comm->broadcast(b, root);
    expect(b == bytes_of(root, -2, call, size_of(root, -2, call)), "broadcast", me, root, call);
    // integer allreduce
    std::vector<uint64_t> sum{static_cast<uint64_t>(me + 1), static_cast<uint64_t>(call)};
    comm->allreduce(sum, septa::Communicator::Op::kSum);
    expect(sum[0] == static_cast<uint64_t>(R * (R + 1) / 2) &&
               sum[1] == static_cast<uint64_t>(call * R),
           "allreduce", me, -1, call);
  }
  // allgather_sized: every rank's bytes at their offsets, from a separate buffer (even calls)
  // or from their place in the output (odd calls)
  for (int call = 0; call < 8; ++call) {
    std::vector<std::size_t> counts(static_cast<std::size_t>(R));
    std::size_t total = 0, mine_at = 0;
    for (int q = 0; q < R; ++q) {
      counts[q] = size_of(q, -3, call);
      if (q == me) mine_at = total;
      total += counts[q];
    }
    std::string out(total, '\0');
    const std::string mine = bytes_of(me, -3, call, counts[me]);
    if (call % 2 == 1) {
      std::copy(mine.begin(), mine.end(), out.begin() + static_cast<std::ptrdiff_t>(mine_at));
      comm->allgather_sized(out.data() + mine_at, out.data(), counts);
    } else {
      comm->allgather_sized(mine.data(), out.data(), counts);
    }
    std::size_t at = 0;
    for (int q = 0; q < R; ++q) {
      expect(out.compare(at, counts[q], bytes_of(q, -3, call, counts[q])) == 0, "allgather_sized",
             me, q, call);
      at += counts[q];
    }
  }
  // alltoall_sized: buffers kept from call to call, sized by the receiver beforehand; this
  // rank's own entry is left as it was
  std::vector<std::string> from(static_cast<std::size_t>(R));
  for (int call = 0; call < 8; ++call) {
    std::vector<std::string> to(static_cast<std::size_t>(R));
    for (int q = 0; q < R; ++q) {
      to[q] = bytes_of(me, q, call + 100, size_of(me, q, call));
      from[q].assign(size_of(q, me, call), 'x');
    }
    from[me] = "own";
    comm->alltoall_sized(to, from);
    for (int q = 0; q < R; ++q)
      expect(q == me ? from[q] == "own" : from[q] == bytes_of(q, me, call + 100, size_of(q, me, call)),
             "alltoall_sized", me, q, call);
  }
  // send_start / recv_start / finish: 9 messages each way between every two ranks, sizes
  // around the shared-memory and TCP eager limits (4 KiB, 64 KiB) and 1 MiB; in even rounds the
  // receives start before the sends, in odd rounds after them (messages arrive unexpected); the
  // receives finish in reverse order, or odd messages first, and the sends after them.
  static const std::size_t p2p_sizes[] = {0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 1 << 20};
  constexpr int kMessages = 9;
  for (int round = 0; round < 4; ++round) {
    std::vector<std::vector<std::string>> in(static_cast<std::size_t>(R)), out(in.size());
    std::vector<std::vector<std::size_t>> recv_tickets(in.size());
    std::vector<std::size_t> send_tickets;
    auto size_for = [&](int from, int to, int m) {
      return p2p_sizes[static_cast<std::size_t>(m + from + 2 * to + round) % kMessages];
    };
    auto start_receives = [&] {
      for (int q = 0; q < R; ++q)
        if (q != me) {
          in[q].resize(kMessages);
          for (int m = 0; m < kMessages; ++m) {
            in[q][m].assign(size_for(q, me, m), 'x');
            recv_tickets[q].push_back(comm->recv_start(&in[q][m][0], in[q][m].size(), q));
          }
        }
    };
    if (round % 2 == 0) start_receives();
    for (int q = 0; q < R; ++q)
      if (q != me)
        for (int m = 0; m < kMessages; ++m) {
          out[q].push_back(bytes_of(me, q, 200 + 10 * round + m, size_for(me, q, m)));
          send_tickets.push_back(comm->send_start(out[q].back().data(), out[q].back().size(), q));
        }
    if (round % 2 == 1) start_receives();
    for (int q = R - 1; q >= 0; --q) {
      if (q == me) continue;
      std::vector<int> order;
      for (int m = 0; m < kMessages; ++m) order.push_back(round < 2 ? kMessages - 1 - m : m);
      if (round >= 2) std::stable_partition(order.begin(), order.end(), [](int m) { return m % 2 == 1; });
      for (int m : order) {
        comm->finish(recv_tickets[q][m]);
        expect(in[q][m] == bytes_of(q, me, 200 + 10 * round + m, size_for(q, me, m)),
               "send_start / recv_start", me, q, round * 100 + m);
      }
    }
    for (std::size_t t = send_tickets.size(); t-- > 0;) comm->finish(send_tickets[t]);
  }
  if (failures == 0 && me == 0)
    std::printf("communicator: %d ranks, 24 calls and 4 rounds of point-to-point each: ok\n", R);
  return failures == 0 ? 0 : 1;
}
