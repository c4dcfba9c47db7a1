// conlleval (2004-01-26) reimplemented: chunk starts and ends decided from (previous tag,
// tag, previous type, type); a chunk is correct when gold and guess start and end together
// with the same type.
#include <algorithm>
#include <iomanip>
#include <set>
#include <cstdio>

#include "crf/io/line_reader.h"
#include "septa/crf/evaluation.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

constexpr std::string_view kBoundary = "-X-";

// conlleval's /^([^-]*)-(.*)$/: prefix before the first hyphen, type after it ("" if none).
void split_tag(std::string_view tag, TagScheme scheme, std::string& prefix, std::string& type) {
  const std::size_t hyphen = tag.find('-');
  if (hyphen == std::string_view::npos) {
    prefix.assign(tag);
    type.clear();
  } else {
    prefix.assign(tag.substr(0, hyphen));
    type.assign(tag.substr(hyphen + 1));
  }
  if (scheme == TagScheme::kIobes) {
    if (prefix == "S") prefix = "B";
    else if (prefix == "E") prefix = "I";
  }
}

bool end_of_chunk(const std::string& prev_tag, const std::string& tag,
                  const std::string& prev_type, const std::string& type) {
  const auto is = [&](const char* p, const char* c) { return prev_tag == p && tag == c; };
  if (is("B", "B") || is("B", "O") || is("I", "B") || is("I", "O") || is("E", "E") ||
      is("E", "I") || is("E", "O"))
    return true;
  if (prev_tag != "O" && prev_tag != "." && prev_type != type) return true;
  return prev_tag == "]" || prev_tag == "[";
}

bool start_of_chunk(const std::string& prev_tag, const std::string& tag,
                    const std::string& prev_type, const std::string& type) {
  const auto is = [&](const char* p, const char* c) { return prev_tag == p && tag == c; };
  if (is("B", "B") || is("I", "B") || is("O", "B") || is("O", "I") || is("E", "E") ||
      is("E", "I") || is("O", "E"))
    return true;
  if (tag != "O" && tag != "." && prev_type != type) return true;
  return tag == "[" || tag == "]";
}

double percent(std::size_t part, std::size_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

double ChunkCounts::precision() const { return percent(correct, guessed); }

double ChunkCounts::recall() const { return percent(correct, gold); }

double ChunkCounts::f1() const {
  const double p = precision();
  const double r = recall();
  return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r);
}

double EvaluationResult::accuracy() const { return percent(correct_tokens, tokens); }

void ChunkEvaluator::add(const std::string& gold, const std::string& guess) {
  step(gold, guess, (gold.empty() && guess.empty()) || gold == kBoundary);
}

void ChunkEvaluator::add_boundary() { step("O", "O", true); }

void ChunkEvaluator::add_sentence(const std::vector<std::string>& gold,
                                  const std::vector<std::string>& guess) {
  if (gold.size() != guess.size())
    throw FormatError("sentence has " + std::to_string(gold.size()) + " gold tags but " +
                      std::to_string(guess.size()) + " guessed tags");
  for (std::size_t t = 0; t < gold.size(); ++t) add(gold[t], guess[t]);
  add_boundary();
}

void ChunkEvaluator::step(std::string_view gold, std::string_view guess, bool boundary) {
  if (boundary) {
    gold = "O";
    guess = "O";
  }
  split_tag(gold, scheme_, gold_tag_, gold_type_);
  split_tag(guess, scheme_, guess_tag_, guess_type_);

  const bool gold_ends = end_of_chunk(prev_gold_tag_, gold_tag_, prev_gold_type_, gold_type_);
  const bool guess_ends =
      end_of_chunk(prev_guess_tag_, guess_tag_, prev_guess_type_, guess_type_);
  if (in_correct_) {
    if (gold_ends && guess_ends && prev_guess_type_ == prev_gold_type_) {
      in_correct_ = false;
      ++result_.overall.correct;
      ++result_.by_type[prev_gold_type_].correct;
    } else if (gold_ends != guess_ends || guess_type_ != gold_type_) {
      in_correct_ = false;
    }
  }

  const bool gold_starts =
      start_of_chunk(prev_gold_tag_, gold_tag_, prev_gold_type_, gold_type_);
  const bool guess_starts =
      start_of_chunk(prev_guess_tag_, guess_tag_, prev_guess_type_, guess_type_);
  if (gold_starts && guess_starts && guess_type_ == gold_type_) in_correct_ = true;
  if (gold_starts) {
    ++result_.overall.gold;
    ++result_.by_type[gold_type_].gold;
  }
  if (guess_starts) {
    ++result_.overall.guessed;
    ++result_.by_type[guess_type_].guessed;
  }
  if (!boundary) {
    if (gold_tag_ == guess_tag_ && gold_type_ == guess_type_) ++result_.correct_tokens;
    ++result_.tokens;
    ++result_.confusion[gold_type_.empty() ? "O" : gold_type_]
                       [guess_type_.empty() ? "O" : guess_type_];
  }

  prev_gold_tag_.swap(gold_tag_);
  prev_gold_type_.swap(gold_type_);
  prev_guess_tag_.swap(guess_tag_);
  prev_guess_type_.swap(guess_type_);
}

