// Perturbation attribution: occlusion, feature ablation and Shapley value sampling against
// Captum 0.7 (tests/data/make_perturbation_reference.py) on a small CNN and on the residual
// network, analytic cases, exact Shapley values by enumeration, batching, seeds, devices, the
// explainers and bad input.

#include <rar/attribution/perturbation.hpp>
#include <rar/attribution/shapley_value_sampling.hpp>
#include <rar/explain/perturbation.hpp>
#include <rar/attack/attribution_attack.hpp>
#include <rar/metrics/attribution_map.hpp>
#include <rar/metrics/sensitivity.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include "support/models.hpp"
#include "support/reference.hpp"
#include "support/residual.hpp"

#include <algorithm>
#include <functional>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& perturbation_captum() {
  static const rar::test::Reference ref(rar::test::data_path("perturbation_reference.txt"));
  return ref;
}

// The CNN of make_perturbation_reference.py: [N, 2, 9, 11] -> [N, 4].
torch::nn::Sequential cnn(torch::Dtype dtype = torch::kDouble) {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 3, 3)), nn::ReLU(),
                     nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(36, 5),
                     nn::Tanh(), nn::Linear(5, 4));
  net->to(dtype);
  perturbation_captum().load_into(*net, "cnn");
  net->eval();
  return net;
}

// A target as the reference script gives it: -1 = the per-sample targets, else one class.
torch::Tensor target_of(const std::string& model, int64_t target) {
  if (target >= 0) return torch::tensor(target, torch::kLong);
  return model == "cnn" ? perturbation_captum().labels("cnn.target")
                        : rar::test::residual_reference().labels("residual.target");
}

// A reference model as a callable (the CNN is a Sequential, the residual network a module of
// the user's), its input and its tensor baseline (of the "base" and "shared" cases).
struct Setup {
  std::function<torch::Tensor(const torch::Tensor&)> model;
  torch::Tensor input, baseline;
};

Setup setup(const std::string& model, torch::Dtype dtype) {
  if (model == "cnn") {
    auto net = cnn(dtype);
    return {[net](const torch::Tensor& x) { return net.ptr()->forward(x); },
            perturbation_captum().tensor("cnn.input").to(dtype), perturbation_captum().tensor("cnn.baseline").to(dtype)};
  }
  const auto& res = rar::test::residual_reference();
  auto net = rar::test::residual_model(dtype);
  return {[net](const torch::Tensor& x) { return net.ptr()->forward(x); },
          res.tensor("residual.input").to(dtype), res.tensor("residual.shared_baseline").to(dtype)};
}

struct OcclusionCase {
  std::string model, name;
  std::vector<int64_t> window, strides;
  double baseline;
  bool baseline_tensor;
  int64_t target;
};

const std::vector<OcclusionCase>& occlusion_cases() {
  static const std::vector<OcclusionCase> cases = {
      {"cnn", "w133", {1, 3, 3}, {}, 0.0, false, -1},
      {"cnn", "w244.s122.b05", {2, 4, 4}, {1, 2, 2}, 0.5, false, -1},
      {"cnn", "w145.s134.t1", {1, 4, 5}, {1, 3, 4}, 0.0, false, 1},
      {"cnn", "w233.s2", {2, 3, 3}, {2}, 0.0, false, -1},
      {"cnn", "full", {2, 9, 11}, {}, 0.0, false, -1},
      {"cnn", "w123.s112.base", {1, 2, 3}, {1, 1, 2}, 0.0, true, -1},
      {"cnn", "w133.s133", {1, 3, 3}, {1, 3, 3}, 0.0, false, -1},
      {"residual", "w233.s2", {2, 3, 3}, {2}, 0.0, false, -1},
      {"residual", "w124.s113", {1, 2, 4}, {1, 1, 3}, 0.0, false, -1},
      {"residual", "w133.s133.shared", {1, 3, 3}, {1, 3, 3}, 0.0, true, -1},
  };
  return cases;
}

rar::OcclusionOptions occlusion_options(const OcclusionCase& c, const Setup& s) {
  auto o = rar::OcclusionOptions(c.window)
               .strides(c.strides)
               .baseline(c.baseline)
               .target(target_of(c.model, c.target));
  if (c.baseline_tensor) o.baseline_tensor(s.baseline);
  return o;
}

struct AblationCase {
  std::string model, name;
  bool mask;
  double baseline;
  bool baseline_tensor;
  int64_t target;
};

