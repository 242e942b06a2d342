// LIME and KernelSHAP: the surrogate fits and the whole methods against Captum 0.7 on the
// coalitions Captum drew (tests/data/make_lime_reference.py), closed forms on linear models,
// convergence to exact Shapley values and to LIME's population fit, seeds, batching, the
// explainers, and bad input.

#include <rar/attribution/kernel_shap.hpp>
#include <rar/attribution/lime.hpp>
#include <rar/explain/lime.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"
#include "support/residual.hpp"
#include "support/skip.hpp"

#include <cmath>
#include <string>
#include <vector>

using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& lime_reference() {
  static const rar::test::Reference ref(rar::test::data_path("lime_reference.txt"));
  return ref;
}

// The MLP of the reference script, with its weights.
torch::nn::Sequential reference_mlp() {
  torch::nn::Sequential net(torch::nn::Linear(6, 10), torch::nn::Tanh(), torch::nn::Linear(10, 4));
  net->to(torch::kDouble);
  lime_reference().load_into(*net, "mlp");
  net->eval();
  return net;
}

// Every coalition of m features, [2^m, m] (row t has bit j of t in column j).
torch::Tensor all_coalitions(int64_t m) {
  const torch::Tensor t = torch::arange(int64_t{1} << m).view({-1, 1});
  const torch::Tensor bits = torch::pow(2, torch::arange(m)).view({1, -1});
  return (t.div(bits, "floor") % 2).to(torch::kDouble);
}

// Exact Shapley values [N, m] of v(T) = score(where(mask in T, x, b)) for one mask [D].
template <class Model>
torch::Tensor exact_shapley(Model& model, const torch::Tensor& x, const torch::Tensor& b,
                            const torch::Tensor& mask, int64_t m, const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0), count = int64_t{1} << m;
  const torch::Tensor z = all_coalitions(m);
  const torch::Tensor on = z.index_select(1, mask).to(torch::kBool);  // [2^m, D]
  torch::Tensor phi = torch::zeros({n, m}, torch::kDouble);
  auto out = phi.accessor<double, 2>();
  std::vector<double> factorial(static_cast<size_t>(m + 1), 1.0);
  for (int64_t k = 1; k <= m; ++k) factorial[k] = factorial[k - 1] * k;
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor rows = torch::where(on, x[i].reshape({1, -1}), b[i].reshape({1, -1}));
    const torch::Tensor v = rar::call_model(model, rows)
                                .select(1, target[i].item<int64_t>())
                                .contiguous();
    const double* vp = v.data_ptr<double>();
    for (int64_t t = 0; t < count; ++t) {
      const int64_t size = __builtin_popcountll(static_cast<unsigned long long>(t));
      for (int64_t j = 0; j < m; ++j) {
        if ((t >> j) & 1) continue;
        const double weight = factorial[size] * factorial[m - size - 1] / factorial[m];
        out[i][j] += weight * (vp[t | (int64_t{1} << j)] - vp[t]);
      }
    }
  }
  return phi;
}

}  // namespace

