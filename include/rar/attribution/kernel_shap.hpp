#pragma once
/// @file
/// KernelSHAP (Lundberg, Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS
/// 2017) as Captum 0.7's `KernelShap`: Shapley values of the interpretable features estimated
/// by a linear regression on coalitions drawn from the Shapley kernel. Shares the coalition
/// machinery of LIME (`rar/attribution/lime.hpp`).

#include <rar/attribution/lime.hpp>

#include <torch/torch.h>

#include <cstdint>

namespace rar {

/// Options for `rar::kernel_shap`.
///
/// Defaults are Captum 0.7's `KernelShap(model).attribute(x, ...)`: 25 coalitions, baseline 0,
/// every element its own feature. With fewer coalitions than features + 1 the regression is
/// underdetermined and returns its minimum-norm solution (as scikit-learn's
/// `LinearRegression`, behind Captum's `KernelShap`, does): give a `feature_mask` with few
/// features, or more samples.
///
/// Example:
/// @code
/// auto opts = rar::KernelShapOptions().target(y).feature_mask(superpixels).samples(500);
/// torch::Tensor phi = rar::kernel_shap(model, images, opts);
/// @endcode
struct KernelShapOptions {
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// The values a feature takes when it is absent. Undefined: zeros. A tensor that broadcasts
  /// to the input's shape, in the input's dtype and on its device, or one number.
  RAR_ARG(torch::Tensor, baseline);
  /// Integer tensor broadcasting to the input's shape whose values name each element's
  /// interpretable feature; undefined: every element of a sample is its own feature (see
  /// `rar::LimeOptions::feature_mask`).
  RAR_ARG(torch::Tensor, feature_mask);
  /// Coalitions S per sample (Captum's `n_samples`, default 25), ≥ 2: the full and the empty
  /// coalition, then S − 2 drawn from the Shapley kernel.
  RAR_ARG(int64_t, samples) = 25;
  /// Seed of the coalitions (`rar::seeded_generator(seed, 0)`).
  RAR_ARG(uint64_t, seed) = 0;
  /// Rows of the N·S perturbed batch per forward; 0 = the default batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;

