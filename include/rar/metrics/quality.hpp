#pragma once
/// @file
/// Quality metrics of explanations: infidelity (Yeh et al. 2019, Captum 0.7's
/// `captum.metrics.infidelity`), deletion and insertion curves with their area under the curve
/// (pixel flipping: Bach et al. 2015, Samek et al. 2017; RISE: Petsiuk et al. 2018), and the
/// sparseness and complexity of a map (Quantus' `Sparseness`, Chalasani et al. 2020, and
/// `Complexity`, Bhatt et al. 2020).
///
/// Every metric takes a batch `[N, ...]` and returns float64 values per sample on the CPU, as
/// the other metrics do. The metrics that run the model (infidelity, the curves) evaluate all
/// their perturbed inputs in chunked forwards under the default batching rule
/// (`rar::detail::for_each_row_chunk`; `internal_batch_size` overrides it), on the input's
/// device, without gradients.

#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {

/// A perturbation function for `rar::infidelity`: given the inputs repeated sample by sample
/// (`[N·S, ...]`, rows n·S … n·S + S − 1 are copies of sample n, S = `samples`, as Captum's
/// `repeat_interleave`) and a generator to draw from, it returns the perturbations I and the
/// perturbed inputs, both `[N·S, ...]` with the inputs' dtype and device. Captum's
/// `perturb_func` returning `(perturbations, perturbed_inputs)`; for Captum's convention the
/// perturbed input is x − I.
///
/// Example:
/// @code
/// rar::InfidelityPerturbation square_patch = [](const torch::Tensor& x, at::Generator& gen) {
///   torch::Tensor keep = rar::uniform_like(gen, x, 0, 1) < 0.9;   // drop 10 % of the features
///   torch::Tensor perturbation = torch::where(keep, torch::zeros_like(x), x);
///   return std::make_pair(perturbation, x - perturbation);
/// };
/// @endcode
using InfidelityPerturbation = std::function<std::pair<torch::Tensor, torch::Tensor>(
    const torch::Tensor& inputs, at::Generator& generator)>;

