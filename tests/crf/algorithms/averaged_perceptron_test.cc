// -a ap's averaging against a hand computation and against a literal brute-force perceptron
// (every labelling enumerated, every intermediate weight vector stored and averaged).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "septa/crf/trainer.h"

namespace septa::crf {
namespace {

AttributeSequence sequence(std::vector<std::vector<Attribute>> items,
                           std::vector<std::string> labels) {
  AttributeSequence s;
  s.attributes = std::move(items);
  s.labels = std::move(labels);
  return s;
}

// (from, to) -> weight of the model's state and transition features ("from" of a transition is
// prefixed with "->" to keep the two kinds apart).
std::map<std::pair<std::string, std::string>, double> weights_of(const Model& model) {
  std::map<std::pair<std::string, std::string>, double> w;
  for (const WeightedFeature& f : model.state_features()) w[{f.from, f.to}] = f.weight;
  for (const WeightedFeature& f : model.transition_features()) w[{"->" + f.from, f.to}] = f.weight;
  return w;
}

TrainOptions ap_options(int epochs) {
  TrainOptions o;
  o.algorithm = "ap";
  if (epochs > 0) o.max_iterations = epochs;
  return o;
}

// One sequence "a b" labelled "X Y". Epoch 1, visit k = 1: all weights 0, Viterbi's ties go to
// the first label, so the guess is "X X"; the features that exist are (a,X), (b,Y) and X->Y, so
// dphi = {(b,Y): +1, X->Y: +1} and w = u = dphi. From then on "X Y" scores 2 against at most 1,
// so no more mistakes: after K visits the model is w - u / (K + 1) = (K / (K + 1)) dphi.
TEST(AveragedPerceptron, AveragesOverEveryVisitAsComputedByHand) {
  const std::vector<AttributeSequence> data = {sequence({{{"a", 1.0}}, {{"b", 1.0}}}, {"X", "Y"})};
  for (int epochs : {1, 2, 7, 0}) {  // 0: --max-iterations left at its default, 100 epochs
    const TrainResult r = train(data, ap_options(epochs));
    const int K = epochs == 0 ? 100 : epochs;
    EXPECT_EQ(r.iterations, K) << "every epoch runs: epsilon defaults to CRFsuite's 0";
    ASSERT_EQ(r.model.labels(), (std::vector<std::string>{"X", "Y"}));
    const double expected = static_cast<double>(K) / (K + 1.0);
    auto w = weights_of(r.model);
    EXPECT_NEAR((w[{"b", "Y"}]), expected, 1e-6) << K << " epochs";
    EXPECT_NEAR((w[{"->X", "Y"}]), expected, 1e-6) << K << " epochs";
    EXPECT_NEAR((w[{"a", "X"}]), 0.0, 1e-12) << K << " epochs";
    EXPECT_EQ(r.model.tag(data[0]).labels, data[0].labels);
  }
  // An explicit --epsilon stops at the first epoch whose error is below it: epoch 2 has none.
  TrainOptions o = ap_options(0);
  o.epsilon = 0.5;
  const TrainResult stopped = train(data, o);
  EXPECT_EQ(stopped.iterations, 2);
  EXPECT_NEAR((weights_of(stopped.model)[{"b", "Y"}]), 2.0 / 3.0, 1e-6);
}

// The perceptron written out literally: labellings enumerated, features the (attribute, label)
// pairs and label bigrams of the training data, the weights after every visit stored and their
// mean taken at the end of every epoch; visiting order the loop's (std::shuffle of 0..N-1 with
// std::mt19937_64 seeded with --seed, once per epoch).
struct BruteForcePerceptron {
  const std::vector<AttributeSequence>& data;
  std::vector<std::string> labels;                                   // [L] in order of appearance
  std::map<std::pair<std::string, std::string>, double> w;           // existing features only
  std::vector<std::map<std::pair<std::string, std::string>, double>> history;  // w_0, w_1, ...
  int mistakes = 0;

  explicit BruteForcePerceptron(const std::vector<AttributeSequence>& d) : data(d) {
    for (const AttributeSequence& s : data)
      for (std::size_t t = 0; t < s.labels.size(); ++t) {
        if (std::find(labels.begin(), labels.end(), s.labels[t]) == labels.end())
          labels.push_back(s.labels[t]);
        for (const Attribute& a : s.attributes[t]) w[{a.name, s.labels[t]}] = 0.0;
        if (t > 0) w[{"->" + s.labels[t - 1], s.labels[t]}] = 0.0;
      }
    history.push_back(w);
  }

