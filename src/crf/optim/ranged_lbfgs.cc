#include "crf/optim/ranged_lbfgs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "septa/error.h"

namespace septa::crf {

/*
 * L-BFGS (Liu & Nocedal 1989; Nocedal & Wright, "Numerical Optimization", 2nd ed., algorithm
 * 7.4) with the vectors split by feature range over ranks (as in Chen, Wang, Zhou & Jordan 2014,
 * "Large-scale L-BFGS using MapReduce", but with the dot products taken directly). The
 * direction d = -H g comes from the two-loop recursion over the last m pairs
 * (s_i = x_{i+1} - x_i, y_i = g_{i+1} - g_i, rho_i = 1 / y_i.s_i):
 *   q = g;  for i = k-1 .. k-m:  a_i = rho_i s_i.q,  q -= a_i y_i
 *   r = (s_{k-1}.y_{k-1} / y_{k-1}.y_{k-1}) q
 *   for i = k-m .. k-1:  b = rho_i y_i.r,  r += (a_i - b) s_i;   d = -r
 * Every update is elementwise, so each rank updates its range; every dot product is
 * FeatureRanges::dots (fixed chunks added in chunk order), the same bits on every rank and for
 * every rank count. The step length is chosen by a line search that sees only scalars (f and
 * g.d along the line), so it decides alike everywhere; the trial point's ranges are
 * allgathered into the whole weight vector that the objective reads.
 * OWL-QN (Andrew & Gao 2007) for c1 > 0: the pseudo-gradient pg of f + c1 |x|_1 replaces g in
 * the recursion's input and the stopping tests, the direction is zeroed where it does not
 * descend along -pg (d_i pg_i >= 0), and trial points are projected onto the orthant of the
 * start point (sign x0_i, or -pg_i where x0_i = 0); the line search backtracks until
 * f(x) <= f(x0) + ftol pg.(x - x0).
 * Line searches: More & Thuente (1994, "Line search algorithms with guaranteed sufficient
 * decrease"; the MINPACK-2 dcsrch/dcstep scheme) for strong Wolfe conditions with ftol = 1e-4,
 * gtol = 0.9; backtracking (halve while the Armijo condition fails, multiply by 2.1 while the
 * weak, or strong, Wolfe curvature condition fails). The first step is 1 / |d|, later ones 1.
 * Stopping rules as before: |pg| / max(1, |x|) <= epsilon; relative decrease of f over `period`
 * iterations below delta; max_iterations.
 */

namespace {

constexpr double kFtol = 1e-4;     // sufficient decrease (Armijo)
constexpr double kGtol = 0.9;      // curvature (More-Thuente)
constexpr double kWolfe = 0.9;     // curvature (backtracking)
constexpr double kXtol = 1e-16;    // relative width of the bracket
constexpr double kMinStep = 1e-20;
constexpr double kMaxStep = 1e20;

enum class Search { kMoreThuente, kBacktracking, kStrongBacktracking, kOrthantwise };

// Outcome of a line search: trials > 0 on success, else why it stopped.
struct SearchResult {
  int trials = 0;
  std::string failure;
};

class Run {
 public:
  Run(const RangeObjective& f, std::vector<double>& w, const FeatureRanges& ranges,
      const MinimizerOptions& options)
      : f_(f), w_(w), r_(ranges), o_(options), n_(ranges.owned()), x_(w.data() + ranges.lo()),
        g_(n_), pg_(options.c1 > 0.0 ? n_ : 0), d_(n_) {}

  // fx = f(w) + c1 |w|_1 + c2 |w|^2; g = its gradient without the L1 term (this rank's range).
  // The norms run over the whole w, which every rank holds: identical everywhere.
  double evaluate() {
    const double value = f_(w_.data(), g_.data());
    double norm1 = 0.0, norm2 = 0.0;
    for (const double v : w_) {
      norm1 += std::fabs(v);
      norm2 += v * v;
    }
    for (std::size_t i = 0; i < n_; ++i) g_[i] += 2.0 * o_.c2 * x_[i];
    return value + o_.c1 * norm1 + o_.c2 * norm2;
  }

