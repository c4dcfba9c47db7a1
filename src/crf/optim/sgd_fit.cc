// fit_sharded_sgd: the rounds of local SGD over shards and their mixing (the scheme is described
// in sgd.h and shard_mix.h), in one process or over MPI ranks.
#include "crf/optim/sgd.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>

#include "crf/io/binary_io.h"
#include "crf/optim/huge_pages.h"
#include "crf/optim/shard_mix.h"
#include "crf/parallel/instance_exchange.h"
#include "crf/parallel/keep_buffers.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// The entries [first, end) of update u in the weights [lo, hi).
std::pair<std::size_t, std::size_t> entries_in(const ShardUpdate& u, uint32_t lo, uint32_t hi) {
  const std::size_t first = static_cast<std::size_t>(
      std::lower_bound(u.index.begin(), u.index.end(), lo) - u.index.begin());
  const std::size_t end = static_cast<std::size_t>(
      std::lower_bound(u.index.begin() + first, u.index.end(), hi) - u.index.begin());
  return {first, end};
}

// Bytes write_update writes for n entries.
constexpr std::size_t update_bytes(std::size_t n) {
  return 6 * sizeof(uint64_t) + n * (sizeof(uint32_t) + sizeof(double));
}

// Shard s's update restricted to the weights [lo, hi) (its scalars whole).
void write_update(ByteWriter& out, std::size_t s, const ShardUpdate& u, uint32_t lo, uint32_t hi) {
  out.u64(s);
  out.f64(u.loss);
  out.f64(u.decay);
  out.f64(u.share);
  const auto [first, end] = entries_in(u, lo, hi);
  out.u64(end - first);
  out.bytes().append(reinterpret_cast<const char*>(u.index.data() + first),
                     sizeof(uint32_t) * (end - first));
  out.u64(end - first);
  out.bytes().append(reinterpret_cast<const char*>(u.value.data() + first),
                     sizeof(double) * (end - first));
}

}  // namespace

