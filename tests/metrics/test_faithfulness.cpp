// Faithfulness metrics: faithfulness correlation and estimate, monotonicity correlation, ROAD with
// its noisy linear imputation, completeness, SSIM and the random-logit test, against numpy
// transcriptions of Quantus' code fed the same draws (make_faithfulness_reference.py), analytic
// cases on linear models and images, seeding, batching and bad input.

#include <catch2/catch.hpp>
#include <cmath>
#include <rar/explain/explainers.hpp>
#include <rar/metrics/faithfulness.hpp>
#include <vector>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;

namespace {

const rar::test::Reference& faith_reference() {
  static const rar::test::Reference ref(rar::test::data_path("faithfulness_reference.txt"));
  return ref;
}

/// The CNN of make_faithfulness_reference.py: conv 3×3 (C → 4, padding 1), tanh, linear → 5.
struct FaithCnnImpl : torch::nn::Module {
  explicit FaithCnnImpl(int64_t channels)
      : conv(register_module(
            "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, 4, 3).padding(1)))),
        fc(register_module("fc", torch::nn::Linear(4 * 6 * 6, 5))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::tanh(conv(x)).flatten(1)); }
  torch::nn::Conv2d conv;
  torch::nn::Linear fc;
};
TORCH_MODULE(FaithCnn);

FaithCnn faith_cnn(int64_t channels, torch::Dtype dtype) {
  FaithCnn net(channels);
  net->to(dtype);
  faith_reference().load_into(*net, channels == 1 ? "cnn1" : "cnn");
  net->eval();
  return net;
}

/// max_n |a_n − b_n| / max(1, |b|∞), NaN-free inputs.
double faith_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return rar::test::max_rel_diff(a, b);
}

/// f(x) = ⟨w, x⟩ + 0.5 as the first of two outputs (the second 0), target 0.
struct FaithLinear {
  torch::Tensor w;
  torch::Tensor operator()(const torch::Tensor& x) const {
    const torch::Tensor f = x.flatten(1).matmul(w.to(x.options())) + 0.5;
    return torch::stack({f, torch::zeros_like(f)}, 1);
  }
};

template <class T>
double faith_tol() {
  return std::is_same_v<T, float> ? 2e-3 : 1e-9;
}

}  // namespace

// --- faithfulness correlation ------------------------------------------------------------------

