#pragma once
/// @file
/// Center of mass of saliency maps and its shift between two maps (Ghorbani et al. 2019).

#include <torch/torch.h>

#include <rar/detail/checks.hpp>
#include <vector>

namespace rar {

namespace detail {
/// Checks that `maps` is a batch of saliency maps `[N, D]`, `[N, H, W]` or `[N, C, d1, ...]`.
inline void check_maps(const char* fn, const char* name, const torch::Tensor& maps) {
  check_batch(fn, name, maps);
  TORCH_CHECK(maps.dim() >= 2, fn, ": ", name,
              " must be maps [N, D], [N, H, W] or [N, C, H, W] (at least 2 dimensions), got "
              "shape ",
              maps.sizes());
  TORCH_CHECK(maps.numel() > 0, fn, ": ", name, " must not be empty, got shape ", maps.sizes());
  TORCH_CHECK(!maps.is_meta(), fn, ": ", name, " must hold data, got a meta tensor");
}

/// The grid part of `maps`: |maps| with the channels of `[N, C, d1, ..., dk]` (dim ≥ 4) summed.
inline torch::Tensor mass_grid(const torch::Tensor& maps) {
  torch::Tensor mass = maps.abs();
  return maps.dim() >= 4 ? mass.sum(1) : mass;
}

/// Centers of mass of a nonnegative grid `[N, d1, ..., dk]`: `[N, k]`, coordinates in index
/// units (0 … d_j − 1) along each grid dimension.
inline torch::Tensor grid_center_of_mass(const torch::Tensor& mass) {
  const int64_t k = mass.dim() - 1;
  const torch::Tensor total = mass.reshape({mass.size(0), -1}).sum(1);
  std::vector<torch::Tensor> coords;
  coords.reserve(static_cast<size_t>(k));
  for (int64_t j = 1; j <= k; ++j) {
    std::vector<int64_t> others;
    for (int64_t i = 1; i <= k; ++i) {
      if (i != j) others.push_back(i);
    }
    const torch::Tensor marginal = others.empty() ? mass : mass.sum(others);  // [N, d_j]
    const torch::Tensor grid = torch::arange(mass.size(j), mass.options());
    coords.push_back((marginal * grid).sum(1) / total);
  }
  return torch::stack(coords, 1);
}
}  // namespace detail

/// Center of mass of each saliency map, in grid index units.
///
/// C(n) = Σ_p p · |m[n, p]| / Σ_p |m[n, p]| over the grid positions p (Ghorbani, Abid, Zou,
/// "Interpretation of Neural Networks is Fragile", AAAI 2019). The layouts are
/// - `[N, D]`: 1-D maps, the center is a position in 0 … D − 1 (k = 1);
/// - `[N, H, W]`: 2-D maps, the center is (row, column) (k = 2);
/// - `[N, C, d1, …, dk]` (4 or more dimensions): the channels are summed first
///   (`[N, C, H, W]` → (row, column)).
/// A 3-D tensor is always read as `[N, H, W]`; for 1-D signals with channels `[N, C, L]`,
/// sum the channels first (e.g. with `rar::attribution_map`). The mass is |m|, so the maps of
/// `rar::attribution_map` are used as they are. A map with zero total mass has no center: NaN.
///
/// Runs on the maps' device and dtype and is differentiable (for the center-of-mass attack).
///
/// Example:
/// @code
/// torch::Tensor c = rar::center_of_mass(rar::attribution_map(attr));  // [N, 2] for images
/// @endcode
/// @param maps saliency maps as above, float32 or float64, any device
/// @return centers `[N, k]`, same dtype and device as `maps`
inline torch::Tensor center_of_mass(const torch::Tensor& maps) {
  detail::check_maps("rar::center_of_mass", "maps", maps);
  // Σ p·|m| can overflow float32 before the division by Σ |m|: sum in float64, return the
  // maps' dtype (the cast is differentiable).
  return detail::grid_center_of_mass(detail::mass_grid(maps).to(torch::kDouble))
      .to(maps.scalar_type());
}

/// Distance between the centers of mass of two batches of saliency maps.
///
/// shift(n) = ‖C(a_n) − C(b_n)‖₂ in grid index units (pixels for images), the third
/// dissimilarity measure of Ghorbani, Abid, Zou ("Interpretation of Neural Networks is
/// Fragile", AAAI 2019), also reported by Chen et al. ("Robust Attribution Regularization",
/// NeurIPS 2019). Layouts as for `rar::center_of_mass`; for 1-D maps `[N, D]` it is
/// |C(a_n) − C(b_n)|. Computed in float64 on the CPU. NaN for a sample where either map has
/// zero mass or contains NaN.
///
/// Example:
/// @code
/// torch::Tensor shift = rar::center_of_mass_shift(rar::attribution_map(attr_clean),
///                                                 rar::attribution_map(attr_adv));
/// @endcode
/// @param a maps `[N, ...]`, float32 or float64, any device
/// @param b maps of the same shape (dtype and device may differ from a's)
/// @return float64 `[N]` on the CPU
inline torch::Tensor center_of_mass_shift(const torch::Tensor& a, const torch::Tensor& b) {
  const char* fn = "rar::center_of_mass_shift";
  detail::check_maps(fn, "a", a);
  detail::check_maps(fn, "b", b);
  detail::check_same_shape(fn, "a", a, "b", b);
  torch::NoGradGuard no_grad;
  const auto cpu_double = [](const torch::Tensor& t) {
    return detail::mass_grid(t.detach().to(torch::kCPU, torch::kDouble));
  };
  const torch::Tensor ca = detail::grid_center_of_mass(cpu_double(a));
  const torch::Tensor cb = detail::grid_center_of_mass(cpu_double(b));
  return (ca - cb).pow(2).sum(1).sqrt();
}

}  // namespace rar
