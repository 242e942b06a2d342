#pragma once
// Central differences of a scalar loss in a module's parameters, against autograd.

#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <algorithm>

namespace rar {
namespace test {

/// Checks d f / d θ for a few entries of every parameter θ of `net` (about three per tensor)
/// against central differences with step `h`; `f` must be a deterministic function of the
/// parameters returning a 0-dim tensor.
template <class F>
void check_parameter_gradients(torch::nn::Module& net, F&& f, double h = 1e-6,
                               double relative = 1e-5, double absolute = 1e-8) {
  const auto params = net.parameters();
  const torch::Tensor loss = f();
  auto grads = torch::autograd::grad({loss}, params, {}, false, false, /*allow_unused=*/true);
  torch::NoGradGuard no_grad;
  // Entry i (row-major) of t as a 0-dim view, whatever t's strides.
  auto entry = [](const torch::Tensor& t, int64_t i) {
    torch::Tensor e = t;
    int64_t rest = t.numel();
    for (int64_t d = 0; d < t.dim(); ++d) {
      rest /= t.size(d);
      e = e.select(0, (i / rest) % t.size(d));
    }
    return e;
  };
  for (size_t p = 0; p < params.size(); ++p) {
    const torch::Tensor& param = params[p];
    const torch::Tensor g =
        grads[p].defined() ? grads[p].reshape({-1}) : torch::zeros({param.numel()}, param.options());
    for (int64_t i = 0; i < param.numel(); i += std::max<int64_t>(1, param.numel() / 3)) {
      torch::Tensor element = entry(param, i);
      const double saved = element.item<double>();
      element.fill_(saved + h);
      const double up = f().template item<double>();
      element.fill_(saved - h);
      const double down = f().template item<double>();
      element.fill_(saved);
      INFO("parameter " << p << " entry " << i);
      CHECK(g[i].item<double>() ==
            Approx((up - down) / (2 * h)).epsilon(relative).margin(absolute));
    }
  }
}

}  // namespace test
}  // namespace rar
