#pragma once
/// @file
/// The explainer concept: one shape for every attribution method, so that every tool
/// (attribution attacks, max-sensitivity, the randomization test, SmoothGrad) accepts every
/// method.
///
/// An *explainer* is any callable
///
///     torch::Tensor explainer(Model& model, const torch::Tensor& input,
///                             const torch::Tensor& target, bool create_graph)
///
/// returning attributions of the input's shape. `create_graph = true` asks for attributions
/// that are differentiable w.r.t. the input (the attribution attack differentiates the map of
/// a smooth surrogate); an explainer that cannot provide that must raise an error rather than
/// return a detached map. `rar/explain.hpp` has a factory per method
/// (`rar::explain::integrated_gradients(IGOptions)`, `rar::explain::saliency()`, ...); a lambda
/// with that signature is an explainer too.

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace rar {

/// True when `E` is an explainer for models of type `M`: callable as
/// `torch::Tensor(M&, const torch::Tensor& input, const torch::Tensor& target, bool create_graph)`.
///
/// Example:
/// @code
/// static_assert(rar::is_explainer_v<decltype(rar::explain::saliency()), torch::nn::Sequential>);
/// @endcode
template <class E, class M>
inline constexpr bool is_explainer_v =
    std::is_invocable_r_v<torch::Tensor, E&, std::remove_reference_t<M>&, const torch::Tensor&,
                          const torch::Tensor&, bool>;

namespace detail {

/// True when `E` is an old-style two-argument method `(model, input) -> attributions`.
template <class E, class M>
inline constexpr bool is_input_method_v =
    std::is_invocable_r_v<torch::Tensor, E&, std::remove_reference_t<M>&, const torch::Tensor&>;

/// True when `E` is an old-style three-argument method `(model, input, target) -> attributions`.
template <class E, class M>
inline constexpr bool is_target_method_v =
    std::is_invocable_r_v<torch::Tensor, E&, std::remove_reference_t<M>&, const torch::Tensor&,
                          const torch::Tensor&>;

/// True when a tool can call `E` on models of type `M`: an explainer, or one of the older
/// method shapes `(model, input, target)` and `(model, input)` that the tools still accept.
template <class E, class M>
inline constexpr bool is_attribution_method_v =
    is_explainer_v<E, M> || is_target_method_v<E, M> || is_input_method_v<E, M>;

/// Calls an explainer, or an older-shaped method with the arguments it takes (a two-argument
/// method ignores `target`; neither older shape can honour `create_graph`, so asking them for
/// a differentiable map is an error).
template <class E, class M>
torch::Tensor call_explainer(const char* fn, E& explainer, M& model, const torch::Tensor& input,
                             const torch::Tensor& target, bool create_graph) {
  if constexpr (is_explainer_v<E, M>) {
    return explainer(model, input, target, create_graph);
  } else {
    TORCH_CHECK(!create_graph, fn,
                ": a differentiable map was asked for, but the method is not an explainer "
                "(model, input, target, bool create_graph); use a rar::explain:: factory");
    if constexpr (is_target_method_v<E, M>) {
      return explainer(model, input, target);
    } else if constexpr (is_input_method_v<E, M>) {
      return explainer(model, input);
    } else {
      static_assert(is_attribution_method_v<E, M>,
                    "rar: an attribution method must be an explainer callable as "
                    "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& "
                    "target, bool create_graph), e.g. rar::explain::integrated_gradients(opts)");
      return {};
    }
  }
}

}  // namespace detail
}  // namespace rar