/// Options of `rar::infidelity`.
///
/// Example:
/// @code
/// auto opts = rar::InfidelityOptions().target(y).samples(50).stddev(0.1).normalize(true);
/// torch::Tensor infid = rar::infidelity(model, rar::explain::saliency(), x, opts);
/// @endcode
struct InfidelityOptions {
  /// Perturbations per sample, S ≥ 1 (Captum's `n_perturb_samples`, default 10).
  RAR_ARG(int64_t, samples) = 10;
  /// Standard deviation σ ≥ 0 of the default perturbation I ~ N(0, σ²) per feature (the
  /// Gaussian perturbation of Yeh et al.; 0.2 is the scale of their code's Gaussian noise).
  /// Unused when `perturbation` is set.
  RAR_ARG(double, stddev) = 0.2;
  /// The perturbations; undefined (default): I = σ·ε, ε ~ N(0, 1) per feature, perturbed input
  /// x − I, drawn from the stream (seed, 0) as one `[N·S, ...]` draw in float64 on the CPU.
  RAR_ARG(InfidelityPerturbation, perturbation);
  /// Captum's `normalize`: scale the attributions by the β that minimizes the estimated error,
  /// β = Σ_s (Iₛᵀφ)(Δₛ) / Σ_s (Iₛᵀφ)² (1 when the denominator is 0, as Captum's `safe_div`), so
  /// that infidelity no longer depends on the attributions' scale.
  RAR_ARG(bool, normalize) = false;
  /// Seed of the default perturbations (and of the generator passed to `perturbation`).
  RAR_ARG(uint64_t, seed) = 0;
  /// The class explained, int64 `[N]` or 0-dim on the input's device; undefined: the score
  /// function gets an undefined target (the default `logit` then needs an output `[N]`).
  RAR_ARG(torch::Tensor, target);
  /// f: the per-sample value the attributions explain (default: the target's logit, which is
  /// what Captum's `infidelity` compares with when the forward returns logits).
  RAR_ARG(ScoreFunction, score) = score::logit;
  /// Rows per forward pass of the N·S perturbed inputs; 0 (default): the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

namespace detail {

/// Softmax probability of each sample's target: `softmax(output, 1)[n, target[n]]` (the
/// default score of the deletion and insertion curves); `fn` names the caller in errors.
inline torch::Tensor softmax_probability(const char* fn, const torch::Tensor& output,
                                         const torch::Tensor& target) {
  TORCH_CHECK(target.defined(), fn,
              ": the default score (the target's softmax probability) needs a target; set "
              "options.target(y), or a score such as rar::score::logit for outputs [N]");
  const auto index = gather_target(fn, output, target);
  return torch::softmax(output, 1).gather(1, index).squeeze(1);
}

/// Enables an overload for a method argument that is not a tensor (keeps the explainer and
/// the attribution forms of a metric apart).
template <class M>
using enable_if_method_t = std::enable_if_t<!std::is_same_v<std::decay_t<M>, torch::Tensor>, int>;

/// The attributions of `method` at `input` for `target`, detached, checked to be `[N, ...]`.
template <class Method, class Model>
torch::Tensor explain_for_metric(const char* fn, Method& method, Model& model,
                                 const torch::Tensor& input, const torch::Tensor& target) {
  torch::Tensor a = call_explainer(fn, method, model, input.detach(), target, false);
  return a.detach();
}

/// Checks attributions: defined, floating point, on the input's device.
inline void check_attributions(const char* fn, const torch::Tensor& attributions,
                               const torch::Tensor& input) {
  check_batch(fn, "attributions", attributions);
  TORCH_CHECK(attributions.device() == input.device(), fn,
              ": attributions must be on the input's device ", input.device(), ", got ",
              attributions.device());
}

/// The score function's value on `rows`, checked to be one value per row, as float64. With
/// `input` (the user's batch the rows were made from) and `what` ("perturbed copies"), errors
/// are raised in the caller's terms (`in_user_terms`).
template <class Model>
torch::Tensor score_rows(const char* fn, Model& model, const ScoreFunction& score,
                         const torch::Tensor& rows, const torch::Tensor& target,
                         const torch::Tensor& input = {}, const char* what = "") {
  const auto compute = [&] { return score(call_model(model, rows), target); };
  const torch::Tensor s =
      !input.defined() ? compute()
                       : in_user_terms(fn, model, input, compute, [&] {
                           return "a batch of " + std::to_string(rows.size(0)) + " " + what +
                                  " of the " + std::to_string(input.size(0)) +
                                  " samples (shape " + c10::str(rows.sizes()) + ")";
                         });
  TORCH_CHECK(s.defined() && s.dim() == 1 && s.size(0) == rows.size(0), fn,
              ": the score function must return one value per sample, shape [", rows.size(0),
              "], got ", s.defined() ? s.sizes() : torch::IntArrayRef{});
  return s.to(torch::kDouble);
}

}  // namespace detail

/// Infidelity of given attributions (Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the
/// (In)fidelity and Sensitivity of Explanations", NeurIPS 2019), as Captum 0.7's
/// `captum.metrics.infidelity`.
///
/// INFD(n) = (1/S) Σₛ (Iₛᵀφₙ − (f(xₙ) − f(xₙ − Iₛ)))², with S perturbations Iₛ per sample (by
/// default Gaussian, I ~ N(0, σ²) per feature; `options.perturbation` for any other), φ the
/// attributions and f = `score(model(·), target)`. With `normalize`, φ is replaced by βφ with
/// the β that minimizes the sum: INFD = (1/S)(β² Σa² − 2β Σab + Σb²), a = Iᵀφ, b = Δf,
/// β = Σab / Σa² (Σab / 1 = 0 when Σa² = 0, Captum's `safe_div`). Lower is better; 0 for
/// gradient attributions of a linear model with any perturbation.
///
/// Costs one forward over the N inputs and one over the N·S perturbed inputs, in chunks of the
/// batching rule (or `internal_batch_size`), without gradients. The dot products and the sums
/// are taken in float64 (Captum takes them in the input's dtype).
///
/// Example:
/// @code
/// torch::Tensor attr = rar::saliency(model, x, rar::GradientOptions().target(y));
/// torch::Tensor infid = rar::infidelity(model, x, attr, rar::InfidelityOptions().target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions `[N, ...]` with the input's shape, on the input's device
/// @param options samples, stddev or perturbation, normalize, seed, target, score, batching
/// @return float64 `[N]` on the CPU
template <class Model>
torch::Tensor infidelity(Model&& model, const torch::Tensor& input,
                         const torch::Tensor& attributions, const InfidelityOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::infidelity";
  detail::check_batch(fn, "input", input);
  detail::check_attributions(fn, attributions, input);
  detail::check_same_shape(fn, "input", input, "attributions", attributions);
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(std::isfinite(options.stddev()) && options.stddev() >= 0, fn,
              ": stddev must be finite and >= 0, got ", options.stddev());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());

