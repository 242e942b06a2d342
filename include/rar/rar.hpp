#pragma once
/// @file
/// The umbrella header: `#include <rar/rar.hpp>` brings in all of rar.
///
/// rar makes neural-network attributions trustworthy: attribution methods (the Integrated
/// Gradients family, DeepLIFT, LRP, SHAP and perturbation methods, Grad-CAM, SmoothGrad, ...)
/// and an explainer for each (`rar::explain`), attribution-robustness and quality metrics
/// (top-k intersection, rank correlations, LENS, certified top-k radii, Quantus' families),
/// attacks on predictions and on attributions, Robust Attribution Regularization (Chen, Wu,
/// Rastogi, Liang, Jha, NeurIPS 2019) and its successors as loss terms for LibTorch training
/// loops, drop-in `rar::nn` layers, and TorchScript models (`rar::ScriptModel`).

/// @namespace rar
/// Everything public in rar: attribution methods (`rar::integrated_gradients`, `rar::deeplift`,
/// `rar::lrp`, `rar::smooth_grad`, ...), metrics (`rar::topk_intersection`, `rar::kendall_tau`,
/// `rar::lens`, `rar::certified_topk`, `rar::max_sensitivity`, ...), attacks (`rar::pgd_attack`,
/// `rar::attribution_attack`), the smooth surrogate (`rar::smooth_surrogate`) and loss terms
/// (`rar::cross_entropy`, `rar::ig_norm`, `rar::ig_sum_norm`, `rar::ssr`, ...). The explainers
/// live in `rar::explain`, the drop-in layers in `rar::nn`. Internals live in `rar::detail` and
/// are not part of the API.
///
/// Example:
/// @code
/// #include <rar/rar.hpp>
/// auto objective = rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().epsilon(0.1));
/// objective(model, x, y).backward();
/// @endcode

#include <rar/attack.hpp>
#include <rar/attribution.hpp>
#include <rar/core.hpp>
#include <rar/explain.hpp>
#include <rar/metrics.hpp>
#include <rar/nn.hpp>
#include <rar/regularizer.hpp>
#include <rar/script_model.hpp>
