// One explainer interface: every factory gives the method's own result, honours the call's
// target and create_graph, and every tool accepts every explainer.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/residual.hpp"

#include <string>
#include <thread>
#include <vector>

using rar::test::max_rel_diff;
using rar::test::residual_model;
using rar::test::residual_reference;

TEST_CASE("each explainer factory gives its method's attributions for the call's target",
          "[explain]") {
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  const auto ig_opts = rar::IGOptions().steps(16).method(rar::Quadrature::riemann_right);
  CHECK(max_rel_diff(rar::explain::integrated_gradients(ig_opts)(net, x, y, false),
                     rar::integrated_gradients(net, x, rar::IGOptions(ig_opts).target(y))) == 0);
  CHECK(max_rel_diff(rar::explain::saliency()(net, x, y, false), ref.tensor("residual.saliency")) < 1e-12);
  CHECK(max_rel_diff(rar::explain::gradient_x_input()(net, x, y, false),
                     ref.tensor("residual.saliency") * x) < 1e-12);
  CHECK(max_rel_diff(rar::explain::guided_backprop()(net, x, y, false),
                     ref.tensor("residual.guided_backprop")) < 1e-12);
  CHECK(max_rel_diff(rar::explain::deconvolution()(net, x, y, false),
                     ref.tensor("residual.deconvolution")) < 1e-12);
  CHECK(max_rel_diff(rar::explain::deeplift()(net, x, y, false),
                     ref.tensor("residual.deeplift.zero")) < 1e-9);
  CHECK(max_rel_diff(rar::explain::deeplift(rar::DeepLiftOptions().baseline(ref.tensor("residual.baseline")))(
                         net, x, y, false),
                     ref.tensor("residual.deeplift.base")) < 1e-9);
  // An undefined call target falls back to the options' target.
  CHECK(max_rel_diff(rar::explain::saliency(rar::GradientOptions().target(y))(net, x, torch::Tensor(), false),
                     ref.tensor("residual.saliency")) < 1e-12);
  // The factories are explainers for every kind of model.
  static_assert(rar::is_explainer_v<rar::explain::IntegratedGradients, rar::test::Residual>);
  static_assert(rar::is_explainer_v<decltype(rar::explain::deeplift()), torch::nn::Sequential>);
  static_assert(!rar::is_explainer_v<int, torch::nn::Sequential>);
}

TEST_CASE("explainers honour create_graph, and IG's graph_steps apply only to it", "[explain]") {
  auto net = residual_model();
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input").requires_grad_(true);
  const auto y = ref.labels("residual.target");
  auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(32)).graph_steps(8);
  const auto with_graph = ig(smooth, x, y, true);
  CHECK(with_graph.requires_grad());
  CHECK(max_rel_diff(with_graph, rar::integrated_gradients(smooth, x, rar::IGOptions().steps(8).target(y))) < 1e-12);
  CHECK(max_rel_diff(ig(smooth, x, y, false),
                     rar::integrated_gradients(smooth, x, rar::IGOptions().steps(32).target(y))) == 0);
  CHECK_FALSE(ig(smooth, x.detach(), y, false).requires_grad());
  // Guided backprop's explainer is not differentiable: its modified backward pass keeps a graph
  // through the surrogate, but not one whose derivative is the map's (tests/examples).
  CHECK_THROWS_WITH(rar::explain::guided_backprop()(smooth, x, y, true),
                    Catch::Contains("rar::explain::guided_backprop: guided backprop's map comes "
                                    "from a modified backward pass"));
  CHECK_THROWS_WITH(rar::explain::deeplift()(net, x, y, true),
                    Catch::Contains("rar::explain::deeplift: DeepLIFT's rescale multipliers are "
                                    "not differentiable"));
  CHECK_THROWS_WITH(rar::explain::integrated_gradients().graph_steps(-1),
                    Catch::Contains("graph_steps must be >= 0, got -1"));
}

TEST_CASE("smooth_grad takes any explainer, and SmoothGrad is itself an explainer", "[explain][smoothgrad]") {
  auto net = residual_model();
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  const auto opts = rar::SmoothGradOptions().samples(6).stddev(0.1).seed(3);
  // SmoothGrad by hand, the reference for both explainers: the mean of the maps at the noisy
  // copies x + 0.1·n_s, the draws n_s of rar::seeded_generator(3) in order, one per sample.
  const auto by_hand = [&](const auto& map) {
    at::Generator gen = rar::seeded_generator(3);
    torch::Tensor sum = torch::zeros_like(x);
    for (int s = 0; s < 6; ++s) sum = sum + map(x + 0.1 * rar::normal_like(gen, x));
    return sum / 6;
  };
  const auto expected_sal = by_hand([&](const torch::Tensor& in) {
    return rar::saliency(net, in, rar::GradientOptions().target(y));
  });
  const auto expected_ig = by_hand([&](const torch::Tensor& in) {
    return rar::integrated_gradients(net, in, rar::IGOptions().steps(8).target(y));
  });
  CHECK(max_rel_diff(rar::smooth_grad(net, rar::explain::saliency(), x, rar::SmoothGradOptions(opts).target(y)),
                     expected_sal) < 1e-12);
  CHECK(max_rel_diff(rar::smooth_grad(net, rar::explain::integrated_gradients(rar::IGOptions().steps(8)), x,
                                      rar::SmoothGradOptions(opts).target(y)),
                     expected_ig) < 1e-12);
  auto smooth_sal = rar::explain::smooth_grad(rar::explain::saliency(), opts);
  CHECK(max_rel_diff(smooth_sal(net, x, y, false), expected_sal) < 1e-12);
  // SmoothGrad by hand: the mean of saliency at the seeded noisy copies is not the plain map.
  CHECK(max_rel_diff(expected_sal, ref.tensor("residual.saliency")) > 1e-4);
  // A nested explainer goes through a tool: max-sensitivity of SmoothGrad-of-guided-backprop.
  auto smooth_guided = rar::explain::smooth_grad(rar::explain::guided_backprop(), opts);
  const auto s = smooth_guided(net, x, y, false);
  CHECK(s.sizes() == x.sizes());
  CHECK(std::isfinite(s.abs().sum().item<double>()));
}

