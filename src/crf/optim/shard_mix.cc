#include "crf/optim/shard_mix.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void SgdProfile::add_pass(const std::vector<double>& task_cpu) {
  passes.push_back(task_cpu);
  for (double x : task_cpu) parallel += x;
}

namespace {

// The wall time of tasks [n] run by parallel_for on T threads: each task, in order, goes to the
// thread that is free first.
double list_schedule(const std::vector<double>& tasks, std::size_t T) {
  std::vector<double> free_at(std::max<std::size_t>(1, std::min(T, tasks.size())), 0.0);
  for (double x : tasks) *std::min_element(free_at.begin(), free_at.end()) += x;
  return free_at.empty() ? 0.0 : *std::max_element(free_at.begin(), free_at.end());
}

}  // namespace

void SgdProfile::report(const ShardedSgd& sgd, int threads) const {
  if (!on) return;
  double work = 0.0;
  for (const auto& round : part_cpu)
    for (double x : round) work += x;
  std::fprintf(stderr,
               "sgd profile: D=%zu N=%zu S=%zu M=%zu eta0=%g rounds=%zu threads=%d wall %.3f s: "
               "shard parts %.3f s CPU, worker sync %.3f s, mix+step %.3f s CPU, serial %.3f s; "
               "%.0f updated weights per round\n",
               sgd.dimension(), sgd.instances(), sgd.shards(), sgd.mixes(), sgd.rate(), part_cpu.size(),
               threads, total, work, sync, parallel, serial,
               entries / static_cast<double>(std::max<std::size_t>(part_cpu.size(), 1)));
  double pass_sum[3] = {0.0, 0.0, 0.0};  // the mix's passes come in threes (ShardMix::mix)
  for (std::size_t i = 0; i < passes.size(); ++i)
    for (double x : passes[i]) pass_sum[i % 3] += x;
  std::fprintf(stderr, "sgd profile: mix passes: accumulate %.3f s, step search %.3f s, apply %.3f s CPU; rank exchanges %.3f s CPU\n",
               pass_sum[0], pass_sum[1], pass_sum[2], comm);
  // The spread of the parts within a round (one part per thread at S threads: the slowest
  // sets the round's time), split by the round's place in its epoch (the first round's parts
  // also shuffle their shard's order for the epoch).
  double ratio_first = 0.0, ratio_rest = 0.0, lost = 0.0;
  std::size_t n_first = 0, n_rest = 0;
  for (std::size_t k = 0; k < part_cpu.size(); ++k) {
    const std::vector<double>& round = part_cpu[k];
    if (round.empty()) continue;
    double sum = 0.0;
    for (double x : round) sum += x;
    const double mean = sum / static_cast<double>(round.size());
    const double slowest = *std::max_element(round.begin(), round.end());
    if (mean <= 0.0) continue;
    lost += slowest - mean;
    if (k % sgd.mixes() == 0) {
      ratio_first += slowest / mean;
      ++n_first;
    } else {
      ratio_rest += slowest / mean;
      ++n_rest;
    }
  }
  std::fprintf(stderr,
               "sgd profile: parts: slowest / mean part per round %.3f (first round of an epoch) "
               "%.3f (others); slowest - mean summed over rounds %.3f s\n",
               n_first ? ratio_first / static_cast<double>(n_first) : 0.0,
               n_rest ? ratio_rest / static_cast<double>(n_rest) : 0.0, lost);
  std::fprintf(stderr, "sgd profile: gamma");
  for (double g : gammas) std::fprintf(stderr, " %.2f", g);
  std::fprintf(stderr, "\n");
  const double one = work + sync + parallel + serial;
  for (std::size_t T : {1, 2, 4, 8, 16}) {
    double path = sync + serial + folds / static_cast<double>(T), mix = 0.0;
    for (const std::vector<double>& pass : passes) mix += list_schedule(pass, T);
    path += mix;
    for (const auto& round : part_cpu) path += list_schedule(round, T);
    std::fprintf(stderr,
                 "sgd profile:   T=%2zu critical path %.3f s (mix passes %.3f s), speed-up %.2f\n",
                 T, path, mix, one / path);
  }
}