EvaluationResult ChunkEvaluator::result() const {
  EvaluationResult result = result_;
  if (in_correct_) {
    ++result.overall.correct;
    ++result.by_type[prev_gold_type_].correct;
  }
  return result;
}

EvaluationResult evaluate_stream(std::istream& in, const std::string& name, TagScheme scheme,
                                 std::size_t max_line_bytes) {
  ChunkEvaluator evaluator(scheme);
  LineReader reader(in, name, max_line_bytes);
  std::string_view line;
  std::vector<std::string_view> fields;
  std::size_t field_count = 0;  // fixed by the first non-empty line, as conlleval does
  while (reader.next(line)) {
    split_whitespace(line, fields);
    if (fields.empty()) {
      evaluator.add_boundary();
      continue;
    }
    const std::string place = error_place(name, reader.line_number());
    if (fields.size() < 2)
      throw FormatError(place + "expected at least 2 fields (gold and guessed tag), found " +
                        std::to_string(fields.size()));
    if (field_count == 0) field_count = fields.size();
    if (fields.size() != field_count)
      throw FormatError(place + "expected " + std::to_string(field_count) + " fields, found " +
                        std::to_string(fields.size()));
    evaluator.step(fields[fields.size() - 2], fields.back(), fields[0] == kBoundary);
  }
  return evaluator.result();
}

void write_conlleval_report(const EvaluationResult& result, std::ostream& out) {
  char buf[256];
  out << "processed " << result.tokens << " tokens with " << result.overall.gold
      << " phrases; found: " << result.overall.guessed
      << " phrases; correct: " << result.overall.correct << ".\n";
  if (result.tokens > 0) {
    std::snprintf(buf, sizeof buf,
                  "accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n",
                  result.accuracy(), result.overall.precision(), result.overall.recall(),
                  result.overall.f1());
    out << buf;
  }
  for (const auto& [type, counts] : result.by_type) {
    std::snprintf(buf, sizeof buf, "precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %zu\n",
                  counts.precision(), counts.recall(), counts.f1(), counts.guessed);
    // conlleval prints a type once per table it occurs in when the name is Perl-false.
    const bool perl_false = type.empty() || type == "0";
    const int copies = perl_false && counts.gold > 0 && counts.guessed > 0 ? 2 : 1;
    const std::string head =
        std::string(type.size() < 17 ? 17 - type.size() : 0, ' ') + type + ": ";
    for (int k = 0; k < copies; ++k) out << head << buf;
  }
}

void write_confusion_matrix(const EvaluationResult& result, std::ostream& out) {
  std::set<std::string> types;
  for (const auto& [gold, row] : result.confusion) {
    types.insert(gold);
    for (const auto& entry : row) types.insert(entry.first);
  }
  std::size_t width = 9;  // "gold\\guess"
  for (const std::string& type : types) width = std::max(width, type.size());
  for (const auto& [gold, row] : result.confusion)
    for (const auto& entry : row) width = std::max(width, std::to_string(entry.second).size());
  width += 1;
  out << std::left << std::setw(static_cast<int>(width)) << "gold\\guess" << std::right;
  for (const std::string& type : types) out << std::setw(static_cast<int>(width)) << type;
  out << "\n";
  for (const std::string& gold : types) {
    out << std::left << std::setw(static_cast<int>(width)) << gold << std::right;
    const auto row = result.confusion.find(gold);
    for (const std::string& guess : types) {
      std::size_t count = 0;
      if (row != result.confusion.end()) {
        const auto cell = row->second.find(guess);
        if (cell != row->second.end()) count = cell->second;
      }
      out << std::setw(static_cast<int>(width)) << count;
    }
    out << "\n";
  }
}

}  // namespace septa::crf
