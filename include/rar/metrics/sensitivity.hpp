#pragma once
/// @file
/// Max-sensitivity of an explanation (Yeh et al., "On the (In)fidelity and Sensitivity of
/// Explanations", NeurIPS 2019), following Captum 0.7's `captum.metrics.sensitivity_max`.

#include <rar/attack/ball.hpp>  // rar::Norm and the one sampler of the perturbation ball
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/detail/model.hpp>
#include <rar/detail/random.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace rar {

/// Options for `rar::max_sensitivity`.
///
/// Example:
/// @code
/// auto opts = rar::MaxSensitivityOptions().radius(0.05).samples(20).seed(7);
/// torch::Tensor sens = rar::max_sensitivity(model, explain, x, opts);
/// @endcode
struct MaxSensitivityOptions {
  /// Radius r of the perturbation ball (≥ 0), in input units. Captum's `perturb_radius`.
  RAR_ARG(double, radius) = 0.02;
  /// Number of perturbed inputs per sample (≥ 1). Captum's `n_perturb_samples`.
  RAR_ARG(int64_t, samples) = 10;
  /// Ball the perturbations are drawn from, uniformly: `linf` draws each coordinate from
  /// U(−r, r) (Captum's `default_perturb_func`); `l2` draws uniformly from the L2 ball of
  /// radius r around each (flattened) sample.
  RAR_ARG(Norm, norm) = Norm::linf;
  /// Seed of the CPU generator the perturbations are drawn from: the same seed gives the same
  /// perturbations on every device.
  RAR_ARG(uint64_t, seed) = 0;
};

namespace detail {

/// `x` `[N, D]` plus one perturbation per sample drawn uniformly from the ball of `radius`
/// in `norm` (`rar::detail::random_start` without clipping), from `generator` on the CPU.
inline torch::Tensor perturb_uniform(at::Generator& generator, const torch::Tensor& x,
                                     double radius, Norm norm) {
  const double inf = std::numeric_limits<double>::infinity();
  return random_start(generator, x, radius, norm, -inf, inf);
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
/// Differences from Captum: the perturbations come from a CPU generator seeded with `seed`,
/// drawn in float64 and cast to the input's dtype and device (Captum draws float32 from the
/// global generator); `Norm::l2` is added; the result is float64 on the CPU; and `method` is
/// called once per perturbation round on a batch of the N perturbed samples (Captum calls it
/// on N·samples rows), so a method that captures a per-sample target `[N]` works unchanged.
///
/// Costs `samples + 1` calls of `method` on N rows. The inputs passed to `method` do not
/// require grad; methods that need gradients make their own leaf (as `rar::saliency` does).
///
/// Example:
/// @code
/// auto explain = [&](auto& m, const torch::Tensor& x) {
///   return rar::saliency(m, x, rar::GradientOptions().target(y));
/// };
/// torch::Tensor sens = rar::max_sensitivity(model, explain, x);  // float64 [N]
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param method callable `(model, input) -> attributions` with attributions `[N, ...]`
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param options radius, samples, norm, seed
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor max_sensitivity(Model&& model, Method&& method, const torch::Tensor& input,
                              const MaxSensitivityOptions& options = {}) {
  detail::static_check_model<Model>();
  static_assert(std::is_invocable_r_v<torch::Tensor, Method&, Model&, const torch::Tensor&>,
                "rar::max_sensitivity: method must be a callable (model, input) -> torch::Tensor "
                "attributions, e.g. [](auto& model, const torch::Tensor& x) { return "
                "rar::saliency(model, x); }");
  const char* fn = "rar::max_sensitivity";
  detail::check_batch(fn, "input", input);
  TORCH_CHECK(std::isfinite(options.radius()) && options.radius() >= 0, fn,
              ": radius must be finite and >= 0, got ", options.radius());
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(input.numel() > 0, fn, ": input must not be empty, got shape ", input.sizes());

  const int64_t n = input.size(0);
  const torch::Tensor x = input.detach();
  const torch::Tensor rows = x.reshape({n, -1});  // the ball is per flattened sample
  const auto explain = [&](const torch::Tensor& point, const torch::Tensor& reference) {
    torch::Tensor e = method(model, point);
    TORCH_CHECK(e.defined() && e.dim() >= 1 && e.size(0) == n, fn,
                ": method must return attributions [N, ...] with N = ", n, ", got ",
                e.defined() ? e.sizes() : torch::IntArrayRef{});
    TORCH_CHECK(!reference.defined() || e.numel() == reference.numel(), fn,
                ": method returned attributions of ", e.numel() / n,
                " features per sample for a perturbed input and ", reference.numel() / n,
                " for the original input");
    return e.detach().reshape({n, -1}).to(torch::kDouble);
  };

  const torch::Tensor original = explain(x, {});
  torch::Tensor norm = original.norm(2, {1});
  norm = torch::where(norm == 0, torch::ones_like(norm), norm);
  at::Generator generator = detail::seeded_generator(options.seed());
  torch::Tensor worst = torch::zeros({n}, original.options());
  for (int64_t s = 0; s < options.samples(); ++s) {
    const torch::Tensor moved =
        detail::perturb_uniform(generator, rows, options.radius(), options.norm());
    const torch::Tensor perturbed = explain(moved.view(x.sizes()), original);
    worst = torch::maximum(worst, (perturbed - original).norm(2, {1}) / norm);
  }
  return worst.cpu();
}

}  // namespace rar
