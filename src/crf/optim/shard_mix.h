// The mix of one round of the sharded SGD (sgd.h): the shards' sparse updates added in shard
// order, in fixed ranges of the weights on any number of threads; and the profile of a fit
// (SEPTA_SGD_PROFILE).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crf/optim/sgd.h"
#include "septa/error.h"

namespace septa::crf {

double now_seconds();         // steady clock
double thread_cpu_seconds();  // CPU time of the calling thread

/*
 * With SEPTA_SGD_PROFILE set, fit_sharded_sgd measures its stages and prints to stderr the
 * critical path it would have on T threads (T = 1, 2, 4, 8, 16): per round, the shard parts
 * assigned as parallel_for_workers assigns them (each, in shard order, to the worker that is
 * free first; the thread CPU time of each part measured), plus the workers' whole copies of z
 * (each into its own buffer, in parallel; the mix writes its changes to the buffers otherwise),
 * plus each parallel pass of the mix (the two range passes and the step search's blocks) as if
 * on T threads each task, in order, went to the thread that is free first (the CPU time of
 * each task measured: uneven ranges show; the range passes run each thread's own ranges
 * first, parallel_for_owned), plus the fold
 * after each epoch divided by T, plus the serial rest (wall time) in full.
 */
struct SgdProfile {
  bool on = std::getenv("SEPTA_SGD_PROFILE") != nullptr;
  std::vector<std::vector<double>> part_cpu;  // [rounds][S]
  double sync = 0.0;      // summed per round: the slowest worker's whole copy of z
  double parallel = 0.0;  // CPU of the block-parallel stages, summed over blocks
  std::vector<std::vector<double>> passes;  // [passes][tasks] CPU of each mix pass's tasks
  double folds = 0.0;     // CPU of the folds after the epochs (64 even ranges)
  double serial = 0.0;    // wall time of everything else between rounds
  double comm = 0.0;      // CPU of the exchanges between ranks (updates, ranges, step losses)
  double total = 0.0;     // wall time of the whole fit
  double entries = 0.0;   // weights in the shards' updates, summed over rounds
  std::vector<double> gammas;

  // Records one parallel pass: the CPU time of each of its tasks, in task order.
  void add_pass(const std::vector<double>& task_cpu);
  // Prints the measurements and the projected critical paths (when on).
  void report(const ShardedSgd& sgd, int threads) const;
};

/*
 * The mix of one round's shard updates (sgd.h), from w = G z. The dimension is cut into 64
 * fixed ranges, mixed concurrently; within a range the shards are added in shard order, and
 * per-range sums are added in range order, so nothing depends on the thread count.
 *   accumulate: sparse d: sum_d += x_s,d - w_d, count_d += 1;
 *               dense d:  sum_d += share_s (x_s,d - decay_s w_d);
 *   delta'_d = sum_d / count_d - (a - 1) w_d (sparse), sum_d (dense): Delta = (a - 1) w + delta'
 *   apply:   w'_d = w_d + gamma (delta'_d + (a - 1) w_d) on the updated weights, the others
 *            w'_d = w_d (1 + gamma (a - 1)): kept as z'_d = w'_d / G', G' = G (1 + gamma (a - 1)).
 */
class ShardMix {
 public:
  static constexpr std::size_t kRanges = 64;

  // With `ranks` (those of mix()), rank q accumulates the ranges [cut_q, cut_q+1) only, and
  // counts only there. The cut starts at 64 q/R and is moved after each mix so that every rank
  // gets about the same number of updated weights (rebalance()).
  explicit ShardMix(const ShardedSgd& sgd, const Communicator* ranks = nullptr)
      : F_(sgd.shape().features->size()), D_(sgd.dimension()),
        updated_(kRanges), wd_(kRanges), dd_(kRanges), dz_(kRanges), entries_(kRanges) {
    for (std::size_t r = 0; r <= kRanges; ++r) bounds_.push_back(D_ * r / kRanges);
    const std::size_t R = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
    me_ = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
    for (std::size_t q = 0; q <= R; ++q) cut_.push_back(kRanges * q / R);
    r0_ = cut_[me_];
    r1_ = cut_[me_ + 1];
  }

  // The weights [lo, hi) that rank q accumulates in the next mix.
  uint32_t rank_lo(std::size_t q) const { return static_cast<uint32_t>(bounds_[cut_[q]]); }
  uint32_t rank_hi(std::size_t q) const { return static_cast<uint32_t>(bounds_[cut_[q + 1]]); }

  // Mixes `updates` [S] (shard order) into z [D] and G; zz = ||z||^2 is kept up to date.
  // Returns the step gamma. `scratch` [D] (a worker's weight buffer) equals z on entry and on
  // return; in between it holds delta' on the updated weights and 0 on the other weights the
  // step search reads (ShardedSgd::step_reads), so the mix needs no dense array of its own
  // (it was one of D doubles per rank: 9.2 MB for CoNLL-2000's pairwise factor).
  // Over `ranks` (every rank holding the same updates, z and G), rank q accumulates the ranges
  // its ranges (the cut, rebalanced after each mix) and the ranks allgather each range's updated weights, their delta'
  // and its partial sums: every rank then holds what one process computes, bit for bit.
  // The weights the mix changes are also written to each of `copies` (the other workers'
  // buffers [D], equal to z on entry), which then equal z too: the apply pass writes them where
  // a separate pass over the changed weights had read z and the ranges' lists again.
  double mix(const ShardedSgd& sgd, const std::vector<ShardUpdate>& updates, double* z, double& G,
             double& zz, double* scratch, const std::vector<double*>& copies, int threads,
             SgdProfile& profile, Communicator* ranks = nullptr);

