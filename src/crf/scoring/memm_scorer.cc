#include "crf/scoring/memm_scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace septa::crf {

MemmScorer::MemmScorer(std::size_t A, std::size_t L, SparseFeatures states,
                       std::vector<char> successors, double floor)
    : A_(A), L_(L), floor_(floor), states_(std::move(states)), successors_(std::move(successors)),
      weights_(states_.size() + (L + 1) * L, 0.0) {}

// The state scores s_t(j) do not depend on the context row, so they are summed once per item;
// each row then adds W[i][j] over succ(i) and takes a log-softmax,
//   log P(j | i, x_t) = z_j - log sum_j' exp(z_j'),  z_j = s_t(j) + W[i][j],
// floored at log(floor) (no logarithm per cell).
void MemmScorer::potentials(const SequenceView& sequence, Lattice& lattice) const {
  const std::size_t T = sequence.T, L = L_, F = states_.size();
  lattice.reset(T, L, /*per_position_transitions=*/true);
  const SoftmaxModelShape sparse_only{&states_, A_, L_, 0, nullptr, nullptr};
  const ItemArrays items = ItemArrays::of(sequence);
  thread_local std::vector<double> state, z;  // [L] s_t, [L] scratch of softmax_normalize
  state.resize(L);
  z.resize(L);
  const double log_floor = std::log(floor_);
  for (std::size_t t = 0; t < T; ++t) {
    LocalInstance instance;
    instance.item = t;
    softmax_raw_scores(sparse_only, items, instance, weights_.data(), 1.0, state.data());
    const std::size_t rows = t == 0 ? 1 : L;
    for (std::size_t row = 0; row < rows; ++row) {
      const std::size_t context = t == 0 ? L : row;
      const double* dense = weights_.data() + F + context * L;
      const char* allowed = &successors_[context * L];
      double* out = t == 0 ? lattice.state(0) : lattice.transition(t) + row * L;
      for (std::size_t j = 0; j < L; ++j)
        out[j] = z[j] = allowed[j] ? state[j] + dense[j] : -std::numeric_limits<double>::infinity();
      const double shift = softmax_normalize(z.data(), L);
      if (!std::isfinite(shift)) {  // a row without successors: every cell at the floor
        std::fill(out, out + L, log_floor);
        continue;
      }
      for (std::size_t j = 0; j < L; ++j) out[j] = std::max(out[j] - shift, log_floor);
    }
  }
}

void MemmScorer::write(ByteWriter& out) const {
  out.u64(A_);
  out.u64(L_);
  out.f64(floor_);
  states_.write(out);
  out.vec(successors_);
  out.vec(weights_);
}

std::unique_ptr<MemmScorer> MemmScorer::read(ByteReader& in) {
  auto s = std::make_unique<MemmScorer>();
  s->A_ = in.dimension();
  s->L_ = in.dimension();
  s->floor_ = in.f64();
  s->states_ = SparseFeatures::read(in);
  s->successors_ = in.vec<char>();
  s->weights_ = in.finite_doubles();
  if (s->states_.A != s->A_ || s->states_.K != s->L_ ||
      s->successors_.size() != (s->L_ + 1) * s->L_ ||
      s->weights_.size() != s->states_.size() + (s->L_ + 1) * s->L_ || !(s->floor_ > 0.0 && s->floor_ < 1.0))
    in.fail("MEMM weights do not match their sizes");
  return s;
}

std::vector<WeightedFeature> MemmScorer::state_features(const Encoder& encoder) const {
  return list_features(states_, weights_.data(), encoder, encoder.labels().names());
}

std::vector<WeightedFeature> MemmScorer::transition_features(const Encoder& encoder) const {
  std::vector<WeightedFeature> out;
  for (std::size_t i = 0; i <= L_; ++i)
    for (std::size_t j = 0; j < L_; ++j)
      if (successors_[i * L_ + j])
        out.push_back({i == L_ ? std::string("<START>") : encoder.labels().name(static_cast<int32_t>(i)),
                       encoder.labels().name(static_cast<int32_t>(j)),
                       weights_[states_.size() + i * L_ + j]});
  return out;
}

void MemmScorer::dump(std::ostream& out, const Encoder& encoder, std::size_t top) const {
  out << "TRANSITIONS (previous -> current; only successors seen in training)\n";
  dump_features(out, transition_features(encoder));
  out << "STATE FEATURES (top " << top << " by |weight| of " << states_.size() << ")\n";
  dump_top_features(out, state_features(encoder), top);
}

}  // namespace septa::crf
