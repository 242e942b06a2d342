// Layer-wise relevance propagation: Captum 0.7 references (tests/data/make_lrp_reference.py) for
// the ε, γ, α1β0 and identity rules on an MLP and a CNN, flat and nested Sequentials, analytic
// one-layer cases, conservation without biases, differentiability, the explainer, side effects
// and bad input.

#include <rar/attribution/lrp.hpp>
#include <rar/explain/lrp.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include "support/models.hpp"
#include "support/reference.hpp"
#include "support/residual.hpp"

#include <cmath>
#include <string>

using rar::test::max_rel_diff;

namespace {

namespace tnn = torch::nn;

// LibTorch cannot put a Sequential inside a Sequential (its forward is a template); users nest
// through a subclass with a plain forward, which LRP walks like a Sequential.
struct BlockImpl : tnn::SequentialImpl {
  using tnn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return tnn::SequentialImpl::forward(x); }
};
TORCH_MODULE(Block);

const rar::test::Reference& lrp_reference() {
  static const rar::test::Reference ref(rar::test::data_path("lrp_reference.txt"));
  return ref;
}

// The Python script's MLP: 0 Linear(6, 10), 1 ReLU, 2 Dropout (eval), 3 Linear(10, 10), 4 Tanh,
// 5 Linear(10, 4); `rar_activations` builds it with rar::nn::ReLU and rar::nn::Tanh.
tnn::Sequential reference_mlp(torch::Dtype dtype, bool rar_activations = false) {
  tnn::Sequential net;
  net->push_back(tnn::Linear(6, 10));
  if (rar_activations)
    net->push_back(rar::nn::ReLU());
  else
    net->push_back(tnn::ReLU());
  net->push_back(tnn::Dropout(0.5));
  net->push_back(tnn::Linear(10, 10));
  if (rar_activations)
    net->push_back(rar::nn::Tanh());
  else
    net->push_back(tnn::Tanh());
  net->push_back(tnn::Linear(10, 4));
  net->to(dtype);
  lrp_reference().load_into(*net, "mlp");
  net->eval();
  return net;
}

// The Python script's CNN with a Flatten at 6 (a reshape in the forward there).
tnn::Sequential reference_cnn(torch::Dtype dtype) {
  tnn::Sequential net(tnn::Conv2d(1, 3, 3), tnn::ReLU(), tnn::MaxPool2d(2), tnn::Conv2d(3, 4, 3),
                      tnn::ReLU(), tnn::AvgPool2d(2), tnn::Flatten(), tnn::Linear(16, 6),
                      tnn::ReLU(), tnn::Linear(6, 3));
  net->to(dtype);
  lrp_reference().load_into(*net, "cnn");
  net->eval();
  return net;
}

// The same CNN as nested Sequentials: 0 = (conv, relu, max pool), 1 = (conv, relu, avg pool),
// 2 Flatten, 3 = (linear, relu, linear); the weights copied from the flat one.
tnn::Sequential nested_cnn(torch::Dtype dtype) {
  tnn::Sequential net(Block(tnn::Conv2d(1, 3, 3), tnn::ReLU(), tnn::MaxPool2d(2)),
                      Block(tnn::Conv2d(3, 4, 3), tnn::ReLU(), tnn::AvgPool2d(2)), tnn::Flatten(),
                      Block(tnn::Linear(16, 6), tnn::ReLU(), tnn::Linear(6, 3)));
  net->to(dtype);
  const auto flat = reference_cnn(dtype)->parameters();
  const auto mine = net->parameters();
  REQUIRE(flat.size() == mine.size());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < flat.size(); ++i) mine[i].copy_(flat[i]);
  net->eval();
  return net;
}

// The options of the script's case `name` for the MLP.
rar::LRPOptions mlp_case(const std::string& name, const torch::Tensor& target) {
  auto o = rar::LRPOptions().target(target);
  if (name == "eps.large") o.default_rule(rar::LRPRule::epsilon(0.1));
  if (name == "gamma") o.rule(0, rar::LRPRule::gamma(0.25));
  if (name == "mixed")
    o.rule(0, rar::LRPRule::gamma(0.5, true))
        .rule(3, rar::LRPRule::identity())
        .rule(5, rar::LRPRule::epsilon(0.01));
  return o;
}

