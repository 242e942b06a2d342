// Bad numbers: NaN and infinity in inputs and baselines are refused by every attribution method,
// attack and loss term, naming the argument; finite inputs at the clip bounds keep every inner
// loop and loss finite; a model that returns NaN makes a loss term raise instead of returning a
// NaN loss. The metrics' own NaN contract (SciPy's) is tested in tests/metrics/test_fuzz.cpp.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

using Catch::Contains;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// A small CNN on [N, 1, 6, 6] images in [0, 1] with softplus (smooth) and ReLU parts.
torch::nn::Sequential small_cnn(uint64_t seed = 3) {
  torch::manual_seed(seed);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 3, 3).padding(1)),
                            torch::nn::Softplus(), torch::nn::Flatten(),
                            torch::nn::Linear(108, 8), torch::nn::ReLU(), torch::nn::Linear(8, 3));
  net->to(torch::kDouble);
  return net;
}

torch::Tensor images(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::rand({n, 1, 6, 6}, torch::kDouble);
}

// Every entry point that takes an input batch, as (name in the error, call).
std::vector<std::pair<std::string, std::function<void(const torch::Tensor&)>>> entry_points(
    torch::nn::Sequential& net) {
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(4));
  return {
      {"rar::integrated_gradients", [&, y](const torch::Tensor& x) {
         rar::integrated_gradients(net, x, rar::IGOptions().steps(4).target(y));
       }},
      {"rar::saliency", [&, y](const torch::Tensor& x) {
         rar::saliency(net, x, rar::GradientOptions().target(y));
       }},
      {"rar::deeplift", [&, y](const torch::Tensor& x) {
         rar::deeplift(net, x, rar::DeepLiftOptions().target(y));
       }},
      {"rar::smooth_grad", [&, y](const torch::Tensor& x) {
         rar::smooth_grad(net, rar::explain::saliency(), x,
                          rar::SmoothGradOptions().samples(2).target(y));
       }},
      {"rar::pgd_attack", [&, y](const torch::Tensor& x) {
         rar::pgd_attack(net, x, y, rar::PGDOptions().epsilon(0.1).steps(2).step_size(0.05));
       }},
      {"rar::attribution_attack", [&, y, smooth, ig](const torch::Tensor& x) mutable {
         rar::attribution_attack(net, smooth, ig, x, y,
                                 rar::AttributionAttackOptions().k(5).iterations(2));
       }},
      {"rar::cross_entropy", [&, y](const torch::Tensor& x) { rar::cross_entropy()(net, x, y); }},
      {"rar::ig_norm", [&, y](const torch::Tensor& x) {
         rar::ig_norm(rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(1))(net, x, y);
       }},
      {"rar::ig_sum_norm", [&, y](const torch::Tensor& x) {
         rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2).attack_steps(1))(net, x, y);
       }},
      {"rar::adversarial", [&, y](const torch::Tensor& x) {
         rar::adversarial(rar::PGDOptions().epsilon(0.1).steps(1))(net, x, y);
       }},
      {"rar::input_gradient_norm", [&, y](const torch::Tensor& x) {
         rar::input_gradient_norm()(net, x, y);
       }},
      {"rar::ssr", [&, y](const torch::Tensor& x) { rar::ssr()(net, x, y); }},
  };
}

}  // namespace

TEST_CASE("fuzz: NaN and infinity in an input are refused by name by every method, attack and term",
          "[bad-numbers][fuzz]") {
  auto net = small_cnn();
  std::mt19937 rng(5);
  for (auto& [fn, call] : entry_points(net)) {
    // The clean batch runs.
    REQUIRE_NOTHROW(call(images(4, 1)));
    for (const double bad : {kNaN, kInf, -kInf}) {
      auto x = images(4, 2);
      const int64_t at = static_cast<int64_t>(rng() % static_cast<uint32_t>(x.numel()));
      x.view(-1)[at] = bad;
      INFO(fn << " with " << bad << " at flat index " << at);
      try {
        call(x);
        FAIL("accepted a non-finite input");
      } catch (const c10::Error& e) {
        const std::string what = e.what_without_backtrace();
        CHECK_THAT(what, Contains(fn + ": ") && Contains("must be finite, but 1 of its 144 values") &&
                             Contains("the first is in sample " + std::to_string(at / 36)));
        CHECK_THAT(what, Contains(std::isnan(bad) ? "(1 NaN, 0 infinite)" : "(0 NaN, 1 infinite)"));
      }
    }
  }
}