const std::vector<AblationCase>& ablation_cases() {
  static const std::vector<AblationCase> cases = {
      {"cnn", "default", false, 0.0, false, -1},
      {"cnn", "blocks.b025.t2", true, 0.25, false, 2},
      {"cnn", "per_sample", true, 0.0, false, -1},
      {"cnn", "sparse_2d", true, 0.0, false, -1},
      {"cnn", "occ_blocks", true, 0.0, false, -1},
      {"cnn", "per_sample.base", true, 0.0, true, -1},
      {"residual", "blocks", true, 0.0, false, -1},
      {"residual", "per_sample.t1", true, 0.1, false, 1},
  };
  return cases;
}

rar::FeatureAblationOptions ablation_options(const AblationCase& c, const Setup& s) {
  auto o = rar::FeatureAblationOptions().baseline(c.baseline).target(target_of(c.model, c.target));
  if (c.mask) o.feature_mask(perturbation_captum().labels(c.model + ".ablation." + c.name + ".mask"));
  if (c.baseline_tensor) o.baseline_tensor(s.baseline);
  return o;
}

// Exact Shapley values of the players 0 .. G-1 of `mask` (shared or per sample) by the subset
// formula, and the standard deviation of one permutation's marginal contribution (over all G!
// orders), per sample: [N, G] each.
struct Exact {
  torch::Tensor values, stddev;
};

template <class Model>
Exact exact_shapley(Model& model, const torch::Tensor& x, const torch::Tensor& mask,
                    double baseline, const torch::Tensor& target, int64_t players) {
  torch::NoGradGuard no_grad;
  const int64_t coalitions = int64_t{1} << players;
  std::vector<int64_t> aligned(static_cast<size_t>(x.dim() - mask.dim()), 1);
  aligned.insert(aligned.end(), mask.sizes().begin(), mask.sizes().end());
  const torch::Tensor m = mask.reshape(aligned);
  std::vector<torch::Tensor> value;  // value[c]: score of coalition c, [N]
  for (int64_t c = 0; c < coalitions; ++c) {
    std::vector<int64_t> member;
    for (int64_t g = 0; g < players; ++g) member.push_back((c >> g) & 1);
    const torch::Tensor in = torch::tensor(member, torch::kLong).index_select(0, m.flatten());
    const torch::Tensor present = in.view(m.sizes()).to(torch::kBool);
    const torch::Tensor out =
        rar::call_model(model, torch::where(present, x, torch::full({}, baseline, x.options())));
    value.push_back(rar::score::logit(out, target));
  }
  const int64_t n = x.size(0);
  torch::Tensor phi = torch::zeros({n, players}, torch::kDouble);
  for (int64_t g = 0; g < players; ++g) {
    for (int64_t c = 0; c < coalitions; ++c) {
      if ((c >> g) & 1) continue;
      int64_t k = 0;
      for (int64_t j = 0; j < players; ++j) k += (c >> j) & 1;
      const double w = std::tgamma(k + 1.0) * std::tgamma(players - k + 0.0) / std::tgamma(players + 1.0);
      phi.select(1, g).add_(w * (value[static_cast<size_t>(c | (int64_t{1} << g))] -
                                 value[static_cast<size_t>(c)]).to(torch::kDouble));
    }
  }
  // Over every order: the mean (must equal phi) and the variance of the marginals.
  std::vector<int64_t> order(static_cast<size_t>(players));
  std::iota(order.begin(), order.end(), 0);
  torch::Tensor sum = torch::zeros({n, players}, torch::kDouble);
  torch::Tensor sum_sq = torch::zeros({n, players}, torch::kDouble);
  int64_t orders = 0;
  do {
    int64_t c = 0;
    for (const int64_t g : order) {
      const int64_t next = c | (int64_t{1} << g);
      const torch::Tensor gain = (value[static_cast<size_t>(next)] - value[static_cast<size_t>(c)])
                                     .to(torch::kDouble);
      sum.select(1, g).add_(gain);
      sum_sq.select(1, g).add_(gain * gain);
      c = next;
    }
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  const torch::Tensor mean = sum / static_cast<double>(orders);
  CHECK(max_rel_diff(mean, phi) < 1e-12);
  return {phi, (sum_sq / static_cast<double>(orders) - mean * mean).clamp_min(0).sqrt()};
}

// Per-player values [N, G] spread over the elements of `mask` (shared or per sample): the
// input's shape.
torch::Tensor spread(const torch::Tensor& values, const torch::Tensor& mask,
                     const torch::Tensor& input) {
  std::vector<int64_t> aligned(static_cast<size_t>(input.dim() - mask.dim()), 1);
  aligned.insert(aligned.end(), mask.sizes().begin(), mask.sizes().end());
  const torch::Tensor m = mask.reshape(aligned);
  const int64_t n = input.size(0);
  const torch::Tensor index = m.reshape({m.size(0), -1}).expand({n, -1});
  std::vector<int64_t> shape = aligned;
  shape[0] = n;
  return values.gather(1, index).view(shape).expand(input.sizes());
}

}  // namespace

