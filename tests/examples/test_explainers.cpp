// The examples' `--explainer` table and explainers: names round-trip, each explainer gives the
// library method's map, DeepLIFT and guided backprop are attacked through the surrogate's IG, and
// guided backprop is refused on a leaky network.

#include "support/experiment.hpp"

#include <catch2/catch.hpp>

using namespace rar::examples;

namespace {

struct Fixture {
  Net net{nullptr};
  torch::Tensor x, y;
  explicit Fixture(double leaky_slope = 0.0) {
    NetConfig c;
    c.conv1 = 3;
    c.conv2 = 4;
    c.fc = 8;
    c.leaky_slope = leaky_slope;
    torch::manual_seed(4);
    net = Net(c);
    net->to(torch::kDouble);
    net->eval();
    x = torch::rand({3, 1, 28, 28}, torch::kDouble);
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
};

ExplainerConfig config(Explainer kind) {
  ExplainerConfig c;
  c.kind = kind;
  c.ig_steps = 12;
  c.graph_ig_steps = 4;
  c.smoothgrad_samples = 3;
  c.seed = 9;
  return c;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace

TEST_CASE("the explainer names round-trip and an unknown one names the choices",
          "[examples][explainers]") {
  const std::vector<std::string> names = explainer_names();
  CHECK(names == std::vector<std::string>{"ig", "saliency", "deeplift", "smoothgrad",
                                          "guided-backprop", "gradient-x-input", "gradient-shap",
                                          "occlusion", "kernel-shap", "lime", "expected-gradients",
                                          "idgi", "blur-ig", "guided-ig"});
  for (const auto& name : names) CHECK(explainer_name(parse_explainer(name)) == name);
  CHECK(explainer_title(Explainer::deeplift) == "DeepLIFT");
  CHECK(explainer_title(Explainer::kernel_shap) == "KernelSHAP");
  CHECK_THROWS_WITH(parse_explainer("shap"),
                    "unknown explainer 'shap' (expected ig, saliency, deeplift, smoothgrad, "
                    "guided-backprop, gradient-x-input, gradient-shap, occlusion, kernel-shap, "
                    "lime, expected-gradients, idgi, blur-ig or guided-ig)");
  // The maps that cannot be differentiated are measured while the attack follows IG.
  for (const auto e : {Explainer::deeplift, Explainer::occlusion, Explainer::kernel_shap, Explainer::lime,
                       Explainer::guided_ig})
    CHECK_FALSE(explainer_is_differentiable(e));
  for (const auto e : {Explainer::ig, Explainer::saliency, Explainer::gradient_shap, Explainer::gradient_x_input,
                       Explainer::expected_gradients, Explainer::idgi, Explainer::blur_ig})
    CHECK(explainer_is_differentiable(e));
  CHECK(method_names() == std::vector<std::string>{"natural", "madry", "ig-norm", "ig-sum-norm",
                                                    "ig-sum-norm-fast", "input-grad", "ssr", "art", "alignment",
                                                    "distributional"});
  for (const auto method : all_methods()) CHECK(parse_method(method_name(method)) == method);
  CHECK(method_title(Method::distributional) == "DISTRIBUTIONAL");
  CHECK_THROWS_WITH(parse_method("bogus"),
                    "unknown method 'bogus' (expected natural, madry, ig-norm, ig-sum-norm, "
                    "ig-sum-norm-fast, input-grad, ssr, art, alignment or distributional)");
  CHECK((parse_method_list("ssr,natural") == std::vector<Method>{Method::ssr, Method::natural}));
  CHECK_THROWS_WITH(parse_method_list("art,art"), "method 'art' is listed twice");
}

TEST_CASE("each explainer measures its library method and gives the attack a differentiable map",
          "[examples][explainers]") {
  Fixture f;
  auto surrogate = rar::smooth_surrogate(f.net, 10.0);
  const auto ig_opts = rar::IGOptions().target(f.y).method(rar::Quadrature::riemann_right);
  const auto grad_opts = rar::GradientOptions().target(f.y);
  const torch::Tensor measured[] = {
      rar::integrated_gradients(f.net, f.x, rar::IGOptions(ig_opts).steps(12)),
      rar::saliency(f.net, f.x, grad_opts),
      rar::deeplift(f.net, f.x, rar::DeepLiftOptions().target(f.y)),
      rar::smooth_grad(f.net, rar::explain::saliency(), f.x,
                       rar::SmoothGradOptions().samples(3).seed(9).target(f.y)),
      rar::guided_backprop(f.net, f.x, grad_opts)};
  const Explainer kinds[] = {Explainer::ig, Explainer::saliency, Explainer::deeplift,
                             Explainer::smoothgrad, Explainer::guided_backprop};
  for (size_t i = 0; i < std::size(kinds); ++i) {
    INFO(explainer_name(kinds[i]));
    const NetExplainer explainer = make_explainer(config(kinds[i]), f.net->config());
    CHECK(max_abs_diff(explainer(f.net, f.x, f.y, false), measured[i]) < 1e-12);
    const auto xs = f.x.clone().requires_grad_(true);
    const auto map = explainer(surrogate, xs, f.y, true);
    REQUIRE(map.requires_grad());
    const auto g = torch::autograd::grad({map.abs().sum()}, {xs})[0];
    CHECK(g.abs().sum().item<double>() > 0);
  }
  // DeepLIFT's attack map is the surrogate's IG with the graph's points.
  const auto deeplift = make_explainer(config(Explainer::deeplift), f.net->config());
  CHECK(max_abs_diff(deeplift(surrogate, f.x, f.y, true),
                     rar::integrated_gradients(surrogate, f.x, rar::IGOptions(ig_opts).steps(4))) <
        1e-12);
}

TEST_CASE("the attribution attack reports the measured explainer's maps for every explainer",
          "[examples][explainers]") {
  Fixture f;
  auto surrogate = rar::smooth_surrogate(f.net, 10.0);
  const auto opts = rar::AttributionAttackOptions().k(20).epsilon(0.1).iterations(2);
  for (const auto& name : explainer_names()) {
    INFO(name);
    const NetExplainer explainer = make_explainer(config(parse_explainer(name)), f.net->config());
    const auto r = rar::attribution_attack(f.net, surrogate, explainer, f.x, f.y, opts);
    CHECK(max_abs_diff(r.original_map, rar::attribution_map(explainer(f.net, f.x, f.y, false))) <
          1e-12);
    CHECK((r.adversarial - f.x).abs().max().item<double>() <= 0.1 + 1e-12);
  }
}

TEST_CASE("guided backprop's own map gradient fails the attack's gradient check, so the examples "
          "attack it through the surrogate's IG",
          "[examples][explainers]") {
  // Its map comes from a modified backward pass; autograd's derivative of it is not the map's.
  // Wrapped in a lambda (which the library takes to be differentiable) the attack's gradient
  // check finds that out; the library's explainer says so itself (its trait).
  Fixture f;
  auto surrogate = rar::smooth_surrogate(f.net, 10.0);
  const auto opts = rar::AttributionAttackOptions().k(20).epsilon(0.1).iterations(2);
  const auto guided = [](auto& m, const torch::Tensor& in, const torch::Tensor& t, bool graph) {
    return rar::guided_backprop(m, in, rar::GradientOptions().target(t).create_graph(graph));
  };
  CHECK_THROWS_WITH(rar::attribution_attack(f.net, surrogate, guided, f.x, f.y, opts),
                    Catch::Contains("the surrogate's map is not differentiated correctly"));
  static_assert(!rar::is_differentiable_explainer_v<decltype(rar::explain::guided_backprop())>);
  CHECK_THROWS_WITH(
      rar::attribution_attack(f.net, surrogate, rar::explain::guided_backprop(), f.x, f.y, opts),
      Catch::Contains("guided backprop's map comes from a modified backward pass"));
  CHECK_FALSE(explainer_is_differentiable(Explainer::guided_backprop));
  const NetExplainer explainer = make_explainer(config(Explainer::guided_backprop), f.net->config());
  CHECK_NOTHROW(rar::attribution_attack(f.net, surrogate, explainer, f.x, f.y, opts));
}

TEST_CASE("guided backprop is refused on a leaky network, whose map would be the gradient",
          "[examples][explainers]") {
  Fixture f(0.1);
  CHECK_THROWS_WITH(make_explainer(config(Explainer::guided_backprop), f.net->config()),
                    Catch::Contains("--explainer guided-backprop: this network's activations are "
                                    "leaky ReLUs (slope 0.1)"));
  CHECK_NOTHROW(make_explainer(config(Explainer::deeplift), f.net->config()));
}