double ShardMix::mix(const ShardedSgd& sgd, const std::vector<ShardUpdate>& updates, double* z,
                     double& G, double& zz, double* scratch, const std::vector<double*>& copies,
                     int threads, SgdProfile& profile, Communicator* ranks) {
  double a = 0.0, shares = 0.0;
  for (const ShardUpdate& u : updates) {
    a += u.share * u.decay;
    shares += u.share;
  }
  if (shares == 0.0) {  // a round without instances (tiny data, many parts): nothing moved
    for (std::vector<uint32_t>& range : updated_) range.clear();
    return 1.0;
  }
  // delta' lives in the scratch (equal to z): 0 where the step search reads a weight that no
  // shard updated, delta' where one did (set at the first update in accumulate, or received
  // from its rank), and z elsewhere (never read). Back to z after the apply pass.
  // The zeros and the copy back are written range by range in the two range passes (a serial
  // pass each had cost 0.2 ms per pairwise round on CoNLL-2000, on the calling thread).
  delta_ = scratch;
  const std::vector<std::pair<std::size_t, std::size_t>>& reads = sgd.step_reads();
  // f(first, last) for the pieces of the reads in range r
  const auto reads_in = [&](std::size_t r, auto&& f) {
    const std::size_t lo = bounds_[r], hi = bounds_[r + 1];
    auto it = std::lower_bound(reads.begin(), reads.end(), lo,
                               [](const std::pair<std::size_t, std::size_t>& read, std::size_t at) {
                                 return read.second <= at;
                               });
    for (; it != reads.end() && it->first < hi; ++it) f(std::max(it->first, lo), std::min(it->second, hi));
  };
  const std::size_t R = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  SEPTA_CHECK(R + 1 == cut_.size());  // the ranks the mix was made for
  const std::size_t r0 = r0_, r1 = r1_;
  plan_pieces(threads, updates.size());
  const std::size_t P = pieces_.size();
  std::vector<double> cpu(P, 0.0);
  // [kRanges] pieces of the range still running: the last one to finish merges the range
  std::unique_ptr<std::atomic<uint32_t>[]> running(new std::atomic<uint32_t>[kRanges]);
  for (std::size_t r = 0; r < kRanges; ++r) running[r].store(static_cast<uint32_t>(first_piece_[r + 1] - first_piece_[r]));
  // (every range zeroed, its own ranges accumulated: over ranks the others' delta' arrives in
  // share_ranges). Both range passes run each thread's own ranges first (parallel_for_owned):
  // a range's delta' and z stay in one core's cache from the accumulate to the apply (taken
  // as they came, the two threads' ranges interleaved: at 2 threads the accumulate and apply
  // passes cost 5-10% more CPU on CoNLL-2000). A heavy range is accumulated in pieces
  // (plan_pieces), merged by the last of them to finish.
  parallel_for_owned(P, threads, [&](std::size_t p) {
    const double c0 = profile.on ? thread_cpu_seconds() : 0.0;
    const Piece& piece = pieces_[p];
    const std::size_t r = piece.range;
    reads_in(r, [&](std::size_t first, std::size_t last) {
      first = std::max<std::size_t>(first, piece.lo);
      last = std::min<std::size_t>(last, piece.hi);
      if (first < last) std::fill(delta_ + first, delta_ + last, 0.0);
    });
    if (r >= r0 && r < r1) {
      if (first_piece_[r + 1] - first_piece_[r] == 1) {
        entries_[r] = accumulate(r, piece.lo, piece.hi, updates, z, G, a, updated_[r], nullptr,
                                 &wd_[r], &dd_[r]);
      } else {
        piece_entries_[p] = accumulate(r, piece.lo, piece.hi, updates, z, G, a, piece_fresh_[p],
                                       piece_segments_[p].data(), nullptr, nullptr);
        if (running[r].fetch_sub(1, std::memory_order_acq_rel) == 1) merge_pieces(r, z, G);
      }
    }
    if (profile.on) cpu[p] = thread_cpu_seconds() - c0;
  });
  if (R > 1) {
    const double c0 = profile.on ? thread_cpu_seconds() : 0.0;
    share_ranges(*ranks, r0, r1);
    if (profile.on) profile.comm += thread_cpu_seconds() - c0;
  }
  double wd = 0.0, dd = 0.0;
  for (std::size_t r = 0; r < kRanges; ++r) {
    wd += wd_[r];
    dd += dd_[r];
  }
  std::vector<double> step_cpu;  // [blocks]
  const double gamma = sgd.mixing_step(z, G, a, delta_, G * G * zz, wd, dd, threads,
                                       profile.on ? &step_cpu : nullptr,
                                       R > 1 ? ranks : nullptr);
  const double G_new = G * (1.0 + gamma * (a - 1.0));
  std::vector<double> cpu2(kRanges, 0.0);
  parallel_for_owned(kRanges, threads, [&](std::size_t r) {
    const double c0 = profile.on ? thread_cpu_seconds() : 0.0;
    double dz = 0.0;
    // z and delta' prefetched: the updated weights are scattered over z (out of cache), and
    // this pass runs on every rank whole (it was 7% of a rank's CPU on CoNLL-2000).
    constexpr std::size_t kAhead = 16;
    const std::vector<uint32_t>& updated = updated_[r];
    double* const copy = copies.empty() ? nullptr : copies[0];
    for (std::size_t i = 0; i < updated.size(); ++i) {
      if (i + kAhead < updated.size()) {
        __builtin_prefetch(z + updated[i + kAhead], 1);
        __builtin_prefetch(&delta_[updated[i + kAhead]], 1);
        if (copy) __builtin_prefetch(copy + updated[i + kAhead], 1);
      }
      const uint32_t d = updated[i];
      const double w = G * z[d];
      const double moved = (w + gamma * (delta_[d] + (a - 1.0) * w)) / G_new;
      dz += moved * moved - z[d] * z[d];
      z[d] = moved;
      delta_[d] = moved;
      if (copy) copy[d] = moved;
    }
    // The other copies, a pass each, their lines written ahead as the first copy's are
    // (unprefetched, each cost 2x the first's on CoNLL-2000 at 8 threads: the apply pass's CPU
    // grew 7-11x from 1 to 16 threads on the Xeon).
    for (std::size_t k = 1; k < copies.size(); ++k) {
      double* const to = copies[k];
      const std::size_t n = updated.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (i + kAhead < n) __builtin_prefetch(to + updated[i + kAhead], 1);
        to[updated[i]] = z[updated[i]];
      }
    }
    dz_[r] = dz;
    // the weights no shard updated kept their z
    reads_in(r, [&](std::size_t first, std::size_t last) { std::copy(z + first, z + last, delta_ + first); });
    if (profile.on) cpu2[r] = thread_cpu_seconds() - c0;
  });
  for (std::size_t r = 0; r < kRanges; ++r) zz += dz_[r];
  delta_ = nullptr;
  G = G_new;
  if (R > 1) rebalance();
  if (profile.on) {  // the two range passes and the step search run on all threads
    profile.add_pass(cpu);
    profile.add_pass(step_cpu);
    profile.add_pass(cpu2);
  }
  return gamma;
}

