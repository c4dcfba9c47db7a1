// The command line where CRF++ and CRFsuite users go beyond the happy path (issue 16, finding 4):
// bad templates, foreign input, document markers, stdin, unwritable models, options that do not
// apply, boolean flags, long option values, --version.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/run_command.h"
#include "crf/fixtures.h"
#include "septa/crf/options.h"
#include "septa/error.h"

namespace {

using septa::crf::testing::read_text;
using septa::crf::testing::TempDir;
using septa::crf::testing::write_text;

using CliRun = septa::testing::CommandRun;  // stdout and stderr

CliRun septa_cli(const std::string& args) {
  return septa::testing::run_command(std::string(SEPTA_CLI_PATH) + " " + args + " 2>&1");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t count_lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class CliDropIn : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(train_, septa::crf::testing::toy_chunking_corpus(40, 1));
    write_text(test_, septa::crf::testing::toy_chunking_corpus(10, 2));
  }
  // A quickly trained column-format model.
  std::string column_model() {
    const std::string model = dir_.file("m.model");
    const CliRun run = septa_cli("train -q --max-iterations 10 -m " + model + " " + train_);
    EXPECT_EQ(run.code, 0) << run.output;
    return model;
  }
  TempDir dir_;
  std::string train_ = dir_.file("train.txt"), test_ = dir_.file("test.txt");
};

TEST_F(CliDropIn, ATemplateThatIsADirectoryOrHasNoFeatureLinesIsRejected) {
  const CliRun directory = septa_cli("train -m " + dir_.file("m") + " -t " + dir_.path() + " " + train_);
  EXPECT_EQ(directory.code, 1) << directory.output;
  EXPECT_TRUE(contains(directory.output, "directory")) << directory.output;
  write_text(dir_.file("empty.template"), "# nothing but a comment\n\n");
  const CliRun empty =
      septa_cli("train -m " + dir_.file("m") + " -t " + dir_.file("empty.template") + " " + train_);
  EXPECT_EQ(empty.code, 1) << empty.output;
  EXPECT_TRUE(contains(empty.output, "empty.template: the template has no feature lines"))
      << empty.output;
}

TEST_F(CliDropIn, AnAttributeModelRefusesAColumnFile) {
  std::string attributes;
  for (int i = 0; i < 20; ++i) attributes += "B-NP\tw=the\nI-NP\tw=dog\nO\tw=runs\n\n";
  write_text(dir_.file("train.attr"), attributes);
  const std::string model = dir_.file("a.model");
  const CliRun train = septa_cli("train -q --format attributes --max-iterations 5 -m " + model +
                                 " " + dir_.file("train.attr"));
  ASSERT_EQ(train.code, 0) << train.output;
  const CliRun tag = septa_cli("tag -m " + model + " " + test_);
  EXPECT_EQ(tag.code, 1) << tag.output;
  EXPECT_TRUE(contains(tag.output, "looks like column format")) << tag.output;
}

TEST_F(CliDropIn, TagKeepsDocstartLinesAlignedAndReadsStdin) {
  const std::string model = column_model();
  const std::string body = read_text(test_);
  write_text(dir_.file("doc.txt"), "-DOCSTART- -X- O\n\n" + body + "-DOCSTART- -X- O\n\n" + body);
  const CliRun tag = septa_cli("tag -m " + model + " " + dir_.file("doc.txt"));
  ASSERT_EQ(tag.code, 0) << tag.output;
  EXPECT_EQ(count_lines(tag.output), count_lines(read_text(dir_.file("doc.txt"))));
  EXPECT_EQ(tag.output.rfind("-DOCSTART- -X- O O\n\n", 0), 0u) << tag.output.substr(0, 80);
  const CliRun piped = septa_cli("tag -m " + model + " - < " + dir_.file("doc.txt"));
  ASSERT_EQ(piped.code, 0) << piped.output;
  EXPECT_EQ(piped.output, tag.output);
}