TEMPLATE_TEST_CASE("occlusion matches Captum's Occlusion on a CNN and a residual network",
                   "[perturbation][occlusion][captum]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  const bool exact = std::is_same<TestType, double>::value;
  double worst_float32 = 0, worst_sum = 0;
  for (const auto& c : occlusion_cases()) {
    INFO(c.model << " " << c.name);
    const Setup s = setup(c.model, dtype);
    const std::string key = c.model + ".occ." + c.name;
    const auto attr = rar::occlusion(s.model, s.input, occlusion_options(c, s));
    CHECK(attr.scalar_type() == dtype);
    CHECK(attr.sizes() == s.input.sizes());
    // Captum's own result is float32; its float64 sums divided by the window counts are
    // Captum's occlusion in float64.
    const double vs_float32 = max_rel_diff(attr, perturbation_captum().tensor(key));
    const double vs_sum =
        max_rel_diff(attr, perturbation_captum().tensor(key + ".sum") / perturbation_captum().tensor(key + ".count"));
    CHECK(vs_float32 < (exact ? 1e-6 : 1e-4));
    CHECK(vs_sum < (exact ? 1e-9 : rar::test::tolerance<TestType>()));
    worst_float32 = std::max(worst_float32, vs_float32);
    worst_sum = std::max(worst_sum, vs_sum);
  }
  WARN("occlusion, max deviation from Captum's float32 result " << worst_float32
       << ", from its float64 sums / counts " << worst_sum);
}

TEMPLATE_TEST_CASE("feature ablation matches Captum's FeatureAblation with shared, per-sample, "
                   "broadcast and sparse masks",
                   "[perturbation][ablation][captum]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  double worst = 0;
  for (const auto& c : ablation_cases()) {
    INFO(c.model << " " << c.name);
    const Setup s = setup(c.model, dtype);
    const auto attr = rar::feature_ablation(s.model, s.input, ablation_options(c, s));
    CHECK(attr.scalar_type() == dtype);
    CHECK(attr.sizes() == s.input.sizes());
    const double deviation = max_rel_diff(attr, perturbation_captum().tensor(c.model + ".ablation." + c.name));
    CHECK(deviation <
          (std::is_same<TestType, double>::value ? 1e-9 : rar::test::tolerance<TestType>()));
    worst = std::max(worst, deviation);
  }
  WARN("feature ablation, max deviation from Captum " << worst);
}

TEST_CASE("occlusion with non-overlapping windows is feature ablation with block groups",
          "[perturbation][occlusion][ablation]") {
  const Setup s = setup("cnn", torch::kDouble);
  const auto y = target_of("cnn", -1);
  const auto occ = rar::occlusion(s.model, s.input, rar::OcclusionOptions({1, 3, 3}).strides({1, 3, 3}).target(y));
  const auto ablation = rar::feature_ablation(
      s.model, s.input,
      rar::FeatureAblationOptions().feature_mask(perturbation_captum().labels("cnn.ablation.occ_blocks.mask")).target(y));
  CHECK(max_rel_diff(occ, ablation) < 1e-14);
  CHECK(max_rel_diff(occ, perturbation_captum().tensor("cnn.ablation.occ_blocks")) < 1e-9);
}

TEST_CASE("a window over the whole input gives every element F(x) - F(baseline)",
          "[perturbation][occlusion]") {
  auto net = rar::test::residual_model();  // the module itself, not a callable around it
  const auto x = rar::test::residual_reference().tensor("residual.input");
  const auto y = target_of("residual", -1);
  const auto attr = rar::occlusion(net, x, rar::OcclusionOptions({2, 6, 6}).baseline(0.3).target(y));
  torch::NoGradGuard no_grad;
  const auto drop = rar::score::logit(net->forward(x), y) -
                    rar::score::logit(net->forward(torch::full_like(x, 0.3)), y);
  CHECK(max_rel_diff(attr, drop.view({-1, 1, 1, 1}).expand_as(x)) < 1e-14);
}

