#include "septa/crf/options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <type_traits>

#include "crf/algorithms/algorithm_table.h"
#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::crf {
namespace {

[[noreturn]] void bad(const std::string& name, const std::string& value, const std::string& range) {
  throw OptionError("option --" + name + ": invalid value '" + value + "' (allowed: " + range + ")");
}

double parse_double(const std::string& name, const std::string& value, double low, double high,
                    const std::string& range) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !std::isfinite(v) || v < low || v > high)
    bad(name, value, range);
  return v;
}

long parse_int(const std::string& name, const std::string& value, long low, long high,
               const std::string& range) {
  long long v = 0;
  if (!util::parse_int(value, low, high, v)) bad(name, value, range);
  return static_cast<long>(v);
}

bool parse_bool(const std::string& name, const std::string& value) {
  if (value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  bad(name, value, "true or false");
}

// The shortest decimal text that parses back to exactly `v` (validate() re-parses it).
std::string text_of_double(double v) {
  for (int precision = 6;; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << v;
    if (precision >= 17 || std::strtod(out.str().c_str(), nullptr) == v) return out.str();
  }
}

// Integers in full (never "1e+06"), doubles as above.
template <typename T>
std::string text(T v) {
  if constexpr (std::is_integral_v<T>)
    return std::to_string(v);
  else
    return text_of_double(v);
}

// "lbfgs, separate, ...": the algorithm names of the table.
std::string algorithm_names() {
  std::string names;
  for (const AlgorithmEntry& entry : algorithm_table())
    names += (names.empty() ? "" : ", ") + std::string(entry.name);
  return names;
}

}  // namespace

int default_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(std::min(cores, 256u));
}

std::vector<AlgorithmInfo> algorithms() {
  std::vector<AlgorithmInfo> out;
  for (const AlgorithmEntry& entry : algorithm_table()) out.push_back({entry.name, entry.help});
  return out;
}

#define SEPTA_NUMBER_OPTION(NAME, FIELD, PARSE, LOW, HIGH, RANGE, HELP)                   \
  OptionSpec {                                                                            \
    NAME, HELP " (" RANGE ")", [](const TrainOptions& o) { return text(o.FIELD); },       \
        [](TrainOptions& o, const std::string& v) {                                       \
          o.FIELD = static_cast<decltype(o.FIELD)>(PARSE(NAME, v, LOW, HIGH, RANGE));     \
        }                                                                                 \
  }
#define SEPTA_BOOL_OPTION(NAME, FIELD, HELP)                                              \
  OptionSpec {                                                                            \
    NAME, HELP " (true or false)",                                                        \
        [](const TrainOptions& o) { return std::string(o.FIELD ? "true" : "false"); },    \
        [](TrainOptions& o, const std::string& v) { o.FIELD = parse_bool(NAME, v); },     \
        true                                                                              \
  }

