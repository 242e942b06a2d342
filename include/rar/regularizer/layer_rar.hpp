#pragma once
/// @file
/// RAR at a layer: with a `rar::Split` model (`rar/core/split.hpp`), a model written as
/// tail(head(x)), the robust-IG terms (`rar::ig_norm`, `rar::ig_sum_norm`, `rar::ig_sum`) take IG
/// at the layer h = head(x), the IG_h^{ℓ_y}(x, x′) of Chen, Wu, Rastogi, Liang, Jha, "Robust
/// Attribution Regularization" (NeurIPS 2019). Every other function sees the composition
/// tail(head(x)). This header holds the terms' helpers for the layer's points.

#include <rar/attribution/layer_integrated_gradients.hpp>
#include <rar/core/model.hpp>
#include <rar/core/split.hpp>

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace rar {

namespace detail {

/// The head of a model whose IG is taken at its input: h = x, resolved at compile time, so the
/// input-space terms call nothing extra.
struct InputLayer {};

/// The point at the layer where a robust-IG term takes IG: x itself for `InputLayer`, else
/// head(x), checked to be a batch of x's rows, dtype and device (`what` names the point in the
/// message, `fn` the public term).
template <class Head>
torch::Tensor layer_point(const char* fn, Head& head, const torch::Tensor& x, const char* what) {
  if constexpr (std::is_same_v<std::decay_t<Head>, InputLayer>) {
    return x;
  } else {
    torch::Tensor h = call_model(head, x);
    check_layer_output(fn, what, h, x);
    return h;
  }
}

/// head(x′), checked against h = head(x): the end of the h-space path must have the start's
/// shape (nothing to check for `InputLayer`, where both are inputs of one batch).
template <class Head>
torch::Tensor layer_end_point(const char* fn, Head& head, const torch::Tensor& x_adv,
                              const torch::Tensor& h) {
  torch::Tensor h_adv = layer_point(fn, head, x_adv, "x'");
  if constexpr (!std::is_same_v<std::decay_t<Head>, InputLayer>) {
    TORCH_CHECK(h_adv.sizes() == h.sizes(), fn, ": head(x') must have the shape of head(x) ",
                h.sizes(), ", got ", h_adv.sizes());
  }
  return h_adv;
}

}  // namespace detail
}  // namespace rar
