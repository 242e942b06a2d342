// Integrated Gradients: quadrature rules, analytic cases, completeness, batching,
// differentiability (finite differences), side effects, devices and bad input.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include "support/models.hpp"

#include <cmath>

using rar::test::max_rel_diff;

namespace {

const rar::Quadrature kAllMethods[] = {
    rar::Quadrature::riemann_left, rar::Quadrature::riemann_right,
    rar::Quadrature::riemann_middle, rar::Quadrature::riemann_trapezoid,
    rar::Quadrature::gauss_legendre};

// f(x) = Σ_j v_j tanh(⟨u_j, x⟩ + c_j): smooth scalar model [N, D] -> [N] for convergence tests.
struct SmoothScalar {
  torch::Tensor u, c, v;
  explicit SmoothScalar(int64_t d) {
    torch::manual_seed(7);
    u = 0.3 * torch::randn({d, 5}, torch::kDouble);
    c = torch::randn({5}, torch::kDouble);
    v = torch::randn({5}, torch::kDouble);
  }
  torch::Tensor operator()(const torch::Tensor& x) const {
    return torch::tanh(x.matmul(u) + c).matmul(v);
  }
};

}  // namespace

TEST_CASE("quadrature weights sum to 1 and nodes lie in [0, 1] in increasing order",
          "[ig][quadrature]") {
  for (auto method : kAllMethods) {
    for (int64_t m : {2, 3, 7, 50, 128}) {
      const auto rule = rar::quadrature(method, m);
      REQUIRE(rule.alphas.size() == static_cast<size_t>(m));
      double sum = 0;
      for (double w : rule.weights) sum += w;
      CHECK(sum == Approx(1.0).epsilon(1e-13));
      for (size_t k = 0; k < rule.alphas.size(); ++k) {
        CHECK(rule.alphas[k] >= 0.0);
        CHECK(rule.alphas[k] <= 1.0);
        if (k > 0) CHECK(rule.alphas[k] > rule.alphas[k - 1]);
      }
    }
  }
}

TEST_CASE("Gauss-Legendre integrates polynomials of degree 2m-1 exactly", "[ig][quadrature]") {
  for (int64_t m : {1, 2, 5, 16, 64}) {
    const auto rule = rar::quadrature(rar::Quadrature::gauss_legendre, m);
    for (int64_t p = 0; p <= 2 * m - 1; p += std::max<int64_t>(1, (2 * m - 1) / 7)) {
      double integral = 0;
      for (size_t k = 0; k < rule.alphas.size(); ++k)
        integral += rule.weights[k] * std::pow(rule.alphas[k], static_cast<double>(p));
      CHECK(integral == Approx(1.0 / static_cast<double>(p + 1)).epsilon(1e-12));
    }
  }
}

TEST_CASE("Riemann nodes follow Captum's placement", "[ig][quadrature]") {
  const auto left = rar::quadrature(rar::Quadrature::riemann_left, 4);
  const auto right = rar::quadrature(rar::Quadrature::riemann_right, 4);
  const auto middle = rar::quadrature(rar::Quadrature::riemann_middle, 4);
  const auto trap = rar::quadrature(rar::Quadrature::riemann_trapezoid, 5);
  CHECK(left.alphas == std::vector<double>{0.0, 0.25, 0.5, 0.75});
  CHECK(right.alphas == std::vector<double>{0.25, 0.5, 0.75, 1.0});
  CHECK(middle.alphas == std::vector<double>{0.125, 0.375, 0.625, 0.875});
  CHECK(trap.alphas == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});
  CHECK(trap.weights == std::vector<double>{0.125, 0.25, 0.25, 0.25, 0.125});
}

TEMPLATE_TEST_CASE("IG of a linear model equals (x - x') * w for every quadrature", "[ig]",
                   float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(6, 3, dtype);
  torch::manual_seed(3);
  const auto x = torch::randn({4, 6}, dtype);
  const auto base = torch::randn({4, 6}, dtype);
  const auto target = torch::tensor({0, 2, 1, 2}, torch::kLong);
  const auto expected = (x - base) * model->weight.detach().index_select(0, target);
  for (auto method : kAllMethods) {
    for (int64_t m : {2, 5, 33}) {
      const auto attr = rar::integrated_gradients(
          model, x, rar::IGOptions().baseline(base).target(target).steps(m).method(method));
      CHECK(attr.scalar_type() == dtype);
      CHECK(attr.sizes() == x.sizes());
      CHECK(max_rel_diff(attr, expected) < rar::test::tolerance<TestType>());
    }
  }
}

