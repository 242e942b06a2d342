#pragma once
/// @file
/// Blur IG as an explainer: `rar::explain::blur_ig(BlurIGOptions)` (see `rar::blur_ig`).

#include <torch/torch.h>

#include <rar/attribution/blur_ig.hpp>
#include <rar/core/explainer.hpp>
#include <utility>

namespace rar {
namespace explain {

/// Blur IG as an explainer (see `rar::blur_ig`): differentiable, so it also serves attacks and
/// other tools that ask for `create_graph`.
///
/// Example:
/// @code
/// auto blur = rar::explain::blur_ig(rar::BlurIGOptions().max_sigma(20).steps(32));
/// torch::Tensor a = blur(model, images, labels, /*create_graph=*/false);
/// @endcode
class BlurIG {
 public:
  /// @param options max_sigma, steps, grad_step, sqrt, boundary, internal_batch_size, score
  ///        (target and create_graph come from each call)
  explicit BlurIG(BlurIGOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the Blur IG options
  const BlurIGOptions& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input images `[N, ..., H, W]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph keep the graph (attributions differentiable w.r.t. the input)
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    BlurIGOptions o = options_;
    if (target.defined()) o.target(target);
    o.create_graph(create_graph);
    return rar::blur_ig(model, input, o);
  }

 private:
  BlurIGOptions options_;
};

/// @param options max_sigma, steps, grad_step, sqrt, boundary, internal_batch_size, score
/// @return a Blur IG explainer
inline BlurIG blur_ig(BlurIGOptions options = {}) { return BlurIG(std::move(options)); }

}  // namespace explain
}  // namespace rar