TEST_CASE("the surrogate fits equal scikit-learn's models fitted in float64 on Captum's data",
          "[lime][kernel_shap][reference]") {
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto& ref = lime_reference();
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, rar::LinearSurrogate>> kinds;
    double ridge_alpha;
  };
  const auto lasso = std::make_pair(std::string("lasso"), rar::LinearSurrogate::lasso);
  // Captum's alpha 0.01 zeroes the residual network's fits; alpha 1e-4 leaves most active.
  const auto lasso_small = std::make_pair(std::string("lasso_small"), rar::LinearSurrogate::lasso);
  const auto ridge = std::make_pair(std::string("ridge"), rar::LinearSurrogate::ridge);
  const auto linear =
      std::make_pair(std::string("linear_regression"), rar::LinearSurrogate::linear_regression);
  const std::vector<Case> cases = {{"res.lime.mask", {lasso, lasso_small, ridge, linear}, 1.0},
                                   {"res.lime.default", {lasso, lasso_small, ridge, linear}, 1.0},
                                   {"res.kernel_shap.mask", {linear}, 0},
                                   {"res.kernel_shap.default", {linear}, 0},
                                   {"mlp.lime.euclidean", {lasso, lasso_small, ridge, linear}, 0.5},
                                   {"mlp.kernel_shap", {linear}, 0}};
  double worst = 0;
  for (const auto& c : cases) {
    const torch::Tensor z = ref.tensor(c.name + ".coalitions").contiguous();
    const torch::Tensor y = ref.tensor(c.name + ".scores").contiguous();
    const torch::Tensor w = ref.tensor(c.name + ".weights").contiguous();
    const int64_t n = z.size(0), s = z.size(1), m = z.size(2);
    for (const auto& [label, kind] : c.kinds) {
      const torch::Tensor expected = ref.tensor(c.name + ".coef." + label);
      const double alpha = label == "lasso_small" ? 1e-4
                           : kind == rar::LinearSurrogate::lasso ? 0.01 : c.ridge_alpha;
      torch::Tensor got = torch::empty({n, m}, torch::kDouble);
      auto acc = got.accessor<double, 2>();
      for (int64_t i = 0; i < n; ++i) {
        const Eigen::Map<const RowMajor> zi(z.data_ptr<double>() + i * s * m, s, m);
        const Eigen::Map<const Eigen::VectorXd> yi(y.data_ptr<double>() + i * s, s);
        const Eigen::Map<const Eigen::VectorXd> wi(w.data_ptr<double>() + i * s, s);
        const Eigen::VectorXd beta = rar::detail::fit_linear_surrogate(zi, yi, wi, kind, alpha);
        for (int64_t j = 0; j < m; ++j) acc[i][j] = beta(j);
      }
      INFO(c.name << " " << label);
      const double diff = max_rel_diff(got, expected);
      CHECK(diff < 1e-9);
      worst = std::max(worst, diff);
    }
  }
  WARN("surrogate fits: max relative deviation from the float64 reference " << worst);
}

TEST_CASE("LIME and KernelSHAP on Captum's coalitions match the reference on a residual network",
          "[lime][kernel_shap][reference]") {
  const auto& ref = lime_reference();
  const auto& res_ref = rar::test::residual_reference();
  auto net = rar::test::residual_model(torch::kDouble);
  const torch::Tensor x = res_ref.tensor("residual.input");
  const torch::Tensor base = res_ref.tensor("residual.baseline");
  const torch::Tensor y = res_ref.labels("residual.target");
  const torch::Tensor mask = ref.labels("res.mask");
  double worst = 0;
  auto check = [&](const torch::Tensor& got, const std::string& name) {
    INFO(name);
    REQUIRE(got.sizes() == x.sizes());
    REQUIRE(got.scalar_type() == torch::kDouble);
    const double diff = max_rel_diff(got, ref.tensor(name));
    CHECK(diff < 1e-9);
    worst = std::max(worst, diff);
  };
  const std::pair<const char*, rar::LinearSurrogate> kinds[] = {
      {"lasso", rar::LinearSurrogate::lasso},
      {"lasso_small", rar::LinearSurrogate::lasso},
      {"ridge", rar::LinearSurrogate::ridge},
      {"linear_regression", rar::LinearSurrogate::linear_regression}};
  for (const auto& [label, kind] : kinds) {
    const double alpha = std::string(label) == "lasso_small" ? 1e-4
                         : kind == rar::LinearSurrogate::lasso ? 0.01 : 1.0;
    const auto masked = rar::LimeOptions().target(y).baseline(base).feature_mask(mask).surrogate(kind).alpha(alpha);
    check(rar::detail::lime_on_coalitions(net, x, ref.tensor("res.lime.mask.coalitions"), masked),
          std::string("res.lime.mask.attr.") + label);
    // Captum's defaults: every element its own feature (72 > 25 coalitions), scalar baseline.
    const auto plain = rar::LimeOptions().target(y).baseline(0.1).surrogate(kind).alpha(alpha);
    check(rar::detail::lime_on_coalitions(net, x, ref.tensor("res.lime.default.coalitions"), plain),
          std::string("res.lime.default.attr.") + label);
  }
  check(rar::detail::kernel_shap_on_coalitions(
            net, x, ref.tensor("res.kernel_shap.mask.coalitions"),
            rar::KernelShapOptions().target(y).baseline(base).feature_mask(mask)),
        "res.kernel_shap.mask.attr.linear_regression");
  // 25 coalitions for 72 features: the minimum-norm solution, as scikit-learn returns it.
  check(rar::detail::kernel_shap_on_coalitions(
            net, x, ref.tensor("res.kernel_shap.default.coalitions"),
            rar::KernelShapOptions().target(y)),
        "res.kernel_shap.default.attr.linear_regression");
  // The coalitions in chunks of 7 rows give the same result.
  check(rar::detail::lime_on_coalitions(
            net, x, ref.tensor("res.lime.mask.coalitions"),
            rar::LimeOptions().target(y).baseline(base).feature_mask(mask).internal_batch_size(7)),
        "res.lime.mask.attr.lasso");
  WARN("residual network: max relative deviation from the reference " << worst);
}

