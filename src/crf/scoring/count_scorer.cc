#include "crf/scoring/count_scorer.h"

#include <algorithm>
#include <cmath>

namespace septa::crf {

CountScorer::CountScorer(std::size_t A, std::size_t L, SparseFeatures unary,
                         std::vector<double> unary_log_ratio, std::vector<double> label_log_prior,
                         SparseFeatures pairwise, std::vector<double> pair_log_ratio,
                         std::vector<double> pair_log_prior, std::vector<int32_t> pair_first,
                         std::vector<int32_t> pair_second, double floor)
    : FactorScorer(A, L, std::move(pair_first), std::move(pair_second), floor),
      unary_ratio_(std::move(unary_log_ratio)), label_prior_(std::move(label_log_prior)),
      pair_ratio_(std::move(pair_log_ratio)), pair_prior_(std::move(pair_log_prior)) {
  unary_ = std::move(unary);
  pairwise_ = std::move(pairwise);
  index_pairs();
}

namespace {

struct Range {
  uint32_t first, last;
};

// The feature ranges of a sequence's positions for one factor: position p's experts are the
// attributes of items [p, p + span), item p + k's shifted by k A.
struct PositionRanges {
  std::vector<Range> ranges;      // the non-empty ranges of every position, in position order
  std::vector<uint32_t> starts;   // [positions + 1] into ranges
  std::vector<uint32_t> experts;  // [positions] attributes of the position (n of the mean)
};

thread_local PositionRanges unary_ranges, pair_ranges;

/*
 * Memory-latency bound (random attributes, long random feature ranges: the pair factor's
 * arrays exceed the caches), so the whole sequence's lookups come first and its sums after:
 * every attribute's offsets prefetched, then the ranges looked up with the first lines of
 * their classes and ratios prefetched. A position's misses overlap with those of the positions
 * around it instead of queueing before its own sums (three such passes per position before).
 */
void collect_ranges(const SequenceView& sequence, std::size_t positions, int span,
                    std::size_t A, const SparseFeatures& features, const double* r,
                    PositionRanges& out) {
  const uint32_t* offsets = features.offsets.data();
  const int32_t* classes = features.classes.data();
  for (std::size_t p = 0; p < positions; ++p)
    for (int k = 0; k < span; ++k)
      for (std::size_t e = sequence.item_offsets[p + k]; e < sequence.item_offsets[p + k + 1]; ++e)
        __builtin_prefetch(offsets + sequence.attribute_ids[e] + k * A);
  out.ranges.clear();
  out.starts.resize(positions + 1);
  out.experts.resize(positions);
  out.starts[0] = 0;
  for (std::size_t p = 0; p < positions; ++p) {
    for (int k = 0; k < span; ++k)
      for (std::size_t e = sequence.item_offsets[p + k]; e < sequence.item_offsets[p + k + 1];
           ++e) {
        const std::size_t a = static_cast<std::size_t>(sequence.attribute_ids[e]) + k * A;
        const uint32_t first = offsets[a], last = offsets[a + 1];
        if (first == last) continue;
        __builtin_prefetch(classes + first);
        __builtin_prefetch(r + first);
        out.ranges.push_back(Range{first, last});
      }
    out.starts[p + 1] = static_cast<uint32_t>(out.ranges.size());
    out.experts[p] = static_cast<uint32_t>(sequence.item_offsets[p + span] -
                                           sequence.item_offsets[p]);
  }
}

// log P(k|x) up to a constant for position p of the collected ranges, into scores [K]: the
// ratios summed range by range in attribute order, then scaled by 1/n and offset by the prior.
void expert_scores(const PositionRanges& position, std::size_t p, const SparseFeatures& features,
                   const std::vector<double>& ratio, const std::vector<double>& log_prior,
                   double* scores) {
  const std::size_t K = log_prior.size();
  std::fill(scores, scores + K, 0.0);
  const int32_t* classes = features.classes.data();
  const double* r = ratio.data();
  for (uint32_t i = position.starts[p]; i < position.starts[p + 1]; ++i)
    for (uint32_t f = position.ranges[i].first; f < position.ranges[i].last; ++f)
      scores[classes[f]] += r[f];
  const std::size_t experts = position.experts[p];
  const double inv = experts > 0 ? 1.0 / static_cast<double>(experts) : 0.0;
  for (std::size_t c = 0; c < K; ++c) scores[c] = log_prior[c] + inv * scores[c];
}

}  // namespace

void CountScorer::unary_probabilities(const SequenceView& sequence, double* out) const {
  collect_ranges(sequence, sequence.T, 1, A_, unary_, unary_ratio_.data(), unary_ranges);
  for (std::size_t t = 0; t < sequence.T; ++t) {
    double* p = out + t * L_;
    expert_scores(unary_ranges, t, unary_, unary_ratio_, label_prior_, p);
    softmax_normalize(p, L_);
  }
}

void CountScorer::prepare_pairs(const SequenceView& sequence) const {
  if (sequence.T >= 2)
    collect_ranges(sequence, sequence.T - 1, 2, A_, pairwise_, pair_ratio_.data(), pair_ranges);
}

void CountScorer::pair_probabilities(const SequenceView& /*sequence*/, const double* unary,
                                     std::size_t t, std::vector<uint32_t>& cells,
                                     std::vector<double>& probabilities) const {
  const std::size_t K = pair_prior_.size(), L = L_;
  thread_local std::vector<double> scores;   // [K]
  thread_local std::vector<int32_t> allowed;  // candidate pair classes of the position
  scores.resize(K);
  allowed.clear();
  beam_pairs(unary + t * L, unary + (t + 1) * L, kPairBeam, allowed);
  const auto emit = [&](int32_t k, double p) {
    cells.push_back(static_cast<uint32_t>(pair_first_[k] * L + pair_second_[k]));
    probabilities.push_back(p);
  };
  if (allowed.size() == 1) {
    emit(allowed[0], 1.0);
    return;
  }
  if (allowed.empty()) {
    expert_scores(pair_ranges, t, pairwise_, pair_ratio_, pair_prior_, scores.data());
    softmax_normalize(scores.data(), K);
    for (std::size_t k = 0; k < K; ++k) emit(static_cast<int32_t>(k), scores[k]);
    return;
  }
  // The full scatter (a branch per feature to skip unlisted classes costs more than adding
  // them), then the listed classes' softmax.
  expert_scores(pair_ranges, t, pairwise_, pair_ratio_, pair_prior_, scores.data());
  softmax_normalize_listed(scores.data(), allowed.data(), allowed.size());
  for (int32_t k : allowed) emit(k, scores[k]);
}

void CountScorer::write(ByteWriter& out) const {
  out.u64(A_);
  out.u64(L_);
  out.f64(floor_);
  unary_.write(out);
  out.vec(unary_ratio_);
  out.vec(label_prior_);
  pairwise_.write(out);
  out.vec(pair_ratio_);
  out.vec(pair_prior_);
  out.vec(pair_first_);
  out.vec(pair_second_);
}

std::unique_ptr<CountScorer> CountScorer::read(ByteReader& in) {
  auto s = std::make_unique<CountScorer>();
  s->A_ = in.dimension();
  s->L_ = in.dimension();
  s->floor_ = in.f64();
  s->unary_ = SparseFeatures::read(in);
  s->unary_ratio_ = in.finite_doubles();
  s->label_prior_ = in.finite_doubles();
  s->pairwise_ = SparseFeatures::read(in);
  s->pair_ratio_ = in.finite_doubles();
  s->pair_prior_ = in.finite_doubles();
  s->pair_first_ = in.vec<int32_t>();
  s->pair_second_ = in.vec<int32_t>();
  const std::size_t K = s->pair_prior_.size();
  if (s->unary_.A != s->A_ || s->unary_.K != s->L_ || s->unary_ratio_.size() != s->unary_.size() ||
      s->label_prior_.size() != s->L_ || s->pairwise_.A != 2 * s->A_ || s->pairwise_.K != K ||
      s->pair_ratio_.size() != s->pairwise_.size() || s->pair_first_.size() != K ||
      s->pair_second_.size() != K || !(s->floor_ > 0.0 && s->floor_ < 1.0))
    in.fail("count factors do not match their sizes");
  check_label_pairs(s->pair_first_, s->pair_second_, s->L_, in);
  s->index_pairs();
  return s;
}

std::vector<WeightedFeature> CountScorer::state_features(const Encoder& encoder) const {
  return list_features(unary_, unary_ratio_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> CountScorer::transition_features(const Encoder& encoder) const {
  std::vector<WeightedFeature> out;
  for (std::size_t k = 0; k < pair_prior_.size(); ++k)
    out.push_back({encoder.labels().name(pair_first_[k]), encoder.labels().name(pair_second_[k]),
                   pair_prior_[k]});
  return out;
}

void CountScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "COUNT FACTORS unary " << unary_.size() << " seen (attribute, label), pairwise "
      << pairwise_.size() << " seen (attribute, pair) over " << pair_prior_.size()
      << " label pairs; beta " << kBeta << ", floor " << floor_ << "\n";
  out << "PAIR LOG PRIORS (previous -> current)\n";
  dump_features(out, transition_features(encoder));
  out << "UNARY LOG RATIOS (top " << top << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
