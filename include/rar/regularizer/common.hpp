#pragma once
/// @file
/// Helpers shared by the successor terms (`rar::art`, `rar::attribution_alignment`): the
/// per-sample cosine distance and the input-range check of a term with a clip range.

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

/// Checks that every element of `x` lies in the ball's [clip_min, clip_max]; `fn` names the
/// public entry point.
inline void check_in_range(const char* fn, const torch::Tensor& x, const BallOptions& ball) {
  torch::NoGradGuard no_grad;
  const double lo = x.min().item<double>();
  const double hi = x.max().item<double>();
  TORCH_CHECK(lo >= ball.clip_min() && hi <= ball.clip_max(), fn,
              ": x must lie in [clip_min, clip_max] = [", ball.clip_min(), ", ", ball.clip_max(),
              "], got values in [", lo, ", ", hi, "]");
}

}  // namespace detail
}  // namespace rar
