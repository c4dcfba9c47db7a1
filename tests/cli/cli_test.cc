// The septa command line as scripts use it: exit codes, output layout, error messages.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/run_command.h"
#include "crf/fixtures.h"
#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"

namespace {

using septa::crf::testing::TempDir;

using CliRun = septa::testing::CommandRun;  // stdout and stderr

CliRun septa(const std::string& args) {
  return septa::testing::run_command(std::string(SEPTA_CLI_PATH) + " " + args + " 2>&1");
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    septa::crf::testing::write_text(dir_.file("train.txt"),
                                    septa::crf::testing::toy_chunking_corpus(80, 1));
    septa::crf::testing::write_text(dir_.file("test.txt"),
                                    septa::crf::testing::toy_chunking_corpus(20, 2));
  }
  TempDir dir_;
};

TEST_F(Cli, TrainTagEvalDump) {
  const std::string model = dir_.file("m.model");
  CliRun train = septa("train -m " + model + " --max-iterations 40 --threads 2 " +
                    dir_.file("train.txt"));
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_NE(train.output.find("iter    1"), std::string::npos) << train.output;

  CliRun tag = septa("tag -m " + model + " -o " + dir_.file("out.txt") + " " + dir_.file("test.txt"));
  ASSERT_EQ(tag.code, 0) << tag.output;
  const std::string input = septa::crf::testing::read_text(dir_.file("test.txt"));
  const std::string output = septa::crf::testing::read_text(dir_.file("out.txt"));
  // Every input line comes back with one more column; blank lines are kept.
  std::size_t in_pos = 0, out_pos = 0, lines = 0;
  while (in_pos < input.size()) {
    const std::size_t in_end = input.find('\n', in_pos), out_end = output.find('\n', out_pos);
    const std::string in_line = input.substr(in_pos, in_end - in_pos);
    const std::string out_line = output.substr(out_pos, out_end - out_pos);
    if (in_line.empty()) {
      EXPECT_TRUE(out_line.empty());
    } else {
      ASSERT_EQ(out_line.rfind(in_line + " ", 0), 0u) << out_line;
      EXPECT_EQ(out_line.find(' ', in_line.size() + 1), std::string::npos) << out_line;
    }
    in_pos = in_end + 1;
    out_pos = out_end + 1;
    ++lines;
  }
  EXPECT_GT(lines, 100u);

  CliRun eval = septa("eval " + dir_.file("out.txt"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("processed"), std::string::npos);
  EXPECT_NE(eval.output.find("FB1: 100.00"), std::string::npos) << eval.output;

  CliRun marginals = septa("tag --marginals -m " + model + " " + dir_.file("test.txt"));
  ASSERT_EQ(marginals.code, 0);
  EXPECT_NE(marginals.output.find("# log P(y|x) = "), std::string::npos);
  EXPECT_NE(marginals.output.find("B-NP:"), std::string::npos);

  CliRun dump = septa("dump -m " + model + " --top 5");
  ASSERT_EQ(dump.code, 0) << dump.output;
  EXPECT_NE(dump.output.find("LABELS 5"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("TRANSITIONS"), std::string::npos);
}

// `septa tag` writes each input line, a space and the label that the library's in-memory model
// (before saving and loading) gives it, blank lines between sentences, and the same bytes to
// standard output and to -o; for every algorithm's model (each has its own scorer and file
// layout), and on an output of more than one of the writer's 64 KiB blocks.
TEST(CliTagOutput, IsTheLibrarysTagsOfTheTrainedModelForEveryAlgorithm) {
  TempDir dir;
  const std::string train_text = septa::crf::testing::toy_chunking_corpus(120, 3);
  const std::string test_text = septa::crf::testing::toy_chunking_corpus(1200, 4);
  ASSERT_GT(test_text.size(), std::size_t{1} << 16);
  septa::crf::testing::write_text(dir.file("test.txt"), test_text);
  std::istringstream train_in(train_text), test_in(test_text);
  const auto train_data = septa::crf::read_columns(train_in, "train.txt");
  const auto test_data = septa::crf::read_columns(test_in, "test.txt");
  for (const std::string algorithm :
       {"lbfgs", "separate", "separate-counts", "memm", "piecewise", "ap"}) {
    septa::crf::TrainOptions options;
    options.algorithm = algorithm;
    options.max_iterations = 15;
    const septa::crf::Model model =
        septa::crf::train(train_data, "train.txt", septa::crf::FeatureTemplate::default_chunking(),
                          options)
            .model;
    const std::string path = dir.file(algorithm + ".model");
    model.save(path);
    std::string expected;  // the input lines with the in-memory model's labels
    std::size_t at = 0;
    for (const auto& sentence : test_data) {
      const std::vector<std::string> labels = model.tag(sentence).labels;
      for (const std::string& label : labels) {
        const std::size_t end = test_text.find('\n', at);
        expected += test_text.substr(at, end - at) + " " + label + "\n";
        at = end + 1;
      }
      expected += "\n";
      ++at;  // the blank line
    }
    // The default (the cores), one thread and more threads than this machine has cores.
    for (const std::string threads : {"", "--threads 1 ", "--threads 3 "}) {
      const CliRun tag = septa("tag " + threads + "-m " + path + " " + dir.file("test.txt"));
      ASSERT_EQ(tag.code, 0) << algorithm << ": " << threads << tag.output;
      EXPECT_TRUE(tag.output == expected) << algorithm << ": " << threads << "standard output differs";
    }
    const CliRun to_file =
        septa("tag -m " + path + " -o " + dir.file("out.txt") + " " + dir.file("test.txt"));
    ASSERT_EQ(to_file.code, 0) << algorithm << ": " << to_file.output;
    EXPECT_TRUE(septa::crf::testing::read_text(dir.file("out.txt")) == expected)
        << algorithm << ": -o differs";
  }
}

// Tagged on several threads, sentences keep their input order in every output style, the
// report counts the same, and the first failing sentence in input order stops the run with its
// own message after the sentences before it, as on one thread.
TEST_F(Cli, TagOnThreadsIsTagOnOneThread) {
  const std::string model = dir_.file("m.model");
  ASSERT_EQ(septa("train -q -a separate-counts -m " + model + " " + dir_.file("train.txt")).code, 0);
  for (const std::string style : {"", "-n 2 ", "-v2 ", "--marginals ", "-p -i ", "-t ", "-qt "}) {
    const CliRun one = septa("tag --threads 1 " + style + "-m " + model + " " + dir_.file("test.txt"));
    ASSERT_EQ(one.code, 0) << style << one.output;
    const CliRun three = septa("tag --threads 3 " + style + "-m " + model + " " + dir_.file("test.txt"));
    ASSERT_EQ(three.code, 0) << style << three.output;
    EXPECT_TRUE(one.output == three.output) << style;
  }
  // Sentence 15 of 20 has a column too many: the same error, the same sentences before it.
  std::string text = septa::crf::testing::read_text(dir_.file("test.txt"));
  std::size_t at = 0;
  for (int blank = 0; blank < 14; ++blank) at = text.find("\n\n", at) + 2;
  text.insert(text.find('\n', at), " extra");
  septa::crf::testing::write_text(dir_.file("bad.txt"), text);
  const CliRun one = septa("tag --threads 1 -m " + model + " " + dir_.file("bad.txt"));
  const CliRun three = septa("tag --threads 3 -m " + model + " " + dir_.file("bad.txt"));
  EXPECT_EQ(one.code, 1) << one.output;
  EXPECT_EQ(three.code, 1) << three.output;
  EXPECT_NE(one.output.find("columns"), std::string::npos) << one.output;
  EXPECT_TRUE(one.output == three.output) << one.output << "\n----\n" << three.output;
  const CliRun zero = septa("tag --threads 0 -m " + model + " " + dir_.file("test.txt"));
  EXPECT_EQ(zero.code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--threads"), std::string::npos) << zero.output;
}

TEST_F(Cli, AttributeFormatTrainTagEval) {
  // CRFsuite's format: label, then attributes (one with an escaped colon and a value).
  std::string text;
  const std::string columns = septa::crf::testing::read_text(dir_.file("train.txt"));
  std::istringstream in(columns);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      text += "\n";
      continue;
    }
    std::istringstream fields(line);
    std::string word, pos, label;
    fields >> word >> pos >> label;
    text += label + "\tw=" + word + "\tpos\\:" + pos + ":1.5\n";
  }
  septa::crf::testing::write_text(dir_.file("train.attr"), text);
  const std::string model = dir_.file("a.model");
  CliRun train = septa("train --format attributes -a separate -m " + model + " " +
                       dir_.file("train.attr"));
  ASSERT_EQ(train.code, 0) << train.output;
  CliRun tag = septa("tag -m " + model + " -o " + dir_.file("a.out") + " " + dir_.file("train.attr"));
  ASSERT_EQ(tag.code, 0) << tag.output;
  CliRun eval = septa("eval " + dir_.file("a.out"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("FB1: 100.00"), std::string::npos) << eval.output;
  // On several threads the file is first read as columns while the model loads, then again as
  // attributes: the same output as one thread's.
  const CliRun one = septa("tag --threads 1 -m " + model + " " + dir_.file("train.attr"));
  const CliRun three = septa("tag --threads 3 -m " + model + " " + dir_.file("train.attr"));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_TRUE(one.output == three.output);
  EXPECT_TRUE(one.output == septa::crf::testing::read_text(dir_.file("a.out")));
  CliRun dump = septa("dump -m " + model);
  // "pos\:DT" in the file is the attribute "pos:DT" (escape removed).
  EXPECT_NE(dump.output.find("pos:DT ->"), std::string::npos) << dump.output.substr(0, 2000);
}

TEST_F(Cli, CtrlCStopsTrainingAndSavesTheBestModelSoFar) {
  septa::crf::testing::write_text(dir_.file("big.txt"),
                                  septa::crf::testing::toy_chunking_corpus(3000, 6));
  const std::string model = dir_.file("interrupted.model");
  const std::string log = dir_.file("train.log");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    execl(SEPTA_CLI_PATH, SEPTA_CLI_PATH, "train", "--c2", "0", "--epsilon", "0", "--delta", "0",
          "--max-iterations", "100000", "-m", model.c_str(), dir_.file("big.txt").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the third progress line, then press Ctrl-C.
  for (int i = 0; i < 600; ++i) {
    if (septa::crf::testing::read_text(log).find("iter    3") != std::string::npos) break;
    usleep(50000);
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << septa::crf::testing::read_text(log);
  EXPECT_EQ(WEXITSTATUS(status), 130) << septa::crf::testing::read_text(log);
  EXPECT_NE(septa::crf::testing::read_text(log).find("interrupted"), std::string::npos);
  CliRun tag = septa("tag -m " + model + " " + dir_.file("test.txt"));
  EXPECT_EQ(tag.code, 0) << tag.output;  // a complete, loadable model
}

TEST_F(Cli, ExitCodesAndMessages) {
  EXPECT_EQ(septa("").code, 2);
  EXPECT_EQ(septa("--help").code, 0);
  for (const char* command : {"train", "tag", "eval", "dump"})
    EXPECT_EQ(septa(std::string(command) + " --help").code, 0) << command;
  EXPECT_EQ(septa("frobnicate").code, 2);
  EXPECT_EQ(septa("train " + dir_.file("train.txt")).code, 2);  // no -m
  CliRun bad_option = septa("train -m x --c2 -3 " + dir_.file("train.txt"));
  EXPECT_EQ(bad_option.code, 2);
  EXPECT_NE(bad_option.output.find("--c2"), std::string::npos) << bad_option.output;
  EXPECT_NE(bad_option.output.find("0 to 1e9"), std::string::npos) << bad_option.output;
  CliRun threads = septa("train -m x --threads 0 " + dir_.file("train.txt"));
  EXPECT_EQ(threads.code, 2);
  EXPECT_NE(threads.output.find("--threads"), std::string::npos);
  CliRun missing = septa("train -m x " + dir_.file("nope.txt"));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("nope.txt"), std::string::npos);

  septa::crf::testing::write_text(dir_.file("ragged.txt"), "a DT B-NP\nb NN\n");
  CliRun ragged = septa("train -m x " + dir_.file("ragged.txt"));
  EXPECT_EQ(ragged.code, 1);
  EXPECT_NE(ragged.output.find("ragged.txt:2:"), std::string::npos) << ragged.output;

  septa::crf::testing::write_text(dir_.file("dev.txt"), "a DT\nb NN\n");
  CliRun dev = septa("train -m x --dev " + dir_.file("dev.txt") + " " + dir_.file("train.txt"));
  EXPECT_EQ(dev.code, 1);
  EXPECT_NE(dev.output.find("dev.txt:1:"), std::string::npos) << dev.output;

  septa::crf::testing::write_text(dir_.file("junk.model"), "junk");
  CliRun junk = septa("tag -m " + dir_.file("junk.model") + " " + dir_.file("test.txt"));
  EXPECT_EQ(junk.code, 1);
  EXPECT_NE(junk.output.find("not a septa model"), std::string::npos) << junk.output;
}

}  // namespace
