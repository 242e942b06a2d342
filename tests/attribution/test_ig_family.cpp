// The Integrated Gradients family beyond the fixed-step rule: adaptive IG (points chosen by the
// completeness delta), IDGI against the authors' formula and its exact completeness, Expected
// Gradients against per-baseline IG, GradientSHAP and the linear closed form; finite-difference
// checks of their create_graph paths; bad input.

#include <catch2/catch.hpp>
#include <rar/attribution/expected_gradients.hpp>
#include <rar/attribution/idgi.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/explain/explainers.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"
#include "support/residual.hpp"

using Catch::Matchers::Contains;
using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& ig_family_reference() {
  static const rar::test::Reference ref(rar::test::data_path("ig_family_reference.txt"));
  return ref;
}

/// Central differences of s(x) = Σ_n ⟨a(x)_n, v_n⟩ in a few input entries, against autograd
/// through the attributions (create_graph).
template <class Attribute>
void ig_family_check_input_gradient(Attribute&& attribute, const torch::Tensor& x0) {
  torch::manual_seed(21);
  const torch::Tensor v = torch::randn_like(x0);
  torch::Tensor x = x0.clone().requires_grad_(true);
  const torch::Tensor s = (attribute(x, true) * v).sum();
  const torch::Tensor g = torch::autograd::grad({s}, {x})[0].reshape({-1});
  const double h = 1e-6;
  const int64_t d = x0.numel();
  for (int64_t i = 0; i < d; i += std::max<int64_t>(1, d / 7)) {
    torch::Tensor up = x0.clone(), down = x0.clone();
    up.view({-1})[i] += h;
    down.view({-1})[i] -= h;
    const double fd = ((attribute(up, false) * v).sum().template item<double>() -
                       (attribute(down, false) * v).sum().template item<double>()) /
                      (2 * h);
    INFO("entry " << i);
    CHECK(g[i].item<double>() == Approx(fd).epsilon(1e-5).margin(1e-8));
  }
}

}  // namespace

TEST_CASE("adaptive IG meets its tolerance per sample with fewer points on easy samples",
          "[ig][adaptive]") {
  auto model = rar::test::residual_model();
  const auto& ref = ig_family_reference();
  const torch::Tensor x = ref.tensor("input");
  const torch::Tensor y = ref.labels("targets");
  // Sample 1's baseline is the input itself scaled by 0.99: a short path, easy to integrate.
  torch::Tensor base = torch::zeros_like(x);
  base[1] = x[1] * 0.99;
  const double tol = 2e-3;
  for (auto method : {rar::Quadrature::gauss_legendre, rar::Quadrature::riemann_trapezoid,
                      rar::Quadrature::riemann_right, rar::Quadrature::riemann_left}) {
    const auto opts =
        rar::IGOptions().baseline(base).target(y).steps(2).method(method).tolerance(tol).max_steps(
            4096);
    const rar::Attribution r = rar::integrated_gradients_with_delta(model, x, opts);
    REQUIRE(r.points.defined());
    REQUIRE(r.points.sizes() == torch::IntArrayRef{3});
    const torch::Tensor change =
        rar::test::target_score(model, x, y) - rar::test::target_score(model, base, y);
    for (int64_t n = 0; n < 3; ++n) {
      INFO("sample " << n << " points " << r.points[n].item<int64_t>());
      CHECK(r.points[n].item<int64_t>() < 4096);
      CHECK(std::abs(r.delta[n].item<double>()) <= tol * std::abs(change[n].item<double>()));
      // Each sample's map is exactly the fixed-step map at the points it used.
      const torch::Tensor fixed = rar::integrated_gradients(model, x.slice(0, n, n + 1),
                                                            rar::IGOptions()
                                                                .baseline(base.slice(0, n, n + 1))
                                                                .target(y.slice(0, n, n + 1))
                                                                .steps(r.points[n].item<int64_t>())
                                                                .method(method));
      CHECK(max_rel_diff(r.attributions.slice(0, n, n + 1), fixed) < 1e-12);
    }
    INFO("method " << static_cast<int>(method));
    // The short path needs no more points than the others, and fewer than the hardest.
    const int64_t p0 = r.points[0].item<int64_t>(), p1 = r.points[1].item<int64_t>(),
                  p2 = r.points[2].item<int64_t>();
    CHECK(p1 <= std::min(p0, p2));
    CHECK(p1 < std::max(p0, p2));
    // The plain entry point returns the same attributions.
    CHECK(max_rel_diff(rar::integrated_gradients(model, x, opts), r.attributions) < 1e-12);
  }
}

