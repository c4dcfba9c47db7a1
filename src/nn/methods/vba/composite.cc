// The Fashion-MNIST composite (see composite.h).
#include "nn/methods/vba/composite.h"

#include <cmath>

#include "nn/methods/vba/components.h"
#include "nn/methods/vba/data.h"
#include "septa/error.h"

namespace septa::nn::vba {
namespace {

namespace F = torch::nn::functional;

constexpr double kMaxDegrees = 30.0;
constexpr int64_t kClasses = 10;

// Random rows of class `c` ([n] int64 indices into images).
torch::Tensor rows_of_class(const Dataset& images, const torch::Tensor& classes, torch::Generator generator) {
  const int64_t n = classes.size(0);
  torch::Tensor out = torch::empty({n}, torch::kInt64);
  for (int64_t c = 0; c < kClasses; ++c) {
    const torch::Tensor pool = (images.labels == c).nonzero().reshape({-1});  // [P]
    const torch::Tensor where = (classes == c).nonzero().reshape({-1});
    if (where.numel() == 0) continue;
    if (pool.numel() == 0) throw FormatError("the image set has no image of class " + std::to_string(c));
    const torch::Tensor pick = torch::randint(pool.size(0), {where.size(0)}, generator, torch::kInt64);
    out.index_put_({where}, pool.index_select(0, pick));
  }
  return out;
}

// Rotates images [B][784] by U(-30, 30) degrees each: [B][1][28][28].
torch::Tensor rotate(const torch::Tensor& images, torch::Generator generator) {
  const int64_t b = images.size(0);
  const torch::Tensor degrees = (torch::rand({b}, generator) * 2.0 - 1.0) * kMaxDegrees;
  const torch::Tensor a = degrees * (M_PI / 180.0);
  const torch::Tensor c = torch::cos(a), s = torch::sin(a), zero = torch::zeros({b});
  // theta [B][2][3]: output coordinates -> input coordinates (a rotation about the centre)
  const torch::Tensor theta = torch::stack({torch::stack({c, -s, zero}, 1), torch::stack({s, c, zero}, 1)}, 1);
  const torch::Tensor grid = F::affine_grid(theta, {b, 1, kSide, kSide}, /*align_corners=*/false);
  return F::grid_sample(images.reshape({b, 1, kSide, kSide}), grid,
                        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
}

Composite assemble(const Dataset& images, const torch::Tensor& x_class, const torch::Tensor& z_class,
                   torch::Generator generator) {
  const torch::Tensor inputs = images.inputs.to(torch::kCPU);
  const torch::Tensor z = inputs.index_select(0, rows_of_class(images, z_class, generator));
  const torch::Tensor x = inputs.index_select(0, rows_of_class(images, x_class, generator));
  const torch::Tensor y = compose_halves(z, x, generator);
  Composite out;
  out.data = {binarise(x, generator), binarise(y, generator), binarise(z, generator)};
  out.x_class = x_class;
  out.z_class = z_class;
  return out;
}

}  // namespace

torch::Tensor compose_halves(const torch::Tensor& left, const torch::Tensor& right,
                             torch::Generator generator) {
  const int64_t b = left.size(0);
  // squeeze 28 columns to 14: mean of each column pair; [B][1][28][14]
  auto squeeze = [&](const torch::Tensor& rotated) {
    return rotated.reshape({b, 1, kSide, kSide / 2, 2}).mean(-1);
  };
  const torch::Tensor l = squeeze(rotate(left, generator));
  const torch::Tensor r = squeeze(rotate(right, generator));
  return torch::cat({l, r}, /*dim=*/3).reshape({b, kPixels}).clamp(0.0, 1.0);
}

torch::Tensor left_half(const torch::Tensor& images) {
  return images.reshape({images.size(0), kSide, kSide}).narrow(2, 0, kSide / 2).reshape({images.size(0), -1});
}

torch::Tensor binarise(const torch::Tensor& intensities, torch::Generator generator) {
  return (torch::rand(intensities.sizes(), generator) < intensities).to(torch::kFloat32);
}

Composite observational_composite(const Dataset& images, int64_t n, torch::Generator generator) {
  const torch::Tensor z_class = torch::randint(kClasses, {n}, generator, torch::kInt64);
  return assemble(images, (z_class + 1).remainder(kClasses), z_class, generator);
}

Composite cell_composite(const Dataset& images, int64_t x_class, int64_t z_class, int64_t n,
                         torch::Generator generator) {
  return assemble(images, torch::full({n}, x_class, torch::kInt64),
                  torch::full({n}, z_class, torch::kInt64), generator);
}

void generate_fashion_composite(const GenerateConfig& config) {
  const Split split = load_idx_split(config.images);
  torch::Generator generator = cpu_generator(config.seed);
  const Composite train = observational_composite(split.train, config.n, generator);
  const Composite test = observational_composite(split.test, config.test_n, generator);
  for (const auto& [name, part] : {std::pair<const char*, const Composite*>{"train", &train}, {"test", &test}}) {
    const std::string dir = config.out + "/" + name;
    write_triples(dir, part->data);
    write_tensor(dir + "/z_class.npy", part->z_class.to(torch::kFloat32));
    write_tensor(dir + "/x_class.npy", part->x_class.to(torch::kFloat32));
  }
}

}  // namespace septa::nn::vba
