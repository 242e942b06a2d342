// rar::nn activations: exactly torch::nn outside a scope; scopes that are RAII, nested and
// thread-local; the smooth surrogate against the same network written with softplus
// (tests/data/residual_reference.txt, made by tests/data/make_residual_reference.py).

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "support/models.hpp"
#include "support/residual.hpp"

using rar::test::max_rel_diff;
namespace tnn = torch::nn;

namespace {

// Value and input gradient (of a fixed random weighting) of `f` at `x`.
template <class F>
std::pair<torch::Tensor, torch::Tensor> value_and_grad(F&& f, const torch::Tensor& x,
                                                       const torch::Tensor& w) {
  const torch::Tensor leaf = x.detach().clone().requires_grad_(true);
  const torch::Tensor y = f(leaf);
  const torch::Tensor g = torch::autograd::grad({(y * w).sum()}, {leaf})[0];
  return {y.detach(), g};
}

}  // namespace

TEMPLATE_TEST_CASE("rar::nn activations compute exactly what torch::nn computes outside a scope",
                   "[nn]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  torch::manual_seed(3);
  // Values on both sides of 0, exact zeros, and beyond the softplus threshold.
  const torch::Tensor x =
      torch::cat({torch::randn({64}, dtype) * 3, torch::zeros({4}, dtype),
                  torch::full({2}, 30.0, dtype)});
  const torch::Tensor w = torch::randn_like(x);
  REQUIRE_FALSE(rar::nn::in_scope());
  auto same = [&](auto ours, auto theirs) {
    const auto [y1, g1] = value_and_grad([&](const torch::Tensor& t) { return ours(t); }, x, w);
    const auto [y2, g2] = value_and_grad([&](const torch::Tensor& t) { return theirs(t); }, x, w);
    CHECK(torch::equal(y1, y2));
    CHECK(torch::equal(g1, g2));
  };
  rar::nn::ReLU relu;
  tnn::ReLU t_relu;
  same([&](auto& t) { return relu(t); }, [&](auto& t) { return t_relu(t); });
  rar::nn::LeakyReLU leaky(tnn::LeakyReLUOptions().negative_slope(0.2));
  tnn::LeakyReLU t_leaky(tnn::LeakyReLUOptions().negative_slope(0.2));
  same([&](auto& t) { return leaky(t); }, [&](auto& t) { return t_leaky(t); });
  rar::nn::ELU elu(tnn::ELUOptions().alpha(0.7));
  tnn::ELU t_elu(tnn::ELUOptions().alpha(0.7));
  same([&](auto& t) { return elu(t); }, [&](auto& t) { return t_elu(t); });
  rar::nn::Sigmoid sigmoid;
  tnn::Sigmoid t_sigmoid;
  same([&](auto& t) { return sigmoid(t); }, [&](auto& t) { return t_sigmoid(t); });
  rar::nn::Tanh tanh_;
  tnn::Tanh t_tanh;
  same([&](auto& t) { return tanh_(t); }, [&](auto& t) { return t_tanh(t); });
  rar::nn::Softplus softplus(tnn::SoftplusOptions().beta(2).threshold(5));
  tnn::Softplus t_softplus(tnn::SoftplusOptions().beta(2).threshold(5));
  same([&](auto& t) { return softplus(t); }, [&](auto& t) { return t_softplus(t); });
  namespace F = tnn::functional;
  same([](auto& t) { return rar::nn::functional::relu(t); }, [](auto& t) { return F::relu(t); });
  same([](auto& t) { return rar::nn::functional::sigmoid(t); }, [](auto& t) { return torch::sigmoid(t); });

  // In place, as torch::nn: the argument itself is overwritten.
  torch::Tensor a = x.clone(), b = x.clone();
  rar::nn::ReLU(tnn::ReLUOptions().inplace(true))(a);
  tnn::ReLU(tnn::ReLUOptions().inplace(true))(b);
  CHECK(torch::equal(a, b));
  CHECK(torch::equal(a, torch::relu(x)));
  torch::Tensor c = x.clone();
  rar::nn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.3).inplace(true))(c);
  CHECK(torch::equal(c, torch::leaky_relu(x, 0.3)));
}

TEST_CASE("rar::nn activations live in Sequentials, clone and print like torch::nn's", "[nn]") {
  torch::manual_seed(4);
  tnn::Sequential ours(tnn::Linear(5, 7), rar::nn::ReLU(), tnn::Linear(7, 3));
  tnn::Sequential theirs(tnn::Linear(5, 7), tnn::ReLU(), tnn::Linear(7, 3));
  theirs->ptr(0)->as<tnn::Linear>()->weight.data().copy_(ours->ptr(0)->as<tnn::Linear>()->weight);
  theirs->ptr(0)->as<tnn::Linear>()->bias.data().copy_(ours->ptr(0)->as<tnn::Linear>()->bias);
  theirs->ptr(2)->as<tnn::Linear>()->weight.data().copy_(ours->ptr(2)->as<tnn::Linear>()->weight);
  theirs->ptr(2)->as<tnn::Linear>()->bias.data().copy_(ours->ptr(2)->as<tnn::Linear>()->bias);
  const auto x = torch::randn({6, 5});
  CHECK(torch::equal(ours->forward(x), theirs->forward(x)));
  auto copy = std::dynamic_pointer_cast<tnn::SequentialImpl>(ours->clone());
  REQUIRE(copy != nullptr);
  CHECK(copy->ptr(1)->as<rar::nn::ReLU>() != nullptr);
  std::ostringstream printed;
  printed << *rar::nn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.1));
  CHECK(printed.str() == "rar::nn::LeakyReLU(negative_slope=0.1)");
}