TEMPLATE_TEST_CASE("occlusion and ablation of a linear model have their closed forms",
                   "[perturbation][analytic]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(7, 3, dtype);
  torch::manual_seed(8);
  const auto x = torch::randn({5, 7}, dtype);
  const auto y = torch::tensor({0, 2, 1, 1, 0});
  const double b = 0.4;
  const auto w = model->weight.detach().index_select(0, y);  // [N, D]
  const auto contribution = w * (x - b);                       // w_i (x_i - b)
  // Window 1: A_i = w_i (x_i - b).
  const auto one = rar::occlusion(model, x, rar::OcclusionOptions({1}).baseline(b).target(y));
  CHECK(max_rel_diff(one, contribution) < rar::test::tolerance<TestType>());
  // Window 3, stride 2: ⌈(7 − 3)/2⌉ + 1 = 3 windows [0, 3), [2, 5), [4, 7); A_i = the mean of
  // the sums of the windows covering i.
  const auto three =
      rar::occlusion(model, x, rar::OcclusionOptions({3}).strides({2}).baseline(b).target(y));
  const auto s0 = contribution.slice(1, 0, 3).sum(1, true);
  const auto s1 = contribution.slice(1, 2, 5).sum(1, true);
  const auto s2 = contribution.slice(1, 4, 7).sum(1, true);
  const auto expected =
      torch::cat({s0, s0, (s0 + s1) / 2, s1, (s1 + s2) / 2, s2, s2}, 1);
  CHECK(max_rel_diff(three, expected) < rar::test::tolerance<TestType>());
  // Window 4, stride 2 on 7 elements: positions 0, 2, 4 (the last cut to [4, 7)).
  const auto four =
      rar::occlusion(model, x, rar::OcclusionOptions({4}).strides({2}).baseline(b).target(y));
  const auto t0 = contribution.slice(1, 0, 4).sum(1, true);
  const auto t1 = contribution.slice(1, 2, 6).sum(1, true);
  const auto t2 = contribution.slice(1, 4, 7).sum(1, true);
  CHECK(max_rel_diff(four, torch::cat({t0, t0, (t0 + t1) / 2, (t0 + t1) / 2,
                                       (t1 + t2) / 2, (t1 + t2) / 2, t2}, 1)) <
        rar::test::tolerance<TestType>());
  // Groups {0, 1, 2}, {3}, {4, 5, 6} (ids 7, -1, 2): every element gets its group's sum.
  const auto mask = torch::tensor({7, 7, 7, -1, 2, 2, 2});
  const auto grouped = rar::feature_ablation(
      model, x, rar::FeatureAblationOptions().feature_mask(mask).baseline(b).target(y));
  const auto g0 = contribution.slice(1, 0, 3).sum(1, true);
  const auto g2 = contribution.slice(1, 4, 7).sum(1, true);
  CHECK(max_rel_diff(grouped, torch::cat({g0, g0, g0, contribution.slice(1, 3, 4), g2, g2, g2}, 1)) <
        rar::test::tolerance<TestType>());
  // A linear model's marginal contributions do not depend on the order: Shapley value
  // sampling is exact with any number of samples.
  const auto shapley = rar::shapley_value_sampling(
      model, x, rar::ShapleyOptions().feature_mask(mask).baseline(b).target(y).samples(3));
  CHECK(max_rel_diff(shapley, grouped) < rar::test::tolerance<TestType>());
}

TEST_CASE("a model with output [N] is explained without a target; undefined targets with "
          "[N, C] outputs explain the predicted class",
          "[perturbation][target]") {
  auto square = [](const torch::Tensor& x) { return (x * x).sum(1); };
  torch::manual_seed(9);
  const auto x = torch::randn({4, 6}, torch::kDouble);
  const auto attr = rar::occlusion(square, x, rar::OcclusionOptions({1}).baseline(0.5));
  CHECK(max_rel_diff(attr, x * x - 0.25) < 1e-14);
  const auto ablation = rar::feature_ablation(square, x, rar::FeatureAblationOptions().baseline(0.5));
  CHECK(max_rel_diff(ablation, x * x - 0.25) < 1e-14);
  const auto shapley = rar::shapley_value_sampling(square, x, rar::ShapleyOptions().baseline(0.5));
  CHECK(max_rel_diff(shapley, x * x - 0.25) < 1e-13);

  const Setup s = setup("cnn", torch::kDouble);
  torch::Tensor predicted;
  {
    torch::NoGradGuard no_grad;
    predicted = s.model(s.input).argmax(1);
  }
  const auto opts = rar::OcclusionOptions({1, 3, 3});
  CHECK(rar::occlusion(s.model, s.input, opts)
            .equal(rar::occlusion(s.model, s.input, rar::OcclusionOptions(opts).target(predicted))));
  CHECK(rar::feature_ablation(s.model, s.input)
            .equal(rar::feature_ablation(s.model, s.input, rar::FeatureAblationOptions().target(predicted))));
  // A 0-dim target applies to every sample.
  const auto all_one = rar::occlusion(s.model, s.input, rar::OcclusionOptions(opts).target(torch::tensor(1)));
  CHECK(all_one.equal(
      rar::occlusion(s.model, s.input, rar::OcclusionOptions(opts).target(torch::ones({3}, torch::kLong)))));
}

