// The width grid and Scala's stable sampling.
#include "nn/methods/scala/grid.h"

#include <cmath>
#include <sstream>

#include "septa/error.h"

namespace septa::nn {

std::string ratio_text(double r) {
  std::ostringstream out;
  out.precision(10);
  out << r;
  return out.str();
}

WidthGrid::WidthGrid(int64_t full_width, double s, double eps, int64_t heads)
    : full_(full_width), s_(s), eps_(eps) {
  if (full_width < 1 || heads < 1) throw OptionError("--dim and --heads must be >= 1");
  if (!(s > 0 && s <= 1)) throw OptionError("--s expects a number in (0, 1], got " + ratio_text(s));
  if (s < 1 && !(eps > 0 && eps <= 1 - s + 1e-12))
    throw OptionError("--eps expects a number in (0, 1 - s] = (0, " + ratio_text(1 - s) +
                      "], got " + ratio_text(eps));
  const double steps = s < 1 ? (1 - s) / eps : 0;
  const int64_t n = std::llround(steps);
  if (std::fabs(steps - static_cast<double>(n)) > 1e-9)
    throw OptionError("--eps " + ratio_text(eps) + " does not divide 1 - s = " + ratio_text(1 - s) +
                      " into whole steps");
  for (int64_t k = 0; k <= n; ++k) {
    const double r = s + static_cast<double>(k) * eps;
    const double channels = r * static_cast<double>(full_width);
    const int64_t d = std::llround(channels);
    if (std::fabs(channels - static_cast<double>(d)) > 1e-6 || d % heads != 0 || d < heads)
      throw OptionError("width r = " + ratio_text(r) + " of --dim " + std::to_string(full_width) +
                        " gives " + ratio_text(channels) + " channels, not a whole multiple of --heads " +
                        std::to_string(heads) + " (choose --dim, --s and --eps so that every r*D is)");
    widths_.push_back(d);
  }
}

std::vector<double> WidthGrid::ratios() const {
  std::vector<double> out;
  for (int64_t d : widths_) out.push_back(static_cast<double>(d) / static_cast<double>(full_));
  return out;
}

bool WidthGrid::on_grid(double r) const {
  const double channels = r * static_cast<double>(full_);
  for (int64_t d : widths_)
    if (std::fabs(channels - static_cast<double>(d)) < 1e-9) return true;
  return false;
}

std::pair<double, double> WidthGrid::neighbours(double r) const {
  const std::vector<double> all = ratios();
  if (r <= all.front()) return {all.front(), all.front()};
  if (r >= all.back()) return {all.back(), all.back()};
  size_t k = 0;
  while (all[k + 1] < r) ++k;
  return {all[k], all[k + 1]};
}

int64_t WidthGrid::width_of(double r) const {
  const double channels = r * static_cast<double>(full_);
  for (int64_t d : widths_)
    if (std::fabs(channels - static_cast<double>(d)) < 1e-9) return d;
  const auto [below, above] = neighbours(r);
  std::string nearest = below == above ? "is " + ratio_text(below)
                                       : "are " + ratio_text(below) + " and " + ratio_text(above);
  throw OptionError("width r = " + ratio_text(r) + " is not on the grid (s = " + ratio_text(s_) +
                    ", eps = " + ratio_text(eps_) + ", " + std::to_string(size()) +
                    " widths; sub-networks off the grid are untrained); the nearest grid width" +
                    (below == above ? " " : "s ") + nearest);
}

std::pair<int64_t, int64_t> WidthGrid::stable_pair(const UniformInt& uniform) const {
  const int64_t x = size();
  if (x < 4) throw OptionError("the sandwich rule needs at least 4 grid widths, --s/--eps give " +
                               std::to_string(x));
  // Grid index of mid = (s + l) / 2, rounded up: m1 in [1, mid - 1], m2 in [mid, X - 2].
  const int64_t mid = x / 2;  // = ceil((X - 1) / 2)
  const int64_t m1 = uniform(1, mid - 1);
  const int64_t m2 = uniform(mid, x - 2);
  return {widths_[m1], widths_[m2]};
}

std::pair<int64_t, int64_t> WidthGrid::uniform_pair(const UniformInt& uniform) const {
  const int64_t x = size();
  if (x < 4) throw OptionError("the sandwich rule needs at least 4 grid widths, --s/--eps give " +
                               std::to_string(x));
  const int64_t a = uniform(1, x - 2);
  int64_t b = uniform(1, x - 3);  // a distinct second index: skip a
  if (b >= a) ++b;
  return {widths_[std::min(a, b)], widths_[std::max(a, b)]};
}

std::string WidthGrid::describe() const {
  std::string out;
  for (double r : ratios()) out += (out.empty() ? "" : ",") + ratio_text(r);
  return out;
}

}  // namespace septa::nn
