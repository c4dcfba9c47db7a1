// Gradient clipping by the global L2 norm for ForeachAdamW, with multi-tensor operations (one
// norm kernel per few tensors and one read-back instead of libtorch clip_grad_norm_'s two kernels
// per parameter tensor). torch::nn::utils::clip_grad_norm_ with norm 2:
//   n = sqrt(sum_i ||g_i||^2),  c = min(1, max_norm / (n + 1e-6)),  g_i <- c g_i
// except that c is folded into the optimizer's moment updates (ForeachAdamW::step_scaled), so the
// gradients themselves are left unscaled.
#pragma once

#include "nn/foreach_adamw.h"

namespace septa::nn {

// One ForeachAdamW step on the clipped gradients of all its parameters that have one. Returns n,
// the norm before clipping (0 when no parameter has a gradient; nothing is stepped then).
double clipped_step(ForeachAdamW& optimizer, double max_norm);

}  // namespace septa::nn
