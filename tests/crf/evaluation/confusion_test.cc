// The token-level confusion of chunk types kept by the evaluator.
#include <gtest/gtest.h>

#include <sstream>

#include "septa/crf/evaluation.h"

namespace septa::crf {
namespace {

TEST(Confusion, CountsTokensByGoldAndGuessedType) {
  ChunkEvaluator evaluator;
  evaluator.add_sentence({"B-PER", "I-PER", "O", "B-LOC", "B-ORG"},
                         {"B-PER", "I-LOC", "O", "B-LOC", "O"});
  evaluator.add("", "");  // a boundary is not a token
  evaluator.add("O", "B-PER");
  const EvaluationResult r = evaluator.result();
  EXPECT_EQ(r.tokens, 6u);
  EXPECT_EQ(r.confusion.at("PER").at("PER"), 1u);
  EXPECT_EQ(r.confusion.at("PER").at("LOC"), 1u);
  EXPECT_EQ(r.confusion.at("O").at("O"), 1u);
  EXPECT_EQ(r.confusion.at("O").at("PER"), 1u);
  EXPECT_EQ(r.confusion.at("LOC").at("LOC"), 1u);
  EXPECT_EQ(r.confusion.at("ORG").at("O"), 1u);
  std::size_t total = 0;
  for (const auto& [gold, row] : r.confusion)
    for (const auto& entry : row) total += entry.second;
  EXPECT_EQ(total, r.tokens);
  std::ostringstream table;
  write_confusion_matrix(r, table);
  // Header: the four types in order; the ORG row has its one token under O.
  EXPECT_NE(table.str().find("LOC"), std::string::npos);
  std::istringstream lines(table.str());
  std::string header, row;
  std::getline(lines, header);
  while (std::getline(lines, row))
    if (row.rfind("ORG", 0) == 0) {
      std::istringstream cells(row.substr(3));
      std::size_t loc, o, org, per;
      cells >> loc >> o >> org >> per;
      EXPECT_EQ(loc, 0u);
      EXPECT_EQ(o, 1u);
      EXPECT_EQ(org, 0u);
      EXPECT_EQ(per, 0u);
    }
}

}  // namespace
}  // namespace septa::crf
