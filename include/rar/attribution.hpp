#pragma once
/// @file
/// All attribution methods: Integrated Gradients (at the input and at a layer, fixed or
/// adaptive) and its variants (Expected Gradients, IDGI, Blur IG, Guided IG), layer
/// conductance, saliency, gradient × input, guided backpropagation, DeepLIFT and DeepLIFT-SHAP,
/// GradientSHAP, KernelSHAP, LIME, Shapley value sampling, occlusion, LRP, Grad-CAM, SmoothGrad
/// and the score functions.

#include <rar/attribution/blur_ig.hpp>
#include <rar/attribution/deeplift.hpp>
#include <rar/attribution/deeplift_shap.hpp>
#include <rar/attribution/expected_gradients.hpp>
#include <rar/attribution/grad_cam.hpp>
#include <rar/attribution/gradient.hpp>
#include <rar/attribution/gradient_shap.hpp>
#include <rar/attribution/guided_backprop.hpp>
#include <rar/attribution/guided_ig.hpp>
#include <rar/attribution/idgi.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/kernel_shap.hpp>
#include <rar/attribution/layer_integrated_gradients.hpp>
#include <rar/attribution/lime.hpp>
#include <rar/attribution/lrp.hpp>
#include <rar/attribution/perturbation.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/score.hpp>
#include <rar/attribution/shapley_value_sampling.hpp>
#include <rar/attribution/smooth_grad.hpp>
