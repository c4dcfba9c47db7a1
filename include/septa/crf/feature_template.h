// CRF++ feature templates: "Uxx:%x[row,col]/..." unigram lines, "B" bigram lines, "#" comments.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/limits.h"

namespace septa::crf {

// A parsed template. Unigram templates expand to attribute strings per token; the id prefix
// ("U01:") is part of each string. Bigram lines are of two kinds, as in CRF++:
//  - a B line without a macro ("B", "B00") is the label bigram: one transition weight per
//    (previous label, label) pair;
//  - a B line with macros ("B01:%x[0,0]") is an observation-conditioned transition template:
//    it expands, at every position t >= 1, to an attribute string of the edge (t-1, t), read
//    with the token at t as row 0 (CRF++ expands bigram templates at the current token); each
//    (string, previous label, label) is one transition feature.
// Several macro-free B lines mean the same single label bigram.
struct TemplateLine;  // private: one parsed "U..." or "B...%x" line (feature_template.cc)

class FeatureTemplate {
 public:
  // Parses template text; `name` prefixes error messages ("name:line: ...").
  static FeatureTemplate parse(const std::string& text, const std::string& name);
  // Reads and parses a template file; throws IoError when it cannot be opened, FormatError when
  // it is larger than `max_bytes` (--max-template-bytes).
  static FeatureTemplate parse_file(const std::string& path,
                                    std::size_t max_bytes = kDefaultMaxTemplateBytes);
  // The built-in CoNLL-2000 chunking template: 19 unigram templates over (word, POS) and "B".
  static FeatureTemplate default_chunking();

  // Appends to `out` the attribute strings of token `t` of `sentence` (padding "_B-1", "_B+1"...
  // beyond its ends). Throws FormatError when a template names a column the sentence lacks.
  void expand(const ColumnSentence& sentence, std::size_t t, std::vector<std::string>& out) const;

  // Appends to `out` the attribute strings of the edge (t-1, t), t >= 1, expanded from the
  // observation-conditioned bigram templates at token t (nothing without such templates).
  void expand_edge(const ColumnSentence& sentence, std::size_t t,
                   std::vector<std::string>& out) const;

  // The same strings without a string object each (for hot loops): appended to `text`, with
  // the end offset of each in `text` appended to `ends` (a string starts where the previous one
  // ends, the first at text's size before the call). Once the buffers have grown, expanding
  // allocates nothing.
  void expand(const ColumnSentence& sentence, std::size_t t, std::string& text,
              std::vector<std::size_t>& ends) const;
  void expand_edge(const ColumnSentence& sentence, std::size_t t, std::string& text,
                   std::vector<std::size_t>& ends) const;

  // Highest column index any template reads (-1 when none).
  int max_column() const { return max_column_; }
  // Whether a label-bigram "B" line is present; without one the model has no label-bigram
  // transition weights (CRF++'s meaning; lbfgs, ap, pa and arow).
  bool has_bigram() const { return has_bigram_; }
  // Number of observation-conditioned bigram templates ("B01:%x[0,0]").
  std::size_t conditioned_bigram_count() const;
  // The source line of observation-conditioned bigram template `i`.
  const std::string& conditioned_bigram_text(std::size_t i) const;
  // The text the template was parsed from (stored in model files).
  const std::string& text() const { return text_; }
  // Number of unigram templates.
  std::size_t unigram_count() const;
  // The source line of unigram template `i` (e.g. "U05:%x[-1,0]/%x[0,0]").
  const std::string& unigram_text(std::size_t i) const;
  // For each unigram template u, a template v that reads at token t what u reads at token t+1:
  // the same macros with every row one higher, the same literals after the first (the id);
  // -1 where there is none. ("U00:%x[-2,0]" at t+1 and "U01:%x[-1,0]" at t read one token.)
  std::vector<int> unigram_shift_partners() const;

 private:
  std::string text_;
  std::shared_ptr<const std::vector<TemplateLine>> unigrams_;  // parsed U lines, immutable
  std::shared_ptr<const std::vector<TemplateLine>> bigrams_;   // parsed B lines with macros
  bool has_bigram_ = false;
  int max_column_ = -1;
};

}  // namespace septa::crf