void ShardMix::share_ranges(Communicator& ranks, std::size_t r0, std::size_t r1) {
  // The message (ByteWriter's layout: for each range a u64 count and the ids, a u64 count and
  // delta', then wd, dd and the entries) is written into a buffer kept from mix to mix and
  // only grown, and the other ranks' messages arrive into kept buffers: fresh ones were
  // zero-filled every round (the send buffer by its resize, the received ones by the
  // allgather), about 3.5 MB per round and rank for CoNLL-2000's unary factor at 2 ranks.
  std::size_t size = 0;
  for (std::size_t r = r0; r < r1; ++r) size += 40 + 12 * updated_[r].size();
  if (sent_.size() < size) sent_.resize(size);
  char* at = sent_.data();
  const auto put = [&at](const void* from, std::size_t bytes) {
    if (bytes > 0) std::memcpy(at, from, bytes);
    at += bytes;
  };
  // delta' is gathered from scattered weights (out of cache): read ahead, written in place.
  constexpr std::size_t kAhead = 16;
  for (std::size_t r = r0; r < r1; ++r) {
    const std::vector<uint32_t>& updated = updated_[r];
    const uint64_t n = updated.size();
    put(&n, sizeof n);
    put(updated.data(), sizeof(uint32_t) * updated.size());
    put(&n, sizeof n);
    for (std::size_t i = 0; i < updated.size(); ++i) {
      if (i + kAhead < updated.size()) __builtin_prefetch(&delta_[updated[i + kAhead]]);
      std::memcpy(at + sizeof(double) * i, &delta_[updated[i]], sizeof(double));
    }
    at += sizeof(double) * updated.size();
    put(&wd_[r], sizeof(double));
    put(&dd_[r], sizeof(double));
    put(&entries_[r], sizeof(uint64_t));
  }
  SEPTA_CHECK(at == sent_.data() + size);
  ranks.allgather_into(sent_.data(), size, received_);
  std::vector<std::string>& parts = received_;
  const std::size_t R = parts.size(), me = static_cast<std::size_t>(ranks.rank());
  for (std::size_t q = 0; q < R; ++q) {
    if (q == me) continue;
    RoundReader in(parts[q]);
    for (std::size_t r = cut_[q]; r < cut_[q + 1]; ++r) {
      std::vector<uint32_t>& updated = updated_[r];
      in.vec(updated);
      std::size_t n;
      const char* delta = in.array<double>(n);
      SEPTA_CHECK(n == updated.size());
      const uint32_t lo = static_cast<uint32_t>(bounds_[r]), hi = static_cast<uint32_t>(bounds_[r + 1]);
      bool inside = true;
      for (uint32_t d : updated) inside &= d >= lo && d < hi;
      SEPTA_CHECK(inside);
      // scattered writes over delta' (out of cache): written ahead
      for (std::size_t i = 0; i < n; ++i) {
        if (i + kAhead < n) __builtin_prefetch(&delta_[updated[i + kAhead]], 1);
        std::memcpy(&delta_[updated[i]], delta + sizeof(double) * i, sizeof(double));
      }
      wd_[r] = in.get<double>();
      dd_[r] = in.get<double>();
      entries_[r] = in.get<uint64_t>();
    }
    SEPTA_CHECK(in.at_end());
  }
}

