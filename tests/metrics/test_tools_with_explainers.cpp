// max_sensitivity and the parameter-randomization test take any attribution method: explainers
// from rar::explain and lambdas of the explainer signature.

#include <rar/explain.hpp>
#include <rar/metrics.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <cmath>
#include <limits>
#include <vector>

using Catch::Contains;

namespace {

// x ↦ [Σ x², −Σ x²]: the class-0 score has gradient 2x and, from a zero baseline, integrated
// gradients x² (exact for Gauss-Legendre with two or more points: the integrand is linear in α).
torch::Tensor square_model(const torch::Tensor& x) {
  const torch::Tensor s = (x * x).flatten(1).sum(1);
  return torch::stack({s, -s}, 1);
}

// max_s ‖Φ(x + δ_s) − Φ(x)‖ / ‖Φ(x)‖ for a closed-form explanation Φ, with the draws the contract
// promises: the stream (seed, 0), one [N, D] draw per round.
template <class Phi>
torch::Tensor expected_sensitivity(const torch::Tensor& x, const rar::MaxSensitivityOptions& o,
                                   Phi phi) {
  at::Generator gen = rar::seeded_generator(o.seed(), 0);
  const torch::Tensor x64 = x.to(torch::kDouble);
  const torch::Tensor base = phi(x64);
  torch::Tensor worst = torch::zeros({x.size(0)}, torch::kDouble);
  for (int64_t s = 0; s < o.samples(); ++s) {
    const torch::Tensor moved = rar::detail::perturb_uniform(gen, x, o.ball()).to(torch::kDouble);
    worst = torch::maximum(worst, (phi(moved) - base).norm(2, {1}) / base.norm(2, {1}));
  }
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("max_sensitivity runs saliency and integrated-gradients explainers on the "
                   "analytic Φ = 2x and Φ = x²",
                   "[metrics][sensitivity][explainers]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-11;
  torch::manual_seed(61);
  const torch::Tensor x = (torch::rand({5, 6}, torch::kDouble) + 0.5).to(dtype);
  const torch::Tensor y = torch::zeros({5}, torch::kLong);
  const auto opts = rar::MaxSensitivityOptions().radius(0.05).samples(6).seed(8);
  SECTION("saliency: ‖δ‖ / ‖x‖") {
    const auto sens = rar::max_sensitivity(square_model, rar::explain::saliency(), x, y, opts);
    const auto expected =
        expected_sensitivity(x, opts, [](const torch::Tensor& p) { return 2 * p; });
    CHECK(torch::allclose(sens, expected, tol, 0));
    // The target as an option gives the same numbers.
    CHECK(sens.equal(rar::max_sensitivity(square_model, rar::explain::saliency(), x,
                                          rar::MaxSensitivityOptions(opts).target(y))));
  }
  SECTION("integrated gradients: ‖(x + δ)² − x²‖ / ‖x²‖") {
    const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(4));
    const auto sens = rar::max_sensitivity(square_model, ig, x, y, opts);
    const auto expected =
        expected_sensitivity(x, opts, [](const torch::Tensor& p) { return p * p; });
    CHECK(torch::allclose(sens, expected, tol, 0));
    // A lambda of the explainer signature is an explainer too.
    const auto lambda = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool graph) {
      return rar::integrated_gradients(
          m, in, rar::IGOptions().target(t).steps(4).create_graph(graph));
    };
    CHECK(sens.equal(rar::max_sensitivity(square_model, lambda, x, y, opts)));
  }
  SECTION("a clip range clips the perturbed inputs") {
    const auto ranged = rar::MaxSensitivityOptions(opts).radius(0.6).clip_min(0.4).clip_max(1.5);  // x lies in [0.53, 1.49]
    const auto sens = rar::max_sensitivity(square_model, rar::explain::saliency(), x, y, ranged);
    const auto expected =
        expected_sensitivity(x, ranged, [](const torch::Tensor& p) { return 2 * p; });
    CHECK(torch::allclose(sens, expected, tol, 0));
    const auto unclipped = rar::max_sensitivity(square_model, rar::explain::saliency(), x, y,
                                                rar::MaxSensitivityOptions(ranged).clip_min(-10).clip_max(10));
    CHECK((sens <= unclipped + 1e-12).all().template item<bool>());
    CHECK((sens < unclipped).any().template item<bool>());
  }
  SECTION("a linear model's saliency does not move; a bad target is named") {
    auto linear = rar::test::linear_model(6, 3, dtype);
    const auto sens = rar::max_sensitivity(linear, rar::explain::saliency(), x,
                                           torch::tensor({0, 1, 2, 1, 0}), opts);
    CHECK(torch::equal(sens, torch::zeros({5}, torch::kDouble)));
    CHECK_THROWS_WITH(rar::max_sensitivity(linear, rar::explain::saliency(), x,
                                           torch::zeros({4}, torch::kLong), opts),
                      Contains("rar::max_sensitivity: target must be 0-dim or of shape [5]"));
  }
}