TEST_F(CliDropIn, EvalOfADirectoryIsAnError) {
  const CliRun eval = septa_cli("eval " + dir_.path());
  EXPECT_EQ(eval.code, 1) << eval.output;
  EXPECT_TRUE(contains(eval.output, "is a directory")) << eval.output;
}

TEST_F(CliDropIn, AnUnwritableModelPathFailsBeforeTraining) {
  const CliRun missing_dir =
      septa_cli("train -m " + dir_.file("no/such/dir/m.model") + " " + train_);
  EXPECT_EQ(missing_dir.code, 1) << missing_dir.output;
  EXPECT_TRUE(contains(missing_dir.output, "cannot create")) << missing_dir.output;
  EXPECT_FALSE(contains(missing_dir.output, "iter")) << missing_dir.output;
  const CliRun directory = septa_cli("train -m " + dir_.path() + " " + train_);
  EXPECT_EQ(directory.code, 1) << directory.output;
  EXPECT_FALSE(contains(directory.output, "iter")) << directory.output;
}

TEST_F(CliDropIn, OptionsTheAlgorithmIgnoresAreNamedInAWarning) {
  const CliRun run =
      septa_cli("train -q -a separate --max-iterations 5 -m " + dir_.file("m") + " " + train_);
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_TRUE(contains(run.output,
                       "warning: option --max-iterations has no effect with --algorithm separate"))
      << run.output;
  const CliRun counts =
      septa_cli("train -q -a separate-counts --c2 0.5 -m " + dir_.file("m") + " " + train_);
  EXPECT_TRUE(contains(counts.output, "warning: option --c2 has no effect")) << counts.output;
  // With the local optimiser that uses it, the same option draws no warning.
  const CliRun local = septa_cli("train -q -a memm --local-optimizer lbfgs --max-iterations 5 -m " +
                                 dir_.file("m") + " " + train_);
  EXPECT_EQ(local.code, 0) << local.output;
  EXPECT_FALSE(contains(local.output, "warning")) << local.output;
}

TEST_F(CliDropIn, BooleanFlagsDoNotSwallowTheNextArgument) {
  const CliRun bare = septa_cli("train -q --max-iterations 5 -m " + dir_.file("m") +
                                " --all-possible-transitions " + train_);
  EXPECT_EQ(bare.code, 0) << bare.output;
  const CliRun valued = septa_cli("train -q --max-iterations 5 -m " + dir_.file("m") +
                                  " --all-possible-states=false " + train_);
  EXPECT_EQ(valued.code, 0) << valued.output;
  const CliRun bad = septa_cli("train -q -m " + dir_.file("m") + " --all-possible-states=maybe " + train_);
  EXPECT_EQ(bad.code, 2) << bad.output;
}

