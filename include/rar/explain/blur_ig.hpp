#pragma once
/// @file
/// Blur IG as an explainer: `rar::explain::blur_ig(BlurIGOptions)` (see `rar::blur_ig`).

#include <torch/torch.h>

#include <rar/attribution/blur_ig.hpp>
#include <rar/core/explainer.hpp>
#include <rar/explain/explainer.hpp>
#include <utility>

namespace rar {
namespace explain {

namespace detail {
RAR_EXPLAIN_METHOD(BlurIGMethod, BlurIGOptions, rar::blur_ig, "rar::explain::blur_ig", true,
                   nullptr);
}  // namespace detail

/// Blur IG as an explainer (see `rar::blur_ig`): differentiable, so it also serves attacks and
/// other tools that ask for `create_graph`.
///
/// Example:
/// @code
/// auto blur = rar::explain::blur_ig(rar::BlurIGOptions().max_sigma(20).steps(32));
/// torch::Tensor a = blur(model, images, labels, /*create_graph=*/false);
/// @endcode
using BlurIG = OptionsExplainer<BlurIGOptions, detail::BlurIGMethod>;

/// @param options max_sigma, steps, grad_step, sqrt, boundary, internal_batch_size, score
/// @return a Blur IG explainer
inline BlurIG blur_ig(BlurIGOptions options = {}) { return BlurIG(std::move(options)); }

}  // namespace explain
}  // namespace rar