// The options of the script's case `name` for the CNN (flat paths).
rar::LRPOptions cnn_case(const std::string& name, const torch::Tensor& target) {
  auto o = rar::LRPOptions().target(target);
  if (name == "eps.large") o.default_rule(rar::LRPRule::epsilon(0.1));
  if (name == "gamma") o.rule(0, rar::LRPRule::gamma()).rule(3, rar::LRPRule::gamma());
  if (name == "mixed")
    o.rule(0, rar::LRPRule::gamma(0.25))
        .rule(3, rar::LRPRule::alpha1_beta0())
        .rule(7, rar::LRPRule::epsilon(0.05))
        .rule("9", rar::LRPRule::gamma(0.1, true));
  return o;
}

const char* const kCases[] = {"eps", "eps.t2", "eps.large", "gamma", "mixed"};

// The target of a case: per sample, or the one class 2 as a 0-dim tensor.
torch::Tensor case_target(const std::string& net, const std::string& name) {
  if (name == "eps.t2") return torch::tensor(2, torch::kLong);
  return lrp_reference().labels(net + ".target");
}

// The largest |a − b| over the reference's entries.
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().to(torch::kCPU, torch::kDouble) - b).abs().max().item<double>();
}

}  // namespace

TEST_CASE("lrp matches Captum 0.7 on an MLP for the epsilon, gamma and identity rules",
          "[lrp][reference]") {
  const auto& ref = lrp_reference();
  const torch::Tensor x = ref.tensor("mlp.input");
  for (const bool rar_activations : {false, true}) {
    auto net = reference_mlp(torch::kDouble, rar_activations);
    for (const std::string name : kCases) {
      CAPTURE(name, rar_activations);
      const auto options = mlp_case(name, case_target("mlp", name));
      const rar::Attribution r = rar::lrp_with_delta(net, x, options);
      CHECK(r.attributions.sizes() == x.sizes());
      CHECK(r.attributions.scalar_type() == torch::kDouble);
      CHECK(max_abs_diff(r.attributions, ref.tensor("mlp." + name)) < 1e-9);
      // rar's delta is Σ relevance − score; Captum's is score − Σ relevance.
      CHECK(max_abs_diff(r.delta, -ref.tensor("mlp." + name + ".delta")) < 1e-9);
      CHECK(max_abs_diff(rar::lrp(net, x, options), r.attributions.to(torch::kDouble)) < 1e-15);
    }
  }
}

TEST_CASE("lrp matches Captum 0.7 on a CNN with max and average pooling, flat and nested",
          "[lrp][reference]") {
  const auto& ref = lrp_reference();
  const torch::Tensor x = ref.tensor("cnn.input");
  auto flat = reference_cnn(torch::kDouble);
  auto nested = nested_cnn(torch::kDouble);
  for (const std::string name : kCases) {
    CAPTURE(name);
    const torch::Tensor target = case_target("cnn", name);
    const rar::Attribution r = rar::lrp_with_delta(flat, x, cnn_case(name, target));
    CHECK(r.attributions.sizes() == x.sizes());
    CHECK(max_abs_diff(r.attributions, ref.tensor("cnn." + name)) < 1e-9);
    CHECK(max_abs_diff(r.delta, -ref.tensor("cnn." + name + ".delta")) < 1e-9);
  }
  // Nested paths: a rule on the Sequential "0" covers its conv (and its max pool, which has no
  // weights, so the γ rule is its ε rule with 1e-9); "1.0" is the second conv.
  const torch::Tensor target = ref.labels("cnn.target");
  auto gamma = rar::LRPOptions()
                   .target(target)
                   .rule("0", rar::LRPRule::gamma())
                   .rule("1.0", rar::LRPRule::gamma());
  CHECK(max_abs_diff(rar::lrp(nested, x, gamma), ref.tensor("cnn.gamma")) < 1e-9);
  auto mixed = rar::LRPOptions()
                   .target(target)
                   .rule("0.0", rar::LRPRule::gamma(0.25))
                   .rule("1", rar::LRPRule::alpha1_beta0())
                   .rule("1.2", rar::LRPRule::epsilon())  // the avg pool keeps ε = 1e-9
                   .rule("3.0", rar::LRPRule::epsilon(0.05))
                   .rule("3.2", rar::LRPRule::gamma(0.1, true));
  CHECK(max_abs_diff(rar::lrp(nested, x, mixed), ref.tensor("cnn.mixed")) < 1e-9);
  CHECK(max_abs_diff(rar::lrp(nested, x, rar::LRPOptions().target(target)),
                     ref.tensor("cnn.eps")) < 1e-9);
  // A shared_ptr to the Sequential works like the holder.
  std::shared_ptr<tnn::SequentialImpl> ptr = flat.ptr();
  CHECK(max_abs_diff(rar::lrp(ptr, x, rar::LRPOptions().target(target)), ref.tensor("cnn.eps")) <
        1e-9);
}

