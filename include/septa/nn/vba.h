// Variational backdoor adjustment (Israel, Grover, Van den Broeck 2023): interventional
// likelihoods log p(y | do(x)) from observational (x, y, z) with a measured confounder z.
//
// Three components are fitted separately by maximum likelihood, p(z), p(y | x, z) and an encoder
// q(z | x, y); then only q is fine-tuned on the K-sample bound
//   log p(y | do(x)) >= E log (1/K) sum_k p(z_k) p(y | x, z_k) / q(z_k | x, y),  z_k ~ q.
// Every value returned is a stochastic LOWER BOUND whose quality depends on how well p(z) and
// p(y | x, z) were fitted; the standard error and effective sample size of the importance
// weights come with it. The method's options are the registry's "vba" table (septa nn --help).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "septa/nn/nn.h"

namespace septa::nn::vba {

// Files of a model directory: prior, outcome, encoder, conditional (stage 1),
// encoder_finetuned (stage 2), joint_prior/joint_outcome/joint_encoder (--joint 1), each
// DIR/<name>.safetensors.
struct FitConfig {
  std::string data;            // directory of x.npy, y.npy, z.npy
  OptionValues options;        // the "vba" table; unset options take its defaults
  std::string dir;             // the model directory (required)
  // "" fits every stage-1 component then stage 2; "prior", "outcome", "encoder", "conditional"
  // one stage-1 component (each may run in its own process); "finetune" stage 2 on the saved
  // prior, outcome and encoder.
  std::string part;
  int64_t limit = 0;           // first N rows (0: all)
  std::string device = "auto";
  int threads = 1;
  bool resume = false;         // continue an interrupted stage from its saved state
};
RunResult fit(const FitConfig& config, const ProgressCallback& progress);

struct QueryConfig {
  std::string dir;                // model directory
  std::string data;               // x.npy and y.npy (z.npy is not read); log_p_do.npy if present
  // vba (fine-tuned q) | separate (stage-1 q) | joint | naive (Monte Carlo over p(z)) |
  // conditional (the confounded p(y | x))
  std::string estimator = "vba";
  int64_t k = 100;                // importance samples
  uint64_t seed = 1;
  int64_t limit = 0;
  std::string out;                // .npy [B][3]: log p, ESS, standard error ("": not written)
  std::string device = "auto";
  int threads = 1;
};
struct QueryResult {
  int64_t rows = 0;
  double mean_log_p = 0.0;
  double mean_ess = 0.0;         // of K (1 for the conditional model)
  double mean_std_error = 0.0;
  bool has_truth = false;        // data held log_p_do.npy
  double mean_abs_error = 0.0;   // mean |log p_hat - log p_true| when has_truth
};
QueryResult query(const QueryConfig& config);

struct SampleConfig {
  std::string dir;              // model directory
  std::string x;                // .npy of the treatments: [R][X...]
  int64_t n = 10;               // draws per treatment
  bool conditional = false;     // draw from the confounded p(y | x) instead of p(y | do(x))
  uint64_t seed = 1;
  std::string out;              // .npy [R * n][Y]: row r * n + i is draw i for treatment r
  std::string device = "auto";
  int threads = 1;
};
void sample(const SampleConfig& config);

struct GenerateConfig {
  // linear-gaussian: DIR/{train,test,test_ood}/ with x, y, z and the truth (log_p_do.npy,
  //   log_p_conditional.npy) for the test sets; DIR/coefficients.npy [5][D] (c_zx, c_zy, c_xy,
  //   s_x, s_y).
  // fashion-composite: DIR/{train,test}/ with binarised x, y, z [N][784] and the classes of z
  //   and x (z_class.npy, x_class.npy) from the Fashion-MNIST IDX files in `images`.
  std::string kind = "linear-gaussian";
  int64_t dims = 5;             // D (linear-gaussian)
  int64_t n = 50000;            // training rows
  int64_t test_n = 1000;        // test rows
  uint64_t seed = 1;
  std::string out;
  std::string images = "/usr/share/datasets/fashion-mnist";
};
void generate(const GenerateConfig& config);

// The linear-Gaussian protocol in one process: draw coefficients, N training and test_n held-out
// rows (and test_n out of distribution, z ~ U(-7, 7)), fit, fine-tune, and measure each
// estimator's mean absolute error against the closed-form log p(y | do(x)).
struct BenchConfig {
  int64_t dims = 5;
  int64_t n = 50000;
  int64_t test_n = 1000;
  int64_t k = 100;
  uint64_t data_seed = 1;
  OptionValues options;         // the "vba" table
  bool joint = false;           // also train and measure the joint variant
  std::string device = "auto";
  int threads = 1;
};
struct BenchRow {
  std::string estimator;        // "vba fine-tuned", "vba separate", "naive MC", ...
  double mae = 0.0;             // in distribution
  double mae_ood = 0.0;         // z ~ U(-7, 7)
  double mean_ess = 0.0;        // in distribution, of K (0 where not an importance sampler)
};
struct BenchReport {
  std::vector<BenchRow> rows;
  double train_seconds = 0.0;
  double eval_seconds = 0.0;
  bool cancelled = false;
};
BenchReport bench_linear_gaussian(const BenchConfig& config, const ProgressCallback& progress);

// The Fashion-MNIST composite protocol (the paper's image experiment): fit on n observational
// rows, then (a) the mean log-likelihood of y in each interventional cell (class of do(x),
// class of z), VBA against the conditional p(y | x); (b) the class entropy of the left halves of
// y drawn under do(x) and under conditioning on x, classified by a small network trained on
// left halves of known class.
struct CompositeBenchConfig {
  std::string images = "/usr/share/datasets/fashion-mnist";
  int64_t n = 20000;           // observational training rows
  int64_t cell_n = 10;         // rows per (do(x), z) cell
  int64_t k = 20;              // importance samples of the cell log-likelihoods
  int64_t samples = 100;       // draws of y per class of x for the entropies
  uint64_t data_seed = 1;
  OptionValues options;        // the "vba" table; bernoulli-y and bernoulli-z are forced to 1
  std::string device = "auto";
  int threads = 1;
};
struct CompositeBenchReport {
  std::vector<std::vector<double>> vba_cells;          // [10][10] (x class, z class)
  std::vector<std::vector<double>> conditional_cells;  // [10][10]
  double vba_off = 0.0;          // mean over the 90 cells where z is not x's confounding class
  double conditional_off = 0.0;
  int cells_vba_better = 0;      // of those 90
  double entropy_do = 0.0;       // nats, mean over the classes of x
  double entropy_conditional = 0.0;
  double entropy_data = 0.0;     // of real left halves given x's class (the classifier's floor)
  double classifier_accuracy = 0.0;  // on held-out left halves
  double train_seconds = 0.0;
  double eval_seconds = 0.0;
  bool cancelled = false;
};
CompositeBenchReport bench_fashion_composite(const CompositeBenchConfig& config,
                                             const ProgressCallback& progress);

}  // namespace septa::nn::vba