TEST_CASE("NaN in a baseline is refused by IG and DeepLIFT, naming the baseline", "[bad-numbers]") {
  auto net = small_cnn();
  const auto x = images(2, 3);
  auto baseline = torch::zeros({1, 1, 6, 6}, torch::kDouble);
  baseline[0][0][2][3] = kNaN;
  CHECK_THROWS_WITH(rar::integrated_gradients(net, x, rar::IGOptions().baseline(baseline)),
                    Contains("rar::integrated_gradients: baseline must be finite"));
  CHECK_THROWS_WITH(rar::deeplift(net, x, rar::DeepLiftOptions().baseline(baseline)),
                    Contains("rar::deeplift: baseline must be finite"));
}

TEST_CASE("fuzz: at the clip bounds, with flat models and in both balls the losses and attacks stay "
          "finite",
          "[bad-numbers][fuzz]") {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 8; ++trial) {
    auto net = small_cnn(static_cast<uint64_t>(trial));
    if (trial % 4 == 3) {
      // A flat model: zero gradients everywhere (sign steps of 0, L2 steps of 0/0).
      torch::NoGradGuard no_grad;
      for (auto& p : net->parameters()) p.zero_();
    }
    // Inputs exactly at the bounds: all 0, all 1, or a random mix of both.
    torch::Tensor x;
    switch (trial % 3) {
      case 0: x = torch::zeros({4, 1, 6, 6}, torch::kDouble); break;
      case 1: x = torch::ones({4, 1, 6, 6}, torch::kDouble); break;
      default: x = (images(4, static_cast<uint64_t>(trial)) > 0.5).to(torch::kDouble);
    }
    const auto y = torch::tensor({int64_t{0}, int64_t{1}, int64_t{2}, static_cast<int64_t>(rng() % 3)}, torch::kLong);
    const rar::Norm norm = trial % 2 == 0 ? rar::Norm::linf : rar::Norm::l2;
    INFO("trial " << trial << (norm == rar::Norm::l2 ? " (L2)" : " (Linf)"));
    const auto ball = rar::BallOptions().epsilon(0.1).norm(norm);
    auto finite = [](const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); };
    const auto ig_norm = rar::ig_norm(rar::IGNormOptions().ball(ball).steps(4).inner_stride(2).attack_steps(3).seed(1));
    const auto ig_sum = rar::ig_sum_norm(rar::IGSumNormOptions().ball(ball).steps(4).inner_stride(2).attack_steps(3).seed(1));
    const auto madry = rar::adversarial(rar::PGDOptions().ball(ball).steps(3).step_size(0.05));
    for (const auto& loss : {ig_norm(net, x, y), ig_sum(net, x, y), madry(net, x, y),
                             rar::ssr()(net, x, y), rar::input_gradient_norm()(net, x, y)})
      CHECK(finite(loss));
    const auto x_adv = rar::pgd_attack(net, x, y, rar::PGDOptions().ball(ball).steps(3).step_size(0.05));
    CHECK(finite(x_adv));
    auto smooth = rar::smooth_surrogate(net, 10.0);
    const auto r = rar::attribution_attack(
        net, smooth, rar::explain::integrated_gradients(rar::IGOptions().steps(4)), x, y,
        rar::AttributionAttackOptions().ball(ball).k(5).iterations(3).step_size(0.05));
    CHECK(finite(r.adversarial));
    CHECK(finite(r.adversarial_map));
    CHECK(finite(r.topk_intersection));
  }
}

