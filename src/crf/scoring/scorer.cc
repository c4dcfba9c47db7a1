// Helpers shared by every scorer: feature listings, pair checks, dumps.
#include "crf/scoring/scorer.h"

#include <algorithm>
#include <cmath>
#include <iomanip>

namespace septa::crf {

std::vector<WeightedFeature> list_features(const SparseFeatures& features, const double* weights,
                                           const Encoder& encoder,
                                           const std::vector<std::string>& class_names) {
  std::vector<WeightedFeature> out;
  out.reserve(features.size());
  for (std::size_t a = 0; a < features.A; ++a)
    for (uint32_t f = features.offsets[a]; f < features.offsets[a + 1]; ++f)
      out.push_back({encoder.attributes().name(static_cast<int32_t>(a)),
                     class_names[features.classes[f]], weights[f]});
  return out;
}

void check_label_pairs(const std::vector<int32_t>& first, const std::vector<int32_t>& second,
                       std::size_t L, ByteReader& in) {
  if (first.size() != second.size()) in.fail("label pair lists differ in length");
  for (std::size_t k = 0; k < first.size(); ++k)
    if (first[k] < 0 || second[k] < 0 || static_cast<std::size_t>(first[k]) >= L ||
        static_cast<std::size_t>(second[k]) >= L)
      in.fail("label pair out of range");
}

void dump_feature(std::ostream& out, const WeightedFeature& feature) {
  out << "  " << std::setw(10) << std::fixed << std::setprecision(6) << feature.weight << "  "
      << feature.from << " -> " << feature.to << "\n";
}

void dump_features(std::ostream& out, const std::vector<WeightedFeature>& features,
                   bool skip_zero) {
  for (const WeightedFeature& f : features)
    if (!skip_zero || f.weight != 0.0) dump_feature(out, f);
}

void dump_top_features(std::ostream& out, std::vector<WeightedFeature> features,
                       std::size_t top) {
  const std::size_t n = std::min(top, features.size());
  std::partial_sort(features.begin(), features.begin() + static_cast<std::ptrdiff_t>(n),
                    features.end(), [](const WeightedFeature& a, const WeightedFeature& b) {
                      return std::fabs(a.weight) > std::fabs(b.weight);
                    });
  for (std::size_t i = 0; i < n; ++i) dump_feature(out, features[i]);
}

}  // namespace septa::crf
