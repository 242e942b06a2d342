#pragma once
/// @file
/// Saliency (Simonyan et al. 2014) and gradient × input (Shrikumar et al. 2016).

#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/core/model.hpp>

#include <torch/torch.h>

namespace rar {

/// Options for `rar::saliency` and `rar::gradient_x_input`.
///
/// Example:
/// @code
/// auto g = rar::saliency(model, x, rar::GradientOptions().target(y).abs(true));
/// @endcode
struct GradientOptions {
  /// Class per sample, int64 `[N]` or 0-dim; undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Return |gradient| (Captum's `Saliency` default is abs=True; ours is false).
  RAR_ARG(bool, abs) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
  /// Keep the graph so the result is differentiable (for attribution attacks).
  RAR_ARG(bool, create_graph) = false;
};

namespace detail {
/// ∂ score(model(x), target) / ∂x, validated; the gradient behind saliency and gradient×input.
template <class Model>
torch::Tensor input_gradient(const char* fn, Model& model, const torch::Tensor& input,
                             const GradientOptions& options) {
  check_input(fn, "input", input);
  rar::detail::check_callable(fn, "score", options.score());
  const auto target = expand_target(fn, options.target(), input.size(0), input.device());
  torch::AutoGradMode grad_mode(true);
  const torch::Tensor x = differentiable_leaf(input, options.create_graph());
  const torch::Tensor s = options.score()(call_model(model, x), target);
  TORCH_CHECK(s.dim() == 1 && s.size(0) == input.size(0), fn,
              ": the score function must return one value per sample, shape [", input.size(0),
              "], got ", s.sizes());
  return torch::autograd::grad({s.sum()}, {x}, {}, options.create_graph(),
                               options.create_graph())[0];
}
}  // namespace detail

/// Saliency: the gradient of the score w.r.t. the input (|gradient| with `abs(true)`).
///
/// Matches Captum 0.7's `Saliency(model).attribute(x, target, abs=...)`.
///
/// Example:
/// @code
/// torch::Tensor g = rar::saliency(model, x, rar::GradientOptions().target(y));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64
/// @param options target, abs, score, create_graph
/// @return the gradient, shape/dtype/device of `input`
template <class Model>
torch::Tensor saliency(Model&& model, const torch::Tensor& input,
                       const GradientOptions& options = {}) {
  detail::static_check_model<Model>();
  torch::Tensor g = detail::input_gradient("rar::saliency", model, input, options);
  return options.abs() ? g.abs() : g;
}

/// Gradient × input: x ⊙ ∂score/∂x (|·| with `abs(true)`). Matches Captum 0.7's `InputXGradient`.
///
/// Example:
/// @code
/// torch::Tensor a = rar::gradient_x_input(model, x, rar::GradientOptions().target(y));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`, float32 or float64
/// @param options target, abs, score, create_graph
/// @return attributions, shape/dtype/device of `input`
template <class Model>
torch::Tensor gradient_x_input(Model&& model, const torch::Tensor& input,
                               const GradientOptions& options = {}) {
  detail::static_check_model<Model>();
  torch::Tensor a = detail::input_gradient("rar::gradient_x_input", model, input, options) * input;
  return options.abs() ? a.abs() : a;
}

}  // namespace rar
