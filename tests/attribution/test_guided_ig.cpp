// Guided IG: against a transcription of PAIR-code/saliency's guided_ig.py
// (tests/data/make_ig_variants_reference.py) on a ReLU MLP (ties) and a CNN, completeness,
// equality with IG on a linear model and with left-Riemann IG at max_dist 0, the explainer,
// and bad input.

#include <catch2/catch.hpp>
#include <rar/attribution/guided_ig.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/explain/guided_ig.hpp>
#include <string>

#include "support/models.hpp"
#include "support/reference.hpp"

using Catch::Matchers::Contains;
using rar::test::max_rel_diff;

namespace {

const rar::test::Reference& guided_ig_reference() {
  static const rar::test::Reference ref(rar::test::data_path("ig_variants_reference.txt"));
  return ref;
}

/// The ReLU MLP of make_ig_variants_reference.py ([N, 10] -> [N, 3]).
torch::nn::Sequential guided_ig_mlp(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Linear(10, 16), nn::ReLU(), nn::Linear(16, 3));
  net->to(dtype);
  guided_ig_reference().load_into(*net, "mlp");
  return net;
}

/// The CNN of make_ig_variants_reference.py ([N, 2, 8, 8] -> [N, 3]).
torch::nn::Sequential guided_ig_cnn(torch::Dtype dtype) {
  namespace nn = torch::nn;
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(2, 3, 3).padding(1)), nn::Tanh(),
                     nn::Conv2d(nn::Conv2dOptions(3, 4, 3).stride(2)), nn::Tanh(), nn::Flatten(),
                     nn::Linear(36, 3));
  net->to(dtype);
  guided_ig_reference().load_into(*net, "cnn");
  return net;
}

}  // namespace

TEST_CASE("Guided IG matches PAIR-code/saliency's guided_ig.py on a ReLU MLP", "[guided_ig]") {
  const auto& ref = guided_ig_reference();
  auto net = guided_ig_mlp(torch::kDouble);
  const auto x = ref.tensor("mlp.input");
  const auto b = ref.tensor("mlp.baseline");
  const auto y = ref.labels("mlp.target");
  struct Case {
    const char* tag;
    int64_t steps;
    double fraction, max_dist;
  };
  for (const Case c : {Case{"default", 200, 0.25, 0.02}, Case{"coarse", 16, 0.3, 0.1},
                       Case{"unbounded", 10, 0.25, 1.0}}) {
    INFO(c.tag);
    const auto attr = rar::guided_ig(net, x,
                                     rar::GuidedIGOptions()
                                         .baseline(b)
                                         .target(y)
                                         .steps(c.steps)
                                         .fraction(c.fraction)
                                         .max_dist(c.max_dist));
    CHECK(attr.sizes() == x.sizes());
    CHECK(max_rel_diff(attr, ref.tensor(std::string("guided_ig.mlp.") + c.tag)) < 1e-9);
    // The sample equal to its baseline gets zeros; the feature equal to its baseline too.
    CHECK(attr[2].abs().max().item<double>() == 0.0);
    CHECK(attr[0][3].item<double>() == 0.0);
  }
}

TEMPLATE_TEST_CASE("Guided IG matches PAIR-code/saliency's guided_ig.py on a CNN", "[guided_ig]",
                   float, double) {
  const auto& ref = guided_ig_reference();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  auto net = guided_ig_cnn(dtype);
  const auto x = ref.tensor("cnn.input").to(dtype);
  const auto y = ref.labels("cnn.target");
  const auto attr = rar::guided_ig(
      net, x, rar::GuidedIGOptions().target(y).steps(24).fraction(0.25).max_dist(0.05));
  CHECK(attr.scalar_type() == dtype);
  if (std::is_same_v<TestType, double>) {
    CHECK(max_rel_diff(attr, ref.tensor("guided_ig.cnn")) < 1e-9);
  } else {
    // float32 gradients can reorder the selection of nearly tied features: compare the sums.
    const auto sums = attr.to(torch::kDouble).flatten(1).sum(1);
    const auto ref_sums = ref.tensor("guided_ig.cnn").flatten(1).sum(1);
    CHECK(max_rel_diff(sums, ref_sums) < 1e-3);
  }
}

TEST_CASE("Guided IG's attributions sum to F(x) - F(x') up to the path discretisation",
          "[guided_ig][completeness]") {
  const auto& ref = guided_ig_reference();
  auto net = guided_ig_cnn(torch::kDouble);
  const auto x = ref.tensor("cnn.input");
  const auto y = ref.labels("cnn.target");
  const auto gap =
      rar::test::target_score(net, x, y) - rar::test::target_score(net, torch::zeros_like(x), y);
  double previous = 1e300;
  for (const int64_t steps : {25, 100, 400}) {
    const auto attr = rar::guided_ig(net, x, rar::GuidedIGOptions().target(y).steps(steps));
    const double err = (attr.flatten(1).sum(1) - gap).abs().max().item<double>();
    INFO("steps " << steps << ": |sum - gap| = " << err);
    CHECK(err < previous);
    previous = err;
  }
  CHECK(previous < 1e-2 * gap.abs().max().item<double>());
}

