// Chunk/entity evaluation exactly as the CoNLL script conlleval (2004-01-26) computes it.
#pragma once

#include <cstddef>
#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "septa/crf/limits.h"

namespace septa::crf {

// Counts for one chunk type (or all types together).
struct ChunkCounts {
  std::size_t gold = 0;     // chunks in the gold labelling
  std::size_t guessed = 0;  // chunks in the guessed labelling
  std::size_t correct = 0;  // chunks with the same start, end and type in both
  double precision() const;  // percent, 0 when nothing was guessed
  double recall() const;     // percent, 0 when nothing is gold
  double f1() const;         // percent, from unrounded precision and recall
};

// The result of an evaluation.
struct EvaluationResult {
  std::size_t tokens = 0;          // tokens counted (boundaries excluded)
  std::size_t correct_tokens = 0;  // tokens whose gold and guess tags agree
  ChunkCounts overall;
  std::map<std::string, ChunkCounts> by_type;  // keyed by chunk type, sorted
  // Token-level confusion of chunk types: confusion[gold type][guessed type] counts tokens
  // (boundaries excluded); the outside tag has type "O".
  std::map<std::string, std::map<std::string, std::size_t>> confusion;
  double accuracy() const;  // percent of correct_tokens over tokens
};

// Tag encodings; IOBES/IOE are converted to IOB2 before evaluation.
enum class TagScheme { kIob, kIobes };

// Accumulates (gold, guess) tag pairs token by token, then reports conlleval's figures.
class ChunkEvaluator {
 public:
  explicit ChunkEvaluator(TagScheme scheme = TagScheme::kIob) : scheme_(scheme) {}
  // Adds one token; an empty pair of tags, or gold "-X-", marks a boundary (not counted).
  void add(const std::string& gold, const std::string& guess);
  // Adds a sentence boundary (as a blank line in conlleval's input).
  void add_boundary();
  // Adds a whole sentence and a boundary after it.
  void add_sentence(const std::vector<std::string>& gold, const std::vector<std::string>& guess);
  // Closes any open chunk and returns the counts so far.
  EvaluationResult result() const;

 private:
  friend EvaluationResult evaluate_stream(std::istream& in, const std::string& name,
                                          TagScheme scheme, std::size_t max_line_bytes);
  // One line of conlleval's loop; a boundary acts as gold and guess "O" and is not counted.
  void step(std::string_view gold, std::string_view guess, bool boundary);

  TagScheme scheme_;
  // Running state of conlleval's loop: previous prefix and type of each labelling.
  std::string prev_gold_tag_ = "O", prev_gold_type_;
  std::string prev_guess_tag_ = "O", prev_guess_type_;
  std::string gold_tag_, gold_type_, guess_tag_, guess_type_;  // scratch for the current token
  bool in_correct_ = false;  // inside a chunk that so far matches in both labellings
  EvaluationResult result_;
};

// Reads conlleval input (last two whitespace-separated fields are gold and guess; blank lines
// and "-X-" lines are boundaries) and evaluates it; `name` prefixes error messages.
EvaluationResult evaluate_stream(std::istream& in, const std::string& name,
                                 TagScheme scheme = TagScheme::kIob,
                                 std::size_t max_line_bytes = kDefaultMaxLineBytes);

// Writes the report in conlleval's format (the "processed N tokens with M phrases" header, the
// overall line and one line per type).
void write_conlleval_report(const EvaluationResult& result, std::ostream& out);
// Writes the type confusion matrix as an aligned table: one row per gold type, one column per
// guessed type, counts of tokens.
void write_confusion_matrix(const EvaluationResult& result, std::ostream& out);

}  // namespace septa::crf