  // Phi(x, y) restricted to existing features, added to `into` times `sign`.
  void add_phi(const AttributeSequence& s, const std::vector<std::string>& y, double sign,
               std::map<std::pair<std::string, std::string>, double>& into) const {
    for (std::size_t t = 0; t < y.size(); ++t) {
      for (const Attribute& a : s.attributes[t])
        if (w.count({a.name, y[t]})) into[{a.name, y[t]}] += sign * a.value;
      if (t > 0 && w.count({"->" + y[t - 1], y[t]})) into[{"->" + y[t - 1], y[t]}] += sign;
    }
  }

  double score(const AttributeSequence& s, const std::vector<std::string>& y) const {
    std::map<std::pair<std::string, std::string>, double> phi;
    add_phi(s, y, 1.0, phi);
    double total = 0.0;
    for (const auto& [f, v] : phi) total += w.at(f) * v;
    return total;
  }

  // The best labelling. Among labellings of equal score it takes Viterbi's choice (ties go to
  // the smallest label index, deciding from the last position backwards): the first maximum in
  // lexicographic order of (y_{T-1}, ..., y_0), position 0 counting fastest.
  std::vector<std::string> best(const AttributeSequence& s) const {
    const std::size_t T = s.labels.size(), L = labels.size();
    std::vector<std::size_t> index(T, 0);
    std::vector<std::string> y(T), argmax;
    double top = -INFINITY;
    for (;;) {
      for (std::size_t t = 0; t < T; ++t) y[t] = labels[index[t]];
      const double v = score(s, y);
      if (v > top + 1e-9) top = v, argmax = y;
      std::size_t t = 0;
      while (t < T && ++index[t] == L) index[t++] = 0;
      if (t == T) break;
    }
    return argmax;
  }

  std::map<std::pair<std::string, std::string>, double> run(int epochs, unsigned long seed) {
    std::vector<std::size_t> order(data.size());
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed);
    for (int epoch = 0; epoch < epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      for (std::size_t n : order) {
        const std::vector<std::string> z = best(data[n]);
        if (z != data[n].labels) {
          ++mistakes;
          add_phi(data[n], data[n].labels, 1.0, w);
          add_phi(data[n], z, -1.0, w);
        }
        history.push_back(w);
      }
    }
    std::map<std::pair<std::string, std::string>, double> mean;
    for (const auto& snapshot : history)
      for (const auto& [f, v] : snapshot) mean[f] += v / static_cast<double>(history.size());
    return mean;
  }
};

TEST(AveragedPerceptron, MatchesALiteralPerceptronOnAThreeSequenceCorpus) {
  // Three labels, unequal values, a shared attribute per label, and a last token that only the
  // transitions can label.
  const std::vector<AttributeSequence> data = {
      sequence({{{"the", 1.0}}, {{"dog", 0.7}, {"noun", 1.3}}, {{"runs", 1.1}}}, {"D", "N", "V"}),
      sequence({{{"a", 0.9}}, {{"cat", 1.2}, {"noun", 0.6}}, {{"sleeps", 0.8}, {"runs", 0.35}}},
               {"D", "N", "V"}),
      sequence({{{"runs", 0.55}}, {{"the", 0.45}}, {{"noun", 0.25}}, {{"odd", 1.7}}},
               {"V", "D", "N", "N"}),
  };
  for (int epochs : {1, 2, 3, 10}) {
    TrainOptions o = ap_options(epochs);
    const TrainResult r = train(data, o);
    BruteForcePerceptron reference(data);
    const auto expected = reference.run(epochs, o.seed);
    ASSERT_EQ(r.model.labels(), reference.labels);
    if (epochs >= 3) {
      EXPECT_GE(reference.mistakes, 4) << "too easy to test the averaging";
    }
    auto got = weights_of(r.model);
    for (const auto& [f, v] : expected)
      EXPECT_NEAR(got[f], v, 1e-5) << f.first << " " << f.second << ", " << epochs << " epochs";
    for (const auto& [f, v] : got) {  // label pairs never seen in training stay 0
      if (expected.count(f)) continue;
      EXPECT_EQ(v, 0.0) << "unexpected " << f.first << " " << f.second;
    }
  }
}

// An empty sequence is a visit too (as in CRFsuite): it enlarges the averaging count.
TEST(AveragedPerceptron, EmptySequencesCountAsVisits) {
  const AttributeSequence one = sequence({{{"a", 1.0}}, {{"b", 1.0}}}, {"X", "Y"});
  const std::vector<AttributeSequence> data = {one, sequence({}, {})};
  const TrainResult r = train(data, ap_options(1));
  // Visit 1 is either sequence; the mistake on "a b" is made at visit k = 1 or 2 and the
  // average over 2 visits is w - k w / 3.
  const double w = weights_of(r.model)[std::make_pair(std::string("b"), std::string("Y"))];
  EXPECT_TRUE(std::abs(w - 2.0 / 3.0) < 1e-6 || std::abs(w - 1.0 / 3.0) < 1e-6) << w;
}

}  // namespace
}  // namespace septa::crf