TEST_CASE("IG is exact for a quadratic model with the middle, trapezoid and Gauss rules",
          "[ig]") {
  // f(x) = Σ x_i² has gradient 2(x' + α(x − x')), linear in α: the midpoint, trapezoid and
  // Gauss rules integrate it exactly, giving IG_i = x_i² − x'_i².
  auto model = [](const torch::Tensor& x) { return (x * x).sum(1); };
  torch::manual_seed(4);
  const auto x = torch::randn({3, 5}, torch::kDouble);
  const auto base = torch::randn({3, 5}, torch::kDouble);
  const auto expected = x * x - base * base;
  for (auto method : {rar::Quadrature::riemann_middle, rar::Quadrature::riemann_trapezoid,
                      rar::Quadrature::gauss_legendre}) {
    const auto attr =
        rar::integrated_gradients(model, x, rar::IGOptions().baseline(base).steps(3).method(method));
    CHECK(max_rel_diff(attr, expected) < 1e-13);
  }
}

TEST_CASE("IG satisfies completeness as steps grow, with the orders of each rule", "[ig]") {
  SmoothScalar model(8);
  torch::manual_seed(5);
  const auto x = torch::randn({6, 8}, torch::kDouble);
  auto delta = [&](rar::Quadrature method, int64_t m) {
    auto r = rar::integrated_gradients_with_delta(model, x,
                                                  rar::IGOptions().steps(m).method(method));
    return r.delta.abs().max().item<double>();
  };
  // Observed order p from halving the step: |δ(m)| / |δ(2m)| ≈ 2^p.
  auto order = [&](rar::Quadrature method, int64_t m) {
    return std::log2(delta(method, m) / delta(method, 2 * m));
  };
  CHECK(order(rar::Quadrature::riemann_left, 64) == Approx(1.0).margin(0.15));
  CHECK(order(rar::Quadrature::riemann_right, 64) == Approx(1.0).margin(0.15));
  CHECK(order(rar::Quadrature::riemann_middle, 32) == Approx(2.0).margin(0.15));
  CHECK(order(rar::Quadrature::riemann_trapezoid, 32) == Approx(2.0).margin(0.15));
  // Gauss-Legendre converges faster than any power: at 12 points it beats 128 midpoints.
  CHECK(delta(rar::Quadrature::gauss_legendre, 12) < 1e-8);
  CHECK(delta(rar::Quadrature::gauss_legendre, 12) <
        0.01 * delta(rar::Quadrature::riemann_middle, 128));
  CHECK(delta(rar::Quadrature::gauss_legendre, 40) < 1e-12);
}

TEST_CASE("IG's delta is sum(attributions) minus the score difference", "[ig]") {
  auto model = rar::test::smooth_mlp(5, 7, 3);
  torch::manual_seed(6);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  const auto target = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto r = rar::integrated_gradients_with_delta(
      model, x, rar::IGOptions().target(target).steps(5).method(rar::Quadrature::riemann_left));
  torch::NoGradGuard ng;
  const auto out = model->forward(x).gather(1, target.view({-1, 1})).squeeze(1);
  const auto out0 = model->forward(torch::zeros_like(x)).gather(1, target.view({-1, 1})).squeeze(1);
  const auto expected = r.attributions.sum(1) - (out - out0);
  CHECK(max_rel_diff(r.delta, expected) < 1e-13);
  CHECK(r.delta.abs().max().item<double>() > 1e-6);  // 5 left-Riemann steps are not exact
}

TEST_CASE("internal_batch_size gives the same attributions as one batch", "[ig]") {
  auto model = rar::test::smooth_mlp(5, 7, 3);
  torch::manual_seed(8);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  const auto target = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto opts = rar::IGOptions().target(target).steps(9);
  const auto full = rar::integrated_gradients(model, x, opts);
  for (int64_t ibs : {1, 3, 4, 7, 35, 36, 1000}) {
    auto o = opts;
    const auto chunked = rar::integrated_gradients(model, x, o.internal_batch_size(ibs));
    CHECK(max_rel_diff(chunked, full) < 1e-14);
  }
}