TEST_CASE("a model that returns NaN makes a loss term raise instead of returning a NaN loss",
          "[bad-numbers]") {
  auto net = small_cnn();
  {
    torch::NoGradGuard no_grad;
    net->parameters().back()[0] = kNaN;  // the bias of class 0: diverged parameters
  }
  const auto x = images(4, 4);
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  CHECK_THROWS_WITH(rar::cross_entropy()(net, x, y),
                    Contains("rar loss term: the loss is nan for finite inputs x of shape [4, 1, 6, 6]") &&
                        Contains("are its parameters finite?"));
  CHECK_THROWS_WITH((rar::cross_entropy() + rar::ig_norm(rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(1)))(net, x, y),
                    Contains("the loss is nan"));
}

TEST_CASE("inputs outside [clip_min, clip_max] are refused by every function with a clip range, "
          "never clamped",
          "[bad-numbers][clip]") {
  // Pixels given as 0-255 against the default range [0, 1]: the first projection would cap
  // them at 1, so every function that takes a clip range refuses them, naming the range.
  auto net = small_cnn();
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto x = images(4, 6) * 255;
  const auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(4));
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"rar::pgd_attack", [&] { rar::pgd_attack(net, x, y); }},
      {"rar::attribution_attack", [&] { rar::attribution_attack(net, smooth, ig, x, y); }},
      {"rar::max_sensitivity",
       [&] {
         rar::max_sensitivity(net, rar::explain::saliency(), x,
                              rar::MaxSensitivityOptions().clip_min(0).clip_max(1));
       }},
      {"rar::ig_norm", [&] { rar::ig_norm(rar::IGNormOptions().steps(4).inner_stride(2))(net, x, y); }},
      {"rar::ig_sum_norm", [&] { rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2))(net, x, y); }},
      {"rar::adversarial", [&] { rar::adversarial()(net, x, y); }},
      {"rar::input_gradient_norm",
       [&] { rar::input_gradient_norm(rar::InputGradientOptions().clip_min(0).clip_max(1))(net, x, y); }},
      {"rar::art", [&] { rar::art()(net, x, y); }},
      {"rar::attribution_alignment", [&] { rar::attribution_alignment()(net, x, y); }},
      {"rar::distributional_ig", [&] { rar::distributional_ig()(net, x, y); }},
  };
  for (const auto& [fn, call] : calls) {
    INFO(fn);
    CHECK_THROWS_WITH(call(), Contains(fn + ": ") &&
                                  Contains("must lie in the data range [clip_min, clip_max] = [0, 1]") &&
                                  Contains("nothing is clamped silently"));
  }
  // The same data with its own range is accepted.
  CHECK(torch::isfinite(rar::pgd_attack(net, x, y, rar::PGDOptions().clip_max(255).epsilon(25.5)))
            .all()
            .item<bool>());
}

TEST_CASE("a model that fails inside IG's path batch is reported in the user's shapes",
          "[errors]") {
  // The two cases: an image batch without its channel dimension, and a model returning
  // [N, 1, classes]. LibTorch alone would name the internal path batch (8 images x 16 steps).
  torch::manual_seed(2);
  torch::nn::Sequential cnn(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 3).padding(1)),
                            torch::nn::Flatten(), torch::nn::Linear(2 * 28 * 28, 10));
  const auto x = torch::rand({8, 28, 28});
  const auto y = torch::zeros({8}, torch::kLong);
  const auto opts = rar::IGOptions().steps(16).target(y);
  try {
    rar::integrated_gradients(cnn, x, opts);
    FAIL("accepted a batch without its channel dimension");
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    CHECK_THAT(what, Contains("rar::integrated_gradients: the model fails on the input itself "
                              "(shape [8, 28, 28]): "));
    CHECK_THAT(what, !Contains("128"));  // no internal batch size in the message
  }
  auto unsqueezing = [&](const torch::Tensor& in) {
    return rar::call_model(cnn, in.unsqueeze(1)).unsqueeze(1);  // [N, 1, 10]
  };
  CHECK_THROWS_WITH(rar::integrated_gradients(unsqueezing, x, opts),
                    Contains("rar::integrated_gradients: the model must return one row of scores "
                             "per sample, [N, classes]; for the input of shape [8, 28, 28] (N = 8) "
                             "it returns shape [8, 1, 10]"));
  // A model that works on the input but not on more rows names the path batch in the user's terms.
  auto at_most_8_rows = [&](const torch::Tensor& in) {
    TORCH_CHECK(in.size(0) <= 8, "this model takes at most 8 rows");
    return rar::call_model(cnn, in.unsqueeze(1));
  };
  CHECK_THROWS_WITH(rar::integrated_gradients(at_most_8_rows, x, opts),
                    Contains("rar::integrated_gradients: the model runs on the input of shape "
                             "[8, 28, 28] but fails on a batch of 128 path points (8 samples x 16 "
                             "steps, shape [128, 28, 28]): this model takes at most 8 rows"));
}