TEST_CASE("lrp in float32 agrees with Captum's float64 values to float precision",
          "[lrp][reference]") {
  const auto& ref = lrp_reference();
  auto net = reference_cnn(torch::kFloat);
  const torch::Tensor x = ref.tensor("cnn.input").to(torch::kFloat);
  for (const std::string name : kCases) {
    CAPTURE(name);
    const torch::Tensor r = rar::lrp(net, x, cnn_case(name, case_target("cnn", name)));
    CHECK(r.scalar_type() == torch::kFloat);
    CHECK(max_rel_diff(r, ref.tensor("cnn." + name)) < 1e-5);
  }
}

TEMPLATE_TEST_CASE("lrp of one linear layer is the closed form of each rule", "[lrp][analytic]",
                   float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  const double tol = rar::test::tolerance<TestType>();
  torch::manual_seed(3);
  tnn::Linear lin(tnn::LinearOptions(5, 3).bias(false));
  lin->to(dtype);
  tnn::Sequential net(lin);
  const torch::Tensor x = torch::randn({4, 5}, dtype);
  const torch::Tensor y = torch::tensor({0, 2, 1, 2}, torch::kLong);
  const torch::Tensor w = lin->weight.detach().index_select(0, y);  // [N, 5]: w_t per sample
  const torch::Tensor z = (w * x).sum(1, true);
  // ε = 0: R_i = w_ti x_i exactly (the z-rule without a stabilizer).
  const torch::Tensor r0 =
      rar::lrp(net, x, rar::LRPOptions().target(y).default_rule(rar::LRPRule::epsilon(0)));
  CHECK(max_rel_diff(r0, w * x) < tol);
  // ε > 0: R_i = w_ti x_i · z / (z + ε sign z).
  const double eps = 0.5;
  const torch::Tensor r_eps =
      rar::lrp(net, x, rar::LRPOptions().target(y).default_rule(rar::LRPRule::epsilon(eps)));
  const torch::Tensor sign = torch::where(z >= 0, torch::ones_like(z), -torch::ones_like(z));
  CHECK(max_rel_diff(r_eps, w * x * z / (z + eps * sign)) < tol);
  // γ: R_i = x_i (w_ti + γ max(w_ti, 0)) · z / z′ with z′ = Σ_i x_i (w_ti + γ max(w_ti, 0)).
  const double g = 0.7;
  const torch::Tensor wg = w + g * w.clamp_min(0);
  const torch::Tensor zg = (wg * x).sum(1, true);
  const torch::Tensor r_g =
      rar::lrp(net, x, rar::LRPOptions().target(y).rule(0, rar::LRPRule::gamma(g)));
  CHECK(max_rel_diff(r_g, x * wg * z / (zg + 1e-9 * torch::sign(zg))) < tol);
  // α1β0: only the positive weights.
  const torch::Tensor wp = w.clamp_min(0);
  const torch::Tensor zp = (wp * x).sum(1, true);
  const torch::Tensor r_ab =
      rar::lrp(net, x, rar::LRPOptions().target(y).rule(0, rar::LRPRule::alpha1_beta0()));
  const torch::Tensor sign_p = torch::where(zp >= 0, torch::ones_like(zp), -torch::ones_like(zp));
  CHECK(max_rel_diff(r_ab, x * wp * z / (zp + 1e-9 * sign_p)) < tol);
}

