#pragma once
/// @file
/// The threat model shared by PGD, the attribution attacks and the RAR inner maximization:
/// the ε-ball around x (L∞ or L2) intersected with the data range, its projection, the ascent
/// step and the random start. The math exists once, here.

#include <torch/torch.h>

#include <rar/detail/random.hpp>

namespace rar {

/// The norm of the perturbation ball N(x, ε).
///
/// Example: `rar::pgd_attack(model, x, y, rar::PGDOptions().norm(rar::Norm::l2).epsilon(1.5))`.
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

/// Projected ascent: `steps` times x_adv ← Π_{N(x, ε) ∩ [clip_min, clip_max]}(x_adv + step),
/// the step being `ascent_step` along `grad_fn(x_adv)`. The loop of PGD, reusable with any
/// objective (e.g. an attribution norm): `grad_fn(x_adv)` returns the ascent direction's
/// gradient, shape of x. Returns the last iterate, detached.
template <class GradFn>
torch::Tensor projected_ascent(const torch::Tensor& x, torch::Tensor x_adv, int64_t steps,
                               double step_size, double epsilon, Norm norm, double clip_min,
                               double clip_max, GradFn&& grad_fn) {
  x_adv = x_adv.detach();
  const torch::Tensor anchor = x.detach();
  for (int64_t s = 0; s < steps; ++s) {
    const torch::Tensor g = grad_fn(x_adv);
    torch::NoGradGuard no_grad;
    x_adv =
        project(ascent_step(x_adv, g, step_size, norm), anchor, epsilon, norm, clip_min, clip_max);
  }
  return x_adv.detach();
}

}  // namespace detail
}  // namespace rar