TEST_CASE("parameter_randomization_test runs explainers and gives the numbers of the direct calls",
          "[sanity][explainers]") {
  torch::nn::Sequential net(torch::nn::Linear(16, 8), torch::nn::Tanh(), torch::nn::Linear(8, 2));
  net->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    auto w = net->parameters()[0];
    w.zero_();
    w.slice(1, 0, 4).copy_(torch::linspace(0.5, 1.5, 32, torch::kDouble).view({8, 4}));
  }
  torch::manual_seed(62);
  const auto x = torch::rand({10, 16}, torch::kDouble);
  const auto y = torch::randint(2, {10}, torch::kLong);
  const auto opts = rar::RandomizationOptions().k(4).seed(5);
  const auto same = [](const std::vector<rar::RandomizationStep>& a,
                       const std::vector<rar::RandomizationStep>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].layer == b[i].layer);
      CHECK(a[i].spearman == b[i].spearman);
      CHECK(a[i].topk_intersection == b[i].topk_intersection);
    }
  };
  SECTION("integrated gradients") {
    const auto explainer = rar::explain::integrated_gradients(rar::IGOptions().steps(16));
    const auto direct = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool) {
      return rar::integrated_gradients(m, in, rar::IGOptions().target(t).steps(16));
    };
    const auto steps = rar::parameter_randomization_test(net, explainer, x, y, opts);
    same(steps, rar::parameter_randomization_test(net, direct, x, y, opts));
    REQUIRE(steps.size() == 3);
    CHECK(steps[0].spearman == 1.0);
    CHECK(steps[2].spearman < 0.5);
    CHECK(steps[2].topk_intersection < 0.5);
  }
  SECTION("saliency, and the explainer signature as a lambda") {
    const auto steps = rar::parameter_randomization_test(net, rar::explain::saliency(), x, y, opts);
    const auto lambda = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool graph) {
      return rar::saliency(m, in, rar::GradientOptions().target(t).create_graph(graph));
    };
    same(steps, rar::parameter_randomization_test(net, lambda, x, y, opts));
    REQUIRE(steps.size() == 3);
    // The trained map puts all mass on features 0-3, so top-4 is the same set: 1.
    CHECK(steps[0].topk_intersection == 1.0);
    CHECK(steps[2].topk_intersection < 1.0);
    // By hand: the trained maps against the maps of a copy with the first layer randomized
    // from the stream (seed, 0) after the last layer's weight and bias.
    torch::nn::Sequential copy(std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone()));
    at::Generator gen = rar::seeded_generator(5, 0);
    {
      torch::NoGradGuard no_grad;
      for (int64_t layer : {2, 0})
        for (auto& p : copy[layer]->parameters(false)) {
          const double scale = p.std().item<double>();
          p.copy_(rar::normal_like(gen, p) * (scale > 0 ? scale : 0.01));
        }
    }
    const auto map = [&](torch::nn::Sequential& m) {
      return rar::attribution_map(rar::saliency(m, x, rar::GradientOptions().target(y)));
    };
    const double rho = rar::spearman_rho(map(net), map(copy)).nan_to_num(0.0).mean().item<double>();
    CHECK(steps[2].spearman == rho);
  }
}
