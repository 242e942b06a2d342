#pragma once
/// @file
/// The umbrella header: `#include <rar/rar.hpp>` brings in all of rar.
///
/// rar makes neural-network attributions trustworthy: attribution methods (Integrated
/// Gradients, DeepLIFT, saliency, SmoothGrad), attribution-robustness metrics, attacks on
/// predictions and on attributions, and Robust Attribution Regularization (Chen, Wu, Rastogi,
/// Liang, Jha, NeurIPS 2019) as loss terms for LibTorch training loops.

#include <rar/attack.hpp>
#include <rar/attribution.hpp>
#include <rar/metrics/metrics.hpp>
#include <rar/regularizer.hpp>
