#pragma once
/// @file
/// Robustness metrics of explanations, with Quantus' definitions
/// (understandable-machine-intelligence-lab/Quantus, `quantus/metrics/robustness/` and
/// `quantus/metrics/axiomatic/input_invariance.py`): the local Lipschitz estimate
/// (Alvarez-Melis & Jaakkola 2018), the relative input, output and representation stabilities
/// (Agarwal et al. 2022), continuity under translation (Montavon, Samek, Müller 2018) and input
/// invariance (Kindermans et al. 2017). `rar::max_sensitivity` (Yeh et al. 2019) lives in
/// `rar/metrics/sensitivity.hpp`, included here.
///
/// Each metric takes a model, an explainer and a batch `[N, ...]`, and returns float64 `[N]` on
/// the CPU. The perturbed rows of all samples are explained in chunked calls of the explainer
/// over many rows (`internal_batch_size`, 0 = the batching rule `rar::detail::for_each_row_chunk`)
/// and the model runs on them without gradients. Random perturbations come from the stream
/// (seed, 0) (`rar/core/random.hpp`), or are given explicitly (`noise`).

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/metrics/sensitivity.hpp>
#include <string>
#include <type_traits>
#include <utility>

namespace rar {

/// What a robustness metric does with a perturbation that changes the model's prediction
/// (argmax of the output) — Quantus' `return_nan_when_prediction_changes`.
///
/// Example: `rar::RelativeStabilityOptions().prediction_change(rar::PredictionChange::skip)`.
enum class PredictionChange {
  keep,  ///< count it like any other (Quantus' `return_nan_when_prediction_changes=False`)
  nan,   ///< the sample's result is NaN if any of its perturbations changed the prediction
         ///< (Quantus' `True`: its `np.max` over the perturbations propagates the NaN)
  skip   ///< leave it out of the maximum (Agarwal et al.'s constraint ŷ(x′) = ŷ(x)); NaN when
         ///< every perturbation of the sample changed the prediction
};

/// Options of `rar::local_lipschitz_estimate` (Quantus' `LocalLipschitzEstimate` defaults).
///
/// Example:
/// @code
/// auto opts = rar::LocalLipschitzOptions().nr_samples(50).perturb_std(0.05).seed(3).target(y);
/// torch::Tensor lle = rar::local_lipschitz_estimate(model, rar::explain::saliency(), x, opts);
/// @endcode
struct LocalLipschitzOptions {
  /// Perturbations per sample, S ≥ 1 (Quantus' `nr_samples`, default 200).
  RAR_ARG(int64_t, nr_samples) = 200;
  /// Mean of the Gaussian noise added to every feature (Quantus' `perturb_mean`, default 0).
  RAR_ARG(double, perturb_mean) = 0.0;
  /// Standard deviation of the noise, ≥ 0 (Quantus' `perturb_std`, default 0.1).
  RAR_ARG(double, perturb_std) = 0.1;
  /// The additive perturbations themselves, `[nr_samples, N, ...]` (x′ₛ = x + noise[s]), any
  /// floating dtype, on the CPU or the input's device. Undefined (default): perturb_mean +
  /// perturb_std · ε with ε ~ N(0, 1), one `[nr_samples, N, ...]` draw from the stream (seed, 0).
  RAR_ARG(torch::Tensor, noise);
  /// Divide every explanation by its largest |value| (Quantus' `normalise` with
  /// `normalise_by_max`, default true), per sample; an all-zero explanation stays zero.
  RAR_ARG(bool, normalise) = true;
  /// Use |explanation| (after `normalise`; Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Perturbations that change the prediction (default `keep`, Quantus' default false).
  RAR_ARG(PredictionChange, prediction_change) = PredictionChange::keep;
  /// Seed of the default noise.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device, passed to the explainer for
  /// the input and for every perturbed copy. Undefined: the explainer gets an undefined target.
  RAR_ARG(torch::Tensor, target);
  /// Rows per explainer call and per forward over the N·S perturbed rows; 0: the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// A hidden representation for `rar::relative_representation_stability`: maps a batch `[R, ...]`
/// to the model's internal representation `[R, ...]` (e.g. the output of a layer).
using RepresentationFunction = std::function<torch::Tensor(const torch::Tensor&)>;

/// Options of `rar::relative_input_stability`, `rar::relative_output_stability` and
/// `rar::relative_representation_stability` (Quantus' defaults).
///
/// Example:
/// @code
/// auto opts = rar::RelativeStabilityOptions().nr_samples(50).lower_bound(-0.05)
///                 .upper_bound(0.05).target(y);
/// torch::Tensor ris = rar::relative_input_stability(model, rar::explain::saliency(), x, opts);
/// @endcode
struct RelativeStabilityOptions {
  /// Perturbations per sample, S ≥ 1 (Quantus' `nr_samples`, default 200).
  RAR_ARG(int64_t, nr_samples) = 200;
  /// Lower end of the uniform noise added to every feature (Quantus' `batch_uniform_noise`
  /// `lower_bound`, default 0.02).
  RAR_ARG(double, lower_bound) = 0.02;
  /// Upper end of the uniform noise (> lower_bound; Quantus' metrics pass `upper_bound=0.2`).
  /// Quantus' default noise is thus U(0.02, 0.2): every feature moves up; set
  /// `lower_bound(-b).upper_bound(b)` for a symmetric ball.
  RAR_ARG(double, upper_bound) = 0.2;
  /// The additive perturbations themselves, `[nr_samples, N, ...]`; undefined (default):
  /// U(lower_bound, upper_bound), one `[nr_samples, N, ...]` draw from the stream (seed, 0).
  RAR_ARG(torch::Tensor, noise);
  /// ε_min > 0: replaces zeros of the divisors (Quantus' `eps_min`, default 1e-6).
  RAR_ARG(double, eps_min) = 1e-6;
  /// Divide every explanation by the root of its mean square (Quantus' `normalise` with
  /// `normalise_by_average_second_moment_estimate`, default false), per sample; an all-zero
  /// explanation stays zero.
  RAR_ARG(bool, normalise) = false;
  /// Use |explanation| (after `normalise`; Quantus' `abs`, default false).
  RAR_ARG(bool, abs) = false;
  /// Perturbations that change the prediction (default `nan`, Quantus' default true).
  RAR_ARG(PredictionChange, prediction_change) = PredictionChange::nan;
  /// Seed of the default noise.
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device (undefined: passed on).
  RAR_ARG(torch::Tensor, target);
  /// Relative representation stability only: the internal representation L(x) (Quantus' hidden
  /// layers chosen by `layer_names` / `layer_indices`); required there, unused elsewhere.
  RAR_ARG(RepresentationFunction, representation);
  /// Rows per explainer call and per forward over the N·S perturbed rows; 0: the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// Options of `rar::continuity` (Quantus' `Continuity` defaults).
///
/// Example:
/// @code
/// auto opts = rar::ContinuityOptions().nr_steps(14).target(y);
/// torch::Tensor cont = rar::continuity(model, rar::explain::saliency(), images, opts);
/// @endcode
struct ContinuityOptions {
  /// Translations, 1 ≤ T ≤ 2W + 1 with W the size of the input's last dimension (Quantus'
  /// `nr_steps`, default 28).
  RAR_ARG(int64_t, nr_steps) = 28;
  /// The value shifted in: undefined (default) each sample's minimum (Quantus' "black"), a 0-dim
  /// tensor (one value), or a tensor broadcastable to the input with its dtype and device.
  RAR_ARG(torch::Tensor, baseline);
  /// Divide every explanation by its largest |value|, per sample (Quantus' default true).
  RAR_ARG(bool, normalise) = true;
  /// Use |explanation| (after `normalise`; Quantus' default true).
  RAR_ARG(bool, abs) = true;
  /// Translations that change the prediction away from the target (default `keep`, Quantus'
  /// default false).
  RAR_ARG(PredictionChange, prediction_change) = PredictionChange::keep;
  /// The class explained, int64 `[N]` or 0-dim on the input's device (undefined: passed on; a
  /// prediction change is then judged against the model's prediction for the input).
  RAR_ARG(torch::Tensor, target);
  /// Rows per explainer call and per forward over the N·T translated rows; 0: the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// Options of `rar::input_invariance` (Quantus' `InputInvariance` defaults).
///
/// Example:
/// @code
/// auto opts = rar::InputInvarianceOptions().input_shift(-1.0).target(y);
/// @endcode
struct InputInvarianceOptions {
  /// The constant m added to every feature (Quantus' `input_shift`, default −1).
  RAR_ARG(double, input_shift) = -1.0;
  /// Absolute tolerance of the comparison (Quantus' `np.isclose(..., atol=1e-4)`).
  RAR_ARG(double, atol) = 1e-4;
  /// Relative tolerance of the comparison (numpy's `isclose` default 1e-5).
  RAR_ARG(double, rtol) = 1e-5;
  /// Divide every explanation by its largest |value|, per sample (Quantus' default false).
  RAR_ARG(bool, normalise) = false;
  /// Use |explanation| (Quantus' default false).
  RAR_ARG(bool, abs) = false;
  /// The class explained, int64 `[N]` or 0-dim on the input's device (undefined: passed on).
  RAR_ARG(torch::Tensor, target);
};

namespace detail {

/// Rows `[R, D]` divided by their largest |value| (Quantus' `normalise_by_max` per sample);
/// all-zero rows stay zero.
inline torch::Tensor normalise_rows_by_max(const torch::Tensor& rows) {
  const torch::Tensor m = rows.abs().amax(1, /*keepdim=*/true);
  return rows / torch::where(m == 0, torch::ones_like(m), m);
}

/// Rows `[R, D]` divided by the root of their mean square (Quantus'
/// `normalise_by_average_second_moment_estimate` per sample); all-zero rows stay zero.
inline torch::Tensor normalise_rows_by_second_moment(const torch::Tensor& rows) {
  const torch::Tensor m = rows.pow(2).mean(1, /*keepdim=*/true).sqrt();
  return rows / torch::where(m == 0, torch::ones_like(m), m);
}

/// How a robustness metric post-processes explanations: normalise (by max or by second
/// moment), then abs.
struct ExplanationPost {
  bool normalise = false;
  bool second_moment = false;
  bool abs = false;
  torch::Tensor operator()(torch::Tensor rows) const {
    if (normalise)
      rows = second_moment ? normalise_rows_by_second_moment(rows) : normalise_rows_by_max(rows);
    return abs ? rows.abs() : rows;
  }
};

/// The explanations of `rows` `[R, ...]` for `targets` (`[R]` or undefined), float64 `[R, D]`
/// on the rows' device, from chunked calls of `method` (`chunk` rows, 0 = the batching rule),
/// post-processed with `post`. `features` (> 0) is the per-row size the explanations must have.
template <class Method, class Model>
torch::Tensor explain_rows(const char* fn, Method& method, Model& model, const torch::Tensor& rows,
                           const torch::Tensor& targets, int64_t chunk, int64_t features,
                           const ExplanationPost& post) {
  const int64_t r = rows.size(0);
  torch::Tensor out = torch::empty({r, features}, rows.options().dtype(torch::kDouble));
  const int64_t row_bytes = rows[0].numel() * static_cast<int64_t>(rows.element_size());
  for_each_row_chunk(r, chunk, rows.device(), row_bytes, [&](int64_t start, int64_t stop) {
    const torch::Tensor t = targets.defined() ? targets.slice(0, start, stop) : targets;
    const torch::Tensor e = call_explainer(fn, method, model, rows.slice(0, start, stop), t, false);
    TORCH_CHECK(e.defined() && e.dim() >= 1 && e.size(0) == stop - start &&
                    e.numel() == (stop - start) * features,
                fn, ": method must return attributions of ", features,
                " values per row for the perturbed inputs, as for the input, got shape ",
                e.defined() ? e.sizes() : torch::IntArrayRef{}, " for ", stop - start, " rows");
    out.slice(0, start, stop)
        .copy_(post(e.detach().reshape({stop - start, -1}).to(torch::kDouble)));
  });
  return out;
}

/// The model's outputs on `rows`, flattened to float64 `[R, C]`, in chunked forwards without
/// gradients; errors are raised in terms of the user's `input`.
template <class Model>
torch::Tensor forward_rows(const char* fn, Model& model, const torch::Tensor& rows, int64_t chunk,
                           const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  const int64_t row_bytes = rows[0].numel() * static_cast<int64_t>(rows.element_size());
  for_each_row_chunk(
      rows.size(0), chunk, rows.device(), row_bytes, [&](int64_t start, int64_t stop) {
        const torch::Tensor part = rows.slice(0, start, stop);
        torch::Tensor o = in_user_terms(
            fn, model, input, [&] { return call_model(model, part); },
            [&] {
              return "a batch of " + std::to_string(stop - start) + " perturbed copies of the " +
                     std::to_string(input.size(0)) + " samples";
            });
        TORCH_CHECK(o.defined() && o.dim() >= 1 && o.size(0) == stop - start, fn,
                    ": the model must return outputs [R, ...] for R rows, got ",
                    o.defined() ? o.sizes() : torch::IntArrayRef{});
        parts.push_back(o.detach().reshape({stop - start, -1}).to(torch::kDouble));
      });
  return torch::cat(parts, 0);
}

/// The additive perturbations `[S, N, ...]` with the input's dtype and device: the user's
/// `noise` (checked) or `draw(generator, like)` from the stream (seed, 0).
template <class Draw>
torch::Tensor perturbation_noise(const char* fn, const torch::Tensor& noise, int64_t samples,
                                 const torch::Tensor& input, uint64_t seed, Draw&& draw) {
  std::vector<int64_t> shape{samples};
  for (const int64_t d : input.sizes()) shape.push_back(d);
  if (noise.defined()) {
    TORCH_CHECK(noise.sizes() == torch::IntArrayRef(shape), fn,
                ": noise must have shape [nr_samples, N, ...] = ", torch::IntArrayRef(shape),
                " (nr_samples = ", samples, " perturbations of the input ", input.sizes(),
                "), got ", noise.sizes());
    TORCH_CHECK(noise.is_floating_point(), fn, ": noise must be floating point, got ",
                noise.scalar_type());
    TORCH_CHECK(noise.device().is_cpu() || noise.device() == input.device(), fn,
                ": noise must be on the CPU or on the input's device ", input.device(), ", got ",
                noise.device());
    check_finite(fn, "noise", noise);
    return noise.detach().to(input.options());
  }
  at::Generator generator = seeded_generator(seed, 0);
  return draw(generator, torch::empty(shape, input.options()));
}

/// The per-sample maximum over perturbations of `values` `[S, N]`, with `changed` `[S, N]`
/// (undefined: none changed) handled as `mode` says.
inline torch::Tensor max_over_perturbations(const torch::Tensor& values,
                                            const torch::Tensor& changed, PredictionChange mode) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (mode == PredictionChange::keep || !changed.defined()) return values.amax(0);
  if (mode == PredictionChange::nan)
    return torch::where(changed, torch::full_like(values, nan), values).amax(0);
  const double inf = std::numeric_limits<double>::infinity();
  const torch::Tensor best = torch::where(changed, torch::full_like(values, -inf), values).amax(0);
  return torch::where(changed.all(0), torch::full_like(best, nan), best);
}

/// True where the prediction (argmax) on the perturbed rows `[S·N, ...]` differs from the one
/// on `x` (or from `reference` `[N]` when defined); `[S, N]`; undefined when `mode` is keep.
template <class Model>
torch::Tensor changed_predictions(const char* fn, Model& model, const torch::Tensor& x,
                                  const torch::Tensor& perturbed, int64_t samples,
                                  PredictionChange mode, int64_t chunk,
                                  const torch::Tensor& reference = {}) {
  if (mode == PredictionChange::keep) return {};
  const int64_t n = x.size(0);
  const torch::Tensor before = reference.defined() ? reference.to(x.device())
                                                   : forward_rows(fn, model, x, chunk, x).argmax(1);
  const torch::Tensor after = forward_rows(fn, model, perturbed, chunk, x).argmax(1);
  return after.view({samples, n}) != before.view({1, n});
}

/// Arguments shared by the robustness metrics: the model and method checks, the input, the
/// target (as `[N]` or undefined) and the batching knob.
template <class Model, class Method>
torch::Tensor check_robustness_call(const char* fn, const torch::Tensor& input,
                                    const torch::Tensor& target, int64_t internal_batch_size) {
  static_check_model<Model>();
  static_assert(
      is_explainer_v<std::remove_reference_t<Method>, std::remove_reference_t<Model>>,
      "rar: method must be an explainer callable as torch::Tensor(model, const "
      "torch::Tensor& input, const torch::Tensor& target, bool create_graph) (e.g. "
      "rar::explain::saliency())");
  check_input(fn, "input", input);
  TORCH_CHECK(input[0].numel() > 0, fn,
              ": input must have at least one feature per sample, got "
              "shape ",
              input.sizes());
  rar::detail::check_batching(fn, "internal_batch_size", internal_batch_size);
  return expand_target(fn, target, input.size(0), input.device());
}

/// The explanation of the input itself, float64 `[N, D]` post-processed.
template <class Method, class Model>
torch::Tensor explain_input(const char* fn, Method& method, Model& model, const torch::Tensor& x,
                            const torch::Tensor& target, const ExplanationPost& post) {
  const int64_t n = x.size(0);
  torch::Tensor e = call_explainer(fn, method, model, x, target, false);
  return post(e.detach().reshape({n, -1}).to(torch::kDouble));
}

/// Everything a relative stability needs: the explanations of x and of the S·N perturbed rows,
/// the perturbed rows themselves and which predictions changed.
struct RelativeStabilityParts {
  torch::Tensor x_rows;      ///< float64 `[N, D]`
  torch::Tensor moved_rows;  ///< float64 `[S·N, D]`, s-major
  torch::Tensor moved;       ///< the perturbed inputs `[S·N, ...]` (input dtype)
  torch::Tensor numerator;   ///< ‖(e_x − e_x′) / (e_x + (e_x = 0)·ε)‖₂, `[S, N]`
  torch::Tensor changed;     ///< `[S, N]` bool or undefined
};

template <class Model, class Method>
RelativeStabilityParts relative_stability_parts(const char* fn, Model& model, Method& method,
                                                const torch::Tensor& input,
                                                const RelativeStabilityOptions& options) {
  const torch::Tensor target = check_robustness_call<Model, Method>(fn, input, options.target(),
                                                                    options.internal_batch_size());
  const int64_t s = options.nr_samples();
  TORCH_CHECK(s >= 1, fn, ": nr_samples must be >= 1, got ", s);
  TORCH_CHECK(std::isfinite(options.lower_bound()) && std::isfinite(options.upper_bound()) &&
                  options.upper_bound() > options.lower_bound(),
              fn, ": upper_bound must be larger than lower_bound (both finite), got lower_bound ",
              options.lower_bound(), " and upper_bound ", options.upper_bound());
  TORCH_CHECK(std::isfinite(options.eps_min()) && options.eps_min() > 0, fn,
              ": eps_min must be finite and > 0, got ", options.eps_min());
  const int64_t n = input.size(0);
  const torch::Tensor x = input.detach();
  const torch::Tensor noise = perturbation_noise(
      fn, options.noise(), s, x, options.seed(),
      [&](at::Generator& gen, const torch::Tensor& like) {
        return uniform_like(gen, like, options.lower_bound(), options.upper_bound());
      });
  ExplanationPost post;
  post.normalise = options.normalise();
  post.second_moment = true;
  post.abs = options.abs();

  RelativeStabilityParts parts;
  parts.moved = (x.unsqueeze(0) + noise).flatten(0, 1);
  const torch::Tensor e_x = explain_input(fn, method, model, x, target, post);
  const torch::Tensor e_moved =
      explain_rows(fn, method, model, parts.moved, target.defined() ? target.repeat({s}) : target,
                   options.internal_batch_size(), e_x.size(1), post);
  const double eps = options.eps_min();
  const torch::Tensor e_div = e_x + (e_x == 0).to(torch::kDouble) * eps;
  parts.numerator =
      ((e_x.unsqueeze(0) - e_moved.view({s, n, -1})) / e_div.unsqueeze(0)).pow(2).sum(2).sqrt();
  parts.x_rows = x.reshape({n, -1}).to(torch::kDouble);
  parts.moved_rows = parts.moved.reshape({s * n, -1}).to(torch::kDouble);
  parts.changed = changed_predictions(fn, model, x, parts.moved, s, options.prediction_change(),
                                      options.internal_batch_size());
  return parts;
}

/// ‖(a − b) / (a + (a = 0)·ε)‖₂ per row of b `[S·N, D]` against a `[N, D]`, as `[S, N]`, with a
/// zero result replaced by ε (Quantus' relative denominators).
inline torch::Tensor relative_denominator(const torch::Tensor& a, const torch::Tensor& b,
                                          int64_t samples, double eps) {
  const int64_t n = a.size(0);
  const torch::Tensor div = a + (a == 0).to(torch::kDouble) * eps;
  torch::Tensor d =
      ((a.unsqueeze(0) - b.view({samples, n, -1})) / div.unsqueeze(0)).pow(2).sum(2).sqrt();
  return d + (d == 0).to(torch::kDouble) * eps;
}

}  // namespace detail

/// Local Lipschitz estimate of an explanation method: the largest ratio of the change of the
/// explanation to the change of the input, over Gaussian perturbations of the input.
///
/// LLE(n) = maxₛ ‖Φ(xₙ) − Φ(xₙ + δₛ)‖₂ / (‖δₛ‖₂ + 10⁻¹⁰), δₛ ~ N(μ, σ²) per feature (Alvarez-Melis
/// & Jaakkola, "On the Robustness of Interpretability Methods", ICML WHI 2018; Quantus'
/// `LocalLipschitzEstimate` with its defaults: `lipschitz_constant` with Euclidean distances for
/// numerator and denominator, `batch_gaussian_noise`, μ = 0, σ = 0.1, 200 samples, Φ normalised
/// by its largest |value|). Norms are taken over the flattened sample, in float64; δₛ is the
/// perturbation as fed to the model (after the cast to the input's dtype). Lower is more robust;
/// 0 for a method whose explanation does not depend on the input (e.g. the saliency of a linear
/// model).
///
/// Differences from Quantus: Quantus ≥ 0.5 divides a whole batch of explanations by the batch's
/// largest |value|, which makes a sample's score depend on the others in its batch; rar
/// normalises each sample (as Quantus ≤ 0.4 did). The noise comes from the stream (seed, 0) as
/// one `[S, N, ...]` draw (or from `noise`), and all S·N perturbed rows are explained in chunks
/// rather than S calls on N rows.
///
/// Costs one explainer call on N rows and calls on S·N rows in chunks (plus two forwards when
/// `prediction_change` is not `keep`).
///
/// Example:
/// @code
/// torch::Tensor lle = rar::local_lipschitz_estimate(model, rar::explain::saliency(), x,
///                                                  rar::LocalLipschitzOptions().target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`, float32 or float64, finite, any device
/// @param options samples, noise, normalise, abs, prediction change, seed, target, batching
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor local_lipschitz_estimate(Model&& model, Method&& method, const torch::Tensor& input,
                                       const LocalLipschitzOptions& options = {}) {
  const char* fn = "rar::local_lipschitz_estimate";
  const torch::Tensor target = detail::check_robustness_call<Model, Method>(
      fn, input, options.target(), options.internal_batch_size());
  const int64_t s = options.nr_samples();
  TORCH_CHECK(s >= 1, fn, ": nr_samples must be >= 1, got ", s);
  TORCH_CHECK(std::isfinite(options.perturb_mean()), fn, ": perturb_mean must be finite, got ",
              options.perturb_mean());
  TORCH_CHECK(std::isfinite(options.perturb_std()) && options.perturb_std() >= 0, fn,
              ": perturb_std must be finite and >= 0, got ", options.perturb_std());
  const int64_t n = input.size(0);
  const torch::Tensor x = input.detach();
  const torch::Tensor noise = detail::perturbation_noise(
      fn, options.noise(), s, x, options.seed(),
      [&](at::Generator& gen, const torch::Tensor& like) {
        return (options.perturb_mean() +
                options.perturb_std() * normal_like(gen, like.to(torch::kDouble)))
            .to(like.options());
      });
  detail::ExplanationPost post;
  post.normalise = options.normalise();
  post.abs = options.abs();
  const torch::Tensor moved = (x.unsqueeze(0) + noise).flatten(0, 1);
  const torch::Tensor e_x = detail::explain_input(fn, method, model, x, target, post);
  const torch::Tensor e_moved =
      detail::explain_rows(fn, method, model, moved, target.defined() ? target.repeat({s}) : target,
                           options.internal_batch_size(), e_x.size(1), post);
  const torch::Tensor numerator =
      (e_x.unsqueeze(0) - e_moved.view({s, n, -1})).pow(2).sum(2).sqrt();
  const torch::Tensor step =
      moved.reshape({s, n, -1}).to(torch::kDouble) - x.reshape({1, n, -1}).to(torch::kDouble);
  const torch::Tensor ratio = numerator / (step.pow(2).sum(2).sqrt() + 1e-10);
  const torch::Tensor changed = detail::changed_predictions(
      fn, model, x, moved, s, options.prediction_change(), options.internal_batch_size());
  return detail::max_over_perturbations(ratio, changed, options.prediction_change()).cpu();
}

/// Relative input stability: the largest ratio of the relative change of the explanation to the
/// relative change of the input, over perturbations of the input.
///
/// RIS(n) = maxₛ ‖(eₓ − eₓ′)/eₓ‖₂ / max(‖(x − x′)/x‖₂, ε_min), with x′ = x + δₛ, δ ~
/// U(lower_bound, upper_bound) per feature, and every division by a zero element of eₓ or x
/// made a division by ε_min (Agarwal, Johnson, Pawelczyk, Krishna, Saxena, Zitnik, Lakkaraju,
/// "Rethinking Stability for Attribution-based Explanations", 2022, eq. 2; Quantus'
/// `RelativeInputStability` with its defaults: 200 samples, `batch_uniform_noise` with
/// lower_bound 0.02 and upper_bound 0.2, ε_min = 1e-6, no normalisation, NaN when a perturbation
/// changes the prediction). The L2 norms are over the flattened sample (for images Quantus'
/// nested norms over (H, W) and then channels are the same number); Quantus supports 2-D to 4-D
/// inputs only, rar any shape. Lower is more stable.
///
/// Example:
/// @code
/// torch::Tensor ris = rar::relative_input_stability(model, rar::explain::saliency(), x,
///                                                   rar::RelativeStabilityOptions().target(y));
/// @endcode
/// @param model any model
/// @param method an explainer (or an older method shape)
/// @param input batch `[N, ...]`, float32 or float64, finite, any device
/// @param options samples, noise bounds or noise, eps_min, normalise, abs, prediction change,
///        seed, target, batching
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor relative_input_stability(Model&& model, Method&& method, const torch::Tensor& input,
                                       const RelativeStabilityOptions& options = {}) {
  const char* fn = "rar::relative_input_stability";
  const auto parts = detail::relative_stability_parts(fn, model, method, input, options);
  const torch::Tensor den = detail::relative_denominator(parts.x_rows, parts.moved_rows,
                                                         options.nr_samples(), options.eps_min());
  return detail::max_over_perturbations(parts.numerator / den, parts.changed,
                                        options.prediction_change())
      .cpu();
}

/// Relative output stability: the largest ratio of the relative change of the explanation to the
/// change of the model's output (logits), over perturbations of the input.
///
/// ROS(n) = maxₛ ‖(eₓ − eₓ′)/eₓ‖₂ / max(‖h(x) − h(x′)‖₂, ε_min), h the model's output (Agarwal et
/// al. 2022, eq. 5; Quantus' `RelativeOutputStability`, whose defaults — noise, ε_min, NaN on a
/// changed prediction — are those of `rar::relative_input_stability`). h is the model's output
/// as returned (Quantus' `softmax=False`), flattened per sample. Lower is more stable.
///
/// Example:
/// @code
/// torch::Tensor ros = rar::relative_output_stability(model, rar::explain::saliency(), x,
///                                                    rar::RelativeStabilityOptions().target(y));
/// @endcode
/// @param model any model
/// @param method an explainer (or an older method shape)
/// @param input batch `[N, ...]`, float32 or float64, finite, any device
/// @param options as for `rar::relative_input_stability`
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor relative_output_stability(Model&& model, Method&& method, const torch::Tensor& input,
                                        const RelativeStabilityOptions& options = {}) {
  const char* fn = "rar::relative_output_stability";
  const auto parts = detail::relative_stability_parts(fn, model, method, input, options);
  const int64_t s = options.nr_samples(), n = input.size(0);
  const torch::Tensor h_x =
      detail::forward_rows(fn, model, input.detach(), options.internal_batch_size(), input);
  const torch::Tensor h_moved =
      detail::forward_rows(fn, model, parts.moved, options.internal_batch_size(), input);
  torch::Tensor den = (h_x.unsqueeze(0) - h_moved.view({s, n, -1})).pow(2).sum(2).sqrt();
  den = den + (den == 0).to(torch::kDouble) * options.eps_min();
  return detail::max_over_perturbations(parts.numerator / den, parts.changed,
                                        options.prediction_change())
      .cpu();
}

/// Relative representation stability: the largest ratio of the relative change of the
/// explanation to the relative change of an internal representation, over perturbations.
///
/// RRS(n) = maxₛ ‖(eₓ − eₓ′)/eₓ‖₂ / max(‖(L(x) − L(x′))/L(x)‖₂, ε_min), L =
/// `options.representation` flattened per sample, zero elements of L(x) divided as ε_min (Agarwal
/// et al. 2022, eq. 3; Quantus' `RelativeRepresentationStability`, defaults as
/// `rar::relative_input_stability`). Quantus reads L from the model's layers (`layer_names` /
/// `layer_indices`, default all of them concatenated); rar takes it as a callable, which may run
/// the model's first layers.
///
/// Example:
/// @code
/// auto hidden = [&](const torch::Tensor& in) { return
/// net[0]->as<torch::nn::Linear>()->forward(in); }; torch::Tensor rrs =
/// rar::relative_representation_stability(
///     net, rar::explain::saliency(), x, rar::RelativeStabilityOptions().representation(hidden));
/// @endcode
/// @param model any model
/// @param method an explainer (or an older method shape)
/// @param input batch `[N, ...]`, float32 or float64, finite, any device
/// @param options as for `rar::relative_input_stability`, plus the required `representation`
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor relative_representation_stability(Model&& model, Method&& method,
                                                const torch::Tensor& input,
                                                const RelativeStabilityOptions& options = {}) {
  const char* fn = "rar::relative_representation_stability";
  TORCH_CHECK(static_cast<bool>(options.representation()), fn,
              ": options.representation must be set: a callable mapping a batch [R, ...] to the "
              "model's internal representation [R, ...]");
  const auto parts = detail::relative_stability_parts(fn, model, method, input, options);
  auto representation = options.representation();
  const torch::Tensor l_x = detail::forward_rows(fn, representation, input.detach(),
                                                 options.internal_batch_size(), input);
  const torch::Tensor l_moved =
      detail::forward_rows(fn, representation, parts.moved, options.internal_batch_size(), input);
  const torch::Tensor den =
      detail::relative_denominator(l_x, l_moved, options.nr_samples(), options.eps_min());
  return detail::max_over_perturbations(parts.numerator / den, parts.changed,
                                        options.prediction_change())
      .cpu();
}

namespace detail {

/// `x` `[N, ..., W]` shifted by `shift` positions along its last dimension (positive: towards
/// higher indices), the positions left empty filled with `fill` (broadcastable to x); |shift|
/// ≥ W gives all `fill` (Quantus' `batched_translation`, direction "x").
inline torch::Tensor translate_last(const torch::Tensor& x, int64_t shift,
                                    const torch::Tensor& fill) {
  const int64_t w = x.size(-1);
  torch::Tensor out = fill.expand(x.sizes()).clone();
  if (shift >= 0 && shift < w) {
    out.narrow(-1, shift, w - shift).copy_(x.narrow(-1, 0, w - shift));
  } else if (shift < 0 && -shift < w) {
    out.narrow(-1, 0, w + shift).copy_(x.narrow(-1, -shift, w + shift));
  }
  return out;
}

}  // namespace detail

/// Continuity of an explanation method under translation: the largest ratio of the L1 change of
/// the explanation to the L2 change of the input, over translations of the input along its last
/// dimension (the image's x direction).
///
/// CONT(n) = max_t ‖Φ(xₙ) − Φ(τ_t xₙ)‖₁ / (‖xₙ − τ_t xₙ‖₂ + 10⁻⁹), τ_t the shift by
/// t = −W + k·⌊(2W + 1)/T⌋ positions, k = 1 … T, with the sample's minimum shifted in (Montavon,
/// Samek, Müller, "Methods for interpreting and understanding deep neural networks", Digital
/// Signal Processing 2018, eq. "max ‖R(x) − R(x′)‖₁ / ‖x − x′‖₂"; Quantus 0.6's `Continuity`:
/// T = `nr_steps` = 28, baseline "black", Φ normalised by its largest |value| and then |·|).
/// Lower is more continuous.
///
/// Differences from Quantus: explanations are normalised per sample, not by the batch's largest
/// value; a translation by 0 (when the step divides W, e.g. W = T = 28) compares the input with
/// itself and scores 0, where Quantus divides the round-off of two explainer calls by 10⁻⁹; a
/// shift beyond W shifts everything out instead of raising numpy's IndexError; any input
/// `[N, ..., W]` with at least two dimensions is accepted (Quantus: images `[N, C, H, W]` or
/// `[N, C, W]`). Quantus ≤ 0.5's `Continuity` was a different score (a correlation of patch sums
/// with the output along the translations); rar follows the paper and Quantus 0.6.
///
/// Costs one explainer call on N rows and calls on N·T translated rows in chunks (plus a forward
/// on them when `prediction_change` is not `keep`).
///
/// Example:
/// @code
/// torch::Tensor cont = rar::continuity(model, rar::explain::saliency(), images,
///                                      rar::ContinuityOptions().nr_steps(14).target(y));
/// @endcode
/// @param model any model
/// @param method an explainer (or an older method shape)
/// @param input batch `[N, ..., W]` with at least two dimensions, float32 or float64, finite
/// @param options nr_steps, baseline, normalise, abs, prediction change, target, batching
/// @return float64 `[N]` on the CPU
template <class Model, class Method>
torch::Tensor continuity(Model&& model, Method&& method, const torch::Tensor& input,
                         const ContinuityOptions& options = {}) {
  const char* fn = "rar::continuity";
  const torch::Tensor target = detail::check_robustness_call<Model, Method>(
      fn, input, options.target(), options.internal_batch_size());
  TORCH_CHECK(input.dim() >= 2, fn,
              ": input must be [N, ..., W] with at least one dimension to translate along, got "
              "shape ",
              input.sizes());
  const int64_t w = input.size(-1), steps = options.nr_steps();
  TORCH_CHECK(steps >= 1 && steps <= 2 * w + 1, fn, ": nr_steps must be in [1, 2W + 1] = [1, ",
              2 * w + 1, "] for the input's last dimension W = ", w, ", got ", steps);
  const int64_t n = input.size(0);
  const torch::Tensor x = input.detach();
  torch::Tensor fill;
  if (!options.baseline().defined()) {
    fill = std::get<0>(x.reshape({n, -1}).min(1)).view(detail::leading_shape(n, x.dim() - 1));
  } else if (options.baseline().dim() == 0) {
    fill = options.baseline().to(x.options());
  } else {
    fill = detail::expand_baseline(fn, options.baseline(), x);
  }
  const int64_t dx = (2 * w + 1) / steps;
  std::vector<torch::Tensor> shifted;
  for (int64_t k = 1; k <= steps; ++k)
    shifted.push_back(detail::translate_last(x, -w + k * dx, fill));
  const torch::Tensor moved = torch::cat(shifted, 0);  // [T·N, ...], step-major

  detail::ExplanationPost post;
  post.normalise = options.normalise();
  post.abs = options.abs();
  const torch::Tensor e_x = detail::explain_input(fn, method, model, x, target, post);
  const torch::Tensor e_moved = detail::explain_rows(
      fn, method, model, moved, target.defined() ? target.repeat({steps}) : target,
      options.internal_batch_size(), e_x.size(1), post);
  const torch::Tensor numerator = (e_x.unsqueeze(0) - e_moved.view({steps, n, -1})).abs().sum(2);
  const torch::Tensor distance =
      (x.reshape({1, n, -1}).to(torch::kDouble) - moved.reshape({steps, n, -1}).to(torch::kDouble))
          .pow(2)
          .sum(2)
          .sqrt();
  const torch::Tensor ratio =
      torch::where(distance == 0, torch::zeros_like(distance), numerator / (distance + 1e-9));
  const torch::Tensor changed =
      detail::changed_predictions(fn, model, x, moved, steps, options.prediction_change(),
                                  options.internal_batch_size(), target);
  return detail::max_over_perturbations(ratio, changed, options.prediction_change()).cpu();
}

/// Input invariance of an explanation method: 1 where the explanation of the shifted input
/// x + m under the shifted model equals the explanation of x under the model, else 0.
///
/// II(n) = 1[|Φ_g(xₙ + m) − Φ_f(xₙ)| ≤ atol + rtol·|Φ_g(xₙ + m)| elementwise], with g the model
/// whose first layer's bias absorbs the shift, g(x + m) = f(x) for every x (Kindermans, Hooker,
/// Adebayo, Alber, Schütt, Dähne, Erhan, Kim, "The (Un)reliability of Saliency Methods", 2017;
/// Quantus' `InputInvariance`: m = `input_shift` = −1, `np.isclose` with atol 1e-4, no
/// normalisation). Gradients are input invariant; gradient × input and Integrated Gradients with
/// a zero baseline are not.
///
/// The caller provides g (`shifted_model`): Quantus builds it by copying the model and setting
/// the first layer's bias to b − W·m (its `add_mean_shift_to_first_layer`);
/// `rar::input_shifted_model` does that for a `torch::nn::Sequential` whose first module is a
/// Linear or a convolution. Explanations are compared at the explainer's output shape.
///
/// Example:
/// @code
/// torch::nn::Sequential shifted = rar::input_shifted_model(net, -1.0);
/// torch::Tensor ok = rar::input_invariance(net, shifted, rar::explain::saliency(), x,
///                                          rar::InputInvarianceOptions().target(y));  // 1s
/// @endcode
/// @param model the model f
/// @param shifted_model g, with g(x + input_shift) = f(x)
/// @param method an explainer (or an older method shape), called for (f, x) and (g, x + m)
/// @param input batch `[N, ...]`, float32 or float64, finite, any device
/// @param options input_shift, atol, rtol, normalise, abs, target
/// @return float64 `[N]` on the CPU: 1 (invariant) or 0
template <class Model, class ShiftedModel, class Method>
torch::Tensor input_invariance(Model&& model, ShiftedModel&& shifted_model, Method&& method,
                               const torch::Tensor& input,
                               const InputInvarianceOptions& options = {}) {
  const char* fn = "rar::input_invariance";
  detail::static_check_model<ShiftedModel>();
  const torch::Tensor target =
      detail::check_robustness_call<Model, Method>(fn, input, options.target(), 0);
  TORCH_CHECK(std::isfinite(options.input_shift()), fn, ": input_shift must be finite, got ",
              options.input_shift());
  TORCH_CHECK(std::isfinite(options.atol()) && options.atol() >= 0 &&
                  std::isfinite(options.rtol()) && options.rtol() >= 0,
              fn, ": atol and rtol must be finite and >= 0, got atol ", options.atol(),
              " and rtol ", options.rtol());
  detail::ExplanationPost post;
  post.normalise = options.normalise();
  post.abs = options.abs();
  const torch::Tensor x = input.detach();
  const torch::Tensor e = detail::explain_input(fn, method, model, x, target, post);
  const torch::Tensor e_shifted =
      detail::explain_input(fn, method, shifted_model, x + options.input_shift(), target, post);
  TORCH_CHECK(e.sizes() == e_shifted.sizes(), fn, ": method returned ", e.size(1),
              " values per sample for the model and ", e_shifted.size(1), " for the shifted model");
  const torch::Tensor close =
      (e - e_shifted).abs() <= options.atol() + options.rtol() * e_shifted.abs();
  return close.all(1).to(torch::kDouble).cpu();
}

/// A copy of `net` whose first module's bias absorbs a constant input shift m:
/// net′(x + m) = net(x).
///
/// The first module with parameters (after e.g. a `Flatten`) must be a `torch::nn::Linear` or a
/// `torch::nn::Conv1d/2d/3d` with a bias;
/// its bias becomes b − m·Σ W (summed over everything but the output unit), the parameters of the
/// copy are new tensors, and `net` is unchanged (Kindermans et al. 2017; Quantus'
/// `add_mean_shift_to_first_layer`, which computes the same bias as 2b − layer(m·1)). For a
/// convolution with zero padding the identity holds away from the border only (the padded zeros
/// are not shifted), as in Quantus.
///
/// Example:
/// @code
/// torch::nn::Sequential shifted = rar::input_shifted_model(net, -1.0);
/// // shifted->forward(x - 1) equals net->forward(x)
/// @endcode
/// @param net a Sequential whose modules can be cloned
/// @param input_shift the constant m added to every input feature
/// @return the shifted copy
inline torch::nn::Sequential input_shifted_model(const torch::nn::Sequential& net,
                                                 double input_shift) {
  const char* fn = "rar::input_shifted_model";
  TORCH_CHECK(!net.is_empty() && net->size() >= 1, fn, ": net must have at least one module");
  TORCH_CHECK(std::isfinite(input_shift), fn, ": input_shift must be finite, got ", input_shift);
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone());
  TORCH_CHECK(copy, fn, ": cloning net did not give a Sequential");
  torch::nn::Sequential shifted(copy);
  // The first module with parameters (modules before it, e.g. a Flatten, move no values).
  std::shared_ptr<torch::nn::Module> first = shifted->ptr(0);
  for (size_t i = 0; i < shifted->size() && first->parameters().empty(); ++i)
    first = shifted->ptr(i);
  torch::Tensor weight, bias;
  if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(first.get())) {
    weight = lin->weight;
    bias = lin->bias;
  } else if (auto* c1 = dynamic_cast<torch::nn::Conv1dImpl*>(first.get())) {
    weight = c1->weight;
    bias = c1->bias;
  } else if (auto* c2 = dynamic_cast<torch::nn::Conv2dImpl*>(first.get())) {
    weight = c2->weight;
    bias = c2->bias;
  } else if (auto* c3 = dynamic_cast<torch::nn::Conv3dImpl*>(first.get())) {
    weight = c3->weight;
    bias = c3->bias;
  } else {
    TORCH_CHECK(false, fn,
                ": the first module of net with parameters must be a Linear or a "
                "Conv1d/2d/3d, got ",
                first->name());
  }
  TORCH_CHECK(bias.defined(), fn, ": the first layer of net must have a bias to absorb the shift");
  torch::NoGradGuard no_grad;
  bias.sub_(input_shift * weight.reshape({weight.size(0), -1}).sum(1));
  return shifted;
}

}  // namespace rar
