#pragma once
/// @file
/// Helpers shared by the successor terms (`rar::art`, `rar::attribution_alignment`): the
/// per-sample cosine distance (the input-range check is `detail::check_in_clip_range`).

#include <rar/core/threat_model.hpp>

#include <torch/torch.h>

namespace rar {
namespace detail {

/// Per-sample cosine distance 1 − ⟨a, b⟩ / max(‖a‖₂·‖b‖₂, 1e-16) of two batches `[N, ...]`
/// (each sample flattened), `[N]`. The floor keeps a zero vector at distance 1 (cosine 0)
/// instead of NaN; it is far below any nonzero product of norms in float32 or float64.
inline torch::Tensor cosine_distance(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor af = a.flatten(1);
  const torch::Tensor bf = b.flatten(1);
  const torch::Tensor dot = (af * bf).sum(1);
  const torch::Tensor norms = af.norm(2, 1) * bf.norm(2, 1);
  return 1 - dot / norms.clamp_min(1e-16);
}

}  // namespace detail
}  // namespace rar
