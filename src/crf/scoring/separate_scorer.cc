#include "crf/scoring/separate_scorer.h"

#include <algorithm>
#include <cmath>

#include "crf/lattice/cooccurrence.h"
#include "crf/lattice/factored_viterbi.h"

namespace septa::crf {

void FactorScorer::potentials(const SequenceView& sequence, Lattice& lattice) const {
  const std::size_t T = sequence.T, L = L_;
  // Per-thread scratch, grown to the longest sentence seen: no allocation per sentence.
  thread_local std::vector<double> unary;          // [T][L]
  thread_local std::vector<uint32_t> cells;        // pair-table cells a L + b of one position
  thread_local std::vector<double> probabilities;  // their probabilities
  if (unary.size() < T * L) unary.resize(T * L);
  unary_probabilities(sequence, unary.data());
  cooccurrence_states(unary.data(), T, L, floor_, lattice);
  prepare_pairs(sequence);
  for (std::size_t t = 0; t + 1 < T; ++t) {
    cells.clear();
    probabilities.clear();
    pair_probabilities(sequence, unary.data(), t, cells, probabilities);
    cooccurrence_transitions(cells.data(), probabilities.data(), cells.size(), &unary[t * L],
                             &unary[(t + 1) * L], L, floor_, lattice.transition(t + 1),
                             lattice.state(t), lattice.state(t + 1));
  }
}

bool FactorScorer::best_labels(const SequenceView& sequence, int* labels_out) const {
  const std::size_t T = sequence.T, L = L_;
  if (L == 0 || L > 64) return false;
  thread_local std::vector<double> unary;          // [T][L]
  thread_local std::vector<double> states;         // [T][L] log max(P(y_t|x), floor)
  thread_local std::vector<uint32_t> cells;        // pair-table cells a L + b of one position
  thread_local std::vector<double> probabilities;  // their probabilities
  thread_local FactoredTransitions transitions;
  if (unary.size() < T * L) {
    unary.resize(T * L);
    states.resize(T * L);
  }
  unary_probabilities(sequence, unary.data());
  cooccurrence_state_logs(unary.data(), T, L, floor_, states.data());
  prepare_pairs(sequence);
  transitions.reset(L);
  for (std::size_t t = 0; t + 1 < T; ++t) {
    cells.clear();
    probabilities.clear();
    pair_probabilities(sequence, unary.data(), t, cells, probabilities);
    cooccurrence_transitions(cells.data(), probabilities.data(), cells.size(), &unary[t * L],
                             &unary[(t + 1) * L], L, floor_, nullptr, &states[t * L],
                             &states[(t + 1) * L], &transitions);
  }
  double score = 0.0;
  return factored_viterbi(states.data(), T, L, transitions, labels_out, &score);
}

SeparateScorer::SeparateScorer(std::size_t A, std::size_t L, std::vector<int32_t> pair_first,
                               std::vector<int32_t> pair_second, double floor, double beam,
                               bool stacked)
    : FactorScorer(A, L, std::move(pair_first), std::move(pair_second), floor), beam_(beam),
      stacked_(stacked) {
  index_pairs();
}

void FactorScorer::index_pairs() {
  pair_class_.assign(L_ * L_, -1);
  for (std::size_t k = 0; k < pair_first_.size(); ++k)
    pair_class_[pair_first_[k] * L_ + pair_second_[k]] = static_cast<int32_t>(k);
  next_seen_.clear();
  if (L_ > 64) return;
  next_seen_.assign(L_, 0);
  for (std::size_t k = 0; k < pair_first_.size(); ++k)
    next_seen_[pair_first_[k]] |= uint64_t{1} << pair_second_[k];
}

// Up to 64 labels, the labels within the beam at t+1 as a bit set, intersected with each
// passing row's seen pairs: no mispredicted branch per (a, b) cell.
void FactorScorer::beam_pairs(const double* unary_t, const double* unary_next, double beam,
                              std::vector<int32_t>& out) const {
  const std::size_t L = L_;
  const double cut_t = beam * *std::max_element(unary_t, unary_t + L);
  const double cut_next = beam * *std::max_element(unary_next, unary_next + L);
  if (!next_seen_.empty()) {
    uint64_t next = 0;
    for (std::size_t b = 0; b < L; ++b) next |= uint64_t{unary_next[b] >= cut_next} << b;
    for (std::size_t a = 0; a < L; ++a) {
      if (unary_t[a] < cut_t) continue;
      for (uint64_t bits = next_seen_[a] & next; bits != 0; bits &= bits - 1)
        out.push_back(pair_class_[a * L + static_cast<std::size_t>(__builtin_ctzll(bits))]);
    }
    return;
  }
  for (std::size_t a = 0; a < L; ++a) {
    if (unary_t[a] < cut_t) continue;
    for (std::size_t b = 0; b < L; ++b)
      if (unary_next[b] >= cut_next && pair_class_[a * L + b] >= 0)
        out.push_back(pair_class_[a * L + b]);
  }
}

void SeparateScorer::candidate_pairs(const double* unary_t, const double* unary_next,
                                     std::vector<int32_t>& out) const {
  beam_pairs(unary_t, unary_next, beam_, out);
}

void SeparateScorer::set_unary_features(SparseFeatures unary) {
  unary_ = std::move(unary);
  unary_weights_.assign(unary_.size() + L_, 0.0);
}

void SeparateScorer::set_pair_features(SparseFeatures pairwise) {
  pairwise_ = std::move(pairwise);
  pair_weights_.assign(pairwise_.size() + pair_first_.size(), 0.0);
}

SoftmaxModelShape SeparateScorer::unary_shape() const {
  return SoftmaxModelShape{&unary_, A_, L_, 1, nullptr};
}

SoftmaxModelShape SeparateScorer::pair_shape() const {
  return SoftmaxModelShape{&pairwise_, A_, pair_first_.size(), 1, nullptr};
}

void SeparateScorer::unary_probabilities(const SequenceView& sequence, double* out) const {
  const SoftmaxModelShape shape = unary_shape();
  const ItemArrays items = ItemArrays::of(sequence);
  for (std::size_t t = 0; t < sequence.T; ++t) {
    LocalInstance instance;
    instance.item = t;
    softmax_probabilities(shape, items, instance, unary_weights_.data(), out + t * L_);
  }
}

void SeparateScorer::pair_probabilities(const SequenceView& sequence, const double* unary,
                                        std::size_t t, std::vector<uint32_t>& cells,
                                        std::vector<double>& probabilities) const {
  const SoftmaxModelShape shape = pair_shape();
  const ItemArrays items = ItemArrays::of(sequence);
  const std::size_t K = pair_first_.size(), L = L_;
  thread_local std::vector<double> scores;    // [K] per-thread scratch
  thread_local std::vector<int32_t> allowed;  // candidate pair classes of the position
  if (scores.size() < K) scores.resize(K);
  LocalInstance instance;
  instance.item = t;
  instance.span = 2;
  allowed.clear();
  if (beam_ > 0.0) candidate_pairs(unary + t * L, unary + (t + 1) * L, allowed);
  const double* ut = unary + t * L;
  const double* un = unary + (t + 1) * L;
  const auto emit = [&](int32_t k) {
    cells.push_back(static_cast<uint32_t>(pair_first_[k] * L + pair_second_[k]));
    probabilities.push_back(scores[k]);
  };
  if (allowed.empty()) {
    softmax_raw_scores(shape, items, instance, pair_weights_.data(), 1.0, scores.data());
    if (stacked_)  // the unary log-probabilities as fixed offsets (see the class comment)
      for (std::size_t k = 0; k < K; ++k) scores[k] += pair_base(static_cast<int32_t>(k), ut, un);
    softmax_normalize(scores.data(), K);
    for (std::size_t k = 0; k < K; ++k) emit(static_cast<int32_t>(k));
  } else if (allowed.size() == 1) {
    // A softmax over one class gives it exactly 1 whatever its (finite) score: the normaliser
    // computes fast_exp(s - s) / fast_exp(s - s) = 1 / 1. No feature needs reading.
    scores[allowed[0]] = 1.0;
    emit(allowed[0]);
  } else {
    softmax_scores_over(shape, items, instance, pair_weights_.data(), 1.0, allowed.data(),
                        allowed.size(), nullptr, scores.data());
    if (stacked_)
      for (int32_t k : allowed) scores[k] += pair_base(k, ut, un);
    softmax_normalize_listed(scores.data(), allowed.data(), allowed.size());
    for (int32_t k : allowed) emit(k);
  }
}

void SeparateScorer::write(ByteWriter& out) const {
  out.u64(A_);
  out.u64(L_);
  out.f64(floor_);
  out.f64(beam_);
  out.u8(stacked_ ? 1 : 0);
  unary_.write(out);
  pairwise_.write(out);
  out.vec(pair_first_);
  out.vec(pair_second_);
  out.vec(unary_weights_);
  out.vec(pair_weights_);
}

std::unique_ptr<SeparateScorer> SeparateScorer::read(ByteReader& in) {
  auto s = std::make_unique<SeparateScorer>();
  s->A_ = in.dimension();
  s->L_ = in.dimension();
  s->floor_ = in.f64();
  s->beam_ = in.f64();
  // Format 3 files predate stacking: their pairwise factor stands alone.
  const uint8_t stacked = in.version() >= 4 ? in.u8() : 0;
  if (stacked > 1) in.fail("separate-training factors: bad stacking flag");
  s->stacked_ = stacked == 1;
  s->unary_ = SparseFeatures::read(in);
  s->pairwise_ = SparseFeatures::read(in);
  s->pair_first_ = in.vec<int32_t>();
  s->pair_second_ = in.vec<int32_t>();
  s->unary_weights_ = in.finite_doubles();
  s->pair_weights_ = in.finite_doubles();
  const std::size_t K = s->pair_first_.size();
  if (s->unary_.A != s->A_ || s->unary_.K != s->L_ || s->pairwise_.A != 2 * s->A_ ||
      s->pairwise_.K != K || s->pair_second_.size() != K ||
      s->unary_weights_.size() != s->unary_.size() + s->L_ ||
      s->pair_weights_.size() != s->pairwise_.size() + K ||
      !(s->floor_ > 0.0 && s->floor_ < 1.0) || !(s->beam_ >= 0.0 && s->beam_ <= 1.0))
    in.fail("separate-training factors do not match their sizes");
  check_label_pairs(s->pair_first_, s->pair_second_, s->L_, in);
  s->index_pairs();
  return s;
}

std::vector<WeightedFeature> SeparateScorer::state_features(const Encoder& encoder) const {
  return list_features(unary_, unary_weights_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> SeparateScorer::transition_features(const Encoder& encoder) const {
  // The observation-independent part of the pairwise factor: its per-pair bias.
  std::vector<WeightedFeature> out;
  for (std::size_t k = 0; k < pair_first_.size(); ++k)
    out.push_back({encoder.labels().name(pair_first_[k]), encoder.labels().name(pair_second_[k]),
                   pair_weights_[pairwise_.size() + k]});
  return out;
}

void SeparateScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "FACTORS unary (" << unary_.size() << " features + " << L_ << " biases), pairwise ("
      << pairwise_.size() << " features over " << pair_first_.size()
      << " label pairs + biases" << (stacked_ ? ", stacked on the unary factor" : "")
      << "), floor " << floor_ << ", pair beam " << beam_ << "\n";
  out << "PAIR BIASES (previous -> current)\n";
  dump_features(out, transition_features(encoder));
  out << "UNARY FEATURES (top " << top << " by |weight|)\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
