// Training options: one struct with defaults and one table (name, help, check) from which the
// CLI flags, validation and Python keyword arguments all follow.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "septa/crf/limits.h"

namespace septa::crf {

// A training algorithm: the value of --algorithm and one line of help.
struct AlgorithmInfo {
  std::string name;
  std::string help;
};

// The training algorithms, in help order.
std::vector<AlgorithmInfo> algorithms();

// The number of cores (at least 1): the default of --threads.
int default_threads();

struct TrainOptions {
  std::string algorithm = "lbfgs";  // one of algorithms()
  double c1 = 0.0;              // L1 coefficient (OWL-QN when > 0), CRFsuite's meaning
  double c2 = 1.0;              // L2 coefficient: penalty c2 * ||w||^2, CRFsuite's meaning
  bool c2_auto = false;         // --c2 auto: choose c2 on the dev data (lbfgs)
  int max_iterations = 1000;    // optimiser iterations at most
  int period = 10;              // stop when the objective improved less than delta ...
  double delta = 1e-5;          // ... relatively over the last `period` iterations
  double epsilon = 1e-5;        // stop when ||g|| / max(1, ||w||) < epsilon
  int num_memories = 6;         // L-BFGS: corrections kept to approximate the inverse Hessian
  int linesearch = 0;           // L-BFGS: 0 MoreThuente, 1 Backtracking, 2 StrongBacktracking
  int max_linesearch = 20;      // L-BFGS: trials per line search
  int pa_type = 1;              // pa: 0 PA, 1 PA-I, 2 PA-II
  double c = 1.0;               // pa: aggressiveness C of PA-I and PA-II
  bool error_sensitive = true;  // pa: the cost grows with sqrt(mislabelled items)
  bool averaging = true;        // pa: the model is the averaged weights
  double variance = 1.0;        // arow: initial variance of every weight
  double gamma = 1.0;           // arow: tradeoff between the loss and the change of weights
  double calibration_eta = 0.1;      // l2sgd: first learning rate tried by the calibration
  double calibration_rate = 2.0;     // l2sgd: factor between the rates tried
  int calibration_samples = 1000;    // l2sgd: sequences the calibration trains on
  int calibration_candidates = 10;   // l2sgd: rates that must lower the loss, each direction
  int calibration_max_trials = 20;   // l2sgd: calibration epochs at most
  int min_freq = 1;             // drop features seen fewer times in training
  bool all_possible_states = false;       // state features for every label, not only observed
  bool all_possible_transitions = false;  // transition features for every label pair
  int threads = default_threads();  // worker threads (default: the cores); results do not depend on it
  uint64_t seed = 1;            // for any randomised step
  double floor = 1e-6;          // separate training: probability floor for unseen events
  double pair_beam = 0.01;      // separate: pairwise softmax over pairs of labels within this
                                // ratio of the best unary probability (0: all pairs)
  bool stacked_pairs = true;    // separate: pairwise factor offset by the unary log-probabilities
  bool pair_ties = true;        // separate: the pair features that equal others trained as one
                                // weight (the same model up to rounding; see pair_ties.h)
  bool local_sgd = true;        // local factors (separate, piecewise, memm) by SGD, else L-BFGS
  std::string checkpoint;       // SGD-trained algorithms: optimiser state written here ...
  int checkpoint_every = 1;     // ... every this many epochs (and after each factor's last)
  std::string resume;           // continue from this checkpoint: the same final model
  int epochs = 4;               // SGD passes over the data (4: chosen on development splits)
  int unary_epochs = 4;         // separate: SGD passes of the unary factor (4: chosen on dev splits)
  int shards = 16;              // SGD: fixed data shards trained in parallel (not the threads)
  int mixes = 16;               // SGD: parameter mixes of the shards per epoch (16 shards, 16
                                // mixes, 4 + 4 epochs: chosen on development splits, docs/crf.md)
  int unary_mixes = 0;          // separate: mixes per epoch of the unary factor (0: --mixes)
  int shard_parts = 1;          // SGD: the shards spread the instances within this many
                                // contiguous parts of the data (1: all of it; a multiple of
                                // the MPI rank count: no instance moves between ranks)
  int max_labels = static_cast<int>(kDefaultMaxLabels);  // refuse data with more labels
};

// One option of the table.
struct OptionSpec {
  std::string name;        // as in the CLI (--name) and Python (name with '-' -> '_')
  std::string help;        // one line, with the allowed range
  std::string (*get)(const TrainOptions& options);                 // current value as text
  void (*set)(TrainOptions& options, const std::string& value);    // parses and checks
  bool boolean = false;    // true/false option: a bare --name means true
};

// All training options, in help order.
const std::vector<OptionSpec>& train_option_specs();
// Sets option `name` from text; throws OptionError naming the option and its allowed range.
void set_train_option(TrainOptions& options, const std::string& name, const std::string& value);
// Why option `name` has no effect with the algorithm (and local optimiser) of `options`, as a
// sentence naming where it applies; empty when it applies.
std::string inapplicable_reason(const TrainOptions& options, const std::string& name);
// Checks every field; throws OptionError naming the first bad option and its range.
void validate(const TrainOptions& options);

}  // namespace septa::crf
