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

#include <torch/torch.h>

#include <string>
#include <utility>

namespace rar {
namespace explain {

namespace detail {

/// Raises the error every perturbation explainer gives when a differentiable map is asked for.
inline void refuse_graph(const char* fn, bool create_graph) {
  TORCH_CHECK(!create_graph, fn,
              ": a perturbation map is a difference of forward passes, not differentiable "
              "w.r.t. the input, so it cannot give the differentiable map an attack needs "
              "(create_graph = true); attack through rar::explain::integrated_gradients or "
              "rar::explain::saliency and measure with this method");
}

/// A perturbation method (`Method` names which) as an explainer over its options.
template <class Options, int Method>
class PerturbationExplainer {
 public:
  /// @param options the method's options (the target comes from each call when given)
  explicit PerturbationExplainer(Options options) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the method's options
  const Options& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph must be false
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    Options o = options_;
    if (target.defined()) o.target(target);
    if constexpr (Method == 0) {
      refuse_graph("rar::explain::occlusion", create_graph);
      return rar::occlusion(model, input, o);
    } else if constexpr (Method == 1) {
      refuse_graph("rar::explain::feature_ablation", create_graph);
      return rar::feature_ablation(model, input, o);
    } else {
      refuse_graph("rar::explain::shapley_value_sampling", create_graph);
      return rar::shapley_value_sampling(model, input, o);
    }
  }

 private:
  Options options_;
};

}  // namespace detail

/// Occlusion as an explainer (see `rar::occlusion`); refuses `create_graph`.
using Occlusion = detail::PerturbationExplainer<OcclusionOptions, 0>;
/// Feature ablation as an explainer (see `rar::feature_ablation`); refuses `create_graph`.
using FeatureAblation = detail::PerturbationExplainer<FeatureAblationOptions, 1>;
/// Shapley value sampling as an explainer (see `rar::shapley_value_sampling`); refuses
/// `create_graph`. Every call draws the same permutations (those of the options' seed).
using ShapleyValueSampling = detail::PerturbationExplainer<ShapleyOptions, 2>;

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