  // pg_i: the one-sided derivative of f + c1 |x|_1 that descends, 0 where neither does.
  void pseudo_gradient() {
    const double c1 = o_.c1;
    for (std::size_t i = 0; i < n_; ++i) {
      if (x_[i] < 0.0) pg_[i] = g_[i] - c1;
      else if (x_[i] > 0.0) pg_[i] = g_[i] + c1;
      else if (g_[i] < -c1) pg_[i] = g_[i] + c1;
      else if (g_[i] > c1) pg_[i] = g_[i] - c1;
      else pg_[i] = 0.0;
    }
  }
  const double* steepest() const { return o_.c1 > 0.0 ? pg_.data() : g_.data(); }

  // x = x0 + step d (projected for OWL-QN), allgathered into w; then fx and g there.
  double try_step(const double* x0, double step) {
    for (std::size_t i = 0; i < n_; ++i) x_[i] = x0[i] + step * d_[i];
    if (o_.c1 > 0.0)
      for (std::size_t i = 0; i < n_; ++i) {
        const double orthant = x0[i] != 0.0 ? x0[i] : -pg_[i];
        if (x_[i] * orthant <= 0.0) x_[i] = 0.0;
      }
    r_.gather(x_, w_.data());
    return evaluate();
  }

  SearchResult backtrack(Search kind, const double* x0, double finit, double& fx, double& step);
  SearchResult more_thuente(const double* x0, double finit, double& fx, double& step);
  MinimizerResult minimize(const IterationCallback& callback);