  // The weights the last mix changed, by range.
  const std::vector<std::vector<uint32_t>>& updated() const { return updated_; }

 private:
  // After each rank accumulated its ranges [r0, r1): every range's updated weights, their
  // delta' and partial sums on every rank (an allgather; 12 bytes per updated weight).
  void share_ranges(Communicator& ranks, std::size_t r0, std::size_t r1);
  // Over ranks, after a mix: moves the cut so that each rank's ranges hold about 1/R of the
  // shard entries and updated weights of this mix (every rank holds the same updated_, so every rank computes the
  // same cut). The updates crowd into the low weight ids (the frequent attributes come first):
  // the even cut gave rank 0 of 2 about 90% of the accumulation and of the range exchange.
  void rebalance();
  // Cuts the ranges into the first pass's tasks for `threads` threads and S shards: a range
  // whose shard entries in the last mix exceeded a thread's share, in several pieces (the
  // heaviest range, of the most frequent attributes, held 1/8 of the entries on CoNLL-2000's
  // unary factor: at 16 threads the first pass waited for it, 2x the mean thread's work).
  void plan_pieces(int threads, std::size_t S);
  // The weights [lo, hi) (range r or a piece of it): adds the updates and turns the sums into
  // delta'; `updated` gets the weights updated, in add order (shard by shard, by weight within
  // a shard), segments [S] (when given) the count of them after each shard, and wd, dd (when
  // given, for a whole range) its partial sums (range_sums). Returns the shard entries added.
  uint64_t accumulate(std::size_t r, uint32_t lo, uint32_t hi, const std::vector<ShardUpdate>& updates,
                      const double* z, double G, double a, std::vector<uint32_t>& updated,
                      uint32_t* segments, double* wd, double* dd);
  // Range r from its pieces: its updated weights in the order one accumulate over the whole
  // range adds them, its entries, and its partial sums.
  void merge_pieces(std::size_t r, const double* z, double G);
  // Range r's partial sums w . delta' and ||delta'||^2 over its updated weights, in order.
  void range_sums(std::size_t r, const double* z, double G);

  struct Piece {
    std::size_t range;
    uint32_t lo, hi;  // weights [lo, hi) of the range
  };

  std::size_t F_, D_;
  std::vector<std::size_t> bounds_;               // [kRanges+1]
  double* delta_ = nullptr;                       // [D] during mix(): its scratch
  std::size_t me_ = 0;                            // this rank
  std::vector<std::size_t> cut_;                  // [R+1] rank q's ranges: [cut_[q], cut_[q+1])
  std::size_t r0_ = 0, r1_ = kRanges;             // the ranges this rank accumulates
  std::vector<std::vector<uint32_t>> updated_;    // [kRanges] updated weights, in add order
  std::vector<double> wd_, dd_, dz_;              // [kRanges] partial sums
  std::vector<uint64_t> entries_;                 // [kRanges] shard entries the mix added
  std::vector<Piece> pieces_;                     // [pieces] the first pass's tasks, by range
  std::vector<std::size_t> first_piece_;          // [kRanges+1] range r's pieces
  std::vector<std::vector<uint32_t>> piece_fresh_;     // [pieces] a piece's updated weights
  std::vector<std::vector<uint32_t>> piece_segments_;  // [pieces][S] their count after shard s
  std::vector<uint64_t> piece_entries_;           // [pieces] shard entries a piece added
  std::string sent_;                              // share_ranges' message, kept (grown only)
  std::vector<std::string> received_;             // [R] the other ranks' messages, kept
};

// Reads the rounds' messages between ranks in place, into vectors that keep their capacity
// from round to round (ByteReader::vec allocates, zero-fills and copies each array).
class RoundReader {
 public:
  explicit RoundReader(const std::string& bytes) : at_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  template <typename T>
  T get() {
    SEPTA_CHECK(static_cast<std::size_t>(end_ - at_) >= sizeof(T));
    T v;
    std::memcpy(&v, at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  // A u64 count n, then n values of T (ByteWriter::vec's layout); returns where they are.
  template <typename T>
  const char* array(std::size_t& n) {
    const uint64_t count = get<uint64_t>();
    SEPTA_CHECK(count <= static_cast<std::size_t>(end_ - at_) / sizeof(T));
    const char* values = at_;
    at_ += count * sizeof(T);
    n = static_cast<std::size_t>(count);
    return values;
  }
  template <typename T>
  void vec(std::vector<T>& v) {
    std::size_t n;
    const char* values = array<T>(n);
    v.resize(n);
    if (n > 0) std::memcpy(v.data(), values, n * sizeof(T));
  }
  bool at_end() const { return at_ == end_; }

 private:
  const char* at_;
  const char* end_;
};

}  // namespace septa::crf
