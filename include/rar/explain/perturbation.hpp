#pragma once
/// @file
/// Explainer factories for the perturbation methods: occlusion, feature ablation and Shapley
/// value sampling in the one explainer shape `(model, input, target, create_graph) ->
/// attributions` (see `rar/core/explainer.hpp`), so every tool (`rar::max_sensitivity`,
/// `rar::parameter_randomization_test`, `rar::smooth_grad`, the measurement side of
/// `rar::attribution_attack`) accepts them.
///
/// Their maps are piecewise differences of forward passes, not differentiable w.r.t. the input
/// in a way an attack can follow, so asking for `create_graph` raises an error (attack through
/// `rar::explain::integrated_gradients` or `rar::explain::saliency` and measure with these).

#include <rar/attribution/perturbation.hpp>
#include <rar/attribution/shapley_value_sampling.hpp>
#include <rar/core/explainer.hpp>
#include <rar/explain/explainer.hpp>

#include <torch/torch.h>

#include <string>
#include <utility>

namespace rar {
namespace explain {

namespace detail {

/// Why no perturbation explainer gives a differentiable map.
#define RAR_PERTURBATION_NOT_DIFFERENTIABLE \
  "a perturbation map is a difference of forward passes, not differentiable w.r.t. the input"
RAR_EXPLAIN_METHOD(OcclusionMethod, OcclusionOptions, rar::occlusion, "rar::explain::occlusion",
                   false, RAR_PERTURBATION_NOT_DIFFERENTIABLE);
RAR_EXPLAIN_METHOD(FeatureAblationMethod, FeatureAblationOptions, rar::feature_ablation,
                   "rar::explain::feature_ablation", false, RAR_PERTURBATION_NOT_DIFFERENTIABLE);
RAR_EXPLAIN_METHOD(ShapleyMethod, ShapleyOptions, rar::shapley_value_sampling,
                   "rar::explain::shapley_value_sampling", false,
                   RAR_PERTURBATION_NOT_DIFFERENTIABLE);
#undef RAR_PERTURBATION_NOT_DIFFERENTIABLE

}  // namespace detail

/// Occlusion as an explainer (see `rar::occlusion`); refuses `create_graph`.
using Occlusion = OptionsExplainer<OcclusionOptions, detail::OcclusionMethod>;
/// Feature ablation as an explainer (see `rar::feature_ablation`); refuses `create_graph`.
using FeatureAblation = OptionsExplainer<FeatureAblationOptions, detail::FeatureAblationMethod>;
/// Shapley value sampling as an explainer (see `rar::shapley_value_sampling`); refuses
/// `create_graph`. Every call draws the same permutations (those of the options' seed).
using ShapleyValueSampling = OptionsExplainer<ShapleyOptions, detail::ShapleyMethod>;

/// Occlusion as an explainer.
///
/// Example:
/// @code
/// auto occ = rar::explain::occlusion(rar::OcclusionOptions({1, 4, 4}).strides({1, 2, 2}));
/// torch::Tensor sens = rar::max_sensitivity(net, occ, x, y);
/// @endcode
/// @param options window, strides, baseline, perturbations_per_eval, score
/// @return an occlusion explainer
inline Occlusion occlusion(OcclusionOptions options) { return Occlusion(std::move(options)); }

/// Feature ablation as an explainer.
///
/// Example: `auto ablation = rar::explain::feature_ablation(
///     rar::FeatureAblationOptions().feature_mask(superpixels));`
/// @param options feature_mask, baseline, perturbations_per_eval, score
/// @return a feature ablation explainer
inline FeatureAblation feature_ablation(FeatureAblationOptions options = {}) {
  return FeatureAblation(std::move(options));
}

/// Shapley value sampling as an explainer.
///
/// Example: `auto shapley = rar::explain::shapley_value_sampling(
///     rar::ShapleyOptions().feature_mask(superpixels).samples(50));`
/// @param options samples, feature_mask, baseline, seed, perturbations_per_eval, score
/// @return a Shapley value sampling explainer
inline ShapleyValueSampling shapley_value_sampling(ShapleyOptions options = {}) {
  return ShapleyValueSampling(std::move(options));
}

}  // namespace explain
}  // namespace rar