 public:
  /// One baseline value for every element (Captum's scalar `baselines`).
  /// @param value the value of absent elements
  /// @return `*this`
  KernelShapOptions& baseline(double value) {
    baseline_ = torch::scalar_tensor(value, torch::kDouble);
    return *this;
  }
};

namespace detail {

/// The weight Captum gives the full and the empty coalition ("theoretically infinite"), all
/// other coalitions weigh 1.
inline constexpr double kKernelShapEndpointWeight = 1e6;

/// KernelSHAP's regression weights `[N, S]`: 10⁶ for coalitions with all or no features, 1 else.
inline torch::Tensor kernel_shap_weights(const torch::Tensor& coalitions) {
  const torch::Tensor on = coalitions.to(torch::kCPU, torch::kDouble).sum(2);
  const auto m = static_cast<double>(coalitions.size(2));
  return torch::where((on == 0) | (on == m), torch::full_like(on, kKernelShapEndpointWeight),
                      torch::ones_like(on));
}

/// Draws KernelSHAP's coalitions `[n, s, m]` (bool, CPU) from `gen`: per sample the full
/// coalition, the empty one, then s − 2 coalitions whose size k ∈ [1, m − 1] has probability
/// ∝ (m − 1) / (k (m − k)) and whose members are uniform among the subsets of that size.
/// Draw order: all n·(s − 2) sizes (`torch::multinomial`), then n·(s − 2)·m uniform numbers
/// whose k smallest per row pick the members. With one feature there is no proper subset: the
/// further rows alternate between the full and the empty coalition.
inline torch::Tensor kernel_shap_coalitions(at::Generator& gen, int64_t n, int64_t s, int64_t m) {
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor z = torch::zeros({n, s, m}, torch::kBool);
  z.select(1, 0).fill_(true);
  if (s <= 2) return z;
  if (m == 1) {
    z.slice(1, 2).copy_((torch::arange(2, s) % 2 == 0).view({1, s - 2, 1}).expand({n, s - 2, 1}));
    return z;
  }
  const torch::Tensor k = torch::arange(1, m, opts);
  const torch::Tensor probs = (m - 1.0) / (k * (m - k));
  const torch::Tensor sizes =
      torch::multinomial(probs, n * (s - 2), /*replacement=*/true, gen).add(1).view({n, s - 2, 1});
  const torch::Tensor u = torch::rand({n, s - 2, m}, gen, opts);
  const torch::Tensor rank =
      u.argsort(int64_t{-1}, /*descending=*/false).argsort(int64_t{-1}, /*descending=*/false);
  z.slice(1, 2).copy_(rank < sizes);
  return z;
}

/// KernelSHAP once the options are validated and the coalitions `[N, S, M]` drawn.
template <class Model>
torch::Tensor kernel_shap_core(const char* fn, Model& model, const torch::Tensor& input,
                               const InterpretableFeatures& features,
                               const torch::Tensor& coalitions,
                               const KernelShapOptions& options) {
  const torch::Tensor baseline = coalition_baseline(fn, options.baseline(), input);
  const torch::Tensor target =
      expand_target(fn, options.target(), input.size(0), input.device());
  const auto evaluated =
      evaluate_coalitions(fn, model, input, baseline, features, coalitions, target,
                          options.score(), options.internal_batch_size(), nullptr);
  return surrogate_attributions(input, features, coalitions.to(torch::kCPU), evaluated.scores,
                                kernel_shap_weights(coalitions),
                                LinearSurrogate::linear_regression, 0.0);
}

/// KernelSHAP on given coalitions `[N, S, M]` (0/1): what `rar::kernel_shap` computes after
/// drawing them (the weights follow from the coalitions: 10⁶ for the full and the empty one).
/// Exposed so that results can be compared with Captum's on the coalitions Captum drew.
template <class Model>
torch::Tensor kernel_shap_on_coalitions(Model&& model, const torch::Tensor& input,
                                        const torch::Tensor& coalitions,
                                        const KernelShapOptions& options) {
  static_check_model<Model>();
  const char* fn = "rar::kernel_shap";
  check_coalition_options(fn, input, 1, 1, options.internal_batch_size(), options.score());
  const auto features = interpretable_features(fn, options.feature_mask(), input);
  check_coalitions(fn, coalitions, input.size(0), features.count);
  return kernel_shap_core(fn, model, input, features, coalitions, options);
}

}  // namespace detail

/// KernelSHAP: per sample, the Shapley values of the interpretable features estimated by a
/// weighted linear regression of the score on coalitions drawn from the Shapley kernel; each
/// element's attribution is its feature's value.
///
/// For each sample x (baseline x'), the coalitions are the full one, the empty one (weight 10⁶
/// each, Captum's stand-in for the infinite weight that enforces Σφ = f(x) − f(x')), and S − 2
/// drawn with P(z) ∝ (M − 1) / (C(M, |z|) |z| (M − |z|)) (weight 1), scored at
/// x(z) = z[mask] ? x : x'; φ is the least-squares fit with intercept (minimum norm when
/// underdetermined). As S grows, φ tends to the exact Shapley values of
/// v(T) = score(x(1_T)). Matches Captum 0.7's `KernelShap(model).attribute(x, baselines, target,
/// feature_mask=mask, n_samples=S)` (in distribution; on the same coalitions to float64
/// round-off). Costs one forward over N·S rows, batched on the input's device, plus N
/// regressions on the CPU in float64. The result is not differentiable.
///
/// The coalitions are drawn from `rar::seeded_generator(seed)` on the CPU (see
/// `rar::detail::kernel_shap_coalitions` for the order), so a seed gives the same result on
/// every device.
///
/// Example:
/// @code
/// torch::Tensor phi = rar::kernel_shap(model, x, rar::KernelShapOptions().target(y).samples(200));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options target, baseline, feature_mask, samples, seed, internal_batch_size, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor kernel_shap(Model&& model, const torch::Tensor& input,
                          const KernelShapOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::kernel_shap";
  detail::check_coalition_options(fn, input, options.samples(), 2, options.internal_batch_size(),
                                  options.score());
  const auto features = detail::interpretable_features(fn, options.feature_mask(), input);
  at::Generator gen = seeded_generator(options.seed());
  const torch::Tensor coalitions =
      detail::kernel_shap_coalitions(gen, input.size(0), options.samples(), features.count);
  return detail::kernel_shap_core(fn, model, input, features, coalitions, options);
}

}  // namespace rar
