// Issue 15 at the command line: hostile inputs exit 1 with a message naming their place, within
// a stated memory bound (ulimit -v 1 GiB), and lost writes to standard output are errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "cli/run_command.h"
#include "crf/fixtures.h"
#include "crf/io/binary_io.h"
#include "crf/model/model_file.h"

namespace {

using septa::crf::testing::TempDir;
using septa::crf::testing::write_text;

using SeptaRun = septa::testing::CommandRun;  // stdout and stderr, unless redirected

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SEPTA_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEPTA_SANITIZED 1
#endif

// Runs `septa ARGS` under bash with virtual memory limited to 1 GiB (not in sanitizer builds:
// their shadow memory reserves terabytes of address space).
SeptaRun septa(const std::string& args, const std::string& redirect = "2>&1") {
#ifdef SEPTA_SANITIZED
  const std::string limit;
#else
  const std::string limit = "ulimit -v 1048576; ";
#endif
  return septa::testing::run_command("bash -c '" + limit + "exec " + std::string(SEPTA_CLI_PATH) +
                                     " " + args + "' " + redirect);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(dir_.file("train.txt"), septa::crf::testing::toy_chunking_corpus(30, 1));
    model_ = dir_.file("m.model");
    const SeptaRun train = septa("train -q --max-iterations 10 -m " + model_ + " " + dir_.file("train.txt"));
    ASSERT_EQ(train.code, 0) << train.output;
  }
  TempDir dir_;
  std::string model_;
};

TEST_F(HostileCli, ForgedModelWithValidChecksumExitsOneNotSegfault) {
  septa::crf::ByteWriter out;
  out.str("lbfgs");
  out.u8(1);
  out.u64(0);
  out.str("");
  out.strings({"A"});
  out.strings({"x"});
  out.u64(1);
  out.u64(~uint64_t{0});  // A = 2^64 - 1
  out.u64(1);
  out.vec(std::vector<uint32_t>{});
  out.vec(std::vector<int32_t>{});
  out.vec(std::vector<double>{0.5});
  write_text(dir_.file("forged.model"), septa::crf::frame_model_payload(out.bytes()));
  write_text(dir_.file("a.txt"), "A\tx\n");
  for (const std::string& command : {std::string("dump -m "), std::string("tag -m ")}) {
    const SeptaRun r = septa(command + dir_.file("forged.model") + " " +
                        (command == "tag -m " ? dir_.file("a.txt") : ""));
    EXPECT_EQ(r.code, 1) << command << r.output;
    EXPECT_TRUE(has(r.output, "forged.model: corrupt model")) << r.output;
  }
}

TEST_F(HostileCli, WritesToAFullDeviceExitOne) {
  const std::string train = dir_.file("train.txt");
  write_text(dir_.file("tagged.txt"), "a B-NP B-NP\nb I-NP O\n");
  for (const std::string& args : {"tag -m " + model_ + " " + train, "dump -m " + model_,
                                 "eval " + dir_.file("tagged.txt")}) {
    const SeptaRun r = septa(args, "2>&1 >/dev/full");
    EXPECT_EQ(r.code, 1) << args << ": " << r.output;
    EXPECT_TRUE(has(r.output, "standard output: write failed")) << r.output;
  }
}

TEST_F(HostileCli, EndlessInputsStopAtTheirLimitWithinOneGibibyte) {
  const SeptaRun tag = septa("tag -m " + model_ + " /dev/zero");
  EXPECT_EQ(tag.code, 1) << tag.output;
  EXPECT_TRUE(has(tag.output, "/dev/zero:1: line longer than 16777216 bytes")) << tag.output;
  EXPECT_TRUE(has(tag.output, "--max-line-bytes")) << tag.output;
  const SeptaRun eval = septa("eval --max-line-bytes 1000 /dev/zero");
  EXPECT_EQ(eval.code, 1) << eval.output;
  EXPECT_TRUE(has(eval.output, "/dev/zero:1: line longer than 1000 bytes")) << eval.output;
  const SeptaRun train = septa("train -m " + dir_.file("x.model") + " -t /dev/zero " +
                          dir_.file("train.txt"));
  EXPECT_EQ(train.code, 1) << train.output;
  EXPECT_TRUE(has(train.output, "/dev/zero: larger than 1048576 bytes")) << train.output;
  EXPECT_TRUE(has(train.output, "--max-template-bytes")) << train.output;
  const SeptaRun model = septa("dump -m /dev/zero");
  EXPECT_EQ(model.code, 1) << model.output;
  EXPECT_TRUE(has(model.output, "/dev/zero: not a septa model file")) << model.output;
  const SeptaRun data = septa("train -m " + dir_.file("x.model") + " /dev/zero");
  EXPECT_EQ(data.code, 1) << data.output;
  // Training data go through the shard reader, which sizes the file first: /dev/zero is empty.
  EXPECT_TRUE(has(data.output, "/dev/zero: ")) << data.output;
}

TEST_F(HostileCli, HundredThousandLabelsAreRefusedNamingTheOption) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "w P L" + std::to_string(i) + "\n\n";
  write_text(dir_.file("labels.txt"), text);
  const SeptaRun r = septa("train -q -m " + dir_.file("x.model") + " " + dir_.file("labels.txt"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(has(r.output, "labels.txt: 100000 distinct labels, more than the limit of 5000"))
      << r.output;
  EXPECT_TRUE(has(r.output, "--max-labels")) << r.output;
}

TEST_F(HostileCli, SmallerFindingsNameTheirFile) {
  write_text(dir_.file("empty.txt"), "");
  const SeptaRun empty = septa("train -m " + dir_.file("x.model") + " " + dir_.file("empty.txt"));
  EXPECT_EQ(empty.code, 1) << empty.output;
  EXPECT_TRUE(has(empty.output, "empty.txt: ")) << empty.output;
  write_text(dir_.file("mac.txt"), "a DT B-NP\rdog NN I-NP\r");
  const SeptaRun mac = septa("train -m " + dir_.file("x.model") + " " + dir_.file("mac.txt"));
  EXPECT_EQ(mac.code, 1) << mac.output;
  EXPECT_TRUE(has(mac.output, "mac.txt:1: carriage return inside a line")) << mac.output;
  write_text(dir_.file("big.txt"), "A\tx:1e39\n");
  const SeptaRun big = septa("train --format attributes -m " + dir_.file("x.model") + " " +
                        dir_.file("big.txt"));
  EXPECT_EQ(big.code, 1) << big.output;
  EXPECT_TRUE(has(big.output, "big.txt:1: attribute value '1e39'")) << big.output;
}

}  // namespace
