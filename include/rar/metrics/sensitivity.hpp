#pragma once
/// @file
/// Max-sensitivity of an explanation (Yeh et al., "On the (In)fidelity and Sensitivity of
/// Explanations", NeurIPS 2019), following Captum 0.7's `captum.metrics.sensitivity_max`.

#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/threat_model.hpp>  // rar::BallOptions and the one sampler of the ball
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace rar {

/// Options for `rar::max_sensitivity`.
///
/// The perturbations come from a `rar::BallOptions` block (`ball`): `radius` is its epsilon,
/// and by default it has no clip range (as Captum); the flat setters forward to it.
///
/// Example:
/// @code
/// auto opts = rar::MaxSensitivityOptions().radius(0.05).samples(20).seed(7).target(y);
/// torch::Tensor sens = rar::max_sensitivity(model, rar::explain::saliency(), x, opts);
/// @endcode
struct MaxSensitivityOptions {
  /// The ball the perturbations are drawn from, uniformly (defaults: radius 0.02, L∞, no clip
  /// range).
  RAR_ARG(BallOptions, ball) =
      BallOptions()
          .epsilon(0.02)
          .clip_min(-std::numeric_limits<double>::infinity())
          .clip_max(std::numeric_limits<double>::infinity());
  /// Radius r of the perturbation ball (finite, ≥ 0), in input units: `ball().epsilon()`.
  /// Captum's `perturb_radius`.
  RAR_ARG_ALIAS(double, ball, radius, epsilon);
  /// Ball the perturbations are drawn from, uniformly: `linf` draws each coordinate from
  /// U(−r, r) (Captum's `default_perturb_func`); `l2` draws uniformly from the L2 ball of
  /// radius r around each (flattened) sample: `ball().norm()`.
  RAR_ARG_ALIAS(Norm, ball, norm, norm);
  /// Lower end of the valid input range; perturbed inputs are clipped to it (default −∞):
  /// `ball().clip_min()`.
  RAR_ARG_ALIAS(double, ball, clip_min, clip_min);
  /// Upper end of the valid input range (default +∞): `ball().clip_max()`.
  RAR_ARG_ALIAS(double, ball, clip_max, clip_max);
  /// Number of perturbed inputs per sample (≥ 1). Captum's `n_perturb_samples`.
  RAR_ARG(int64_t, samples) = 10;
  /// Seed of the perturbations: all of them come from the stream (seed, 0), one `[N, D]` draw
  /// per round, so the same seed gives the same perturbations on every device.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device, passed to the explainer
  /// for the input and for every perturbed copy. Undefined: the explainer gets an undefined
  /// target (two-argument methods ignore it).
  RAR_ARG(torch::Tensor, target);
};

namespace detail {

/// `x` `[N, D]` plus one perturbation per sample drawn uniformly from `ball` (with its clip
/// range), from `generator` on the CPU: `rar::random_start`.
inline torch::Tensor perturb_uniform(at::Generator& generator, const torch::Tensor& x,
                                     const BallOptions& ball) {
  return random_start(generator, x, ball);
}

/// `perturb_uniform` without a clip range.
inline torch::Tensor perturb_uniform(at::Generator& generator, const torch::Tensor& x,
                                     double radius, Norm norm) {
  const double inf = std::numeric_limits<double>::infinity();
  return random_start(generator, x,
                      BallOptions().epsilon(radius).norm(norm).clip_min(-inf).clip_max(inf));
}

}  // namespace detail

/// Max-sensitivity of an explanation method: how much the explanation changes, at most, when
/// the input moves a little.
///
/// SENS_MAX(n) = max_{s = 1..samples} ‖Φ(x_n + δ_s) − Φ(x_n)‖₂ / ‖Φ(x_n)‖₂ with δ_s drawn
/// uniformly from the ball of radius r (Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the
/// (In)fidelity and Sensitivity of Explanations", NeurIPS 2019), estimated by Monte Carlo
/// sampling as in Captum 0.7's `sensitivity_max` with its defaults (`default_perturb_func`,
/// `norm_ord='fro'`): the norms are Frobenius norms of the flattened explanations, and a
/// sample whose explanation is all zero is divided by 1 instead of 0 (Captum's rule).
///
/// The method is any attribution method: an explainer `(model, x, target, create_graph)`
/// (e.g. `rar::explain::integrated_gradients(opts)`), called with the options' `target` and
/// create_graph = false, or an older `(model, x, target)` / `(model, x)` method
/// (through `rar::detail::call_explainer`).
///
/// Differences from Captum: the perturbations come from the stream (seed, 0)
/// (`rar::seeded_generator`), drawn in float64 on the CPU and cast to the input's dtype and
/// device (Captum draws float32 from the global generator); `Norm::l2` and a clip range are
/// added; the result is float64 on the CPU; and `method` is called once per perturbation round
/// on a batch of the N perturbed samples (Captum calls it on N·samples rows), so a per-sample
/// target `[N]` works unchanged.
///
/// Costs `samples + 1` calls of `method` on N rows. The inputs passed to `method` do not
/// require grad; methods that need gradients make their own leaf (as `rar::saliency` does).
///
/// Example:
/// @code
/// torch::Tensor sens = rar::max_sensitivity(model, rar::explain::saliency(), x,
///                                           rar::MaxSensitivityOptions().target(y));
/// // An older two-argument method:
/// auto explain = [&](auto& m, const torch::Tensor& in) {
///   return rar::saliency(m, in, rar::GradientOptions().target(y));
/// };
/// torch::Tensor same = rar::max_sensitivity(model, explain, x);  // float64 [N]
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param method an explainer `(model, input, target, create_graph) -> attributions`
///        `[N, ...]`
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param options the ball (radius, norm, clip range), samples, seed, target
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor max_sensitivity(Model&& model, Method&& method, const torch::Tensor& input,
                              const MaxSensitivityOptions& options = {}) {
  detail::static_check_model<Model>();
  static_assert(is_explainer_v<std::remove_reference_t<Method>, std::remove_reference_t<Model>>,
                "rar::max_sensitivity: method must be an explainer callable as "
                "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& target, "
                "bool create_graph) (e.g. rar::explain::saliency())");
  const char* fn = "rar::max_sensitivity";
  detail::check_batch(fn, "input", input);
  detail::check_ball(fn, options.ball(), "radius");
  detail::check_in_clip_range(fn, "input", input, options.ball());
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(input.numel() > 0, fn, ": input must not be empty, got shape ", input.sizes());

  const int64_t n = input.size(0);
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  const torch::Tensor x = input.detach();
  const torch::Tensor rows = x.reshape({n, -1});  // the ball is per flattened sample
  const auto explain = [&](const torch::Tensor& point, const torch::Tensor& reference) {
    torch::Tensor e = detail::call_explainer(fn, method, model, point, target, false);
    TORCH_CHECK(!reference.defined() || e.numel() == reference.numel(), fn,
                ": method returned attributions of ", e.numel() / n,
                " features per sample for a perturbed input and ", reference.numel() / n,
                " for the original input");
    return e.detach().reshape({n, -1}).to(torch::kDouble);
  };

  const torch::Tensor original = explain(x, {});
  torch::Tensor norm = original.norm(2, {1});
  norm = torch::where(norm == 0, torch::ones_like(norm), norm);
  at::Generator generator = seeded_generator(options.seed(), 0);
  torch::Tensor worst = torch::zeros({n}, original.options());
  for (int64_t s = 0; s < options.samples(); ++s) {
    const torch::Tensor moved = detail::perturb_uniform(generator, rows, options.ball());
    const torch::Tensor perturbed = explain(moved.view(x.sizes()), original);
    worst = torch::maximum(worst, (perturbed - original).norm(2, {1}) / norm);
  }
  return worst.cpu();
}

/// Max-sensitivity of the explanations of `target`: `rar::max_sensitivity` with
/// `options.target(target)`.
///
/// Example:
/// @code
/// torch::Tensor sens = rar::max_sensitivity(model, rar::explain::integrated_gradients(
///                                               rar::IGOptions().steps(32)), x, y);
/// @endcode
/// @param model any model
/// @param method an explainer (or an older method shape)
/// @param input batch `[N, ...]`
/// @param target int64 classes `[N]` (or 0-dim) on the input's device
/// @param options the ball (radius, norm, clip range), samples, seed
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor max_sensitivity(Model&& model, Method&& method, const torch::Tensor& input,
                              const torch::Tensor& target,
                              const MaxSensitivityOptions& options = {}) {
  return max_sensitivity(std::forward<Model>(model), std::forward<Method>(method), input,
                         MaxSensitivityOptions(options).target(target));
}

}  // namespace rar