TEST_CASE("a scope switches the activations and restores them, also when an exception leaves it",
          "[nn][scope]") {
  const auto x = torch::linspace(-2, 2, 9, torch::kDouble);
  CHECK(torch::equal(rar::nn::functional::relu(x), torch::relu(x)));
  {
    rar::nn::Scope scope;
    scope.beta(4.0);
    CHECK(rar::nn::in_scope());
    CHECK(max_rel_diff(rar::nn::functional::relu(x), torch::softplus(x, 4.0)) < 1e-15);
    CHECK(max_rel_diff(rar::nn::functional::leaky_relu(x, tnn::LeakyReLUOptions().negative_slope(0.1)),
                       0.1 * x + 0.9 * torch::softplus(x, 4.0)) < 1e-15);
    // Already-smooth activations are unchanged by the surrogate.
    CHECK(torch::equal(rar::nn::functional::tanh(x), torch::tanh(x)));
    CHECK(scope.calls() == 3);
    {
      rar::nn::Scope inner(rar::nn::Rule::guided_backprop);
      CHECK(inner.state().beta == 4.0);  // inherited
      CHECK(inner.state().rule == rar::nn::Rule::guided_backprop);
    }
    CHECK(rar::nn::detail::current_scope()->rule == rar::nn::Rule::plain);
  }
  CHECK_FALSE(rar::nn::in_scope());

  auto throwing = [&] {
    rar::nn::Scope scope;
    scope.beta(2.0);
    rar::nn::functional::relu(x);
    throw std::runtime_error("model failed");
  };
  CHECK_THROWS_WITH(throwing(), "model failed");
  CHECK_FALSE(rar::nn::in_scope());
  CHECK(torch::equal(rar::nn::functional::relu(x), torch::relu(x)));

  // A library method whose model throws leaves no scope behind either.
  auto bad = [](const torch::Tensor& t) -> torch::Tensor {
    rar::nn::functional::relu(t);
    throw std::runtime_error("bad forward");
  };
  CHECK_THROWS_WITH(rar::smooth_surrogate(bad, 3.0)(x.view({1, -1})), "bad forward");
  CHECK_THROWS_WITH(rar::deeplift(bad, x.view({1, -1})), "bad forward");
  CHECK_FALSE(rar::nn::in_scope());
  CHECK_THROWS_WITH(rar::nn::Scope().beta(-1), Catch::Contains("beta must be >= 0, got -1"));
}

TEST_CASE("scopes are thread-local: a surrogate on one thread leaves another thread's model exact",
          "[nn][scope][threads]") {
  auto net = rar::test::residual_model();
  const auto& ref = rar::test::residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto exact = ref.tensor("residual.output");
  const auto smooth = ref.tensor("residual.smooth.10.output");
  auto surrogate = rar::smooth_surrogate(net, 10.0);
  std::atomic<int> ready{0};
  std::atomic<int> smooth_bad{0}, exact_bad{0};
  auto run = [&](bool use_surrogate) {
    torch::NoGradGuard no_grad;
    ++ready;
    while (ready.load() < 2) std::this_thread::yield();
    for (int i = 0; i < 200; ++i) {
      const torch::Tensor out = use_surrogate ? surrogate(x) : net->forward(x);
      const double err = max_rel_diff(out, use_surrogate ? smooth : exact);
      if (err > 1e-12) ++(use_surrogate ? smooth_bad : exact_bad);
    }
  };
  std::thread a(run, true), b(run, false);
  a.join();
  b.join();
  CHECK(smooth_bad.load() == 0);
  CHECK(exact_bad.load() == 0);
}

