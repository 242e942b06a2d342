#pragma once
/// @file
/// Per-sample score functions: what an attribution explains (a logit, a log-probability, a loss),
/// and the loss an attack ascends.

#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <functional>

namespace rar {

/// A score function maps the model output `[N, C]` and the target `[N]` to a per-sample scalar
/// `[N]`; attributions explain that scalar. Any callable of this signature can be used.
///
/// Example:
/// @code
/// rar::ScoreFunction probability = [](const torch::Tensor& out, const torch::Tensor& y) {
///   return torch::softmax(out, 1).gather(1, y.view({-1, 1})).squeeze(1);
/// };
/// auto attr = rar::integrated_gradients(model, x, rar::IGOptions().target(y).score(probability));
/// @endcode
using ScoreFunction =
    std::function<torch::Tensor(const torch::Tensor& output, const torch::Tensor& target)>;

namespace detail {
/// Checks that every class index of `target` lies in [0, classes).
inline void check_class_range(const char* fn, const torch::Tensor& target, int64_t classes) {
  if (!target.defined() || target.numel() == 0) return;
  const auto lo = target.min().item<int64_t>();
  const auto hi = target.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < classes, fn, ": target class indices must lie in [0, ", classes,
              "), got values in [", lo, ", ", hi, "] (the model has ", classes, " outputs)");
}

/// Validates `output` `[N, C]` against `target` `[N]` and returns output[n, target[n]].
inline torch::Tensor gather_target(const char* fn, const torch::Tensor& output,
                                   const torch::Tensor& target) {
  TORCH_CHECK(output.dim() == 2, fn, ": with a target the model output must be [N, C], got shape ",
              output.sizes());
  TORCH_CHECK(target.scalar_type() == torch::kLong, fn,
              ": target must be an int64 tensor, got ", target.scalar_type());
  TORCH_CHECK(target.dim() == 1 && target.size(0) == output.size(0), fn,
              ": target must have shape [", output.size(0), "], got ", target.sizes());
  check_class_range(fn, target, output.size(1));
  return target.view({-1, 1});
}
}  // namespace detail

/// Ready-made score functions (`rar::score::logit` is the default everywhere).
namespace score {

/// The target's logit: `output[n, target[n]]`; without a target the output must already be `[N]`.
///
/// Example: `rar::IGOptions().target(y).score(rar::score::logit)`.
/// @param output model output `[N, C]` (or `[N]` without a target)
/// @param target int64 class indices `[N]`, or undefined
/// @return the explained scalar per sample, `[N]`
inline torch::Tensor logit(const torch::Tensor& output, const torch::Tensor& target) {
  if (!target.defined()) {
    TORCH_CHECK(output.dim() == 1, "rar::score::logit: without a target the model output must be "
                "[N], got shape ", output.sizes());
    return output;
  }
  return output.gather(1, detail::gather_target("rar::score::logit", output, target)).squeeze(1);
}

/// The target's log-probability: `log_softmax(output)[n, target[n]]`.
///
/// Example: `rar::IGOptions().target(y).score(rar::score::log_softmax)`.
/// @param output model output (logits) `[N, C]`
/// @param target int64 class indices `[N]` (required)
/// @return the log-probability of each sample's target, `[N]`
inline torch::Tensor log_softmax(const torch::Tensor& output, const torch::Tensor& target) {
  TORCH_CHECK(target.defined(), "rar::score::log_softmax: a target is required");
  const auto index = detail::gather_target("rar::score::log_softmax", output, target);
  return torch::log_softmax(output, 1).gather(1, index).squeeze(1);
}

/// The softmax probability of the target, `softmax(output)[n, target[n]]` (the score of the
/// deletion and insertion curves, `rar::deletion_curve`).
///
/// Example: `rar::PerturbationCurveOptions().target(y).score(rar::score::probability)`.
/// @param output model output (logits) `[N, C]`
/// @param target int64 class indices `[N]` (required)
/// @return the probability of each sample's target class, `[N]`
inline torch::Tensor probability(const torch::Tensor& output, const torch::Tensor& target) {
  TORCH_CHECK(target.defined(), "rar::score::probability: a target is required");
  const auto index = detail::gather_target("rar::score::probability", output, target);
  return torch::softmax(output, 1).gather(1, index).squeeze(1);
}

/// The per-sample cross-entropy loss of the target, `-log_softmax(output)[n, target[n]]`
/// (the loss ℓ_y whose attributions the RAR objectives regularize).
///
/// Example: `rar::IGOptions().target(y).score(rar::score::cross_entropy)`.
/// @param output model output (logits) `[N, C]`
/// @param target int64 class indices `[N]` (required)
/// @return the cross-entropy loss of each sample, `[N]`
inline torch::Tensor cross_entropy(const torch::Tensor& output, const torch::Tensor& target) {
  TORCH_CHECK(target.defined(), "rar::score::cross_entropy: a target is required");
  const auto index = detail::gather_target("rar::score::cross_entropy", output, target);
  return -torch::log_softmax(output, 1).gather(1, index).squeeze(1);
}

}  // namespace score
}  // namespace rar
