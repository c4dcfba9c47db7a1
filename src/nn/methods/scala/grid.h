// The width grid of a slimmable network (Scala, Zhang et al. NeurIPS 2024, section 3):
// ratios r_k = s + k * eps for k = 0..X-1, X = (l - s) / eps + 1, l = 1. Each ratio is stored as
// an exact integer channel count d_k = r_k * D of the full width D, so "on the grid" is an
// integer comparison and never a floating-point guess. No libtorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace septa::nn {

class WidthGrid {
 public:
  // OptionError naming --s / --eps when s is not in (0, 1], eps not in (0, 1 - s] (unless s = 1),
  // (1 - s) / eps is not an integer, or some r_k * D is not a whole number of channels divisible
  // by `heads` (every head keeps the same head_dim at a width).
  WidthGrid(int64_t full_width, double s, double eps, int64_t heads);

  int64_t full_width() const { return full_; }  // D
  double s() const { return s_; }
  double eps() const { return eps_; }
  // d_0 < d_1 < ... < d_{X-1} = D  (channels)
  const std::vector<int64_t>& widths() const { return widths_; }
  std::vector<double> ratios() const;  // r_k = d_k / D
  int64_t smallest() const { return widths_.front(); }
  int64_t largest() const { return widths_.back(); }
  int64_t size() const { return static_cast<int64_t>(widths_.size()); }  // X

  // The channel count of ratio r when r * D is within 1e-9 of a grid width; otherwise OptionError
  // "width r = 0.4 is not on the grid (s = 0.25, eps = 0.0625, 13 widths); the nearest grid widths
  // are 0.375 and 0.4375".
  int64_t width_of(double r) const;
  bool on_grid(double r) const;
  // The grid ratios just below and above r (the same one twice when r is outside [s, 1]).
  std::pair<double, double> neighbours(double r) const;

  // A uniform integer in [lo, hi] (both included): the caller's random source.
  using UniformInt = std::function<int64_t(int64_t lo, int64_t hi)>;

  // Stable sampling (Scala code, `mid = (s + l) / 2`):
  //   m2 = randint(mid / eps, l / eps - 1) * eps          (upper half, never l)
  //   m1 = randint(s / eps + 1, mid / eps - 1) * eps      (lower half, never s)
  // with mid / eps rounded up so that m1 < mid <= m2. Returns the channel counts {m1, m2},
  // m1 < m2, neither s nor l. Needs at least 4 grid widths (OptionError otherwise).
  std::pair<int64_t, int64_t> stable_pair(const UniformInt& uniform) const;
  // Without stable sampling (the "no SS" ablation, and US-Net): two distinct interior widths
  // drawn uniformly, returned sorted. Needs at least 4 grid widths.
  std::pair<int64_t, int64_t> uniform_pair(const UniformInt& uniform) const;

  // "0.25,0.3125,...,1"
  std::string describe() const;

 private:
  int64_t full_;
  double s_, eps_;
  std::vector<int64_t> widths_;
};

// Shortest decimal text of a ratio: 0.25 -> "0.25", 0.3125 -> "0.3125".
std::string ratio_text(double r);

}  // namespace septa::nn
