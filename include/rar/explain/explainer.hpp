#pragma once
/// @file
/// The one explainer template of `rar::explain`: an options struct plus the rar function it
/// calls. Every factory (`rar::explain::saliency()`, `rar::explain::occlusion(opts)`, ...)
/// returns an `OptionsExplainer` over its method, except the few that hold more than options
/// (Integrated Gradients' `graph_steps`, SmoothGrad's inner explainer, the layer explainers'
/// head and tail), which build on the same rules. The explainer contract itself (the call shape,
/// `rar::is_differentiable_explainer_v`, the tools' call path) is in `rar/core/explainer.hpp`.

#include <rar/core/explainer.hpp>

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace rar {
namespace explain {

namespace detail {

/// Whether an options struct has a `create_graph` field.
template <class Options, class = void>
struct has_create_graph : std::false_type {};
/// Options with `create_graph(bool)`.
template <class Options>
struct has_create_graph<Options,
                        std::void_t<decltype(std::declval<Options&>().create_graph(true))>>
    : std::true_type {};

/// `options` with the call's target (when given) and, where the options have the field,
/// create_graph.
template <class Options>
Options for_call(Options options, const torch::Tensor& target, bool create_graph) {
  if (target.defined()) options.target(target);
  if constexpr (has_create_graph<Options>::value) options.create_graph(create_graph);
  return options;
}

}  // namespace detail

/// An explainer made of an options struct and the method it calls.
///
/// `Method` is a stateless type that names the method and says whether its maps are
/// differentiable: `static constexpr const char* name` (e.g. "rar::explain::occlusion"),
/// `static constexpr bool differentiable`, for non-differentiable methods
/// `static constexpr const char* not_differentiable_because`, and
/// `torch::Tensor operator()(Model&, const torch::Tensor& input, const Options&) const`. Each
/// call sets the call's target (when given) and create_graph on a copy of the options; a
/// non-differentiable method asked for `create_graph` raises the one error of
/// `rar::detail::refuse_graph` instead of returning a detached map.
///
/// Example:
/// @code
/// auto occ = rar::explain::occlusion(rar::OcclusionOptions({1, 4, 4}));  // an OptionsExplainer
/// static_assert(!decltype(occ)::differentiable);
/// torch::Tensor a = occ(model, x, y, /*create_graph=*/false);
/// @endcode
template <class Options, class Method>
class OptionsExplainer {
 public:
  /// Whether the maps are differentiable w.r.t. the input (`rar::is_differentiable_explainer_v`).
  static constexpr bool differentiable = Method::differentiable;
  /// Why not, for a non-differentiable method (the tools' error names it).
  static constexpr const char* not_differentiable_because = Method::not_differentiable_because;

  /// @param options the options each call starts from (target and create_graph come from the
  ///        call)
  explicit OptionsExplainer(Options options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the options
  const Options& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model the method accepts
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input); must be
  ///        false for a non-differentiable method
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    if constexpr (!differentiable) {
      if (create_graph) rar::detail::refuse_graph<Method>(Method::name);
    }
    return Method{}(model, input, detail::for_call(options_, target, create_graph));
  }

 protected:
  /// The options each call starts from (for explainers that build on this one).
  Options options_;
};

}  // namespace explain
}  // namespace rar

/// Declares the method type `Type` of an `OptionsExplainer`: it calls `function(model, input,
/// options)`, is named `name` in errors, and is differentiable or not (`why_not` says why not;
/// pass nullptr for a differentiable method).
#define RAR_EXPLAIN_METHOD(Type, OptionsType, function, method_name, is_differentiable, why_not) \
  struct Type {                                                                                \
    static constexpr const char* name = method_name;                                           \
    static constexpr bool differentiable = is_differentiable;                                  \
    static constexpr const char* not_differentiable_because = why_not;                         \
    template <class Model>                                                                     \
    torch::Tensor operator()(Model& model, const torch::Tensor& input,                          \
                             const OptionsType& options) const {                               \
      return function(model, input, options);                                                  \
    }                                                                                          \
  }