 private:
  const RangeObjective& f_;
  std::vector<double>& w_;         // [F] all weights (every rank)
  const FeatureRanges& r_;
  const MinimizerOptions& o_;
  std::size_t n_;                  // this rank's feature count
  double* x_;                      // [n] this rank's range of w_
  std::vector<double> g_;          // [n] gradient (no L1 term)
  std::vector<double> pg_;         // [n] OWL-QN pseudo-gradient
  std::vector<double> d_;          // [n] search direction
};

SearchResult Run::backtrack(Search kind, const double* x0, double finit, double& fx,
                            double& step) {
  SearchResult result;
  std::vector<double> moved(kind == Search::kOrthantwise ? n_ : 0);  // [n] x - x0
  const double dginit = r_.dot(steepest(), d_.data());
  if (dginit > 0.0) return {0, "direction does not descend"};
  for (int count = 1;; ++count) {
    fx = try_step(x0, step);
    double width = 0.5;
    if (kind == Search::kOrthantwise) {
      for (std::size_t i = 0; i < n_; ++i) moved[i] = x_[i] - x0[i];
      // pg_ is still the pseudo-gradient at x0.
      if (fx <= finit + kFtol * r_.dot(moved.data(), pg_.data())) return {count, ""};
    } else if (fx <= finit + step * kFtol * dginit) {
      const double dg = r_.dot(g_.data(), d_.data());
      if (dg < kWolfe * dginit) width = 2.1;
      else if (kind == Search::kStrongBacktracking && dg > -kWolfe * dginit) width = 0.5;
      else return {count, ""};
    }
    if (step < kMinStep) return {count, "line search minimum step"};
    if (step > kMaxStep) return {count, "line search maximum step"};
    if (count >= o_.max_linesearch) return {count, "line search limit"};
    step *= width;
  }
}

/*
 * One step of More & Thuente's safeguarded interval update (MINPACK-2 dcstep). (stx, fx, dx)
 * is the best step so far, (sty, fy, dy) the other end of the interval, (stp, fp, dp) the
 * trial. Four cases give the next trial stpf from cubic (c) and quadratic/secant (q)
 * interpolants:
 *   1. fp > fx: the minimum is bracketed; take c, or the mean of c and q when q is closer to stx.
 *   2. derivatives of opposite sign: bracketed; of c and the secant q, the one farther from stp.
 *   3. same sign, |dp| decreasing: c if it lies beyond stp, else the nearer end; kept within
 *      0.66 of the bracket when bracketed.
 *   4. same sign, |dp| not decreasing: the cubic through stp and sty, or the step bound.
 */
void interval_step(double& stx, double& fx, double& dx, double& sty, double& fy, double& dy,
                   double& stp, double fp, double dp, bool& brackt, double stpmin,
                   double stpmax) {
  const double sgnd = dp * (dx / std::fabs(dx));
  double stpf;
  if (fp > fx) {
    const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma = s * std::sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
    if (stp < stx) gamma = -gamma;
    const double p = (gamma - dx) + theta, q = ((gamma - dx) + gamma) + dp;
    const double stpc = stx + (p / q) * (stp - stx);
    const double stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
    stpf = std::fabs(stpc - stx) < std::fabs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2.0;
    brackt = true;
  } else if (sgnd < 0.0) {
    const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma = s * std::sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s));
    if (stp > stx) gamma = -gamma;
    const double p = (gamma - dp) + theta, q = ((gamma - dp) + gamma) + dx;
    const double stpc = stp + (p / q) * (stx - stp);
    const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
    stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
    brackt = true;
  } else if (std::fabs(dp) < std::fabs(dx)) {
    const double theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
    const double s = std::max({std::fabs(theta), std::fabs(dx), std::fabs(dp)});
    double gamma =
        s * std::sqrt(std::max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)));
    if (stp > stx) gamma = -gamma;
    const double p = (gamma - dp) + theta, q = (gamma + (dx - dp)) + gamma;
    const double r = p / q;
    const double stpc = r < 0.0 && gamma != 0.0 ? stp + r * (stx - stp)
                        : stp > stx             ? stpmax
                                                : stpmin;
    const double stpq = stp + (dp / (dp - dx)) * (stx - stp);
    if (brackt) {
      stpf = std::fabs(stpc - stp) < std::fabs(stpq - stp) ? stpc : stpq;
      stpf = stp > stx ? std::min(stp + 0.66 * (sty - stp), stpf)
                       : std::max(stp + 0.66 * (sty - stp), stpf);
    } else {
      stpf = std::fabs(stpc - stp) > std::fabs(stpq - stp) ? stpc : stpq;
      stpf = std::max(stpmin, std::min(stpmax, stpf));
    }
  } else if (brackt) {
    const double theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
    const double s = std::max({std::fabs(theta), std::fabs(dy), std::fabs(dp)});
    double gamma = s * std::sqrt((theta / s) * (theta / s) - (dy / s) * (dp / s));
    if (stp > sty) gamma = -gamma;
    const double p = (gamma - dp) + theta, q = ((gamma - dp) + gamma) + dy;
    stpf = stp + (p / q) * (sty - stp);
  } else {
    stpf = stp > stx ? stpmax : stpmin;
  }
  if (fp > fx) {
    sty = stp;
    fy = fp;
    dy = dp;
  } else {
    if (sgnd < 0.0) {
      sty = stx;
      fy = fx;
      dy = dx;
    }
    stx = stp;
    fx = fp;
    dx = dp;
  }
  stp = stpf;
}

/*
 * More-Thuente driver (MINPACK-2 dcsrch): find a step with
 *   f(stp) <= f(0) + ftol stp f'(0)   and   |f'(stp)| <= gtol |f'(0)|.
 * Until a step satisfies f(stp) <= f(0) + ftol stp f'(0) with f'(stp) >= 0 (stage 1), the
 * interval is updated on the auxiliary psi(stp) = f(stp) - f(0) - ftol stp f'(0) when that
 * gives a lower value than f; bisection when the bracket does not shrink by 0.66; unbracketed
 * trials extrapolate to [stp + 1.1 (stp - stx), stp + 4 (stp - stx)].
 */
