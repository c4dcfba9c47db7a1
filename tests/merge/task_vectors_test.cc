// The fused task-vector kernel against the reference steps of methods.h on whole float32
// tensors: byte-identical outputs for every method, dtype mix and trim size, including ties at
// the threshold that span many blocks.
#include "merge/task_vectors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "merge/methods.h"
#include "septa/merge.h"

namespace septa::merge {
namespace {

using safetensors::Dtype;

std::string encode(Dtype dtype, const std::vector<float>& values) {
  std::string bytes(values.size() * safetensors::dtype_size(dtype), '\0');
  safetensors::from_f32(dtype, values.data(), values.size(), bytes.data());
  return bytes;
}

std::vector<float> decode(Dtype dtype, const std::string& bytes, std::size_t n) {
  std::vector<float> values(n);
  safetensors::to_f32(dtype, bytes.data(), n, values.data());
  return values;
}

// Values whose task vectors have many equal magnitudes (a coarse grid) or spread over binades.
std::vector<float> sample(std::mt19937& rng, std::size_t n, int kind, const std::vector<float>* near) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float base = near ? (*near)[i] : 0.0f;
    switch (kind) {
      case 0: v[i] = base + 0.25f * static_cast<float>(static_cast<int>(rng() % 9) - 4); break;
      case 1: v[i] = base + std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), static_cast<int>(rng() % 30) - 20); break;
      default: v[i] = base + 0.002f * std::uniform_real_distribution<float>(-1, 1)(rng);
    }
  }
  return v;
}

TEST(TaskVectorKernel, MatchesTheReferenceStepsBitForBit) {
  std::mt19937 rng(5);
  const Dtype dtypes[] = {Dtype::kF16, Dtype::kBF16, Dtype::kF32};
  const Method methods[] = {Method::kTaskArithmetic, Method::kTies, Method::kDareLinear, Method::kDareTies};
  for (int trial = 0; trial < 160; ++trial) {
    const std::size_t sizes[] = {0, 1, 7, 2047, 2048, 2049, 6000, 20000};
    const std::size_t n = sizes[rng() % 8];
    const std::size_t m = 1 + rng() % 4;
    const Method method = methods[trial % 4];
    const int kind = static_cast<int>(rng() % 3);
    const Dtype base_dtype = dtypes[rng() % 3], out_dtype = dtypes[rng() % 3];
    std::vector<float> base = decode(base_dtype, encode(base_dtype, sample(rng, n, 2, nullptr)), n);
    const std::string base_bytes = encode(base_dtype, base);

    std::vector<std::string> bytes(m);
    std::vector<TaskVectorInput> inputs(m);
    std::vector<std::vector<float>> deltas(m);
    std::vector<float> weights(m);
    TaskVectorOptions options;
    options.trim = method == Method::kTies;
    options.dare = method == Method::kDareLinear || method == Method::kDareTies;
    options.consensus = method == Method::kTies || method == Method::kDareTies;
    options.normalize = rng() % 2 == 0;
    options.lambda = rng() % 3 == 0 ? 0.7f : 1.0f;
    options.seed = rng();
    for (std::size_t t = 0; t < m; ++t) {
      const Dtype dtype = dtypes[rng() % 3];
      bytes[t] = encode(dtype, sample(rng, n, kind, &base));
      inputs[t].values = {dtype, bytes[t].data()};
      inputs[t].weight = weights[t] = rng() % 5 == 0 ? -0.5f : 0.25f * static_cast<float>(1 + rng() % 4);
      inputs[t].keep = rng() % 4 == 0 ? n : rng() % (n + 1);
      inputs[t].density = rng() % 4 == 0 ? 1.0 : 0.1 + 0.8 * (rng() % 100) / 100.0;
      inputs[t].stream = dare_stream("w", t);
      // The reference: whole float32 tensors through methods.h.
      deltas[t] = decode(dtype, bytes[t], n);
      for (std::size_t i = 0; i < n; ++i) deltas[t][i] -= base[i];
      if (options.trim) trim_to_top_k(deltas[t].data(), n, inputs[t].keep);
      if (options.dare) dare_drop_and_rescale(deltas[t].data(), n, inputs[t].density, options.seed, inputs[t].stream);
    }
    std::vector<const float*> pointers;
    for (const auto& d : deltas) pointers.push_back(d.data());
    std::vector<float> mixed(n);
    mix_task_vectors(base.data(), pointers, weights, options.consensus, options.normalize, options.lambda,
                     mixed.data(), n);
    const std::string expected = encode(out_dtype, mixed);

    std::string got(expected.size(), 'U');
    TaskVectorScratch scratch;
    merge_task_vectors({base_dtype, base_bytes.data()}, inputs, options, n, out_dtype, got.data(), scratch);
    ASSERT_EQ(got, expected) << "trial " << trial << " n=" << n << " m=" << m << " kind=" << kind;
  }
}