  const int64_t n = input.size(0);
  const int64_t s = options.samples();
  const torch::Tensor target = detail::expand_target(fn, options.target(), n, input.device());
  const torch::Tensor x = input.detach();
  const torch::Tensor expanded = x.repeat_interleave(s, 0);

  at::Generator generator = seeded_generator(options.seed(), 0);
  torch::Tensor perturbations, perturbed;
  if (options.perturbation()) {
    std::tie(perturbations, perturbed) = options.perturbation()(expanded, generator);
    const auto check = [&](const char* name, const torch::Tensor& t) {
      TORCH_CHECK(t.defined() && t.sizes() == expanded.sizes(), fn,
                  ": the perturbation function must return ", name, " of shape ",
                  expanded.sizes(), " (the input repeated samples = ", s, " times), got ",
                  t.defined() ? t.sizes() : torch::IntArrayRef{});
      TORCH_CHECK(t.device() == input.device() && t.is_floating_point(), fn,
                  ": the perturbation function must return floating-point ", name,
                  " on the input's device ", input.device(), ", got ", t.scalar_type(), " on ",
                  t.device());
    };
    check("perturbations", perturbations);
    check("perturbed inputs", perturbed);
    perturbations = perturbations.detach();
    perturbed = perturbed.detach().to(input.scalar_type());
  } else {
    perturbations = options.stddev() * normal_like(generator, expanded);
    perturbed = expanded - perturbations;
  }

  torch::NoGradGuard no_grad;
  // a = Iᵀφ per perturbed row, in float64: [N, S].
  const torch::Tensor a = (perturbations.to(torch::kDouble).reshape({n, s, -1}) *
                           attributions.detach().to(torch::kDouble).reshape({n, 1, -1}))
                              .sum(2);
  const torch::Tensor f_x = detail::score_rows(fn, model, options.score(), x, target);
  const torch::Tensor rows_target = target.defined() ? target.repeat_interleave(s) : target;
  torch::Tensor f_perturbed = torch::empty({n * s}, f_x.options());
  const int64_t row_bytes = expanded.numel() / (n * s) * static_cast<int64_t>(input.element_size());
  detail::for_each_row_chunk(
      n * s, options.internal_batch_size(), input.device(), row_bytes,
      [&](int64_t start, int64_t stop) {
        const torch::Tensor t =
            rows_target.defined() ? rows_target.slice(0, start, stop) : rows_target;
        f_perturbed.slice(0, start, stop)
            .copy_(detail::score_rows(fn, model, options.score(),
                                      perturbed.slice(0, start, stop), t, x,
                                      "perturbed copies"));
      });
  // b = f(x) − f(x − I): [N, S].
  const torch::Tensor b = f_x.view({n, 1}) - f_perturbed.view({n, s});
  torch::Tensor result;
  if (options.normalize()) {
    const torch::Tensor aa = a.pow(2).sum(1), ab = (a * b).sum(1), bb = b.pow(2).sum(1);
    const torch::Tensor beta = ab / torch::where(aa != 0, aa, torch::ones_like(aa));
    result = beta.pow(2) * aa - 2 * beta * ab + bb;
  } else {
    result = (a - b).pow(2).sum(1);
  }
  return (result / static_cast<double>(s)).cpu();
}

