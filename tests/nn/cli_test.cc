// The septa nn CLI as separate processes: a pipeline of train-cell / train-head runs (one process
// per step) gives bit-identical weights and the same accuracy as in-process training; exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <zlib.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

namespace septa::nn {
namespace {

void write_gzip(const std::string& path, const std::vector<unsigned char>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

std::vector<unsigned char> header(const std::vector<uint32_t>& dims) {
  std::vector<unsigned char> bytes = {0, 0, 8, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((d >> shift) & 0xff);
  return bytes;
}

// A tiny Fashion-MNIST-shaped directory: class c brightens rows 2c..2c+2.
void write_dataset(const std::string& dir, uint32_t n_train, uint32_t n_test) {
  unsigned seed = 5;
  for (const auto& [split, n] : {std::pair<std::string, uint32_t>{"train", n_train}, {"t10k", n_test}}) {
    std::vector<unsigned char> images = header({n, 28, 28});
    std::vector<unsigned char> labels = header({n});
    for (uint32_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(rand_r(&seed) % 10);
      labels.push_back(static_cast<unsigned char>(c));
      for (int p = 0; p < 784; ++p) {
        const int row = p / 28;
        const bool bright = row >= 2 * c + 4 && row < 2 * c + 7;
        images.push_back(static_cast<unsigned char>(rand_r(&seed) % 80 + (bright ? 150 : 0)));
      }
    }
    write_gzip(dir + "/" + split + "-images-idx3-ubyte.gz", images);
    write_gzip(dir + "/" + split + "-labels-idx1-ubyte.gz", labels);
  }
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* cli = std::getenv("SEPTA_CLI");
    if (!cli) GTEST_SKIP() << "SEPTA_CLI is not set (run through ctest)";
    cli_ = cli;
  }
  // Exit status of `septa nn <args>`, output discarded.
  int run(const std::string& args) {
    const int status = std::system((cli_ + " nn " + args + " > /dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string cli_;
};

TEST_F(CliTest, PerProcessPipelineMatchesInProcessTrainingBitForBit) {
  const std::string data = testing::temp_dir("clidata");
  write_dataset(data, 400, 100);
  const std::string common = " --method uff-ae --widths 24,12 --epochs 2 --head-epochs 2"
                             " --seed 3 --data " + data;
  const std::string one = testing::temp_dir("one");
  const std::string many = testing::temp_dir("many");
  ASSERT_EQ(run("train --save-dir " + one + common), 0);
  ASSERT_EQ(run("train-cell --cell 0 --cells-dir " + many + common), 0);
  ASSERT_EQ(run("train-cell --cell 1 --cells-dir " + many + common), 0);
  ASSERT_EQ(run("train-head --cells-dir " + many + common), 0);
  EXPECT_EQ(run("compare " + one + " " + many), 0);
  EXPECT_EQ(run("eval --cells-dir " + many + " --data " + data), 0);
  // The comparison can fail: a different seed for cell 1 gives different weights.
  ASSERT_EQ(run("train-cell --cell 1 --cells-dir " + many + common + " --seed 4"), 0);
  EXPECT_EQ(run("compare " + one + " " + many), 1);
}

TEST_F(CliTest, ExitCodes) {
  EXPECT_EQ(run("--help"), 0);
  EXPECT_EQ(run("train --help"), 0);
  EXPECT_EQ(run(""), 2);
  EXPECT_EQ(run("frobnicate"), 2);
  EXPECT_EQ(run("train --no-such-option 1"), 2);
  EXPECT_EQ(run("train --method nope"), 2);
  EXPECT_EQ(run("train --epochs x"), 2);
  EXPECT_EQ(run("train-cell --method uff-ae --cells-dir /tmp"), 2);  // no --cell
  const std::string empty = testing::temp_dir("nodata");
  EXPECT_EQ(run("train --method ff --data " + empty), 1);
  EXPECT_EQ(run("eval --cells-dir " + empty), 1);
}

}  // namespace
}  // namespace septa::nn
