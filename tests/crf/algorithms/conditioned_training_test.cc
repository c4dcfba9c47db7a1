// Training, decoding and model files with observation-conditioned B templates ("B01:%x[0,0]").
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>

#include "crf/model/model_file.h"
#include "crf/io/binary_io.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// The first token ("startA"/"startB") names the first label; each later token says whether the
// label stays ("same") or changes ("flip"). Only a transition that sees the current word can
// label such sequences: neither a state feature nor a label bigram alone can.
std::vector<ColumnSentence> switch_corpus(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::ostringstream text;
  for (std::size_t s = 0; s < n; ++s) {
    int label = static_cast<int>(rng() % 2);
    text << (label ? "startB" : "startA") << " " << (label ? "B" : "A") << "\n";
    for (int t = 1; t < 6; ++t) {
      const bool flip = rng() % 2;
      label ^= flip ? 1 : 0;
      text << (flip ? "flip" : "same") << " " << (label ? "B" : "A") << "\n";
    }
    text << "\n";
  }
  std::istringstream in(text.str());
  return read_columns(in, "switch.txt");
}

double accuracy(const Model& model, const std::vector<ColumnSentence>& data) {
  std::size_t right = 0, all = 0;
  for (const ColumnSentence& s : data) {
    const TagResult r = model.tag(s);
    for (std::size_t t = 0; t < s.columns.size(); ++t, ++all) right += r.labels[t] == s.columns[t].back();
  }
  return static_cast<double>(right) / static_cast<double>(all);
}

uint32_t file_version(const std::string& bytes) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + 8, 4);
  return v;
}

const char* kConditioned = "U00:%x[0,0]\nB01:%x[0,0]\n";
const char* kPlain = "U00:%x[0,0]\nB\n";

TEST(ConditionedTraining, LearnsWhatOnlyObservationConditionedTransitionsCanExpress) {
  const auto train_data = switch_corpus(80, 1), test_data = switch_corpus(40, 2);
  for (const char* algorithm : {"lbfgs", "ap", "pa", "arow", "l2sgd"}) {
    TrainOptions options;
    options.algorithm = algorithm;
    options.threads = 1;
    options.max_iterations = 50;
    const Model conditioned =
        train(train_data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options).model;
    const Model plain =
        train(train_data, "switch.txt", FeatureTemplate::parse(kPlain, "t"), options).model;
    EXPECT_GT(accuracy(conditioned, test_data), 0.95) << algorithm;
    EXPECT_LT(accuracy(plain, test_data), 0.8) << algorithm;
    EXPECT_FALSE(conditioned.conditioned_transition_features().empty()) << algorithm;
    EXPECT_TRUE(plain.conditioned_transition_features().empty()) << algorithm;
    // "B01:flip" weighs A -> B above A -> A.
    double flip_ab = 0.0, flip_aa = 0.0;
    for (const ConditionedTransition& f : conditioned.conditioned_transition_features()) {
      if (f.attribute == "B01:flip" && f.from == "A" && f.to == "B") flip_ab = f.weight;
      if (f.attribute == "B01:flip" && f.from == "A" && f.to == "A") flip_aa = f.weight;
    }
    EXPECT_GT(flip_ab, flip_aa) << algorithm;
  }
}

TEST(ConditionedTraining, ModelFileIsVersion5AndRoundTrips) {
  const auto data = switch_corpus(30, 3);
  TrainOptions options;
  options.max_iterations = 30;
  const Model model =
      train(data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options).model;
  const std::string bytes = model.to_bytes();
  EXPECT_EQ(file_version(bytes), 5u);
  const Model loaded = Model::from_bytes(bytes, "m");
  EXPECT_EQ(loaded.to_bytes(), bytes);
  for (const ColumnSentence& s : data) {
    const TagResult a = model.tag(s, true), b = loaded.tag(s, true);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.log_probability, b.log_probability);
  }
  // A model without them keeps format 4, which septa before format 5 reads; the same payload
  // framed as format 3 (its layout is unchanged since) still loads.
  const Model plain = train(data, "switch.txt", FeatureTemplate::parse(kPlain, "t"), options).model;
  EXPECT_EQ(file_version(plain.to_bytes()), 4u);
  const std::size_t at = 8 + 4 + 8;
  const std::string plain_bytes = plain.to_bytes();
  const std::string plain_payload = plain_bytes.substr(at, plain_bytes.size() - at - 8);
  EXPECT_EQ(Model::from_bytes(frame_model_payload(plain_payload, 3), "old.model").to_bytes(),
            plain_bytes);
  std::ostringstream dump;
  model.dump(dump, 5);
  EXPECT_NE(dump.str().find("CONDITIONED TRANSITIONS"), std::string::npos);
  EXPECT_NE(dump.str().find("B01:"), std::string::npos);
}