/// Infidelity of an explanation method: `rar::infidelity` of the attributions that `method`
/// gives for the input and `options.target()` (one call of `method`, create_graph = false).
///
/// Example:
/// @code
/// auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(32));
/// torch::Tensor infid = rar::infidelity(model, ig, x, rar::InfidelityOptions().target(y));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph) -> attributions`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return float64 `[N]` on the CPU
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
torch::Tensor infidelity(Model&& model, Method&& method, const torch::Tensor& input,
                         const InfidelityOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::infidelity";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  const torch::Tensor attributions = detail::explain_for_metric(fn, method, model, input, target);
  return infidelity(model, input, attributions, options);
}

/// Options of `rar::deletion_curve` and `rar::insertion_curve`.
///
/// Example:
/// @code
/// auto opts = rar::PerturbationCurveOptions().target(y).features_per_step(49)
///                 .group_channels(true).abs(true);          // pixels ranked by Σ_c |φ_c|
/// rar::PerturbationCurve del = rar::deletion_curve(model, x, attr, opts);
/// double mean_auc = del.auc.mean().item<double>();           // lower is better for deletion
/// @endcode
struct PerturbationCurveOptions {
  /// Features removed (deletion) or revealed (insertion) per step, k ≥ 1 (Quantus'
  /// `features_in_step`; RISE's `step`). With D ranked features the curve has
  /// ⌈D / k⌉ + 1 points; the last step takes the D − (steps − 1)·k features left.
  RAR_ARG(int64_t, features_per_step) = 1;
  /// The value a removed feature takes (deletion) and the start of insertion: undefined
  /// (default) zeros (Quantus' "black"), a 0-dim tensor (any dtype: one value), or a tensor
  /// broadcastable to the input with its dtype and device (e.g. a blurred copy, RISE's
  /// insertion substrate).
  RAR_ARG(torch::Tensor, baseline);
  /// The class explained, int64 `[N]` or 0-dim on the input's device.
  RAR_ARG(torch::Tensor, target);
  /// The recorded per-sample value; undefined (default): the target's softmax probability (RISE;
  /// Quantus' `softmax=True`). `rar::score::logit` records the logit instead.
  RAR_ARG(ScoreFunction, score);
  /// Rank features by |φ| instead of φ (Quantus' `abs`, default false: positive evidence first).
  RAR_ARG(bool, abs) = false;
  /// Rank pixels instead of elements: features are dimension 1 (channels) summed,
  /// r = Σ_c φ_c (Σ_c |φ_c| with `abs`), and a step removes or reveals all channels of its
  /// pixels. Needs an input `[N, C, ...]` with at least one dimension after C; the attributions
  /// may then also be one map per pixel, `[N, 1, ...]`.
  RAR_ARG(bool, group_channels) = false;
  /// Rows per forward pass of the N·(steps + 1) inputs; 0 (default): the batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// A deletion or insertion curve per sample, and its area.
///
/// Example:
/// @code
/// rar::PerturbationCurve ins = rar::insertion_curve(model, x, attr, opts);
/// // ins.curve[n][j]: score after j steps, at ins.fractions[j] of the features
/// @endcode
struct PerturbationCurve {
  torch::Tensor curve;      ///< float64 `[N, steps + 1]` on the CPU: the score after 0 … steps steps
  torch::Tensor fractions;  ///< float64 `[steps + 1]`: fraction of features removed (revealed), 0 … 1
  torch::Tensor auc;        ///< float64 `[N]`: trapezoidal area under `curve` over `fractions`
};

/// Area under curves by the trapezoid rule over x in [0, 1].
///
/// AUC(n) = Σ_j (x_j − x_{j−1}) (c[n, j] + c[n, j−1]) / 2 with x = `fractions`, or equally
/// spaced x_j = j / (P − 1) when `fractions` is undefined: then AUC = (Σ_j c_j − c_0/2 −
/// c_{P−1}/2) / (P − 1), RISE's `auc`.
///
/// Example:
/// @code
/// torch::Tensor area = rar::curve_auc(torch::tensor({{1.0, 0.5, 0.0}}));  // 0.5
/// @endcode
/// @param curve `[N, P]` with P ≥ 2 points per curve, float32 or float64
/// @param fractions `[P]` x positions, or undefined for equal spacing on [0, 1]
/// @return float64 `[N]` on the CPU
inline torch::Tensor curve_auc(const torch::Tensor& curve, const torch::Tensor& fractions = {}) {
  const char* fn = "rar::curve_auc";
  detail::check_batch(fn, "curve", curve);
  TORCH_CHECK(curve.dim() == 2 && curve.size(1) >= 2, fn,
              ": curve must be [N, P] with P >= 2 points, got shape ", curve.sizes());
  const int64_t p = curve.size(1);
  const torch::Tensor c = curve.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor x;
  if (fractions.defined()) {
    TORCH_CHECK(fractions.dim() == 1 && fractions.size(0) == p, fn,
                ": fractions must be [P] with P = ", p, " (one x per curve point), got shape ",
                fractions.sizes());
    x = fractions.detach().to(torch::kCPU, torch::kDouble);
  } else {
    x = torch::arange(p, torch::kDouble) / static_cast<double>(p - 1);
  }
  const torch::Tensor dx = x.slice(0, 1) - x.slice(0, 0, p - 1);
  return ((c.slice(1, 1) + c.slice(1, 0, p - 1)) * 0.5 * dx.view({1, -1})).sum(1);
}

namespace detail {

/// Deletion (`insert` false) or insertion (`insert` true) curves: the shared implementation.
template <class Model>
PerturbationCurve perturbation_curve(const char* fn, Model& model, const torch::Tensor& input,
                                     const torch::Tensor& attributions,
                                     const PerturbationCurveOptions& options, bool insert) {
  check_batch(fn, "input", input);
  check_attributions(fn, attributions, input);
  const int64_t k = options.features_per_step();
  TORCH_CHECK(k >= 1, fn, ": features_per_step must be >= 1, got ", k);
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  const int64_t n = input.size(0);
  const bool grouped = options.group_channels();
  if (grouped) {
    TORCH_CHECK(input.dim() >= 3, fn,
                ": group_channels needs an input [N, C, ...] with at least one dimension after "
                "the channels, got shape ", input.sizes());
    bool ok = attributions.dim() == input.dim() &&
              (attributions.size(1) == 1 || attributions.size(1) == input.size(1));
    for (int64_t d = 0; ok && d < input.dim(); ++d)
      ok = d == 1 || attributions.size(d) == input.size(d);
    TORCH_CHECK(ok, fn,
                ": with group_channels the attributions must have the input's shape or one "
                "channel ([N, 1, ...]), got ", attributions.sizes(), " for input ", input.sizes());
  } else {
    check_same_shape(fn, "input", input, "attributions", attributions);
  }
  TORCH_CHECK(input[0].numel() > 0, fn, ": input must have at least one feature per sample, got "
              "shape ", input.sizes());
  TORCH_CHECK(torch::isfinite(attributions).all().template item<bool>(), fn,
              ": attributions must be finite (NaN or inf cannot be ranked)");
  const torch::Tensor target = expand_target(fn, options.target(), n, input.device());
  const ScoreFunction score =
      options.score() ? options.score()
                      : ScoreFunction([fn](const torch::Tensor& output, const torch::Tensor& t) {
                          return softmax_probability(fn, output, t);
                        });

  torch::Tensor baseline = options.baseline();
  if (baseline.defined() && baseline.dim() == 0) baseline = baseline.to(input.options());
  const torch::Tensor x = input.detach();
  baseline = expand_baseline(fn, baseline, x).detach();

  // Ranking value per feature, [N, D'] (D' = pixels when grouped).
  torch::Tensor r = attributions.detach().to(torch::kDouble);
  if (options.abs()) r = r.abs();
  if (grouped) r = r.sum(1);
  r = r.reshape({n, -1});
  const int64_t features = r.size(1);
  const int64_t steps = (features + k - 1) / k;
  const int64_t points = steps + 1;
  // rank[n, i]: position of feature i in descending order (stable: ties by index).
  const torch::Tensor order = std::get<1>(r.sort(/*stable=*/true, /*dim=*/1, /*descending=*/true));
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(input.device());
  const torch::Tensor rank = torch::empty_like(order).scatter_(
      1, order, torch::arange(features, long_opts).expand({n, features}));
  // Features removed (revealed) after j steps: min(j·k, D').
  const torch::Tensor counts = torch::clamp_max(torch::arange(points, long_opts) * k, features);

  std::vector<int64_t> mask_shape(x.sizes().begin(), x.sizes().end());
  if (grouped) mask_shape[1] = 1;
  torch::NoGradGuard no_grad;
  torch::Tensor curve = torch::empty({n * points}, torch::TensorOptions().dtype(torch::kDouble)
                                                       .device(input.device()));
  const int64_t row_bytes = x[0].numel() * static_cast<int64_t>(x.element_size());
  for_each_row_chunk(n * points, options.internal_batch_size(), input.device(), row_bytes,
                     [&](int64_t start, int64_t stop) {
                       const torch::Tensor row = torch::arange(start, stop, long_opts);
                       const torch::Tensor sample = row.div(points, "floor");
                       const torch::Tensor step = row - sample * points;
                       mask_shape[0] = stop - start;
                       const torch::Tensor changed =
                           (rank.index_select(0, sample) < counts.index_select(0, step).view({-1, 1}))
                               .view(mask_shape);
                       const torch::Tensor xs = x.index_select(0, sample);
                       const torch::Tensor bs = baseline.index_select(0, sample);
                       const torch::Tensor rows =
                           insert ? torch::where(changed, xs, bs) : torch::where(changed, bs, xs);
                       const torch::Tensor t =
                           target.defined() ? target.index_select(0, sample) : target;
                       curve.slice(0, start, stop)
                           .copy_(score_rows(fn, model, score, rows, t, x, "curve points"));
                     });
  PerturbationCurve result;
  result.curve = curve.view({n, points}).cpu();
  result.fractions = counts.to(torch::kCPU, torch::kDouble) / static_cast<double>(features);
  result.auc = curve_auc(result.curve, result.fractions);
  return result;
}

}  // namespace detail

/// Deletion curve (pixel flipping, Bach et al., PLoS ONE 2015; "MoRF" region perturbation,
/// Samek et al., IEEE TNNLS 2017; RISE's deletion metric, Petsiuk et al., BMVC 2018): the
/// features are ranked by attribution, most relevant first, and removed (set to the baseline)
/// k at a time; the curve records the score after each step, starting from the intact input.
///
/// curve[n, j] = f(x_n with its first min(j·k, D) ranked features set to the baseline),
/// j = 0 … ⌈D/k⌉, f = the target's softmax probability by default (Quantus' `PixelFlipping`
/// with `softmax=True`, which records the points j ≥ 1 only). The AUC is the trapezoid rule over
/// the fraction of features removed, [0, 1] (RISE's `auc` when k divides D). A faithful map
/// makes the score drop fast: lower deletion AUC is better.
///
/// Costs forwards over N·(⌈D/k⌉ + 1) inputs, built chunk by chunk under the batching rule (or
/// `internal_batch_size`), without gradients.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::saliency(model, x, rar::GradientOptions().target(y).abs(true));
/// rar::PerturbationCurve del = rar::deletion_curve(
///     model, x, attr, rar::PerturbationCurveOptions().target(y).features_per_step(49));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, any device
/// @param attributions the input's shape (or `[N, 1, ...]` with `group_channels`), finite, on
///        the input's device
/// @param options features_per_step, baseline, target, score, abs, group_channels, batching
/// @return the curves `[N, steps + 1]`, their x positions and AUCs, float64 on the CPU
template <class Model>
PerturbationCurve deletion_curve(Model&& model, const torch::Tensor& input,
                                 const torch::Tensor& attributions,
                                 const PerturbationCurveOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::perturbation_curve("rar::deletion_curve", model, input, attributions, options,
                                    /*insert=*/false);
}

/// Insertion curve (RISE's insertion metric, Petsiuk, Das, Saenko, BMVC 2018): starting from
/// the baseline, the features are revealed (set to the input's values) k at a time, most
/// relevant first; the curve records the score after each step.
///
/// curve[n, j] = f(baseline_n with the first min(j·k, D) ranked features of x_n), j = 0 …
/// ⌈D/k⌉: the first point is f(baseline), the last f(x). Higher insertion AUC is better. Same
/// options, cost and AUC as `rar::deletion_curve`; for RISE's blurred substrate pass a blurred
/// copy of the input as `baseline`.
///
/// Example:
/// @code
/// rar::PerturbationCurve ins = rar::insertion_curve(
///     model, x, attr, rar::PerturbationCurveOptions().target(y).features_per_step(49));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`
/// @param attributions as for `rar::deletion_curve`
/// @param options as for `rar::deletion_curve`
/// @return the curves `[N, steps + 1]`, their x positions and AUCs, float64 on the CPU
template <class Model>
PerturbationCurve insertion_curve(Model&& model, const torch::Tensor& input,
                                  const torch::Tensor& attributions,
                                  const PerturbationCurveOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::perturbation_curve("rar::insertion_curve", model, input, attributions, options,
                                    /*insert=*/true);
}

/// Deletion curve of an explanation method's attributions for `options.target()` (one call of
/// `method`, create_graph = false); see the form with attributions.
///
/// Example:
/// @code
/// auto del = rar::deletion_curve(model, rar::explain::saliency(), x,
///                                rar::PerturbationCurveOptions().target(y).features_per_step(16));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return the curves, their x positions and AUCs
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
PerturbationCurve deletion_curve(Model&& model, Method&& method, const torch::Tensor& input,
                                 const PerturbationCurveOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::deletion_curve";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return detail::perturbation_curve(
      fn, model, input, detail::explain_for_metric(fn, method, model, input, target), options,
      false);
}

