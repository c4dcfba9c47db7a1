// One optimisation step of the translation models with few kernel launches: gradient clipping
// by the global L2 norm and Adam, each over all parameters at once (libtorch's multi-tensor
// `_foreach` ops), with torch::optim::Adam's state (so checkpoints and --resume keep working).
// On a GPU a step of the small models is bound by kernel launches, not arithmetic: libtorch's
// clip_grad_norm_ and Adam::step launch about 2 + 8 kernels per parameter tensor (about 940 for
// the 94 tensors of a 3 + 3 layer model), this step about a dozen multi-tensor ones.
#pragma once

#include <torch/torch.h>

namespace septa::nn::mt {

// Clipping (torch::nn::utils::clip_grad_norm_ with max_norm, norm 2):
//   n = sqrt(sum_i ||g_i||^2),  c = min(1, max_norm / (n + 1e-6)),  g_i <- c g_i
// then Adam (Kingma & Ba 2015, torch::optim::Adam's arithmetic, without weight decay or AMSGrad)
// at learning rate lr, step k counted in the optimizer's state:
//   m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
//   p <- p - lr / (1 - b1^k) * m / (sqrt(v) / sqrt(1 - b2^k) + eps)
// with c folded into the moment updates (the gradients themselves are left unscaled).
// Parameters without a gradient are skipped. Returns n, the norm before clipping. InternalError
// when the optimizer has several parameter groups, weight decay or AMSGrad.
double clipped_adam_step(torch::optim::Adam& optimizer, double lr, double max_norm);

}  // namespace septa::nn::mt
