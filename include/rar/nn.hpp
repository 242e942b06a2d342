#pragma once
/// @file
/// The `rar::nn` area: drop-in activations that rar's methods can switch (DeepLIFT's rescale
/// rule, the smooth surrogate, guided backprop), their functional forms, the transformer
/// operations DeepLIFT sees (LayerNorm, softmax, products, attention, max pooling) and the scopes.
///
/// Example:
/// @code
/// #include <rar/nn.hpp>
/// torch::nn::Sequential net(torch::nn::Linear(4, 8), rar::nn::ReLU(), torch::nn::Linear(8, 2));
/// @endcode

#include <rar/nn/activation.hpp>
#include <rar/nn/attention.hpp>
#include <rar/nn/functional.hpp>
#include <rar/nn/layers.hpp>
#include <rar/nn/model.hpp>
#include <rar/nn/scope.hpp>
#include <rar/nn/surrogate.hpp>