TEST_CASE("lrp conserves relevance through layers without bias and delta measures the rest",
          "[lrp][conservation]") {
  torch::manual_seed(5);
  tnn::Sequential net(tnn::Linear(tnn::LinearOptions(8, 16).bias(false)), tnn::ReLU(),
                      tnn::Linear(tnn::LinearOptions(16, 12).bias(false)), tnn::ReLU(),
                      tnn::Linear(tnn::LinearOptions(12, 5).bias(false)));
  net->to(torch::kDouble);
  const torch::Tensor x = torch::randn({6, 8}, torch::kDouble);
  const torch::Tensor y = torch::tensor({0, 1, 2, 3, 4, 0}, torch::kLong);
  const torch::Tensor score = net->forward(x).detach().gather(1, y.view({-1, 1})).squeeze(1);
  const rar::LRPRule rules[] = {rar::LRPRule::epsilon(0), rar::LRPRule::epsilon(),
                                rar::LRPRule::gamma(0.25), rar::LRPRule::alpha1_beta0()};
  for (const auto& rule : rules) {
    CAPTURE(rule.str());
    const auto r = rar::lrp_with_delta(net, x, rar::LRPOptions().target(y).default_rule(rule));
    CHECK(max_abs_diff(r.attributions.sum(1), score) < 1e-7);
    CHECK(r.delta.abs().max().item<double>() < 1e-7);
  }
  // The same for a CNN with max pooling and adaptive average pooling to 1×1 (whose backward is
  // an expanded view); without ε = 0, which divides 0 by 0 at pooling windows of ReLU zeros.
  torch::manual_seed(9);
  tnn::Sequential cnn(tnn::Conv2d(tnn::Conv2dOptions(2, 4, 3).bias(false)), tnn::ReLU(),
                      tnn::MaxPool2d(2), tnn::Conv2d(tnn::Conv2dOptions(4, 6, 3).bias(false)),
                      tnn::ReLU(), tnn::AdaptiveAvgPool2d(1), tnn::Flatten(),
                      tnn::Linear(tnn::LinearOptions(6, 3).bias(false)));
  cnn->to(torch::kDouble);
  const torch::Tensor images = torch::randn({3, 2, 10, 10}, torch::kDouble);
  const torch::Tensor classes = torch::tensor({2, 0, 1}, torch::kLong);
  const torch::Tensor scores =
      cnn->forward(images).detach().gather(1, classes.view({-1, 1})).squeeze(1);
  for (const auto& rule : rules) {
    if (rule.stabilizer() == 0) continue;
    CAPTURE(rule.str());
    const auto r =
        rar::lrp_with_delta(cnn, images, rar::LRPOptions().target(classes).default_rule(rule));
    CHECK(r.attributions.sizes() == images.sizes());
    CHECK(max_abs_diff(r.attributions.reshape({3, -1}).sum(1), scores) < 1e-7);
    CHECK(r.delta.abs().max().item<double>() < 1e-7);
  }
  // A larger ε absorbs relevance, and delta says how much.
  const auto big = rar::lrp_with_delta(
      net, x, rar::LRPOptions().target(y).default_rule(rar::LRPRule::epsilon(1.0)));
  CHECK(max_abs_diff(big.delta, big.attributions.sum(1) - score) < 1e-12);
  CHECK(big.delta.abs().min().item<double>() > 1e-3);
}

TEST_CASE("lrp without a target explains an [N] output; the target's class selects the row",
          "[lrp]") {
  torch::manual_seed(6);
  tnn::Linear first(4, 6), last(6, 1);
  tnn::Sequential two_d(first, tnn::Tanh(), last);
  tnn::Sequential net(first, tnn::Tanh(), last, tnn::Flatten(tnn::FlattenOptions().start_dim(0)));
  net->to(torch::kDouble);
  const torch::Tensor x = torch::randn({3, 4}, torch::kDouble);
  const torch::Tensor a = rar::lrp(net, x);
  const torch::Tensor b = rar::lrp(two_d, x, rar::LRPOptions().target(torch::tensor(0L)));
  CHECK(a.sizes() == x.sizes());
  CHECK(max_abs_diff(a, b) < 1e-15);
  CHECK(a.abs().max().item<double>() > 1e-3);
}