/// Insertion curve of an explanation method's attributions for `options.target()`; see the
/// form with attributions.
///
/// Example:
/// @code
/// auto ins = rar::insertion_curve(model, rar::explain::saliency(), x,
///                                 rar::PerturbationCurveOptions().target(y).features_per_step(16));
/// @endcode
/// @param model any model
/// @param method an explainer `(model, input, target, create_graph)`
/// @param input batch `[N, ...]`
/// @param options as for the form with attributions
/// @return the curves, their x positions and AUCs
template <class Model, class Method, detail::enable_if_method_t<Method> = 0>
PerturbationCurve insertion_curve(Model&& model, Method&& method, const torch::Tensor& input,
                                  const PerturbationCurveOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::insertion_curve";
  detail::check_batch(fn, "input", input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  return detail::perturbation_curve(
      fn, model, input, detail::explain_for_metric(fn, method, model, input, target), options,
      true);
}

/// Options of `rar::sparseness`.
///
/// Example:
/// @code
/// torch::Tensor gini = rar::sparseness(attr, rar::SparsenessOptions().epsilon(0));  // exact Gini
/// @endcode
struct SparsenessOptions {
  /// Divide each sample's map by its largest |φ| first (Quantus' default `normalise=True` with
  /// `normalise_by_max`, per sample); an all-zero map is left as it is. Changes the result only
  /// through `epsilon`.
  RAR_ARG(bool, normalize) = true;
  /// Added to every |φ_i| before the index is taken (Quantus adds 1e-7), ≥ 0. It makes an
  /// all-zero map uniform (Gini 0) instead of 0/0.
  RAR_ARG(double, epsilon) = 1e-7;
};

/// Sparseness of attribution maps: the Gini index of |φ| per sample (Chalasani, Chen, Chowdhury,
/// Wu, Jha, "Concise Explanations of Neural Networks using Adversarial Training", ICML 2020), as
/// Quantus' `Sparseness`.
///
/// With v = |φ| flattened (divided by max |φ| when `normalize`), plus ε, sorted ascending
/// (v₍₁₎ ≤ … ≤ v₍D₎): G = Σᵢ (2i − D − 1) v₍ᵢ₎ / (D Σᵢ vᵢ). G is 0 for a uniform map and
/// 1 − 1/D for a map with one non-zero feature (ε = 0); higher is sparser. An all-zero map gives
/// 0 with ε > 0 (what Quantus returns) and NaN with ε = 0.
///
/// Example:
/// @code
/// torch::Tensor gini = rar::sparseness(rar::saliency(model, x, rar::GradientOptions().target(y)));
/// @endcode
/// @param attributions `[N, ...]`, float32 or float64, any device
/// @param options normalize, epsilon
/// @return float64 `[N]` on the CPU
inline torch::Tensor sparseness(const torch::Tensor& attributions,
                                const SparsenessOptions& options = {}) {
  const char* fn = "rar::sparseness";
  detail::check_batch(fn, "attributions", attributions);
  TORCH_CHECK(attributions[0].numel() > 0, fn,
              ": attributions must have at least one feature per sample, got shape ",
              attributions.sizes());
  TORCH_CHECK(std::isfinite(options.epsilon()) && options.epsilon() >= 0, fn,
              ": epsilon must be finite and >= 0, got ", options.epsilon());
  const int64_t n = attributions.size(0);
  torch::Tensor v = attributions.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1}).abs();
  if (options.normalize()) {
    const torch::Tensor top = std::get<0>(v.max(1, /*keepdim=*/true));
    v = v / torch::where(top > 0, top, torch::ones_like(top));
  }
  v = std::get<0>((v + options.epsilon()).sort(1));
  const int64_t d = v.size(1);
  const torch::Tensor weights = 2 * torch::arange(1, d + 1, torch::kDouble) - d - 1;
  return (v * weights).sum(1) / (static_cast<double>(d) * v.sum(1));
}

