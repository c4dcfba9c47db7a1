// Log-densities written by hand (libtorch has no torch::distributions) and the importance-weight
// arithmetic of the K-sample bounds. B rows (examples), D features, K importance samples.
#pragma once

#include <torch/torch.h>

namespace septa::nn::vba {

// log N(x; mean, std^2) summed over the last dimension:
//   sum_d [ -log(std_d) - 0.5 log(2 pi) - 0.5 ((x_d - mean_d) / std_d)^2 ]
// x, mean, log_std broadcastable to [..][D]; returns [..].
torch::Tensor normal_log_prob(const torch::Tensor& x, const torch::Tensor& mean,
                              const torch::Tensor& log_std);

// log Bernoulli(x; sigmoid(logits)) summed over the last dimension, for x in [0, 1]:
//   sum_d [ x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) ] = sum_d [ x_d l_d - softplus(l_d) ]
// (stable for any logit). Returns [..].
torch::Tensor bernoulli_log_prob(const torch::Tensor& x, const torch::Tensor& logits);

// log (1/K sum_k exp(a[.., k])) along the last dimension: logsumexp(a) - log K. [..][K] -> [..]
torch::Tensor log_mean_exp(const torch::Tensor& log_weights);

// Diagnostics of self-normalised importance weights w_k = exp(log_weights[.., k]):
//   p_k = w_k / sum_j w_j,  ESS = 1 / sum_k p_k^2  (in [1, K]),
//   standard error of log(mean w) by the delta method: sd(w) / (sqrt(K) mean(w))
//     = sqrt((K sum_k p_k^2 - 1) / (K - 1))   (sample sd with K - 1; 0 for K = 1).
struct WeightStats {
  torch::Tensor ess;        // [..]
  torch::Tensor std_error;  // [..]
};
WeightStats weight_stats(const torch::Tensor& log_weights);

}  // namespace septa::nn::vba
