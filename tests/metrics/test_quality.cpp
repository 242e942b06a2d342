// Quality metrics: infidelity against Captum 0.7 with the same perturbations and against its
// closed form on a linear model, deletion and insertion curves against a per-sample loop and
// hand-computed curves, sparseness and complexity against Quantus' formulas and analytic maps,
// batching, devices and bad input.

#include <rar/explain/explainers.hpp>
#include <rar/metrics/quality.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include "support/models.hpp"
#include "support/reference.hpp"
#include "support/residual.hpp"

#include <cmath>
#include <limits>

using Catch::Matchers::Contains;
using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& quality_reference() {
  static const rar::test::Reference ref(rar::test::data_path("quality_reference.txt"));
  return ref;
}

/// max_n |a_n − b_n| / |b_n| (b without zeros).
double max_relative(const torch::Tensor& a, const torch::Tensor& b) {
  const auto ad = a.detach().to(torch::kCPU, torch::kDouble);
  const auto bd = b.detach().to(torch::kCPU, torch::kDouble);
  return ((ad - bd).abs() / bd.abs()).max().item<double>();
}

/// The MLP of make_quality_reference.py with its weights, in `dtype`.
torch::nn::Sequential reference_mlp(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential mlp(nn::Linear(6, 8), nn::Tanh(), nn::Linear(8, 8), nn::Tanh(), nn::Linear(8, 4));
  mlp->to(dtype);
  quality_reference().load_into(*mlp, "mlp");
  mlp->eval();
  return mlp;
}

/// A perturbation function that returns fixed perturbations (as the reference passes Captum).
rar::InfidelityPerturbation fixed(const torch::Tensor& perturbations) {
  return [perturbations](const torch::Tensor& inputs, at::Generator&) {
    const torch::Tensor p = perturbations.to(inputs.options());
    return std::make_pair(p, inputs - p);
  };
}

/// f(x) = ⟨w, x⟩ as the first of two outputs [N, 2] (the second is 0), for target 0.
struct LinearScore {
  torch::Tensor w;
  torch::Tensor operator()(const torch::Tensor& x) const {
    const torch::Tensor f = x.flatten(1).matmul(w.to(x.options()));
    return torch::stack({f, torch::zeros_like(f)}, 1);
  }
};

}  // namespace

