#pragma once
/// @file
/// DeepLIFT-SHAP (Lundberg, Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS
/// 2017; the `DeepExplainer` of the SHAP package), with the semantics of Captum 0.7's
/// `DeepLiftShap`: the mean of DeepLIFT's rescale-rule attributions over a baseline set.

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <rar/attribution/deeplift.hpp>
#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <utility>
#include <vector>

namespace rar {

/// Options for `rar::deeplift_shap`.
///
/// Example:
/// @code
/// auto attr = rar::deeplift_shap(net, x,
///                                rar::DeepLiftShapOptions().baselines(background).target(y));
/// @endcode
struct DeepLiftShapOptions {
  /// The baseline set `[B, ...]` (B ≥ 1; Captum requires B ≥ 2 and says to use DeepLift for
  /// one), with the input's non-batch dimensions, dtype and device. Required.
  RAR_ARG(torch::Tensor, baselines);
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the network output must be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Below this |z − z′| a nonlinearity uses its plain gradient (as `rar::DeepLiftOptions`).
  RAR_ARG(double, eps) = 1e-10;
  /// Rows of the N·B (input, baseline) pairs per DeepLIFT pass. 0 (the default) = rar's
  /// batching rule (`rar/core/batching.hpp`). Any value gives the same attributions.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// What to do when a sample's attributions miss F(x) − mean_b F(b): raise (default), warn or
  /// off (as `rar::DeepLiftOptions::completeness`).
  RAR_ARG(CompletenessCheck, completeness) = CompletenessCheck::raise;
  /// Sample n fails when |Σ attributions − (F(x) − mean_b F(b))| > tolerance · (1 + |F(x)| +
  /// |mean_b F(b)|); > 0.
  RAR_ARG(double, completeness_tolerance) = 1e-3;
};

namespace detail {

/// DeepLIFT-SHAP with each sample's delta, checked per `options.completeness()`: the one
/// implementation behind `deeplift_shap` and `deeplift_shap_with_delta`.
template <class Model>
Attribution deeplift_shap_checked(const char* fn, Model& model, const torch::Tensor& input,
                                  const DeepLiftShapOptions& options) {
  check_input(fn, "input", input);
  TORCH_CHECK(options.baselines().defined(), fn,
              ": baselines must be given, a set [B, ...] of references (B >= 1) with the "
              "input's non-batch dimensions ",
              input.sizes().slice(1));
  const torch::Tensor& baselines = options.baselines();
  check_like(fn, "baselines", baselines, input);
  check_finite(fn, "baselines", baselines);
  TORCH_CHECK(baselines.dim() == input.dim() && baselines.size(0) >= 1 &&
                  baselines.sizes().slice(1) == input.sizes().slice(1),
              fn,
              ": baselines must be a set [B, ...] with B >= 1 and the input's non-batch "
              "dimensions ",
              input.sizes().slice(1), ", got shape ", baselines.sizes(), " (input ", input.sizes(),
              ")");
  TORCH_CHECK(options.eps() >= 0, fn, ": eps must be >= 0, got ", options.eps());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  check_completeness_tolerance(fn, options.completeness_tolerance());
  const torch::Tensor target = expand_target(fn, options.target(), input.size(0), input.device());
  const int64_t n = input.size(0);
  const int64_t b = baselines.size(0);
  const int64_t rows = n * b;
  // Captum's _expand_inputs_baselines_targets: inputs repeat_interleave'd, baselines repeated.
  const torch::Tensor inputs = input.detach().repeat_interleave(b, 0);
  std::vector<int64_t> tiles(static_cast<size_t>(input.dim()), 1);
  tiles[0] = n;
  const torch::Tensor references = baselines.detach().repeat(tiles);
  const torch::Tensor row_target = target.defined() ? target.repeat_interleave(b) : target;

  std::vector<torch::Tensor> parts, scores, reference_scores;
  const int64_t row_bytes = input.numel() / n * static_cast<int64_t>(input.element_size());
  for_each_row_chunk(rows, options.internal_batch_size(), input.device(), row_bytes,
                     [&](int64_t start, int64_t stop) {
                       auto o = DeepLiftOptions()
                                    .baseline(references.slice(0, start, stop))
                                    .eps(options.eps())
                                    .completeness(CompletenessCheck::off);
                       if (row_target.defined()) o.target(row_target.slice(0, start, stop));
                       DeepLiftResult r = deeplift_run(fn, model, inputs.slice(0, start, stop), o);
                       parts.push_back(std::move(r.attributions));
                       scores.push_back(std::move(r.score));
                       reference_scores.push_back(std::move(r.reference_score));
                     });
  auto joined = [](std::vector<torch::Tensor>& v) { return v.size() == 1 ? v[0] : torch::cat(v); };
  std::vector<int64_t> per_sample(input.sizes().begin(), input.sizes().end());
  per_sample.insert(per_sample.begin() + 1, b);
  torch::Tensor attributions = joined(parts).view(per_sample).mean(1);
  const torch::Tensor score = joined(scores).view({n, b}).select(1, 0);
  const torch::Tensor reference_score = joined(reference_scores).view({n, b}).mean(1);
  const torch::Tensor total = attributions.reshape({n, -1}).sum(1);
  check_completeness(fn, total, score, reference_score, options.completeness(),
                     options.completeness_tolerance(), [] {
                       return deeplift_completeness_cause("rar::DeepLiftShapOptions",
                                                          "rar::deeplift_shap_with_delta");
                     });
  torch::Tensor delta = total - (score - reference_score);
  return {std::move(attributions), std::move(delta)};
}

}  // namespace detail

/// DeepLIFT-SHAP: the mean over a baseline set of DeepLIFT's (rescale rule) attributions.
///
///     DLS(x_n) = 1/B Σ_b DeepLIFT(x_n; reference b)
///
/// so Σ_i DLS_i(x_n) = F(x_n) − 1/B Σ_b F(b) wherever DeepLIFT sums to its delta. Every call
/// checks that sum, like `rar::deeplift` (`completeness`, `completeness_tolerance`): a model
/// with an operation DeepLIFT cannot see raises instead of returning a wrong map. Matches Captum
/// 0.7's `DeepLiftShap(model).attribute(x, baselines, target)`: like Captum, the N inputs and B
/// baselines are expanded into N·B pairs (row n·B + b pairs x_n with baseline b) and run through
/// `rar::deeplift` with one reference per row, in chunks chosen by the batching rule
/// (`internal_batch_size` overrides it). Unlike Captum, one baseline (B = 1) is accepted: the
/// result is then `rar::deeplift` with that reference.
///
/// Model requirements are `rar::deeplift`'s: a Sequential of known layers (walked layer by
/// layer, Captum's max-pool rule), or any model whose nonlinearities are `rar::nn` activations.
/// The result is not differentiable w.r.t. the input (no `create_graph`).
///
/// Example:
/// @code
/// torch::Tensor background = train_images.slice(0, 0, 20);  // B = 20 references
/// torch::Tensor attr = rar::deeplift_shap(
///     net, x, rar::DeepLiftShapOptions().baselines(background).target(y));
/// @endcode
/// @param model a Sequential, or any model built with `rar::nn` activations
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baselines (required), target, eps, internal_batch_size, completeness,
///        completeness_tolerance
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor deeplift_shap(Model&& model, const torch::Tensor& input,
                            const DeepLiftShapOptions& options) {
  detail::static_check_model<Model>();
  return detail::deeplift_shap_checked("rar::deeplift_shap", model, input, options).attributions;
}

/// DeepLIFT-SHAP with the convergence delta of each sample, `delta[n] = Σ attributions[n] −
/// (F(x_n) − 1/B Σ_b F(b))`. The completeness check runs as in `rar::deeplift_shap`.
///
/// Example:
/// @code
/// rar::Attribution r = rar::deeplift_shap_with_delta(
///     net, x, rar::DeepLiftShapOptions().baselines(background).target(y));
/// @endcode
/// @param model as for `rar::deeplift_shap`
/// @param input batch `[N, ...]`, float32 or float64
/// @param options baselines (required), target, eps, internal_batch_size, completeness,
///        completeness_tolerance
/// @return attributions (the input's shape) and delta `[N]`
template <class Model>
Attribution deeplift_shap_with_delta(Model&& model, const torch::Tensor& input,
                                     const DeepLiftShapOptions& options) {
  detail::static_check_model<Model>();
  return detail::deeplift_shap_checked("rar::deeplift_shap_with_delta", model, input, options);
}

}  // namespace rar