void ShardMix::rebalance() {
  const std::size_t R = cut_.size() - 1;
  // A range costs its shards' entries (accumulated, and sent to its rank), its updated
  // weights (sent to every rank) and a little for the shards' searches in it.
  std::vector<std::size_t> prefix(kRanges + 1, 0);  // [kRanges+1] cost of ranges [0, r)
  for (std::size_t r = 0; r < kRanges; ++r)
    prefix[r + 1] = prefix[r] + entries_[r] / 4 + updated_[r].size() + 64;
  for (std::size_t q = 1; q < R; ++q) {
    const std::size_t target = prefix[kRanges] * q / R;
    std::size_t r = cut_[q - 1];
    while (r < kRanges && prefix[r] < target) ++r;
    cut_[q] = r;
  }
  r0_ = cut_[me_];
  r1_ = cut_[me_ + 1];
}

void ShardMix::plan_pieces(int threads, std::size_t S) {
  // A range whose shard entries in the last mix exceeded a thread's share is cut into pieces
  // of about that size (at most 16): the range's result does not depend on it. (Cut at half a
  // thread's share, the many more pieces cost 15% more CPU than they saved on the unary
  // factor.)
  uint64_t total = 0;
  for (uint64_t e : entries_) total += e;
  pieces_.clear();
  first_piece_.assign(1, 0);
  for (std::size_t r = 0; r < kRanges; ++r) {
    std::size_t n = 1;
    if (threads > 1 && total > 0)
      n = std::min<std::size_t>(16, 1 + entries_[r] * static_cast<uint64_t>(threads) / total);
    const std::size_t lo = bounds_[r], hi = bounds_[r + 1];
    n = std::max<std::size_t>(1, std::min(n, hi - lo));
    for (std::size_t k = 0; k < n; ++k)
      pieces_.push_back({r, static_cast<uint32_t>(lo + (hi - lo) * k / n),
                         static_cast<uint32_t>(lo + (hi - lo) * (k + 1) / n)});
    first_piece_.push_back(pieces_.size());
  }
  const std::size_t P = pieces_.size();
  if (piece_fresh_.size() < P) {
    piece_fresh_.resize(P);
    piece_segments_.resize(P);
    piece_entries_.resize(P);
  }
  for (std::size_t p = 0; p < P; ++p) piece_segments_[p].resize(S);
}

void ShardMix::merge_pieces(std::size_t r, const double* z, double G) {
  // The order one piece would have added them in: shard by shard, within a shard by weight.
  std::vector<uint32_t>& updated = updated_[r];
  updated.clear();
  uint64_t entries = 0;
  const std::size_t p0 = first_piece_[r], p1 = first_piece_[r + 1];
  for (std::size_t p = p0; p < p1; ++p) entries += piece_entries_[p];
  const std::size_t S = piece_segments_[p0].size();
  for (std::size_t u = 0; u < S; ++u)
    for (std::size_t p = p0; p < p1; ++p) {
      const uint32_t* fresh = piece_fresh_[p].data();
      updated.insert(updated.end(), fresh + (u ? piece_segments_[p][u - 1] : 0),
                     fresh + piece_segments_[p][u]);
    }
  entries_[r] = entries;
  range_sums(r, z, G);
}

void ShardMix::range_sums(std::size_t r, const double* z, double G) {
  double wd = 0.0, dd = 0.0;
  for (uint32_t d : updated_[r]) {
    const double w = G * z[d];
    wd += w * delta_[d];
    dd += delta_[d] * delta_[d];
  }
  wd_[r] = wd;
  dd_[r] = dd;
}