// --- infidelity ------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("infidelity matches Captum 0.7 on an MLP with the same perturbations",
                   "[quality][infidelity]", float, double) {
  const auto& ref = quality_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-4 : 1e-9;
  auto mlp = reference_mlp(dtype);
  const auto x = ref.tensor("mlp.input").to(dtype);
  const auto y = ref.labels("mlp.target");
  const auto attr = ref.tensor("mlp.attributions").to(dtype);
  const auto opts = rar::InfidelityOptions().samples(7).target(y).perturbation(
      fixed(ref.tensor("mlp.perturbations")));
  for (const bool normalize : {false, true}) {
    const std::string tag = normalize ? "normalize" : "plain";
    auto o = opts;
    o.normalize(normalize);
    const auto infid = rar::infidelity(mlp, x, attr, o);
    CHECK(infid.scalar_type() == torch::kDouble);
    CHECK(infid.device().is_cpu());
    CHECK(infid.sizes() == torch::IntArrayRef{3});
    CHECK(max_relative(infid, ref.tensor("mlp.infidelity." + tag)) < tol);
    // All-zero attributions: Captum's safe_div makes beta 0, so both give mean (Δf)².
    CHECK(max_relative(rar::infidelity(mlp, x, torch::zeros_like(x), o),
                       ref.tensor("mlp.infidelity_zero_attr." + tag)) < tol);
    // Any chunking of the perturbed rows gives the same numbers (float32 forwards round
    // differently in different batch sizes).
    for (const int64_t chunk : {1, 5, 21}) {
      auto c = o;
      CHECK(max_relative(rar::infidelity(mlp, x, attr, c.internal_batch_size(chunk)), infid) <
            (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
    }
  }
}

TEST_CASE("infidelity matches Captum 0.7 on the residual network", "[quality][infidelity]") {
  const auto& ref = quality_reference();
  auto net = rar::test::residual_model(torch::kDouble);
  const auto x = rar::test::residual_reference().tensor("residual.input");
  const auto y = torch::tensor({0, 2, 1, 0});
  const auto attr = ref.tensor("residual.attributions");
  auto opts = rar::InfidelityOptions().samples(5).target(y).perturbation(
      fixed(ref.tensor("residual.perturbations")));
  CHECK(max_relative(rar::infidelity(net, x, attr, opts), ref.tensor("residual.infidelity.plain")) <
        1e-9);
  CHECK(max_relative(rar::infidelity(net, x, attr, opts.normalize(true)),
                     ref.tensor("residual.infidelity.normalize")) < 1e-9);
}

TEMPLATE_TEST_CASE("infidelity of a linear model: exact on the seeded perturbations and "
                   "the closed form in expectation", "[quality][infidelity]", float, double) {
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-12;
  const auto w = torch::tensor({0.7, -1.2, 0.4, 2.0, -0.3}, torch::kDouble);
  const LinearScore model{w};
  const auto x = torch::tensor({{0.5, -1.0, 2.0, 0.1, 1.5}, {1.2, 0.3, -0.8, 0.9, -2.0}},
                               torch::kDouble)
                     .to(dtype);
  const auto y = torch::tensor(int64_t{0});
  const double sigma = 0.3;
  const auto opts = rar::InfidelityOptions().target(y).stddev(sigma).samples(40).seed(5);
  const auto gradient = w.expand({2, 5}).to(dtype);

  SECTION("gradient attributions have infidelity 0, any scale of them 0 with normalize") {
    CHECK(rar::infidelity(model, x, gradient, opts).abs().max().item<double>() < tol);
    auto o = opts;
    CHECK(rar::infidelity(model, x, 3.5 * gradient, o.normalize(true)).abs().max().item<double>() <
          tol);
  }

  SECTION("the default perturbations are sigma * N(0, 1) from the stream (seed, 0)") {
    // c·w: the error is (c − 1) Iᵀw per perturbation, so INFD = (c − 1)² mean_s (Iₛᵀw)².
    at::Generator gen = rar::seeded_generator(5, 0);
    const auto noise = sigma * rar::normal_like(gen, x.repeat_interleave(40, 0).to(torch::kDouble));
    const auto expected = (noise.matmul(w).view({2, 40}).pow(2).mean(1) * std::pow(2.5 - 1, 2));
    CHECK(max_relative(rar::infidelity(model, x, 2.5 * gradient, opts), expected) <
          (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
    // Reproducible from the seed, different for another seed.
    const auto attr = x * gradient;
    const auto first = rar::infidelity(model, x, attr, opts);
    CHECK(torch::equal(first, rar::infidelity(model, x, attr, opts)));
    auto other = opts;
    CHECK(!torch::equal(first, rar::infidelity(model, x, attr, other.seed(6))));
  }

  SECTION("attr = w * x: E[INFD] = sigma^2 sum w_i^2 (x_i - 1)^2, normalized "
          "sigma^2 (|w|^2 - (sum w_i^2 x_i)^2 / sum w_i^2 x_i^2)") {
    const int64_t samples = 20000;
    auto o = opts;
    o.samples(samples);
    const auto xd = x.to(torch::kDouble);
    const auto w2 = w.pow(2);
    const auto plain = sigma * sigma * (w2 * (xd - 1).pow(2)).sum(1);
    const auto normalized =
        sigma * sigma *
        (w2.sum() - (w2 * xd).sum(1).pow(2) / (w2 * xd.pow(2)).sum(1));
    // (Iᵀc)² is σ²|c|² χ²₁: the mean of S draws has relative standard deviation sqrt(2 / S) = 1 %.
    CHECK(max_relative(rar::infidelity(model, x, x * gradient, o), plain) < 0.05);
    CHECK(max_relative(rar::infidelity(model, x, x * gradient, o.normalize(true)), normalized) <
          0.05);
  }
}

TEST_CASE("infidelity takes explainers and works on the residual network",
          "[quality][infidelity]") {
  auto net = rar::test::residual_model(torch::kDouble);
  const auto x = rar::test::residual_reference().tensor("residual.input");
  const auto y = torch::tensor({0, 2, 1, 0});
  const auto explainer = rar::explain::gradient_x_input();
  const auto opts = rar::InfidelityOptions().target(y).samples(6).stddev(0.1).seed(3);
  const auto attr = explainer(net, x, y, false);
  const auto given = rar::infidelity(net, x, attr, opts);
  CHECK(torch::equal(rar::infidelity(net, explainer, x, opts), given));
  CHECK((given > 0).all().item<bool>());
}

TEST_CASE("infidelity on CUDA matches the CPU", "[quality][infidelity][cuda]") {
  RAR_REQUIRE_CUDA();
  auto mlp = reference_mlp(torch::kDouble);
  const auto& ref = quality_reference();
  const auto x = ref.tensor("mlp.input");
  const auto y = ref.labels("mlp.target");
  const auto attr = ref.tensor("mlp.attributions");
  const auto opts = rar::InfidelityOptions().samples(9).normalize(true);
  const auto cpu = rar::infidelity(mlp, x, attr, rar::InfidelityOptions(opts).target(y));
  mlp->to(torch::kCUDA);
  const auto gpu =
      rar::infidelity(mlp, x.cuda(), attr.cuda(), rar::InfidelityOptions(opts).target(y.cuda()));
  CHECK(gpu.device().is_cpu());
  CHECK(max_relative(gpu, cpu) < 1e-9);
  const auto del_opts = rar::PerturbationCurveOptions().features_per_step(2);
  const auto del_gpu = rar::deletion_curve(mlp, x.cuda(), attr.cuda(),
                                           rar::PerturbationCurveOptions(del_opts).target(y.cuda()));
  mlp->to(torch::kCPU);
  const auto del_ref = rar::deletion_curve(mlp, x, attr,
                                           rar::PerturbationCurveOptions(del_opts).target(y));
  CHECK(max_rel_diff(del_gpu.curve, del_ref.curve) < 1e-12);
}

TEST_CASE("infidelity rejects bad input", "[quality][infidelity][errors]") {
  auto mlp = reference_mlp(torch::kDouble);
  const auto x = torch::randn({3, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  const auto opts = rar::InfidelityOptions().target(y);
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, torch::randn({3, 5}, torch::kDouble), opts),
                    Contains("rar::infidelity: input and attributions must have the same shape, "
                             "got [3, 6] and [3, 5]"));
  auto o = opts;
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x, o.samples(0)),
                    Contains("rar::infidelity: samples must be >= 1, got 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x, o.stddev(-0.1)),
                    Contains("rar::infidelity: stddev must be finite and >= 0, got -0.1"));
  o = opts;
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x, o.internal_batch_size(-1)),
                    Contains("internal_batch_size must be >= 0"));
  o = opts;
  const rar::InfidelityPerturbation too_few = [](const torch::Tensor& in, at::Generator&) {
    return std::make_pair(torch::zeros({3, 6}, in.options()), torch::zeros({3, 6}, in.options()));
  };
  CHECK_THROWS_WITH(
      rar::infidelity(mlp, x, x, o.samples(2).perturbation(too_few)),
      Contains("rar::infidelity: the perturbation function must return perturbations of shape "
               "[6, 6] (the input repeated samples = 2 times), got [3, 6]"));
  o = opts;
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x, o.target(torch::tensor({0, 1}))),
                    Contains("rar::infidelity: target must be 0-dim or of shape [3]"));
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x.to(torch::kInt), opts),
                    Contains("rar::infidelity: attributions must be float32 or float64, got Int"));
  CHECK_THROWS_WITH(rar::infidelity(mlp, x, x, rar::InfidelityOptions()),
                    Contains("without a target the model output must be [N]"));
}