TEST_F(CliDropIn, OptionValuesKeepMoreThanSixDigits) {
  const CliRun run = septa_cli("train -q --max-iterations 1000000 --epsilon 0.5 --c2 0.123456789 -m " +
                               dir_.file("m") + " " + train_);
  EXPECT_EQ(run.code, 0) << run.output;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(CliDropIn, ProbabilityMarginalsAndCrfppVerboseOutputsAgree) {
  const std::string model = column_model();
  const auto all = split_lines(septa_cli("tag --marginals -m " + model + " " + test_).output);
  const auto p = split_lines(septa_cli("tag -p -i -m " + model + " " + test_).output);
  const auto v2 = split_lines(septa_cli("tag -v2 -m " + model + " " + test_).output);
  const auto v1 = split_lines(septa_cli("tag -v1 -m " + model + " " + test_).output);
  ASSERT_EQ(all.size(), p.size());
  ASSERT_EQ(all.size(), v2.size());
  ASSERT_EQ(all.size(), v1.size());
  // -v1 is -v2 without the per-label fields: the same '# P' lines, 'LINE LABEL/P' per token.
  for (std::size_t i = 0; i < v1.size(); ++i) {
    if (v1[i].empty() || v1[i][0] == '#') {
      EXPECT_EQ(v1[i], v2[i]);
    } else {
      EXPECT_EQ(v2[i].rfind(v1[i] + " ", 0), 0u) << v1[i] << " | " << v2[i];
      EXPECT_EQ(std::count(v1[i].begin(), v1[i].end(), '/'), 1) << v1[i];
    }
  }
  std::size_t checked = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i].rfind("# log P(y|x) = ", 0) == 0) {
      // -p prints exp(log P(y|x)) of the same labelling; -v2 prints it as "# P".
      const double log_p = std::stod(all[i].substr(15));
      ASSERT_EQ(p[i].rfind("@probability\t", 0), 0u) << p[i];
      EXPECT_NEAR(std::stod(p[i].substr(13)), std::exp(log_p), 1e-6);
      EXPECT_NEAR(std::stod(v2[i].substr(2)), std::exp(log_p), 1e-6);
      continue;
    }
    if (all[i].empty()) continue;
    // --marginals: "LINE LABEL\tl1:p1 l2:p2 ..."; -i: "LINE LABEL\tP(LABEL)".
    const std::size_t tab = all[i].find('\t');
    const std::string head = all[i].substr(0, tab);
    const std::string label = head.substr(head.rfind(' ') + 1);
    ASSERT_EQ(p[i].substr(0, tab), head);
    const double predicted = std::stod(p[i].substr(tab + 1));
    const std::size_t at = all[i].find(" " + label + ":", tab) != std::string::npos
                               ? all[i].find(" " + label + ":", tab) + 1
                               : all[i].find(label + ":", tab);
    EXPECT_NEAR(std::stod(all[i].substr(at + label.size() + 1)), predicted, 1e-6) << all[i];
    // -v2: "LINE LABEL LABEL/P l1/p1 ... lL/pL", the per-label marginals summing to 1.
    std::istringstream fields(v2[i].substr(head.size()));
    std::string field;
    double sum = 0.0;
    fields >> field;
    EXPECT_NEAR(std::stod(field.substr(field.rfind('/') + 1)), predicted, 1e-6);
    while (fields >> field) sum += std::stod(field.substr(field.rfind('/') + 1));
    EXPECT_NEAR(sum, 1.0, 1e-5);
    ++checked;
  }
  EXPECT_GT(checked, 20u);
}

TEST_F(CliDropIn, EvaluateWhileTaggingMatchesTagThenEval) {
  const std::string model = column_model();
  const CliRun direct = septa_cli("tag -qt -m " + model + " " + test_);
  ASSERT_EQ(direct.code, 0) << direct.output;
  const CliRun piped = septa_cli("tag -m " + model + " " + test_ + " | " +
                                 std::string(SEPTA_CLI_PATH) + " eval -");
  EXPECT_EQ(direct.output, piped.output);
  EXPECT_TRUE(contains(direct.output, "FB1")) << direct.output;
  // CRFsuite's other spellings: -q -t and -tq are -qt; -t writes the tagged output and then the
  // report; -q alone writes nothing; -r changes nothing (the reference is always there).
  EXPECT_EQ(septa_cli("tag -q -t -m " + model + " " + test_).output, direct.output);
  EXPECT_EQ(septa_cli("tag -tq -m " + model + " " + test_).output, direct.output);
  const CliRun plain = septa_cli("tag -m " + model + " " + test_);
  EXPECT_EQ(septa_cli("tag -t -m " + model + " " + test_).output, plain.output + direct.output);
  EXPECT_EQ(septa_cli("tag -r -m " + model + " " + test_).output, plain.output);
  const CliRun quiet = septa_cli("tag -q -m " + model + " " + test_);
  EXPECT_EQ(quiet.code, 0);
  EXPECT_EQ(quiet.output, "");
}

