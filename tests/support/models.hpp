#pragma once
// Small deterministic models shared by the tests.

#include <rar/core/model.hpp>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace rar {
namespace test {

/// Tolerance for comparing results computed in `T` (float or double).
template <class T>
constexpr double tolerance() {
  return std::is_same<T, float>::value ? 1e-4 : 1e-10;
}

template <class T>
torch::Dtype dtype_of() {
  return std::is_same<T, float>::value ? torch::kFloat : torch::kDouble;
}

/// F(x)[target] per sample, without a graph.
template <class Model>
torch::Tensor target_score(Model& model, const torch::Tensor& x, const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  return rar::call_model(model, x).gather(1, target.view({-1, 1})).squeeze(1);
}

/// Largest |a − b| relative to max(1, |b|∞).
inline double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const auto ad = a.detach().to(torch::kCPU, torch::kDouble);
  const auto bd = b.detach().to(torch::kCPU, torch::kDouble);
  const double scale = std::max(1.0, bd.abs().max().item<double>());
  return (ad - bd).abs().max().item<double>() / scale;
}

/// The largest elementwise relative difference |a − b| / max(|b|, floor) over the entries where b
/// is not NaN; a and b must have the same shape and NaN in the same places (as a metric that is
/// undefined for a sample must be in both). 0 when every entry is NaN.
inline double nan_aware_rel_diff(const torch::Tensor& a, const torch::Tensor& b, double floor) {
  const auto ad = a.detach().to(torch::kCPU, torch::kDouble);
  const auto bd = b.detach().to(torch::kCPU, torch::kDouble);
  REQUIRE(ad.sizes() == bd.sizes());
  REQUIRE(torch::equal(torch::isnan(ad), torch::isnan(bd)));
  const auto finite = ~torch::isnan(bd);
  if (!finite.any().item<bool>()) return 0.0;
  const auto bf = bd.masked_select(finite);
  return ((ad.masked_select(finite) - bf).abs() / bf.abs().clamp_min(floor)).max().item<double>();
}

/// A seeded MLP [N, in] -> [N, classes] with smooth (tanh) activations.
inline torch::nn::Sequential smooth_mlp(int64_t in, int64_t hidden, int64_t classes,
                                        torch::Dtype dtype = torch::kDouble, uint64_t seed = 1) {
  torch::manual_seed(seed);
  torch::nn::Sequential net(torch::nn::Linear(in, hidden), torch::nn::Tanh(),
                            torch::nn::Linear(hidden, hidden), torch::nn::Tanh(),
                            torch::nn::Linear(hidden, classes));
  net->to(dtype);
  return net;
}

/// A seeded linear model y = x Wᵀ + b.
inline torch::nn::Linear linear_model(int64_t in, int64_t classes,
                                      torch::Dtype dtype = torch::kDouble, uint64_t seed = 2) {
  torch::manual_seed(seed);
  torch::nn::Linear lin(in, classes);
  lin->to(dtype);
  return lin;
}

/// Snapshot of everything an attribution call must leave untouched in a module.
struct ModuleState {
  std::vector<bool> training, requires_grad, grad_defined;
  std::vector<torch::Tensor> grads, params;

  explicit ModuleState(torch::nn::Module& m) {
    for (const auto& sub : m.modules()) training.push_back(sub->is_training());
    for (const auto& p : m.parameters()) {
      requires_grad.push_back(p.requires_grad());
      grad_defined.push_back(p.grad().defined());
      grads.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
      params.push_back(p.detach().clone());
    }
  }

  bool operator==(const ModuleState& o) const {
    if (training != o.training || requires_grad != o.requires_grad ||
        grad_defined != o.grad_defined)
      return false;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].equal(o.params[i])) return false;
      if (grads[i].defined() && !grads[i].equal(o.grads[i])) return false;
    }
    return true;
  }
};

}  // namespace test
}  // namespace rar