// --- deletion and insertion curves -----------------------------------------------------------

TEST_CASE("deletion and insertion curves of a linear model are the hand-computed ones",
          "[quality][curves]") {
  // f(x) = ⟨w, x⟩ with w = (1, 2, 3, 4), x = 1: attributions w ⊙ x rank features 3, 2, 1, 0.
  const LinearScore model{torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kDouble)};
  const auto x = torch::ones({1, 4}, torch::kDouble);
  const auto attr = torch::tensor({{1.0, 2.0, 3.0, 4.0}}, torch::kDouble);
  const auto opts =
      rar::PerturbationCurveOptions().target(torch::tensor({0})).score(rar::score::logit);

  const auto del = rar::deletion_curve(model, x, attr, opts);
  CHECK(torch::equal(del.curve, torch::tensor({{10.0, 6.0, 3.0, 1.0, 0.0}}, torch::kDouble)));
  CHECK(torch::equal(del.fractions, torch::tensor({0.0, 0.25, 0.5, 0.75, 1.0}, torch::kDouble)));
  CHECK(del.auc.item<double>() == Approx(3.75).epsilon(1e-15));  // 0.25·(8 + 4.5 + 2 + 0.5)
  const auto ins = rar::insertion_curve(model, x, attr, opts);
  CHECK(torch::equal(ins.curve, torch::tensor({{0.0, 4.0, 7.0, 9.0, 10.0}}, torch::kDouble)));
  CHECK(ins.auc.item<double>() == Approx(6.25).epsilon(1e-15));  // 0.25·(2 + 5.5 + 8 + 9.5)

  // k = 3: one step of 3 features, then the last one; x positions 0, 3/4, 1.
  auto o = opts;
  const auto del3 = rar::deletion_curve(model, x, attr, o.features_per_step(3));
  CHECK(torch::equal(del3.curve, torch::tensor({{10.0, 1.0, 0.0}}, torch::kDouble)));
  CHECK(torch::equal(del3.fractions, torch::tensor({0.0, 0.75, 1.0}, torch::kDouble)));
  CHECK(del3.auc.item<double>() == Approx(0.75 * 5.5 + 0.25 * 0.5).epsilon(1e-15));

  // A baseline of 2 everywhere; a 0-dim baseline of another dtype is one value.
  o = opts;
  const auto del_b = rar::deletion_curve(model, x, attr, o.baseline(torch::tensor(2)));
  CHECK(torch::equal(del_b.curve, torch::tensor({{10.0, 14.0, 17.0, 19.0, 20.0}}, torch::kDouble)));

  // abs ranks by |φ|; ties keep the feature order.
  o = opts;
  const auto signed_attr = torch::tensor({{1.0, -5.0, 1.0, 0.0}}, torch::kDouble);
  CHECK(torch::equal(rar::deletion_curve(model, x, signed_attr, o).curve,
                     torch::tensor({{10.0, 9.0, 6.0, 2.0, 0.0}}, torch::kDouble)));
  CHECK(torch::equal(rar::deletion_curve(model, x, signed_attr, o.abs(true)).curve,
                     torch::tensor({{10.0, 8.0, 7.0, 4.0, 0.0}}, torch::kDouble)));
}