TEST_CASE("the attribution attack runs with IG and with guided backprop on a residual model",
          "[explain][attack]") {
  auto net = residual_model();
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto& ref = residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = net->forward(x).argmax(1);  // the model's own labels, so every sample is attacked
  const auto opts = rar::AttributionAttackOptions()
                        .k(12)
                        .epsilon(0.3)
                        .step_size(0.05)
                        .iterations(10)
                        .clip_min(-10)
                        .clip_max(10);
  auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(16)).graph_steps(8);
  // Guided backprop is not a differentiable explainer: the attack refuses it as its gradient,
  // and measures it while following the surrogate's IG (as the examples do).
  auto guided = rar::explain::guided_backprop();
  CHECK_THROWS_WITH(rar::attribution_attack(net, smooth, guided, x, y, opts),
                    Catch::Contains("rar::attribution_attack: guided backprop's map comes from a "
                                    "modified backward pass"));
  const auto guided_via_ig = [&](auto& m, const torch::Tensor& in, const torch::Tensor& t,
                                 bool create_graph) {
    return create_graph ? ig(m, in, t, true) : guided(m, in, t, false);
  };
  for (int which = 0; which < 2; ++which) {
    INFO((which == 0 ? "IG" : "guided backprop"));
    const rar::AttackResult r =
        which == 0 ? rar::attribution_attack(net, smooth, ig, x, y, opts)
                   : rar::attribution_attack(net, smooth, guided_via_ig, x, y, opts);
    // The reported maps are the explainer's maps of the real model.
    const auto expected_map = rar::attribution_map(which == 0 ? ig(net, x, y, false) : guided(net, x, y, false));
    CHECK(max_rel_diff(r.original_map, expected_map) < 1e-12);
    CHECK((r.adversarial - x).abs().max().item<double>() <= 0.3 + 1e-12);
    CHECK(r.prediction_kept.all().item<bool>());
    // The attack moved the map: the mean top-k intersection dropped below 1.
    CHECK(r.topk_intersection.mean().item<double>() < 1.0);
  }
}

TEST_CASE("IG, DeepLIFT, the metrics and the attack from 4 threads on one model equal a serial run",
          "[explain][threads]") {
  // A service explaining requests on several threads with one shared model (docs/guide.md,
  // "Threads"): each thread runs the whole pipeline on its own request.
  auto net = residual_model();
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto& ref = residual_reference();
  const auto x0 = ref.tensor("residual.input");
  const auto y0 = ref.labels("residual.target");
  struct Out {
    torch::Tensor ig, deeplift, kendall, spearman, topk, adversarial, attacked_map;
  };
  const auto ig = rar::explain::integrated_gradients(
                      rar::IGOptions().steps(12).method(rar::Quadrature::riemann_right))
                      .graph_steps(6);
  auto pipeline = [&](int request) {
    const auto x = (x0 + 0.05 * request).contiguous();  // each request its own input
    Out o;
    o.ig = ig(net, x, y0, false);
    o.deeplift = rar::explain::deeplift()(net, x, y0, false);
    o.kendall = rar::kendall_tau(o.ig, o.deeplift);
    o.spearman = rar::spearman_rho(o.ig, o.deeplift);
    o.topk = rar::topk_intersection(o.ig.abs(), o.deeplift.abs(), 10);
    const auto r = rar::attribution_attack(
        net, smooth, ig, x, y0,
        rar::AttributionAttackOptions()
            .k(10)
            .epsilon(0.05)
            .step_size(0.01)
            .iterations(3)
            .clip_min(-100)  // the reference inputs are standardized, not in [0, 1]
            .clip_max(100)
            .seed(static_cast<uint64_t>(request)));
    o.adversarial = r.adversarial;
    o.attacked_map = r.adversarial_map;
    return o;
  };
  constexpr int kThreads = 4, kRounds = 3;
  std::vector<Out> serial;
  for (int t = 0; t < kThreads; ++t) serial.push_back(pipeline(t));
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Out> parallel(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        try {
          parallel[t] = pipeline(t);
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
      INFO("round " << round << ", thread " << t << ": " << errors[t]);
      REQUIRE(errors[t].empty());
      CHECK(parallel[t].ig.equal(serial[t].ig));
      CHECK(parallel[t].deeplift.equal(serial[t].deeplift));
      CHECK(parallel[t].kendall.equal(serial[t].kendall));
      CHECK(parallel[t].spearman.equal(serial[t].spearman));
      CHECK(parallel[t].topk.equal(serial[t].topk));
      CHECK(parallel[t].adversarial.equal(serial[t].adversarial));
      CHECK(parallel[t].attacked_map.equal(serial[t].attacked_map));
    }
  }
  // The requests differ, so equal results are not an accident of identical inputs.
  CHECK(!serial[0].ig.equal(serial[1].ig));
}