TEST_CASE("LIME on the Euclidean distance and KernelSHAP with one feature mask per sample match "
          "the reference", "[lime][kernel_shap][reference]") {
  const auto& ref = lime_reference();
  auto net = reference_mlp();
  const torch::Tensor x = ref.tensor("mlp.input");
  const torch::Tensor base = ref.tensor("mlp.baseline");
  const torch::Tensor y = ref.labels("mlp.target");
  const torch::Tensor mask = ref.labels("mlp.mask");  // [3, 6]: a different grouping per sample
  const auto lime = rar::LimeOptions()
                        .target(y)
                        .baseline(base)
                        .feature_mask(mask)
                        .distance(rar::LimeDistance::euclidean)
                        .kernel_width(2.0);
  const torch::Tensor z = ref.tensor("mlp.lime.euclidean.coalitions");
  CHECK(max_rel_diff(rar::detail::lime_on_coalitions(net, x, z, lime),
                     ref.tensor("mlp.lime.euclidean.attr.lasso")) < 1e-9);
  CHECK(max_rel_diff(rar::detail::lime_on_coalitions(
                         net, x, z, rar::LimeOptions(lime).surrogate(rar::LinearSurrogate::ridge).alpha(0.5)),
                     ref.tensor("mlp.lime.euclidean.attr.ridge")) < 1e-9);
  CHECK(max_rel_diff(rar::detail::kernel_shap_on_coalitions(
                         net, x, ref.tensor("mlp.kernel_shap.coalitions"),
                         rar::KernelShapOptions().target(y).baseline(base).feature_mask(mask)),
                     ref.tensor("mlp.kernel_shap.attr.linear_regression")) < 1e-9);
}

TEST_CASE("float32 inputs give the float64 results to float32 accuracy",
          "[lime][kernel_shap][reference]") {
  const auto& ref = lime_reference();
  const auto& res_ref = rar::test::residual_reference();
  auto net = rar::test::residual_model(torch::kFloat);
  const torch::Tensor x = res_ref.tensor("residual.input").to(torch::kFloat);
  const torch::Tensor base = res_ref.tensor("residual.baseline").to(torch::kFloat);
  const torch::Tensor y = res_ref.labels("residual.target");
  const torch::Tensor mask = ref.labels("res.mask");
  const torch::Tensor a = rar::detail::kernel_shap_on_coalitions(
      net, x, ref.tensor("res.kernel_shap.mask.coalitions"),
      rar::KernelShapOptions().target(y).baseline(base).feature_mask(mask));
  CHECK(a.scalar_type() == torch::kFloat);
  CHECK(max_rel_diff(a, ref.tensor("res.kernel_shap.mask.attr.linear_regression")) < 1e-4);
  const torch::Tensor l = rar::detail::lime_on_coalitions(
      net, x, ref.tensor("res.lime.mask.coalitions"),
      rar::LimeOptions().target(y).baseline(base).feature_mask(mask).surrogate(rar::LinearSurrogate::ridge).alpha(1.0));
  CHECK(max_rel_diff(l, ref.tensor("res.lime.mask.attr.ridge")) < 1e-4);
}