TEST_CASE("grouped channels remove whole pixels ranked by the channel sum",
          "[quality][curves]") {
  // [1, 2, 1, 2]: pixel p has channels (p, 2 + p) in flat order; f = Σ w ⊙ x.
  const LinearScore model{torch::tensor({1.0, 2.0, 10.0, 20.0}, torch::kDouble)};
  const auto x = torch::ones({1, 2, 1, 2}, torch::kDouble);
  // Signed pixel sums: 3 − 0.5 = 2.5 and −4 + 1 = −3 (pixel 0 first); sums of |φ|: 3.5 and 5
  // (pixel 1 first). Pixel 0 carries w = 1 + 10, pixel 1 w = 2 + 20.
  const auto attr = torch::tensor({3.0, -4.0, -0.5, 1.0}, torch::kDouble).view({1, 2, 1, 2});
  auto opts = rar::PerturbationCurveOptions()
                  .target(torch::tensor({0}))
                  .score(rar::score::logit)
                  .group_channels(true);
  CHECK(torch::equal(rar::deletion_curve(model, x, attr, opts).curve,
                     torch::tensor({{33.0, 22.0, 0.0}}, torch::kDouble)));
  // A one-channel map [N, 1, ...] ranks the same pixels.
  const auto map = attr.abs().sum(1, true);
  const auto o = rar::PerturbationCurveOptions(opts).abs(true);
  CHECK(torch::equal(rar::deletion_curve(model, x, attr, o).curve,
                     torch::tensor({{33.0, 11.0, 0.0}}, torch::kDouble)));
  CHECK(torch::equal(rar::deletion_curve(model, x, map, o).curve,
                     rar::deletion_curve(model, x, attr, o).curve));
  CHECK(torch::equal(rar::insertion_curve(model, x, map, o).curve,
                     torch::tensor({{0.0, 22.0, 33.0}}, torch::kDouble)));
}

