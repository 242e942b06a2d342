#pragma once
/// @file
/// Explainer factories: one per attribution method, each returning an explainer, i.e. a
/// callable `(model, input, target, create_graph) -> attributions` that every tool accepts
/// (`rar::attribution_attack`, `rar::max_sensitivity`, `rar::parameter_randomization_test`,
/// `rar::smooth_grad`, the examples' `--explainer`). See `rar/core/explainer.hpp`.

#include <rar/attribution/deeplift.hpp>
#include <rar/attribution/expected_gradients.hpp>
#include <rar/attribution/gradient.hpp>
#include <rar/attribution/guided_backprop.hpp>
#include <rar/attribution/idgi.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/smooth_grad.hpp>
#include <rar/core/explainer.hpp>
#include <rar/explain/explainer.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <utility>

namespace rar {
/// Explainer factories (`rar::explain::integrated_gradients(opts)`, ...): every attribution
/// method in the one shape `(model, input, target, create_graph) -> attributions`.
namespace explain {

namespace detail {

RAR_EXPLAIN_METHOD(ExpectedGradientsMethod, ExpectedGradientsOptions, rar::expected_gradients,
                   "rar::explain::expected_gradients", true, nullptr);
RAR_EXPLAIN_METHOD(IDGIMethod, IDGIOptions, rar::idgi, "rar::explain::idgi", true, nullptr);
RAR_EXPLAIN_METHOD(IGMethod, IGOptions, rar::integrated_gradients,
                   "rar::explain::integrated_gradients", true, nullptr);
RAR_EXPLAIN_METHOD(SaliencyMethod, GradientOptions, rar::saliency, "rar::explain::saliency", true,
                   nullptr);
RAR_EXPLAIN_METHOD(GradientXInputMethod, GradientOptions, rar::gradient_x_input,
                   "rar::explain::gradient_x_input", true, nullptr);
RAR_EXPLAIN_METHOD(GuidedBackpropMethod, GradientOptions, rar::guided_backprop,
                   "rar::explain::guided_backprop", false,
                   "guided backprop's map comes from a modified backward pass, whose autograd "
                   "derivative is not the map's derivative w.r.t. the input");
RAR_EXPLAIN_METHOD(DeconvolutionMethod, GradientOptions, rar::deconvolution,
                   "rar::explain::deconvolution", false,
                   "deconvolution's map comes from a modified backward pass, whose autograd "
                   "derivative is not the map's derivative w.r.t. the input");
RAR_EXPLAIN_METHOD(DeepLiftMethod, DeepLiftOptions, rar::deeplift, "rar::explain::deeplift", false,
                   "DeepLIFT's rescale multipliers are not differentiable w.r.t. the input");

}  // namespace detail

/// Expected Gradients as an explainer (see `rar::expected_gradients`); differentiable, the
/// draws fixed by the options' seed.
using ExpectedGradients =
    OptionsExplainer<ExpectedGradientsOptions, detail::ExpectedGradientsMethod>;

/// IDGI as an explainer (see `rar::idgi`); differentiable.
using IDGI = OptionsExplainer<IDGIOptions, detail::IDGIMethod>;

/// Example:
/// @code
/// auto eg = rar::explain::expected_gradients(
///     rar::ExpectedGradientsOptions().baselines(background).samples(16).steps(4));
/// auto r = rar::attribution_attack(model, smooth, eg, x, y);
/// @endcode
/// @param options baselines, samples, steps, method, seed, internal_batch_size, score
/// @return an Expected Gradients explainer
inline ExpectedGradients expected_gradients(ExpectedGradientsOptions options = {}) {
  return ExpectedGradients(std::move(options));
}

/// Example: `auto a = rar::explain::idgi(rar::IDGIOptions().steps(32))(model, x, y, false);`
/// @param options baseline, steps, internal_batch_size, score
/// @return an IDGI explainer
inline IDGI idgi(IDGIOptions options = {}) { return IDGI(std::move(options)); }

/// Integrated Gradients as an explainer (see `rar::integrated_gradients`).
///
/// Example:
/// @code
/// auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(100)).graph_steps(20);
/// torch::Tensor a = ig(model, x, y, /*create_graph=*/false);   // 100 steps
/// auto r = rar::attribution_attack(model, smooth, ig, x, y);  // 20 steps for the attack gradient
/// @endcode
class IntegratedGradients : public OptionsExplainer<IGOptions, detail::IGMethod> {
 public:
  /// @param options steps, method, baseline, internal_batch_size, score (target and
  ///        create_graph come from each call)
  explicit IntegratedGradients(IGOptions options = {}) : OptionsExplainer(std::move(options)) {}
  /// Steps used when a differentiable map is asked for (`create_graph`), e.g. fewer for an
  /// attack's gradient than for the measured map; 0 (default) uses the options' steps.
  /// @param steps ≥ 0
  /// @return this explainer
  IntegratedGradients& graph_steps(int64_t steps) {
    TORCH_CHECK(steps >= 0, "rar::explain::integrated_gradients: graph_steps must be >= 0, got ",
                steps);
    graph_steps_ = steps;
    return *this;
  }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input)
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    IGOptions o = detail::for_call(options_, target, create_graph);
    if (create_graph && graph_steps_ > 0) o.steps(graph_steps_);
    return rar::integrated_gradients(model, input, o);
  }

