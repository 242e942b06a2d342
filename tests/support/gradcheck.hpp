#pragma once
// Central differences of a scalar loss in a module's parameters, against autograd.

#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace rar {
namespace test {

/// Checks d f / d θ for a few entries of every tensor θ in `params` (about three per tensor)
/// against central differences with step `h`; `f` must be a deterministic function of the
/// parameters returning a 0-dim tensor. With `every_parameter_reached`, a parameter that f does
/// not depend on fails the check (otherwise its gradient is taken as zero).
/// @return the number of entries checked
template <class F>
int64_t check_parameter_gradients(const std::vector<torch::Tensor>& params, F&& f,
                                  double h = 1e-6, double relative = 1e-5,
                                  double absolute = 1e-8, bool every_parameter_reached = false) {
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
  int64_t checked = 0;
  for (size_t p = 0; p < params.size(); ++p) {
    const torch::Tensor& param = params[p];
    INFO("parameter " << p);
    if (every_parameter_reached) REQUIRE(grads[p].defined());
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
      INFO("entry " << i);
      CHECK(g[i].item<double>() ==
            Approx((up - down) / (2 * h)).epsilon(relative).margin(absolute));
      ++checked;
    }
  }
  return checked;
}

/// `check_parameter_gradients` over every parameter of `net`.
template <class F>
int64_t check_parameter_gradients(torch::nn::Module& net, F&& f, double h = 1e-6,
                                  double relative = 1e-5, double absolute = 1e-8) {
  return check_parameter_gradients(net.parameters(), std::forward<F>(f), h, relative, absolute);
}

}  // namespace test
}  // namespace rar