TEMPLATE_TEST_CASE("deletion and insertion curves match a per-sample loop on an MLP",
                   "[quality][curves]", float, double) {
  const auto& ref = quality_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-12;
  auto mlp = reference_mlp(dtype);
  const auto x = ref.tensor("mlp.input").to(dtype);
  const auto y = ref.labels("mlp.target");
  const auto attr = ref.tensor("mlp.attributions").to(dtype);
  const auto base = ref.tensor("mlp.curve_baseline").to(dtype);
  for (const int64_t k : {1, 4}) {
    const auto opts = rar::PerturbationCurveOptions().target(y).features_per_step(k);
    const auto logit_opts =
        rar::PerturbationCurveOptions(opts).baseline(base).score(rar::score::logit);
    const std::string key = ".k" + std::to_string(k);
    const auto del = rar::deletion_curve(mlp, x, attr, opts);
    const auto ins = rar::insertion_curve(mlp, x, attr, opts);
    CHECK(max_rel_diff(del.curve, ref.tensor("mlp.deletion" + key)) < tol);
    CHECK(max_rel_diff(ins.curve, ref.tensor("mlp.insertion" + key)) < tol);
    CHECK(max_rel_diff(rar::deletion_curve(mlp, x, attr, logit_opts).curve,
                       ref.tensor("mlp.deletion" + key + ".baseline_logit")) < tol);
    CHECK(max_rel_diff(rar::insertion_curve(mlp, x, attr, logit_opts).curve,
                       ref.tensor("mlp.insertion" + key + ".baseline_logit")) < tol);
    // The AUC is the trapezoid rule over the fractions of features removed.
    const auto c = ref.tensor("mlp.deletion" + key);
    const int64_t points = c.size(1);
    CHECK(points == (6 + k - 1) / k + 1);
    for (int64_t n = 0; n < 3; ++n) {
      double area = 0;
      for (int64_t j = 1; j < points; ++j) {
        const double x0 = std::min<double>(6, (j - 1) * k) / 6, x1 = std::min<double>(6, j * k) / 6;
        area += (x1 - x0) * (c[n][j].item<double>() + c[n][j - 1].item<double>()) / 2;
      }
      CHECK(del.auc[n].item<double>() == Approx(area).epsilon(1e-6).margin(tol));
    }
    // Any chunking gives the same curves.
    for (const int64_t chunk : {1, 3, 100}) {
      auto o = opts;
      CHECK(max_rel_diff(rar::deletion_curve(mlp, x, attr, o.internal_batch_size(chunk)).curve,
                         del.curve) < tol);
    }
  }
}

TEST_CASE("deletion and insertion curves on the residual network, grouped and not",
          "[quality][curves]") {
  const auto& ref = quality_reference();
  auto net = rar::test::residual_model(torch::kDouble);
  const auto x = rar::test::residual_reference().tensor("residual.input");
  const auto y = torch::tensor({0, 2, 1, 0});
  const auto attr = ref.tensor("residual.attributions");
  const auto grouped =
      rar::PerturbationCurveOptions().target(y).features_per_step(5).group_channels(true).abs(true);
  const auto plain = rar::PerturbationCurveOptions().target(y).features_per_step(7);
  CHECK(max_rel_diff(rar::deletion_curve(net, x, attr, grouped).curve,
                     ref.tensor("residual.deletion.grouped_abs.k5")) < 1e-12);
  CHECK(max_rel_diff(rar::insertion_curve(net, x, attr, grouped).curve,
                     ref.tensor("residual.insertion.grouped_abs.k5")) < 1e-12);
  const auto del = rar::deletion_curve(net, x, attr, plain);
  CHECK(del.curve.sizes() == torch::IntArrayRef{4, 12});  // ⌈72 / 7⌉ + 1
  CHECK(max_rel_diff(del.curve, ref.tensor("residual.deletion.k7")) < 1e-12);
  CHECK(max_rel_diff(rar::insertion_curve(net, x, attr, plain).curve,
                     ref.tensor("residual.insertion.k7")) < 1e-12);
  // The explainer form explains the options' target once and ranks its attributions.
  const auto explainer = rar::explain::gradient_x_input();
  CHECK(torch::equal(rar::deletion_curve(net, explainer, x, plain).curve,
                     rar::deletion_curve(net, x, explainer(net, x, y, false), plain).curve));
  CHECK(torch::equal(rar::insertion_curve(net, explainer, x, grouped).auc,
                     rar::insertion_curve(net, x, explainer(net, x, y, false), grouped).auc));
}

