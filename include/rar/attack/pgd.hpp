#pragma once
/// @file
/// Projected gradient descent on the loss (Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards
/// Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018): the prediction attack
/// behind adversarial accuracy (AA) and the `rar::adversarial` training term.

#include <rar/attack/ball.hpp>
#include <rar/attribution/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/detail/model.hpp>
#include <rar/detail/random.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <utility>

namespace rar {

/// Options for `rar::pgd_attack` (and the `rar::adversarial` training term).
///
/// Defaults are the MNIST setting of Madry et al. and Chen et al. (ε = 0.3, 40 steps of 0.01,
/// uniform random start in the L∞ ball, pixels in [0, 1]).
///
/// Example:
/// @code
/// auto opts = rar::PGDOptions().epsilon(0.1).step_size(0.01).steps(20).seed(7);
/// torch::Tensor x_adv = rar::pgd_attack(model, x, y, opts);
/// // An L2 attack that lowers the loss of class 3 instead:
/// auto targeted = rar::PGDOptions().norm(rar::Norm::l2).epsilon(1.5).step_size(0.1)
///                     .targeted(true);
/// torch::Tensor x_to_3 = rar::pgd_attack(model, x, torch::full({x.size(0)}, 3, torch::kLong),
///                                        targeted);
/// @endcode
struct PGDOptions {
  /// Radius ε of the ball (≥ 0), in input units.
  RAR_ARG(double, epsilon) = 0.3;
  /// Length of each step (≥ 0): α·sign(∇) for L∞, α·∇/‖∇‖₂ for L2.
  RAR_ARG(double, step_size) = 0.01;
  /// Number of steps (≥ 0; 0 returns the start point).
  RAR_ARG(int64_t, steps) = 40;
  /// Start from a uniformly random point of the ball (seeded by `seed`) instead of x.
  RAR_ARG(bool, random_start) = true;
  /// The ball: L∞ (sign steps) or L2 (normalized-gradient steps).
  RAR_ARG(Norm, norm) = Norm::linf;
  /// Lower end of the valid input range (every iterate is clipped to it).
  RAR_ARG(double, clip_min) = 0.0;
  /// Upper end of the valid input range (≥ clip_min).
  RAR_ARG(double, clip_max) = 1.0;
  /// Seed of the random start; the same seed gives the same start on every device.
  RAR_ARG(uint64_t, seed) = 0;
  /// Per-sample loss `(output [N, C], target [N]) -> [N]` that the attack ascends
  /// (or, with `targeted`, descends). Default: cross-entropy.
  RAR_ARG(ScoreFunction, loss) = score::cross_entropy;
  /// Descend the loss of the given target class (move toward it) instead of ascending the
  /// loss of the true class (move away from it).
  RAR_ARG(bool, targeted) = false;
};

namespace detail {

/// Validates the options of a PGD-style attack; `fn` names the public entry point.
inline void check_pgd_options(const char* fn, const PGDOptions& options) {
  TORCH_CHECK(std::isfinite(options.epsilon()) && options.epsilon() >= 0, fn,
              ": epsilon must be >= 0, got ", options.epsilon());
  TORCH_CHECK(std::isfinite(options.step_size()) && options.step_size() >= 0, fn,
              ": step_size must be >= 0, got ", options.step_size());
  TORCH_CHECK(options.steps() >= 0, fn, ": steps must be >= 0, got ", options.steps());
  TORCH_CHECK(options.clip_min() <= options.clip_max(), fn,
              ": clip_min must be <= clip_max, got clip_min = ", options.clip_min(),
              " and clip_max = ", options.clip_max());
  TORCH_CHECK(static_cast<bool>(options.loss()), fn, ": loss must be a callable");
}

/// ∂ Σ_n loss(model(x_adv), target)_n / ∂x_adv, the per-sample loss gradients in one backward.
///
/// Only the input gets a gradient (`torch::autograd::grad`), so the model's parameters'
/// `.grad` stay untouched; runs with grad mode on even under a caller's `NoGradGuard`.
template <class Model>
torch::Tensor loss_input_gradient(const char* fn, Model& model, const torch::Tensor& x_adv,
                                  const torch::Tensor& target, const ScoreFunction& loss) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor x = x_adv.detach().requires_grad_(true);
  const torch::Tensor l = loss(call_model(model, x), target);
  TORCH_CHECK(l.dim() == 1 && l.size(0) == x.size(0), fn,
              ": the loss must return one value per sample, shape [", x.size(0), "], got ",
              l.sizes());
  TORCH_CHECK(l.requires_grad(), fn,
              ": the loss does not depend on the input through autograd (does the model detach "
              "its input or run under a NoGradGuard of its own?)");
  torch::Tensor g =
      torch::autograd::grad({l.sum()}, {x}, {}, false, false, /*allow_unused=*/true)[0];
  return g.defined() ? g : torch::zeros_like(x);
}

/// The PGD start point: a seeded uniform point of the ball (`random_start`) or x itself.
inline torch::Tensor pgd_start(const torch::Tensor& x, const PGDOptions& options) {
  if (!options.random_start()) return x.detach();
  at::Generator gen = seeded_generator(options.seed());
  torch::NoGradGuard no_grad;
  return random_start(gen, x.detach(), options.epsilon(), options.norm(), options.clip_min(),
                      options.clip_max());
}

/// The direction PGD ascends at `x_adv`: ∇ of the summed loss, negated when `targeted`.
template <class Model>
torch::Tensor pgd_direction(Model& model, const torch::Tensor& x_adv, const torch::Tensor& target,
                            const PGDOptions& options, const char* fn) {
  torch::Tensor g = loss_input_gradient(fn, model, x_adv, target, options.loss());
  return options.targeted() ? -g : g;
}

/// One PGD step from `x_adv`: ascend the loss (descend it when `targeted`), then project onto
/// N(x, ε) ∩ [clip_min, clip_max]. Arguments are assumed validated; the result is detached.
template <class Model>
torch::Tensor pgd_step(Model& model, const torch::Tensor& x_adv, const torch::Tensor& x,
                       const torch::Tensor& target, const PGDOptions& options,
                       const char* fn = "rar::pgd_attack") {
  return projected_ascent(x, x_adv, 1, options.step_size(), options.epsilon(), options.norm(),
                          options.clip_min(), options.clip_max(), [&](const torch::Tensor& xa) {
                            return pgd_direction(model, xa, target, options, fn);
                          });
}

/// PGD with validated arguments (`target` already expanded to `[N]` on x's device): the
/// start point, then `steps` projected steps. Returns the adversarial batch, detached.
template <class Model>
torch::Tensor pgd_attack_unchecked(Model& model, const torch::Tensor& x,
                                   const torch::Tensor& target, const PGDOptions& options,
                                   const char* fn = "rar::pgd_attack") {
  return projected_ascent(
      x, pgd_start(x, options), options.steps(), options.step_size(), options.epsilon(),
      options.norm(), options.clip_min(), options.clip_max(),
      [&](const torch::Tensor& xa) { return pgd_direction(model, xa, target, options, fn); });
}

}  // namespace detail

