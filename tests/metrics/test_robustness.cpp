// Robustness metrics: the local Lipschitz estimate, the relative input / output / representation
// stabilities, continuity under translation and input invariance against numpy transcriptions of
// Quantus on a small MLP with the same perturbations, analytic cases (a linear model's saliency is
// constant), the seeded default draws, chunking, the model left untouched, and bad input.

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <rar/explain/explainers.hpp>
#include <rar/metrics/robustness.hpp>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;

namespace {

const rar::test::Reference& rob_reference() {
  static const rar::test::Reference ref(
      rar::test::data_path("localisation_robustness_reference.txt"));
  return ref;
}

/// The MLP of make_localisation_robustness_reference.py with its weights, in `dtype`.
torch::nn::Sequential rob_mlp(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential mlp(nn::Flatten(), nn::Linear(28, 10), nn::Tanh(), nn::Linear(10, 4));
  mlp->to(dtype);
  rob_reference().load_into(*mlp, "mlp");
  mlp->eval();
  return mlp;
}

/// max |a − b| / max(1e-3, |b|) over entries, NaN positions required to agree.
double rob_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return rar::test::nan_aware_rel_diff(a, b, 1e-3);
}

template <class T>
double rob_tol() {
  return std::is_same_v<T, float> ? 2e-3 : 1e-9;
}

rar::PredictionChange rob_mode(const std::string& name) {
  if (name == "keep") return rar::PredictionChange::keep;
  if (name == "nan") return rar::PredictionChange::nan;
  return rar::PredictionChange::skip;
}

}  // namespace

TEMPLATE_TEST_CASE("local Lipschitz estimate matches Quantus on an MLP with the same noise",
                   "[robustness][lipschitz]", float, double) {
  const auto& ref = rob_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto mlp = rob_mlp(dtype);
  const auto x = ref.tensor("rob.input").to(dtype);
  const auto y = ref.labels("rob.target");
  const auto opts =
      rar::LocalLipschitzOptions().nr_samples(6).noise(ref.tensor("lle.noise")).target(y);
  const auto lle = rar::local_lipschitz_estimate(mlp, rar::explain::gradient_x_input(), x, opts);
  CHECK(lle.scalar_type() == torch::kDouble);
  CHECK(lle.device().is_cpu());
  CHECK(lle.sizes() == torch::IntArrayRef{3});
  CHECK(rob_rel_diff(lle, ref.tensor("lle.gxi")) < rob_tol<TestType>());
  CHECK(rob_rel_diff(rar::local_lipschitz_estimate(mlp, rar::explain::saliency(), x, opts),
                     ref.tensor("lle.saliency")) < rob_tol<TestType>());
  auto raw = opts;
  raw.normalise(false).abs(true);
  CHECK(rob_rel_diff(rar::local_lipschitz_estimate(mlp, rar::explain::gradient_x_input(), x, raw),
                     ref.tensor("lle.gxi.raw_abs")) < rob_tol<TestType>());
  // Any chunking of the perturbed rows gives the same numbers.
  for (const int64_t chunk : {1, 4, 7}) {
    auto c = opts;
    CHECK(rob_rel_diff(rar::local_lipschitz_estimate(mlp, rar::explain::gradient_x_input(), x,
                                                     c.internal_batch_size(chunk)),
                       lle) < (std::is_same_v<TestType, float> ? 1e-4 : 1e-12));
  }
}

TEST_CASE("local Lipschitz estimate handles changed predictions as keep, nan and skip",
          "[robustness][lipschitz]") {
  const auto& ref = rob_reference();
  auto mlp = rob_mlp(torch::kDouble);
  const auto x = ref.tensor("rob.input");
  const auto y = ref.labels("rob.target");
  for (const std::string mode : {"keep", "nan", "skip"}) {
    INFO(mode);
    const auto opts = rar::LocalLipschitzOptions()
                          .nr_samples(6)
                          .noise(ref.tensor("lle.noise_big"))
                          .target(y)
                          .prediction_change(rob_mode(mode));
    CHECK(
        rob_rel_diff(rar::local_lipschitz_estimate(mlp, rar::explain::gradient_x_input(), x, opts),
                     ref.tensor("lle.big." + mode)) < 1e-9);
  }
  // The reference has changed predictions for every sample, so nan is all NaN.
  CHECK(ref.tensor("lle.big.changed").sum(0).min().item<double>() >= 1);
}

