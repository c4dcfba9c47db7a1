#include "util/progress_line.h"

#include <cstdio>

namespace septa::util {
namespace {

// printf into a std::string (the lines are short; longer ones are cut, never overrun).
template <typename... Args>
std::string printed(const char* format, Args... args) {
  char line[512];
  std::snprintf(line, sizeof line, format, args...);
  return line;
}

}  // namespace

std::string format_iteration(const IterationProgress& p) {
  const std::string phase(p.phase);
  std::string text = printed("%-8s iter %4d  objective %.6g  |g| %.4g  active %zu  %.2fs",
                             phase.c_str(), p.iteration, p.objective, p.grad_norm,
                             p.active_features, p.seconds);
  if (!std::isnan(p.dev_accuracy))
    text += std::isnan(p.dev_f1) ? printed("  dev acc %.2f", p.dev_accuracy)
                                 : printed("  dev acc %.2f F1 %.2f", p.dev_accuracy, p.dev_f1);
  return text;
}

std::string format_kept_iteration(int iteration, std::string_view metric, double score) {
  return printed("kept iteration %d: best dev ", iteration) + std::string(metric) +
         printed(" %.2f", score);
}

std::string format_epoch(std::string_view stage, int epoch, int epochs,
                         const std::map<std::string, double>& metrics, double seconds) {
  std::string text(stage);
  if (epochs == 0) return text;
  text = "[" + text + "]" + printed(" epoch %d/%d", epoch, epochs);
  for (const auto& [name, value] : metrics) text += "  " + name + printed(" %.5f", value);
  return text + printed("  %.1fs", seconds);
}

}  // namespace septa::util
