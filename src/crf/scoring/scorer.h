// The trained part of a model: fills a lattice with log-potentials for one sequence.
#pragma once

#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "crf/io/binary_io.h"
#include "crf/features/dataset.h"
#include "crf/features/encoder.h"
#include "crf/lattice/lattice.h"
#include "crf/features/sparse_features.h"
#include "septa/crf/model.h"

namespace septa::crf {

class Scorer {
 public:
  virtual ~Scorer() = default;
  // Fills `lattice` (reset inside) with the log-potentials of `sequence`.
  virtual void potentials(const SequenceView& sequence, Lattice& lattice) const = 0;
  // The labelling Lattice::viterbi finds on the potentials of `sequence`, into labels_out [T],
  // computed without filling a lattice where the scorer has a faster way (false: none; the
  // caller fills a lattice).
  virtual bool best_labels(const SequenceView& /*sequence*/, int* /*labels_out*/) const {
    return false;
  }
  // Whether the scorer was built for A attributes and L labels (model-file consistency).
  virtual bool fits(std::size_t A, std::size_t L) const = 0;
  // Number of weights the model holds.
  virtual std::size_t feature_count() const = 0;
  // Whether every weight is finite (training can overflow on extreme attribute values).
  virtual bool finite() const = 0;
  // Whether the scorer uses observation-conditioned transitions (B templates with macros).
  virtual bool conditioned_transitions() const { return false; }
  // The model-file format version its write() needs (4; 5 with conditioned transitions).
  virtual uint32_t format_version() const { return 4; }
  virtual void write(ByteWriter& out) const = 0;
  // Readable description of the weights for `septa dump`.
  virtual void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const = 0;
  virtual std::vector<WeightedFeature> state_features(const Encoder& encoder) const = 0;
  virtual std::vector<WeightedFeature> transition_features(const Encoder& encoder) const = 0;
  virtual std::vector<ConditionedTransition> conditioned_transition_features(
      const Encoder&) const {
    return {};
  }
};

// Everything a model file holds.
struct ModelData {
  std::string algorithm;            // "lbfgs", "separate", ...
  Encoder encoder;                  // template, dictionaries
  std::unique_ptr<Scorer> scorer;
};

// Whether every element of `v` is finite.
inline bool all_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Lists (attribute, class) features with their weights; `class_name` names class k.
std::vector<WeightedFeature> list_features(const SparseFeatures& features, const double* weights,
                                           const Encoder& encoder,
                                           const std::vector<std::string>& class_names);

// Checks that pair classes name labels below L; fails `in` otherwise.
void check_label_pairs(const std::vector<int32_t>& first, const std::vector<int32_t>& second,
                       std::size_t L, ByteReader& in);

// One feature as a `septa dump` line: "  <weight, %10.6f>  from -> to".
void dump_feature(std::ostream& out, const WeightedFeature& feature);
// Every feature in order (those of weight 0 left out when `skip_zero`), one line each.
void dump_features(std::ostream& out, const std::vector<WeightedFeature>& features,
                   bool skip_zero = false);
// The `top` features of largest |weight|, largest first, one line each.
void dump_top_features(std::ostream& out, std::vector<WeightedFeature> features,
                       std::size_t top);

}  // namespace septa::crf
