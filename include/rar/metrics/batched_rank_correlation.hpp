#pragma once
/// @file
/// Kendall's tau-b and Spearman's rho between each sample of two batches `[N, ...]`: the
/// LibTorch side of `rar/metrics/rank_correlation.hpp`, parallel over the batch.

#include <torch/torch.h>

#include <rar/metrics/per_sample.hpp>
#include <rar/metrics/rank_correlation.hpp>

namespace rar {

/// Kendall's tau-b between each sample of `a` and its partner in `b` (each flattened).
///
/// Per sample exactly `rar::kendall_tau(Eigen…)`: tau-b with ties, as
/// `scipy.stats.kendalltau`, in O(D log D), parallel over N. Used by Ghorbani et al. (AAAI
/// 2019) and Chen et al. (NeurIPS 2019) to compare saliency maps. NaN for a sample with D = 1,
/// a constant sample, or a NaN value.
///
/// Example:
/// @code
/// torch::Tensor tau = rar::kendall_tau(rar::attribution_map(attr_clean),
///                                      rar::attribution_map(attr_adv));  // float64 [N]
/// @endcode
/// @param a batch `[N, ...]`, float32 or float64, any device (copied to CPU float64)
/// @param b batch of the same shape (dtype and device may differ from a's)
/// @return float64 `[N]` on the CPU
inline torch::Tensor kendall_tau(const torch::Tensor& a, const torch::Tensor& b) {
  detail::check_metric_pair("rar::kendall_tau", a, b);
  return detail::per_sample_metric<detail::RankWorkspace>(a, b, detail::kendall_tau_b);
}

/// Spearman's rank correlation between each sample of `a` and its partner in `b`.
///
/// Per sample exactly `rar::spearman_rho(Eigen…)`: the Pearson correlation of the average
/// ranks, as `scipy.stats.spearmanr`, in O(D log D), parallel over N. NaN for a sample with
/// D = 1, a constant sample, or a NaN value.
///
/// Example:
/// @code
/// torch::Tensor rho = rar::spearman_rho(map_clean, map_adv);  // float64 [N]
/// @endcode
/// @param a batch `[N, ...]`, float32 or float64, any device (copied to CPU float64)
/// @param b batch of the same shape (dtype and device may differ from a's)
/// @return float64 `[N]` on the CPU
inline torch::Tensor spearman_rho(const torch::Tensor& a, const torch::Tensor& b) {
  detail::check_metric_pair("rar::spearman_rho", a, b);
  return detail::per_sample_metric<detail::RankWorkspace>(a, b, detail::spearman_rho_raw);
}

}  // namespace rar