TEST_CASE("adaptive IG stops at max_steps and tolerance 0 keeps the fixed rule", "[ig][adaptive]") {
  auto model = rar::test::residual_model();
  const auto& ref = ig_family_reference();
  const torch::Tensor x = ref.tensor("input");
  const torch::Tensor y = ref.labels("targets");
  const auto capped = rar::integrated_gradients_with_delta(
      model, x, rar::IGOptions().target(y).steps(3).tolerance(1e-14).max_steps(12));
  CHECK(capped.points.max().item<int64_t>() == 12);
  const auto fixed =
      rar::integrated_gradients_with_delta(model, x, rar::IGOptions().target(y).steps(9));
  CHECK((fixed.points == 9).all().item<bool>());
  CHECK(max_rel_diff(fixed.attributions,
                     rar::integrated_gradients(model, x, rar::IGOptions().target(y).steps(9))) ==
        0.0);
  ig_family_check_input_gradient(
      [&](const torch::Tensor& in, bool graph) {
        return rar::integrated_gradients(
            model, in,
            rar::IGOptions().target(y.slice(0, 0, 2)).steps(2).tolerance(1e-3).create_graph(graph));
      },
      x.slice(0, 0, 2));
  CHECK_THROWS_WITH(rar::integrated_gradients(model, x, rar::IGOptions().target(y).tolerance(-1.0)),
                    Contains("rar::integrated_gradients") &&
                        Contains("tolerance must be finite and >= 0") && Contains("-1"));
  CHECK_THROWS_WITH(
      rar::integrated_gradients(model, x,
                                rar::IGOptions().target(y).steps(64).tolerance(0.1).max_steps(32)),
      Contains("max_steps must be >= steps (64), got 32"));
}

TEST_CASE("IDGI matches the authors' formula on a residual network", "[idgi]") {
  auto model = rar::test::residual_model();
  const auto& ref = ig_family_reference();
  const torch::Tensor x = ref.tensor("input");
  const torch::Tensor y = ref.labels("targets");
  for (int64_t m : {7, 32}) {
    for (const char* which : {"zero", "random"}) {
      const torch::Tensor base =
          std::string(which) == "zero" ? torch::Tensor() : ref.tensor("random_baseline");
      const auto r =
          rar::idgi_with_delta(model, x, rar::IDGIOptions().baseline(base).target(y).steps(m));
      INFO(which << " m = " << m);
      CHECK(max_rel_diff(r.attributions, ref.tensor(std::string("idgi.") + which + ".m" +
                                                    std::to_string(m))) < 1e-10);
      // Completeness is exact for any m.
      CHECK(r.delta.abs().max().item<double>() < 1e-12);
      CHECK((r.points == m + 1).all().item<bool>());
    }
  }
}

TEMPLATE_TEST_CASE("IDGI of a linear model puts w·(x − x') on the features by w²", "[idgi]", float,
                   double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(5, 3, dtype);
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({4, 5}, dtype), base = torch::randn({4, 5}, dtype);
  const torch::Tensor y = torch::tensor({0, 1, 2, 1});
  const torch::Tensor w = model->weight.detach().index_select(0, y);
  const torch::Tensor expected = w * w / (w * w).sum(1, true) * (w * (x - base)).sum(1, true);
  const torch::Tensor a = rar::idgi(model, x, rar::IDGIOptions().baseline(base).target(y).steps(5));
  CHECK(a.scalar_type() == dtype);
  CHECK(max_rel_diff(a, expected) < rar::test::tolerance<TestType>());
}

TEST_CASE("IDGI is differentiable with create_graph and refuses bad input", "[idgi]") {
  auto model = rar::test::smooth_mlp(6, 8, 3);
  torch::manual_seed(9);
  const torch::Tensor x = torch::randn({2, 6}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 2});
  ig_family_check_input_gradient(
      [&](const torch::Tensor& in, bool graph) {
        return rar::idgi(model, in, rar::IDGIOptions().target(y).steps(6).create_graph(graph));
      },
      x);
  // The explainer is the function.
  const auto explainer = rar::explain::idgi(rar::IDGIOptions().steps(6));
  CHECK(max_rel_diff(explainer(model, x, y, false),
                     rar::idgi(model, x, rar::IDGIOptions().target(y).steps(6))) == 0.0);
  CHECK_THROWS_WITH(rar::idgi(model, x, rar::IDGIOptions().target(y).steps(0)),
                    Contains("rar::idgi: steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::idgi_with_delta(model, x, rar::IDGIOptions().target(y).internal_batch_size(-2)),
      Contains("rar::idgi_with_delta: internal_batch_size must be >= 0") && Contains("-2"));
}