TEST(ConditionedTraining, SameModelForAnyThreadCount) {
  const auto data = switch_corpus(200, 4);
  TrainOptions options;
  options.max_iterations = 20;
  options.threads = 1;
  const auto tmpl = FeatureTemplate::parse("U00:%x[0,0]\nB\nB01:%x[0,0]\nB02:%x[-1,0]\n", "t");
  const std::string one = train(data, "switch.txt", tmpl, options).model.to_bytes();
  options.threads = 3;
  EXPECT_EQ(train(data, "switch.txt", tmpl, options).model.to_bytes(), one);
}

TEST(ConditionedTraining, DecodingUnderConstraintsNBestAndProbabilities) {
  const auto data = switch_corpus(60, 5);
  TrainOptions options;
  options.max_iterations = 50;
  const Model model =
      train(data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options).model;
  const ColumnSentence& s = data[0];
  const TagResult best = model.tag(s, true);
  // The n-best list starts with the Viterbi labelling and its probability.
  const std::vector<TagResult> top = model.tag_nbest(s, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].labels, best.labels);
  EXPECT_NEAR(top[0].log_probability, best.log_probability, 1e-9);
  EXPECT_NEAR(model.log_probability(s, best.labels), best.log_probability, 1e-9);
  EXPECT_GE(top[1].log_probability, top[2].log_probability);
  // Forcing the first label to the wrong one: kept, and the conditioned transitions carry the
  // change through the rest of the sequence (every later label flips).
  DecodeConstraints forced;
  forced.forced.assign(s.columns.size(), "");
  const std::string wrong = best.labels[0] == "A" ? "B" : "A";
  forced.forced[0] = wrong;
  const TagResult r = model.tag(s, true, forced);
  ASSERT_EQ(r.labels.size(), best.labels.size());
  EXPECT_EQ(r.labels[0], wrong);
  for (std::size_t t = 1; t < r.labels.size(); ++t) EXPECT_NE(r.labels[t], best.labels[t]) << t;
  // Forbidding A -> B everywhere.
  DecodeConstraints no_ab = transition_constraints(model.labels(), false, "forbid A B\n", "rules");
  const TagResult c = model.tag(s, false, no_ab);
  for (std::size_t t = 1; t < c.labels.size(); ++t)
    EXPECT_FALSE(c.labels[t - 1] == "A" && c.labels[t] == "B");
}

TEST(ConditionedTraining, AlgorithmsOfLabelBigramFactorsRefuseWithAClearMessage) {
  const auto data = switch_corpus(10, 6);
  for (const char* algorithm : {"separate", "separate-counts", "piecewise", "memm"}) {
    TrainOptions options;
    options.algorithm = algorithm;
    try {
      train(data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options);
      ADD_FAILURE() << algorithm << " trained";
    } catch (const OptionError& e) {
      EXPECT_NE(std::string(e.what()).find("observation-conditioned"), std::string::npos)
          << e.what();
    }
  }
}

