#pragma once
/// @file
/// Top-k intersection of two batches of maps (Ghorbani et al. 2019), per sample, in O(D).

#include <torch/torch.h>

#include <rar/metrics/per_sample.hpp>
#include <rar/metrics/rank_correlation.hpp>  // detail::has_nan

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace rar {
namespace detail {

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

}  // namespace rar