TEST_CASE("Shapley value sampling replays Captum's orders; exact Shapley values by enumeration "
          "match Captum's ShapleyValues",
          "[perturbation][shapley][captum]") {
  struct Case {
    std::string model, name;
    double baseline;
    bool mask;
  };
  double worst_replay = 0, worst_exact = 0;
  for (const Case& c : {Case{"cnn", "quadrants", 0.0, true}, Case{"cnn", "default.b02", 0.2, false},
                        Case{"residual", "per_sample", 0.0, true}}) {
    INFO(c.model << " " << c.name);
    const Setup s = setup(c.model, torch::kDouble);
    const std::string key = c.model + ".shapley." + c.name;
    const auto y = target_of(c.model, -1);
    auto options = rar::ShapleyOptions().baseline(c.baseline).target(y);
    if (c.mask) options.feature_mask(perturbation_captum().labels(key + ".mask"));
    const auto perms = perturbation_captum().labels(key + ".perms");
    options.samples(perms.size(0));
    const auto attr =
        rar::detail::shapley_value_sampling_with("test", s.model, s.input, options, perms);
    // Captum accumulates in float32.
    const double replay = max_rel_diff(attr, perturbation_captum().tensor(key));
    CHECK(replay < 1e-6);
    worst_replay = std::max(worst_replay, replay);
    if (perturbation_captum().has(key + ".exact")) {
      const auto mask = options.feature_mask();
      const int64_t players = mask.max().item<int64_t>() + 1;
      const Exact exact = exact_shapley(s.model, s.input, mask, c.baseline, y, players);
      const double deviation =
          max_rel_diff(spread(exact.values, mask, s.input), perturbation_captum().tensor(key + ".exact"));
      CHECK(deviation < 1e-6);
      worst_exact = std::max(worst_exact, deviation);
    }
  }
  WARN("Shapley value sampling with Captum's orders, max deviation " << worst_replay
       << "; exact Shapley values by enumeration vs Captum's ShapleyValues " << worst_exact);
}

TEST_CASE("Shapley value sampling converges to the exact Shapley values within its standard "
          "error and is efficient",
          "[perturbation][shapley]") {
  struct Case {
    std::string model, mask;
    int64_t samples;
  };
  for (const Case& c : {Case{"cnn", "cnn.shapley.quadrants.mask", 2000},
                        Case{"residual", "residual.shapley.per_sample.mask", 1000}}) {
    INFO(c.model);
    const Setup s = setup(c.model, torch::kDouble);
    const auto y = target_of(c.model, -1);
    const auto mask = perturbation_captum().labels(c.mask);
    const int64_t players = mask.max().item<int64_t>() + 1;
    const Exact exact = exact_shapley(s.model, s.input, mask, 0.0, y, players);
    const auto estimate = rar::shapley_value_sampling(
        s.model, s.input, rar::ShapleyOptions().feature_mask(mask).target(y).samples(c.samples).seed(11));
    const auto error = (estimate - spread(exact.values, mask, s.input)).abs();
    const auto bound = 4.5 * spread(exact.stddev, mask, s.input) / std::sqrt(double(c.samples)) + 1e-12;
    CHECK((error <= bound).all().item<bool>());
    WARN(c.model << ": Shapley value sampling, " << c.samples << " orders: max |error| "
                 << error.max().item<double>() << ", max |error| / (standard error) "
                 << (error / (bound - 1e-12) * 4.5).max().item<double>());
    CHECK((error > 0).any().item<bool>());  // it did sample
    // Efficiency: the players' values sum to F(x) − F(baseline).
    torch::NoGradGuard no_grad;
    const auto drop = rar::score::logit(s.model(s.input), y) -
                      rar::score::logit(s.model(torch::zeros_like(s.input)), y);
    // One element per (sample, player): the exact values' layout gathered back.
    torch::Tensor per_player = torch::zeros({s.input.size(0), players}, torch::kDouble);
    const auto flat_mask = mask.expand(s.input.sizes()).reshape({s.input.size(0), -1});
    const auto flat = estimate.reshape({s.input.size(0), -1});
    for (int64_t n = 0; n < s.input.size(0); ++n) {
      for (int64_t g = 0; g < players; ++g) {
        const auto where = (flat_mask[n] == g).nonzero();
        if (where.numel() > 0) per_player[n][g] = flat[n][where[0][0].item<int64_t>()];
      }
    }
    CHECK(max_rel_diff(per_player.sum(1), drop) < 1e-12);
  }
}

