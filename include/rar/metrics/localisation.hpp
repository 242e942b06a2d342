#pragma once
/// @file
/// Localisation metrics of explanations against a ground-truth region: relevance mass accuracy
/// and relevance rank accuracy (Arras, Osman, Samek, "CLEVR-XAI: A benchmark dataset for the
/// ground truth evaluation of neural network explanations", Information Fusion 2022;
/// arXiv:2003.07258) and the pointing game (Zhang, Bargal, Lin, Brandt, Shen, Sclaroff,
/// "Top-Down Neural Attention by Excitation Backprop", IJCV 2018), with Quantus' definitions
/// (understandable-machine-intelligence-lab/Quantus, `quantus/metrics/localisation/`).
///
/// Every metric takes a map `[N, ...]` and a mask `[N, ...]` (the region, Quantus' `s_batch`)
/// and returns float64 `[N]` on the CPU. They need no model. Quantus' `normalise` (division by
/// the largest |value|) is a positive scaling and changes none of these metrics, so it is not an
/// option; `abs` is.

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <tuple>
#include <utility>

namespace rar {

/// Options of `rar::relevance_mass_accuracy`, `rar::relevance_rank_accuracy` and
/// `rar::pointing_game`.
///
/// Example:
/// @code
/// auto opts = rar::LocalisationOptions().abs(true).weighted(true);
/// torch::Tensor hits = rar::pointing_game(map, mask, opts);  // float64 [N]
/// @endcode
struct LocalisationOptions {
  /// Use |map| instead of the map (Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Pointing game only: a hit scores 1 − |mask| / |map| (the share of the sample outside the
  /// region) instead of 1, so that hitting a large region counts less (Quantus' `weighted`,
  /// default false); a miss scores 0.
  RAR_ARG(bool, weighted) = false;
};

namespace detail {

/// Checks a localisation metric's arguments and returns (map as float64 `[N, D]`, mask as bool
/// `[N, D]`) on the CPU, the mask broadcast to the map's shape.
inline std::pair<torch::Tensor, torch::Tensor> localisation_rows(const char* fn,
                                                                 const torch::Tensor& map,
                                                                 const torch::Tensor& mask,
                                                                 bool abs) {
  check_batch(fn, "map", map);
  TORCH_CHECK(map[0].numel() > 0, fn, ": map must have at least one value per sample, got shape ",
              map.sizes());
  check_finite(fn, "map", map);
  TORCH_CHECK(mask.defined(), fn, ": mask must be a defined tensor");
  bool ok = mask.dim() == map.dim() && mask.size(0) == map.size(0);
  for (int64_t d = 1; ok && d < map.dim(); ++d)
    ok = mask.size(d) == map.size(d) || mask.size(d) == 1;
  TORCH_CHECK(ok, fn,
              ": mask must have the map's shape, or 1 in some dimensions after the first (e.g. [N, "
              "1, H, W] for a map [N, C, H, W]: one region for every channel), got ",
              mask.sizes(), " for map ", map.sizes());
  TORCH_CHECK(mask.device() == map.device(), fn, ": mask must be on the map's device ",
              map.device(), ", got ", mask.device());
  torch::Tensor m = mask.detach();
  if (m.scalar_type() != torch::kBool) {
    TORCH_CHECK(!m.is_complex() && ((m == 0) | (m == 1)).all().item<bool>(), fn,
                ": mask must be bool or hold only 0 and 1 (Quantus' s_batch), got other values in "
                "a ",
                m.scalar_type(), " mask");
    m = m != 0;
  }
  const int64_t n = map.size(0);
  torch::Tensor a = map.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1});
  if (abs) a = a.abs();
  return {a, m.expand(map.sizes()).to(torch::kCPU).reshape({n, -1})};
}

/// NaN where the mask of a sample is empty (Quantus' result for an empty region).
inline torch::Tensor nan_where_empty(const torch::Tensor& result, const torch::Tensor& inside) {
  return torch::where(inside.sum(1) == 0,
                      torch::full_like(result, std::numeric_limits<double>::quiet_NaN()), result);
}

}  // namespace detail

/// Relevance mass accuracy: the share of the map's mass that lies inside the region.
///
/// RMA(n) = Σ_{i ∈ Sₙ} aₙᵢ / Σ_i aₙᵢ (Arras, Osman, Samek 2022, eq. for "relevance mass
/// accuracy"; Quantus' `RelevanceMassAccuracy.evaluate_batch`). In [0, 1] for a non-negative map;
/// with negative values it can leave that range, as in Quantus (use `abs`). NaN for an empty
/// mask (Quantus); a map summing to 0 gives ±inf or NaN (the division, as numpy).
///
/// Example:
/// @code
/// torch::Tensor map = rar::attribution_map(rar::saliency(model, x,
/// rar::GradientOptions().target(y))); torch::Tensor rma = rar::relevance_mass_accuracy(map, mask);
/// // mask: bool [N, H, W]
/// @endcode
/// @param map attributions or a saliency map `[N, ...]`, float32 or float64, finite
/// @param mask the ground-truth region, bool (or 0/1) `[N, ...]`: the map's shape, or 1 in
///        dimensions the region is shared along (e.g. `[N, 1, H, W]` for `[N, C, H, W]`)
/// @param options abs
/// @return float64 `[N]` on the CPU
inline torch::Tensor relevance_mass_accuracy(const torch::Tensor& map, const torch::Tensor& mask,
                                             const LocalisationOptions& options) {
  const auto [a, s] =
      detail::localisation_rows("rar::relevance_mass_accuracy", map, mask, options.abs());
  const torch::Tensor within = torch::where(s, a, torch::zeros_like(a)).sum(1);
  return detail::nan_where_empty(within / a.sum(1), s);
}