/// Projected gradient descent (Madry et al., ICLR 2018): maximizes the loss of `target` over
/// the ε-ball around each input, intersected with [clip_min, clip_max].
///
/// From x (or a seeded uniform point of the ball with `random_start`), `steps` times:
/// x ← Π(x + α·sign(∇ₓℓ)) for L∞, x ← Π(x + α·∇ₓℓ/‖∇ₓℓ‖₂) for L2, Π being the projection onto
/// N(x₀, ε) ∩ [clip_min, clip_max]. With `targeted(true)` the step goes down the loss of
/// `target` instead (toward that class). All samples are attacked at once (one forward and one
/// backward per step); each sample's gradient is its own as long as the model treats samples
/// independently (put BatchNorm/Dropout models in eval mode first).
///
/// The model's mode, parameters, `requires_grad` flags and `.grad` are left untouched (the
/// gradient is taken w.r.t. the input only); it works under a caller's `torch::NoGradGuard`.
/// An input outside [clip_min, clip_max] is accepted: every iterate is clipped into the range,
/// so such a sample may end farther than ε from its input (the ball guarantee holds for inputs
/// inside the range).
///
/// Example:
/// @code
/// model->eval();
/// torch::Tensor x_adv = rar::pgd_attack(model, x, y, rar::PGDOptions().epsilon(0.1).steps(20));
/// double adversarial_accuracy =
///     (model->forward(x_adv).argmax(1) == y).to(torch::kDouble).mean().item<double>();
/// @endcode
/// @param model any model mapping `[N, ...]` to logits `[N, C]` (module holder, module, or
///        callable `torch::Tensor(const torch::Tensor&)`)
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param target int64 class indices `[N]` (or 0-dim, for every sample) on the input's device:
///        the true labels (or, with `targeted`, the classes to move toward)
/// @param options epsilon, step_size, steps, random_start, norm, clip range, seed, loss, targeted
/// @return the adversarial batch, shape/dtype/device of `input`, detached
template <class Model>
torch::Tensor pgd_attack(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                         const PGDOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::pgd_attack";
  detail::check_batch(fn, "input", input);
  detail::check_pgd_options(fn, options);
  TORCH_CHECK(target.defined(), fn, ": target must be a defined int64 tensor of class indices");
  const torch::Tensor t = detail::expand_target(fn, target, input.size(0), input.device());
  return detail::pgd_attack_unchecked(model, input, t, options, fn);
}

}  // namespace rar
