// Constrained decoding (forbidden transitions, IOB2 rules, forced labels) against brute-force
// enumeration of the allowed labellings.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "crf/fixtures.h"
#include "septa/crf/constraints.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

class Constrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::istringstream in(testing::toy_chunking_corpus(60, 1));
    TrainOptions options;
    options.max_iterations = 30;
    model_ = new Model(train(read_columns(in, "toy.txt"), "toy.txt",
                             FeatureTemplate::default_chunking(), options)
                           .model);
    std::istringstream test(testing::toy_chunking_corpus(10, 2));
    sentences_ = new std::vector<ColumnSentence>(read_columns(test, "test.txt"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete sentences_;
  }
  // The first T tokens of sentence n.
  static ColumnSentence prefix(std::size_t n, std::size_t T) {
    ColumnSentence s = (*sentences_)[n];
    s.columns.resize(std::min(T, s.columns.size()));
    return s;
  }
  static Model* model_;
  static std::vector<ColumnSentence>* sentences_;
};
Model* Constrained::model_ = nullptr;
std::vector<ColumnSentence>* Constrained::sentences_ = nullptr;

bool allowed(const DecodeConstraints& c, const std::vector<std::string>& labels,
             const std::vector<int>& path) {
  const std::size_t L = labels.size();
  if (!c.allowed_first.empty() && !c.allowed_first[path[0]]) return false;
  for (std::size_t t = 1; t < path.size(); ++t)
    if (!c.allowed_transitions[path[t - 1] * L + path[t]]) return false;
  for (std::size_t t = 0; t < c.forced.size(); ++t)
    if (!c.forced[t].empty() && labels[path[t]] != c.forced[t]) return false;
  return true;
}

// Checks the constrained Viterbi labelling, its probability and the marginals against an
// enumeration of every allowed labelling under the unconstrained model.
void check_against_enumeration(const Model& model, const ColumnSentence& s,
                               const DecodeConstraints& c) {
  const std::vector<std::string>& labels = model.labels();
  const std::size_t L = labels.size(), T = s.columns.size();
  std::vector<int> path(T, 0);
  double best = -INFINITY, total = 0.0;
  std::vector<std::string> best_labels;
  std::vector<std::vector<double>> marginal(T, std::vector<double>(L, 0.0));
  for (;;) {
    if (allowed(c, labels, path)) {
      std::vector<std::string> names;
      for (int y : path) names.push_back(labels[y]);
      const double log_p = model.log_probability(s, names);
      total += std::exp(log_p);
      for (std::size_t t = 0; t < T; ++t) marginal[t][path[t]] += std::exp(log_p);
      if (log_p > best) best = log_p, best_labels = names;
    }
    std::size_t t = 0;
    while (t < T && ++path[t] == static_cast<int>(L)) path[t++] = 0;
    if (t == T) break;
  }
  ASSERT_GT(total, 0.0);
  const TagResult result = model.tag(s, true, c);
  EXPECT_EQ(result.labels, best_labels);
  EXPECT_NEAR(result.log_probability, best - std::log(total), 1e-6);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j)
      EXPECT_NEAR(result.marginals[t][j], marginal[t][j] / total, 1e-9);
}

TEST_F(Constrained, IobRulesMatchEnumerationOfTheAllowedPaths) {
  const DecodeConstraints c = transition_constraints(model_->labels(), true, "", "rules");
  for (std::size_t n = 0; n < 4; ++n) check_against_enumeration(*model_, prefix(n, 4), c);
  // IOB2: no inside tag may follow O or another type, nor start the sentence.
  for (const ColumnSentence& s : *sentences_) {
    const auto labels = model_->tag(s, false, c).labels;
    EXPECT_NE(labels[0].rfind("I-", 0), 0u);
    for (std::size_t t = 1; t < labels.size(); ++t)
      if (labels[t].rfind("I-", 0) == 0) {
        EXPECT_EQ(labels[t - 1].substr(2), labels[t].substr(2)) << labels[t - 1] << labels[t];
      }
  }
}

TEST_F(Constrained, ForbiddenPairsAndForcedLabelsMatchEnumeration) {
  DecodeConstraints c = transition_constraints(
      model_->labels(), false, "# no chunk continues\nforbid * I-NP\nallow B-NP I-NP\n", "r");
  const auto& labels = model_->labels();
  const std::size_t L = labels.size();
  for (std::size_t i = 0; i < L; ++i)
    for (std::size_t j = 0; j < L; ++j)
      EXPECT_EQ(c.allowed_transitions[i * L + j],
                labels[j] != "I-NP" || labels[i] == "B-NP") << labels[i] << labels[j];
  const ColumnSentence s = prefix(1, 4);
  c.forced = {"", "B-VP", "", ""};
  check_against_enumeration(*model_, s, c);
  const TagResult forced = model_->tag(s, true, c);
  EXPECT_EQ(forced.labels[1], "B-VP");
  c.forced = {"", "NO-SUCH", "", ""};
  EXPECT_THROW(model_->tag(s, false, c), FormatError);
}

TEST(TransitionConstraints, BadRulesNameTheLine) {
  const std::vector<std::string> labels = {"O", "B-X", "I-X"};
  EXPECT_THROW(transition_constraints(labels, false, "forbid O\n", "r.txt"), FormatError);
  try {
    transition_constraints(labels, false, "allow O I-X\nforbid O I-Y\n", "r.txt");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("r.txt:2: label 'I-Y'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace septa::crf
