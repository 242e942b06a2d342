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

#include <torch/torch.h>

#include <cstdint>
#include <utility>

namespace rar {
/// Explainer factories (`rar::explain::integrated_gradients(opts)`, ...): every attribution
/// method in the one shape `(model, input, target, create_graph) -> attributions`.
namespace explain {

namespace detail {
/// `options` with the call's target (when given) and create_graph.
template <class Options>
Options for_call(Options options, const torch::Tensor& target, bool create_graph) {
  if (target.defined()) options.target(target);
  options.create_graph(create_graph);
  return options;
}

/// An explainer made of an options struct and the rar function it calls (`Call`, a stateless
/// function object `(model, input, options) -> attributions`): each call sets the call's target
/// (when given) and create_graph on a copy of the options.
template <class Options, class Call>
class OptionsExplainer {
 public:
  /// @param options the options each call starts from (target and create_graph come from the
  ///        call)
  explicit OptionsExplainer(Options options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the options
  const Options& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input)
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    return Call{}(model, input, for_call(options_, target, create_graph));
  }

 private:
  Options options_;
};

/// Calls `rar::expected_gradients`.
struct CallExpectedGradients {
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input,
                           const ExpectedGradientsOptions& options) const {
    return rar::expected_gradients(model, input, options);
  }
};

/// Calls `rar::idgi`.
struct CallIDGI {
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input,
                           const IDGIOptions& options) const {
    return rar::idgi(model, input, options);
  }
};

}  // namespace detail

/// Expected Gradients as an explainer (see `rar::expected_gradients`); differentiable, the
/// draws fixed by the options' seed.
using ExpectedGradients =
    detail::OptionsExplainer<ExpectedGradientsOptions, detail::CallExpectedGradients>;

/// IDGI as an explainer (see `rar::idgi`); differentiable.
using IDGI = detail::OptionsExplainer<IDGIOptions, detail::CallIDGI>;

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
class IntegratedGradients {
 public:
  /// @param options steps, method, baseline, internal_batch_size, score (target and
  ///        create_graph come from each call)
  explicit IntegratedGradients(IGOptions options = {}) : options_(std::move(options)) {}
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
  /// The options each call starts from.
  /// @return the IG options
  const IGOptions& options() const noexcept { return options_; }
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
  IGOptions options_;
  int64_t graph_steps_ = 0;
};

/// @param options steps, method, baseline, internal_batch_size, score
/// @return an Integrated Gradients explainer
inline IntegratedGradients integrated_gradients(IGOptions options = {}) {
  return IntegratedGradients(std::move(options));
}

/// A gradient method (saliency, gradient × input, guided backprop, deconvolution) as an
/// explainer; `Method` names which.
///
/// Example: `auto sal = rar::explain::saliency(rar::GradientOptions().abs(true));`
template <int Method>
class GradientExplainer {
 public:
  /// @param options abs, score (target and create_graph come from each call)
  explicit GradientExplainer(GradientOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the gradient options
  const GradientOptions& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input)
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    const GradientOptions o = detail::for_call(options_, target, create_graph);
    if constexpr (Method == 0) return rar::saliency(model, input, o);
    if constexpr (Method == 1) return rar::gradient_x_input(model, input, o);
    if constexpr (Method == 2) return rar::guided_backprop(model, input, o);
    if constexpr (Method == 3) return rar::deconvolution(model, input, o);
  }

 private:
  GradientOptions options_;
};

/// Saliency, the input gradient (see `rar::saliency`).
/// @param options abs, score
/// @return a saliency explainer
inline GradientExplainer<0> saliency(GradientOptions options = {}) {
  return GradientExplainer<0>(std::move(options));
}
/// Gradient × input (see `rar::gradient_x_input`).
/// @param options abs, score
/// @return a gradient × input explainer
inline GradientExplainer<1> gradient_x_input(GradientOptions options = {}) {
  return GradientExplainer<1>(std::move(options));
}
/// Guided backprop (see `rar::guided_backprop`).
/// @param options abs, score
/// @return a guided backprop explainer
inline GradientExplainer<2> guided_backprop(GradientOptions options = {}) {
  return GradientExplainer<2>(std::move(options));
}
/// Deconvolution (see `rar::deconvolution`).
/// @param options abs, score
/// @return a deconvolution explainer
inline GradientExplainer<3> deconvolution(GradientOptions options = {}) {
  return GradientExplainer<3>(std::move(options));
}

/// DeepLIFT as an explainer (see `rar::deeplift`). Its multipliers are not differentiable
/// w.r.t. the input, so asking for `create_graph` raises an error (attack through IG or
/// saliency instead) rather than returning a map whose attack gradient would be wrong.
///
/// Example: `auto dl = rar::explain::deeplift(rar::DeepLiftOptions().baseline(reference));`
class DeepLift {
 public:
  /// @param options baseline, eps (target comes from each call)
  explicit DeepLift(DeepLiftOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the DeepLIFT options
  const DeepLiftOptions& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model built with rar::nn activations, or a Sequential
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph must be false
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    TORCH_CHECK(!create_graph,
                "rar::explain::deeplift: DeepLIFT's rescale multipliers are not differentiable "
                "w.r.t. the input, so it cannot give the differentiable map an attack needs "
                "(create_graph = true); attack through rar::explain::integrated_gradients or "
                "rar::explain::saliency and measure with DeepLIFT");
    DeepLiftOptions o = options_;
    if (target.defined()) o.target(target);
    return rar::deeplift(model, input, o);
  }

 private:
  DeepLiftOptions options_;
};

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