TEST_CASE("Shapley value sampling is reproducible from its seed and independent of batching",
          "[perturbation][shapley]") {
  const Setup s = setup("cnn", torch::kDouble);
  const auto y = target_of("cnn", -1);
  const auto options = rar::ShapleyOptions().samples(4).target(y).seed(5);
  const auto a = rar::shapley_value_sampling(s.model, s.input, options);
  CHECK(a.equal(rar::shapley_value_sampling(s.model, s.input, options)));
  CHECK(max_rel_diff(rar::shapley_value_sampling(s.model, s.input,
                                                 rar::ShapleyOptions(options).perturbations_per_eval(1)),
                     a) < 1e-13);
  CHECK(max_rel_diff(rar::shapley_value_sampling(s.model, s.input,
                                                 rar::ShapleyOptions(options).perturbations_per_eval(7)),
                     a) < 1e-13);
  CHECK(max_rel_diff(rar::shapley_value_sampling(s.model, s.input, rar::ShapleyOptions(options).seed(6)),
                     a) > 1e-3);
  // Every element its own player: the attributions sum to F(x) − F(baseline).
  torch::NoGradGuard no_grad;
  const auto drop = rar::score::logit(s.model(s.input), y) -
                    rar::score::logit(s.model(torch::zeros_like(s.input)), y);
  CHECK(max_rel_diff(a.flatten(1).sum(1), drop) < 1e-12);
}

TEST_CASE("perturbation methods give the same result in every chunking and leave the model "
          "untouched",
          "[perturbation][batching]") {
  auto net = cnn();
  const auto x = perturbation_captum().tensor("cnn.input");
  const auto y = target_of("cnn", -1);
  const rar::test::ModuleState before(*net);
  const auto occ = rar::OcclusionOptions({1, 3, 3}).strides({1, 2, 2}).target(y);
  const auto a = rar::occlusion(net, x, occ);
  const auto ablation = rar::FeatureAblationOptions().target(y);
  const auto b = rar::feature_ablation(net, x, ablation);
  for (int64_t per_eval : {1, 5, 1000}) {
    CHECK(max_rel_diff(rar::occlusion(net, x, rar::OcclusionOptions(occ).perturbations_per_eval(per_eval)), a) < 1e-14);
    CHECK(max_rel_diff(rar::feature_ablation(net, x, rar::FeatureAblationOptions(ablation).perturbations_per_eval(per_eval)), b) < 1e-14);
  }
  // One sample at a time gives each sample's rows of the batched result.
  for (int64_t n = 0; n < x.size(0); ++n) {
    const auto xn = x.slice(0, n, n + 1);
    CHECK(max_rel_diff(rar::occlusion(net, xn, rar::OcclusionOptions(occ).target(y.slice(0, n, n + 1))),
                       a.slice(0, n, n + 1)) < 1e-14);
  }
  CHECK(before == rar::test::ModuleState(*net));
  // A custom score: the log-probability of the target.
  const auto log_p = rar::occlusion(net, x, rar::OcclusionOptions(occ).score(rar::score::log_softmax));
  CHECK(max_rel_diff(log_p, a) > 1e-6);
}