TEST_CASE("on a linear model LIME and KernelSHAP recover the sum of w_i (x_i - b_i) per feature",
          "[lime][kernel_shap][analytic]") {
  auto lin = rar::test::linear_model(12, 3);
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({4, 12}, torch::kDouble);
  const torch::Tensor b = 0.5 * torch::randn({4, 12}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 2, 1, 2}, torch::kLong);
  const torch::Tensor mask = torch::tensor({0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4}, torch::kLong).view({1, 12});
  // Expected: each element carries Σ_{i in its feature} W[y, i] (x_i − b_i).
  const torch::Tensor contrib = lin->weight.index_select(0, y).detach() * (x - b);
  const torch::Tensor per_feature =
      torch::zeros({4, 5}, torch::kDouble).index_add_(1, mask.view({-1}), contrib);
  const torch::Tensor expected = per_feature.index_select(1, mask.view({-1}));
  const torch::Tensor ks = rar::kernel_shap(
      lin, x, rar::KernelShapOptions().target(y).baseline(b).feature_mask(mask).samples(40).seed(4));
  CHECK(max_rel_diff(ks, expected) < 1e-9);
  const torch::Tensor lr = rar::lime(lin, x, rar::LimeOptions().target(y).baseline(b).feature_mask(mask).samples(40).surrogate(rar::LinearSurrogate::linear_regression));
  CHECK(max_rel_diff(lr, expected) < 1e-9);
  const torch::Tensor ridge0 = rar::lime(lin, x, rar::LimeOptions().target(y).baseline(b).feature_mask(mask).samples(40).surrogate(rar::LinearSurrogate::ridge).alpha(0.0));
  CHECK(max_rel_diff(ridge0, expected) < 1e-9);
  // Lasso shrinks: close for a small alpha, not equal for the default.
  const torch::Tensor lasso_small = rar::lime(lin, x, rar::LimeOptions().target(y).baseline(b).feature_mask(mask).samples(40).alpha(1e-7));
  CHECK(max_rel_diff(lasso_small, expected) < 1e-4);
  const torch::Tensor lasso = rar::lime(lin, x, rar::LimeOptions().target(y).baseline(b).feature_mask(mask).samples(40));
  CHECK(max_rel_diff(lasso, expected) > 1e-4);
  // Elements of one feature share its value.
  CHECK(lasso.select(1, 2).equal(lasso.select(1, 4)));
}