TEST_CASE("Guided IG equals IG on a linear model, where the path does not matter", "[guided_ig]") {
  // For F(x) = w·x + c the gradient is w everywhere, and every feature travels from x'_i to x_i
  // monotonically, so Guided IG_i = w_i (x_i − x'_i) = IG_i whatever the path.
  auto lin = rar::test::linear_model(12, 4);
  const auto x = torch::randn({5, 12}, torch::kDouble);
  const auto b = 0.5 * torch::randn({5, 12}, torch::kDouble);
  const auto y = torch::tensor({0, 3, 1, 2, 0});
  const auto ig = rar::integrated_gradients(lin, x, rar::IGOptions().baseline(b).target(y));
  for (const double max_dist : {0.0, 0.02, 0.5, 1.0}) {
    const auto g = rar::guided_ig(
        lin, x, rar::GuidedIGOptions().baseline(b).target(y).steps(17).max_dist(max_dist));
    INFO("max_dist " << max_dist);
    CHECK(max_rel_diff(g, ig) < 1e-8);  // PAIR's L1 tolerance 1e-9 ends the path
  }
}

TEST_CASE("Guided IG with max_dist 0 is IG with the left Riemann rule", "[guided_ig]") {
  auto net = guided_ig_cnn(torch::kDouble);
  const auto& ref = guided_ig_reference();
  const auto x = ref.tensor("cnn.input");
  const auto y = ref.labels("cnn.target");
  const auto g = rar::guided_ig(net, x, rar::GuidedIGOptions().target(y).steps(12).max_dist(0));
  const auto ig = rar::integrated_gradients(
      net, x, rar::IGOptions().target(y).steps(12).method(rar::Quadrature::riemann_left));
  CHECK(max_rel_diff(g, ig) < 1e-9);
}

TEST_CASE(
    "Guided IG as an explainer equals the function, refuses create_graph and keeps the "
    "model untouched",
    "[guided_ig][explainer]") {
  auto net = guided_ig_mlp(torch::kDouble);
  const auto& ref = guided_ig_reference();
  const auto x = ref.tensor("mlp.input");
  const auto y = ref.labels("mlp.target");
  const rar::test::ModuleState before(*net);
  auto explainer = rar::explain::guided_ig(rar::GuidedIGOptions().steps(20));
  static_assert(rar::is_explainer_v<decltype(explainer), torch::nn::Sequential>);
  const auto a = explainer(net, x, y, false);
  CHECK(max_rel_diff(a, rar::guided_ig(net, x, rar::GuidedIGOptions().target(y).steps(20))) == 0.0);
  CHECK_THROWS_WITH(explainer(net, x, y, true),
                    Contains("rar::explain::guided_ig") && Contains("discrete"));
  CHECK(rar::test::ModuleState(*net) == before);
}

TEST_CASE("Guided IG rejects bad input", "[guided_ig][errors]") {
  auto net = guided_ig_mlp(torch::kDouble);
  const auto x = torch::rand({2, 10}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  const auto opts = rar::GuidedIGOptions().target(y);
  auto o = opts;
  CHECK_THROWS_WITH(
      rar::guided_ig(net, x, o.create_graph(true)),
      Contains("rar::guided_ig") && Contains("create_graph must be false") && Contains("discrete"));
  o = opts;
  CHECK_THROWS_WITH(rar::guided_ig(net, x, o.steps(0)),
                    Contains("rar::guided_ig") && Contains("steps must be >= 1, got 0"));
  o = opts;
  CHECK_THROWS_WITH(rar::guided_ig(net, x, o.fraction(1.5)),
                    Contains("rar::guided_ig") && Contains("fraction must be in [0, 1], got 1.5"));
  o = opts;
  CHECK_THROWS_WITH(rar::guided_ig(net, x, o.max_dist(-0.1)),
                    Contains("rar::guided_ig") && Contains("max_dist must be in [0, 1]"));
  o = opts;
  CHECK_THROWS_WITH(rar::guided_ig(net, x, o.baseline(torch::zeros({3}, torch::kDouble))),
                    Contains("rar::guided_ig") && Contains("does not broadcast"));
  o = opts;
  CHECK_THROWS_WITH(rar::guided_ig(net, x, o.baseline(torch::zeros({10}, torch::kFloat))),
                    Contains("rar::guided_ig") && Contains("dtype"));
  CHECK_THROWS_WITH(rar::guided_ig(net, x.to(torch::kInt), opts),
                    Contains("rar::guided_ig") && Contains("float32 or float64"));
  CHECK_THROWS_WITH(rar::guided_ig(net, x, rar::GuidedIGOptions().target(torch::tensor({0, 1, 2}))),
                    Contains("rar::guided_ig") && Contains("target"));
}