TEST_F(CliDropIn, ForcedDecodingKeepsGivenLabelsAndConstraintsHold) {
  const std::string model = column_model();
  // Every token labelled B-VP except the first of each sentence, which is left to predict.
  std::istringstream in(read_text(test_));
  std::string forced_input, line;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) {
      forced_input += "\n";
      first = true;
      continue;
    }
    const std::string head = line.substr(0, line.rfind(' '));
    forced_input += head + (first ? " _" : " B-VP") + "\n";
    first = false;
  }
  write_text(dir_.file("forced.txt"), forced_input);
  const CliRun forced = septa_cli("tag --force -m " + model + " " + dir_.file("forced.txt"));
  ASSERT_EQ(forced.code, 0) << forced.output;
  for (const std::string& out : split_lines(forced.output)) {
    if (out.empty()) continue;
    const std::string given = out.substr(0, out.rfind(' '));
    if (given.substr(given.rfind(' ') + 1) == "B-VP") {
      EXPECT_EQ(out.substr(out.rfind(' ') + 1), "B-VP") << out;
    }
  }
  // A forced label the model lacks names the file and line of its item (the second sentence's).
  std::string unknown_input = forced_input;
  unknown_input.replace(unknown_input.find("B-VP", unknown_input.find("\n\n")), 4, "B-NOPE");
  const std::size_t line_no =
      std::count(unknown_input.begin(), unknown_input.begin() + unknown_input.find("B-NOPE"),
                 '\n') + 1;
  write_text(dir_.file("unknown.txt"), unknown_input);
  const CliRun unknown = septa_cli("tag --force -m " + model + " " + dir_.file("unknown.txt"));
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(contains(unknown.output, "unknown.txt:" + std::to_string(line_no) +
                                           ": forced label 'B-NOPE'")) << unknown.output;
  write_text(dir_.file("rules.txt"), "forbid B-NP I-NP\n");
  const CliRun constrained = septa_cli("tag --constraints " + dir_.file("rules.txt") + " -m " +
                                       model + " " + test_);
  ASSERT_EQ(constrained.code, 0) << constrained.output;
  std::string previous;
  for (const std::string& out : split_lines(constrained.output)) {
    const std::string label = out.empty() ? "" : out.substr(out.rfind(' ') + 1);
    EXPECT_FALSE(previous == "B-NP" && label == "I-NP") << out;
    previous = label;
  }
  write_text(dir_.file("bad.txt"), "forbid B-NP I-NOPE\n");
  const CliRun bad = septa_cli("tag --constraints " + dir_.file("bad.txt") + " -m " + model +
                               " " + test_);
  EXPECT_EQ(bad.code, 1);
  EXPECT_TRUE(contains(bad.output, "bad.txt:1: label 'I-NOPE'")) << bad.output;
}

// IOB2 cannot encode I-X at a sentence start or after anything but B-X / I-X.
std::size_t iob_violations(const std::string& tagged) {
  std::size_t violations = 0;
  std::string previous = "O";
  for (const std::string& out : split_lines(tagged)) {
    if (out.empty()) {
      previous = "O";
      continue;
    }
    const std::string label = out.substr(out.rfind(' ') + 1);
    if (label.rfind("I-", 0) == 0 && previous != "B-" + label.substr(2) && previous != label)
      ++violations;
    previous = label;
  }
  return violations;
}

