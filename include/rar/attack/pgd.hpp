#pragma once
/// @file
/// Projected gradient descent on the loss (Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards
/// Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018): the prediction attack
/// behind adversarial accuracy (AA) and the `rar::adversarial` training term.

#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/core/threat_model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <utility>

namespace rar {

/// Options for `rar::pgd_attack` (and the `rar::adversarial` training term).
///
/// The threat model is two blocks, `ball` (epsilon, norm, clip_min, clip_max) and `ascent`
/// (steps, step_size, random_start, seed); the flat setters forward to them
/// (`PGDOptions().epsilon(0.1)` sets `ball().epsilon()`). Defaults are the MNIST setting of
/// Madry et al. and Chen et al. (ε = 0.3, 40 steps of 0.01, uniform random start in the L∞
/// ball, pixels in [0, 1]).
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
/// // The same ball as another method's:
/// auto same_ball = rar::PGDOptions().ball(rar::IGNormOptions().epsilon(0.1).ball());
/// @endcode
struct PGDOptions {
  /// The ball N(x, ε) ∩ [clip_min, clip_max] (defaults: ε = 0.3, L∞, [0, 1]).
  RAR_ARG(BallOptions, ball) = BallOptions();
  /// The ascent (defaults: 40 steps of 0.01 from a random start, seed 0).
  RAR_ARG(AscentOptions, ascent) = AscentOptions();
  /// Radius ε of the ball (≥ 0), in input units: `ball().epsilon()`.
  RAR_ARG_ALIAS(double, ball, epsilon, epsilon);
  /// The ball: L∞ (sign steps) or L2 (normalized-gradient steps): `ball().norm()`.
  RAR_ARG_ALIAS(Norm, ball, norm, norm);
  /// Lower end of the valid input range (every iterate is clipped to it): `ball().clip_min()`.
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);
  /// Upper end of the valid input range (≥ clip_min): `ball().clip_max()`.
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);
  /// Length of each step (≥ 0): α·sign(∇) for L∞, α·∇/‖∇‖₂ for L2: `ascent().step_size()`.
  RAR_ARG_ALIAS(double, ascent, step_size, step_size);
  /// Number of steps (≥ 0; 0 returns the start point): `ascent().steps()`.
  RAR_ARG_ALIAS(int64_t, ascent, steps, steps);
  /// Start from a uniformly random point of the ball (seeded by `seed`) instead of x:
  /// `ascent().random_start()`.
  RAR_ARG_ALIAS(bool, ascent, random_start, random_start);
  /// Seed of the random start; the same seed gives the same start on every device:
  /// `ascent().seed()`. `rar::pgd_attack` draws from the stream (seed, 0); the i-th call of
  /// `rar::adversarial` from (seed, i).
  RAR_ARG_ALIAS(uint64_t, ascent, seed, seed);
  /// Per-sample loss `(output [N, C], target [N]) -> [N]` that the attack ascends
  /// (or, with `targeted`, descends). Default: cross-entropy.
  RAR_ARG(ScoreFunction, loss) = score::cross_entropy;
  /// Descend the loss of the given target class (move toward it) instead of ascending the
  /// loss of the true class (move away from it).
  RAR_ARG(bool, targeted) = false;
  /// Called with every iterate (see `rar::AscentCallback`); the objective it receives is the
  /// per-sample loss (its negative when `targeted`: what the steps climb).
  RAR_ARG(AscentCallback, callback);
};

