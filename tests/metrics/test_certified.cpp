// The certified top-k robustness of a smoothed map: its statistics against SciPy, the radius in
// closed form for a map that noise cannot move, the guarantee against perturbations inside the
// radius (random and gradient directions) on a nonlinear model, its monotone properties, and
// bad input.

#include <catch2/catch.hpp>
#include <cmath>
#include <rar/explain/explainers.hpp>
#include <rar/metrics/certified.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;

namespace {

const rar::test::Reference& certified_reference() {
  static const rar::test::Reference ref(rar::test::data_path("ig_family_reference.txt"));
  return ref;
}

}  // namespace

TEST_CASE("Clopper-Pearson bounds and the normal quantile match SciPy", "[certified]") {
  const auto& ref = certified_reference();
  const torch::Tensor cases = ref.tensor("cp.cases");
  const torch::Tensor lower = ref.tensor("cp.lower"), upper = ref.tensor("cp.upper");
  for (int64_t i = 0; i < cases.size(0); ++i) {
    const auto x = static_cast<int64_t>(cases[i][0].item<double>());
    const auto n = static_cast<int64_t>(cases[i][1].item<double>());
    const double alpha = cases[i][2].item<double>();
    const auto [lo, hi] = rar::clopper_pearson(x, n, alpha);
    INFO(x << " of " << n << " at " << alpha);
    CHECK(lo == Approx(lower[i].item<double>()).epsilon(1e-9).margin(1e-12));
    CHECK(hi == Approx(upper[i].item<double>()).epsilon(1e-9).margin(1e-12));
  }
  const torch::Tensor p = ref.tensor("norm.p"), q = ref.tensor("norm.quantile");
  for (int64_t i = 0; i < p.size(0); ++i)
    CHECK(rar::detail::normal_quantile(p[i].item<double>()) ==
          Approx(q[i].item<double>()).epsilon(1e-9).margin(1e-12));
  CHECK_THROWS_WITH(rar::clopper_pearson(5, 4, 0.05),
                    Contains("rar::clopper_pearson") && Contains("got 5 of 4"));
}

TEMPLATE_TEST_CASE("a map that noise cannot move is certified in closed form, linear in sigma",
                   "[certified]", float, double) {
  // A linear model's saliency is its weight row, whatever the input: every noisy copy has the
  // same top-K set, so p is 1 on it and 0 elsewhere, and the radius is
  // σ·Φ⁻¹((α/(2d))^(1/S)) for every c (the Clopper–Pearson bounds of S/S and 0/S).
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(12, 3, dtype);
  torch::manual_seed(12);
  const torch::Tensor x = torch::randn({3, 12}, dtype);
  const torch::Tensor y = torch::tensor({0, 1, 2});
  for (double sigma : {0.1, 0.4}) {
    for (int64_t samples : {50, 400}) {
      const auto c = rar::certified_topk(
          model, rar::explain::saliency(), x,
          rar::CertifiedTopKOptions().k(4).sigma(sigma).samples(samples).alpha(0.01).target(y));
      const double expected =
          sigma * rar::detail::normal_quantile(std::pow(0.01 / (2 * 12), 1.0 / samples));
      INFO("sigma " << sigma << " samples " << samples);
      CHECK(c.radii.sizes() == torch::IntArrayRef({3, 4}));
      CHECK((c.radii - expected).abs().max().template item<double>() < 1e-9);
      CHECK((c.radius - expected).abs().max().template item<double>() < 1e-9);
      // The top-k is the model's own: the 4 largest |w| of each target row.
      const torch::Tensor w = model->weight.detach().index_select(0, y).abs().to(torch::kDouble);
      const torch::Tensor expected_top = std::get<1>(w.topk(4, 1));
      CHECK(std::get<0>(c.topk.sort(1)).equal(std::get<0>(expected_top.sort(1))));
      CHECK((c.smoothed.sum(1) - 4.0).abs().max().template item<double>() < 1e-12);
    }
  }
}