TEST_CASE("smooth_surrogate equals the same network written with softplus", "[nn][surrogate]") {
  auto net = rar::test::residual_model();
  const auto& ref = rar::test::residual_reference();
  const auto x = ref.tensor("residual.input");
  const auto y = ref.labels("residual.target");
  for (int beta : {1, 10}) {
    auto smooth = rar::smooth_surrogate(net, static_cast<double>(beta));
    const std::string key = "residual.smooth." + std::to_string(beta);
    CHECK(smooth.beta() == beta);
    CHECK(max_rel_diff(smooth(x), ref.tensor(key + ".output")) < 1e-13);
    // Its gradients are the softplus network's: saliency through the surrogate.
    CHECK(max_rel_diff(rar::saliency(smooth, x, rar::GradientOptions().target(y)),
                       ref.tensor(key + ".saliency")) < 1e-12);
  }
  // The model itself is unchanged, and the surrogate shares its weights (no copy).
  CHECK(max_rel_diff(net->forward(x), ref.tensor("residual.output")) < 1e-13);
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const auto before = smooth(x);
  {
    torch::NoGradGuard no_grad;
    net->fc4->bias.add_(1.0);
  }
  CHECK(max_rel_diff(smooth(x), before + 1.0) < 1e-13);
  {
    torch::NoGradGuard no_grad;
    net->fc4->bias.sub_(1.0);
  }

  // Differentiable twice, unlike the ReLU model: the attack's gradient exists.
  const auto leaf = x.clone().requires_grad_(true);
  const auto g = rar::saliency(smooth, leaf, rar::GradientOptions().target(y).create_graph(true));
  const auto gg = torch::autograd::grad({g.abs().sum()}, {leaf})[0];
  CHECK(gg.abs().sum().item<double>() > 0);
}

TEMPLATE_TEST_CASE("smooth_surrogate of a torch::nn Sequential shares its weights",
                   "[nn][surrogate]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  torch::manual_seed(5);
  tnn::Sequential net(tnn::Linear(6, 8), tnn::ReLU(), tnn::Linear(8, 8),
                      tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.1)),
                      tnn::Linear(8, 3));
  net->to(dtype);
  const auto x = torch::randn({5, 6}, dtype);
  // The same network written out: ReLU -> softplus_3, LeakyReLU(a) -> a*z + (1 - a)*softplus_3.
  const auto by_hand = [&] {
    const auto softplus = [](const torch::Tensor& z) { return torch::log1p(torch::exp(3.0 * z)) / 3.0; };
    const auto h1 = softplus(net->ptr(0)->as<tnn::Linear>()->forward(x));
    const auto z2 = net->ptr(2)->as<tnn::Linear>()->forward(h1);
    return net->ptr(4)->as<tnn::Linear>()->forward(0.1 * z2 + 0.9 * softplus(z2));
  };
  auto smooth = rar::smooth_surrogate(net, 3.0);
  const auto before = by_hand();
  CHECK(max_rel_diff(smooth(x), before) < rar::test::tolerance<TestType>());
  {
    torch::NoGradGuard no_grad;
    net->ptr(0)->as<tnn::Linear>()->weight.mul_(2.0);
  }
  // The surrogate follows the changed weights: it shares them instead of copying.
  CHECK(max_rel_diff(smooth(x), before) > 1e-3);
  CHECK(max_rel_diff(smooth(x), by_hand()) < rar::test::tolerance<TestType>());
  // The Sequential itself still holds torch::nn::ReLU and computes ReLU.
  CHECK(net->ptr(1)->as<tnn::ReLU>() != nullptr);
}

TEST_CASE("smooth_surrogate refuses models whose activations it cannot smooth", "[nn][surrogate][errors]") {
  struct HiddenImpl : tnn::Module {
    tnn::Linear fc{nullptr};
    tnn::ReLU relu{nullptr};
    HiddenImpl() : fc(register_module("fc", tnn::Linear(4, 3))), relu(register_module("relu", tnn::ReLU())) {}
    torch::Tensor forward(const torch::Tensor& x) { return relu(fc(x)); }
  };
  auto hidden = std::make_shared<HiddenImpl>();
  CHECK_THROWS_WITH(rar::smooth_surrogate(hidden, 10.0),
                    Catch::Contains("module 'relu' is a torch::nn::ReLU") &&
                        Catch::Contains("rar::nn::ReLU"));
  auto plain = [](const torch::Tensor& t) { return torch::relu(t); };
  auto surrogate = rar::smooth_surrogate(plain, 10.0);
  CHECK_THROWS_WITH(surrogate(torch::ones({2, 4})),
                    Catch::Contains("the model called no rar::nn activation"));
  tnn::Sequential seq(tnn::Linear(4, 3), tnn::ReLU());
  CHECK_THROWS_WITH(rar::smooth_surrogate(seq, 0.0), Catch::Contains("beta must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(rar::smooth_surrogate(seq, std::nan("")), Catch::Contains("beta must be finite and > 0"));
  tnn::Sequential relu6(tnn::Linear(4, 3), tnn::ReLU6());
  CHECK_THROWS_WITH(rar::smooth_surrogate(relu6, 1.0),
                    Catch::Contains("child '1' is a torch::nn::ReLU6, which has no rar::nn twin"));
  // GELU is smooth: its twin stays GELU in the surrogate.
  tnn::Sequential gelu(tnn::Linear(4, 3), tnn::GELU());
  const auto x4 = torch::randn({2, 4});
  CHECK(torch::equal(rar::smooth_surrogate(gelu, 1.0)(x4), gelu->forward(x4)));
}