MinimizerResult fit_sharded_sgd(const ShardedSgd& sgd, int epochs, double c2, int threads,
                                std::vector<double>& w, const EpochCallback& on_epoch,
                                const std::atomic<bool>* stop, int first_epoch,
                                Communicator* ranks) {
  MinimizerResult result;
  SgdProfile profile;
  const double start = profile.on ? now_seconds() : 0.0;
  const std::size_t S = sgd.shards(), D = sgd.dimension(), M = sgd.mixes();
  const std::size_t R = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  const KeepRoundBuffers keep_buffers(R > 1);
  std::vector<std::size_t> mine;  // shards trained here (over ranks: sgd.shards_of(me, R))
  for (std::size_t s = sgd.shards_of(me, R).first; s < sgd.shards_of(me, R).second; ++s)
    mine.push_back(s);
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, mine.size()));
  std::vector<std::vector<double, HugePageAllocator<double>>> buffer(workers);  // [workers][D] = z between rounds
  std::vector<std::vector<uint64_t>> touched(workers, std::vector<uint64_t>(D / 64 + 1, 0));
  std::vector<char> full_sync(workers, 1);             // buffer must be copied from z
  std::vector<char> synced(workers, 0);                // buffer brought to z this round
  std::vector<ShardUpdate> updates(S);                 // [S] this round's updates
  std::vector<std::string> parts;  // over ranks: this round's messages, read in place by the mix
  std::vector<double> sync_time(workers, 0.0);
  std::vector<double*> copies;  // the mix's: the buffers of workers 1.. that take its changes
  ShardMix mixer(sgd, R > 1 ? ranks : nullptr);
  double G = 1.0;  // the weights are G z, z = w; G folds into z after each epoch
  // The steps and the mix read z and the buffers at random: both on huge pages (z is w's copy,
  // written back after every epoch). z is copied from w and ||z||^2 taken (the ranges' sums
  // added in range order, as the fold adds them) range by range on all threads, not on the
  // calling thread alone: on the project's VM a process's first huge pages cost 1.9-2.4 ms per
  // MB on their first write (0.13 ms per MB for pages the process freed and took again).
  HugeArray<double> z(D);  // [D] (written in full below: not cleared first)
  double zz = 0.0;
  {
    std::vector<double> norm_part(ShardMix::kRanges, 0.0);  // [kRanges]
    parallel_for_owned(ShardMix::kRanges, threads, [&](std::size_t r) {
      double sum = 0.0;
      for (std::size_t d = D * r / ShardMix::kRanges; d < D * (r + 1) / ShardMix::kRanges; ++d) {
        z[d] = w[d];
        sum += z[d] * z[d];
      }
      norm_part[r] = sum;
    });
    for (double part : norm_part) zz += part;
  }
  result.stop_reason = "epochs done";
  for (int epoch = first_epoch; epoch <= epochs; ++epoch) {
    double loss = 0.0;
    for (std::size_t round = 0; round < M; ++round) {
      if (profile.on) profile.part_cpu.emplace_back(S, 0.0);
      // The parts go to the workers as they come free (their results do not depend on the
      // worker: each starts from z): at 2 threads a fixed assignment, each worker a step
      // behind the other, left a core idle on every uneven pair of parts.
      std::fill(synced.begin(), synced.end(), 0);
      auto work = [&](std::size_t i, std::size_t worker) {
        auto& v = buffer[worker];
        if (!synced[worker]) {  // the worker's first part this round: bring its buffer to z
          const double c0 = profile.on ? thread_cpu_seconds() : 0.0;
          // (otherwise the last mix wrote its changes to the buffer: already z)
          if (full_sync[worker]) {
            v.assign(z.begin(), z.end());
            full_sync[worker] = 0;
          }
          synced[worker] = 1;
          if (profile.on) sync_time[worker] = thread_cpu_seconds() - c0;
        }
        const std::size_t s = mine[i];
        const double c0 = profile.on ? thread_cpu_seconds() : 0.0;
        sgd.train_part(s, epoch, round, v.data(), z.data(), G, touched[worker], updates[s], stop);
        if (profile.on) profile.part_cpu.back()[s] = thread_cpu_seconds() - c0;
      };
      parallel_for_workers(mine.size(), static_cast<int>(workers), work);
      // A worker that got no part this round misses this mix's changes: a whole copy next time.
      for (std::size_t worker = 1; worker < workers; ++worker)
        if (!synced[worker]) full_sync[worker] = 1;
      const double t0 = profile.on ? now_seconds() : 0.0;
      if (profile.on) profile.sync += *std::max_element(sync_time.begin(), sync_time.end());
      const double c_comm = profile.on ? thread_cpu_seconds() : 0.0;
      if (R > 1) {
        // Rank q accumulates the mix's weight ranges [cut_q, cut_q+1) (ShardMix::mix): it
        // gets every shard's scalars and the part of its update in those ranges (an alltoall);
        // its own shards' updates stay here whole.
        std::vector<std::string> to(R);
        for (std::size_t q = 0; q < R; ++q) {
          if (q == me) continue;
          ByteWriter bytes;
          // sized first: appended piece by piece, the message was copied as it grew
          std::size_t size = 0;
          for (std::size_t s : mine) {
            const auto [first, end] = entries_in(updates[s], mixer.rank_lo(q), mixer.rank_hi(q));
            size += update_bytes(end - first);
          }
          bytes.bytes().reserve(size);
          for (std::size_t s : mine) write_update(bytes, s, updates[s], mixer.rank_lo(q), mixer.rank_hi(q));
          SEPTA_CHECK(bytes.bytes().size() == size);
          to[q] = std::move(bytes.bytes());
        }
        ranks->alltoall_into(to, parts);  // (parts' buffers kept from round to round)
        to.clear();
        std::vector<char> seen(S, 0);
        for (std::size_t q = 0; q < parts.size(); ++q) {
          if (q == me) continue;
          RoundReader in(parts[q]);
          for (std::size_t s = sgd.shards_of(q, R).first; s < sgd.shards_of(q, R).second; ++s) {
            const uint64_t id = in.get<uint64_t>();
            SEPTA_CHECK(id == s && !seen[s]);
            seen[s] = 1;
            ShardUpdate& u = updates[s];
            u.loss = in.get<double>();
            u.decay = in.get<double>();
            u.share = in.get<double>();
            // read in place by the mix (parts lives until after it): no copy into the vectors
            std::size_t n_index, n_values;
            u.index_at = reinterpret_cast<const uint32_t*>(in.array<uint32_t>(n_index));
            u.value_at = in.array<double>(n_values);
            u.received = n_index;
            SEPTA_CHECK(n_index == n_values);
          }
          SEPTA_CHECK(in.at_end());
        }
      }
      for (std::size_t s = 0; s < S; ++s) loss += updates[s].loss;
      if (profile.on) {
        profile.serial += now_seconds() - t0;
        profile.comm += thread_cpu_seconds() - c_comm;
      }
      // The mix's scratch is worker 0's buffer, equal to z after the parts (a rank without
      // shards of its own brings it to z here) and again after the mix.
      if (full_sync[0]) {
        buffer[0].assign(z.begin(), z.end());
        full_sync[0] = 0;
      }
      // The other workers' buffers (equal to z unless they wait for a whole copy) take the
      // mix's changes in its apply pass; not after the epoch's last round (G folds into z, and
      // every buffer is copied whole).
      copies.clear();
      for (std::size_t worker = 1; worker < workers; ++worker) {
        if (full_sync[worker]) continue;
        if (round + 1 < M)
          copies.push_back(buffer[worker].data());
        else
          full_sync[worker] = 1;
      }
      const double gamma = mixer.mix(sgd, updates, z.data(), G, zz, buffer[0].data(), copies,
                                     threads, profile, ranks);
      if (profile.on) {
        double round_loss = 0.0;
        for (const ShardUpdate& u : updates) round_loss += u.loss;
        std::fprintf(stderr, "round %d.%zu loss %.1f gamma %.2f G %.6f zz %.1f\n", epoch, round, round_loss, gamma, G, zz);
        profile.gammas.push_back(gamma);
        for (const ShardUpdate& u : updates) profile.entries += static_cast<double>(u.size());
      }
      if (stop && stop->load()) break;
    }
    // Fold G into z so that the weights after the epoch are w itself (a resumed run starts
    // from them bit for bit), and the workers copy them.
    // One pass over 64 ranges: the fold, ||z||^2 (the ranges' sums added in range order) and
    // the copy to w (a serial pass before).
    const double f0 = profile.on ? thread_cpu_seconds() : 0.0;
    const double g = G;
    std::vector<double> norm_part(ShardMix::kRanges, 0.0);  // [kRanges]
    parallel_for_owned(ShardMix::kRanges, threads, [&](std::size_t r) {
      double sum = 0.0;
      for (std::size_t d = D * r / ShardMix::kRanges; d < D * (r + 1) / ShardMix::kRanges; ++d) {
        if (g != 1.0) z[d] *= g;
        sum += z[d] * z[d];
        w[d] = z[d];
      }
      norm_part[r] = sum;
    });
    zz = 0.0;
    for (double part : norm_part) zz += part;
    if (G != 1.0) {
      G = 1.0;
      std::fill(full_sync.begin(), full_sync.end(), 1);
    }
    // (measured on the calling thread at one thread)
    if (profile.on) {
      profile.folds += thread_cpu_seconds() - f0;
      profile.parallel += thread_cpu_seconds() - f0;
    }
    result.iterations = epoch;
    result.objective = loss + c2 * zz;
    if (stop && stop->load()) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
    if (on_epoch && !on_epoch(epoch, result.objective)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
  }
  if (profile.on) {
    profile.total = now_seconds() - start;
    profile.report(sgd, threads);
  }
  return result;
}

}  // namespace septa::crf