TEST_CASE("a model that fails inside a perturbation or sampling batch is reported in the user's "
          "shapes",
          "[errors]") {
  // Every method that runs the model on many copies of the input names the user's input, what
  // the model does with it, and the internal batch, not only LibTorch's message about a batch
  // the user never made.
  torch::manual_seed(3);
  torch::nn::Sequential cnn(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 2, 3).padding(1)),
                            torch::nn::Flatten(), torch::nn::Linear(2 * 6 * 6, 4));
  const auto x = torch::rand({4, 6, 6});
  const auto y = torch::zeros({4}, torch::kLong);
  auto at_most_4_rows = [&](const torch::Tensor& in) {
    TORCH_CHECK(in.size(0) <= 4, "this model takes at most 4 rows, got ", in.size(0));
    return rar::call_model(cnn, in.unsqueeze(1));
  };
  const torch::Tensor attr = torch::rand({4, 6, 6});
  const std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"rar::occlusion",
       [&] { rar::occlusion(at_most_4_rows, x, rar::OcclusionOptions().window({2, 2}).target(y)); }},
      {"rar::feature_ablation",
       [&] { rar::feature_ablation(at_most_4_rows, x, rar::FeatureAblationOptions().target(y)); }},
      {"rar::shapley_value_sampling",
       [&] {
         rar::shapley_value_sampling(
             at_most_4_rows, x,
             rar::ShapleyOptions().target(y).feature_mask(
                 torch::arange(36).view({1, 6, 6}).div(9, "floor")));
       }},
      {"rar::kernel_shap", [&] { rar::kernel_shap(at_most_4_rows, x, rar::KernelShapOptions().target(y)); }},
      {"rar::lime", [&] { rar::lime(at_most_4_rows, x, rar::LimeOptions().target(y)); }},
      {"rar::gradient_shap",
       [&] {
         rar::gradient_shap(at_most_4_rows, x,
                            rar::GradientShapOptions().target(y).baselines(torch::zeros({2, 6, 6})));
       }},
      {"rar::infidelity",
       [&] { rar::infidelity(at_most_4_rows, x, attr, rar::InfidelityOptions().target(y)); }},
      {"rar::deletion_curve",
       [&] {
         rar::deletion_curve(at_most_4_rows, x, attr,
                             rar::PerturbationCurveOptions().target(y).features_per_step(6));
       }},
  };
  for (const auto& [fn, call] : calls) {
    INFO(fn);
    try {
      call();
      FAIL("the model's failure on the internal batch was not reported");
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      // "... fails on a batch of 144 perturbed copies ..." or, where the input and its baseline
      // are scored together, "... fails on the input and its baseline stacked (shape [8, 6, 6])".
      CHECK_THAT(what, Contains(fn + ": the model runs on the input of shape [4, 6, 6] but fails "
                                     "on ") &&
                           Contains("this model takes at most 4 rows"));
      CHECK_THAT(what, Contains("a batch of ") || Contains("its baseline stacked"));
    }
  }
}
