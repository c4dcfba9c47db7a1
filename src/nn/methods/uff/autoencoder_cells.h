// The autoencoder cells: dense (AEFF), denoising (DAEFF) and convolutional (CAEFF).
#pragma once

#include "nn/methods/uff/cell.h"

namespace septa::nn {

// Dense autoencoder: z = relu(W_e x + b_e), x_hat = W_d z + b_d, loss = mean (x_hat - x)^2.
struct AutoencoderCellImpl : CellImpl {
  explicit AutoencoderCellImpl(const CellSpec& spec);
  torch::Tensor encode(const torch::Tensor& x) override;
  torch::Tensor local_loss(const torch::Tensor& x) override;
  std::vector<int64_t> latent_shape() const override { return {spec_.width}; }
  // Reconstruction of x from its (possibly corrupted) input: [N][F] -> [N][F].
  torch::Tensor reconstruct(const torch::Tensor& input);

  int64_t in_features_ = 0;
  torch::nn::Linear encoder_ = nullptr;  // weight [width][F]
  torch::nn::Linear decoder_ = nullptr;  // weight [F][width]
};
TORCH_MODULE(AutoencoderCell);

// Denoising autoencoder: the input is masked (each feature zeroed with probability `noise`,
// the rest kept unscaled), the target is the clean x: loss = mean (dec(enc(mask * x)) - x)^2.
struct DenoisingAutoencoderCellImpl : AutoencoderCellImpl {
  explicit DenoisingAutoencoderCellImpl(const CellSpec& spec) : AutoencoderCellImpl(spec) {}
  torch::Tensor local_loss(const torch::Tensor& x) override;
};
TORCH_MODULE(DenoisingAutoencoderCell);

// Convolutional autoencoder on [C][H][W]:
//   z = relu(conv3x3_s1(x)) -> relu(conv3x3_s2(.))          [width][ceil(H/2)][ceil(W/2)]
//   x_hat = convT3x3_s2(z) -> relu -> conv3x3_s1(.)          [C][H][W]
//   loss = mean (x_hat - x)^2
struct ConvAutoencoderCellImpl : CellImpl {
  explicit ConvAutoencoderCellImpl(const CellSpec& spec);
  torch::Tensor encode(const torch::Tensor& x) override;
  torch::Tensor local_loss(const torch::Tensor& x) override;
  std::vector<int64_t> latent_shape() const override;

  torch::nn::Conv2d encode1_ = nullptr;           // [width][C][3][3], stride 1
  torch::nn::Conv2d encode2_ = nullptr;           // [width][width][3][3], stride 2
  torch::nn::ConvTranspose2d decode1_ = nullptr;  // [width][width][3][3], stride 2
  torch::nn::Conv2d decode2_ = nullptr;           // [C][width][3][3], stride 1
};
TORCH_MODULE(ConvAutoencoderCell);

}  // namespace septa::nn