const std::vector<OptionSpec>& train_option_specs() {
  static const std::vector<OptionSpec> specs = {
      OptionSpec{"algorithm", "training algorithm (" + algorithm_names() + ")",
                 [](const TrainOptions& o) { return o.algorithm; },
                 [](TrainOptions& o, const std::string& v) {
                   if (find_algorithm(v) == nullptr) bad("algorithm", v, algorithm_names());
                   o.algorithm = v;
                 }},
      SEPTA_NUMBER_OPTION("c1", c1, parse_double, 0.0, 1e9, "0 to 1e9",
                          "L1 penalty c1*|w|_1, trained by OWL-QN when > 0"),
      OptionSpec{"c2",
                 "L2 penalty c2*|w|^2, CRFsuite's meaning; separate: each factor's penalty is "
                 "c2 * sequences / its instances (0 to 1e9, or auto: chosen on --dev by a short "
                 "warm-started search, lbfgs)",
                 [](const TrainOptions& o) { return o.c2_auto ? std::string("auto") : text(o.c2); },
                 [](TrainOptions& o, const std::string& v) {
                   o.c2_auto = v == "auto";
                   if (!o.c2_auto) o.c2 = parse_double("c2", v, 0.0, 1e9, "0 to 1e9, or auto");
                 }},
      SEPTA_NUMBER_OPTION("max-iterations", max_iterations, parse_int, 1, 1000000000,
                          "1 to 1e9", "optimiser iterations at most"),
      SEPTA_NUMBER_OPTION("period", period, parse_int, 1, 1000000, "1 to 1e6",
                          "window of the relative-improvement stopping test"),
      SEPTA_NUMBER_OPTION("delta", delta, parse_double, 0.0, 1.0, "0 to 1",
                          "stop when the objective improves less than this over the window"),
      SEPTA_NUMBER_OPTION("epsilon", epsilon, parse_double, 0.0, 1.0, "0 to 1",
                          "stop when |g|/max(1,|w|) falls below this; ap, pa, arow: when the "
                          "epoch's error or mean loss does (there 0 by default: every epoch)"),
      SEPTA_NUMBER_OPTION("num-memories", num_memories, parse_int, 1, 1000, "1 to 1000",
                          "L-BFGS corrections kept (CRFsuite's num_memories)"),
      OptionSpec{"linesearch", "L-BFGS line search: MoreThuente, Backtracking, StrongBacktracking",
                 [](const TrainOptions& o) {
                   return std::string(o.linesearch == 1   ? "Backtracking"
                                      : o.linesearch == 2 ? "StrongBacktracking"
                                                          : "MoreThuente");
                 },
                 [](TrainOptions& o, const std::string& v) {
                   if (v == "MoreThuente") o.linesearch = 0;
                   else if (v == "Backtracking") o.linesearch = 1;
                   else if (v == "StrongBacktracking") o.linesearch = 2;
                   else bad("linesearch", v, "MoreThuente, Backtracking, StrongBacktracking");
                 }},
      SEPTA_NUMBER_OPTION("max-linesearch", max_linesearch, parse_int, 1, 100000, "1 to 100000",
                          "L-BFGS trials per line search"),
      SEPTA_NUMBER_OPTION("pa-type", pa_type, parse_int, 0, 2, "0 to 2",
                          "pa: 0 PA, 1 PA-I, 2 PA-II"),
      SEPTA_NUMBER_OPTION("c", c, parse_double, 1e-12, 1e9, "1e-12 to 1e9",
                          "pa: aggressiveness C of PA-I and PA-II"),
      SEPTA_BOOL_OPTION("error-sensitive", error_sensitive,
                        "pa: the cost grows with the square root of the mislabelled items"),
      SEPTA_BOOL_OPTION("averaging", averaging, "pa: the model is the averaged weights"),
      SEPTA_NUMBER_OPTION("variance", variance, parse_double, 1e-12, 1e9, "1e-12 to 1e9",
                          "arow: initial variance of every weight"),
      SEPTA_NUMBER_OPTION("gamma", gamma, parse_double, 1e-12, 1e9, "1e-12 to 1e9",
                          "arow: tradeoff between the loss and the change of weights"),
      SEPTA_NUMBER_OPTION("calibration-eta", calibration_eta, parse_double, 1e-12, 1e9,
                          "1e-12 to 1e9", "l2sgd: first learning rate the calibration tries"),
      SEPTA_NUMBER_OPTION("calibration-rate", calibration_rate, parse_double, 1.0 + 1e-9, 1e3,
                          "above 1, at most 1000",
                          "l2sgd: factor between the learning rates the calibration tries"),
      SEPTA_NUMBER_OPTION("calibration-samples", calibration_samples, parse_int, 1, 1000000000,
                          "1 to 1e9", "l2sgd: sequences the calibration trains on"),
      SEPTA_NUMBER_OPTION("calibration-candidates", calibration_candidates, parse_int, 1, 1000000,
                          "1 to 1e6",
                          "l2sgd: learning rates that must lower the loss, upwards then downwards"),
      SEPTA_NUMBER_OPTION("calibration-max-trials", calibration_max_trials, parse_int, 1, 1000000,
                          "1 to 1e6", "l2sgd: calibration trials at most"),
      SEPTA_NUMBER_OPTION("min-freq", min_freq, parse_int, 1, 1000000000, "1 to 1e9",
                          "drop features seen fewer times in training"),
      SEPTA_BOOL_OPTION("all-possible-states", all_possible_states,
                        "state features for every label, not only observed pairs"),
      SEPTA_BOOL_OPTION("all-possible-transitions", all_possible_transitions,
                        "transition features for every label pair, not only observed"),
      SEPTA_NUMBER_OPTION("threads", threads, parse_int, 1, 256, "1 to 256",
                          "worker threads, default the cores; the model does not depend on it"),
      SEPTA_NUMBER_OPTION("seed", seed, parse_int, 0, 2147483647L, "0 to 2147483647",
                          "seed of any randomised step"),
      SEPTA_NUMBER_OPTION("floor", floor, parse_double, 1e-300, 0.1, "1e-300 to 0.1",
                          "separate training: probability floor for unseen events"),
      SEPTA_NUMBER_OPTION("pair-beam", pair_beam, parse_double, 0.0, 1.0, "0 to 1",
                          "separate: pairwise softmax only over label pairs whose labels have "
                          "unary probability >= this times the best (0: all pairs)"),
      SEPTA_BOOL_OPTION("stacked-pairs", stacked_pairs,
                        "separate: the pairwise factor learns only the label interaction on top "
                        "of the unary predictions (false: a plain pair classifier)"),
      SEPTA_BOOL_OPTION("pair-ties", pair_ties,
                        "separate: pair features that equal others (a template at t+1 reading "
                        "what another reads at t) train as one weight: the same model up to "
                        "rounding, faster"),
      OptionSpec{"local-optimizer",
                 "optimiser of locally normalised factors (separate, piecewise, memm): sgd, lbfgs",
                 [](const TrainOptions& o) { return std::string(o.local_sgd ? "sgd" : "lbfgs"); },
                 [](TrainOptions& o, const std::string& v) {
                   if (v != "sgd" && v != "lbfgs") bad("local-optimizer", v, "sgd, lbfgs");
                   o.local_sgd = v == "sgd";
                 }},
      SEPTA_NUMBER_OPTION("epochs", epochs, parse_int, 1, 100000, "1 to 100000",
                          "SGD passes over the data (local-optimizer sgd; separate: of the "
                          "pairwise factor)"),
      SEPTA_NUMBER_OPTION("unary-epochs", unary_epochs, parse_int, 1, 100000, "1 to 100000",
                          "separate: SGD passes of the unary factor (local-optimizer sgd)"),
      OptionSpec{"checkpoint",
                 "file for the optimiser state of SGD training (separate, piecewise, memm)",
                 [](const TrainOptions& o) { return o.checkpoint; },
                 [](TrainOptions& o, const std::string& v) { o.checkpoint = v; }},
      SEPTA_NUMBER_OPTION("checkpoint-every", checkpoint_every, parse_int, 1, 1000000,
                          "1 to 1e6", "epochs between checkpoints"),
      OptionSpec{"resume", "continue SGD training from this checkpoint file",
                 [](const TrainOptions& o) { return o.resume; },
                 [](TrainOptions& o, const std::string& v) { o.resume = v; }},
      SEPTA_NUMBER_OPTION("shards", shards, parse_int, 1, 4096, "1 to 4096",
                          "SGD: fixed data shards trained in parallel (the parallelism; any "
                          "--threads gives the same model)"),
      SEPTA_NUMBER_OPTION("mixes", mixes, parse_int, 1, 1000, "1 to 1000",
                          "SGD: parameter mixes of the shards per epoch"),
      SEPTA_NUMBER_OPTION("unary-mixes", unary_mixes, parse_int, 0, 1000, "0 to 1000",
                          "separate: SGD mixes per epoch of the unary factor (0: --mixes)"),
      SEPTA_NUMBER_OPTION("shard-parts", shard_parts, parse_int, 1, 64, "1 to 64",
                          "SGD: each shard draws its instances from one of this many contiguous "
                          "parts of the training data (1: from all of it); with a multiple of "
                          "the mpirun rank count each rank trains the part it read and no "
                          "instance moves between ranks (docs/mpi.md)"),
      SEPTA_NUMBER_OPTION("max-labels", max_labels, parse_int, 1, 1000000, "1 to 1000000",
                          "refuse training data with more distinct labels"),
  };
  return specs;
}