TEST_CASE("lrp with create_graph gives the same relevance, differentiable in the input",
          "[lrp][graph]") {
  auto net = rar::test::smooth_mlp(5, 7, 3);
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({2, 5}, torch::kDouble);
  const torch::Tensor y = torch::tensor({1, 2}, torch::kLong);
  const torch::Tensor v = torch::randn({2, 5}, torch::kDouble);
  auto options = rar::LRPOptions().target(y).rule(0, rar::LRPRule::gamma(0.3)).rule(
      2, rar::LRPRule::epsilon(0.05));
  const torch::Tensor plain = rar::lrp(net, x, options);
  const torch::Tensor xg = x.clone().requires_grad_(true);
  const torch::Tensor r = rar::lrp(net, xg, rar::LRPOptions(options).create_graph(true));
  CHECK(max_abs_diff(r, plain) < 1e-15);
  REQUIRE(r.requires_grad());
  const torch::Tensor grad = torch::autograd::grad({(r * v).sum()}, {xg})[0];
  // Central differences of x -> Σ v ⊙ lrp(x).
  const double h = 1e-6;
  torch::Tensor fd = torch::zeros_like(x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    torch::Tensor up = x.clone(), down = x.clone();
    up.view(-1)[i] += h;
    down.view(-1)[i] -= h;
    fd.view(-1)[i] = ((rar::lrp(net, up, options) - rar::lrp(net, down, options)) * v).sum() /
                     (2 * h);
  }
  CHECK(max_rel_diff(grad, fd) < 1e-6);
}

TEST_CASE("rar::explain::lrp is an explainer with the options' rules and the call's target",
          "[lrp][explain]") {
  const auto& ref = lrp_reference();
  auto net = reference_cnn(torch::kDouble);
  const torch::Tensor x = ref.tensor("cnn.input");
  const torch::Tensor y = ref.labels("cnn.target");
  auto explainer = rar::explain::lrp(cnn_case("mixed", torch::Tensor()));
  static_assert(rar::is_explainer_v<decltype(explainer), tnn::Sequential>);
  static_assert(rar::is_explainer_v<decltype(explainer), rar::test::Residual>);
  CHECK(max_abs_diff(explainer(net, x, y, false), ref.tensor("cnn.mixed")) < 1e-9);
  const torch::Tensor graph = explainer(net, x, y, true);
  CHECK(graph.requires_grad());
  CHECK(max_abs_diff(graph, ref.tensor("cnn.mixed")) < 1e-9);
  rar::test::Residual residual;
  CHECK_THROWS_WITH(explainer(residual, torch::randn({1, 2, 6, 6}), torch::tensor({0}), false),
                    Catch::Contains("LRP supports torch::nn::Sequential models") &&
                        Catch::Contains("rar::deeplift"));
}

TEST_CASE("lrp leaves the network, its gradients and the random generator untouched",
          "[lrp]") {
  auto net = reference_cnn(torch::kDouble);
  const torch::Tensor x = lrp_reference().tensor("cnn.input");
  const torch::Tensor y = lrp_reference().labels("cnn.target");
  rar::test::ModuleState before(*net);
  torch::manual_seed(11);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(11);
  rar::lrp(net, x, cnn_case("mixed", y));
  rar::lrp(net, x, cnn_case("mixed", y).create_graph(true));
  CHECK(torch::rand({4}).equal(expected));
  CHECK(rar::test::ModuleState(*net) == before);
}

TEST_CASE("lrp runs on the GPU when there is one", "[lrp][cuda]") {
  RAR_REQUIRE_CUDA();
  const auto& ref = lrp_reference();
  auto net = reference_cnn(torch::kDouble);
  net->to(torch::kCUDA);
  const torch::Tensor x = ref.tensor("cnn.input").to(torch::kCUDA);
  const torch::Tensor y = ref.labels("cnn.target").to(torch::kCUDA);
  const rar::Attribution r = rar::lrp_with_delta(net, x, cnn_case("mixed", y));
  CHECK(r.attributions.device().is_cuda());
  CHECK(r.delta.device().is_cuda());
  CHECK(max_abs_diff(r.attributions, ref.tensor("cnn.mixed")) < 1e-9);
}