TEST_CASE("perturbation explainers take the call's target, refuse create_graph and work in "
          "max_sensitivity",
          "[perturbation][explain]") {
  auto net = cnn();
  const auto x = perturbation_captum().tensor("cnn.input");
  const auto y = target_of("cnn", -1);
  auto occ = rar::explain::occlusion(rar::OcclusionOptions({2, 3, 3}).strides({2}));
  auto ablation = rar::explain::feature_ablation();
  auto shapley = rar::explain::shapley_value_sampling(
      rar::ShapleyOptions().samples(3).feature_mask(perturbation_captum().labels("cnn.shapley.quadrants.mask")));
  static_assert(rar::is_explainer_v<decltype(occ), torch::nn::Sequential>);
  static_assert(rar::is_explainer_v<decltype(ablation), torch::nn::Sequential>);
  static_assert(rar::is_explainer_v<decltype(shapley), torch::nn::Sequential>);
  CHECK(occ(net, x, y, false).equal(rar::occlusion(net, x, rar::OcclusionOptions(occ.options()).target(y))));
  CHECK(ablation(net, x, y, false).equal(rar::feature_ablation(net, x, rar::FeatureAblationOptions().target(y))));
  CHECK(shapley(net, x, y, false).equal(
      rar::shapley_value_sampling(net, x, rar::ShapleyOptions(shapley.options()).target(y))));
  CHECK(max_rel_diff(occ(net, x, y, false), perturbation_captum().tensor("cnn.occ.w233.s2")) < 1e-6);
  using Catch::Contains;
  CHECK_THROWS_WITH(occ(net, x, y, true), Contains("rar::explain::occlusion: a perturbation map is a "
                                                   "difference of forward passes, not differentiable"));
  CHECK_THROWS_WITH(ablation(net, x, y, true), Contains("rar::explain::feature_ablation"));
  CHECK_THROWS_WITH(shapley(net, x, y, true), Contains("rar::explain::shapley_value_sampling"));

  const auto options = rar::MaxSensitivityOptions().radius(0.05).samples(3).seed(2);
  const auto sens = rar::max_sensitivity(net, occ, x, y, options);
  auto by_hand = [&](torch::nn::Sequential& m, const torch::Tensor& in, const torch::Tensor& t,
                     bool) {
    return rar::occlusion(m, in, rar::OcclusionOptions({2, 3, 3}).strides({2}).target(t));
  };
  CHECK(sens.equal(rar::max_sensitivity(net, by_hand, x, y, options)));
  CHECK((sens > 0).all().item<bool>());
  CHECK(torch::isfinite(sens).all().item<bool>());
}

TEST_CASE("the attribution attack measures with a perturbation explainer (random_sign)",
          "[perturbation][explain][attack]") {
  auto net = cnn();
  const auto x = perturbation_captum().tensor("cnn.input");  // in [0, 1]
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
  auto occ = rar::explain::occlusion(rar::OcclusionOptions({2, 3, 3}).strides({2}));
  const auto r = rar::attribution_attack(
      net, net, occ, x, y,
      rar::AttributionAttackOptions().kind(rar::AttackKind::random_sign).k(20).epsilon(0.05)
          .step_size(0.05).iterations(2));
  CHECK(r.original_map.equal(rar::attribution_map(
      rar::occlusion(net, x, rar::OcclusionOptions({2, 3, 3}).strides({2}).target(y)))));
  CHECK(r.prediction_kept.all().item<bool>());
  CHECK((r.topk_intersection >= 0).all().item<bool>());
  CHECK((r.topk_intersection <= 1).all().item<bool>());
  // The adversarial map is the occlusion map of the returned input.
  CHECK(max_rel_diff(r.adversarial_map,
                     rar::attribution_map(rar::occlusion(
                         net, r.adversarial, rar::OcclusionOptions({2, 3, 3}).strides({2}).target(y)))) <
        1e-12);
}