TEST_CASE("curve_auc is the trapezoid rule on [0, 1]", "[quality][curves]") {
  CHECK(rar::curve_auc(torch::tensor({{1.0, 0.5, 0.0}})).item<double>() == 0.5);
  const auto c = torch::tensor({{1.0, 3.0, 2.0, 0.0}, {0.0, 0.0, 0.0, 6.0}}, torch::kDouble);
  const auto auc = rar::curve_auc(c);
  CHECK(auc[0].item<double>() == Approx((6.0 - 0.5 - 0.0) / 3).epsilon(1e-15));
  CHECK(auc[1].item<double>() == Approx((6.0 - 3.0) / 3).epsilon(1e-15));
  const auto fractions = torch::tensor({0.0, 0.5, 0.9, 1.0}, torch::kDouble);
  CHECK(rar::curve_auc(c, fractions)[0].item<double>() ==
        Approx(0.5 * 2 + 0.4 * 2.5 + 0.1 * 1).epsilon(1e-15));
  CHECK_THROWS_WITH(rar::curve_auc(torch::ones({2, 1})),
                    Contains("rar::curve_auc: curve must be [N, P] with P >= 2 points, got shape "
                             "[2, 1]"));
  CHECK_THROWS_WITH(rar::curve_auc(c, torch::ones({3})),
                    Contains("rar::curve_auc: fractions must be [P] with P = 4"));
}

