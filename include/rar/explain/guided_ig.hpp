#pragma once
/// @file
/// Guided IG as an explainer: `rar::explain::guided_ig(GuidedIGOptions)` (see `rar::guided_ig`).

#include <torch/torch.h>

#include <rar/attribution/guided_ig.hpp>
#include <rar/core/explainer.hpp>
#include <utility>

namespace rar {
namespace explain {

/// Guided IG as an explainer (see `rar::guided_ig`). Its feature selection is discrete, so
/// asking for a differentiable map (`create_graph = true`) raises an error: attack through
/// `rar::explain::integrated_gradients` or `rar::explain::blur_ig` and measure with Guided IG.
///
/// Example:
/// @code
/// auto guided = rar::explain::guided_ig(rar::GuidedIGOptions().steps(64));
/// torch::Tensor a = guided(model, images, labels, /*create_graph=*/false);
/// @endcode
class GuidedIG {
 public:
  /// @param options baseline, steps, fraction, max_dist, score (target comes from each call)
  explicit GuidedIG(GuidedIGOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the Guided IG options
  const GuidedIGOptions& options() const noexcept { return options_; }
  /// Attributions of `model` at `input` for `target`.
  /// @param model any model
  /// @param input batch `[N, ...]`
  /// @param target class per sample (undefined: the options' target)
  /// @param create_graph must be false
  /// @return attributions of the input's shape
  template <class Model>
  torch::Tensor operator()(Model&& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    TORCH_CHECK(!create_graph,
                "rar::explain::guided_ig: Guided IG selects features by comparing gradients, a "
                "discrete choice, so it cannot give the differentiable map that create_graph = "
                "true asks for; attack through rar::explain::integrated_gradients or "
                "rar::explain::blur_ig and measure with Guided IG");
    GuidedIGOptions o = options_;
    if (target.defined()) o.target(target);
    return rar::guided_ig(model, input, o);
  }

 private:
  GuidedIGOptions options_;
};

/// @param options baseline, steps, fraction, max_dist, score
/// @return a Guided IG explainer
inline GuidedIG guided_ig(GuidedIGOptions options = {}) { return GuidedIG(std::move(options)); }

}  // namespace explain
}  // namespace rar
