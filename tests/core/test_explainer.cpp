// The explainer contract (rar/core/explainer.hpp, rar/explain/explainer.hpp): the
// differentiable trait of every rar::explain explainer, and the one call path of the tools,
// which refuses create_graph for a non-differentiable explainer and checks the map's shape.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

using Catch::Contains;

namespace {

template <class E>
constexpr bool diff_v = rar::is_differentiable_explainer_v<E>;

// A user's explainer class that says it is not differentiable, and counts its calls.
struct Thresholded {
  static constexpr bool differentiable = false;
  static constexpr const char* not_differentiable_because =
      "a thresholded map is piecewise constant in the input";
  int* calls;
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool) const {
    ++*calls;
    const auto g = rar::saliency(model, input, rar::GradientOptions().target(target));
    return (g > 0).to(input.scalar_type());
  }
};

// A class without the trait's member: taken to honour create_graph, like a lambda.
struct Plain {
  template <class Model>
  torch::Tensor operator()(Model& model, const torch::Tensor& input, const torch::Tensor& target,
                           bool create_graph) const {
    return rar::saliency(model, input,
                         rar::GradientOptions().target(target).create_graph(create_graph));
  }
};

}  // namespace

TEST_CASE("every rar::explain explainer says whether it is differentiable", "[explainer]") {
  namespace ex = rar::explain;
  static_assert(diff_v<decltype(ex::saliency())>);
  static_assert(diff_v<decltype(ex::gradient_x_input())>);
  static_assert(diff_v<decltype(ex::integrated_gradients())>);
  static_assert(diff_v<decltype(ex::expected_gradients())>);
  static_assert(diff_v<decltype(ex::idgi())>);
  static_assert(diff_v<decltype(ex::blur_ig())>);
  static_assert(diff_v<decltype(ex::gradient_shap())>);
  static_assert(diff_v<decltype(ex::lrp())>);
  static_assert(diff_v<decltype(ex::grad_cam())>);
  static_assert(!diff_v<decltype(ex::guided_grad_cam())>);
  static_assert(!diff_v<decltype(ex::guided_backprop())>);
  static_assert(!diff_v<decltype(ex::deconvolution())>);
  static_assert(!diff_v<decltype(ex::deeplift())>);
  static_assert(!diff_v<decltype(ex::deeplift_shap(rar::DeepLiftShapOptions()))>);
  static_assert(!diff_v<decltype(ex::occlusion(rar::OcclusionOptions({1})))>);
  static_assert(!diff_v<decltype(ex::feature_ablation())>);
  static_assert(!diff_v<decltype(ex::shapley_value_sampling())>);
  static_assert(!diff_v<decltype(ex::lime())>);
  static_assert(!diff_v<decltype(ex::kernel_shap())>);
  static_assert(!diff_v<decltype(ex::guided_ig())>);
  // SmoothGrad is what its inner explainer is; references and const do not matter.
  static_assert(diff_v<decltype(ex::smooth_grad(ex::saliency()))>);
  static_assert(!diff_v<decltype(ex::smooth_grad(ex::deeplift()))>);
  static_assert(!diff_v<const ex::DeepLift&>);
  // Callables without the member (lambdas, user classes) are taken to honour create_graph.
  const auto lambda = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) { return in; };
  static_assert(diff_v<decltype(lambda)>);
  static_assert(diff_v<Plain>);
  static_assert(!diff_v<Thresholded>);
  SUCCEED("checked at compile time");
}

TEST_CASE("the tools refuse create_graph for a non-differentiable explainer before calling it",
          "[explainer][errors]") {
  auto net = rar::test::smooth_mlp(4, 6, 3);
  torch::manual_seed(3);
  const auto x = torch::rand({5, 4}, torch::kDouble);  // in the attack's data range [0, 1]
  const auto y = torch::tensor({0, 1, 2, 1, 0});
  int calls = 0;
  const Thresholded thresholded{&calls};
  auto smooth = rar::smooth_surrogate(net, 10.0);
  // The attack asks the surrogate's map for a graph: refused with the class's own reason.
  const auto opts = rar::AttributionAttackOptions().k(2).epsilon(0.1).iterations(2);
  CHECK_THROWS_WITH(rar::attribution_attack(net, net, thresholded, x, y, opts),
                    Contains("rar::attribution_attack: a thresholded map is piecewise constant in "
                             "the input, so it cannot give the differentiable map an attack "
                             "needs (create_graph = true)"));
  // SmoothGrad asked for a differentiable map refuses it the same way.
  CHECK_THROWS_WITH(
      rar::smooth_grad(net, thresholded, x, rar::SmoothGradOptions().target(y).create_graph(true)),
      Contains("rar::smooth_grad: a thresholded map is piecewise constant"));
  const int before = calls;
  // Without create_graph it is an explainer like any other.
  const auto sens = rar::max_sensitivity(net, thresholded, x, y,
                                         rar::MaxSensitivityOptions().radius(0.05).samples(2));
  CHECK(sens.sizes() == torch::IntArrayRef{5});
  CHECK(calls == before + 3);  // the input and two perturbed copies
  // The library's own explainers give their reasons through the same path.
  CHECK_THROWS_WITH(rar::smooth_grad(net, rar::explain::deeplift(), x,
                                     rar::SmoothGradOptions().target(y).create_graph(true)),
                    Contains("rar::smooth_grad: DeepLIFT's rescale multipliers are not "
                             "differentiable w.r.t. the input"));
  // A class without the trait is called with create_graph and its map keeps the graph.
  const auto g = rar::smooth_grad(net, Plain{}, x.clone().requires_grad_(true),
                                  rar::SmoothGradOptions().target(y).samples(2).create_graph(true));
  CHECK(g.requires_grad());
}

TEST_CASE("the tools' call path checks the map's shape, with the tool's name",
          "[explainer][errors]") {
  auto net = rar::test::smooth_mlp(4, 6, 3);
  const auto x = torch::randn({5, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1, 0});
  const auto one_row = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return in.slice(0, 0, 1).clone();
  };
  const auto undefined = [](auto&, const torch::Tensor&, const torch::Tensor&, bool) {
    return torch::Tensor();
  };
  // Metrics need one row per sample.
  CHECK_THROWS_WITH(rar::max_sensitivity(net, one_row, x, y),
                    Contains("rar::max_sensitivity: method must return attributions [N, ...] with "
                             "N = 5, got [1, 4]"));
  CHECK_THROWS_WITH(rar::max_sensitivity(net, undefined, x, y),
                    Contains("rar::max_sensitivity: method must return attributions [N, ...] with "
                             "N = 5, got []"));
  // SmoothGrad and the attacks need the input's shape.
  const auto flat_rows = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return in.sum(1, true);
  };
  CHECK_THROWS_WITH(rar::smooth_grad(net, flat_rows, x, rar::SmoothGradOptions().target(y)),
                    Contains("rar::smooth_grad: method(model, x, target, create_graph) must "
                             "return attributions of the input's shape"));
}