// Ties at the threshold in every block: only some of them stay, the first ones in index order.
TEST(TaskVectorKernel, TiesAcrossBlocksKeepTheLowestIndices) {
  const std::size_t n = 10000;
  std::vector<float> base(n, 0.0f), model(n);
  for (std::size_t i = 0; i < n; ++i) model[i] = i % 2 ? 1.0f : -1.0f;  // all |d| equal
  model[123] = 3.0f;
  const std::string base_bytes = encode(Dtype::kF32, base), model_bytes = encode(Dtype::kF32, model);
  TaskVectorInput input;
  input.values = {Dtype::kF32, model_bytes.data()};
  input.keep = 5001;
  TaskVectorOptions options;
  options.trim = options.consensus = options.normalize = true;
  std::vector<float> out(n);
  TaskVectorScratch scratch;
  merge_task_vectors({Dtype::kF32, base_bytes.data()}, {input}, options, n, Dtype::kF32, out.data(), scratch);
  // Entry 123 and the first 5000 others stay (indices 0..5000 without 123).
  for (std::size_t i = 0; i < n; ++i) {
    const bool kept = i == 123 || i <= 5000;
    ASSERT_EQ(out[i], kept ? model[i] : 0.0f) << i;
  }
}

}  // namespace
}  // namespace septa::merge

namespace septa::merge {
namespace {

// TIES on one tensor through the kernel with the given sample_from, and through the reference.
struct TiesCase {
  std::vector<float> base;
  std::vector<std::vector<float>> models;
  std::vector<std::size_t> keep;
  std::vector<float> weights;
};

std::string kernel_ties(const TiesCase& c, std::size_t sample_from, TaskVectorScratch& scratch) {
  const std::size_t n = c.base.size(), m = c.models.size();
  const std::string base_bytes = encode(Dtype::kF16, c.base);
  std::vector<std::string> bytes(m);
  std::vector<TaskVectorInput> inputs(m);
  for (std::size_t t = 0; t < m; ++t) {
    bytes[t] = encode(Dtype::kF16, c.models[t]);
    inputs[t].values = {Dtype::kF16, bytes[t].data()};
    inputs[t].weight = c.weights[t];
    inputs[t].keep = c.keep[t];
  }
  TaskVectorOptions options;
  options.trim = options.consensus = options.normalize = true;
  options.sample_from = sample_from;
  std::string out(2 * n, 'U');
  merge_task_vectors({Dtype::kF16, base_bytes.data()}, inputs, options, n, Dtype::kF16, out.data(), scratch);
  return out;
}

std::string reference_ties(const TiesCase& c) {
  const std::size_t n = c.base.size(), m = c.models.size();
  const std::vector<float> base = decode(Dtype::kF16, encode(Dtype::kF16, c.base), n);
  std::vector<std::vector<float>> deltas(m);
  std::vector<const float*> pointers;
  for (std::size_t t = 0; t < m; ++t) {
    deltas[t] = decode(Dtype::kF16, encode(Dtype::kF16, c.models[t]), n);
    for (std::size_t i = 0; i < n; ++i) deltas[t][i] -= base[i];
    trim_to_top_k(deltas[t].data(), n, c.keep[t]);
    pointers.push_back(deltas[t].data());
  }
  std::vector<float> mixed(n);
  mix_task_vectors(base.data(), pointers, c.weights, true, true, 1.0f, mixed.data(), n);
  return encode(Dtype::kF16, mixed);
}

// The sampled bracket (sample_from = 0) gives the bytes of the full histogram and of the
// reference, on tensors past the sample size, for every density, magnitude spread and tie count.
class SampledBrackets : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = set_bracket_simd(GetParam()); }
  void TearDown() override { set_bracket_simd(previous_); }
  bool previous_ = true;
};

