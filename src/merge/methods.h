// The merge methods on float32 buffers of one tensor (n elements each), as mergekit defines
// them (mergekit/merge_methods/generalized_task_arithmetic.py, linear.py, slerp.py,
// sparsify.py). Computation is float32 like mergekit's on CPU, in a fixed order, so a tensor's
// result does not depend on threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace septa::merge {

// TIES's trim (mergekit sparsify.magnitude without rescale): keeps the k entries of d with the
// largest |d| and sets the others to 0. Ties at the k-th magnitude keep the lowest indices
// (mergekit's argsort leaves that order unspecified). k >= n keeps everything.
void trim_to_top_k(float* d, std::size_t n, std::size_t k);  // d: [n]

// DARE (mergekit sparsify.bernoulli with rescale): keeps each entry with probability
// `density`, dividing it by `density`, drops it (0) otherwise. Entry i's draw is a hash of
// (seed, stream, i) (SplitMix64), so the result does not depend on threads or tensor order;
// `stream` separates tensors and models (see dare_stream). density >= 1 keeps everything.
void dare_drop_and_rescale(float* d, std::size_t n, double density, std::uint64_t seed,
                           std::uint64_t stream);
// The same on entries [begin, begin + len) of a tensor, held in d[0, len).
void dare_drop_and_rescale_range(float* d, std::size_t begin, std::size_t len, double density,
                                 std::uint64_t seed, std::uint64_t stream);
// The stream of model `model_index` (its position in the config's models) for tensor `name`.
std::uint64_t dare_stream(std::string_view tensor_name, std::size_t model_index);

// Task-vector mixing (mergekit GeneralizedTaskArithmeticMerge.execute), per entry i:
//   wd_t = w_t * d_t[i]
//   consensus (TIES): elected = +1 if sum_t wd_t >= 0 else -1
//                     mask_t = (sign(wd_t) == elected)     (zeros never vote: sign(0) = 0)
//                     mixed = sum_t wd_t mask_t, divisor = sum_t w_t mask_t  (0 -> 1)
//   otherwise:        mixed = sum_t wd_t,        divisor = sum_t w_t      (|.| < 1e-8 -> 1)
//   normalize: mixed /= divisor; lambda != 1: mixed *= lambda
//   out[i] = base[i] + mixed
void mix_task_vectors(const float* base, const std::vector<const float*>& deltas,
                      const std::vector<float>& weights, bool consensus, bool normalize,
                      float lambda, float* out, std::size_t n);
// mix_task_vectors on one block of len <= kMixBlock entries: deltas[t] and weights[t] for
// t < m; `total` is the sum of the weights with |total| < 1e-8 replaced by 1.
constexpr std::size_t kMixBlock = 2048;
void mix_block(const float* base, const float* const* deltas, const float* weights, std::size_t m,
               bool consensus, bool normalize, float lambda, float total, float* out, std::size_t len);
float mix_total_weight(const float* weights, std::size_t m);

// out = sum_t w_t x_t, divided by sum_t w_t when normalize (mergekit linear.py).
void linear_combination(const std::vector<const float*>& xs, const std::vector<float>& weights,
                        bool normalize, float* out, std::size_t n);

// mergekit slerp.py: v0, v1 normalised (when their norm exceeds 1e-8); dot = <v0, v1>; when
// |dot| > 0.9995 out = (1 - t) v0 + t v1 (lerp of the originals); otherwise theta = acos(dot),
// out = sin((1 - t) theta) / sin(theta) v0 + sin(t theta) / sin(theta) v1 (originals). Norms
// and dot products accumulate in double.
void slerp(double t, const float* v0, const float* v1, float* out, std::size_t n);

}  // namespace septa::merge
