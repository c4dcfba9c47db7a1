// A trained sequence labeller of any algorithm: tagging, marginals, file I/O, dump.
#pragma once

#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "septa/crf/constraints.h"
#include "septa/crf/corpus.h"
#include "septa/crf/limits.h"

namespace septa::crf {

// How a model reads its input.
enum class InputFormat { kColumns, kAttributes };

// The labelling of one sequence, with its probability and optional marginals.
struct TagResult {
  std::vector<std::string> labels;               // [T] best labelling (Viterbi)
  double log_probability = 0.0;                  // log P(labels | x), normalised over all paths
  std::vector<std::vector<double>> marginals;    // [T][L] P(y_t = l | x) when requested
};

// A weighted feature, for inspection (dump, Python's state_features_).
struct WeightedFeature {
  std::string from;   // attribute (state feature) or previous label (transition)
  std::string to;     // label
  double weight = 0.0;
};

// An observation-conditioned transition feature (CRF++'s "B01:%x[0,0]" templates): the weight
// added to the transition from -> to at the edges whose expanded template string is attribute.
struct ConditionedTransition {
  std::string attribute;  // expanded bigram-template string, e.g. "B01:the"
  std::string from;       // previous label
  std::string to;         // label
  double weight = 0.0;
};

struct ModelData;    // private: encoder, scorer, algorithm
struct ModelAccess;  // private: how the trainer builds a model from its parts

class Model {
 public:
  Model();
  ~Model();
  Model(const Model&);
  Model& operator=(const Model&);
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Reads a model file; throws IoError if unreadable, ModelError if corrupt or foreign,
  // FormatError if larger than `max_bytes` (--max-model-bytes). With `threads` > 1 the
  // attribute index and the checksum are computed on a second thread while the weights are
  // read (the same model and the same errors as one thread).
  static Model load(const std::string& path, std::size_t max_bytes = kDefaultMaxModelBytes,
                    int threads = 1);
  // Writes the model atomically (temporary file, then rename).
  void save(const std::string& path) const;
  // The model as bytes (the file's content) and back.
  std::string to_bytes() const;
  static Model from_bytes(const std::string& bytes, const std::string& name);

  bool empty() const { return data_ == nullptr; }
  const std::string& algorithm() const;
  InputFormat input_format() const;
  const std::vector<std::string>& labels() const;  // [L]
  std::size_t feature_count() const;                // features with a non-zero weight slot
  std::size_t columns() const;  // columns of column-format training input, label included

  // Labels one sentence; `marginals` also computes P(y_t = l | x).
  TagResult tag(const ColumnSentence& sentence, bool marginals = false) const;
  TagResult tag(const AttributeSequence& sequence, bool marginals = false) const;
  // The same under constraints: forbidden transitions and labels kept from the input; the
  // probabilities and marginals are those of the constrained distribution.
  TagResult tag(const ColumnSentence& sentence, bool marginals,
                const DecodeConstraints& constraints) const;
  TagResult tag(const AttributeSequence& sequence, bool marginals,
                const DecodeConstraints& constraints) const;
  // The K most probable labellings (best first) with their log P(y|x), under `constraints`
  // (CRF++'s crf_test -n); fewer when the sequence has fewer labellings.
  std::vector<TagResult> tag_nbest(const ColumnSentence& sentence, std::size_t K,
                                   const DecodeConstraints& constraints = {}) const;
  std::vector<TagResult> tag_nbest(const AttributeSequence& sequence, std::size_t K,
                                   const DecodeConstraints& constraints = {}) const;
  // log P(labels | x) of a given labelling (CRFsuite's Tagger.probability, in log space);
  // throws FormatError for a label the model does not know or a length mismatch.
  double log_probability(const ColumnSentence& sentence,
                         const std::vector<std::string>& labels) const;
  double log_probability(const AttributeSequence& sequence,
                         const std::vector<std::string>& labels) const;
  // Attribute names the model knows (CRFsuite's attribute dictionary), in id order [A].
  const std::vector<std::string>& attributes() const;
  // Whether a column sentence carries a gold label column.
  bool has_gold_column(const ColumnSentence& sentence) const;

  // State features (attribute -> label) and transitions (label -> label) with their weights.
  std::vector<WeightedFeature> state_features() const;
  std::vector<WeightedFeature> transition_features() const;
  // Observation-conditioned transition features (empty unless the template has B lines with
  // macros, lbfgs, ap, pa and arow).
  std::vector<ConditionedTransition> conditioned_transition_features() const;

  // Prints labels, transitions and the `top` features of largest |weight| as readable text.
  void dump(std::ostream& out, std::size_t top) const;

 private:
  friend struct ModelAccess;
  explicit Model(std::shared_ptr<const ModelData> data);
  const ModelData& data() const;

  std::shared_ptr<const ModelData> data_;
};

}  // namespace septa::crf