TEST_CASE("deletion and insertion curves reject bad input", "[quality][curves][errors]") {
  auto mlp = reference_mlp(torch::kDouble);
  const auto x = torch::randn({3, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  const auto opts = rar::PerturbationCurveOptions().target(y);
  auto o = opts;
  CHECK_THROWS_WITH(rar::deletion_curve(mlp, x, x, o.features_per_step(0)),
                    Contains("rar::deletion_curve: features_per_step must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::insertion_curve(mlp, x, torch::randn({3, 2, 3}, torch::kDouble), opts),
                    Contains("rar::insertion_curve: input and attributions must have the same "
                             "shape, got [3, 6] and [3, 2, 3]"));
  o = opts;
  CHECK_THROWS_WITH(rar::deletion_curve(mlp, x, x, o.group_channels(true)),
                    Contains("rar::deletion_curve: group_channels needs an input [N, C, ...] with "
                             "at least one dimension after the channels, got shape [3, 6]"));
  const auto images = torch::rand({2, 3, 4, 4}, torch::kDouble);
  const LinearScore model{torch::ones({48}, torch::kDouble)};
  o = rar::PerturbationCurveOptions().target(torch::tensor({0, 0})).group_channels(true);
  CHECK_THROWS_WITH(rar::deletion_curve(model, images, torch::rand({2, 2, 4, 4}, torch::kDouble), o),
                    Contains("with group_channels the attributions must have the input's shape or "
                             "one channel ([N, 1, ...]), got [2, 2, 4, 4] for input [2, 3, 4, 4]"));
  auto nan_attr = x.clone();
  nan_attr[1][2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(rar::deletion_curve(mlp, x, nan_attr, opts),
                    Contains("rar::deletion_curve: attributions must be finite"));
  CHECK_THROWS_WITH(rar::deletion_curve(mlp, x, x),
                    Contains("the default score (the target's softmax probability) needs a target"));
  o = opts;
  CHECK_THROWS_WITH(rar::deletion_curve(mlp, x, x, o.baseline(torch::zeros({2, 6}, torch::kDouble))),
                    Contains("rar::deletion_curve: baseline of shape [2, 6] does not broadcast to "
                             "the input's shape [3, 6]"));
  o = opts;
  CHECK_THROWS_WITH(rar::insertion_curve(mlp, x, x, o.target(torch::tensor({0, 1, 9}))),
                    Contains("target class indices must lie in [0, 4), got values in [0, 9]"));
}

// --- sparseness and complexity ---------------------------------------------------------------

TEMPLATE_TEST_CASE("sparseness and complexity match Quantus' formulas", "[quality][complexity]",
                   float, double) {
  const auto& ref = quality_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-12;
  const auto maps = ref.tensor("maps").to(dtype);
  const auto gini = rar::sparseness(maps);
  CHECK(gini.scalar_type() == torch::kDouble);
  CHECK(gini.sizes() == torch::IntArrayRef{6});
  CHECK(max_rel_diff(gini, ref.tensor("maps.sparseness")) < tol);
  CHECK(max_rel_diff(rar::sparseness(maps, rar::SparsenessOptions().normalize(false)),
                     ref.tensor("maps.sparseness_raw")) < tol);
  // The small-scale map (row 4) differs by normalization only through the 1e-7 offset.
  CHECK(std::abs(gini[4].item<double>() -
                 rar::sparseness(maps, rar::SparsenessOptions().normalize(false))[4].item<double>()) >
        1e-5);
  // The all-zero map (row 5): Quantus' offset makes it uniform, Gini 0; complexity is 0/0.
  CHECK(std::abs(gini[5].item<double>()) < 1e-12);
  CHECK(std::isnan(rar::sparseness(maps, rar::SparsenessOptions().epsilon(0))[5].item<double>()));
  const auto h = rar::complexity(maps);
  const auto expected = ref.tensor("maps.complexity");
  CHECK(max_rel_diff(h.slice(0, 0, 5), expected.slice(0, 0, 5)) < tol);
  CHECK(std::isnan(h[5].item<double>()));
  CHECK(std::isnan(expected[5].item<double>()));
}

TEST_CASE("sparseness and complexity of analytic maps", "[quality][complexity]") {
  const int64_t d = 10;
  const auto exact = rar::SparsenessOptions().epsilon(0);
  // k equal non-zero features out of D: Gini 1 − k/D; entropy log k.
  for (const int64_t k : {1, 3, 10}) {
    auto map = torch::zeros({2, 2, 5}, torch::kDouble);
    map.view({2, d}).slice(1, 0, k).fill_(0.7);
    map[1].mul_(-4.0);  // sign and scale do not matter
    const auto gini = rar::sparseness(map, exact);
    CHECK(gini[0].item<double>() == Approx(1.0 - static_cast<double>(k) / d).margin(1e-15));
    CHECK(gini[1].item<double>() == Approx(1.0 - static_cast<double>(k) / d).margin(1e-15));
    // Quantus' 1e-7 offset moves the one-hot value by about 1e-6.
    CHECK(rar::sparseness(map)[0].item<double>() ==
          Approx(1.0 - static_cast<double>(k) / d).margin(1e-5));
    const auto h = rar::complexity(map);
    CHECK(h[0].item<double>() == Approx(std::log(static_cast<double>(k))).margin(1e-15));
    CHECK(h[1].item<double>() == Approx(std::log(static_cast<double>(k))).margin(1e-15));
  }
  // Entropy of (1, 1, 2) / 4 by hand.
  const auto h = rar::complexity(torch::tensor({{1.0, -1.0, 2.0}}));
  CHECK(h.item<double>() == Approx(-(2 * 0.25 * std::log(0.25) + 0.5 * std::log(0.5))).epsilon(1e-14));
  // Gini of (0, 1, 2, 3) / 6 by hand: Σ (2i − 5) v_i / (4 Σ v) = (−3·0 − 1·1 + 1·2 + 3·3) / 24.
  CHECK(rar::sparseness(torch::tensor({{3.0, 0.0, 2.0, 1.0}}), exact).item<double>() ==
        Approx(10.0 / 24.0).epsilon(1e-14));
}

TEST_CASE("sparseness and complexity reject bad input", "[quality][complexity][errors]") {
  CHECK_THROWS_WITH(rar::sparseness(torch::ones({2, 0})),
                    Contains("rar::sparseness: attributions must have at least one feature per "
                             "sample, got shape [2, 0]"));
  CHECK_THROWS_WITH(rar::sparseness(torch::ones({2, 3}), rar::SparsenessOptions().epsilon(-1)),
                    Contains("rar::sparseness: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::complexity(torch::ones({2, 3}, torch::kLong)),
                    Contains("rar::complexity: attributions must be float32 or float64, got Long"));
  CHECK_THROWS_WITH(rar::complexity(torch::Tensor()),
                    Contains("rar::complexity: attributions must be a defined tensor"));
}
