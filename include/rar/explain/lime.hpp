#pragma once
/// @file
/// Explainer factories for the surrogate-model methods: `rar::explain::lime(LimeOptions)` and
/// `rar::explain::kernel_shap(KernelShapOptions)`, explainers in the one shape
/// `(model, input, target, create_graph) -> attributions` (see `rar/core/explainer.hpp`).

#include <rar/attribution/kernel_shap.hpp>
#include <rar/attribution/lime.hpp>

#include <torch/torch.h>

#include <utility>

namespace rar {
namespace explain {

/// LIME as an explainer (see `rar::lime`). A fitted surrogate is not differentiable w.r.t. the
/// input, so asking for `create_graph` raises an error rather than returning a detached map.
///
/// Every call draws its coalitions from the options' seed, so repeated calls on the same input
/// give the same map.
///
/// Example: `auto e = rar::explain::lime(rar::LimeOptions().feature_mask(mask).samples(500));`
class Lime {
 public:
  /// @param options baseline, feature_mask, samples, seed, kernel, surrogate, batching, score
  ///        (target comes from each call)
  explicit Lime(LimeOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the LIME options
  const LimeOptions& options() const noexcept { return options_; }
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
                "rar::explain::lime: LIME's coefficients come from a regression on sampled "
                "coalitions and are not differentiable w.r.t. the input, so it cannot give the "
                "differentiable map an attack needs (create_graph = true); attack through "
                "rar::explain::integrated_gradients or rar::explain::saliency and measure with "
                "LIME");
    LimeOptions o = options_;
    if (target.defined()) o.target(target);
    return rar::lime(model, input, o);
  }

 private:
  LimeOptions options_;
};

/// @param options baseline, feature_mask, samples, seed, kernel_width, distance, surrogate,
///        alpha, internal_batch_size, score
/// @return a LIME explainer
inline Lime lime(LimeOptions options = {}) { return Lime(std::move(options)); }

/// KernelSHAP as an explainer (see `rar::kernel_shap`). Not differentiable w.r.t. the input:
/// asking for `create_graph` raises an error.
///
/// Example: `auto e = rar::explain::kernel_shap(rar::KernelShapOptions().samples(1000));`
class KernelShap {
 public:
  /// @param options baseline, feature_mask, samples, seed, batching, score (target comes from
  ///        each call)
  explicit KernelShap(KernelShapOptions options = {}) : options_(std::move(options)) {}
  /// The options each call starts from.
  /// @return the KernelSHAP options
  const KernelShapOptions& options() const noexcept { return options_; }
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
                "rar::explain::kernel_shap: KernelSHAP's values come from a regression on "
                "sampled coalitions and are not differentiable w.r.t. the input, so it cannot "
                "give the differentiable map an attack needs (create_graph = true); attack "
                "through rar::explain::integrated_gradients or rar::explain::saliency and "
                "measure with KernelSHAP");
    KernelShapOptions o = options_;
    if (target.defined()) o.target(target);
    return rar::kernel_shap(model, input, o);
  }

 private:
  KernelShapOptions options_;
};

/// @param options baseline, feature_mask, samples, seed, internal_batch_size, score
/// @return a KernelSHAP explainer
inline KernelShap kernel_shap(KernelShapOptions options = {}) {
  return KernelShap(std::move(options));
}

}  // namespace explain
}  // namespace rar
