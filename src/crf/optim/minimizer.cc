#include "crf/optim/minimizer.h"

#include <lbfgs.h>

#include <cmath>
#include <new>

#include "septa/error.h"

namespace septa::crf {

/*
 * L-BFGS (Liu & Nocedal 1989, "On the limited memory BFGS method for large scale
 * optimization"): quasi-Newton steps d = -H g, where H, the inverse-Hessian estimate, is never
 * formed but applied by the two-loop recursion over the last m pairs
 * (s_i = w_{i+1} - w_i, y_i = g_{i+1} - g_i); a line search (More-Thuente by default) picks the
 * step. L2 is added here to f and g: f + c2 |w|^2, g + 2 c2 w.
 * OWL-QN (Andrew & Gao 2007, "Scalable training of L1-regularized log-linear models") for
 * c1 > 0: L-BFGS on the orthant of the current point, with the pseudo-gradient of
 * f + c1 |w|_1 (the one-sided derivative that descends, 0 where none does), directions
 * projected onto that orthant and line-search points clipped at zero. liblbfgs implements both;
 * this file adapts septa's f(w), g(w) and progress to it.
 */

namespace {

struct Context {
  const ObjectiveFunction* f;
  const IterationCallback* callback;
  double c2;
  bool cancelled = false;
};

lbfgsfloatval_t evaluate(void* instance, const lbfgsfloatval_t* x, lbfgsfloatval_t* g, const int n,
                         const lbfgsfloatval_t /*step*/) {
  auto* context = static_cast<Context*>(instance);
  // OWL-QN adds the L1 term itself.
  return penalized(*context->f, x, g, static_cast<std::size_t>(n), 0.0, context->c2);
}

int progress(void* instance, const lbfgsfloatval_t* x, const lbfgsfloatval_t* /*g*/,
             const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
             const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k, int ls) {
  auto* context = static_cast<Context*>(instance);
  if (!*context->callback) return 0;
  MinimizerIteration it;
  it.iteration = k;
  it.objective = fx;
  it.grad_norm = gnorm;
  it.w_norm = xnorm;
  it.step = step;
  it.linesearch_trials = ls;
  for (int i = 0; i < n; ++i) it.active += x[i] != 0.0;
  it.w = x;
  if (!(*context->callback)(it)) {
    context->cancelled = true;
    return 1;
  }
  return 0;
}

std::string describe(int status) {
  switch (status) {
    case LBFGS_SUCCESS: return "converged (gradient)";
    case LBFGS_STOP: return "converged (relative improvement)";
    case LBFGS_ALREADY_MINIMIZED: return "already minimal";
    case LBFGSERR_MAXIMUMITERATION: return "max iterations";
    case LBFGSERR_ROUNDING_ERROR: return "converged (line search rounding limit)";
    case LBFGSERR_MAXIMUMLINESEARCH: return "line search limit";
    case LBFGSERR_MINIMUMSTEP: return "line search minimum step";
    case LBFGSERR_MAXIMUMSTEP: return "line search maximum step";
    default: return "lbfgs status " + std::to_string(status);
  }
}

}  // namespace

double penalized(const ObjectiveFunction& f, const double* w, double* g, std::size_t n, double c1,
                 double c2) {
  double value = f(w, g);
  double norm1 = 0.0, norm2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    norm1 += std::fabs(w[i]);
    norm2 += w[i] * w[i];
    g[i] += 2.0 * c2 * w[i] + (w[i] > 0.0 ? c1 : w[i] < 0.0 ? -c1 : 0.0);
  }
  return value + c1 * norm1 + c2 * norm2;
}

MinimizerResult minimize(const ObjectiveFunction& f, std::vector<double>& w,
                         const MinimizerOptions& options, const IterationCallback& callback) {
  MinimizerResult result;
  const int n = static_cast<int>(w.size());
  if (n == 0) {
    result.stop_reason = "no features";
    return result;
  }
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.m = options.memory;
  param.epsilon = options.epsilon;
  param.past = options.period;
  param.delta = options.delta;
  param.max_iterations = options.max_iterations;
  param.max_linesearch = options.max_linesearch;
  param.linesearch = options.linesearch == 1   ? LBFGS_LINESEARCH_BACKTRACKING
                     : options.linesearch == 2 ? LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE
                                               : LBFGS_LINESEARCH_MORETHUENTE;
  if (options.c1 > 0.0) {  // OWL-QN works only with backtracking (as in CRFsuite)
    param.orthantwise_c = options.c1;
    param.orthantwise_start = 0;
    param.orthantwise_end = n;
    param.linesearch = LBFGS_LINESEARCH_BACKTRACKING;
  }
  Context context{&f, &callback, options.c2};
  int iterations = 0;
  IterationCallback counting = [&](const MinimizerIteration& it) {
    iterations = it.iteration;
    return callback ? callback(it) : true;
  };
  context.callback = &counting;
  lbfgsfloatval_t fx = 0.0;
  const int status = lbfgs(n, w.data(), &fx, evaluate, progress, &context, &param);
  result.iterations = iterations;
  result.objective = fx;
  result.cancelled = context.cancelled;
  if (context.cancelled) {
    result.stop_reason = "cancelled";
  } else if (status == LBFGSERR_OUTOFMEMORY) {
    throw std::bad_alloc();
  } else if (status == LBFGSERR_INVALIDPARAMETERS ||
             (status >= LBFGSERR_INVALID_N && status <= LBFGSERR_INVALID_ORTHANTWISE_END)) {
    // validate() has checked every option that reaches liblbfgs' parameters.
    throw InternalError("lbfgs refused its parameters: " + describe(status));
  } else {
    result.stop_reason = describe(status);
  }
  return result;
}

}  // namespace septa::crf