TEST_P(SampledBrackets, MatchTheFullHistogramAndTheReference) {
  std::mt19937 rng(11);
  TaskVectorScratch sampled, full;
  for (int trial = 0; trial < 40; ++trial) {
    const std::size_t sizes[] = {kSampleRuns * kSampleRun, 5000, 20000, 70001};
    const std::size_t n = sizes[trial % 4];
    const std::size_t m = 1 + rng() % 3;
    const int kind = static_cast<int>(rng() % 3);
    TiesCase c;
    c.base = sample(rng, n, 2, nullptr);
    for (std::size_t t = 0; t < m; ++t) {
      c.models.push_back(sample(rng, n, kind, &c.base));
      const std::size_t keeps[] = {1, n / 100, n / 2, n - 1, n, 1 + rng() % n};
      c.keep.push_back(keeps[rng() % 6]);
      c.weights.push_back(0.25f * static_cast<float>(1 + rng() % 4));
    }
    const std::string expected = reference_ties(c);
    ASSERT_EQ(kernel_ties(c, 0, sampled), expected) << "trial " << trial << " n=" << n << " kind=" << kind;
    ASSERT_EQ(kernel_ties(c, static_cast<std::size_t>(-1), full), expected) << "trial " << trial;
  }
  EXPECT_GT(sampled.brackets, 40u);
  EXPECT_EQ(full.brackets, 0u);
}

INSTANTIATE_TEST_SUITE_P(Paths, SampledBrackets, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Simd" : "Portable"; });

// Samples that misrepresent the tensor: the large task-vector entries all lie between the
// sampled runs (the bracket sits too low), or all inside them (too high). The kernel notices
// that the k-th magnitude is outside the bracket and takes the full histogram: same bytes.
TEST(TaskVectorKernel, BracketMissesFallBackToTheFullHistogram) {
  const std::size_t n = 40000;
  for (const bool large_outside_runs : {true, false}) {
    std::vector<bool> sampled_entry(n, false);
    for (std::size_t j = 0; j < kSampleRuns; ++j) {
      const std::size_t start = j * (n - kSampleRun) / (kSampleRuns - 1);
      for (std::size_t i = 0; i < kSampleRun; ++i) sampled_entry[start + i] = true;
    }
    TiesCase c;
    c.base.assign(n, 0.0f);
    std::vector<float> model(n);
    for (std::size_t i = 0; i < n; ++i) {
      const bool large = sampled_entry[i] != large_outside_runs;
      const float magnitude = (large ? 1.0f : 0.01f) * (1.0f + static_cast<float>(i % 97) / 97.0f);
      model[i] = i % 3 ? magnitude : -magnitude;
    }
    c.models = {model};
    c.keep = {n / 2};
    c.weights = {1.0f};
    TaskVectorScratch scratch;
    EXPECT_EQ(kernel_ties(c, 0, scratch), reference_ties(c)) << large_outside_runs;
    EXPECT_EQ(scratch.brackets, 1u);
    EXPECT_EQ(scratch.bracket_misses, 1u) << large_outside_runs;
  }
}

}  // namespace
}  // namespace septa::merge