TEST_CASE("lrp refuses bad models, rules and inputs with messages naming them", "[lrp][errors]") {
  const torch::Tensor x = torch::randn({2, 4}, torch::kDouble);
  const auto y = rar::LRPOptions().target(torch::tensor({0, 1}));
  rar::test::Residual residual;
  CHECK_THROWS_WITH(rar::lrp(residual, torch::randn({1, 2, 6, 6}),
                             rar::LRPOptions().target(torch::tensor({0}))),
                    Catch::Contains("rar::lrp: LRP supports torch::nn::Sequential models") &&
                        Catch::Contains("use rar::deeplift or rar::integrated_gradients"));
  auto lambda = [](const torch::Tensor& t) { return t * 2; };
  CHECK_THROWS_WITH(rar::lrp(lambda, x, y), Catch::Contains("this model is not a Sequential"));
  tnn::Sequential gelu(tnn::Linear(4, 3), tnn::GELU());
  gelu->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::lrp(gelu, x, y),
                    Catch::Contains("rar::lrp: layer 1 (torch::nn::GELU) has no LRP rule"));
  tnn::Sequential nested(tnn::Linear(4, 4), Block(tnn::ReLU(), tnn::Softmax(1)));
  nested->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::lrp(nested, x, y),
                    Catch::Contains("layer 1.1 (torch::nn::Softmax) has no LRP rule"));
  tnn::Sequential mlp(tnn::Linear(4, 5), tnn::ReLU(), tnn::Linear(5, 3));
  mlp->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::lrp(mlp, x, rar::LRPOptions(y).rule(7, rar::LRPRule::gamma())),
                    Catch::Contains("a rule (gamma(0.25)) was given for layer '7', but the "
                                    "Sequential has no layer at that path; its layers are 0 "
                                    "(torch::nn::Linear), 1 (torch::nn::ReLU), 2 "
                                    "(torch::nn::Linear)"));
  CHECK_THROWS_WITH(rar::lrp(mlp, x, rar::LRPOptions(y).rule(1, rar::LRPRule::epsilon(0.1))),
                    Catch::Contains("layer 1 (torch::nn::ReLU) was given the rule epsilon(0.1), "
                                    "but it passes relevance through unchanged"));
  CHECK_NOTHROW(rar::lrp(mlp, x, rar::LRPOptions(y).rule(1, rar::LRPRule::identity())));
  CHECK_THROWS_WITH(rar::lrp(mlp, x, rar::LRPOptions(y).rule(2, rar::LRPRule::identity())),
                    Catch::Contains("layer 2 (torch::nn::Linear) has the identity rule") &&
                        Catch::Contains("maps [2, 5] to [2, 3]"));
  tnn::Sequential dropout(tnn::Linear(4, 3), tnn::Dropout(0.5));
  dropout->to(torch::kDouble);
  CHECK_THROWS_WITH(rar::lrp(dropout, x, y),
                    Catch::Contains("layer 1 (torch::nn::Dropout) is in training mode"));
  CHECK_THROWS_WITH(rar::lrp(mlp, x), Catch::Contains("rar::lrp: without a target the network "
                                                      "output must be [N], got [2, 3]"));
  CHECK_THROWS_WITH(rar::lrp(mlp, x, rar::LRPOptions().target(torch::tensor({0, 3}))),
                    Catch::Contains("target class indices must lie in [0, 3), got values in [0, 3]"));
  CHECK_THROWS_WITH(rar::lrp(mlp, x, rar::LRPOptions().target(torch::tensor({0, 1, 2}))),
                    Catch::Contains("target must be 0-dim or of shape [2]"));
  CHECK_THROWS_WITH(rar::lrp(mlp, x.to(torch::kInt), y),
                    Catch::Contains("rar::lrp: input must be float32 or float64, got Int"));
  CHECK_THROWS_WITH(rar::lrp_with_delta(mlp, torch::empty({0, 4}), y),
                    Catch::Contains("rar::lrp_with_delta: input must be a batch [N, ...] with N "
                                    ">= 1, got shape [0, 4]"));
  torch::Tensor with_nan = x.clone();
  with_nan[1][2] = std::nan("");
  CHECK_THROWS_WITH(rar::lrp(mlp, with_nan, y),
                    Catch::Contains("rar::lrp: input must be finite, but 1 of its 8 values are not "
                                    "(1 NaN, 0 infinite); the first is in sample 1"));
  CHECK_THROWS_WITH(rar::lrp(tnn::Sequential(), x, y),
                    Catch::Contains("rar::lrp: the Sequential has no layers"));
  CHECK_THROWS_WITH(rar::LRPRule::epsilon(-1e-3),
                    Catch::Contains("rar::LRPRule::epsilon: eps must be finite and >= 0, got -0.001"));
  CHECK_THROWS_WITH(rar::LRPRule::gamma(-0.5),
                    Catch::Contains("rar::LRPRule::gamma: gamma must be finite and >= 0, got -0.5"));
}