SearchResult Run::more_thuente(const double* x0, double finit, double& fx, double& step) {
  const double ginit = r_.dot(g_.data(), d_.data());
  if (ginit > 0.0) return {0, "direction does not descend"};
  const double gtest = kFtol * ginit;
  bool brackt = false;
  int stage = 1;
  double width = kMaxStep - kMinStep, width1 = 2.0 * width;
  double stx = 0.0, fxv = finit, gx = ginit;
  double sty = 0.0, fy = finit, gy = ginit;
  double stmin = 0.0, stmax = step + 4.0 * step;
  for (int count = 1;; ++count) {
    fx = try_step(x0, step);
    const double g = r_.dot(g_.data(), d_.data());
    const double ftest = finit + step * gtest;
    if (stage == 1 && fx <= ftest && g >= 0.0) stage = 2;
    if (fx <= ftest && std::fabs(g) <= kGtol * (-ginit)) return {count, ""};
    if (brackt && (step <= stmin || step >= stmax)) return {count, "line search rounding limit"};
    if (brackt && stmax - stmin <= kXtol * stmax) return {count, "line search rounding limit"};
    if (step == kMaxStep && fx <= ftest && g <= gtest) return {count, "line search maximum step"};
    if (step == kMinStep && (fx > ftest || g >= gtest)) return {count, "line search minimum step"};
    if (count >= o_.max_linesearch) return {count, "line search limit"};
    if (stage == 1 && fx <= fxv && fx > ftest) {
      double fm = fx - step * gtest, fxm = fxv - stx * gtest, fym = fy - sty * gtest;
      double gm = g - gtest, gxm = gx - gtest, gym = gy - gtest;
      interval_step(stx, fxm, gxm, sty, fym, gym, step, fm, gm, brackt, stmin, stmax);
      fxv = fxm + stx * gtest;
      fy = fym + sty * gtest;
      gx = gxm + gtest;
      gy = gym + gtest;
    } else {
      interval_step(stx, fxv, gx, sty, fy, gy, step, fx, g, brackt, stmin, stmax);
    }
    if (brackt) {
      if (std::fabs(sty - stx) >= 0.66 * width1) step = stx + 0.5 * (sty - stx);
      width1 = width;
      width = std::fabs(sty - stx);
      stmin = std::min(stx, sty);
      stmax = std::max(stx, sty);
    } else {
      stmin = step + 1.1 * (step - stx);
      stmax = step + 4.0 * (step - stx);
    }
    step = std::min(kMaxStep, std::max(kMinStep, step));
    if (brackt && (step <= stmin || step >= stmax || stmax - stmin <= kXtol * stmax)) step = stx;
  }
}