TEST_CASE("KernelSHAP converges to the exact Shapley values as the samples grow",
          "[kernel_shap][expectation]") {
  auto net = rar::test::smooth_mlp(8, 16, 3);
  torch::manual_seed(9);
  const torch::Tensor x = torch::randn({2, 8}, torch::kDouble);
  const torch::Tensor b = 0.3 * torch::randn({2, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({1, 2}, torch::kLong);
  const torch::Tensor mask = torch::tensor({0, 0, 1, 1, 2, 2, 3, 3}, torch::kLong);
  const torch::Tensor phi = exact_shapley(net, x, b, mask, 4, y);
  const torch::Tensor expected = phi.index_select(1, mask);
  const double scale = phi.abs().max().item<double>();
  auto error = [&](int64_t samples, uint64_t seed) {
    const torch::Tensor a = rar::kernel_shap(
        net, x, rar::KernelShapOptions().target(y).baseline(b).feature_mask(mask.view({1, 8})).samples(samples).seed(seed));
    return (a - expected).abs().max().item<double>() / scale;
  };
  const double few = error(100, 1), many = error(20000, 1);
  WARN("KernelSHAP vs exact Shapley values, relative max error: 100 samples " << few
       << ", 20000 samples " << many);
  // Sampling error ~ 1/sqrt(S): about 1e-2 at 100 samples, 1e-3 at 20000 (measured spread over
  // seeds in a float64 simulation of the same estimator).
  CHECK(many < 3e-3);
  CHECK(many < few);
  // Efficiency: Σφ = v(all) − v(none), up to the finite endpoint weight.
  const torch::Tensor a = rar::kernel_shap(
      net, x, rar::KernelShapOptions().target(y).baseline(b).feature_mask(mask.view({1, 8})).samples(200));
  const torch::Tensor gap = (a.sum(1) / 2 - phi.sum(1)).abs();
  CHECK(gap.max().item<double>() / scale < 1e-3);
}

TEST_CASE("LIME converges to the weighted fit over all coalitions as the samples grow",
          "[lime][expectation]") {
  auto net = rar::test::smooth_mlp(8, 16, 3);
  torch::manual_seed(10);
  const torch::Tensor x = torch::randn({2, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 2}, torch::kLong);
  const torch::Tensor mask = torch::tensor({0, 0, 1, 1, 2, 2, 3, 3}, torch::kLong).view({1, 8});
  const auto opts = rar::LimeOptions().target(y).feature_mask(mask).surrogate(rar::LinearSurrogate::linear_regression);
  // Uniform coalitions: every one of the 16 equally likely, so the population fit is the fit on
  // all 16 with LIME's kernel weights.
  const torch::Tensor all = all_coalitions(4).unsqueeze(0).expand({2, 16, 4});
  const torch::Tensor population = rar::detail::lime_on_coalitions(net, x, all, opts);
  const double scale = population.abs().max().item<double>();
  const double err = (rar::lime(net, x, rar::LimeOptions(opts).samples(40000).seed(2)) - population)
                         .abs()
                         .max()
                         .item<double>() / scale;
  WARN("LIME with 40000 samples vs the fit over all coalitions, relative max error " << err);
  CHECK(err < 3e-3);  // about 5e-4 over seeds in a float64 simulation
}

TEST_CASE("the coalitions follow Captum's distributions", "[kernel_shap][sampling]") {
  at::Generator gen = rar::seeded_generator(5);
  const int64_t m = 6, s = 30002;
  const torch::Tensor z = rar::detail::kernel_shap_coalitions(gen, 1, s, m);
  CHECK(z.select(1, 0).all().item<bool>());
  CHECK(!z.select(1, 1).any().item<bool>());
  const torch::Tensor sizes = z[0].slice(0, 2).sum(1);
  CHECK(sizes.min().item<int64_t>() >= 1);
  CHECK(sizes.max().item<int64_t>() <= m - 1);
  // P(|z| = k) ∝ (m − 1) / (k (m − k)); members uniform: each feature on in half the rows
  // (sizes are symmetric about m / 2).
  double total = 0;
  for (int64_t k = 1; k < m; ++k) total += (m - 1.0) / (k * (m - k));
  for (int64_t k = 1; k < m; ++k) {
    const double p = (m - 1.0) / (k * (m - k)) / total;
    const double freq = (sizes == k).sum().item<double>() / (s - 2);
    INFO("size " << k);
    CHECK(std::abs(freq - p) < 4 * std::sqrt(p * (1 - p) / (s - 2)));
  }
  const torch::Tensor on = z[0].slice(0, 2).to(torch::kDouble).mean(0);
  CHECK((on - 0.5).abs().max().item<double>() < 0.02);
  // One feature: only the full and the empty coalition exist.
  const torch::Tensor one = rar::detail::kernel_shap_coalitions(gen, 2, 5, 1);
  CHECK(one.to(torch::kLong).view({2, 5}).equal(torch::tensor({1, 0, 1, 0, 1}, torch::kLong).repeat({2, 1})));
}

TEST_CASE("LIME and KernelSHAP are reproducible from the seed, on any model and in any chunks",
          "[lime][kernel_shap][seed]") {
  auto net = rar::test::residual_model(torch::kDouble);
  const auto& res_ref = rar::test::residual_reference();
  const torch::Tensor x = res_ref.tensor("residual.input");
  const torch::Tensor y = res_ref.labels("residual.target");
  const torch::Tensor mask = lime_reference().labels("res.mask");
  // alpha 1e-4: the default Lasso (0.01) sets every coefficient of this small network to 0.
  const auto lime =
      rar::LimeOptions().target(y).feature_mask(mask).samples(60).seed(7).alpha(1e-4);
  const auto ks = rar::KernelShapOptions().target(y).feature_mask(mask).samples(60).seed(7);
  const torch::Tensor l1 = rar::lime(net, x, lime), k1 = rar::kernel_shap(net, x, ks);
  REQUIRE(l1.abs().max().item<double>() > 0);
  CHECK(l1.equal(rar::lime(net, x, lime)));
  CHECK(k1.equal(rar::kernel_shap(net, x, ks)));
  CHECK(max_rel_diff(rar::lime(net, x, rar::LimeOptions(lime).seed(8)), l1) > 1e-3);
  CHECK(max_rel_diff(rar::kernel_shap(net, x, rar::KernelShapOptions(ks).seed(8)), k1) > 1e-3);
  CHECK(max_rel_diff(rar::lime(net, x, rar::LimeOptions(lime).internal_batch_size(13)), l1) < 1e-12);
  CHECK(max_rel_diff(rar::kernel_shap(net, x, rar::KernelShapOptions(ks).internal_batch_size(13)), k1) < 1e-12);
  // Efficiency on the residual network: Σφ ≈ f(x) − f(0).
  torch::NoGradGuard no_grad;
  const torch::Tensor out = net->forward(x).gather(1, y.view({-1, 1})).squeeze(1);
  const torch::Tensor out0 =
      net->forward(torch::zeros_like(x)).gather(1, y.view({-1, 1})).squeeze(1);
  const torch::Tensor total = k1.view({4, 2, 36}).sum({1, 2}) / 4;  // each feature has 4 elements
  CHECK(max_rel_diff(total, out - out0) < 1e-3);
  // The model is left as it was.
  rar::test::ModuleState before(*net);
  (void)rar::lime(net, x, lime);
  CHECK(before == rar::test::ModuleState(*net));
}

TEST_CASE("feature masks: default, shifted, broadcast; scalar and tensor baselines agree",
          "[lime][kernel_shap][mask]") {
  auto net = rar::test::smooth_mlp(8, 16, 3);
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({3, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 1, 2}, torch::kLong);
  const auto ks = rar::KernelShapOptions().target(y).samples(50).seed(1);
  const torch::Tensor plain = rar::kernel_shap(net, x, ks);
  CHECK(plain.equal(rar::kernel_shap(net, x, rar::KernelShapOptions(ks).feature_mask(torch::arange(8)))));
  CHECK(plain.equal(rar::kernel_shap(net, x, rar::KernelShapOptions(ks).feature_mask(torch::arange(8).view({1, 8}).to(torch::kInt)))));
  const torch::Tensor groups = torch::tensor({0, 0, 1, 1, 2, 2, 3, 3}, torch::kLong);
  const torch::Tensor grouped = rar::kernel_shap(net, x, rar::KernelShapOptions(ks).feature_mask(groups));
  CHECK(grouped.equal(rar::kernel_shap(net, x, rar::KernelShapOptions(ks).feature_mask(groups + 5))));
  CHECK(grouped.select(1, 0).equal(grouped.select(1, 1)));
  const torch::Tensor b = torch::full({3, 8}, 0.25, torch::kDouble);
  CHECK(rar::lime(net, x, rar::LimeOptions().target(y).baseline(0.25)).equal(
      rar::lime(net, x, rar::LimeOptions().target(y).baseline(b))));
  CHECK(rar::lime(net, x, rar::LimeOptions().target(y).baseline(torch::full({1, 8}, 0.25, torch::kDouble)))
            .equal(rar::lime(net, x, rar::LimeOptions().target(y).baseline(b))));
}

TEST_CASE("lime and kernel_shap are explainers that refuse create_graph",
          "[lime][kernel_shap][explain]") {
  auto net = rar::test::residual_model(torch::kDouble);
  const auto& res_ref = rar::test::residual_reference();
  const torch::Tensor x = res_ref.tensor("residual.input");
  const torch::Tensor y = res_ref.labels("residual.target");
  static_assert(rar::is_explainer_v<rar::explain::Lime, decltype(net)>);
  static_assert(rar::is_explainer_v<rar::explain::KernelShap, decltype(net)>);
  const auto lo = rar::LimeOptions().samples(30).seed(3);
  const auto ko = rar::KernelShapOptions().samples(30).seed(3);
  auto lime = rar::explain::lime(lo);
  auto ks = rar::explain::kernel_shap(ko);
  CHECK(lime(net, x, y, false).equal(rar::lime(net, x, rar::LimeOptions(lo).target(y))));
  CHECK(ks(net, x, y, false).equal(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).target(y))));
  CHECK_THROWS_WITH(lime(net, x, y, true),
                    Catch::Contains("rar::explain::lime: LIME's coefficients come from a "
                                    "regression on sampled coalitions and are not differentiable"));
  CHECK_THROWS_WITH(ks(net, x, y, true),
                    Catch::Contains("rar::explain::kernel_shap: KernelSHAP's values come from a "
                                    "regression on sampled coalitions and are not differentiable"));
}

