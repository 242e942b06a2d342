#pragma once
/// @file
/// Guided IG as an explainer: `rar::explain::guided_ig(GuidedIGOptions)` (see `rar::guided_ig`).

#include <torch/torch.h>

#include <rar/attribution/guided_ig.hpp>
#include <rar/core/explainer.hpp>
#include <rar/explain/explainer.hpp>
#include <utility>

namespace rar {
namespace explain {

namespace detail {
RAR_EXPLAIN_METHOD(GuidedIGMethod, GuidedIGOptions, rar::guided_ig, "rar::explain::guided_ig",
                   false,
                   "Guided IG selects features by comparing gradients, a discrete choice, so its "
                   "map is not differentiable w.r.t. the input");
}  // namespace detail

/// Guided IG as an explainer (see `rar::guided_ig`). Its feature selection is discrete, so
/// asking for a differentiable map (`create_graph = true`) raises an error: attack through
/// `rar::explain::integrated_gradients` or `rar::explain::blur_ig` and measure with Guided IG.
///
/// Example:
/// @code
/// auto guided = rar::explain::guided_ig(rar::GuidedIGOptions().steps(64));
/// torch::Tensor a = guided(model, images, labels, /*create_graph=*/false);
/// @endcode
using GuidedIG = OptionsExplainer<GuidedIGOptions, detail::GuidedIGMethod>;

/// @param options baseline, steps, fraction, max_dist, score
/// @return a Guided IG explainer
inline GuidedIG guided_ig(GuidedIGOptions options = {}) { return GuidedIG(std::move(options)); }

}  // namespace explain
}  // namespace rar