namespace detail {

/// Validates the options of a PGD-style attack; `fn` names the public entry point.
inline void check_pgd_options(const char* fn, const PGDOptions& options) {
  check_ball(fn, options.ball());
  check_ascent(fn, options.ascent());
  rar::detail::check_callable(fn, "loss", options.loss());
}

/// ∂ Σ_n loss(model(x_adv), target)_n / ∂x_adv, the per-sample loss gradients in one backward;
/// the per-sample losses go to `values` when given.
///
/// Only the input gets a gradient (`torch::autograd::grad`), so the model's parameters'
/// `.grad` stay untouched; runs with grad mode on even under a caller's `NoGradGuard`.
template <class Model>
torch::Tensor loss_input_gradient(const char* fn, Model& model, const torch::Tensor& x_adv,
                                  const torch::Tensor& target, const ScoreFunction& loss,
                                  torch::Tensor* values = nullptr) {
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor x = x_adv.detach().requires_grad_(true);
  const torch::Tensor l = loss(call_model(model, x), target);
  TORCH_CHECK(l.dim() == 1 && l.size(0) == x.size(0), fn,
              ": the loss must return one value per sample, shape [", x.size(0), "], got ",
              l.sizes());
  TORCH_CHECK(l.requires_grad(), fn,
              ": the loss does not depend on the input through autograd (does the model detach "
              "its input or run under a NoGradGuard of its own?)");
  if (values) *values = l.detach();
  torch::Tensor g =
      torch::autograd::grad({l.sum()}, {x}, {}, false, false, /*allow_unused=*/true)[0];
  return g.defined() ? g : torch::zeros_like(x);
}

/// The PGD start point: a uniform point of the ball from the stream (seed, `index`)
/// (`random_start`) or x itself.
inline torch::Tensor pgd_start(const torch::Tensor& x, const PGDOptions& options,
                               uint64_t index = 0) {
  return ascent_start(x, options.ball(), options.ascent(), index);
}

/// The direction PGD ascends at `x_adv`: ∇ of the summed loss, negated when `targeted`, with
/// the per-sample objective climbed (the loss, or its negative).
template <class Model>
AscentDirection pgd_direction(Model& model, const torch::Tensor& x_adv,
                              const torch::Tensor& target, const PGDOptions& options,
                              const char* fn) {
  torch::Tensor loss;
  torch::Tensor g = loss_input_gradient(fn, model, x_adv, target, options.loss(), &loss);
  if (options.targeted()) return {-g, -loss};
  return {g, loss};
}

/// One PGD step from `x_adv`: ascend the loss (descend it when `targeted`), then project onto
/// N(x, ε) ∩ [clip_min, clip_max]. Arguments are assumed validated; the result is detached.
template <class Model>
torch::Tensor pgd_step(Model& model, const torch::Tensor& x_adv, const torch::Tensor& x,
                       const torch::Tensor& target, const PGDOptions& options,
                       const char* fn = "rar::pgd_attack") {
  const AscentDirection d = pgd_direction(model, x_adv, target, options, fn);
  torch::NoGradGuard no_grad;
  return project_to_ball(
      ascent_step(x_adv.detach(), d.direction, options.step_size(), options.norm()), x.detach(),
      options.ball());
}

/// PGD with validated arguments (`target` already expanded to `[N]` on x's device): the
/// start point from the stream (seed, `index`), then `steps` projected steps. Returns the
/// adversarial batch, detached.
template <class Model>
torch::Tensor pgd_attack_unchecked(Model& model, const torch::Tensor& x,
                                   const torch::Tensor& target, const PGDOptions& options,
                                   const char* fn = "rar::pgd_attack", uint64_t index = 0) {
  return projected_ascent(
      x, pgd_start(x, options, index), options.ball(), options.ascent(),
      [&](const torch::Tensor& xa) { return pgd_direction(model, xa, target, options, fn); },
      options.callback());
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
/// @param options the ball (epsilon, norm, clip range), the ascent (steps, step_size,
///        random_start, seed), loss, targeted, callback
/// @return the adversarial batch, shape/dtype/device of `input`, detached
template <class Model>
torch::Tensor pgd_attack(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                         const PGDOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::pgd_attack";
  detail::check_input(fn, "input", input);
  detail::check_pgd_options(fn, options);
  detail::check_in_clip_range(fn, "input", input, options.ball());
  TORCH_CHECK(target.defined(), fn, ": target must be a defined int64 tensor of class indices");
  const torch::Tensor t = detail::expand_target(fn, target, input.size(0), input.device());
  return detail::pgd_attack_unchecked(model, input, t, options, fn);
}

}  // namespace rar