TEMPLATE_TEST_CASE(
    "relative input, output and representation stability match Quantus with the "
    "same noise",
    "[robustness][relative_stability]", float, double) {
  const auto& ref = rob_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto mlp = rob_mlp(dtype);
  const auto x = ref.tensor("rob.input").to(dtype);
  const auto y = ref.labels("rob.target");
  auto first = mlp[1]->as<torch::nn::Linear>();
  const rar::RepresentationFunction hidden = [first](const torch::Tensor& in) {
    return torch::tanh(first->forward(in.flatten(1)));
  };
  const auto metric = [&](const std::string& which, const rar::RelativeStabilityOptions& o) {
    const auto gxi = rar::explain::gradient_x_input();
    if (which == "input") return rar::relative_input_stability(mlp, gxi, x, o);
    if (which == "output") return rar::relative_output_stability(mlp, gxi, x, o);
    return rar::relative_representation_stability(mlp, gxi, x, o);
  };
  const auto base = rar::RelativeStabilityOptions().nr_samples(5).target(y).representation(hidden);
  for (const std::string which : {"input", "output", "representation"}) {
    for (const std::string mode : {"keep", "nan", "skip"}) {
      INFO(which << " " << mode);
      auto o = base;
      o.noise(ref.tensor("rs.noise_sym")).prediction_change(rob_mode(mode));
      const auto r = metric(which, o);
      CHECK(r.scalar_type() == torch::kDouble);
      CHECK(rob_rel_diff(r, ref.tensor("rs." + which + "." + mode)) < rob_tol<TestType>());
    }
    INFO(which);
    auto small = base;
    small.noise(ref.tensor("rs.noise"));
    CHECK(rob_rel_diff(metric(which, small), ref.tensor("rs." + which + ".small")) <
          rob_tol<TestType>());
    CHECK(rob_rel_diff(metric(which, small.normalise(true).abs(true)),
                       ref.tensor("rs." + which + ".normalise_abs")) < rob_tol<TestType>());
    auto chunked = base;
    chunked.noise(ref.tensor("rs.noise")).internal_batch_size(2);
    CHECK(rob_rel_diff(metric(which, chunked), ref.tensor("rs." + which + ".small")) <
          rob_tol<TestType>());
  }
}

TEMPLATE_TEST_CASE("continuity matches Quantus 0.6 on translated inputs",
                   "[robustness][continuity]", float, double) {
  const auto& ref = rob_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto mlp = rob_mlp(dtype);
  const auto x = ref.tensor("rob.input").to(dtype);
  const auto y = ref.labels("rob.target");
  for (const int64_t steps : {4, 7}) {
    INFO(steps);
    const std::string tag = "cont." + std::to_string(steps);
    const auto opts = rar::ContinuityOptions().nr_steps(steps).target(y);
    const auto c = rar::continuity(mlp, rar::explain::gradient_x_input(), x, opts);
    CHECK(c.scalar_type() == torch::kDouble);
    CHECK(rob_rel_diff(c, ref.tensor(tag)) < rob_tol<TestType>());
    auto raw = opts;
    CHECK(rob_rel_diff(
              rar::continuity(mlp, rar::explain::saliency(), x, raw.normalise(false).abs(false)),
              ref.tensor(tag + ".saliency_raw")) < rob_tol<TestType>());
    auto chunked = opts;
    CHECK(rob_rel_diff(rar::continuity(mlp, rar::explain::gradient_x_input(), x,
                                       chunked.internal_batch_size(5)),
                       ref.tensor(tag)) < rob_tol<TestType>());
  }
  auto nan =
      rar::ContinuityOptions().nr_steps(7).target(y).prediction_change(rar::PredictionChange::nan);
  CHECK(rob_rel_diff(rar::continuity(mlp, rar::explain::gradient_x_input(), x, nan),
                     ref.tensor("cont.7.nan")) < 1e-9);
}