TEMPLATE_TEST_CASE("faithfulness correlation matches Quantus' code with the same subsets",
                   "[faithfulness][faithfulness_correlation]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto y = ref.labels("y");
  const auto attr = ref.tensor("attr").to(dtype);
  const auto opts =
      rar::FaithfulnessCorrelationOptions().target(y).subsets(ref.labels("fc.subsets"));
  const auto black = rar::faithfulness_correlation(cnn, x, attr, opts);
  CHECK(black.scalar_type() == torch::kDouble);
  CHECK(black.device().is_cpu());
  CHECK(black.sizes() == torch::IntArrayRef{3});
  CHECK(faith_diff(black, ref.tensor("fc.black")) < faith_tol<TestType>());
  auto o = opts;
  o.perturb_baseline(rar::PerturbBaseline::uniform(-1, 1)).baseline_draws(ref.tensor("fc.draws"));
  CHECK(faith_diff(rar::faithfulness_correlation(cnn, x, attr, o), ref.tensor("fc.uniform")) <
        faith_tol<TestType>());
  o = opts;
  o.perturb_baseline(rar::PerturbBaseline::white()).abs(true);
  CHECK(faith_diff(rar::faithfulness_correlation(cnn, x, attr, o), ref.tensor("fc.white_abs")) <
        faith_tol<TestType>());
  // Any chunking of the 30 perturbed rows gives the same numbers.
  for (const int64_t chunk : {1, 4, 7}) {
    auto c = opts;
    CHECK(faith_diff(rar::faithfulness_correlation(cnn, x, attr, c.internal_batch_size(chunk)),
                     black) < (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
  }
}

TEMPLATE_TEST_CASE("faithfulness correlation is 1 for a linear model with w * (x - baseline)",
                   "[faithfulness][faithfulness_correlation]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  torch::manual_seed(3);
  const auto w = torch::randn({12}, torch::kDouble);
  const FaithLinear model{w};
  const auto x = torch::randn({4, 12}, torch::kDouble).to(dtype);
  const auto y = torch::tensor(int64_t{0});
  // Zero baseline: gradient x input; "black": w ⊙ (x − min x).
  const auto zero =
      rar::faithfulness_correlation(model, x, w.to(dtype) * x,
                                    rar::FaithfulnessCorrelationOptions()
                                        .target(y)
                                        .nr_runs(20)
                                        .subset_size(4)
                                        .seed(2)
                                        .perturb_baseline(rar::PerturbBaseline::value(0)));
  const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-12;
  CHECK((zero - 1).abs().max().template item<double>() < tol);
  const auto shifted = x - std::get<0>(x.min(1, true));
  const auto black = rar::faithfulness_correlation(
      model, x, w.to(dtype) * shifted,
      rar::FaithfulnessCorrelationOptions().target(y).nr_runs(20).subset_size(5).seed(9));
  CHECK((black - 1).abs().max().template item<double>() < tol);
}

TEST_CASE("faithfulness correlation draws distinct subsets from the seed, reproducibly",
          "[faithfulness][faithfulness_correlation]") {
  at::Generator gen = rar::seeded_generator(7, 0);
  const auto subsets = rar::detail::random_feature_subsets(gen, 3, 50, 6, 10);
  CHECK(subsets.sizes() == torch::IntArrayRef{3, 50, 6});
  CHECK(subsets.min().item<int64_t>() >= 0);
  CHECK(subsets.max().item<int64_t>() < 10);
  const auto sorted = std::get<0>(subsets.sort(2));
  CHECK((sorted.slice(2, 1) != sorted.slice(2, 0, -1)).all().item<bool>());
  // Every feature is chosen about 6/10 of the time (150 subsets: 90 ± 6 per feature).
  const auto counts = torch::bincount(subsets.flatten(), {}, 10).to(torch::kDouble);
  CHECK(((counts - 90).abs() < 30).all().item<bool>());

  const auto& ref = faith_reference();
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto x = ref.tensor("x");
  const auto attr = ref.tensor("attr");
  const auto opts = rar::FaithfulnessCorrelationOptions()
                        .target(ref.labels("y"))
                        .nr_runs(12)
                        .subset_size(9)
                        .seed(5);
  const auto seeded = rar::faithfulness_correlation(cnn, x, attr, opts);
  at::Generator same = rar::seeded_generator(5, 0);
  auto explicit_opts = opts;
  explicit_opts.subsets(rar::detail::random_feature_subsets(same, 3, 12, 9, 72));
  CHECK(torch::equal(seeded, rar::faithfulness_correlation(cnn, x, attr, explicit_opts)));
  auto other = opts;
  CHECK(!torch::equal(seeded, rar::faithfulness_correlation(cnn, x, attr, other.seed(6))));
  // The explainer form explains the target once.
  const auto explainer = rar::explain::gradient_x_input();
  CHECK(torch::equal(
      rar::faithfulness_correlation(cnn, explainer, x, opts),
      rar::faithfulness_correlation(cnn, x, explainer(cnn, x, ref.labels("y"), false), opts)));
}

TEST_CASE("faithfulness correlation rejects bad input",
          "[faithfulness][faithfulness_correlation][errors]") {
  const FaithLinear model{torch::ones({6}, torch::kDouble)};
  const auto x = torch::randn({2, 6}, torch::kDouble);
  const auto y = torch::tensor(int64_t{0});
  const auto opts = rar::FaithfulnessCorrelationOptions().target(y).subset_size(2);
  auto o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_correlation(model, x, x, o.nr_runs(1)),
                    Contains("rar::faithfulness_correlation: nr_runs must be >= 2"));
  o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_correlation(model, x, x, o.subset_size(7)),
                    Contains("rar::faithfulness_correlation: subset_size must lie in [1, 6]"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::faithfulness_correlation(model, x, x, o.subsets(torch::zeros({2, 3}, torch::kLong))),
      Contains("subsets must be int64 [N, runs, subset_size] with N = 2"));
  o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_correlation(
                        model, x, x, o.subsets(torch::full({2, 3, 2}, 6, torch::kLong))),
                    Contains("subsets must hold feature indices in [0, 6), got values in [6, 6]"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::faithfulness_correlation(model, x, x, o.subsets(torch::zeros({2, 3, 2}, torch::kLong))),
      Contains("the feature indices within a subset must be distinct"));
  CHECK_THROWS_WITH(
      rar::faithfulness_correlation(model, x, torch::randn({2, 5}, torch::kDouble), opts),
      Contains("rar::faithfulness_correlation: attributions must have the input's "
               "shape [2, 6] or broadcast to it"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::faithfulness_correlation(model, x, x,
                                    o.perturb_baseline(rar::PerturbBaseline::uniform(1, 0))),
      Contains("perturb_baseline needs finite values with low <= high, got low = 1, high = 0"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::faithfulness_correlation(model, x, x,
                                    o.nr_runs(3)
                                        .perturb_baseline(rar::PerturbBaseline::uniform())
                                        .baseline_draws(torch::zeros({2, 2}, torch::kDouble))),
      Contains("baseline_draws must be floating point of shape [N, runs] (6 values)"));
  auto nan_attr = x.clone();
  nan_attr[0][0] = NAN;
  CHECK_THROWS_WITH(rar::faithfulness_correlation(model, x, nan_attr, opts),
                    Contains("rar::faithfulness_correlation: attributions must be finite"));
  o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_correlation(model, x, x, o.internal_batch_size(-1)),
                    Contains("internal_batch_size must be >= 0"));
}

// --- faithfulness estimate ---------------------------------------------------------------------

TEMPLATE_TEST_CASE("faithfulness estimate matches Quantus' code",
                   "[faithfulness][faithfulness_estimate]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto y = ref.labels("y");
  const auto attr = ref.tensor("attr").to(dtype);
  const auto opts = rar::FaithfulnessEstimateOptions().target(y);
  CHECK(faith_diff(rar::faithfulness_estimate(cnn, x, attr, opts), ref.tensor("fe.k1")) <
        faith_tol<TestType>());
  auto o = opts;
  const auto k5 = rar::faithfulness_estimate(cnn, x, attr, o.features_in_step(5));
  CHECK(faith_diff(k5, ref.tensor("fe.k5")) < faith_tol<TestType>());
  // A one-channel map broadcast over the two channels, with the mean baseline.
  o = opts;
  CHECK(faith_diff(rar::faithfulness_estimate(
                       cnn, x, ref.tensor("fe.map").to(dtype),
                       o.features_in_step(3).perturb_baseline(rar::PerturbBaseline::mean())),
                   ref.tensor("fe.map.k3.mean")) < faith_tol<TestType>());
  o = opts;
  o.features_in_step(5)
      .perturb_baseline(rar::PerturbBaseline::uniform())
      .baseline_draws(ref.tensor("fe.draws"));
  CHECK(faith_diff(rar::faithfulness_estimate(cnn, x, attr, o), ref.tensor("fe.k5.uniform")) <
        faith_tol<TestType>());
  for (const int64_t chunk : {1, 10}) {
    auto c = opts;
    CHECK(faith_diff(rar::faithfulness_estimate(cnn, x, attr,
                                                c.features_in_step(5).internal_batch_size(chunk)),
                     k5) < (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
  }
}

TEST_CASE(
    "faithfulness estimate is 1 for a linear model with w * (x - baseline), and takes "
    "explainers",
    "[faithfulness][faithfulness_estimate]") {
  torch::manual_seed(4);
  const auto w = torch::randn({10}, torch::kDouble);
  const FaithLinear model{w};
  const auto x = torch::randn({3, 10}, torch::kDouble);
  const auto y = torch::tensor(int64_t{0});
  for (const int64_t k : {1, 3}) {
    const auto fe = rar::faithfulness_estimate(
        model, x, w * (x - 0.5),
        rar::FaithfulnessEstimateOptions().target(y).features_in_step(k).perturb_baseline(
            rar::PerturbBaseline::value(0.5)));
    CHECK((fe - 1).abs().max().item<double>() < 1e-12);
  }
  const auto& ref = faith_reference();
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto opts = rar::FaithfulnessEstimateOptions().target(ref.labels("y")).features_in_step(4);
  const auto explainer = rar::explain::gradient_x_input();
  CHECK(faith_diff(rar::faithfulness_estimate(cnn, explainer, ref.tensor("x"), opts),
                   rar::faithfulness_estimate(cnn, ref.tensor("x"), ref.tensor("attr"), opts)) <
        1e-9);
}

TEST_CASE("faithfulness estimate rejects bad input",
          "[faithfulness][faithfulness_estimate][errors]") {
  const FaithLinear model{torch::ones({4}, torch::kDouble)};
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto opts = rar::FaithfulnessEstimateOptions().target(torch::tensor(int64_t{0}));
  auto o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_estimate(model, x, x, o.features_in_step(0)),
                    Contains("rar::faithfulness_estimate: features_in_step must be >= 1, got 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::faithfulness_estimate(model, x, x, o.features_in_step(4)),
                    Contains("features_in_step = 4 leaves 1 step for 4 features"));
  CHECK_THROWS_WITH(
      rar::faithfulness_estimate(model, x, x.to(torch::kInt), opts),
      Contains("rar::faithfulness_estimate: attributions must be float32 or float64"));
  CHECK_THROWS_WITH(rar::faithfulness_estimate(model, x, x, rar::FaithfulnessEstimateOptions()),
                    Contains("without a target the model output must be [N]"));
}

// --- monotonicity correlation ------------------------------------------------------------------

TEMPLATE_TEST_CASE("monotonicity correlation matches Quantus' code with the same draws",
                   "[faithfulness][monotonicity_correlation]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto y = ref.labels("y");
  const auto attr = ref.tensor("attr").to(dtype);
  const auto opts = rar::MonotonicityCorrelationOptions()
                        .target(y)
                        .nr_samples(4)
                        .features_in_step(6)
                        .baseline_draws(ref.tensor("mc.draws"));
  // Spearman's rho of 12 groups moves in steps of 6 / (12 · 143): float32 may swap a near tie.
  const double tol = std::is_same_v<TestType, float> ? 0.02 : 1e-9;
  const auto mc = rar::monotonicity_correlation(cnn, x, attr, opts);
  CHECK(faith_diff(mc, ref.tensor("mc.uniform")) < tol);
  auto o = opts;
  CHECK(faith_diff(rar::monotonicity_correlation(cnn, x, attr, o.abs(false)),
                   ref.tensor("mc.signed")) < tol);
  o = opts;
  o.features_in_step(8)
      .nr_samples(3)
      .perturb_baseline(rar::PerturbBaseline::black())
      .baseline_draws({});
  CHECK(faith_diff(rar::monotonicity_correlation(cnn, x, attr, o), ref.tensor("mc.black.k8")) <
        tol);
  auto c = opts;
  CHECK(faith_diff(rar::monotonicity_correlation(cnn, x, attr, c.internal_batch_size(5)), mc) <
        (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
}

TEST_CASE(
    "monotonicity correlation is 1 for |w * (x - b)| on a linear model, seeded draws are "
    "reproducible",
    "[faithfulness][monotonicity_correlation]") {
  torch::manual_seed(5);
  const auto w = torch::randn({9}, torch::kDouble);
  const FaithLinear model{w};
  const auto x = torch::randn({3, 9}, torch::kDouble);
  const auto y = torch::tensor(int64_t{0});
  // One feature per group at a fixed baseline: v_i ∝ (w_i (x_i − b))², ranked like |φ_i|.
  const auto mc =
      rar::monotonicity_correlation(model, x, w * (x + 1),
                                    rar::MonotonicityCorrelationOptions()
                                        .target(y)
                                        .score(rar::score::logit)
                                        .perturb_baseline(rar::PerturbBaseline::value(-1)));
  CHECK((mc - 1).abs().max().item<double>() < 1e-12);

  const auto& ref = faith_reference();
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto opts = rar::MonotonicityCorrelationOptions()
                        .target(ref.labels("y"))
                        .nr_samples(3)
                        .features_in_step(9)
                        .seed(11);
  const auto seeded = rar::monotonicity_correlation(cnn, ref.tensor("x"), ref.tensor("attr"), opts);
  // The draws are one [N, steps, nr_samples] uniform draw of the stream (seed, 0).
  at::Generator gen = rar::seeded_generator(11, 0);
  const auto draws = torch::empty({3, 8, 3}, torch::kDouble).uniform_(0, 1, gen);
  auto o = opts;
  CHECK(torch::equal(seeded, rar::monotonicity_correlation(cnn, ref.tensor("x"), ref.tensor("attr"),
                                                           o.baseline_draws(draws))));
}

TEST_CASE("monotonicity correlation rejects bad input",
          "[faithfulness][monotonicity_correlation][errors]") {
  const FaithLinear model{torch::ones({4}, torch::kDouble)};
  const auto x = torch::randn({2, 4}, torch::kDouble);
  const auto opts = rar::MonotonicityCorrelationOptions().target(torch::tensor(int64_t{0}));
  auto o = opts;
  CHECK_THROWS_WITH(rar::monotonicity_correlation(model, x, x, o.nr_samples(0)),
                    Contains("rar::monotonicity_correlation: nr_samples must be >= 1, got 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::monotonicity_correlation(model, x, x, o.eps(-1)),
                    Contains("eps must be finite and >= 0, got -1"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::monotonicity_correlation(model, x, x,
                                    o.nr_samples(2).baseline_draws(torch::zeros({2, 4, 3}))),
      Contains(
          "baseline_draws must be floating point of shape [N, steps, nr_samples] (16 values)"));
}

// --- noisy linear imputation and ROAD ----------------------------------------------------------

TEMPLATE_TEST_CASE("noisy linear imputation matches ROAD's sparse solve, with and without noise",
                   "[faithfulness][road]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  const double tol = std::is_same_v<TestType, float> ? 1e-5 : 1e-9;
  const auto x = ref.tensor("x").to(dtype);
  const auto mask = ref.tensor("imp.mask").to(torch::kBool);
  const auto plain = rar::noisy_linear_imputation(x, mask, rar::NoisyImputationOptions().noise(0));
  CHECK(plain.scalar_type() == dtype);
  CHECK(faith_diff(plain, ref.tensor("imp.plain")) < tol);
  const auto noisy = rar::noisy_linear_imputation(
      x, mask.unsqueeze(1),
      rar::NoisyImputationOptions().noise(0.05).noise_draws(ref.tensor("imp.draws")));
  CHECK(faith_diff(noisy, ref.tensor("imp.noisy")) < tol);
  // 90 % of a 16 x 16 image removed.
  const auto big = rar::noisy_linear_imputation(ref.tensor("imp.big").to(dtype),
                                                ref.tensor("imp.big.mask").to(torch::kBool),
                                                rar::NoisyImputationOptions().noise(0));
  CHECK(faith_diff(big, ref.tensor("imp.big.plain")) < tol);
}

TEST_CASE("linear imputation reproduces a plane inside the image and keeps kept pixels",
          "[faithfulness][road]") {
  const auto i = torch::arange(8, torch::kDouble).view({8, 1});
  const auto j = torch::arange(8, torch::kDouble).view({1, 8});
  const auto plane = (0.3 * i - 1.7 * j + 2.0).view({1, 1, 8, 8}).repeat({1, 2, 1, 1});
  auto removed = torch::zeros({1, 8, 8}, torch::kBool);
  removed.slice(1, 1, 7).slice(2, 2, 6).fill_(true);  // an interior block
  removed[0][3][1] = true;
  const auto imputed =
      rar::noisy_linear_imputation(plane, removed, rar::NoisyImputationOptions().noise(0));
  CHECK((imputed - plane).abs().max().item<double>() < 1e-12);
  // Seeded noise: sample n gets the n-th [C, H, W] draw of the stream (seed, 0), at removed pixels.
  const auto x = torch::randn({2, 3, 5, 5}, torch::kDouble);
  const auto m = torch::rand({2, 1, 5, 5}) < 0.5;
  m[0][0][0][0] = false;
  m[1][0][0][0] = false;
  const auto base = rar::noisy_linear_imputation(x, m, rar::NoisyImputationOptions().noise(0));
  CHECK(torch::equal(torch::where(m, x, base), x));
  at::Generator gen = rar::seeded_generator(4, 0);
  const auto z0 = torch::randn({3, 5, 5}, gen, torch::kDouble);
  const auto z1 = torch::randn({3, 5, 5}, gen, torch::kDouble);
  const auto seeded =
      rar::noisy_linear_imputation(x, m, rar::NoisyImputationOptions().noise(0.5).seed(4));
  CHECK((seeded - (base + 0.5 * m * torch::stack({z0, z1}))).abs().max().item<double>() < 1e-12);
}

TEMPLATE_TEST_CASE(
    "ROAD matches Quantus' code on one-channel images and the pixel version on "
    "two channels",
    "[faithfulness][road]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  const auto pct_t = ref.tensor("road.percentages");
  std::vector<double> pct(pct_t.data_ptr<double>(), pct_t.data_ptr<double>() + pct_t.numel());
  auto cnn1 = faith_cnn(1, dtype);
  const auto x1 = ref.tensor("road1.x").to(dtype);
  const auto a1 = ref.tensor("road1.attr").to(dtype);
  const auto opts = rar::ROADOptions().target(ref.labels("road1.y")).percentages(pct);
  auto o = opts;
  const auto plain = rar::road(cnn1, x1, a1, o.noise(0));
  CHECK(torch::equal(plain.per_sample, ref.tensor("road1.plain")));
  CHECK(torch::equal(plain.curve, ref.tensor("road1.plain").mean(0)));
  CHECK(torch::equal(plain.percentages, pct_t));
  o = opts;
  const auto noisy = rar::road(cnn1, x1, a1, o.noise(0.3).noise_draws(ref.tensor("road1.draws")));
  CHECK(torch::equal(noisy.per_sample, ref.tensor("road1.noisy")));

  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto attr = ref.tensor("attr").to(dtype);
  auto o2 = rar::ROADOptions()
                .target(ref.labels("road2.y"))
                .percentages(pct)
                .noise(0.2)
                .noise_draws(ref.tensor("road2.draws"));
  CHECK(torch::equal(rar::road(cnn, x, attr, o2).per_sample, ref.tensor("road2.morf")));
  // A one-channel map (the channel sum) ranks the same pixels.
  CHECK(
      torch::equal(rar::road(cnn, x, attr.sum(1, true), o2).per_sample, ref.tensor("road2.morf")));
  auto lerf = o2;
  CHECK(torch::equal(rar::road(cnn, x, attr, lerf.order(rar::RemovalOrder::lerf)).per_sample,
                     ref.tensor("road2.lerf")));
  for (const int64_t chunk : {1, 5}) {
    auto c = o2;
    CHECK(torch::equal(rar::road(cnn, x, attr, c.internal_batch_size(chunk)).per_sample,
                       ref.tensor("road2.morf")));
  }
}

TEST_CASE("ROAD's seeded noise is the per-row draw of the stream, whatever the chunking",
          "[faithfulness][road]") {
  const auto& ref = faith_reference();
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto x = ref.tensor("x");
  const auto attr = ref.tensor("attr");
  const std::vector<double> pct{20, 60, 95};
  at::Generator gen = rar::seeded_generator(8, 0);
  std::vector<torch::Tensor> rows;
  for (int r = 0; r < 9; ++r) rows.push_back(torch::randn({2, 6, 6}, gen, torch::kDouble));
  const auto draws = torch::stack(rows).view({3, 3, 2, 6, 6});
  const auto opts = rar::ROADOptions().target(ref.labels("road2.y")).percentages(pct).noise(2.0);
  auto seeded = opts;
  seeded.seed(8);
  auto given = opts;
  given.noise_draws(draws);
  const auto expected = rar::road(cnn, x, attr, given).per_sample;
  CHECK(torch::equal(rar::road(cnn, x, attr, seeded).per_sample, expected));
  CHECK(torch::equal(rar::road(cnn, x, attr, seeded.internal_batch_size(2)).per_sample, expected));
  // The explainer form ranks the explainer's attributions.
  const auto explainer = rar::explain::gradient_x_input();
  CHECK(torch::equal(
      rar::road(cnn, explainer, x, given).per_sample,
      rar::road(cnn, x, explainer(cnn, x, ref.labels("road2.y"), false), given).per_sample));
}

TEST_CASE("ROAD and the imputation reject bad input", "[faithfulness][road][errors]") {
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto x = torch::randn({2, 2, 6, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  const auto opts = rar::ROADOptions().target(y).percentages({10, 50});
  CHECK_THROWS_WITH(rar::road(cnn, x, x, rar::ROADOptions()),
                    Contains("rar::road: a target is required"));
  auto o = opts;
  CHECK_THROWS_WITH(rar::road(cnn, x, x, o.percentages({100})),
                    Contains("rar::road: percentages must lie in [0, 100), got 100"));
  o = opts;
  CHECK_THROWS_WITH(rar::road(cnn, x, x, o.percentages({-1})),
                    Contains("rar::road: percentages must lie in [0, 100), got -1"));
  o = opts;
  CHECK_THROWS_WITH(rar::road(cnn, x, x, o.percentages({})),
                    Contains("rar::road: percentages must not be empty"));
  CHECK_THROWS_WITH(rar::road(cnn, x.flatten(1), x.flatten(1), opts),
                    Contains("rar::road: input must be images [N, C, H, W], got shape [2, 72]"));
  CHECK_THROWS_WITH(rar::road(cnn, x, torch::randn({2, 3, 6, 6}, torch::kDouble), opts),
                    Contains("rar::road: attributions must be [N, C, H, W] or [N, 1, H, W]"));
  o = opts;
  CHECK_THROWS_WITH(rar::road(cnn, x, x, o.noise(-1)),
                    Contains("rar::road: noise must be finite and >= 0, got -1"));
  o = opts;
  CHECK_THROWS_WITH(rar::road(cnn, x, x, o.noise_draws(torch::zeros({2, 2, 2, 6, 5}))),
                    Contains("rar::road: noise_draws must be floating point of shape "
                             "[2, 2, 2, 6, 6]"));
  const auto all = torch::ones({2, 6, 6}, torch::kBool);
  CHECK_THROWS_WITH(rar::noisy_linear_imputation(x, all),
                    Contains("rar::noisy_linear_imputation: every image must keep at least one "
                             "pixel"));
  CHECK_THROWS_WITH(rar::noisy_linear_imputation(x, all.to(torch::kFloat)),
                    Contains("removed must be a bool mask [N, 1, H, W] or [N, H, W]"));
  const auto half = torch::rand({2, 6, 6}) < 0.5;
  CHECK_THROWS_WITH(
      rar::noisy_linear_imputation(x, half, rar::NoisyImputationOptions().max_iterations(1)),
      Contains("conjugate gradients did not reach the relative residual"));
}

// --- completeness ------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("completeness gap matches Quantus' terms; the check is exact by default",
                   "[faithfulness][completeness]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto attr = ref.tensor("attr").to(dtype);
  const auto opts = rar::CompletenessOptions().target(ref.labels("y"));
  const auto gap = rar::completeness_gap(cnn, x, attr, opts);
  CHECK(faith_diff(gap, ref.tensor("comp.gap.black")) < faith_tol<TestType>());
  auto o = opts;
  CHECK(faith_diff(rar::completeness_gap(cnn, x, attr,
                                         o.perturb_baseline(rar::PerturbBaseline::value(0.25))),
                   ref.tensor("comp.gap.value")) < faith_tol<TestType>());
  // Gradient x input of a nonlinear model is not complete: all fail.
  CHECK(torch::equal(rar::completeness(cnn, x, attr, opts), torch::zeros({3}, torch::kDouble)));
  // A tolerance above |gap| passes: |gap| <= atol.
  o = opts;
  CHECK(torch::equal(
      rar::completeness(cnn, x, attr, o.atol(gap.abs().max().template item<double>() * 1.01)),
      torch::ones({3}, torch::kDouble)));
}

TEST_CASE("completeness holds for a linear model with w * (x - baseline), with output_func",
          "[faithfulness][completeness]") {
  torch::manual_seed(6);
  const auto w = torch::randn({8}, torch::kDouble);
  const FaithLinear model{w};
  const auto x = torch::randn({4, 8}, torch::kDouble);
  const auto y = torch::tensor(int64_t{0});
  const auto attr = w * (x - std::get<0>(x.min(1, true)));
  const auto opts = rar::CompletenessOptions().target(y);
  CHECK(rar::completeness_gap(model, x, attr, opts).abs().max().item<double>() < 1e-12);
  auto o = opts;
  CHECK(torch::equal(rar::completeness(model, x, attr, o.rtol(1e-10)),
                     torch::ones({4}, torch::kDouble)));
  // output_func doubles the change: the gap becomes −Σφ.
  o = opts;
  o.output_func([](const torch::Tensor& d) { return 2 * d; });
  CHECK((rar::completeness_gap(model, x, attr, o) + attr.sum(1)).abs().max().item<double>() <
        1e-12);
  CHECK(torch::equal(rar::completeness(model, x, attr, o), torch::zeros({4}, torch::kDouble)));
  CHECK_THROWS_WITH(rar::completeness(model, x, attr, rar::CompletenessOptions(opts).rtol(-1)),
                    Contains("rar::completeness: rtol and atol must be finite and >= 0"));
  CHECK_THROWS_WITH(rar::completeness(model, x, attr.view({4, 2, 4}), opts),
                    Contains("rar::completeness: input and attributions must have the same shape"));
  auto bad = opts;
  bad.output_func([](const torch::Tensor& d) { return d.sum(); });
  CHECK_THROWS_WITH(
      rar::completeness_gap(model, x, attr, bad),
      Contains("rar::completeness_gap: output_func must return one value per sample"));
}

// --- SSIM and the random-logit test ------------------------------------------------------------

TEST_CASE("ssim matches skimage's algorithm on flattened maps", "[faithfulness][random_logit]") {
  const auto& ref = faith_reference();
  const auto a = ref.tensor("ssim.a"), b = ref.tensor("ssim.b");
  CHECK(faith_diff(rar::ssim(a, b), ref.tensor("ssim.w7")) < 1e-9);
  CHECK(faith_diff(rar::ssim(a, b, 5), ref.tensor("ssim.w5")) < 1e-9);
  CHECK(faith_diff(rar::ssim(a.to(torch::kFloat), b.to(torch::kFloat)), ref.tensor("ssim.w7")) <
        1e-5);
  CHECK((rar::ssim(a, a) - 1).abs().max().item<double>() < 1e-12);
  CHECK_THROWS_WITH(rar::ssim(a, b, 4),
                    Contains("rar::ssim: win_size must be odd and >= 3, got 4"));
  CHECK_THROWS_WITH(rar::ssim(a, b, 21),
                    Contains("rar::ssim: win_size = 21 exceeds the 20 values"));
  CHECK_THROWS_WITH(rar::ssim(a, b.slice(1, 0, 10)),
                    Contains("rar::ssim: a and b must have the same shape"));
}

TEMPLATE_TEST_CASE("random logit matches Quantus' code with the same classes",
                   "[faithfulness][random_logit]", float, double) {
  const auto& ref = faith_reference();
  const auto dtype = rar::test::dtype_of<TestType>();
  auto cnn = faith_cnn(2, dtype);
  const auto x = ref.tensor("x").to(dtype);
  const auto explainer = rar::explain::gradient_x_input();
  const auto opts =
      rar::RandomLogitOptions().target(ref.labels("y")).classes(ref.labels("rl.classes"));
  const double tol = std::is_same_v<TestType, float> ? 1e-4 : 1e-9;
  CHECK(faith_diff(rar::random_logit(cnn, explainer, x, opts), ref.tensor("rl.ssim.plain")) < tol);
  auto o = opts;
  CHECK(faith_diff(rar::random_logit(cnn, explainer, x, o.abs(true)), ref.tensor("rl.ssim.abs")) <
        tol);
}

TEST_CASE("random logit: a class-blind method scores 1, classes are drawn from the others",
          "[faithfulness][random_logit]") {
  const auto& ref = faith_reference();
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto x = ref.tensor("x");
  const auto y = ref.labels("y");
  auto blind = [](FaithCnn&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return in * in;
  };
  CHECK((rar::random_logit(cnn, blind, x, rar::RandomLogitOptions().target(y)) - 1)
            .abs()
            .max()
            .item<double>() < 1e-12);
  // The seeded classes: index ~ U{0, …, C − 2} from the stream (seed, 0), skipping the target.
  std::vector<int64_t> seen;
  auto spy = [&](FaithCnn& m, const torch::Tensor& in, const torch::Tensor& t, bool) {
    seen.insert(seen.end(), t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
    return rar::gradient_x_input(m, in, rar::GradientOptions().target(t));
  };
  const auto seeded = rar::random_logit(cnn, spy, x, rar::RandomLogitOptions().target(y).seed(3));
  REQUIRE(seen.size() == 6);
  at::Generator gen = rar::seeded_generator(3, 0);
  const auto index = torch::randint(0, 4, {3}, gen, torch::kLong);
  const auto expected = index + (index >= y).to(torch::kLong);
  for (int64_t n = 0; n < 3; ++n) {
    CHECK(seen[3 + n] == expected[n].item<int64_t>());
    CHECK(seen[3 + n] != y[n].item<int64_t>());
  }
  const auto explicit_classes =
      rar::random_logit(cnn, rar::explain::gradient_x_input(), x,
                        rar::RandomLogitOptions().target(y).classes(expected).num_classes(5));
  CHECK(torch::equal(seeded, explicit_classes));
  // A custom similarity.
  const auto cosine = [](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::cosine_similarity(a, b, 1);
  };
  CHECK(rar::random_logit(cnn, blind, x, rar::RandomLogitOptions().target(y).similarity(cosine))
            .sub(1)
            .abs()
            .max()
            .item<double>() < 1e-12);
}

TEST_CASE("random logit rejects bad input", "[faithfulness][random_logit][errors]") {
  auto cnn = faith_cnn(2, torch::kDouble);
  const auto x = torch::randn({2, 2, 6, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  const auto explainer = rar::explain::gradient_x_input();
  CHECK_THROWS_WITH(rar::random_logit(cnn, explainer, x, rar::RandomLogitOptions()),
                    Contains("rar::random_logit: a target is required"));
  const auto opts = rar::RandomLogitOptions().target(y);
  auto o = opts;
  CHECK_THROWS_WITH(rar::random_logit(cnn, explainer, x, o.classes(torch::tensor({0, 2}))),
                    Contains("each of classes must differ from its sample's target"));
  o = opts;
  CHECK_THROWS_WITH(
      rar::random_logit(cnn, explainer, x, o.classes(torch::tensor({5, 2}))),
      Contains("rar::random_logit: classes must lie in [0, 5), got values in [2, 5]"));
  o = opts;
  CHECK_THROWS_WITH(rar::random_logit(cnn, explainer, x, o.num_classes(1)),
                    Contains("num_classes must be >= 2"));
  o = opts;
  CHECK_THROWS_WITH(rar::random_logit(cnn, explainer, x, o.win_size(8)),
                    Contains("rar::random_logit: win_size must be odd and >= 3, got 8"));
}
