#pragma once
/// @file
/// `rar::smooth_surrogate`: the same model, with every `rar::nn` ReLU-like activation smoothed
/// to softplus_β while it is called. The attribution attacks of Ghorbani et al. (AAAI 2019)
/// and Chen et al. (NeurIPS 2019) differentiate the attribution map through such a surrogate,
/// because a ReLU network's map has zero input gradient almost everywhere.

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <rar/core/model.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/scope.hpp>
#include <type_traits>
#include <utility>
#include <vector>

namespace rar {

/// A callable model: the wrapped model run inside a scope in which every `rar::nn::ReLU` is
/// softplus_β and every `rar::nn::LeakyReLU(a)` is a·x + (1 − a)·softplus_β(x); ELU, Sigmoid,
/// Tanh and Softplus, already smooth, are unchanged. Made by `rar::smooth_surrogate`.
///
/// Example:
/// @code
/// auto smooth = rar::smooth_surrogate(net, 10.0);
/// torch::Tensor logits = smooth(x);  // same weights as net, smooth activations
/// @endcode
template <class Stored>
class SmoothSurrogate {
 public:
  /// @param model the model (stored as the factory decided: a shared holder, a pointer to an
  ///        lvalue, or a moved value)
  /// @param beta softplus sharpness β > 0
  SmoothSurrogate(Stored model, double beta) : model_(std::move(model)), beta_(beta) {}

  /// Runs the model with smoothed activations.
  /// @param input a batch for the model
  /// @return the model's output
  torch::Tensor operator()(const torch::Tensor& input) const {
    rar::nn::Scope scope;
    scope.beta(beta_);
    torch::Tensor out = rar::call_model(unwrap(), input);
    TORCH_CHECK(scope.calls() > 0,
                "rar::smooth_surrogate: the model called no rar::nn "
                "activation, so nothing was smoothed and the surrogate would have the model's "
                "zero curvature; build the model with rar::nn::ReLU / LeakyReLU (drop-ins for "
                "torch::nn's) or rar::nn::functional::relu in a custom forward. A model whose "
                "nonlinearities are all smooth (GELU, SiLU, ELU, Sigmoid, Tanh, Softplus) needs "
                "no surrogate: it is its own, so pass the model itself");
    return out;
  }

  /// The softplus sharpness β.
  /// @return β
  double beta() const noexcept { return beta_; }

  /// The wrapped model's parameters (shared, not copies; empty for a plain callable).
  /// @return the parameter tensors
  std::vector<torch::Tensor> parameters() const {
    return rar::detail::model_parameters(unwrap());
  }

