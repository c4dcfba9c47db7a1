// Optimiser glue over liblbfgs: L-BFGS with L2, OWL-QN with L1. The optimiser sees only
// f(w) and g(w); regularisation is added here.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace septa::crf {

struct MinimizerOptions {
  double c1 = 0.0;            // penalty c1 * ||w||_1 (OWL-QN when > 0)
  double c2 = 0.0;            // penalty c2 * ||w||^2
  int max_iterations = 1000;
  int period = 10;            // relative-improvement window
  double delta = 1e-5;
  double epsilon = 1e-5;
  int memory = 6;             // L-BFGS history
  int linesearch = 0;         // 0 More-Thuente, 1 backtracking (Wolfe), 2 strong backtracking
  int max_linesearch = 20;    // trials per line search
};

struct MinimizerIteration {
  int iteration = 0;
  double objective = 0.0;     // regularised
  double grad_norm = 0.0;
  std::size_t active = 0;     // non-zero weights
  double w_norm = 0.0;        // |w|_2
  double step = 0.0;          // step the line search accepted
  int linesearch_trials = 0;  // objective evaluations of that line search
  const double* w = nullptr;  // [F] current weights
};

struct MinimizerResult {
  int iterations = 0;
  double objective = 0.0;
  bool cancelled = false;
  std::string stop_reason;
};

// Unregularised objective: returns f(w) and writes g(w).
using ObjectiveFunction = std::function<double(const double* w, double* g)>;
// Called after each iteration; return false to stop.
using IterationCallback = std::function<bool(const MinimizerIteration&)>;

// Returns f(w) + c1 ||w||_1 + c2 ||w||^2 and writes its gradient (sign(w) for the L1 term,
// valid off the kinks w_i = 0).
double penalized(const ObjectiveFunction& f, const double* w, double* g, std::size_t n, double c1,
                 double c2);

// Minimises f(w) + c1 ||w||_1 + c2 ||w||^2 from the start point in `w`, leaving the result there.
MinimizerResult minimize(const ObjectiveFunction& f, std::vector<double>& w,
                         const MinimizerOptions& options, const IterationCallback& callback);

}  // namespace septa::crf
