#include "septa/crf/evaluation.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "crf/test_data.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

using Tags = std::vector<std::string>;

EvaluationResult evaluate(const Tags& gold, const Tags& guess, TagScheme scheme = TagScheme::kIob) {
  ChunkEvaluator evaluator(scheme);
  evaluator.add_sentence(gold, guess);
  return evaluator.result();
}

EvaluationResult evaluate_text(const std::string& text) {
  std::istringstream in(text);
  return evaluate_stream(in, "e.txt");
}

std::string report(const EvaluationResult& result) {
  std::ostringstream out;
  write_conlleval_report(result, out);
  return out.str();
}

std::string error_of(const std::string& text) {
  try {
    evaluate_text(text);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ChunkEvaluator, Iob1ChunkStartsAtIAfterO) {
  // gold: one X chunk over tokens 1-2; guess: X at 1, a second X at 2 (B- restarts).
  const auto r = evaluate({"O", "I-X", "I-X", "O"}, {"O", "I-X", "B-X", "O"});
  EXPECT_EQ(r.tokens, 4u);
  EXPECT_EQ(r.correct_tokens, 3u);
  EXPECT_EQ(r.overall.gold, 1u);
  EXPECT_EQ(r.overall.guessed, 2u);
  EXPECT_EQ(r.overall.correct, 0u);
  const auto same = evaluate({"O", "I-X", "I-X", "O"}, {"O", "I-X", "I-X", "O"});
  EXPECT_EQ(same.overall.gold, 1u);
  EXPECT_EQ(same.overall.correct, 1u);
}

TEST(ChunkEvaluator, TypeChangeInsideAChunk) {
  const auto r = evaluate({"B-NP", "I-NP"}, {"B-NP", "I-VP"});
  EXPECT_EQ(r.overall.gold, 1u);
  EXPECT_EQ(r.overall.guessed, 2u);
  EXPECT_EQ(r.overall.correct, 0u);
  EXPECT_EQ(r.correct_tokens, 1u);
  EXPECT_EQ(r.by_type.at("NP").gold, 1u);
  EXPECT_EQ(r.by_type.at("NP").guessed, 1u);
  EXPECT_EQ(r.by_type.at("NP").correct, 0u);
  EXPECT_EQ(r.by_type.at("VP").gold, 0u);
  EXPECT_EQ(r.by_type.at("VP").guessed, 1u);
}

TEST(ChunkEvaluator, ChunksEndAtSentenceEnds) {
  ChunkEvaluator evaluator;
  evaluator.add_sentence({"I-NP"}, {"I-NP"});
  evaluator.add_sentence({"I-NP", "I-NP"}, {"I-NP", "I-NP"});
  auto r = evaluator.result();
  EXPECT_EQ(r.overall.gold, 2u);  // the boundary splits I-NP | I-NP into two chunks
  EXPECT_EQ(r.overall.correct, 2u);
  EXPECT_EQ(r.tokens, 3u);

  ChunkEvaluator open;  // no final boundary: result() closes the open chunk
  open.add("B-NP", "B-NP");
  open.add("I-NP", "I-NP");
  EXPECT_EQ(open.result().overall.correct, 1u);
  open.add("I-NP", "O");  // the guess ends early: no longer correct
  EXPECT_EQ(open.result().overall.correct, 0u);
}

TEST(ChunkEvaluator, ChunkAtSentenceEndMustEndInBoth) {
  // gold NP ends at the boundary; the guessed NP also ends there: correct.
  ChunkEvaluator evaluator;
  evaluator.add_sentence({"O", "B-NP", "I-NP"}, {"O", "B-NP", "I-NP"});
  evaluator.add_sentence({"I-NP"}, {"B-NP"});
  const auto r = evaluator.result();
  EXPECT_EQ(r.overall.gold, 2u);
  EXPECT_EQ(r.overall.guessed, 2u);
  EXPECT_EQ(r.overall.correct, 2u);
  EXPECT_EQ(r.correct_tokens, 3u);  // I-NP vs B-NP differ as tags
}

TEST(ChunkEvaluator, AccuracyCountsOTokens) {
  const auto r = evaluate({"O", "B-NP", "I-NP", "O"}, {"O", "B-NP", "O", "O"});
  EXPECT_EQ(r.tokens, 4u);
  EXPECT_EQ(r.correct_tokens, 3u);
  EXPECT_DOUBLE_EQ(r.accuracy(), 75.0);
  EXPECT_EQ(r.overall.correct, 0u);
  EXPECT_EQ(report(r),
            "processed 4 tokens with 1 phrases; found: 1 phrases; correct: 0.\n"
            "accuracy:  75.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
            "               NP: precision:   0.00%; recall:   0.00%; FB1:   0.00  1\n");
}

TEST(ChunkEvaluator, ReportFigures) {
  // gold NP[0-1] VP[2] NP[3]; guess NP[0-1] NP[2] NP[3]: 2 of 3 correct, VP never guessed.
  const auto r = evaluate({"B-NP", "I-NP", "B-VP", "B-NP"}, {"B-NP", "I-NP", "B-NP", "B-NP"});
  EXPECT_EQ(report(r),
            "processed 4 tokens with 3 phrases; found: 3 phrases; correct: 2.\n"
            "accuracy:  75.00%; precision:  66.67%; recall:  66.67%; FB1:  66.67\n"
            "               NP: precision:  66.67%; recall: 100.00%; FB1:  80.00  3\n"
            "               VP: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n");
  EXPECT_NEAR(r.by_type.at("NP").f1(), 80.0, 1e-12);
}

TEST(ChunkEvaluator, EmptyResultReportsNoAccuracyLine) {
  EXPECT_EQ(report(EvaluationResult()),
            "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0.\n");
}

TEST(ChunkEvaluator, IobesIsConvertedFirst) {
  const Tags gold = {"S-PER", "S-PER", "B-LOC", "E-LOC", "O"};
  const auto iobes = evaluate(gold, gold, TagScheme::kIobes);
  EXPECT_EQ(iobes.overall.gold, 3u);
  EXPECT_EQ(iobes.overall.correct, 3u);
  EXPECT_EQ(iobes.correct_tokens, 5u);
  const auto raw = evaluate(gold, gold, TagScheme::kIob);  // S-PER S-PER is one chunk as-is
  EXPECT_EQ(raw.overall.gold, 2u);
  const auto wrong = evaluate({"B-X", "E-X", "S-X"}, {"B-X", "I-X", "E-X"}, TagScheme::kIobes);
  EXPECT_EQ(wrong.overall.gold, 2u);     // B I | B
  EXPECT_EQ(wrong.overall.guessed, 1u);  // B I I
  EXPECT_EQ(wrong.overall.correct, 0u);
  EXPECT_EQ(wrong.correct_tokens, 2u);  // E-X and I-X agree after conversion
}

TEST(ChunkEvaluator, UnseenAndHyphenlessTags) {
  const auto r = evaluate({"B-LST", "I-LST", "O"}, {"O", "O", "O"});
  EXPECT_EQ(r.tokens, 3u);
  EXPECT_EQ(r.overall.gold, 1u);
  EXPECT_EQ(r.by_type.at("LST").gold, 1u);
  const auto dashes = evaluate({"B-A-B"}, {"B-A-B"});  // type is everything after the first '-'
  EXPECT_EQ(dashes.by_type.count("A-B"), 1u);
}

TEST(ChunkEvaluator, EmptyTypeIsListedTwiceLikeConlleval) {
  // conlleval's type list skips duplicates only after a Perl-true name, so "" found in both
  // gold and guess is printed twice.
  const std::string line = std::string(17, ' ') +
                           ": precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n";
  EXPECT_EQ(report(evaluate({"B"}, {"B"})),
            "processed 1 tokens with 1 phrases; found: 1 phrases; correct: 1.\n"
            "accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00\n" +
                line + line);
}

TEST(EvaluateStream, DocstartCountsAsOAndXIsABoundary) {
  const auto r = evaluate_text(
      "-DOCSTART- -X- O O\n\nEU NNP B-ORG B-ORG\n-X- -X- O O\nrejects VBZ I-ORG I-ORG\n");
  EXPECT_EQ(r.tokens, 3u);  // -DOCSTART-, EU, rejects; not the -X- line
  EXPECT_EQ(r.correct_tokens, 3u);
  EXPECT_EQ(r.overall.gold, 2u);  // -X- ends the ORG chunk, I-ORG starts a new one
  EXPECT_EQ(r.overall.correct, 2u);
}

TEST(EvaluateStream, LastTwoFieldsCrlfAndTabs) {
  const auto r = evaluate_text("a\tDT B-NP\tB-NP\r\nb NN I-NP O\r\n\r\nc VB B-VP B-VP");
  EXPECT_EQ(r.tokens, 3u);
  EXPECT_EQ(r.correct_tokens, 2u);
  EXPECT_EQ(r.overall.gold, 2u);
  EXPECT_EQ(r.overall.guessed, 2u);
  EXPECT_EQ(r.overall.correct, 1u);
}

TEST(EvaluateStream, MalformedLinesNameTheLine) {
  EXPECT_EQ(error_of("a B-NP B-NP\n\nO\n"),
            "e.txt:3: expected at least 2 fields (gold and guessed tag), found 1");
  EXPECT_EQ(error_of("a B-NP B-NP\nb x O O\n"), "e.txt:2: expected 3 fields, found 4");
}

TEST(EvaluateStream, AddMatchesStream) {
  ChunkEvaluator evaluator;
  evaluator.add("B-NP", "B-NP");
  evaluator.add("", "");  // a boundary
  evaluator.add("-X-", "B-VP");  // also a boundary, whatever the guess
  evaluator.add("I-NP", "I-NP");
  const auto r = evaluator.result();
  const auto s = evaluate_text("a B-NP B-NP\n\n-X- B-VP B-VP\nb I-NP I-NP\n");
  EXPECT_EQ(r.tokens, 2u);
  EXPECT_EQ(s.tokens, 2u);
  EXPECT_EQ(r.overall.gold, 2u);
  EXPECT_EQ(s.overall.gold, 2u);
  EXPECT_EQ(report(r), report(s));
}

TEST(EvaluateStream, Conll2000GoldAsGuess) {
  const std::string path = test::data_file("conll2000/test.txt");
  if (path.empty()) GTEST_SKIP() << "CoNLL-2000 data not found (set SEPTA_DATA)";
  std::ifstream file(path);
  std::ostringstream doubled;  // "word POS gold gold"
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty()) line += " " + line.substr(line.rfind(' ') + 1);
    doubled << line << '\n';
  }
  std::istringstream in(doubled.str());
  const auto r = evaluate_stream(in, path);
  EXPECT_EQ(r.tokens, 47377u);
  EXPECT_EQ(r.overall.gold, 23852u);
  EXPECT_EQ(r.overall.guessed, 23852u);
  EXPECT_EQ(r.overall.correct, 23852u);
  EXPECT_EQ(r.by_type.at("LST").gold, r.by_type.at("LST").correct);
  const std::string text = report(r);
  EXPECT_EQ(text.substr(0, text.find("\n", text.find('\n') + 1) + 1),
            "processed 47377 tokens with 23852 phrases; found: 23852 phrases; correct: 23852.\n"
            "accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00\n");
  EXPECT_NE(text.find("             ADJP: precision: 100.00%; recall: 100.00%; FB1: 100.00  438\n"),
            std::string::npos);

  ChunkEvaluator evaluator;  // the same through the reader and add_sentence
  for (const auto& sentence : read_columns_file(path, 3)) {
    Tags gold;
    for (const auto& token : sentence.columns) gold.push_back(token.back());
    evaluator.add_sentence(gold, gold);
  }
  EXPECT_EQ(report(evaluator.result()), text);
  std::printf("%s", text.c_str());
}

}  // namespace
}  // namespace septa::crf
