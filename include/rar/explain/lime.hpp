#pragma once
/// @file
/// Explainer factories for the surrogate-model methods: `rar::explain::lime(LimeOptions)` and
/// `rar::explain::kernel_shap(KernelShapOptions)`, explainers in the one shape
/// `(model, input, target, create_graph) -> attributions` (see `rar/core/explainer.hpp`).

#include <rar/attribution/kernel_shap.hpp>
#include <rar/attribution/lime.hpp>
#include <rar/explain/explainer.hpp>

#include <torch/torch.h>

#include <utility>

namespace rar {
namespace explain {

namespace detail {
RAR_EXPLAIN_METHOD(LimeMethod, LimeOptions, rar::lime, "rar::explain::lime", false,
                   "LIME's coefficients come from a regression on sampled coalitions and are not "
                   "differentiable w.r.t. the input");
RAR_EXPLAIN_METHOD(KernelShapMethod, KernelShapOptions, rar::kernel_shap,
                   "rar::explain::kernel_shap", false,
                   "KernelSHAP's values come from a regression on sampled coalitions and are not "
                   "differentiable w.r.t. the input");
}  // namespace detail

/// LIME as an explainer (see `rar::lime`). A fitted surrogate is not differentiable w.r.t. the
/// input, so asking for `create_graph` raises an error rather than returning a detached map.
///
/// Every call draws its coalitions from the options' seed, so repeated calls on the same input
/// give the same map.
///
/// Example: `auto e = rar::explain::lime(rar::LimeOptions().feature_mask(mask).samples(500));`
using Lime = OptionsExplainer<LimeOptions, detail::LimeMethod>;

/// @param options baseline, feature_mask, samples, seed, kernel_width, distance, surrogate,
///        alpha, internal_batch_size, score
/// @return a LIME explainer
inline Lime lime(LimeOptions options = {}) { return Lime(std::move(options)); }

/// KernelSHAP as an explainer (see `rar::kernel_shap`). Not differentiable w.r.t. the input:
/// asking for `create_graph` raises an error.
///
/// Example: `auto e = rar::explain::kernel_shap(rar::KernelShapOptions().samples(1000));`
using KernelShap = OptionsExplainer<KernelShapOptions, detail::KernelShapMethod>;

/// @param options baseline, feature_mask, samples, seed, internal_batch_size, score
/// @return a KernelSHAP explainer
inline KernelShap kernel_shap(KernelShapOptions options = {}) {
  return KernelShap(std::move(options));
}

}  // namespace explain
}  // namespace rar