 private:
  decltype(auto) unwrap() const {
    if constexpr (std::is_pointer_v<Stored>)
      return *model_;
    else
      return (model_);
  }
  mutable Stored model_;
  double beta_;
};

namespace detail {
/// How a surrogate keeps its model: module holders and shared pointers by value (they share
/// the weights), other lvalues by pointer, rvalues by value.
template <class Model>
using surrogate_storage_t =
    std::conditional_t<is_module_holder_v<std::decay_t<Model>> ||
                           is_shared_ptr<std::decay_t<Model>>::value ||
                           !std::is_lvalue_reference_v<Model>,
                       std::decay_t<Model>, std::remove_reference_t<Model>*>;
}  // namespace detail

/// A smooth surrogate of `model` for attribution attacks: the same weights (no copy: training
/// steps on the model show in the surrogate), every `rar::nn` ReLU-like activation smoothed to
/// softplus_β (the leaky part kept) while the surrogate is called; the model itself is left
/// unchanged and computes exactly what it did outside the call.
///
/// As β → ∞ the surrogate tends to the model; larger β follows the model more closely while
/// the curvature that the attack differentiates gets sharper. Chen et al. use β = 1 on MNIST;
/// β ≈ 10 attacks a small Fashion-MNIST CNN better.
///
/// GELU, SiLU, ELU, Sigmoid, Tanh and Softplus are smooth already and stay as they are, as
/// `torch::nn` modules too (only the kinked `torch::nn` ReLU, LeakyReLU, ReLU6, PReLU and
/// Hardtanh are refused inside a custom module); a model built only of smooth nonlinearities is
/// its own surrogate.
///
/// Works on any model whose ReLUs are `rar::nn` activations (custom modules, residual
/// networks, lambdas calling `rar::nn::functional::relu`), and on a `torch::nn::Sequential`
/// whose activations are direct `torch::nn` children (they are swapped for `rar::nn` twins in
/// a Sequential that shares every other child). On a TorchScript model (`rar::ScriptModel`) it
/// runs the model's scope-aware twin (`ScriptModel::scope_aware`: the same weights, the graph's
/// `aten::relu`, `leaky_relu`, ... routed through rar's operators). A `torch::nn` ReLU inside a
/// custom module, a TorchScript model that calls a kinked operator rar does not route
/// (`aten::relu6`, `hardtanh`, `prelu`, `clamp`, ...), or a model that calls no `rar::nn`
/// activation raises an error: their surrogate would keep the kink's zero curvature and the
/// attack would be silently weak.
///
/// The surrogate holds module holders and shared pointers by value (sharing the weights) and
/// other lvalue models by reference (keep them alive); it may be called from several threads
/// at once (the scope is thread-local).
///
/// Example:
/// @code
/// net->eval();
/// auto smooth = rar::smooth_surrogate(net, /*beta=*/10.0);
/// rar::AttackResult r = rar::attribution_attack(net, smooth, rar::explain::saliency(), x, y);
/// @endcode
/// @param model any model built with `rar::nn` activations, or a Sequential of `torch::nn` ones
/// @param beta softplus sharpness β > 0
/// @return a callable model `torch::Tensor(const torch::Tensor&)`
template <class Model>
auto smooth_surrogate(Model&& model, double beta) {
  detail::static_check_model<Model>();
  const char* fn = "rar::smooth_surrogate";
  TORCH_CHECK(std::isfinite(beta) && beta > 0, fn, ": beta must be finite and > 0, got ", beta);
  constexpr const char* what =
      "the surrogate must smooth every ReLU, or the attack differentiates a zero curvature";
  using D = std::decay_t<Model>;
  if constexpr (rar::nn::detail::is_torchscript_v<D>) {
    // The twin shares the weights and calls rar::relu, ..., which the scope smooths.
    auto twin = model.scope_aware();
    const auto& kinked = twin.kinked_operators();
    if (!kinked.empty()) {
      std::string names;
      for (const auto& k : kinked) names += (names.empty() ? "" : ", ") + k;
      TORCH_CHECK(false, fn, ": the TorchScript model calls ", names,
                  ", which the surrogate cannot smooth; ", what,
                  ". Export the model with ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh or "
                  "Softplus activations and max pooling");
    }
    return SmoothSurrogate<decltype(twin)>(std::move(twin), beta);
  } else if constexpr (std::is_same_v<D, torch::nn::Sequential>) {
    torch::nn::Sequential twin =
        rar::nn::detail::with_rar_activations(fn, model, what, rar::nn::detail::Sees::nonsmooth);
    rar::nn::detail::check_no_torch_activations(fn, twin, what, rar::nn::detail::Sees::nonsmooth);
    return SmoothSurrogate<torch::nn::Sequential>(std::move(twin), beta);
  } else {
    rar::nn::detail::check_no_torch_activations(fn, model, what, rar::nn::detail::Sees::nonsmooth);
    using Stored = detail::surrogate_storage_t<Model&&>;
    if constexpr (std::is_pointer_v<Stored>)
      return SmoothSurrogate<Stored>(&model, beta);
    else
      return SmoothSurrogate<Stored>(Stored(std::forward<Model>(model)), beta);
  }
}

}  // namespace rar