#undef SEPTA_NUMBER_OPTION
#undef SEPTA_BOOL_OPTION

void set_train_option(TrainOptions& options, const std::string& name, const std::string& value) {
  for (const OptionSpec& spec : train_option_specs()) {
    if (spec.name == name) {
      spec.set(options, value);
      return;
    }
  }
  throw OptionError("unknown option --" + name);
}

std::string inapplicable_reason(const TrainOptions& options, const std::string& name) {
  const std::string& a = options.algorithm;
  const bool local = a == "separate" || a == "piecewise" ||
                     a == "memm";
  // Piecewise trains its edge factors by L-BFGS whatever the local optimiser.
  const bool uses_lbfgs = a == "lbfgs" || a == "piecewise" ||
                          (local && !options.local_sgd);
  const bool uses_sgd = local && options.local_sgd;
  const bool online = a == "ap" ||
                      a == "pa" || a == "arow";
  const bool l2sgd = a == "l2sgd";
  bool applies = true;
  std::string where;
  if (online && (name == "max-iterations" || name == "epsilon" || name == "seed")) {
    applies = true;
  } else if (l2sgd && (name == "max-iterations" || name == "period" || name == "delta" ||
                       name == "c2" || name == "seed" || name == "all-possible-transitions")) {
    applies = true;
  } else if (name.rfind("calibration-", 0) == 0) {
    applies = l2sgd;
    where = "l2sgd";
  } else if (name == "pa-type" || name == "c" || name == "error-sensitive" ||
             name == "averaging") {
    applies = a == "pa";
    where = "pa";
  } else if (name == "variance" || name == "gamma") {
    applies = a == "arow";
    where = "arow";
  } else if (name == "c1" || name == "max-iterations" || name == "period" || name == "delta" ||
      name == "epsilon" || name == "num-memories" || name == "linesearch" ||
      name == "max-linesearch") {
    applies = uses_lbfgs;
    where = "lbfgs and piecewise, and separate/memm with --local-optimizer lbfgs" +
            std::string(name == "max-iterations" ? ", ap, pa, arow and l2sgd"
                        : name == "epsilon"      ? ", ap, pa and arow"
                        : name == "period" || name == "delta" ? ", l2sgd"
                                                              : "");
  } else if (name == "c2") {
    applies = uses_lbfgs || uses_sgd;
    where = "every algorithm but separate-counts";
  } else if (name == "epochs" || name == "seed" || name == "shard-parts") {
    applies = uses_sgd;
    where = "separate, piecewise and memm with --local-optimizer sgd";
  } else if (name == "floor") {
    applies = a == "separate" || a == "separate-counts" || a == "memm";
    where = "separate, separate-counts and memm";
  } else if (name == "unary-epochs" || name == "unary-mixes") {
    applies = a == "separate" && options.local_sgd;
    where = "separate with --local-optimizer sgd";
  } else if (name == "pair-beam" || name == "stacked-pairs" || name == "pair-ties") {
    applies = a == "separate";
    where = "separate";
  } else if (name == "local-optimizer") {
    applies = local;
    where = "separate, piecewise and memm";
  } else if (name == "all-possible-states") {
    applies = a != "separate-counts";
    where = "every algorithm but separate-counts";
  } else if (name == "all-possible-transitions") {
    applies = a == "lbfgs" || online;
    where = "lbfgs, ap, pa and arow";
  } else if (name == "min-freq") {
    applies = true;
  }
  if (applies) return "";
  std::string reason = "option --" + name + " has no effect with --algorithm " + a;
  if (local && options.local_sgd && name != "floor" && name != "all-possible-transitions")
    reason += " --local-optimizer sgd";
  return reason + " (it applies to " + where + ")";
}

void validate(const TrainOptions& options) {
  // Re-parse every field through its own checker, so the table is the single source of truth.
  for (const OptionSpec& spec : train_option_specs()) {
    TrainOptions scratch;
    spec.set(scratch, spec.get(options));
  }
}

}  // namespace septa::crf
