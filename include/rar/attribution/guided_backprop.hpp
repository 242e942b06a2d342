#pragma once
/// @file
/// Guided backpropagation (Springenberg, Dosovitskiy, Brox, Riedmiller, "Striving for
/// Simplicity: The All Convolutional Net", ICLR 2015 workshop) and deconvolution (Zeiler,
/// Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014), with the
/// semantics of Captum 0.7's `GuidedBackprop` and `Deconvolution`.

#include <torch/torch.h>

#include <rar/attribution/gradient.hpp>
#include <rar/detail/checks.hpp>
#include <rar/core/model.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/scope.hpp>
#include <type_traits>

namespace rar {
namespace detail {

/// The input gradient of `model` (a model without `torch::nn` activations) with every `rar::nn`
/// ReLU's backward replaced by `rule`.
template <class Model>
torch::Tensor scoped_relu_gradient(const char* fn, Model& model, const torch::Tensor& input,
                                   const GradientOptions& options, rar::nn::Rule rule) {
  rar::nn::Scope scope(rule);
  torch::Tensor g = input_gradient(fn, model, input, options);
  TORCH_CHECK(scope.state().relu_calls > 0, fn,
              ": the model called no rar::nn::ReLU, so there is nothing to modify (the result "
              "would be the plain gradient, rar::saliency); build the model with rar::nn::ReLU "
              "(a drop-in for torch::nn::ReLU) or rar::nn::functional::relu");
  return options.abs() ? g.abs() : g;
}

/// The input gradient with every ReLU's backward replaced by `rule`: Sequentials get their
/// `torch::nn` activations swapped for `rar::nn` twins (same weights); other models must use
/// `rar::nn` activations.
template <class Model>
torch::Tensor modified_relu_gradient(const char* fn, Model& model, const torch::Tensor& input,
                                     const GradientOptions& options, rar::nn::Rule rule) {
  constexpr const char* what = "it modifies the backward pass of every ReLU";
  using D = std::decay_t<Model>;
  if constexpr (rar::nn::detail::is_torchscript_v<D>) {
    // The twin's aten::relu calls are rar::relu, which the scope switches.
    auto twin = model.scope_aware();
    return scoped_relu_gradient(fn, twin, input, options, rule);
  } else if constexpr (std::is_same_v<D, torch::nn::Sequential>) {
    torch::nn::Sequential twin =
        rar::nn::detail::with_rar_activations(fn, model, what, rar::nn::detail::Sees::relu);
    rar::nn::detail::check_no_torch_activations(fn, twin, what, rar::nn::detail::Sees::relu);
    return scoped_relu_gradient(fn, twin, input, options, rule);
  } else {
    rar::nn::detail::check_no_torch_activations(fn, model, what, rar::nn::detail::Sees::relu);
    return scoped_relu_gradient(fn, model, input, options, rule);
  }
}

}  // namespace detail

/// Guided backpropagation: the input gradient in which every ReLU passes back only positive
/// gradients through its active units, ∂L/∂z = relu(∂L/∂y · 1[z > 0]).
///
/// Matches Captum 0.7's `GuidedBackprop(model).attribute(x, target)`: only ReLUs are changed
/// (LeakyReLU, ELU, Sigmoid, Tanh and Softplus keep their own derivatives). Works on any model
/// whose ReLUs are `rar::nn::ReLU` (or `rar::nn::functional::relu`), and on a
/// `torch::nn::Sequential` whose ReLUs are direct `torch::nn::ReLU` children, and on a
/// TorchScript model (`rar::ScriptModel`, whose `aten::relu` calls its scope-aware twin routes
/// through `rar::relu`). Inside a smooth
/// surrogate (`rar::smooth_surrogate`) the softplus slope σ(βz) replaces 1[z > 0]. `create_graph`
/// keeps the graph of the modified backward pass, but its derivative w.r.t. the input disagrees
/// with the map's finite differences (the attribution attack's gradient check refuses it), so
/// `rar::explain::guided_backprop()` is not a differentiable explainer.
///
/// Example:
/// @code
/// torch::nn::Sequential net(torch::nn::Linear(4, 8), rar::nn::ReLU(), torch::nn::Linear(8, 3));
/// torch::Tensor g = rar::guided_backprop(net, x, rar::GradientOptions().target(y));
/// @endcode
/// @param model any model built with `rar::nn::ReLU`, or a Sequential of `torch::nn` layers
/// @param input batch `[N, ...]`, float32 or float64
/// @param options target, abs, score, create_graph
/// @return attributions, shape/dtype/device of `input`
template <class Model>
torch::Tensor guided_backprop(Model&& model, const torch::Tensor& input,
                              const GradientOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::modified_relu_gradient("rar::guided_backprop", model, input, options,
                                        rar::nn::Rule::guided_backprop);
}

/// Deconvolution: the input gradient in which every ReLU passes back relu(∂L/∂y), ignoring its
/// forward mask.
///
/// Matches Captum 0.7's `Deconvolution(model).attribute(x, target)` (only ReLUs are changed).
/// Same model requirements as `rar::guided_backprop`.
///
/// Example:
/// @code
/// torch::Tensor d = rar::deconvolution(net, x, rar::GradientOptions().target(y));
/// @endcode
/// @param model any model built with `rar::nn::ReLU`, or a Sequential of `torch::nn` layers
/// @param input batch `[N, ...]`, float32 or float64
/// @param options target, abs, score, create_graph
/// @return attributions, shape/dtype/device of `input`
template <class Model>
torch::Tensor deconvolution(Model&& model, const torch::Tensor& input,
                            const GradientOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::modified_relu_gradient("rar::deconvolution", model, input, options,
                                        rar::nn::Rule::deconvolution);
}

}  // namespace rar
