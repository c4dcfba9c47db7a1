// The septa nn CLI as separate processes: a pipeline of train-cell / train-head runs (one process
// per step) gives bit-identical weights and the same accuracy as in-process training; help and
// validation come from the registry; exit codes for usage, errors, corrupt files, CUDA, Ctrl-C.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "septa/nn/nn.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* cli = std::getenv("SEPTA_CLI");
    if (!cli) GTEST_SKIP() << "SEPTA_CLI is not set (run through ctest)";
    cli_ = cli;
    out_ = testing::temp_dir("cliout") + "/out.txt";
  }
  // Exit status of `<prefix> septa nn <args>`; its stdout and stderr land in output().
  int run(const std::string& args, const std::string& prefix = "") {
    const int status = std::system((prefix + cli_ + " nn " + args + " > " + out_ + " 2>&1").c_str());
    if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string output() const { return testing::read_file(out_); }
  std::string cli_, out_;
};

TEST_F(CliTest, PerProcessPipelineMatchesInProcessTrainingBitForBit) {
  const std::string data = testing::temp_dir("clidata");
  testing::write_dataset(data, 400, 100);
  const std::string common = " --method uff-ae --widths 24,12 --epochs 2 --head-epochs 2"
                             " --seed 3 --data " + data;
  const std::string one = testing::temp_dir("one");
  const std::string many = testing::temp_dir("many");
  ASSERT_EQ(run("train --save-dir " + one + common), 0) << output();
  ASSERT_EQ(run("train-cell --cell 0 --cells-dir " + many + common), 0) << output();
  ASSERT_EQ(run("train-cell --cell 1 --cells-dir " + many + common), 0) << output();
  ASSERT_EQ(run("train-head --cells-dir " + many + common), 0) << output();
  EXPECT_EQ(run("compare " + one + " " + many), 0) << output();
  EXPECT_EQ(run("eval --cells-dir " + many + " --data " + data), 0) << output();
  EXPECT_NE(output().find("test accuracy"), std::string::npos);
  // The comparison can fail: a different seed for cell 1 gives different weights.
  ASSERT_EQ(run("train-cell --cell 1 --cells-dir " + many + common + " --seed 4"), 0);
  EXPECT_EQ(run("compare " + one + " " + many), 1);
}

TEST_F(CliTest, HelpListsEveryMethodsOptionsFromTheRegistry) {
  ASSERT_EQ(run("--help"), 0);
  const std::string help = output();
  for (const auto& info : methods()) {
    EXPECT_NE(help.find("method " + info.name + ": "), std::string::npos) << info.name;
    for (const auto& option : info.options) {
      EXPECT_NE(help.find("--" + option.name + " X"), std::string::npos) << option.name;
      EXPECT_NE(help.find("(default " + option.default_value + ", " + option.range() + ")"),
                std::string::npos)
          << info.name << " --" << option.name;
    }
  }
  for (const char* flag : {"--device", "--resume", "--threads", "--data"})
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
}

TEST_F(CliTest, ExitCodesAndMessagesNamingTheOption) {
  EXPECT_EQ(run("train --help"), 0);
  EXPECT_EQ(run(""), 2);
  EXPECT_EQ(run("frobnicate"), 2);
  EXPECT_EQ(run("train --no-such-option 1"), 2);
  EXPECT_NE(output().find("--no-such-option is not an option of method uff-ae"), std::string::npos);
  EXPECT_EQ(run("train --method nope"), 2);
  EXPECT_EQ(run("train --epochs x"), 2);
  EXPECT_NE(output().find("--epochs of method uff-ae expects an integer in [1, 100000], got 'x'"),
            std::string::npos)
      << output();
  EXPECT_EQ(run("train --method ff --lr -1"), 2);
  EXPECT_NE(output().find("--lr of method ff"), std::string::npos) << output();
  EXPECT_EQ(run("train --method uff-ae --theta 2"), 2);
  EXPECT_EQ(run("train-cell --method uff-ae --cells-dir /tmp"), 2);  // no --cell
  EXPECT_EQ(run("train-cell --method ff --cell 0 --cells-dir /tmp"), 2);
  const std::string empty = testing::temp_dir("nodata");
  EXPECT_EQ(run("train --method ff --data " + empty), 1);
  EXPECT_EQ(run("eval --cells-dir " + empty), 1);
  EXPECT_EQ(run("train --device tpu"), 2);
}

TEST_F(CliTest, DeviceCudaWithoutCudaFailsNamingCuda) {
  if (resolve_device("auto") == "cuda") GTEST_SKIP() << "this machine has CUDA";
  EXPECT_EQ(run("train --device cuda --data /nonexistent"), 1);
  EXPECT_NE(output().find("CUDA is not available"), std::string::npos) << output();
}

// Issue 15 finding 2: corrupt or foreign cell files end with exit 1 and the file's name, never a
// crash.
TEST_F(CliTest, CorruptOrForeignCellFilesAreErrorsNotCrashes) {
  const std::string data = testing::temp_dir("clidata2");
  testing::write_dataset(data, 60, 20);
  const std::string common = " --widths 6,4 --epochs 1 --head-epochs 1 --data " + data;
  const std::string dir = testing::temp_dir("cells");
  ASSERT_EQ(run("train-cell --method uff-ae --cell 0 --cells-dir " + dir + common), 0) << output();
  // A cell of another method is rejected.
  EXPECT_EQ(run("train-cell --method uff-dae --cell 1 --cells-dir " + dir + common), 1);
  EXPECT_NE(output().find("written by method uff-ae, not uff-dae"), std::string::npos) << output();
  // A one-bit flip anywhere in the file is rejected.
  const std::string path = dir + "/cell_0.safetensors";
  const std::string good = testing::read_file(path);
  for (size_t at : {size_t{3}, good.size() / 3, good.size() - 5}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    testing::write_file(path, bad);
    EXPECT_EQ(run("train-cell --method uff-ae --cell 1 --cells-dir " + dir + common), 1) << at;
    EXPECT_NE(output().find("cell_0.safetensors"), std::string::npos) << output();
  }
  testing::write_file(path, good.substr(0, good.size() / 2));
  EXPECT_EQ(run("train-head --method uff-ae --cells-dir " + dir + common), 1) << output();
  testing::write_file(path, std::string(64, '\xff'));
  EXPECT_EQ(run("train-head --method uff-ae --cells-dir " + dir + common), 1) << output();
}

TEST_F(CliTest, CtrlCStopsWithExit130AndKeepsTheFinishedEpochs) {
  const std::string data = testing::temp_dir("clidata3");
  testing::write_dataset(data, 200, 20);
  const std::string dir = testing::temp_dir("interrupted");
  const std::string state = dir + "/ff.state.safetensors";
  // SIGINT once the first epoch of a run that would take hours is saved (however long the
  // start-up takes on a loaded machine): the epoch in progress finishes, its state is saved,
  // the exit status is 130.
  const std::string command = "(" + cli_ + " nn train --method ff --hidden 8 --epochs 100000" +
                              " --save-dir " + dir + " --data " + data + " > " + out_ +
                              " 2>&1 & pid=$!; i=0; while [ ! -f " + state +
                              " ] && kill -0 $pid 2>/dev/null &&" +
                              " [ $i -lt 6000 ]; do sleep 0.1; i=$((i + 1)); done;" +
                              " kill -INT $pid; wait $pid)";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << output();
  EXPECT_EQ(WEXITSTATUS(status), 130) << output();
  EXPECT_NE(output().find("interrupted"), std::string::npos) << output();
  EXPECT_TRUE(std::ifstream(state).good());
}

}  // namespace
}  // namespace septa::nn
