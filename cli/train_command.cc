// septa train: reads data, trains any algorithm with progress lines, saves the model.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>

#include "arguments.h"
#include "commands.h"
#include "interrupt.h"
#include "plot.h"
#include "septa/communicator.h"
#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/options.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"
#include "util/atomic_file.h"
#include "util/progress_line.h"

namespace septa::cli {
namespace {

void print_help() {
  std::cout << "usage: septa train -m MODEL [-t TEMPLATE] [-a ALGORITHM] [options] TRAIN_FILE\n\n"
               "Trains a sequence labeller on TRAIN_FILE (column format: whitespace columns,\n"
               "label last; or CRFsuite attribute format with --format attributes).\n\n"
               "  -m, --model FILE        where to write the model (required)\n"
               "  -t, --template FILE     CRF++ feature template (default: the built-in\n"
               "                          CoNLL-2000 chunking template: word, POS columns)\n"
               "  --format FORMAT         columns (default) or attributes\n"
               "  --dev FILE              held-out data: score per iteration, keep the best model\n"
               "  --plot FILE             draw the learning curve (objective, and dev score with\n"
               "                          --dev) to FILE.png or FILE.svg with gnuplot\n"
               "  -q, --quiet             no progress lines\n"
               "  --max-line-bytes N      refuse longer input lines (default 16 MiB)\n"
               "  --max-template-bytes N  refuse larger template files (default 1 MiB)\n";
  for (const crf::OptionSpec& spec : crf::train_option_specs()) {
    std::string flag = "  --" + spec.name + (spec.name == "algorithm" ? ", -a" : "") +
                       (spec.boolean ? "[=B]" : " X");
    flag = flag.size() < 26 ? flag + std::string(26 - flag.size(), ' ')
                            : flag + "\n" + std::string(26, ' ');
    std::cout << flag << spec.help << " [default " << spec.get(crf::TrainOptions()) << "]\n";
  }
  std::cout << "\nAlgorithms (-a):\n";
  for (const crf::AlgorithmInfo& algorithm : crf::algorithms()) {
    std::string name = "  " + algorithm.name;
    if (name.size() < 26) name.resize(26, ' ');
    std::cout << name << algorithm.help << "\n";
  }
  std::cout << "\nCtrl-C stops training cleanly and saves the best model so far (exit code 130).\n";
}

bool print_progress(const crf::TrainProgress& p) {
  std::cerr << crf::format_progress(p) << "\n";
  return true;
}

}  // namespace

static int train_with(Communicator& world, int argc, char** argv) {
  std::set<std::string> with_value = {"model", "template", "format", "dev", "plot",
                                      "max-line-bytes", "max-template-bytes"};
  std::set<std::string> booleans;
  for (const crf::OptionSpec& spec : crf::train_option_specs())
    (spec.boolean ? booleans : with_value).insert(spec.name);
  const Arguments args(argc, argv, with_value, {"help", "quiet"},
                       {{"-m", "model"}, {"-t", "template"}, {"-a", "algorithm"}, {"-q", "quiet"},
                        {"-h", "help"}},
                       booleans);
  if (args.has("help")) {
    print_help();
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("expected one TRAIN_FILE");
  const std::string model_path = args.require("model");
  const std::string train_path = args.positional()[0];
  const std::string format = args.get("format", "columns");
  if (format != "columns" && format != "attributes")
    throw OptionError("option --format: invalid value '" + format +
                           "' (allowed: columns, attributes)");

  crf::TrainOptions options;
  for (const auto& [name, value] : args.values())
    if (name != "model" && name != "template" && name != "format" && name != "dev" &&
        name != "quiet" && name != "plot" && name != "max-line-bytes" &&
        name != "max-template-bytes")
      crf::set_train_option(options, name, value);
  crf::validate(options);
  // An option given explicitly that the chosen algorithm ignores is probably a mistake: say so.
  // A warning, not an error, so that one command line can loop over algorithms.
  for (const auto& [name, value] : args.values()) {
    (void)value;
    const std::string reason = crf::inapplicable_reason(options, name);
    if (!reason.empty() && world.rank() == 0) std::cerr << "septa train: warning: " << reason << "\n";
  }
  install_interrupt_handler();
  // Under mpirun rank 0 speaks; the other ranks print nothing unless they fail.
  const bool root = world.rank() == 0;
  // Fail now, not after hours of training, when the model cannot be written.
  if (root) {
    check_writable(model_path);
    if (args.has("plot")) check_image_name(args.get("plot"));
  }
  const bool quiet = args.has("quiet") || !root;
  std::vector<crf::TrainProgress> history;  // for --plot
  crf::ProgressCallback progress = [quiet, &history](const crf::TrainProgress& p) {
    // l2sgd's calibration trials each restart from w = 0: not points of the learning curve.
    if (p.phase.rfind("calibrate", 0) != 0) history.push_back(p);
    if (!quiet) print_progress(p);
    return !interrupted();
  };
  if (world.size() > static_cast<int>(crf::kShardBlocks))
    throw OptionError("mpirun -n: at most " + std::to_string(crf::kShardBlocks) +
                      " ranks (the training file is cut into that many blocks), got " +
                      std::to_string(world.size()));

  const std::size_t max_line = args.limit("max-line-bytes", crf::kDefaultMaxLineBytes);
  crf::TrainResult result;
  if (format == "columns") {
    const crf::FeatureTemplate feature_template =
        args.has("template")
            ? crf::FeatureTemplate::parse_file(
                  args.get("template"),
                  args.limit("max-template-bytes", crf::kDefaultMaxTemplateBytes))
            : crf::FeatureTemplate::default_chunking();
    // Each rank reads only its blocks of the file (one process reads them all).
    crf::ColumnShard shard =
        crf::read_column_shard(train_path, crf::kShardBlocks, world, max_line, options.threads);
    std::vector<crf::ColumnSentence> dev;
    if (args.has("dev") && root) dev = crf::read_columns_file(args.get("dev"), 1, max_line);
    std::vector<uint64_t> sequences{shard.sentences.size()};
    world.allreduce(sequences, Communicator::Op::kSum);
    if (root) {
      std::cerr << "read " << sequences[0] << " sequences from " << train_path;
      if (world.size() > 1) std::cerr << " (" << world.size() << " ranks)";
      std::cerr << "\n";
    }
    result = crf::train_sharded(std::move(shard), train_path, feature_template, options, world, dev,
                                progress, args.get("dev"));
  } else {
    if (world.size() > 1)
      throw OptionError("option --format: only column data trains over several MPI ranks");
    const auto data = crf::read_attributes_file(train_path, max_line);
    std::vector<crf::AttributeSequence> dev;
    if (args.has("dev")) dev = crf::read_attributes_file(args.get("dev"), max_line);
    std::cerr << "read " << data.size() << " sequences from " << train_path << "\n";
    result = crf::train(data, options, dev, progress, train_path);
  }
  if (!root) return result.cancelled ? 130 : 0;
  result.model.save(model_path);
  std::fprintf(stderr, "trained %s: %d iterations, %zu features, %.2f s (%s); model saved to %s\n",
               options.algorithm.c_str(), result.iterations, result.features,
               result.seconds, result.stop_reason.c_str(), model_path.c_str());
  if (world.size() > 1 && result.bytes_received > 0)
    std::fprintf(stderr, "over %d ranks: each rank sent %.2f MB and received %.2f MB per gradient\n",
                 world.size(), result.bytes_sent / 1e6, result.bytes_received / 1e6);
  if (args.has("plot")) {
    plot_learning_curve(history, args.get("plot"));
    std::cerr << "learning curve drawn to " << args.get("plot") << "\n";
  }
  if (!std::isnan(result.chosen_c2))
    std::fprintf(stderr, "c2 auto: chose c2 = %g on the dev data\n", result.chosen_c2);
  if (!std::isnan(result.chosen_eta))
    std::fprintf(stderr, "l2sgd: calibrated learning rate eta = %g\n", result.chosen_eta);
  if (result.kept_iteration >= 0)
    std::fprintf(stderr, "%s\n",
                 util::format_kept_iteration(result.kept_iteration, result.kept_metric,
                                             result.kept_score)
                     .c_str());
  // The process ends right after: the model's memory goes back with it. Freed here, its
  // attribute strings (one allocation each) and weights cost the exit about 8 ms of CPU on
  // CoNLL-2000 (0.34M strings, 1.6M weights). Held by a pointer that is never deleted, the
  // model stays reachable for leak checkers.
  static crf::Model* const kept = new crf::Model(std::move(result.model));
  (void)kept;
  if (result.cancelled) {
    std::cerr << "interrupted: the best model so far was saved\n";
    return 130;
  }
  return 0;
}

int run_train(int argc, char** argv) {
  const std::unique_ptr<Communicator> world = make_world_communicator();
  if (world->size() == 1) return train_with(*world, argc, argv);
  // A failure on one rank ends the whole job (the others would wait forever); rank 0 writes
  // the model only after training, atomically, so no model file is left behind.
  try {
    return train_with(*world, argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "septa train: rank " << world->rank() << " of " << world->size()
              << ": error: " << e.what() << "\n";
    world->abort(1);
  }
  return 1;
}

}  // namespace septa::cli
