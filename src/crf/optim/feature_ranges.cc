#include "crf/optim/feature_ranges.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "septa/error.h"

namespace septa::crf {

FeatureRanges::FeatureRanges(std::size_t F, Communicator* comm) : F_(F), comm_(comm) {
  const std::size_t N = comm ? static_cast<std::size_t>(comm->size()) : 1;
  rank_ = comm ? static_cast<std::size_t>(comm->rank()) : 0;
  chunks_ = (F + kChunk - 1) / kChunk;
  bounds_ = bounds(F, N);
}

FeatureRanges::FeatureRanges(std::size_t F, Communicator* comm, std::vector<std::size_t> bounds)
    : FeatureRanges(F, comm) {
  const std::size_t N = comm ? static_cast<std::size_t>(comm->size()) : 1;
  if (bounds.size() != N + 1 || bounds.front() != 0 || bounds.back() != F)
    throw InternalError("FeatureRanges: " + std::to_string(bounds.size()) + " bounds for " +
                        std::to_string(N) + " ranks and " + std::to_string(F) + " features");
  for (std::size_t q = 1; q <= N; ++q)
    if (bounds[q] < bounds[q - 1] || (bounds[q] % kChunk != 0 && bounds[q] != F))
      throw InternalError("FeatureRanges: bound " + std::to_string(bounds[q]) +
                          " is not chunk-aligned and increasing");
  bounds_ = std::move(bounds);
}

std::vector<std::size_t> FeatureRanges::balanced(std::size_t F, std::size_t N,
                                                 const std::vector<uint64_t>& cost) {
  const std::size_t C = (F + kChunk - 1) / kChunk;
  SEPTA_CHECK(cost.size() == C && N > 0);
  uint64_t total = 0;
  for (uint64_t c : cost) total += c;
  std::vector<std::size_t> b{0};
  uint64_t so_far = 0;
  std::size_t c = 0;
  for (std::size_t q = 0; q + 1 < N; ++q) {
    // the first boundary c with so_far * N >= total (q+1) (costs are bytes: no overflow)
    while (c < C && so_far * N < total * (q + 1)) so_far += cost[c++];
    b.push_back(std::min(F, kChunk * c));
  }
  b.push_back(F);
  return b;
}

std::vector<std::size_t> FeatureRanges::bounds(std::size_t F, std::size_t N) {
  const std::size_t C = (F + kChunk - 1) / kChunk;
  std::vector<std::size_t> b;
  for (std::size_t q = 0; q <= N; ++q) b.push_back(std::min(F, kChunk * (C * q / N)));
  return b;
}

/*
 * dot_k = sum_c p_ck with p_ck = sum_{f in chunk c} a_k[f] b_k[f]: each chunk's partial sum is
 * taken in feature order by the rank that owns the chunk, the partials of all chunks reach every
 * rank, and every rank adds them in chunk order from 0. The chunks depend only on F, so the
 * result has the same bits for any rank count (and on every rank).
 */
std::vector<double> FeatureRanges::dots(
    const std::vector<std::pair<const double*, const double*>>& pairs) const {
  const std::size_t K = pairs.size();
  const std::size_t mine = (owned() + kChunk - 1) / kChunk;
  std::vector<double> partial(mine * K, 0.0);  // [my chunks][K]
  // Four whole chunks at a time: their sums are independent, so four chains of additions run
  // side by side instead of one waiting on each addition (each still in feature order).
  std::size_t c = 0;
  for (; (c + 4) * kChunk <= owned(); c += 4)
    for (std::size_t k = 0; k < K; ++k) {
      const double* a = pairs[k].first + c * kChunk;
      const double* b = pairs[k].second + c * kChunk;
      double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
      for (std::size_t f = 0; f < kChunk; ++f) {
        s0 += a[f] * b[f];
        s1 += a[kChunk + f] * b[kChunk + f];
        s2 += a[2 * kChunk + f] * b[2 * kChunk + f];
        s3 += a[3 * kChunk + f] * b[3 * kChunk + f];
      }
      partial[c * K + k] = s0;
      partial[(c + 1) * K + k] = s1;
      partial[(c + 2) * K + k] = s2;
      partial[(c + 3) * K + k] = s3;
    }
  for (; c < mine; ++c) {
    const std::size_t from = c * kChunk, to = std::min(owned(), from + kChunk);
    for (std::size_t k = 0; k < K; ++k) {
      double s = 0.0;
      for (std::size_t f = from; f < to; ++f) s += pairs[k].first[f] * pairs[k].second[f];
      partial[c * K + k] = s;
    }
  }
  std::vector<double> total(K, 0.0);
  if (!comm_ || comm_->size() == 1) {
    for (std::size_t c = 0; c < mine; ++c)
      for (std::size_t k = 0; k < K; ++k) total[k] += partial[c * K + k];
    return total;
  }
  const std::vector<std::string> parts = comm_->allgather(
      std::string(reinterpret_cast<const char*>(partial.data()), sizeof(double) * partial.size()));
  std::size_t chunk = 0;
  for (const std::string& part : parts) {
    SEPTA_CHECK(part.size() % (sizeof(double) * (K ? K : 1)) == 0);
    const std::size_t n = K ? part.size() / (sizeof(double) * K) : 0;
    for (std::size_t c = 0; c < n; ++c, ++chunk)
      for (std::size_t k = 0; k < K; ++k) {
        double v;
        std::memcpy(&v, part.data() + sizeof(double) * (c * K + k), sizeof v);
        total[k] += v;
      }
  }
  SEPTA_CHECK(K == 0 || chunk == chunks_);
  return total;
}

void FeatureRanges::gather(const double* mine, double* full) const {
  if (!comm_ || comm_->size() == 1) {
    if (mine != full) std::memcpy(full, mine, sizeof(double) * owned());
    return;
  }
  // The ranges are known to every rank: one step straight into full, no received copies (the
  // copy of this rank's range and the received ranges had been 3.7 MB of a rank's peak on
  // CoNLL-2000 at 2 ranks).
  std::vector<std::size_t> counts;
  for (std::size_t q = 0; q + 1 < bounds_.size(); ++q)
    counts.push_back(sizeof(double) * (bounds_[q + 1] - bounds_[q]));
  comm_->allgather_sized(reinterpret_cast<const char*>(mine), reinterpret_cast<char*>(full), counts);
}

}  // namespace septa::crf
