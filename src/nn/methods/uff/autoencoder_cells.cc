// Autoencoder cells (AEFF, DAEFF, CAEFF of the UFF paper: Hwang, Seo, Jung 2024).
#include "nn/methods/uff/autoencoder_cells.h"

#include "septa/error.h"

namespace septa::nn {
namespace {

// Output size of a 3x3 stride-2 padding-1 convolution.
int64_t halved(int64_t size) { return (size + 1) / 2; }

}  // namespace

AutoencoderCellImpl::AutoencoderCellImpl(const CellSpec& spec) : CellImpl(spec) {
  in_features_ = product(spec.input_shape);
  encoder_ = register_module("encoder", torch::nn::Linear(in_features_, spec.width));
  decoder_ = register_module("decoder", torch::nn::Linear(spec.width, in_features_));
}

torch::Tensor AutoencoderCellImpl::encode(const torch::Tensor& x) {
  return torch::relu(encoder_->forward(x.reshape({x.size(0), in_features_})));
}

torch::Tensor AutoencoderCellImpl::reconstruct(const torch::Tensor& input) {
  return decoder_->forward(encode(input));
}

torch::Tensor AutoencoderCellImpl::local_loss(const torch::Tensor& x) {
  const torch::Tensor flat = x.reshape({x.size(0), in_features_});  // [N][F]
  return torch::mse_loss(reconstruct(flat), flat);
}

torch::Tensor DenoisingAutoencoderCellImpl::local_loss(const torch::Tensor& x) {
  const torch::Tensor flat = x.reshape({x.size(0), in_features_});  // [N][F]
  const torch::Tensor keep = torch::rand(flat.sizes(), generator_, flat.options().device(torch::kCPU))
                                 .ge(spec_.noise)
                                 .to(flat.device(), flat.scalar_type());  // [N][F] in {0, 1}
  return torch::mse_loss(reconstruct(flat * keep), flat);
}

ConvAutoencoderCellImpl::ConvAutoencoderCellImpl(const CellSpec& spec) : CellImpl(spec) {
  if (spec.input_shape.size() != 3)
    throw OptionError("a conv cell needs a [C][H][W] input, got rank " +
                      std::to_string(spec.input_shape.size()));
  const int64_t channels = spec.input_shape[0];
  const int64_t height = spec.input_shape[1];
  const int64_t width = spec.input_shape[2];
  // convT output = 2 * in - 1 + output_padding (kernel 3, stride 2, padding 1).
  const int64_t pad_h = height - (2 * halved(height) - 1);
  const int64_t pad_w = width - (2 * halved(width) - 1);
  using torch::nn::Conv2dOptions;
  encode1_ = register_module(
      "encode1", torch::nn::Conv2d(Conv2dOptions(channels, spec.width, /*kernel_size=*/3)
                                       .stride(1).padding(1)));
  encode2_ = register_module(
      "encode2", torch::nn::Conv2d(Conv2dOptions(spec.width, spec.width, /*kernel_size=*/3)
                                       .stride(2).padding(1)));
  decode1_ = register_module(
      "decode1", torch::nn::ConvTranspose2d(
                     torch::nn::ConvTranspose2dOptions(spec.width, spec.width, /*kernel_size=*/3)
                         .stride(2).padding(1).output_padding({pad_h, pad_w})));
  decode2_ = register_module(
      "decode2", torch::nn::Conv2d(Conv2dOptions(spec.width, channels, /*kernel_size=*/3)
                                       .stride(1).padding(1)));
}

std::vector<int64_t> ConvAutoencoderCellImpl::latent_shape() const {
  return {spec_.width, halved(spec_.input_shape[1]), halved(spec_.input_shape[2])};
}

torch::Tensor ConvAutoencoderCellImpl::encode(const torch::Tensor& x) {
  const auto& s = spec_.input_shape;
  const torch::Tensor image = x.reshape({x.size(0), s[0], s[1], s[2]});  // [N][C][H][W]
  return torch::relu(encode2_->forward(torch::relu(encode1_->forward(image))));
}

torch::Tensor ConvAutoencoderCellImpl::local_loss(const torch::Tensor& x) {
  const auto& s = spec_.input_shape;
  const torch::Tensor image = x.reshape({x.size(0), s[0], s[1], s[2]});  // [N][C][H][W]
  const torch::Tensor rebuilt =
      decode2_->forward(torch::relu(decode1_->forward(encode(image))));
  return torch::mse_loss(rebuilt, image);
}

}  // namespace septa::nn
