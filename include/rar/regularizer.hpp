#pragma once
/// @file
/// Robust Attribution Regularization as composable loss terms: cross_entropy, ig_norm,
/// ig_sum_norm, ig_sum, adversarial, input_gradient_norm, and the successor terms ssr, art and
/// attribution_alignment, and the distributional-robustness objective distributional_ig;
/// rar::Split (rar/core/split.hpp) takes the robust-IG terms to a hidden layer.

#include <rar/regularizer/adversarial.hpp>
#include <rar/regularizer/alignment.hpp>
#include <rar/regularizer/art.hpp>
#include <rar/regularizer/distributional.hpp>
#include <rar/regularizer/input_gradient.hpp>
#include <rar/regularizer/layer_rar.hpp>
#include <rar/regularizer/robust_ig.hpp>
#include <rar/regularizer/ssr.hpp>
#include <rar/regularizer/term.hpp>