TEST_F(CliDropIn, IobConstraintsForbidWhatIob2CannotEncode) {
  // Without transition features (no B line) each token takes its word's label: "smith" alone,
  // after O and after B-LOC is I-PER, and "york" after that I-PER is I-LOC (4 violations);
  // --iob-constraints must leave none.
  write_text(dir_.file("ner.txt"),
             "john B-PER\nsmith I-PER\nsaw O\nnew B-LOC\nyork I-LOC\n\n"
             "the O\nman O\nsaw O\njohn B-PER\nsmith I-PER\n\n");
  write_text(dir_.file("words.template"), "U00:%x[0,0]\n");
  const std::string model = dir_.file("ner.model");
  ASSERT_EQ(septa_cli("train -q -t " + dir_.file("words.template") + " -m " + model + " " +
                      dir_.file("ner.txt")).code, 0);
  write_text(dir_.file("in.txt"), "smith\n\nthe\nsmith\n\nnew\nsmith\nyork\n\njohn\nsmith\n");
  const CliRun plain = septa_cli("tag -m " + model + " " + dir_.file("in.txt"));
  const CliRun iob = septa_cli("tag --iob-constraints -m " + model + " " + dir_.file("in.txt"));
  ASSERT_EQ(plain.code, 0) << plain.output;
  ASSERT_EQ(iob.code, 0) << iob.output;
  EXPECT_EQ(iob_violations(plain.output), 4u) << plain.output;
  EXPECT_EQ(iob_violations(iob.output), 0u) << iob.output;
  // The valid "john smith" keeps its labels.
  EXPECT_TRUE(contains(iob.output, "john B-PER\nsmith I-PER\n")) << iob.output;
}

TEST_F(CliDropIn, C2AutoChoosesOnTheDevDataAndNeedsIt) {
  const std::string model = dir_.file("auto.model");
  const CliRun chosen = septa_cli("train -q --c2 auto --max-iterations 30 --dev " + test_ +
                                  " -m " + model + " " + train_);
  ASSERT_EQ(chosen.code, 0) << chosen.output;
  EXPECT_TRUE(contains(chosen.output, "c2 auto: chose c2 = ")) << chosen.output;
  const CliRun without = septa_cli("train -q --c2 auto -m " + model + "2 " + train_);
  EXPECT_NE(without.code, 0);
  EXPECT_TRUE(contains(without.output, "--c2 auto needs held-out data")) << without.output;
}

bool is_png(const std::string& path) {
  return read_text(path).rfind("\x89PNG", 0) == 0;
}

