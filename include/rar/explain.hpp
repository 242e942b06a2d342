#pragma once
/// @file
/// The `rar::explain` area: an explainer factory per attribution method. An explainer is a
/// callable `(model, input, target, create_graph) -> attributions`; every tool takes one.
///
/// Example:
/// @code
/// #include <rar/explain.hpp>
/// auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(64));
/// torch::Tensor a = ig(model, x, y, /*create_graph=*/false);
/// @endcode

#include <rar/core/explainer.hpp>
#include <rar/explain/blur_ig.hpp>
#include <rar/explain/cam.hpp>
#include <rar/explain/explainer.hpp>
#include <rar/explain/explainers.hpp>
#include <rar/explain/guided_ig.hpp>
#include <rar/explain/lime.hpp>
#include <rar/explain/lrp.hpp>
#include <rar/explain/perturbation.hpp>
