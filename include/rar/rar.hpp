#pragma once
/// @file
/// The umbrella header: `#include <rar/rar.hpp>` brings in all of rar.
///
/// rar makes neural-network attributions trustworthy: attribution methods (Integrated
/// Gradients, DeepLIFT, saliency, SmoothGrad), attribution-robustness metrics, attacks on
/// predictions and on attributions, and Robust Attribution Regularization (Chen, Wu, Rastogi,
/// Liang, Jha, NeurIPS 2019) as loss terms for LibTorch training loops.

/// @namespace rar
/// Everything public in rar: attribution methods (`rar::integrated_gradients`, `rar::deeplift`,
/// `rar::saliency`, `rar::smooth_grad`), metrics (`rar::topk_intersection`, `rar::kendall_tau`,
/// `rar::center_of_mass_shift`, `rar::max_sensitivity`), attacks (`rar::pgd_attack`,
/// `rar::attribution_attack`) and loss terms (`rar::cross_entropy`, `rar::ig_norm`, ...).
/// Internals live in `rar::detail` and are not part of the API.
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
