// A vector of F features split by range over the ranks of a Communicator, with dot products
// that give the same bits for every rank count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "septa/communicator.h"

namespace septa::crf {

class FeatureRanges {
 public:
  // Features are cut into fixed chunks of kChunk; rank q of N owns the chunks
  // [C q/N, C (q+1)/N) of C. `comm` null: one process owning everything.
  FeatureRanges(std::size_t F, Communicator* comm);
  // Rank q owns [bounds[q], bounds[q+1]) (N+1 bounds from 0 to F, chunk-aligned: every bound
  // a multiple of kChunk or F). The dot products do not depend on the bounds.
  FeatureRanges(std::size_t F, Communicator* comm, std::vector<std::size_t> bounds);

  static constexpr std::size_t kChunk = 1024;
  // [N+1] feature bounds of the ranks for F features over N ranks.
  static std::vector<std::size_t> bounds(std::size_t F, std::size_t N);
  // [N+1] chunk-aligned bounds that give each of N ranks about the same share of the total
  // cost, cost [chunks] per chunk: rank q ends at the first chunk boundary where the cost so far
  // reaches (q+1)/N of the total (integer arithmetic, so every rank computes the same bounds).
  static std::vector<std::size_t> balanced(std::size_t F, std::size_t N,
                                           const std::vector<uint64_t>& cost);
  const std::vector<std::size_t>& rank_bounds() const { return bounds_; }

  std::size_t size() const { return F_; }
  std::size_t lo() const { return bounds_[rank_]; }
  std::size_t hi() const { return bounds_[rank_ + 1]; }
  std::size_t owned() const { return hi() - lo(); }
  Communicator* comm() const { return comm_; }
  bool root() const { return rank_ == 0; }

  // sum_f a_k[f] b_k[f] over all F for K pairs (a_k, b_k), each given by this rank's range
  // [owned]: one message for all K.
  std::vector<double> dots(const std::vector<std::pair<const double*, const double*>>& pairs) const;
  double dot(const double* a, const double* b) const { return dots({{a, b}})[0]; }
  // full [F] <- every rank's range `mine` [owned] (mine may point into full).
  void gather(const double* mine, double* full) const;

 private:
  std::size_t F_;
  Communicator* comm_;
  std::size_t rank_ = 0;
  std::size_t chunks_ = 0;
  std::vector<std::size_t> bounds_;  // [N+1]
};

}  // namespace septa::crf