/// Relevance mass accuracy with the default options (the map as given).
///
/// Example: `torch::Tensor rma = rar::relevance_mass_accuracy(map, mask);`
/// @param map `[N, ...]`, float32 or float64
/// @param mask bool (or 0/1) region, the map's shape or broadcastable along dimensions after 0
/// @return float64 `[N]` on the CPU
inline torch::Tensor relevance_mass_accuracy(const torch::Tensor& map, const torch::Tensor& mask) {
  return relevance_mass_accuracy(map, mask, LocalisationOptions());
}

/// Relevance rank accuracy: with K = |Sₙ| the size of the region, the share of the map's K
/// highest positions that lie inside the region.
///
/// RRA(n) = |top_K(aₙ) ∩ Sₙ| / K (Arras, Osman, Samek 2022, "relevance rank accuracy";
/// Quantus' `RelevanceRankAccuracy.evaluate_batch`). NaN for an empty mask (Quantus). Ties in the
/// map are ranked by position, the first position first (a stable sort, as numpy's
/// `argsort(-a, kind="stable")`); Quantus' default `np.argsort` leaves their order unspecified.
///
/// Example:
/// @code
/// torch::Tensor rra = rar::relevance_rank_accuracy(map, mask);  // float64 [N] in [0, 1]
/// @endcode
/// @param map `[N, ...]`, float32 or float64, finite
/// @param mask bool (or 0/1) region, the map's shape or broadcastable along dimensions after 0
/// @param options abs
/// @return float64 `[N]` on the CPU
inline torch::Tensor relevance_rank_accuracy(const torch::Tensor& map, const torch::Tensor& mask,
                                             const LocalisationOptions& options) {
  const auto [a, s] =
      detail::localisation_rows("rar::relevance_rank_accuracy", map, mask, options.abs());
  const torch::Tensor order = std::get<1>(a.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  const torch::Tensor k = s.sum(1, /*keepdim=*/true);  // int64 [N, 1]
  const torch::Tensor rank = torch::arange(a.size(1), k.options()).unsqueeze(0);
  const torch::Tensor hits = (s.gather(1, order) & (rank < k)).sum(1).to(torch::kDouble);
  return detail::nan_where_empty(hits / k.squeeze(1).to(torch::kDouble), s);
}

/// Relevance rank accuracy with the default options (the map as given).
///
/// Example: `torch::Tensor rra = rar::relevance_rank_accuracy(map, mask);`
/// @param map `[N, ...]`, float32 or float64
/// @param mask bool (or 0/1) region, the map's shape or broadcastable along dimensions after 0
/// @return float64 `[N]` on the CPU
inline torch::Tensor relevance_rank_accuracy(const torch::Tensor& map, const torch::Tensor& mask) {
  return relevance_rank_accuracy(map, mask, LocalisationOptions());
}

/// Pointing game: 1 where the map's largest value lies inside the region, else 0.
///
/// PG(n) = 1[∃ i ∈ Sₙ : aₙᵢ = maxⱼ aₙⱼ] (Zhang et al. 2018; Quantus' `PointingGame`): when several
/// positions share the maximum, one inside the region is a hit. With `weighted`, a hit scores
/// 1 − |Sₙ| / D (D values per sample; Quantus' `weighted`, as its per-instance
/// `evaluate_instance` computes it — Quantus' later batched version stores the weight into a bool
/// array and so returns 1). NaN for an empty mask (Quantus). Zhang et al.'s 15-pixel tolerance is
/// not part of Quantus: dilate the mask for it (e.g. with `torch::max_pool2d`).
///
/// Example:
/// @code
/// torch::Tensor hit = rar::pointing_game(map, mask);          // 0/1 float64 [N]
/// double accuracy = hit.nanmean().item<double>();            // the pointing-game accuracy
/// @endcode
/// @param map `[N, ...]`, float32 or float64, finite
/// @param mask bool (or 0/1) region, the map's shape or broadcastable along dimensions after 0
/// @param options abs, weighted
/// @return float64 `[N]` on the CPU: 0 or 1 (or the weight), NaN for an empty mask
inline torch::Tensor pointing_game(const torch::Tensor& map, const torch::Tensor& mask,
                                   const LocalisationOptions& options) {
  const auto [a, s] = detail::localisation_rows("rar::pointing_game", map, mask, options.abs());
  const torch::Tensor at_max = a == std::get<0>(a.max(1, /*keepdim=*/true));
  const torch::Tensor hit = (at_max & s).any(1).to(torch::kDouble);
  torch::Tensor score = hit;
  if (options.weighted()) {
    const torch::Tensor weight = 1.0 - s.sum(1).to(torch::kDouble) / static_cast<double>(a.size(1));
    score = hit * weight;
  }
  return detail::nan_where_empty(score, s);
}

/// Pointing game with the default options (the map as given, unweighted).
///
/// Example: `torch::Tensor hit = rar::pointing_game(map, mask);`
/// @param map `[N, ...]`, float32 or float64
/// @param mask bool (or 0/1) region, the map's shape or broadcastable along dimensions after 0
/// @return float64 `[N]` on the CPU: 1 for a hit, 0 for a miss, NaN for an empty mask
inline torch::Tensor pointing_game(const torch::Tensor& map, const torch::Tensor& mask) {
  return pointing_game(map, mask, LocalisationOptions());
}

}  // namespace rar