TEST_CASE("IG with per-sample, shared and scalar baselines", "[ig]") {
  auto model = rar::test::smooth_mlp(5, 7, 3);
  torch::manual_seed(9);
  const auto x = torch::randn({3, 5}, torch::kDouble);
  const auto one = torch::randn({1, 5}, torch::kDouble);
  const auto target = torch::tensor(1, torch::kLong);
  const auto opts = rar::IGOptions().target(target).steps(8);
  auto o1 = opts, o2 = opts, o3 = opts, o4 = opts;
  const auto shared = rar::integrated_gradients(model, x, o1.baseline(one));
  const auto per_sample = rar::integrated_gradients(model, x, o2.baseline(one.expand({3, 5}).clone()));
  CHECK(max_rel_diff(shared, per_sample) < 1e-15);
  const auto scalar = rar::integrated_gradients(model, x, o3.baseline(torch::tensor(0.0, torch::kDouble)));
  const auto zeros = rar::integrated_gradients(model, x, o4);
  CHECK(max_rel_diff(scalar, zeros) < 1e-15);
}

TEST_CASE("IG with create_graph matches central differences w.r.t. parameters and input",
          "[ig][gradcheck]") {
  auto model = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(10);
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto base = 0.3 * torch::randn({2, 4}, torch::kDouble);
  const auto weights = torch::randn({2, 4}, torch::kDouble);
  const auto target = torch::tensor({2, 0}, torch::kLong);
  for (auto method : {rar::Quadrature::riemann_right, rar::Quadrature::gauss_legendre}) {
    const auto opts = rar::IGOptions().baseline(base).target(target).steps(6).method(method);
    // L(θ, x) = Σ r ⊙ IG(x)²: depends on IG through the input both directly and via gradients.
    auto loss = [&](const torch::Tensor& input, bool graph) {
      auto o = opts;
      auto a = rar::integrated_gradients(model, input, o.create_graph(graph));
      return (weights * a * a).sum();
    };
    const auto xg = x.clone().requires_grad_(true);
    const auto l = loss(xg, true);
    const auto params = model->parameters();
    std::vector<torch::Tensor> wrt = params;
    wrt.push_back(xg);
    // The last layer's bias does not reach IG (its gradient is unused): compare with 0 there.
    auto grads = torch::autograd::grad({l}, wrt, {}, false, false, /*allow_unused=*/true);
    for (size_t i = 0; i < grads.size(); ++i)
      if (!grads[i].defined()) grads[i] = torch::zeros_like(wrt[i]);
    const double h = 1e-6;
    // Parameters: perturb a few entries of each tensor.
    torch::NoGradGuard no_grad;
    for (size_t p = 0; p < params.size(); ++p) {
      auto flat = params[p].view({-1});
      for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 4)) {
        const double saved = flat[i].item<double>();
        flat[i] = saved + h;
        const double up = loss(x, false).item<double>();
        flat[i] = saved - h;
        const double down = loss(x, false).item<double>();
        flat[i] = saved;
        const double fd = (up - down) / (2 * h);
        CHECK(grads[p].view({-1})[i].item<double>() == Approx(fd).epsilon(1e-6).margin(1e-8));
      }
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      auto xp = x.clone(), xm = x.clone();
      xp.view({-1})[i] += h;
      xm.view({-1})[i] -= h;
      const double fd = (loss(xp, false).item<double>() - loss(xm, false).item<double>()) / (2 * h);
      CHECK(grads.back().view({-1})[i].item<double>() == Approx(fd).epsilon(1e-6).margin(1e-8));
    }
  }
}

TEST_CASE("attribution methods leave the model's mode, flags and gradients untouched",
          "[ig][side-effects]") {
  torch::manual_seed(11);
  torch::nn::Sequential net(torch::nn::Linear(5, 6), torch::nn::ReLU(), torch::nn::Dropout(0.0),
                            torch::nn::Linear(6, 3));
  net->to(torch::kDouble);
  const auto x = torch::randn({3, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2}, torch::kLong);
  // Give one parameter a gradient and freeze another, in training mode.
  net->forward(x).sum().backward();
  net->parameters()[1].mutable_grad() = torch::Tensor();
  net->parameters()[2].requires_grad_(false);
  for (bool training : {true, false}) {
    net->train(training);
    const rar::test::ModuleState before(*net);
    rar::integrated_gradients(net, x, rar::IGOptions().target(y).steps(4));
    rar::integrated_gradients_with_delta(net, x, rar::IGOptions().target(y).steps(4).create_graph(true));
    rar::saliency(net, x, rar::GradientOptions().target(y));
    rar::gradient_x_input(net, x, rar::GradientOptions().target(y));
    if (!training) rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
    rar::smooth_grad(net, [&](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool) {
      return rar::saliency(m, in, rar::GradientOptions().target(t));
    }, x, rar::SmoothGradOptions().samples(3).target(y));
    CHECK(rar::test::ModuleState(*net) == before);
  }
}

