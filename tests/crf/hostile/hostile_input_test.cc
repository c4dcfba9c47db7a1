// Regression tests of issue 15: forged and corrupt models, endless and extreme inputs, limits,
// stale temporary files. Each failed (crashed, hung or was accepted) before its fix.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <streambuf>

#include "crf/fixtures.h"
#include "crf/forged_model.h"
#include "crf/io/binary_io.h"
#include "crf/model/model_file.h"
#include "septa/crf/corpus.h"
#include "septa/crf/evaluation.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"
#include "util/atomic_file.h"
#include "util/atomic_stream.h"

namespace septa::crf {
namespace {

using testing::TempDir;
constexpr uint64_t kHuge = std::numeric_limits<uint64_t>::max();

// The payload fields before the scorer of a one-label, one-attribute attribute-format model.
ByteWriter attribute_model_head(const std::string& algorithm) {
  ByteWriter out;
  out.str(algorithm);
  out.u8(1);        // attribute format
  out.u64(0);       // columns
  out.str("");      // template
  out.strings({"A"});
  out.strings({"x"});
  return out;
}

// A linear-chain payload: L = 1, A features index, weights.
std::string linear_chain_model(uint64_t A, const std::vector<uint32_t>& offsets,
                               const std::vector<double>& weights) {
  ByteWriter out = attribute_model_head("lbfgs");
  out.u64(1);  // L
  out.u64(A);
  out.u64(1);  // K
  out.vec(offsets);
  out.vec(std::vector<int32_t>(offsets.empty() ? 0 : offsets.back(), 0));
  out.vec(weights);
  return frame_model_payload(out.bytes());
}

TEST(ForgedModel, ValidForgedModelLoads) {
  // The forging helper itself is right: the honest version of each forged file loads.
  const Model model = Model::from_bytes(linear_chain_model(1, {0, 1}, {0.5, 0.25}), "ok.model");
  EXPECT_EQ(model.labels(), std::vector<std::string>{"A"});
}

TEST(ForgedModel, AttributeCountOfTwoToThe64IsRejectedNotACrash) {
  // A + 1 wrapped to 0, an empty offsets vector passed the size check and front() read it.
  EXPECT_THROW(Model::from_bytes(linear_chain_model(kHuge, {}, {0.5}), "forged.model"),
               ModelError);
  ByteWriter memm = attribute_model_head("memm");
  memm.u64(kHuge);  // A
  memm.u64(1);      // L
  memm.f64(1e-6);
  EXPECT_THROW(Model::from_bytes(frame_model_payload(memm.bytes()), "forged.model"), ModelError);
  ByteWriter memm_features = attribute_model_head("memm");
  memm_features.u64(1);
  memm_features.u64(1);
  memm_features.f64(1e-6);
  memm_features.u64(kHuge);  // the feature index's A
  memm_features.u64(1);
  memm_features.vec(std::vector<uint32_t>{});
  memm_features.vec(std::vector<int32_t>{});
  EXPECT_THROW(Model::from_bytes(frame_model_payload(memm_features.bytes()), "forged.model"),
               ModelError);
}

TEST(ForgedModel, AnAttributeNamedTwiceIsRejected) {
  // Two ids for one name would leave one of them unreachable: the file was not written by septa.
  try {
    Model::from_bytes(testing::model_with_an_attribute_named_twice({0.5, 0.25, 0.125, 0.0}),
                      "twice.model");
    ADD_FAILURE() << "accepted a repeated attribute";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("twice.model: corrupt model: an attribute name occurs twice"),
              std::string::npos)
        << e.what();
  }
}

TEST(ForgedModel, NonFiniteWeightsAreRejected) {
  for (double bad : {std::nan(""), double{INFINITY}, -double{INFINITY}}) {
    try {
      Model::from_bytes(linear_chain_model(1, {0, 1}, {bad, 0.25}), "nan.model");
      ADD_FAILURE() << "accepted weight " << bad;
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("nan.model: corrupt model: non-finite weight"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ForgedModel, ColumnCountThatDoesNotFitTheTemplateIsRejected) {
  for (uint64_t columns : {uint64_t{0}, uint64_t{1}, kHuge}) {
    ByteWriter out;
    out.str("lbfgs");
    out.u8(0);
    out.u64(columns);
    out.str("U00:%x[0,0]\n");
    out.strings({"A"});
    out.strings({"U00:x"});
    out.u64(1);
    out.u64(1);
    out.u64(1);
    out.vec(std::vector<uint32_t>{0, 1});
    out.vec(std::vector<int32_t>{0});
    out.vec(std::vector<double>{0.5, 0.25});
    EXPECT_THROW(Model::from_bytes(frame_model_payload(out.bytes()), "c.model"), ModelError)
        << columns;
  }
}

// An endless stream of one byte, like /dev/zero.
class EndlessBuffer : public std::streambuf {
 public:
  explicit EndlessBuffer(char c) : block_(1 << 16, c) {}

 protected:
  int_type underflow() override {
    setg(block_.data(), block_.data(), block_.data() + block_.size());
    return traits_type::to_int_type(block_[0]);
  }

 private:
  std::vector<char> block_;
};

TEST(Limits, EndlessLineIsRefusedWithFileLimitAndOption) {
  for (char c : {'\0', 'x'}) {
    EndlessBuffer endless(c);
    std::istream in(&endless);
    try {
      read_columns(in, "/dev/zero", 1, 1, 1 << 20);
      ADD_FAILURE() << "read an endless line";
    } catch (const FormatError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("/dev/zero:1: line longer than 1048576 bytes"), std::string::npos)
          << message;
      EXPECT_NE(message.find("--max-line-bytes"), std::string::npos) << message;
    }
  }
  EndlessBuffer endless('\0');
  std::istream attributes(&endless);
  EXPECT_THROW(read_attributes(attributes, "z", 1 << 16), FormatError);
  std::istream eval(&endless);
  EXPECT_THROW(evaluate_stream(eval, "z", TagScheme::kIob, 1 << 16), FormatError);
}

TEST(Limits, LineAtTheLimitPassesOneByteMoreFails) {
  const std::string line(100, 'a');
  std::istringstream ok("w " + line.substr(2) + "\n");
  EXPECT_EQ(read_columns(ok, "t.txt", 1, 1, 100).size(), 1u);
  std::istringstream crlf("w " + line.substr(2) + "\r\n");
  EXPECT_EQ(read_columns(crlf, "t.txt", 1, 1, 100).size(), 1u);
  std::istringstream too_long("a B\nw " + line.substr(1) + "\n");
  EXPECT_THROW(read_columns(too_long, "t.txt", 1, 1, 100), FormatError);
}

TEST(Limits, TemplateAndModelSizeLimitsNameTheOption) {
  TempDir dir;
  testing::write_text(dir.file("t.template"), "U00:%x[0,0]\nU01:%x[-1,0]\nB\n");
  EXPECT_EQ(FeatureTemplate::parse_file(dir.file("t.template")).unigram_count(), 2u);
  try {
    FeatureTemplate::parse_file(dir.file("t.template"), 10);
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("t.template: larger than 10 bytes"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--max-template-bytes"), std::string::npos);
  }
  testing::write_text(dir.file("m.model"), linear_chain_model(1, {0, 1}, {0.5, 0.25}));
  EXPECT_NO_THROW(Model::load(dir.file("m.model")));
  try {
    Model::load(dir.file("m.model"), 64);
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("--max-model-bytes"), std::string::npos);
  }
}

TEST(Limits, TooManyLabelsAreRefusedBeforeTraining) {
  std::ostringstream text;
  for (int i = 0; i < 300; ++i) text << "w" << i % 7 << " P L" << i << "\n\n";
  std::istringstream in(text.str());
  const auto data = read_columns(in, "labels.txt");
  TrainOptions options;
  options.max_labels = 200;
  try {
    train(data, "labels.txt", FeatureTemplate::default_chunking(), options);
    ADD_FAILURE();
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("labels.txt: 300 distinct labels, more than the limit of 200"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("--max-labels"), std::string::npos);
  }
}

TEST(HostileData, HugeAttributeValueIsRefusedWithItsPlace) {
  std::istringstream in("A\tx:1e39\n");
  try {
    read_attributes(in, "a.txt");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("a.txt:1: attribute value '1e39'"), std::string::npos)
        << e.what();
  }
  // Sequences built in memory (the Python path) are checked when encoded.
  AttributeSequence sequence;
  sequence.labels = {"A", "B"};
  sequence.attributes = {{{"x", 1.0}}, {{"y", -1e39}}};
  try {
    train({sequence, sequence}, TrainOptions());
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 0, item 1: attribute 'y'"), std::string::npos)
        << e.what();
  }
}

TEST(HostileData, ExtremeFiniteValuesNeverGiveANonFiniteModel) {
  AttributeSequence a, b;
  a.labels = {"A", "B", "A"};
  a.attributes = {{{"x", 3e38}}, {{"y", -3e38}}, {{"x", 3e38}, {"y", 3e38}}};
  b.labels = {"B", "A"};
  b.attributes = {{{"y", 3e38}}, {{"x", -3e38}}};
  for (const char* algorithm : {"lbfgs", "separate", "separate-counts", "piecewise", "memm"}) {
    TrainOptions options;
    set_train_option(options, "algorithm", algorithm);
    options.max_iterations = 20;
    try {
      const TrainResult result = train({a, b, a}, options, {}, nullptr, "big.txt");
      // Whatever was trained must be a loadable (finite) model.
      EXPECT_NO_THROW(Model::from_bytes(result.model.to_bytes(), "big.model")) << algorithm;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("big.txt: "), std::string::npos) << e.what();
    } catch (const Error& e) {
      ADD_FAILURE() << algorithm << ": an error without a place: " << e.what();
    }
  }
}

TEST(HostileData, CarriageReturnOnlyLineEndsAreAnError) {
  std::istringstream columns("a X B-NP\rb Y I-NP\rc Z O\r");
  EXPECT_THROW(read_columns(columns, "mac.txt"), FormatError);
  std::istringstream attributes("A\tx\rB\ty\r");
  EXPECT_THROW(read_attributes(attributes, "mac.txt"), FormatError);
}

TEST(HostileData, EmptyTrainingFileNamesTheFile) {
  try {
    train(std::vector<ColumnSentence>{}, "empty.txt", FeatureTemplate::default_chunking(),
          TrainOptions());
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("empty.txt"), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, StaleTemporaryOfAKilledWriterIsRemovedOnTheNextSave) {
  TempDir dir;
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // a pid that no longer runs
  const std::string target = dir.file("m.model");
  const std::string stale = target + ".tmp." + std::to_string(child);
  const std::string live = target + ".tmp." + std::to_string(::getppid());  // a running writer
  const std::string other = dir.file("other.model.tmp." + std::to_string(child));
  for (const std::string& path : {stale, live, other}) testing::write_text(path, "partial");
  write_file_atomically(target, "complete");
  EXPECT_EQ(testing::read_text(target), "complete");
  EXPECT_NE(::access(stale.c_str(), F_OK), 0) << "stale temporary left behind";
  EXPECT_EQ(::access(live.c_str(), F_OK), 0) << "removed a running writer's temporary";
  EXPECT_EQ(::access(other.c_str(), F_OK), 0) << "removed another target's temporary";
}

// A patched write: the file holds the streamed bytes with the patch over them (also across
// the sink's pieces and beyond the 4 MB at which writeback starts); a patch past the bytes
// written fails the write, and the file at the path stays as it was, no temporary left.
TEST(AtomicFile, PatchedWriteOverwritesOnlyThePatchedBytes) {
  TempDir dir;
  const std::string target = dir.file("p.bin");
  std::string expected(std::size_t{9} << 20, '\0');
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<char>('a' + i % 23);
  write_file_atomically_patched(target, [&](const ByteSink& out, const BytePatch& patch) {
    for (std::size_t at = 0; at < expected.size(); at += 1000003)
      out(expected.data() + at, std::min<std::size_t>(1000003, expected.size() - at));
    patch(2, "XYZ", 3);
    patch(1000001, "12345", 5);  // over two pieces
  });
  expected.replace(2, 3, "XYZ");
  expected.replace(1000001, 5, "12345");
  EXPECT_TRUE(testing::read_text(target) == expected);
  EXPECT_THROW(write_file_atomically_patched(target,
                                             [&](const ByteSink& out, const BytePatch& patch) {
                                               out("abc", 3);
                                               patch(2, "xy", 2);
                                             }),
               InternalError);
  EXPECT_TRUE(testing::read_text(target) == expected);
  EXPECT_NE(::access((target + ".tmp." + std::to_string(::getpid())).c_str(), F_OK), 0);
}

}  // namespace
}  // namespace septa::crf
