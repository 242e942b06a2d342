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
/// a smooth surrogate); an explainer that cannot provide that says so at compile time
/// (`rar::is_differentiable_explainer_v`), and every tool calls explainers through one path
/// (`rar::detail::call_explainer`) that refuses `create_graph` for those and checks the map's
/// shape. `rar/explain.hpp` has a factory per method
/// (`rar::explain::integrated_gradients(IGOptions)`, `rar::explain::saliency()`, ...), all built
/// on one template (`rar/explain/explainer.hpp`); a lambda with that signature is an explainer
/// too.

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

/// Whether explainers of type `E` give maps differentiable w.r.t. the input when asked
/// (`create_graph = true`), as the attribution attacks and RAR training need.
///
/// An explainer class says so with a `static constexpr bool differentiable` member (every
/// `rar::explain` one does: false for DeepLIFT and DeepLIFT-SHAP, the perturbation methods,
/// LIME, KernelSHAP, Guided IG, guided backprop, deconvolution and Guided Grad-CAM); any other
/// callable, such as a lambda, is taken to honour `create_graph` (the attacks still check that
/// its map's graph reaches the surrogate's parameters). Every tool calls explainers through one path that refuses
/// `create_graph` for the non-differentiable ones.
///
/// Example:
/// @code
/// static_assert(rar::is_differentiable_explainer_v<decltype(rar::explain::saliency())>);
/// static_assert(!rar::is_differentiable_explainer_v<decltype(rar::explain::deeplift())>);
/// @endcode
template <class E, class = void>
struct is_differentiable_explainer : std::true_type {};
/// An explainer class that declares `differentiable`.
template <class E>
struct is_differentiable_explainer<E, std::void_t<decltype(E::differentiable)>>
    : std::bool_constant<E::differentiable> {};

/// `rar::is_differentiable_explainer` of `E` without references and cv-qualifiers.
template <class E>
inline constexpr bool is_differentiable_explainer_v =
    is_differentiable_explainer<std::remove_cv_t<std::remove_reference_t<E>>>::value;

namespace detail {

/// Why explainers of type `E` cannot give a differentiable map: `E::not_differentiable_because`
/// when the class says, else a generic reason.
template <class E, class = void>
struct not_differentiable_reason {
  static constexpr const char* value = "the explainer's map is not differentiable w.r.t. the input";
};
/// The reason an explainer class gives.
template <class E>
struct not_differentiable_reason<E, std::void_t<decltype(E::not_differentiable_because)>> {
  static constexpr const char* value = E::not_differentiable_because;
};

/// The one error of a non-differentiable explainer asked for a differentiable map.
/// @param fn the function or explainer raising it
template <class E>
[[noreturn]] void refuse_graph(const char* fn) {
  TORCH_CHECK(false, fn, ": ",
              not_differentiable_reason<std::remove_cv_t<std::remove_reference_t<E>>>::value,
              ", so it cannot give the differentiable map an attack needs (create_graph = true); "
              "attack through rar::explain::integrated_gradients or rar::explain::saliency and "
              "measure with this method");
}

/// What a tool needs of the map an explainer returns (`call_explainer`).
enum class MapShape {
  rows,   ///< `[N, ...]`: one row per input sample (the metrics)
  input,  ///< the input's own shape (the attacks, SmoothGrad)
};

/// The one call path of every tool: refuses `create_graph` for a non-differentiable explainer
/// (`rar::is_differentiable_explainer_v`), calls `explainer(model, input, target, create_graph)`
/// and checks that it returned a defined map of the required shape. A callable of another shape
/// does not compile, with a message that names the explainer signature.
/// @param fn the calling tool's name, for errors
/// @param which how the tool names the model it passes ("model", "surrogate"), for errors
template <class E, class M>
torch::Tensor call_explainer(const char* fn, E& explainer, M& model, const torch::Tensor& input,
                             const torch::Tensor& target, bool create_graph,
                             MapShape shape = MapShape::rows, const char* which = "model") {
  static_assert(is_explainer_v<E, M>,
                "rar: an attribution method must be an explainer callable as "
                "torch::Tensor(model, const torch::Tensor& input, const torch::Tensor& target, "
                "bool create_graph), e.g. rar::explain::integrated_gradients(opts)");
  if constexpr (!is_differentiable_explainer_v<E>) {
    if (create_graph) refuse_graph<E>(fn);
  }
  torch::Tensor a = explainer(model, input, target, create_graph);
  if (shape == MapShape::input) {
    TORCH_CHECK(a.defined() && a.sizes() == input.sizes(), fn, ": method(", which,
                ", x, target, create_graph) must return attributions of the input's shape ",
                input.sizes(), ", got ", a.defined() ? a.sizes() : torch::IntArrayRef{});
  } else {
    TORCH_CHECK(a.defined() && a.dim() >= 1 && input.dim() >= 1 && a.size(0) == input.size(0),
                fn, ": method must return attributions [N, ...] with N = ",
                input.dim() >= 1 ? input.size(0) : 0, ", got ",
                a.defined() ? a.sizes() : torch::IntArrayRef{});
  }
  return a;
}

}  // namespace detail
}  // namespace rar
