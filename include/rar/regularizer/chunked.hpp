#pragma once
/// @file
/// Bounded memory for terms whose loss is a sum over samples of a double-backward objective:
/// the parameter gradients are computed chunk by chunk inside the call (one chunk's graph held
/// at a time) and attached to the returned loss, which then backpropagates them exactly.

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace rar {
namespace detail {

/// A 0-dim loss whose value is `value` and whose gradient w.r.t. `params[i]` is `grads[i]`
/// times the upstream gradient: value + Σᵢ ⟨pᵢ, gᵢ⟩ − Σᵢ ⟨pᵢ, gᵢ⟩ (the second sum detached; the
/// two sums are the same numbers, so the value is exact).
inline torch::Tensor loss_with_gradients(const torch::Tensor& value,
                                         const std::vector<torch::Tensor>& params,
                                         const std::vector<torch::Tensor>& grads) {
  torch::Tensor linear;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!grads[i].defined()) continue;
    const torch::Tensor term = (params[i] * grads[i]).sum();
    linear = linear.defined() ? linear + term : term;
  }
  if (!linear.defined()) return value;
  return value + (linear - linear.detach());
}

/// Σ over sample chunks [start, stop) of `objective(start, stop)` (a 0-dim tensor with its
/// graph), with its gradients w.r.t. `params` computed now, chunk by chunk, so that only one
/// chunk's graph is alive at a time. The result is differentiable w.r.t. `params` (first
/// order), not w.r.t. anything else.
template <class Objective>
torch::Tensor chunked_parameter_loss(const std::vector<torch::Tensor>& params, int64_t n,
                                     int64_t chunk, Objective&& objective) {
  std::vector<torch::Tensor> grads(params.size());
  torch::Tensor value;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t stop = std::min(n, start + chunk);
    const torch::Tensor part = objective(start, stop);
    if (!params.empty() && part.requires_grad()) {
      const auto g = torch::autograd::grad({part}, params, {}, /*retain_graph=*/false,
                                           /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t i = 0; i < params.size(); ++i) {
        if (!g[i].defined()) continue;
        grads[i] = grads[i].defined() ? grads[i] + g[i] : g[i];
      }
    }
    value = value.defined() ? value + part.detach() : part.detach();
  }
  return loss_with_gradients(value, params, grads);
}

}  // namespace detail
}  // namespace rar
