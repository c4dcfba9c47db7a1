#include "nn/methods/mt/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "septa/error.h"

namespace septa::nn::mt {
namespace {

TEST(ChrfTest, HandComputedValue) {
  // hyp "ab", ref "abc": n=1: hyp 2, ref 3, match 2; n=2: 1, 2, 1; n=3: 0, 1, 0; n=4..6 empty.
  // Effective orders 1, 2. P = (1 + 1) / 2 = 1; R = (2/3 + 1/2 + 0) / 2 = 7/12.
  // chrF = 100 * 5 * P * R / (4 P + R) = 100 * 35 / 55.
  EXPECT_NEAR(chrf({"ab"}, {"abc"}), 100.0 * 35 / 55, 1e-9);
}

TEST(ChrfTest, WhitespaceIgnoredAndIdenticalIsHundred) {
  EXPECT_NEAR(chrf({"a b c"}, {"abc"}), 100.0, 1e-9);
  EXPECT_NEAR(chrf({"Öffnen"}, {"Öffnen"}), 100.0, 1e-9);
  EXPECT_NEAR(chrf({"xyz"}, {"abc"}), 0.0, 1e-9);  // sacreBLEU: 1e-14 from its epsilon
}

TEST(ChrfTest, CountsCodePointsNotBytes) {
  // "éa" vs "éb": n=1: hyp 2, ref 2, match 1; n=2: 1, 1, 0. P = R = (1/2 + 0) / 2 = 1/4 -> chrF 25.
  // Counting bytes would give a different value (3 byte-unigrams, 1 of them differs).
  EXPECT_NEAR(chrf({"\xc3\xa9" "a"}, {"\xc3\xa9" "b"}), 25.0, 1e-9);
}

TEST(ChrfTest, StatisticsAreSummedOverTheCorpus) {
  // Corpus {ab|abc, abc|abc}: n=1: hyp 5, ref 6, match 5; n=2: 3, 4, 3; n=3: 1, 2, 1; effective 3.
  // P = 1; R = (5/6 + 3/4 + 1/2) / 3 = 25/36; chrF = 100 * 5 R / (4 + R).
  const double r = 25.0 / 36;
  EXPECT_NEAR(chrf({"ab", "abc"}, {"abc", "abc"}), 100.0 * 5 * r / (4 + r), 1e-9);
  EXPECT_THROW(chrf({"a"}, {}), OptionError);
}

TEST(BleuTest, Tokenize13a) {
  EXPECT_EQ(tokenize_13a("Hello, world! It's 3.14-5 (x)"), "Hello , world ! It's 3.14 - 5 ( x )");
  EXPECT_EQ(tokenize_13a("a &amp; b&quot;c"), "a & b \" c");
  EXPECT_EQ(tokenize_13a("1,000 end."), "1,000 end .");
}

TEST(BleuTest, HandComputedValue) {
  // p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 1/3, BP = 1: BLEU = 100 (1/12)^(1/4).
  EXPECT_NEAR(bleu({"the cat sat on the mat"}, {"the cat sat on a mat"}), 100 * std::pow(1.0 / 12, 0.25), 1e-9);
}

TEST(BleuTest, BrevityPenaltyAndExpSmoothing) {
  // p1 = 3/4, p2 = 2/3, p3 = 1/2, p4: no match -> 1 / (2 * 1); c = 4 < r = 5: BP = exp(1 - 5/4).
  EXPECT_NEAR(bleu({"a b c d"}, {"a b c e f"}), 100 * std::exp(-0.25) * std::pow(0.125, 0.25), 1e-9);
  // No 3-gram in the hypothesis at all: 0.
  EXPECT_EQ(bleu({"a b"}, {"a b c"}), 0.0);
  EXPECT_NEAR(bleu({"a b c d"}, {"a b c d"}), 100.0, 1e-9);
}

}  // namespace
}  // namespace septa::nn::mt
