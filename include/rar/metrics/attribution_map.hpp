#pragma once
/// @file
/// Saliency maps from attributions: |·|, channels summed, each sample normalized to sum 1
/// (the maps that Ghorbani et al. and Chen et al. compare).

#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

namespace rar {

/// Options for `rar::attribution_map`.
///
/// Example:
/// @code
/// // Signed, per-channel maps with unit L1 norm:
/// auto opts = rar::MapOptions().abs(false).sum_channels(false);
/// torch::Tensor maps = rar::attribution_map(attributions, opts);
/// @endcode
struct MapOptions {
  /// Take the absolute value of each attribution first.
  RAR_ARG(bool, abs) = true;
  /// Sum over the channel dimension 1 of inputs `[N, C, ...]` with at least 3 dimensions
  /// (`[N, C, H, W]` → `[N, H, W]`, `[N, C, L]` → `[N, L]`). `[N, D]` has no channel dimension
  /// and is left as is.
  RAR_ARG(bool, sum_channels) = true;
  /// Divide each sample by its L1 norm (the sum of |values|), so a nonnegative map sums to 1.
  /// An all-zero sample stays all zero (it is divided by 1, not by 0).
  RAR_ARG(bool, normalize) = true;
};

/// Turns attributions into saliency maps: |a|, summed over channels, normalized per sample.
///
/// With the defaults, map[n] = Σ_c |a[n, c, ...]| / Σ |a[n]|, the saliency map of Ghorbani,
/// Abid, Zou ("Interpretation of Neural Networks is Fragile", AAAI 2019) and of Chen et al.
/// ("Robust Attribution Regularization", NeurIPS 2019), on which `topk_intersection`,
/// `kendall_tau` and `center_of_mass_shift` are computed.
///
/// Runs on the attributions' device and dtype and is differentiable (the attribution attack
/// differentiates through it).
///
/// Example:
/// @code
/// torch::Tensor attr = rar::integrated_gradients(model, x, rar::IGOptions().target(y));
/// torch::Tensor maps = rar::attribution_map(attr);  // [N, H, W], each sums to 1
/// @endcode
/// @param attributions batch `[N, ...]`, float32 or float64, any device
/// @param options abs, sum_channels, normalize
/// @return maps `[N, ...]` without the channel dimension when it is summed; same dtype and
///         device as `attributions`
inline torch::Tensor attribution_map(const torch::Tensor& attributions,
                                     const MapOptions& options = {}) {
  detail::check_batch("rar::attribution_map", "attributions", attributions);
  torch::Tensor map = options.abs() ? attributions.abs() : attributions;
  if (options.sum_channels() && map.dim() >= 3) map = map.sum(1);
  if (options.normalize()) {
    std::vector<int64_t> per_sample(static_cast<size_t>(map.dim()), 1);
    per_sample[0] = map.size(0);
    torch::Tensor norm = map.abs().reshape({map.size(0), -1}).sum(1);
    norm = torch::where(norm == 0, torch::ones_like(norm), norm);
    map = map / norm.view(per_sample);
  }
  return map;
}

}  // namespace rar