TEST_CASE("Expected Gradients over a whole baseline set is the mean of per-baseline IG",
          "[expected_gradients]") {
  auto model = rar::test::residual_model();
  const auto& ref = ig_family_reference();
  const torch::Tensor x = ref.tensor("input");
  const torch::Tensor y = ref.labels("targets");
  const torch::Tensor baselines = ref.tensor("eg.baselines");
  const auto opts =
      rar::ExpectedGradientsOptions().baselines(baselines).target(y).samples(0).steps(6);
  const torch::Tensor eg = rar::expected_gradients(model, x, opts);
  CHECK(max_rel_diff(eg, ref.tensor("eg.all.gl6")) < 1e-10);
  // Completeness in the mean: Σ EG = F(x) − mean_b F(b), up to quadrature (64 points).
  const torch::Tensor fine =
      rar::expected_gradients(model, x, rar::ExpectedGradientsOptions(opts).steps(64));
  torch::Tensor mean_start = torch::zeros({3}, torch::kDouble);
  for (int64_t b = 0; b < baselines.size(0); ++b)
    mean_start += rar::test::target_score(model, baselines.slice(0, b, b + 1).expand_as(x), y);
  mean_start /= static_cast<double>(baselines.size(0));
  const torch::Tensor change = rar::test::target_score(model, x, y) - mean_start;
  CHECK(max_rel_diff(fine.flatten(1).sum(1), change) < 1e-3);
}

TEMPLATE_TEST_CASE("Expected Gradients of a linear model is w·(x − mean of the baselines)",
                   "[expected_gradients]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(5, 3, dtype);
  torch::manual_seed(10);
  const torch::Tensor x = torch::randn({4, 5}, dtype), set = torch::randn({6, 5}, dtype);
  const torch::Tensor y = torch::tensor({2, 1, 0, 1});
  const torch::Tensor w = model->weight.detach().index_select(0, y);
  const torch::Tensor a = rar::expected_gradients(
      model, x, rar::ExpectedGradientsOptions().baselines(set).target(y).samples(0).steps(1));
  CHECK(max_rel_diff(a, w * (x - set.mean(0, true))) < rar::test::tolerance<TestType>());
}

TEST_CASE("Expected Gradients with random points is GradientSHAP without noise",
          "[expected_gradients]") {
  auto model = rar::test::smooth_mlp(6, 8, 3);
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({3, 6}, torch::kDouble),
                      set = torch::randn({5, 6}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 2, 1});
  const torch::Tensor eg = rar::expected_gradients(
      model, x, rar::ExpectedGradientsOptions().baselines(set).target(y).samples(7).seed(4));
  const torch::Tensor gs = rar::gradient_shap(
      model, x, rar::GradientShapOptions().baselines(set).target(y).samples(7).seed(4));
  CHECK(max_rel_diff(eg, gs) == 0.0);
  // Drawn baselines with quadrature, differentiable.
  ig_family_check_input_gradient(
      [&](const torch::Tensor& in, bool graph) {
        return rar::expected_gradients(model, in,
                                       rar::ExpectedGradientsOptions()
                                           .baselines(set)
                                           .target(y.slice(0, 0, 2))
                                           .samples(3)
                                           .steps(4)
                                           .create_graph(graph));
      },
      x.slice(0, 0, 2));
  const auto explainer = rar::explain::expected_gradients(
      rar::ExpectedGradientsOptions().baselines(set).samples(3).steps(2));
  CHECK(max_rel_diff(explainer(model, x, y, false),
                     rar::expected_gradients(
                         model, x,
                         rar::ExpectedGradientsOptions().baselines(set).target(y).samples(3).steps(
                             2))) == 0.0);
  CHECK_THROWS_WITH(
      rar::expected_gradients(model, x,
                              rar::ExpectedGradientsOptions().baselines(set).target(y).samples(0)),
      Contains("rar::expected_gradients: samples(0) (every baseline once) needs steps >= 1"));
  CHECK_THROWS_WITH(
      rar::expected_gradients(model, x, rar::ExpectedGradientsOptions().target(y).samples(-1)),
      Contains("samples must be >= 0") && Contains("-1"));
  CHECK_THROWS_WITH(rar::expected_gradients(model, x,
                                            rar::ExpectedGradientsOptions()
                                                .baselines(torch::zeros({2, 5}, torch::kDouble))
                                                .target(y)
                                                .steps(2)),
                    Contains("rar::expected_gradients: baselines must be a set [B, ...]"));
}