 private:
  int64_t graph_steps_ = 0;
};

/// @param options steps, method, baseline, internal_batch_size, score
/// @return an Integrated Gradients explainer
inline IntegratedGradients integrated_gradients(IGOptions options = {}) {
  return IntegratedGradients(std::move(options));
}

/// Saliency, the input gradient, as an explainer (see `rar::saliency`); differentiable.
using Saliency = OptionsExplainer<GradientOptions, detail::SaliencyMethod>;
/// Gradient × input as an explainer (see `rar::gradient_x_input`); differentiable.
using GradientXInput = OptionsExplainer<GradientOptions, detail::GradientXInputMethod>;
/// Guided backprop as an explainer (see `rar::guided_backprop`); not differentiable: its map
/// comes from a modified backward pass, whose autograd derivative (through a smooth surrogate)
/// is not the map's derivative, so asking for `create_graph` raises an error.
using GuidedBackprop = OptionsExplainer<GradientOptions, detail::GuidedBackpropMethod>;
/// Deconvolution as an explainer (see `rar::deconvolution`); not differentiable, like guided
/// backprop.
using Deconvolution = OptionsExplainer<GradientOptions, detail::DeconvolutionMethod>;
/// DeepLIFT as an explainer (see `rar::deeplift`). Its multipliers are not differentiable
/// w.r.t. the input, so asking for `create_graph` raises an error (attack through IG or
/// saliency instead) rather than returning a map whose attack gradient would be wrong.
using DeepLift = OptionsExplainer<DeepLiftOptions, detail::DeepLiftMethod>;

/// Saliency, the input gradient (see `rar::saliency`).
///
/// Example: `auto sal = rar::explain::saliency(rar::GradientOptions().abs(true));`
/// @param options abs, score
/// @return a saliency explainer
inline Saliency saliency(GradientOptions options = {}) { return Saliency(std::move(options)); }
/// Gradient × input (see `rar::gradient_x_input`).
/// @param options abs, score
/// @return a gradient × input explainer
inline GradientXInput gradient_x_input(GradientOptions options = {}) {
  return GradientXInput(std::move(options));
}
/// Guided backprop (see `rar::guided_backprop`).
/// @param options abs, score
/// @return a guided backprop explainer
inline GuidedBackprop guided_backprop(GradientOptions options = {}) {
  return GuidedBackprop(std::move(options));
}
/// Deconvolution (see `rar::deconvolution`).
/// @param options abs, score
/// @return a deconvolution explainer
inline Deconvolution deconvolution(GradientOptions options = {}) {
  return Deconvolution(std::move(options));
}

/// DeepLIFT as an explainer.
///
/// Example: `auto dl = rar::explain::deeplift(rar::DeepLiftOptions().baseline(reference));`
/// @param options baseline, eps
/// @return a DeepLIFT explainer
inline DeepLift deeplift(DeepLiftOptions options = {}) { return DeepLift(std::move(options)); }

/// SmoothGrad, SmoothGrad² or VarGrad over any inner explainer (see `rar::smooth_grad`).
///
/// Example:
/// @code
/// auto smooth_ig = rar::explain::smooth_grad(rar::explain::integrated_gradients(),
///                                            rar::SmoothGradOptions().samples(10).stddev(0.1));
/// @endcode
template <class Inner>
class SmoothGrad {
 public:
  /// Differentiable when the inner explainer is.
  static constexpr bool differentiable = is_differentiable_explainer_v<Inner>;

  /// @param inner the explainer applied to each noisy copy
  /// @param options samples, stddev, kind, seed
  SmoothGrad(Inner inner, SmoothGradOptions options)
      : inner_(std::move(inner)), options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the SmoothGrad options
  const SmoothGradOptions& options() const noexcept { return options_; }
  /// Aggregated attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph ask the inner explainer for differentiable attributions
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    return rar::smooth_grad(model, inner_, input, detail::for_call(options_, target, create_graph));
  }

 private:
  Inner inner_;
  SmoothGradOptions options_;
};

/// @param inner an explainer (e.g. `rar::explain::saliency()`)
/// @param options samples, stddev, kind, seed
/// @return a SmoothGrad explainer over `inner`
template <class Inner>
SmoothGrad<std::decay_t<Inner>> smooth_grad(Inner&& inner, SmoothGradOptions options = {}) {
  return SmoothGrad<std::decay_t<Inner>>(std::forward<Inner>(inner), std::move(options));
}

}  // namespace explain
}  // namespace rar