TEST_CASE("continuity shifts the sample's minimum in along the last dimension",
          "[robustness][continuity]") {
  // An explainer that returns the input itself: Φ(τx) − Φ(x) = τx − x, so with normalise and abs
  // off the ratio is ‖τx − x‖₁ / ‖τx − x‖₂, computed here by hand for every shift.
  const auto x = torch::tensor({{{1.0, 2.0, 4.0, 8.0, 16.0}}});  // [1, 1, 5], minimum 1
  const auto identity = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) { return in.clone(); };
  const auto model = [](const torch::Tensor& in) { return in.flatten(1); };
  const auto opts = rar::ContinuityOptions().nr_steps(3).normalise(false).abs(false);
  // W = 5: dx = 11 / 3 = 3, shifts −2, 1, 4.
  double best = 0;
  for (const int64_t t : {-2, 1, 4}) {
    std::vector<double> moved(5, 1.0);
    for (int64_t j = 0; j < 5; ++j)
      if (j - t >= 0 && j - t < 5) moved[j] = x[0][0][j - t].item<double>();
    double l1 = 0, l2 = 0;
    for (int64_t j = 0; j < 5; ++j) {
      const double d = moved[j] - x[0][0][j].item<double>();
      l1 += std::abs(d);
      l2 += d * d;
    }
    best = std::max(best, l1 / (std::sqrt(l2) + 1e-9));
  }
  CHECK(rar::continuity(model, identity, x, opts).item<double>() == Approx(best).epsilon(1e-12));
  // A zero translation (W = 3, T = 7: dx = 1, shifts −2 … 4, one of them 0) scores 0, not
  // round-off / 1e-9.
  const auto y3 = torch::tensor({{{1.0, 2.0, 3.0}}});
  auto zero = opts;
  CHECK(std::isfinite(rar::continuity(model, identity, y3, zero.nr_steps(7)).item<double>()));
}

