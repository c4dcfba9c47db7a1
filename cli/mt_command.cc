// "septa nn mt build-corpus|train|merge|eval|analyse": a thin client of septa/nn/mt.h. The
// study options, their help and validation come from mt::study_options().
#include <cstdio>
#include <iostream>
#include <string>

#include "commands.h"
#include "interrupt.h"
#include "nn_client.h"
#include "septa/error.h"
#include "septa/nn/mt.h"
#include "septa/nn/nn.h"

namespace septa::cli {
namespace {

namespace mt = septa::nn::mt;

void print_help(std::ostream& out) {
  out << "usage: septa nn mt <command> [options]\n\n"
         "commands:\n"
         "  build-corpus --corpus DIR [--groups de,fr,es;ru;ja,zh_CN] [--locale-dir D] [--dpkg-dir D]\n"
         "               [--dev-fraction F] [--test-fraction F] [--max-per-package N] [--seed N]\n"
         "               pairs from the installed translation catalogs, split by source package\n"
         "  tokenizer --corpus DIR --out FILE.model [--vocab V] [--max-train N] [--seed S]\n"
         "               the shared sentencepiece model that train would train (for --tokenizer)\n"
         "  train   --corpus DIR --dir STUDY [--resume] [--tokenizer FILE.model]\n"
         "               tokenizer (or the given one), pre-training, every post-training\n"
         "          [--part I/N]  0/N: tokenizer and pre-training only; I/N (1..N): the post-trained\n"
         "               models of part I (balanced), so N processes post-train side by side\n"
         "  merge   --corpus DIR --dir STUDY              group-wise X->en merges (ties, linear, task arithmetic)\n"
         "  eval    --corpus DIR --dir STUDY              chrF / BLEU per setting and direction -> results.tsv\n"
         "  analyse --dir STUDY                           tables, deltas and plot -> analysis.md, deltas.png\n"
         "  all     --corpus DIR --dir STUDY [--resume] [--tokenizer FILE.model]   train, merge, eval, analyse\n\n"
         "common options: --device auto|cpu|cuda  --threads T (default 1)\n\n"
         "study options (train, merge and eval must get the same):\n";
  print_method_options(out, mt::study_options().options, /*width=*/22);
  out << "\nExit status: 0 ok, 1 error, 2 usage, 130 interrupted (continue with --resume).\n";
}

double parse_real(const std::string& name, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end) throw OptionError(name + " expects a number, got '" + text + "'");
  return v;
}

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int dispatch(int argc, char** argv) {
  const std::string command = argv[2];
  mt::CorpusRequest corpus;
  mt::StudyConfig study;
  std::string out;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--resume") {
      study.resume = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) throw OptionError("unexpected argument '" + arg + "'");
    if (i + 1 >= argc) throw OptionError(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--corpus") corpus.out_dir = study.corpus_dir = value;
    else if (arg == "--dir") study.dir = value;
    else if (arg == "--groups") corpus.groups = value;
    else if (arg == "--locale-dir") corpus.locale_dir = value;
    else if (arg == "--dpkg-dir") corpus.dpkg_dir = value;
    else if (arg == "--dev-fraction") corpus.dev_fraction = parse_real(arg, value);
    else if (arg == "--test-fraction") corpus.test_fraction = parse_real(arg, value);
    else if (arg == "--max-per-package") {
      corpus.max_per_package = parse_integer_option(arg, value);
      if (corpus.max_per_package < 0)
        throw OptionError("--max-per-package must be an integer >= 0 (0: no cap), not " + value);
    }
    else if (arg == "--tokenizer") study.tokenizer = value;
    else if (arg == "--out") out = value;
    else if (arg == "--device") study.device = value;
    else if (arg == "--threads") study.threads = static_cast<int>(parse_integer_option(arg, value));
    else if (arg == "--part") {
      const size_t slash = value.find('/');
      if (slash == std::string::npos) throw OptionError("--part expects I/N (0 <= I <= N, N >= 1), got '" + value + "'");
      study.part = static_cast<int>(parse_integer_option(arg, value.substr(0, slash)));
      study.parts = static_cast<int>(parse_integer_option(arg, value.substr(slash + 1)));
      if (study.parts < 1 || study.part < 0 || study.part > study.parts)
        throw OptionError("--part expects I/N with 0 <= I <= N and N >= 1, got '" + value + "'");
      if (command != "train") throw OptionError("--part is an option of train only");
    }
    else {
      if (arg == "--seed") corpus.seed = static_cast<uint64_t>(parse_integer_option(arg, value));
      study.options[arg.substr(2)] = value;  // validated against the study's option table
    }
  }
  install_interrupt_handler();
  if (command == "build-corpus") {
    if (corpus.out_dir.empty()) throw OptionError("build-corpus needs --corpus DIR");
    std::cout << mt::build_corpus(corpus, print_line);
    return 0;
  }
  if (command == "analyse") {
    if (study.dir.empty()) throw OptionError("analyse needs --dir STUDY");
    std::cout << mt::analyse(study.dir);
    return 0;
  }
  if (command == "tokenizer") {
    if (study.corpus_dir.empty() || out.empty()) throw OptionError("tokenizer needs --corpus DIR and --out FILE.model");
    mt::train_tokenizer(study.corpus_dir, study.options, out, print_line);
    return 0;
  }
  if (study.corpus_dir.empty() || study.dir.empty()) throw OptionError(command + " needs --corpus DIR and --dir STUDY");
  const bool all = command == "all";
  if (command == "train" || all) {
    if (!mt::train(study, print_epoch_progress)) {
      std::fprintf(stderr, "septa nn mt: interrupted; continue with --resume\n");
      return 130;
    }
  }
  if (command == "merge" || all) mt::merge(study, print_line);
  if (command == "eval" || all) std::cout << mt::evaluate(study, print_line);
  if (all) std::cout << mt::analyse(study.dir);
  if (all || command == "train" || command == "merge" || command == "eval") return 0;
  std::cerr << "septa nn mt: unknown command '" << command << "'\n";
  print_help(std::cerr);
  return 2;
}

}  // namespace

int run_mt(int argc, char** argv) {
  if (argc < 3 || std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h") {
    print_help(argc < 3 ? std::cerr : std::cout);
    return argc < 3 ? 2 : 0;
  }
  for (int i = 3; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      print_help(std::cout);
      return 0;
    }
  return run_reporting_errors("septa nn mt", [&] { return dispatch(argc, argv); });
}

}  // namespace septa::cli