MinimizerResult Run::minimize(const IterationCallback& callback) {
  MinimizerResult result;
  const std::size_t m = static_cast<std::size_t>(std::max(1, o_.memory));
  const Search kind = o_.c1 > 0.0             ? Search::kOrthantwise
                      : o_.linesearch == 1    ? Search::kBacktracking
                      : o_.linesearch == 2    ? Search::kStrongBacktracking
                                              : Search::kMoreThuente;
  std::vector<double> s(m * n_), y(m * n_);  // [m][n] history pairs (this rank's range)
  std::vector<double> ys(m), alpha(m);       // [m]
  double fx = evaluate();
  if (o_.c1 > 0.0) pseudo_gradient();
  auto norms = [&] {
    const std::vector<double> v = r_.dots({{x_, x_}, {steepest(), steepest()}});
    return std::make_pair(std::sqrt(v[0]), std::sqrt(v[1]));
  };
  auto [xnorm, gnorm] = norms();
  result.objective = fx;
  if (gnorm / std::max(1.0, xnorm) <= o_.epsilon) {
    result.stop_reason = "already minimal";
    return result;
  }
  for (std::size_t i = 0; i < n_; ++i) d_[i] = -steepest()[i];
  double step = 1.0 / gnorm;
  std::vector<double> past(static_cast<std::size_t>(std::max(0, o_.period)));  // f of recent iterations
  if (!past.empty()) past[0] = fx;
  std::size_t end = 0;
  for (int k = 1;; ++k) {
    // The newest slot keeps x0 and g0 during the line search, then becomes s and y.
    double* sk = &s[end * n_];
    double* yk = &y[end * n_];
    std::memcpy(sk, x_, sizeof(double) * n_);
    std::memcpy(yk, g_.data(), sizeof(double) * n_);
    const double finit = fx;
    const SearchResult searched = kind == Search::kMoreThuente
                                      ? more_thuente(sk, finit, fx, step)
                                      : backtrack(kind, sk, finit, fx, step);
    if (!searched.failure.empty()) {
      // Back to the last iterate, as it was.
      std::memcpy(x_, sk, sizeof(double) * n_);
      r_.gather(x_, w_.data());
      std::memcpy(g_.data(), yk, sizeof(double) * n_);
      result.objective = finit;
      result.stop_reason = searched.failure == "line search rounding limit"
                               ? "converged (line search rounding limit)"
                               : searched.failure;
      break;
    }
    if (o_.c1 > 0.0) pseudo_gradient();
    std::tie(xnorm, gnorm) = norms();
    result.iterations = k;
    result.objective = fx;
    MinimizerIteration it;
    it.iteration = k;
    it.objective = fx;
    it.grad_norm = gnorm;
    it.w_norm = xnorm;
    it.step = step;
    it.linesearch_trials = searched.trials;
    for (const double v : w_) it.active += v != 0.0;
    it.w = w_.data();
    if (callback && !callback(it)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
    if (gnorm / std::max(1.0, xnorm) <= o_.epsilon) {
      result.stop_reason = "converged (gradient)";
      break;
    }
    if (!past.empty()) {
      const std::size_t slot = static_cast<std::size_t>(k) % past.size();
      if (static_cast<std::size_t>(k) >= past.size() &&
          std::fabs((past[slot] - fx) / fx) < o_.delta) {
        result.stop_reason = "converged (relative improvement)";
        break;
      }
      past[slot] = fx;
    }
    if (o_.max_iterations != 0 && o_.max_iterations < k + 1) {
      result.stop_reason = "max iterations";
      break;
    }
    for (std::size_t i = 0; i < n_; ++i) {
      sk[i] = x_[i] - sk[i];
      yk[i] = g_[i] - yk[i];
    }
    const std::vector<double> yy = r_.dots({{yk, sk}, {yk, yk}});
    ys[end] = yy[0];
    const std::size_t bound = std::min<std::size_t>(m, static_cast<std::size_t>(k));
    end = (end + 1) % m;
    // Two-loop recursion (formula above), d = -H pg.
    for (std::size_t i = 0; i < n_; ++i) d_[i] = -steepest()[i];
    std::size_t j = end;
    for (std::size_t i = 0; i < bound; ++i) {
      j = (j + m - 1) % m;
      alpha[j] = r_.dot(&s[j * n_], d_.data()) / ys[j];
      const double* yj = &y[j * n_];
      for (std::size_t f = 0; f < n_; ++f) d_[f] += -alpha[j] * yj[f];
    }
    const double scale = yy[0] / yy[1];
    for (std::size_t f = 0; f < n_; ++f) d_[f] *= scale;
    for (std::size_t i = 0; i < bound; ++i) {
      const double beta = r_.dot(&y[j * n_], d_.data()) / ys[j];
      const double* sj = &s[j * n_];
      for (std::size_t f = 0; f < n_; ++f) d_[f] += (alpha[j] - beta) * sj[f];
      j = (j + 1) % m;
    }
    if (o_.c1 > 0.0)
      for (std::size_t i = 0; i < n_; ++i)
        if (d_[i] * pg_[i] >= 0.0) d_[i] = 0.0;
    step = 1.0;
  }
  return result;
}

}  // namespace

MinimizerResult minimize_ranged(const RangeObjective& f, std::vector<double>& w,
                                const FeatureRanges& ranges, const MinimizerOptions& options,
                                const IterationCallback& callback) {
  if (w.empty()) {
    MinimizerResult result;
    result.stop_reason = "no features";
    return result;
  }
  if (w.size() != ranges.size())
    throw InternalError("minimize_ranged: " + std::to_string(w.size()) + " weights for " +
                        std::to_string(ranges.size()) + " features");
  Run run(f, w, ranges, options);
  return run.minimize(callback);
}

}  // namespace septa::crf