TEST_F(CliDropIn, LearningCurveAndConfusionPlots) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) GTEST_SKIP() << "no gnuplot";
  const std::string model = dir_.file("m.model"), curve = dir_.file("curve.png");
  const CliRun train = septa_cli("train -q --max-iterations 10 --dev " + test_ + " --plot " +
                                 curve + " -m " + model + " " + train_);
  ASSERT_EQ(train.code, 0) << train.output;
  EXPECT_TRUE(is_png(curve));
  ASSERT_EQ(septa_cli("tag -m " + model + " -o " + dir_.file("out.txt") + " " + test_).code, 0);
  const std::string confusion = dir_.file("confusion.svg");
  const CliRun eval = septa_cli("eval --confusion --confusion-plot " + confusion + " " +
                                dir_.file("out.txt"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_TRUE(contains(eval.output, "gold\\guess")) << eval.output;
  EXPECT_TRUE(contains(read_text(confusion), "<svg"));
  // A bad image name fails before training.
  const CliRun bad = septa_cli("train -q --plot " + dir_.file("curve.jpg") + " -m " + model +
                               " " + train_);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_FALSE(contains(bad.output, "iter")) << bad.output;
}

TEST_F(CliDropIn, NBestListsDistinctLabellingsByDecreasingProbability) {
  const std::string model = column_model();
  const auto lines = split_lines(septa_cli("tag -n 3 -m " + model + " " + test_).output);
  const auto best = split_lines(septa_cli("tag -p -m " + model + " " + test_).output);
  // Per sentence: three blocks "# k P" + tokens + blank; block 0 equals the Viterbi output.
  std::size_t i = 0, b = 0, sentences = 0;
  while (i < lines.size()) {
    std::vector<std::vector<std::string>> blocks;
    double previous = 2.0;
    for (int k = 0; k < 3 && i < lines.size(); ++k) {
      ASSERT_EQ(lines[i].rfind("# " + std::to_string(k) + " ", 0), 0u) << lines[i];
      const double p = std::stod(lines[i].substr(4));
      EXPECT_LE(p, previous + 1e-12);
      previous = p;
      if (k == 0) {
        EXPECT_NEAR(p, std::stod(best[b].substr(13)), 1e-6);
      }
      std::vector<std::string> block;
      for (++i; i < lines.size() && !lines[i].empty(); ++i) block.push_back(lines[i]);
      ++i;
      blocks.push_back(block);
    }
    ASSERT_EQ(blocks.size(), 3u);
    EXPECT_NE(blocks[0], blocks[1]);
    EXPECT_NE(blocks[1], blocks[2]);
    for (std::size_t t = 0; t < blocks[0].size(); ++t) EXPECT_EQ(blocks[0][t], best[b + 1 + t]);
    b += blocks[0].size() + 2;
    ++sentences;
  }
  EXPECT_EQ(sentences, 10u);
  EXPECT_EQ(septa_cli("tag -n 0 -m " + model + " " + test_).code, 2);
}

// CRF++ "B01:%x[0,0]" templates through train, tag (-p, -v2, -n, --force), eval and dump.
TEST_F(CliDropIn, ObservationConditionedBigramTemplatesThroughTheCommandLine) {
  const std::string tmpl = dir_.file("cond.template"), model = dir_.file("cond.model");
  write_text(tmpl, "U00:%x[0,0]\nU01:%x[0,1]\nB\nB01:%x[0,1]\n");
  const CliRun train = septa_cli("train -q --max-iterations 30 -t " + tmpl + " -m " + model +
                                 " " + train_);
  ASSERT_EQ(train.code, 0) << train.output;
  const CliRun tagged = septa_cli("tag -qt -m " + model + " " + test_);
  ASSERT_EQ(tagged.code, 0) << tagged.output;
  EXPECT_TRUE(contains(tagged.output, "FB1: 100.00")) << tagged.output;
  const CliRun v2 = septa_cli("tag -v2 -m " + model + " " + test_);
  EXPECT_EQ(v2.code, 0) << v2.output;
  const CliRun nbest = septa_cli("tag -n 2 -m " + model + " " + test_);
  EXPECT_EQ(nbest.code, 0) << nbest.output;
  EXPECT_TRUE(contains(nbest.output, "# 1 ")) << nbest.output;
  const CliRun dump = septa_cli("dump -m " + model);
  EXPECT_TRUE(contains(dump.output, "CONDITIONED TRANSITIONS")) << dump.output;
  EXPECT_TRUE(contains(dump.output, "B01:")) << dump.output;
  const CliRun ap = septa_cli("train -q -a ap --max-iterations 5 -t " + tmpl + " -m " + model +
                              " " + train_);
  EXPECT_EQ(ap.code, 0) << ap.output;
  const CliRun separate = septa_cli("train -q -a separate -t " + tmpl + " -m " + model + " " +
                                    train_);
  EXPECT_NE(separate.code, 0);
  EXPECT_TRUE(contains(separate.output, "observation-conditioned")) << separate.output;
}

TEST(CliVersion, PrintsTheVersion) {
  const CliRun run = septa_cli("--version");
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.output.rfind("septa ", 0), 0u) << run.output;
}

TEST(Options, ValidationKeepsValuesBeyondSixSignificantDigits) {
  septa::crf::TrainOptions options;
  options.max_iterations = 1234567;
  options.c2 = 0.123456789;
  EXPECT_NO_THROW(septa::crf::validate(options));
  septa::crf::TrainOptions copy;
  for (const auto& spec : septa::crf::train_option_specs()) spec.set(copy, spec.get(options));
  EXPECT_EQ(copy.max_iterations, 1234567);
  EXPECT_EQ(copy.c2, 0.123456789);
}

}  // namespace