uint64_t ShardMix::accumulate(std::size_t r, uint32_t lo, uint32_t hi, const std::vector<ShardUpdate>& updates,
                              const double* z, double G, double a, std::vector<uint32_t>& updated,
                              uint32_t* segments, double* wd_out, double* dd_out) {
  // [hi - lo] shards that updated weight lo + i (S <= 4096): the thread's scratch for one range
  // at a time, all zero between calls (a count per weight of the rank's ranges had cost up to
  // 2 bytes x D of resident memory).
  thread_local std::vector<uint16_t> count;
  if (count.size() < hi - lo) count.assign(hi - lo, 0);
  thread_local std::vector<uint32_t> first_updated;  // [hi - lo] the updated ids, in add order
  if (first_updated.size() < hi - lo + 1) first_updated.resize(hi - lo + 1);  // (+1: written before kept)
  uint32_t* fresh = first_updated.data();
  std::size_t n_fresh = 0;
  constexpr std::ptrdiff_t kAhead = 16;  // z and delta' prefetched (z is out of cache)
  uint64_t entries = 0;
  uint16_t* counts = count.data();  // counts[d - lo] for d in [lo, hi)
  double* delta = delta_;
  for (std::size_t s = 0; s < updates.size(); ++s) {
    const ShardUpdate& u = updates[s];
    // The shard's entries in [lo, hi): sparse weights [b, m), dense ones [m, e).
    const uint32_t* index = u.ids();
    const char* values = u.value_bytes();  // [n] doubles, read with memcpy (any alignment)
    const auto value = [values](std::size_t i) {
      double v;
      std::memcpy(&v, values + sizeof(double) * i, sizeof v);
      return v;
    };
    const std::size_t n = u.size();
    // The range's entries from the update's starts where it has them (own shards), and no
    // search at all for a whole range.
    const bool started = !u.index_at && u.starts.size() == kRanges + 1;
    const std::size_t rb = started ? u.starts[r] : 0, re = started ? u.starts[r + 1] : n;
    const std::size_t b = started && lo == bounds_[r]
                              ? rb
                              : static_cast<std::size_t>(std::lower_bound(index + rb, index + re, lo) - index);
    const std::size_t e = started && hi == bounds_[r + 1]
                              ? re
                              : static_cast<std::size_t>(std::lower_bound(index + b, index + re, hi) - index);
    const std::size_t m = hi <= F_ ? e
                                   : static_cast<std::size_t>(
                                         std::lower_bound(index + b, index + e, static_cast<uint32_t>(F_)) - index);
    entries += e - b;
    const std::size_t prefetch_end = e > static_cast<std::size_t>(kAhead) ? e - kAhead : 0;
    for (std::size_t i = b; i < m; ++i) {
      if (i < prefetch_end) {
        __builtin_prefetch(z + index[i + kAhead]);
        __builtin_prefetch(delta + index[i + kAhead], 1);
      }
      // Without a branch on the first update (it mispredicts): the id always written, kept
      // when first; the stale delta' masked to +0.0 then (0.0 + x as before).
      const uint32_t d = index[i];
      const uint16_t c = counts[d - lo];
      counts[d - lo] = static_cast<uint16_t>(c + 1);
      fresh[n_fresh] = d;
      n_fresh += c == 0;
      uint64_t bits;
      std::memcpy(&bits, delta + d, sizeof bits);
      bits &= uint64_t{0} - static_cast<uint64_t>(c != 0);
      double before;
      std::memcpy(&before, &bits, sizeof before);
      delta[d] = before + (value(i) - G * z[d]);
    }
    for (std::size_t i = m; i < e; ++i) {
      const uint32_t d = index[i];
      if (counts[d - lo]++ == 0) {
        fresh[n_fresh++] = d;
        delta[d] = 0.0;
      }
      delta[d] += u.share * (value(i) - u.decay * (G * z[d]));
    }
    if (segments) segments[s] = static_cast<uint32_t>(n_fresh);
  }
  updated.assign(fresh, fresh + n_fresh);
  double wd = 0.0, dd = 0.0;
  for (uint32_t d : updated) {
    const double w = G * z[d];
    if (d < F_) delta_[d] = delta_[d] / count[d - lo] - (a - 1.0) * w;
    count[d - lo] = 0;
    wd += w * delta_[d];
    dd += delta_[d] * delta_[d];
  }
  if (wd_out) {
    *wd_out = wd;
    *dd_out = dd;
  }
  return entries;
}

}  // namespace septa::crf
