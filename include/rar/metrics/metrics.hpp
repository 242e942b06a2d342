#pragma once
/// @file
/// Attribution-similarity metrics on batches `[N, ...]`: top-k intersection, Kendall's tau-b and
/// Spearman's rho per sample, plus (included from their own headers) saliency maps, the
/// center-of-mass shift and max-sensitivity. Results are float64 `[N]` on the CPU.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <rar/detail/checks.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/center_of_mass.hpp>
#include <rar/metrics/rank_correlation.hpp>
#include <rar/metrics/sensitivity.hpp>
#include <vector>

namespace rar {
namespace detail {

/// Validates a pair of batches compared sample by sample: defined float batches `[N, ...]` of
/// the same shape with at least one feature per sample. Dtypes and devices may differ.
inline void check_metric_pair(const char* fn, const torch::Tensor& a, const torch::Tensor& b) {
  check_batch(fn, "a", a);
  check_batch(fn, "b", b);
  TORCH_CHECK(!a.is_meta() && !b.is_meta(), fn,
              ": a and b must hold data, got a meta tensor (device ",
              a.is_meta() ? a.device() : b.device(), ")");
  check_same_shape(fn, "a", a, "b", b);
  TORCH_CHECK(a.numel() > 0, fn, ": a and b must have at least one feature per sample, got shape ",
              a.sizes());
}

/// `t` as a contiguous float64 CPU matrix `[N, D]` (each sample flattened), detached.
inline torch::Tensor metric_rows(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kDouble).reshape({t.size(0), -1}).contiguous();
}

/// out[i] = f(a_i, b_i, D, workspace) for every sample i, in parallel over the batch with
/// `at::parallel_for` (one `Workspace` per chunk of samples). Returns float64 `[N]` on the CPU.
///
/// Note: with LibTorch's OpenMP backend `at::parallel_for` is inline and only runs in parallel
/// when the calling code is compiled with OpenMP (`-fopenmp`, `OpenMP::OpenMP_CXX`); without
/// it the samples are processed one after another (same results).
template <class Workspace, class F>
torch::Tensor per_sample_metric(const torch::Tensor& a, const torch::Tensor& b, const F& f) {
  const torch::Tensor rows_a = metric_rows(a);
  const torch::Tensor rows_b = metric_rows(b);
  const int64_t n = rows_a.size(0);
  const int64_t d = rows_a.size(1);
  torch::Tensor out = torch::empty({n}, torch::TensorOptions().dtype(torch::kDouble));
  const double* pa = rows_a.data_ptr<double>();
  const double* pb = rows_b.data_ptr<double>();
  double* po = out.data_ptr<double>();
  // Aim for ~32k features per task so that small samples do not pay one task each.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(d, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    Workspace workspace;
    for (int64_t i = begin; i < end; ++i) po[i] = f(pa + i * d, pb + i * d, d, workspace);
  });
  return out;
}

/// Scratch for `topk_fraction`.
struct TopKWorkspace {
  std::vector<int64_t> order;
  std::vector<unsigned char> in_a;
};

/// Indices of the k largest of `x[0..d)` in `order[0..k)` (ties: the lower index first).
inline void top_k_indices(const double* x, int64_t d, int64_t k, std::vector<int64_t>& order) {
  order.resize(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                   [x](int64_t i, int64_t j) { return x[i] > x[j] || (x[i] == x[j] && i < j); });
}

/// |top-k(a) ∩ top-k(b)| / k for one sample; NaN if a value is NaN.
inline double topk_fraction(const double* a, const double* b, int64_t d, int64_t k,
                            TopKWorkspace& ws) {
  if (has_nan(a, d) || has_nan(b, d)) return std::numeric_limits<double>::quiet_NaN();
  ws.in_a.assign(static_cast<size_t>(d), 0);
  top_k_indices(a, d, k, ws.order);
  for (int64_t i = 0; i < k; ++i)
    ws.in_a[static_cast<size_t>(ws.order[static_cast<size_t>(i)])] = 1;
  top_k_indices(b, d, k, ws.order);
  int64_t common = 0;
  for (int64_t i = 0; i < k; ++i)
    common += ws.in_a[static_cast<size_t>(ws.order[static_cast<size_t>(i)])];
  return static_cast<double>(common) / static_cast<double>(k);
}

}  // namespace detail

/// Top-k intersection: the fraction of the k largest features of `a` that are also among the
/// k largest of `b`, per sample.
///
/// The first dissimilarity measure of Ghorbani, Abid, Zou ("Interpretation of Neural Networks
/// is Fragile", AAAI 2019), used by Chen et al. ("Robust Attribution Regularization", NeurIPS
/// 2019) on saliency maps (see `rar::attribution_map`). Features are ranked by value (not by
/// |value|: pass maps, which are nonnegative); equal values are ranked by position, the lower
/// flat index first, so the result is deterministic. O(D) per sample, parallel over N.
/// NaN for a sample that contains NaN.
///
/// Example:
/// @code
/// torch::Tensor inter = rar::topk_intersection(rar::attribution_map(attr_clean),
///                                              rar::attribution_map(attr_adv), 100);
/// @endcode
/// @param a batch `[N, ...]` (each sample flattened to D features), float32 or float64, any device
/// @param b batch of the same shape (dtype and device may differ from a's)
/// @param k number of top features compared, 1 ≤ k ≤ D
/// @return float64 `[N]` on the CPU, values in {0, 1/k, …, 1}
inline torch::Tensor topk_intersection(const torch::Tensor& a, const torch::Tensor& b, int64_t k) {
  const char* fn = "rar::topk_intersection";
  detail::check_metric_pair(fn, a, b);
  const int64_t features = a.numel() / a.size(0);
  TORCH_CHECK(k >= 1 && k <= features, fn, ": k must be in [1, ", features,
              "] (the number of features per sample), got k = ", k);
  return detail::per_sample_metric<detail::TopKWorkspace>(
      a, b, [k](const double* x, const double* y, int64_t d, detail::TopKWorkspace& ws) {
        return detail::topk_fraction(x, y, d, k, ws);
      });
}

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