TEST_CASE("perturbation methods reject bad input with messages naming the argument",
          "[perturbation][errors]") {
  auto net = cnn();
  const auto x = perturbation_captum().tensor("cnn.input");  // [3, 2, 9, 11]
  const auto y = target_of("cnn", -1);
  using Catch::Contains;
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({3, 3}).target(y)),
                    Contains("rar::occlusion: window has 2 entries but input has 3 non-batch "
                             "dimensions (input [3, 2, 9, 11])"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions().target(y)),
                    Contains("rar::occlusion: window has 0 entries"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 10, 3}).target(y)),
                    Contains("rar::occlusion: window [1, 10, 3] does not fit the input [3, 2, 9, 11]: "
                             "dimension 2 has size 9, window extent 10"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 0, 3}).target(y)),
                    Contains("window extent 0"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).strides({1, 4, 1}).target(y)),
                    Contains("rar::occlusion: stride 4 exceeds the window extent 3 in dimension 2"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).strides({1, 2}).target(y)),
                    Contains("rar::occlusion: strides has 2 entries but input has 3 non-batch dimensions"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).strides({0}).target(y)),
                    Contains("rar::occlusion: strides must be >= 1, got [0, 0, 0]"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).target(torch::tensor({2, 0, 4}))),
                    Contains("rar::occlusion: target class indices must lie in [0, 4), got values in "
                             "[0, 4] (the model has 4 outputs)"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).target(torch::tensor({2, 0}))),
                    Contains("rar::occlusion: target must be 0-dim or of shape [3]"));
  CHECK_THROWS_WITH(rar::occlusion(net, x, rar::OcclusionOptions({1, 3, 3}).perturbations_per_eval(-1)),
                    Contains("rar::occlusion: perturbations_per_eval must be >= 0"));
  CHECK_THROWS_WITH(rar::occlusion(net, x.to(torch::kLong), rar::OcclusionOptions({1, 3, 3})),
                    Contains("rar::occlusion: input must be float32 or float64, got Long"));
  CHECK_THROWS_WITH(rar::feature_ablation(net, x, rar::FeatureAblationOptions().feature_mask(
                                                      torch::zeros({1, 3, 9, 11}, torch::kLong))),
                    Contains("rar::feature_ablation: feature_mask of shape [1, 3, 9, 11] does not "
                             "broadcast to the input's shape [3, 2, 9, 11]"));
  CHECK_THROWS_WITH(rar::feature_ablation(net, x, rar::FeatureAblationOptions().feature_mask(
                                                      torch::zeros({2, 2, 9, 11}, torch::kLong))),
                    Contains("feature_mask of shape [2, 2, 9, 11] does not broadcast"));
  CHECK_THROWS_WITH(rar::feature_ablation(net, x, rar::FeatureAblationOptions().feature_mask(
                                                      torch::zeros({1, 2, 9, 11}))),
                    Contains("rar::feature_ablation: feature_mask must hold integer group ids, got Float"));
  CHECK_THROWS_WITH(rar::feature_ablation(net, x, rar::FeatureAblationOptions().baseline_tensor(
                                                      torch::zeros({2, 9, 10}, torch::kDouble))),
                    Contains("rar::feature_ablation: baseline of shape [2, 9, 10] does not broadcast"));
  CHECK_THROWS_WITH(rar::shapley_value_sampling(net, x, rar::ShapleyOptions().samples(0)),
                    Contains("rar::shapley_value_sampling: samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::shapley_value_sampling(net, x, rar::ShapleyOptions().target(torch::tensor(7))),
                    Contains("rar::shapley_value_sampling: target class indices must lie in [0, 4)"));
  CHECK_THROWS_WITH(rar::shapley_value_sampling(net, x, rar::ShapleyOptions().feature_mask(
                                                            torch::zeros({9, 10}, torch::kLong))),
                    Contains("rar::shapley_value_sampling: feature_mask of shape [9, 10] does not broadcast"));
}

TEST_CASE("perturbation methods on CUDA match the CPU", "[perturbation][cuda]") {
  RAR_REQUIRE_CUDA();
  auto net = cnn();
  const auto x = perturbation_captum().tensor("cnn.input");
  const auto y = target_of("cnn", -1);
  const auto mask = perturbation_captum().labels("cnn.ablation.per_sample.mask");
  const auto occ = rar::OcclusionOptions({2, 4, 4}).strides({1, 2, 2}).baseline(0.5);
  const auto ablation = rar::FeatureAblationOptions().feature_mask(mask);
  const auto shapley = rar::ShapleyOptions().samples(5).seed(3);
  const auto cpu_occ = rar::occlusion(net, x, rar::OcclusionOptions(occ).target(y));
  const auto cpu_ablation = rar::feature_ablation(net, x, rar::FeatureAblationOptions(ablation).target(y));
  const auto cpu_shapley = rar::shapley_value_sampling(net, x, rar::ShapleyOptions(shapley).target(y));
  net->to(torch::kCUDA);
  const auto xc = x.cuda();
  const auto yc = y.cuda();
  const auto gpu_occ = rar::occlusion(net, xc, rar::OcclusionOptions(occ).target(yc));
  CHECK(gpu_occ.device().is_cuda());
  CHECK(max_rel_diff(gpu_occ, cpu_occ) < 1e-10);
  CHECK(max_rel_diff(rar::feature_ablation(net, xc, rar::FeatureAblationOptions().feature_mask(mask.cuda()).target(yc)),
                     cpu_ablation) < 1e-10);
  CHECK(max_rel_diff(rar::shapley_value_sampling(net, xc, rar::ShapleyOptions(shapley).target(yc)),
                     cpu_shapley) < 1e-10);
  CHECK(max_rel_diff(gpu_occ, perturbation_captum().tensor("cnn.occ.w244.s122.b05")) < 1e-6);
  net->to(torch::kCPU);
}