TEST_CASE("LIME and KernelSHAP run on a GPU with the CPU's results", "[lime][kernel_shap][cuda]") {
  RAR_REQUIRE_CUDA();
  const torch::Device cuda(torch::kCUDA, 0);
  auto net = rar::test::residual_model(torch::kDouble);
  const auto& res_ref = rar::test::residual_reference();
  const torch::Tensor x = res_ref.tensor("residual.input");
  const torch::Tensor y = res_ref.labels("residual.target");
  const torch::Tensor mask = lime_reference().labels("res.mask");
  const auto lo = rar::LimeOptions().target(y).feature_mask(mask).samples(50).seed(2);
  const auto ko = rar::KernelShapOptions().target(y).feature_mask(mask).samples(50).seed(2);
  const torch::Tensor l_cpu = rar::lime(net, x, lo), k_cpu = rar::kernel_shap(net, x, ko);
  net->to(cuda);
  const torch::Tensor l = rar::lime(net, x.to(cuda), rar::LimeOptions(lo).target(y.to(cuda)).feature_mask(mask.to(cuda)));
  const torch::Tensor k = rar::kernel_shap(net, x.to(cuda), rar::KernelShapOptions(ko).target(y.to(cuda)).feature_mask(mask.to(cuda)));
  CHECK(l.device() == cuda);
  CHECK(max_rel_diff(l, l_cpu) < 1e-9);
  CHECK(max_rel_diff(k, k_cpu) < 1e-9);
}