/// Complexity of attribution maps: the entropy of the fractional contributions
/// pᵢ = |φᵢ| / Σⱼ |φⱼ| (Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model
/// Explanations", IJCAI 2020), as Quantus' `Complexity` (`scipy.stats.entropy`, natural log).
///
/// H = −Σᵢ pᵢ log pᵢ with 0 log 0 = 0: 0 for a map with one non-zero feature, log D for a
/// uniform map of D features; lower is simpler. An all-zero map gives NaN (0/0, as Quantus).
/// Scaling the map does not change H (Quantus' normalisation has no effect).
///
/// Example:
/// @code
/// torch::Tensor h = rar::complexity(attr);  // nats, in [0, log D]
/// @endcode
/// @param attributions `[N, ...]`, float32 or float64, any device
/// @return float64 `[N]` on the CPU
inline torch::Tensor complexity(const torch::Tensor& attributions) {
  const char* fn = "rar::complexity";
  detail::check_batch(fn, "attributions", attributions);
  TORCH_CHECK(attributions[0].numel() > 0, fn,
              ": attributions must have at least one feature per sample, got shape ",
              attributions.sizes());
  const int64_t n = attributions.size(0);
  const torch::Tensor v =
      attributions.detach().to(torch::kCPU, torch::kDouble).reshape({n, -1}).abs();
  const torch::Tensor p = v / v.sum(1, /*keepdim=*/true);
  return -torch::xlogy(p, p).sum(1);
}

}  // namespace rar