TEST_CASE(
    "a linear model's saliency is constant: Lipschitz estimate, stabilities and continuity "
    "are 0",
    "[robustness]") {
  auto lin = rar::test::linear_model(6, 3);
  torch::manual_seed(4);
  const auto x = torch::randn({4, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto sal = rar::explain::saliency();
  CHECK(rar::local_lipschitz_estimate(lin, sal, x,
                                      rar::LocalLipschitzOptions().nr_samples(5).target(y))
            .abs()
            .max()
            .item<double>() < 1e-12);
  const auto rs = rar::RelativeStabilityOptions().nr_samples(5).target(y).prediction_change(
      rar::PredictionChange::keep);
  CHECK(rar::relative_input_stability(lin, sal, x, rs).abs().max().item<double>() < 1e-12);
  CHECK(rar::relative_output_stability(lin, sal, x, rs).abs().max().item<double>() < 1e-12);
  CHECK(rar::continuity(lin, sal, x, rar::ContinuityOptions().nr_steps(5).target(y))
            .abs()
            .max()
            .item<double>() < 1e-12);
  // Gradient × input of a linear model: Φ(x′) − Φ(x) = w ⊙ δ, so LLE = max ‖w_y ⊙ δ‖ / ‖δ‖
  // ≤ max |w_y| (no normalisation).
  const auto w = lin->weight.detach();
  const auto lle = rar::local_lipschitz_estimate(
      lin, rar::explain::gradient_x_input(), x,
      rar::LocalLipschitzOptions().nr_samples(20).normalise(false).target(y));
  CHECK((lle <= w.index_select(0, y).abs().amax(1) + 1e-12).all().item<bool>());
  CHECK((lle > 0).all().item<bool>());
}

TEST_CASE("the default noise is drawn from the stream (seed, 0) as one [S, N, ...] draw",
          "[robustness]") {
  auto mlp = rob_mlp(torch::kDouble);
  const auto& ref = rob_reference();
  const auto x = ref.tensor("rob.input");
  const auto y = ref.labels("rob.target");
  const auto gxi = rar::explain::gradient_x_input();
  {
    at::Generator gen = rar::seeded_generator(9, 0);
    const auto noise =
        0.3 + 0.05 * rar::normal_like(gen, torch::empty({4, 3, 1, 4, 7}, torch::kDouble));
    auto o = rar::LocalLipschitzOptions()
                 .nr_samples(4)
                 .perturb_mean(0.3)
                 .perturb_std(0.05)
                 .seed(9)
                 .target(y);
    const auto drawn = rar::local_lipschitz_estimate(mlp, gxi, x, o);
    auto given = o;
    CHECK(torch::equal(drawn, rar::local_lipschitz_estimate(mlp, gxi, x, given.noise(noise))));
    CHECK(!torch::equal(drawn, rar::local_lipschitz_estimate(mlp, gxi, x, o.seed(10))));
  }
  {
    at::Generator gen = rar::seeded_generator(9, 0);
    const auto noise =
        rar::uniform_like(gen, torch::empty({4, 3, 1, 4, 7}, torch::kDouble), 0.02, 0.2);
    auto o = rar::RelativeStabilityOptions().nr_samples(4).seed(9).target(y);
    const auto drawn = rar::relative_input_stability(mlp, gxi, x, o);
    auto given = o;
    CHECK(rob_rel_diff(drawn, rar::relative_input_stability(mlp, gxi, x, given.noise(noise))) == 0);
  }
}

TEMPLATE_TEST_CASE(
    "input invariance: saliency is invariant to a shift absorbed by the first "
    "bias, gradient x input is not",
    "[robustness][input_invariance]", float, double) {
  const auto& ref = rob_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto mlp = rob_mlp(dtype);
  const auto x = ref.tensor("rob.input").to(dtype);
  const auto y = ref.labels("rob.target");
  const rar::test::ModuleState before(*mlp);
  auto shifted = rar::input_shifted_model(mlp, -1.0);
  CHECK(rar::test::ModuleState(*mlp) == before);
  CHECK(rob_rel_diff(shifted[1]->as<torch::nn::Linear>()->bias, ref.tensor("ii.shifted_bias")) <
        (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
  {
    torch::NoGradGuard no_grad;
    CHECK(rar::test::max_rel_diff(shifted->forward(x - 1.0), mlp->forward(x)) <
          (std::is_same_v<TestType, float> ? 1e-5 : 1e-12));
  }
  const auto opts = rar::InputInvarianceOptions().target(y);
  const auto sal = rar::input_invariance(mlp, shifted, rar::explain::saliency(), x, opts);
  CHECK(sal.scalar_type() == torch::kDouble);
  CHECK(torch::equal(sal, ref.tensor("ii.saliency")));
  CHECK(torch::equal(rar::input_invariance(mlp, shifted, rar::explain::gradient_x_input(), x, opts),
                     ref.tensor("ii.gxi")));
  CHECK(rar::test::ModuleState(*mlp) == before);
}

TEST_CASE("input_shifted_model absorbs the shift in a first convolution without padding",
          "[robustness][input_invariance]") {
  torch::manual_seed(8);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3)), torch::nn::Tanh(),
                            torch::nn::Flatten(), torch::nn::Linear(3 * 4 * 4, 2));
  net->to(torch::kDouble);
  const auto x = torch::randn({2, 2, 6, 6}, torch::kDouble);
  auto shifted = rar::input_shifted_model(net, 0.7);
  torch::NoGradGuard no_grad;
  CHECK(rar::test::max_rel_diff(shifted->forward(x + 0.7), net->forward(x)) < 1e-12);
  CHECK(rar::test::max_rel_diff(shifted->forward(x), net->forward(x)) > 1e-3);  // a copy changed
}

TEST_CASE("robustness metrics leave the model's mode and gradients as they were", "[robustness]") {
  auto mlp = rob_mlp(torch::kDouble);
  mlp->train();
  for (auto& p : mlp->parameters()) p.mutable_grad() = torch::ones_like(p);
  const rar::test::ModuleState before(*mlp);
  const auto x = rob_reference().tensor("rob.input");
  const auto y = rob_reference().labels("rob.target");
  const auto gxi = rar::explain::gradient_x_input();
  rar::local_lipschitz_estimate(mlp, gxi, x, rar::LocalLipschitzOptions().nr_samples(2).target(y));
  rar::relative_output_stability(mlp, gxi, x,
                                 rar::RelativeStabilityOptions().nr_samples(2).target(y));
  rar::continuity(mlp, gxi, x, rar::ContinuityOptions().nr_steps(3).target(y));
  CHECK(rar::test::ModuleState(*mlp) == before);
}

TEST_CASE("robustness metrics reject bad input", "[robustness]") {
  auto mlp = rob_mlp(torch::kDouble);
  const auto x = rob_reference().tensor("rob.input");
  const auto y = rob_reference().labels("rob.target");
  const auto sal = rar::explain::saliency();
  CHECK_THROWS_WITH(
      rar::local_lipschitz_estimate(mlp, sal, x, rar::LocalLipschitzOptions().nr_samples(0)),
      Contains("rar::local_lipschitz_estimate") && Contains("nr_samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(
      rar::local_lipschitz_estimate(mlp, sal, x, rar::LocalLipschitzOptions().perturb_std(-1)),
      Contains("rar::local_lipschitz_estimate") && Contains("perturb_std"));
  CHECK_THROWS_WITH(rar::local_lipschitz_estimate(mlp, sal, x,
                                                  rar::LocalLipschitzOptions().nr_samples(2).noise(
                                                      torch::zeros({3, 3, 1, 4, 7}))),
                    Contains("rar::local_lipschitz_estimate") &&
                        Contains("noise must have shape") && Contains("[2, 3, 1, 4, 7]"));
  CHECK_THROWS_WITH(
      rar::relative_input_stability(
          mlp, sal, x, rar::RelativeStabilityOptions().lower_bound(0.3).upper_bound(0.2)),
      Contains("rar::relative_input_stability") && Contains("upper_bound must be larger"));
  CHECK_THROWS_WITH(
      rar::relative_output_stability(mlp, sal, x, rar::RelativeStabilityOptions().eps_min(0)),
      Contains("rar::relative_output_stability") && Contains("eps_min"));
  CHECK_THROWS_WITH(
      rar::relative_representation_stability(mlp, sal, x),
      Contains("rar::relative_representation_stability") && Contains("representation must be set"));
  CHECK_THROWS_WITH(
      rar::continuity(mlp, sal, x, rar::ContinuityOptions().nr_steps(16)),
      Contains("rar::continuity") && Contains("nr_steps must be in [1, 2W + 1] = [1, 15]"));
  CHECK_THROWS_WITH(rar::continuity(mlp, sal, x, rar::ContinuityOptions().internal_batch_size(-1)),
                    Contains("rar::continuity") && Contains("internal_batch_size"));
  CHECK_THROWS_WITH(rar::local_lipschitz_estimate(
                        mlp, sal, x, rar::LocalLipschitzOptions().target(torch::tensor({0, 1}))),
                    Contains("rar::local_lipschitz_estimate") && Contains("target"));
  auto bad = x.clone();
  bad[0][0][0][0] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(rar::continuity(mlp, sal, bad),
                    Contains("rar::continuity") && Contains("finite"));
  CHECK_THROWS_WITH(rar::input_invariance(mlp, mlp, sal, x, rar::InputInvarianceOptions().atol(-1)),
                    Contains("rar::input_invariance") && Contains("atol"));
  torch::nn::Sequential starts_with_norm(torch::nn::LayerNorm(torch::nn::LayerNormOptions({3})),
                                         torch::nn::Linear(3, 2));
  CHECK_THROWS_WITH(rar::input_shifted_model(starts_with_norm, -1.0),
                    Contains("rar::input_shifted_model") && Contains("Linear or a Conv") &&
                        Contains("LayerNorm"));
  torch::nn::Sequential no_bias(torch::nn::Linear(torch::nn::LinearOptions(3, 2).bias(false)));
  CHECK_THROWS_WITH(rar::input_shifted_model(no_bias, -1.0),
                    Contains("rar::input_shifted_model") && Contains("bias"));
  // A method whose output does not match the input's per-row size for the perturbed rows.
  int calls = 0;
  const auto flaky = [&calls](auto&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return ++calls == 1 ? in.clone() : in.flatten(1).narrow(1, 0, 5).clone();
  };
  CHECK_THROWS_WITH(
      rar::local_lipschitz_estimate(mlp, flaky, x, rar::LocalLipschitzOptions().nr_samples(2)),
      Contains("rar::local_lipschitz_estimate") && Contains("28 values per row"));
}