// Forged files: a model whose template has conditioned B lines but whose weights cannot hold
// them (format 3, or an algorithm without them) is refused by the loader.
TEST(ConditionedTraining, LoaderRefusesConditionedTemplatesWithoutTheirWeights) {
  const auto data = switch_corpus(20, 7);
  TrainOptions options;
  options.max_iterations = 10;
  const Model model =
      train(data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options).model;
  const std::string bytes = model.to_bytes();
  const std::size_t header = 8 + 4 + 8;
  const std::string payload = bytes.substr(header, bytes.size() - header - 8);
  try {
    Model::from_bytes(frame_model_payload(payload, 4), "forged.model");
    ADD_FAILURE() << "loaded";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("forged.model"), std::string::npos);
  }
  try {
    Model::from_bytes(frame_model_payload(payload, 6), "future.model");
    ADD_FAILURE() << "loaded";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("version 6 is not supported"), std::string::npos)
        << e.what();
  }
  // A separate-training payload under a conditioned template.
  TrainOptions separate;
  separate.algorithm = "separate";
  const std::string other = train(data, "switch.txt", FeatureTemplate::parse(kPlain, "t"), separate)
                                .model.to_bytes();
  // Replace the template text (the payload's fourth field) by the conditioned one.
  const std::string rest = other.substr(header, other.size() - header - 8);
  ByteReader in(rest.data(), rest.size(), "x");
  ByteWriter forged;
  forged.str(in.str());  // algorithm
  forged.u8(in.u8());    // input format
  forged.u64(in.u64());  // columns
  const std::string old_template = in.str();
  forged.str(kConditioned);
  const std::size_t consumed = 8 + std::string("separate").size() + 1 + 8 + 8 + old_template.size();
  forged.bytes().append(rest.substr(consumed));
  try {
    Model::from_bytes(frame_model_payload(forged.bytes(), 5), "forged2.model");
    ADD_FAILURE() << "loaded";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot use them"), std::string::npos) << e.what();
  }
}

// Every truncation and many byte changes of a format-5 payload (re-framed, so the checksum
// passes and the payload checks are reached) load as a model that tags, or are refused with a
// ModelError; never a crash (the sanitizer build runs this too).
TEST(ConditionedTraining, DamagedFormat5PayloadsAreRefusedOrUsable) {
  const auto data = switch_corpus(4, 8);
  TrainOptions options;
  options.max_iterations = 3;
  const Model model =
      train(data, "switch.txt", FeatureTemplate::parse(kConditioned, "t"), options).model;
  const std::string bytes = model.to_bytes();
  const std::size_t header = 8 + 4 + 8;
  const std::string payload = bytes.substr(header, bytes.size() - header - 8);
  auto exercise = [&](const std::string& damaged) {
    try {
      const Model m = Model::from_bytes(frame_model_payload(damaged, 5), "damaged.model");
      for (const ColumnSentence& s : data) (void)m.tag(s, true);
    } catch (const ModelError&) {
    } catch (const FormatError&) {  // a damaged template text
    }
  };
  for (std::size_t n = 0; n < payload.size(); ++n) exercise(payload.substr(0, n));
  std::mt19937 rng(9);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = payload;
    damaged[rng() % damaged.size()] = static_cast<char>(rng() % 256);
    exercise(damaged);
  }
}

// Format 3 (before separate's stacking flag and conditioned transitions) still loads: a
// separate model without stacking, re-written without the flag byte as format 3, tags alike.
TEST(ConditionedTraining, Format3SeparateModelsStillLoad) {
  const auto data = switch_corpus(20, 10);
  TrainOptions options;
  options.algorithm = "separate";
  options.stacked_pairs = false;
  const Model model =
      train(data, "switch.txt", FeatureTemplate::parse(kPlain, "t"), options).model;
  const std::string bytes = model.to_bytes();
  const std::size_t header = 8 + 4 + 8;
  const std::string payload = bytes.substr(header, bytes.size() - header - 8);
  ByteReader in(payload.data(), payload.size(), "p");
  (void)in.str();      // algorithm
  (void)in.u8();       // input format
  (void)in.u64();      // columns
  (void)in.str();      // template
  (void)in.strings();  // labels
  (void)in.strings();  // attributes
  for (int field = 0; field < 4; ++field) (void)in.u64();  // A, L, floor, beam
  const std::size_t flag_at = payload.size() - in.remaining();
  ASSERT_EQ(payload[flag_at], '\0');  // not stacked
  const std::string old = payload.substr(0, flag_at) + payload.substr(flag_at + 1);
  const Model loaded = Model::from_bytes(frame_model_payload(old, 3), "old.model");
  EXPECT_EQ(loaded.to_bytes(), bytes);
  for (const ColumnSentence& s : data) EXPECT_EQ(loaded.tag(s).labels, model.tag(s).labels);
}

}  // namespace
}  // namespace septa::crf