TEST_CASE("no perturbation inside the certified radius breaks the certified overlap",
          "[certified]") {
  auto model = rar::test::smooth_mlp(8, 16, 3, torch::kDouble, 5);
  torch::manual_seed(13);
  const torch::Tensor x = torch::randn({4, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 1, 2, 0});
  const int64_t k = 3;
  const auto opts = rar::CertifiedTopKOptions()
                        .k(k)
                        .sigma(0.5)
                        .samples(3000)
                        .overlap(2.0 / 3.0)
                        .alpha(0.001)
                        .target(y);
  const auto cert = rar::certified_topk(model, rar::explain::saliency(), x, opts);
  // Radii are non-increasing in the number of features certified, and the options' overlap
  // picks c = 2.
  CHECK((cert.radii.slice(1, 1) <= cert.radii.slice(1, 0, k - 1)).all().item<bool>());
  CHECK(cert.radius.equal(cert.radii.select(1, 1)));
  int64_t certified = 0, checked = 0;
  for (int64_t n = 0; n < 4; ++n) {
    // The widest radius (one feature kept) and the narrowest positive one (the most features).
    int64_t most = 0;
    for (int64_t c = 1; c <= k; ++c)
      if (cert.radii[n][c - 1].item<double>() > 0) most = c;
    for (int64_t c : {int64_t{1}, most}) {
      if (c == 0) continue;
      const double r = cert.radii[n][c - 1].item<double>();
      ++certified;
      const torch::Tensor xn = x.slice(0, n, n + 1);
      // Directions: random ones, and ± the gradient of the top-k features' saliency (the
      // direction that moves the base map's top-k most).
      std::vector<torch::Tensor> directions;
      for (int i = 0; i < 6; ++i) directions.push_back(torch::randn({1, 8}, torch::kDouble));
      torch::Tensor xi = xn.clone().requires_grad_(true);
      const torch::Tensor g = torch::autograd::grad(
          {model->forward(xi).select(1, y[n].item<int64_t>()).sum()}, {xi}, {}, true, true)[0];
      const torch::Tensor top = cert.topk[n];
      const torch::Tensor push =
          torch::autograd::grad({g.abs().view({-1}).index_select(0, top).sum()}, {xi})[0];
      directions.push_back(push);
      directions.push_back(-push);
      for (const torch::Tensor& dir : directions) {
        const torch::Tensor delta = dir / dir.norm() * (0.999 * r);
        const auto moved = rar::certified_topk(
            model, rar::explain::saliency(), (xn + delta).detach(),
            rar::CertifiedTopKOptions().k(k).sigma(0.5).samples(8000).seed(99).target(
                y.slice(0, n, n + 1)));
        const torch::Tensor p = moved.smoothed.view({-1});
        int64_t kept = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double pi = p[top[j].item<int64_t>()].item<double>();
          if ((p > pi).sum().item<int64_t>() < k) ++kept;  // in the top-k with ties broken for it
        }
        ++checked;
        INFO("sample " << n << " c " << c << " radius " << r);
        CHECK(kept >= c);
      }
    }
  }
  CHECK(certified >= 3);  // the check above is not vacuous
  CHECK(checked >= 16);
}

TEST_CASE("the certified radius grows with the samples and shrinks with the overlap asked",
          "[certified]") {
  auto model = rar::test::smooth_mlp(8, 16, 3, torch::kDouble, 5);
  torch::manual_seed(14);
  const torch::Tensor x = torch::randn({4, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 1, 2, 0});
  const auto base = rar::CertifiedTopKOptions().k(3).sigma(0.5).alpha(0.001).target(y);
  const auto few = rar::certified_topk(model, rar::explain::saliency(), x,
                                       rar::CertifiedTopKOptions(base).samples(200));
  const auto many = rar::certified_topk(model, rar::explain::saliency(), x,
                                        rar::CertifiedTopKOptions(base).samples(5000));
  CHECK(many.radii.select(1, 0).sum().item<double>() > few.radii.select(1, 0).sum().item<double>());
  for (double q : {0.3, 0.6, 1.0}) {
    const auto c = rar::certified_topk(model, rar::explain::saliency(), x,
                                       rar::CertifiedTopKOptions(base).samples(500).overlap(q));
    CHECK(c.radius.equal(c.radii.select(1, static_cast<int64_t>(std::ceil(q * 3)) - 1)));
  }
}

TEST_CASE("certified_topk refuses bad options with their values", "[certified]") {
  auto model = rar::test::smooth_mlp(8, 16, 3);
  const torch::Tensor x = torch::randn({2, 8}, torch::kDouble);
  const auto sal = rar::explain::saliency();
  const auto opts = rar::CertifiedTopKOptions().target(torch::tensor({0, 1}));
  CHECK_THROWS_WITH(rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(8)),
                    Contains("rar::certified_topk: k must be in [1, features) = [1, 8), got 8"));
  CHECK_THROWS_WITH(
      rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(2).sigma(0.0)),
      Contains("sigma must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(
      rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(2).overlap(1.5)),
      Contains("overlap must be in (0, 1], got 1.5"));
  CHECK_THROWS_WITH(
      rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(2).alpha(1.0)),
      Contains("alpha must be in (0, 1), got 1"));
  CHECK_THROWS_WITH(
      rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(2).samples(0)),
      Contains("samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::certified_topk(model, sal, x, rar::CertifiedTopKOptions(opts).k(2).sparsity(9)),
      Contains("sparsity must be in [0, features] = [0, 8] (0 = k), got 9"));
}
