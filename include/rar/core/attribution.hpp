#pragma once
/// @file
/// `rar::Attribution`: attributions together with each sample's convergence delta (and, for the
/// Integrated Gradients family, the path points used), the result of every `*_with_delta`
/// method.

#include <torch/torch.h>

namespace rar {

/// Attributions together with the convergence delta of each sample.
///
/// Example:
/// @code
/// rar::Attribution r = rar::deeplift_with_delta(model, x, rar::DeepLiftOptions().target(y));
/// torch::Tensor attr = r.attributions;  // [N, ...]
/// torch::Tensor delta = r.delta;        // [N]
/// @endcode
struct Attribution {
  /// Attributions, shape, dtype and device of the input.
  torch::Tensor attributions;
  /// `delta[n] = sum(attributions[n]) − (score(x_n) − score(x'_n))`, shape `[N]`.
  torch::Tensor delta;
  /// Path points each sample's attributions used, int64 `[N]` on the CPU: set by the
  /// Integrated Gradients family (the options' steps, or what an adaptive `tolerance` chose);
  /// undefined for methods without a path.
  torch::Tensor points;
};

}  // namespace rar