TEST_CASE("bad input to LIME and KernelSHAP raises errors naming the argument and value",
          "[lime][kernel_shap][errors]") {
  auto net = rar::test::smooth_mlp(8, 16, 3);
  const torch::Tensor x = torch::randn({2, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 1}, torch::kLong);
  const auto lo = rar::LimeOptions().target(y);
  const auto ko = rar::KernelShapOptions().target(y);
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).samples(0)),
                    Catch::Contains("rar::lime: samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).samples(1)),
                    Catch::Contains("rar::kernel_shap: samples must be >= 2, got 1"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).kernel_width(0)),
                    Catch::Contains("rar::lime: kernel_width must be a positive number, got 0"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).alpha(-1)),
                    Catch::Contains("rar::lime: alpha must be >= 0, got -1"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).alpha(0)),
                    Catch::Contains("rar::lime: the lasso surrogate needs alpha > 0"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).internal_batch_size(-1)),
                    Catch::Contains("rar::lime: internal_batch_size must be >= 0 (0 = the default "
                                    "batching rule), got -1"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).feature_mask(torch::zeros({8}))),
                    Catch::Contains("rar::kernel_shap: feature_mask must be an integer tensor, got Float"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).feature_mask(torch::arange(7))),
                    Catch::Contains("rar::kernel_shap: feature_mask of shape [7] does not broadcast "
                                    "to the input's shape [2, 8]"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions(lo).baseline(torch::zeros({3, 8}, torch::kDouble))),
                    Catch::Contains("rar::lime: baseline of shape [3, 8] does not broadcast to the "
                                    "input's shape [2, 8]"));
  CHECK_THROWS_WITH(rar::lime(net, x, rar::LimeOptions().target(torch::tensor({0, 1, 2}, torch::kLong))),
                    Catch::Contains("rar::lime: target must be 0-dim or of shape [2]"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x.to(torch::kLong), ko),
                    Catch::Contains("rar::kernel_shap: input must be float32 or float64, got Long"));
  CHECK_THROWS_WITH(rar::detail::lime_on_coalitions(net, x, torch::ones({2, 5, 7}), lo),
                    Catch::Contains("rar::lime: coalitions must have shape [2, S, 8]"));
  CHECK_THROWS_WITH(rar::detail::kernel_shap_on_coalitions(net, x, torch::full({2, 5, 8}, 0.5), ko),
                    Catch::Contains("rar::kernel_shap: coalitions must contain only 0 and 1"));
  torch::Tensor bad = x.clone();
  bad[1][3] = std::nan("");
  CHECK_THROWS_WITH(rar::lime(net, bad, lo),
                    Catch::Contains("rar::lime: input must be finite, but 1 of its 16 values are "
                                    "not (1 NaN, 0 infinite); the first is in sample 1"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).baseline(INFINITY)),
                    Catch::Contains("rar::kernel_shap: baseline must be finite"));
  CHECK_THROWS_WITH(rar::kernel_shap(net, x, rar::KernelShapOptions(ko).baseline(bad)),
                    Catch::Contains("rar::kernel_shap: baseline must be finite"));
  auto scalar = [](const torch::Tensor& t) { return t.sum(); };
  CHECK_THROWS_WITH(rar::lime(scalar, x, rar::LimeOptions().score(
                                             [](const torch::Tensor& o, const torch::Tensor&) { return o; })),
                    Catch::Contains("rar::lime: the score function must return one value per sample"));
}
