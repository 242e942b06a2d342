#pragma once
/// @file
/// The threat model shared by PGD, the attribution attacks and the RAR inner maximization:
/// the ε-ball around x (L∞ or L2) intersected with the data range, its projection, the ascent
/// step and the random start. The math exists once, here.

#include <rar/detail/random.hpp>

#include <torch/torch.h>

namespace rar {

/// The norm of the perturbation ball N(x, ε).
enum class Norm {
  linf,  ///< ‖x′ − x‖∞ ≤ ε; steps are sign-gradient steps
  l2     ///< ‖x′ − x‖₂ ≤ ε per sample; steps are normalized-gradient steps
};

namespace detail {

/// Per-sample L2 norm of `t` `[N, ...]`, shaped `[N, 1, ..., 1]` for broadcasting.
inline torch::Tensor sample_norm(const torch::Tensor& t) {
  std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
  shape[0] = t.size(0);
  return t.flatten(1).norm(2, 1).view(shape);
}

/// Projects `x_adv` onto N(x, ε) ∩ [clip_min, clip_max] (per sample for L2).
inline torch::Tensor project(const torch::Tensor& x_adv, const torch::Tensor& x, double epsilon,
                             Norm norm, double clip_min, double clip_max) {
  torch::Tensor delta = x_adv - x;
  if (norm == Norm::linf) {
    delta = delta.clamp(-epsilon, epsilon);
  } else {
    const torch::Tensor n = sample_norm(delta);
    delta = delta * torch::clamp_max(epsilon / (n + 1e-12), 1.0);
  }
  return (x + delta).clamp(clip_min, clip_max);
}

/// One ascent step of size `step_size` along `grad`: sign(grad) for L∞, grad/‖grad‖₂ for L2.
inline torch::Tensor ascent_step(const torch::Tensor& x_adv, const torch::Tensor& grad,
                                 double step_size, Norm norm) {
  if (norm == Norm::linf) return x_adv + step_size * grad.sign();
  return x_adv + step_size * grad / (sample_norm(grad) + 1e-12);
}

/// A random point of N(x, ε) ∩ [clip_min, clip_max]: uniform in the L∞ cube, or uniform in
/// the L2 ball (Gaussian direction, radius ε·u^(1/d)); drawn from `gen` on the CPU.
inline torch::Tensor random_start(at::Generator& gen, const torch::Tensor& x, double epsilon,
                                  Norm norm, double clip_min, double clip_max) {
  torch::Tensor delta;
  if (norm == Norm::linf) {
    delta = uniform_like(gen, x, -epsilon, epsilon);
  } else {
    const torch::Tensor direction = normal_like(gen, x);
    const double d = static_cast<double>(x[0].numel());
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[0] = x.size(0);
    const torch::Tensor u = uniform_like(gen, torch::empty(shape, x.options()), 0.0, 1.0);
    delta = direction / (sample_norm(direction) + 1e-12) * epsilon * u.pow(1.0 / d);
  }
  return (x + delta).clamp(clip_min, clip_max);
}

}  // namespace detail
}  // namespace rar