TEST_CASE("IG accepts every kind of model", "[ig]") {
  auto seq = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(12);
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto opts = rar::IGOptions().target(torch::tensor({1, 2})).steps(4);
  const auto reference = rar::integrated_gradients(seq, x, opts);
  auto lambda = [&](const torch::Tensor& in) { return seq->forward(in); };
  std::shared_ptr<torch::nn::SequentialImpl> ptr = seq.ptr();
  torch::nn::SequentialImpl& impl = *seq;
  CHECK(max_rel_diff(rar::integrated_gradients(lambda, x, opts), reference) == 0);
  CHECK(max_rel_diff(rar::integrated_gradients(ptr, x, opts), reference) == 0);
  CHECK(max_rel_diff(rar::integrated_gradients(impl, x, opts), reference) == 0);
}

TEST_CASE("IG runs under a NoGradGuard of the caller", "[ig]") {
  auto model = rar::test::linear_model(3, 2);
  const auto x = torch::ones({1, 3}, torch::kDouble);
  torch::NoGradGuard no_grad;
  const auto attr = rar::integrated_gradients(model, x, rar::IGOptions().target(torch::tensor(1)));
  CHECK(max_rel_diff(attr, model->weight.detach()[1].unsqueeze(0)) < 1e-14);
}

TEST_CASE("IG rejects bad input with messages naming the argument", "[ig][errors]") {
  auto model = rar::test::linear_model(3, 2);
  const auto x = torch::ones({2, 3}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  using Catch::Contains;
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x, rar::IGOptions().target(y).steps(0)),
                    Contains("steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::integrated_gradients(model, x, rar::IGOptions().target(y).steps(1).method(
                                              rar::Quadrature::riemann_trapezoid)),
      Contains("trapezoid rule needs steps >= 2, got 1"));
  CHECK_THROWS_WITH(
      rar::integrated_gradients(model, x, rar::IGOptions().target(y).internal_batch_size(-1)),
      Contains("internal_batch_size must be >= 0"));
  CHECK_THROWS_WITH(
      rar::integrated_gradients(model, x, rar::IGOptions().target(y).baseline(torch::ones({3, 3}, torch::kDouble))),
      Contains("baseline of shape [3, 3] does not broadcast to the input's shape [2, 3]"));
  CHECK_THROWS_WITH(
      rar::integrated_gradients(model, x, rar::IGOptions().target(y).baseline(torch::ones({2, 3}))),
      Contains("baseline must have the input's dtype Double, got Float"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x, rar::IGOptions().target(torch::tensor({0, 1, 1}))),
                    Contains("target must be 0-dim or of shape [2]"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x, rar::IGOptions().target(torch::tensor({0, 2}))),
                    Contains("target class indices must lie in [0, 2), got values in [0, 2]"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x, rar::IGOptions().target(torch::tensor({0.0, 1.0}))),
                    Contains("target must be an int64 tensor"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x), Contains("without a target the model output must be [N]"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, torch::ones({2, 3}, torch::kLong)),
                    Contains("input must be float32 or float64, got Long"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, torch::Tensor()),
                    Contains("input must be a defined tensor"));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, torch::ones({0, 3}, torch::kDouble)),
                    Contains("input must be a batch [N, ...] with N >= 1, got shape [0, 3]"));
}

TEST_CASE("IG on CUDA matches the CPU", "[ig][cuda]") {
  RAR_REQUIRE_CUDA();
  auto model = rar::test::smooth_mlp(5, 7, 3);
  torch::manual_seed(13);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto opts = rar::IGOptions().target(y).steps(16);
  const auto cpu = rar::integrated_gradients_with_delta(model, x, opts);
  model->to(torch::kCUDA);
  auto o = opts;
  const auto gpu = rar::integrated_gradients_with_delta(model, x.cuda(), o.target(y.cuda()));
  CHECK(gpu.attributions.device().is_cuda());
  CHECK(max_rel_diff(gpu.attributions, cpu.attributions) < 1e-10);
  CHECK(max_rel_diff(gpu.delta, cpu.delta) < 1e-10);
  model->to(torch::kCPU);
}
