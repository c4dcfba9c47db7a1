// Turns sentences (column or attribute format) into Datasets: template expansion, attribute
// and label dictionaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/features/dictionary.h"
#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/communicator.h"
#include "septa/crf/model.h"

namespace septa::crf {

class Encoder {
 public:
  Encoder() = default;
  // An encoder for column input read through `feature_template`.
  explicit Encoder(FeatureTemplate feature_template);

  InputFormat format() const { return format_; }
  const FeatureTemplate& feature_template() const { return template_; }
  std::size_t columns() const { return columns_; }  // columns of training input, label included

  // Encodes training sentences, growing both dictionaries, on `threads` threads (the result does
  // not depend on it). Every sentence must have the same number of columns, more than the
  // template reads; errors name the place of the sentence (item_place).
  void encode_training(const std::vector<ColumnSentence>& corpus, Dataset& out, int threads = 1);
  // The same, freeing the text as it goes (each sentence once encoded on one thread, each
  // thread's part once encoded on several), so it never sits whole beside the dictionaries at
  // the peak; `corpus` is left empty.
  void encode_training(std::vector<ColumnSentence>&& corpus, Dataset& out, int threads = 1);
  // With `values` false, column data into a dataset without values (out.attribute_values
  // empty) leaves them empty: every value is 1, and Dataset's views read an empty array so
  // (for the algorithms that drop the values of column data anyway: 4 bytes per entry written,
  // filled with 1 and freed for nothing, 16 MB on CoNLL-2000).
  void encode_training(std::vector<ColumnSentence>&& corpus, Dataset& out, int threads,
                       bool values);
  void encode_training(const std::vector<AttributeSequence>& corpus, Dataset& out);
  // After encode_training on each rank's consecutive part of one corpus: both dictionaries
  // become their union over the ranks of `comm` in the first-seen order of the whole corpus,
  // `data` is renumbered accordingly, and the ranks' column counts must agree. Only rank 0
  // keeps the attribute strings; rank r > 0 keeps their count and, in *attribute_slice, its
  // share of them packed (merge_dictionary).
  void merge_across(Communicator& comm, Dataset& data, const std::string& name,
                    std::string* attribute_slice);

  // Encodes one sentence for tagging: unknown attributes are dropped, gold labels unknown to the
  // model become -1. A column sentence may carry the gold column or not.
  void encode(const ColumnSentence& sentence, Dataset& out) const;
  void encode(const AttributeSequence& sequence, Dataset& out) const;
  // Whether a column sentence has a gold label column (else it has one column fewer).
  bool has_gold_column(const ColumnSentence& sentence) const;

  Dictionary& attributes() { return attributes_; }
  const Dictionary& attributes() const { return attributes_; }
  Dictionary& labels() { return labels_; }
  const Dictionary& labels() const { return labels_; }

  // Restores an encoder from model-file fields.
  static Encoder restore(InputFormat format, const std::string& template_text,
                         std::size_t columns);

 private:
  // encode_training over `corpus`; with `owned` (the same vector, owned by the caller) each
  // sentence is emptied once encoded.
  void encode_columns(const std::vector<ColumnSentence>& corpus,
                      std::vector<ColumnSentence>* owned, Dataset& out, int threads,
                      bool values = true);

  InputFormat format_ = InputFormat::kAttributes;
  FeatureTemplate template_;
  std::size_t columns_ = 0;
  Dictionary attributes_;  // [A] attribute strings
  Dictionary labels_;      // [L] label strings
};

}  // namespace septa::crf
