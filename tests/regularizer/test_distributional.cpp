// The distributional-robustness objective (rar::distributional_ig): the γ → ∞ limit with its
// analytic first-order value, WRM at β = 0, the inner ascent, finite differences in the
// parameters, randomness and bad options.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/gradcheck.hpp"

using rar::test::max_rel_diff;

namespace {

using rar::test::check_parameter_gradients;

// Per-sample cross-entropy and its input gradient at x.
std::pair<torch::Tensor, torch::Tensor> loss_and_gradient(torch::nn::Sequential& net,
                                                          const torch::Tensor& x,
                                                          const torch::Tensor& y) {
  const auto leaf = x.detach().requires_grad_(true);
  const auto loss = rar::score::cross_entropy(net->forward(leaf), y);
  const auto g = torch::autograd::grad({loss.sum()}, {leaf})[0];
  return {loss.detach(), g};
}

// WRM (Sinha, Namkoong, Duchi 2018), written out: plain gradient ascent from x on
// ℓ(x′) − γ Σ|x′ − x|^p, clipped to [lo, hi]; returns the per-sample Lagrangian at the end point
// (differentiable in the parameters) and the end point.
std::pair<torch::Tensor, torch::Tensor> wrm(torch::nn::Sequential& net, const torch::Tensor& x,
                                            const torch::Tensor& y, double gamma, double p,
                                            int64_t steps, double step_size, double lo, double hi) {
  auto lagrangian = [&](const torch::Tensor& xa) {
    const auto d = (xa - x).flatten(1);
    return rar::score::cross_entropy(net->forward(xa), y) - gamma * d.abs().pow(p).sum(1);
  };
  torch::Tensor xa = x.clone();
  for (int64_t t = 0; t < steps; ++t) {
    const auto leaf = xa.detach().requires_grad_(true);
    const auto g = torch::autograd::grad({lagrangian(leaf).sum()}, {leaf})[0];
    xa = (xa + step_size * g).clamp(lo, hi).detach();
  }
  return {lagrangian(xa), xa};
}

}  // namespace

TEST_CASE("as gamma grows x' stays at x and the term tends to loss(x), at the first-order rate "
          "(1 + beta)^2 |grad loss|^2 / (4 gamma)",
          "[distributional]") {
  // For large γ the maximizer is x′ ≈ x + δ with δ_i = (1 + β)·g_i/(2γ) (g = ∇ℓ(x), and
  // IG(x, x + δ) ≈ δ ⊙ g), so sup − ℓ(x) ≈ (1 + β)²‖g‖²/(4γ) and ‖x′ − x‖∞ ≈ (1 + β)‖g‖∞/(2γ).
  auto net = rar::test::smooth_mlp(4, 6, 3);
  torch::manual_seed(51);
  const auto x = 0.3 + 0.4 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  const auto [loss, g] = loss_and_gradient(net, x, y);
  for (double beta : {0.0, 0.5}) {
    double previous_gap = std::numeric_limits<double>::infinity();
    for (double gamma : {10.0, 100.0, 1000.0}) {
      INFO("beta " << beta << " gamma " << gamma);
      auto diagnostics = std::make_shared<rar::InnerMaxDiagnostics>();
      auto opts = rar::DistributionalIGOptions()
                      .beta(beta)
                      .gamma(gamma)
                      .attack_steps(40)
                      .attack_step_size(0.25 / gamma)  // contraction 1 − 2αγ = 1/2 per step
                      .steps(20)
                      .inner_stride(1)
                      .reduction(rar::Reduction::sum)
                      .diagnostics(diagnostics);
      const double term = rar::distributional_ig(opts)(net, x, y).item<double>();
      const double gap = term - loss.sum().item<double>();
      const double predicted = (1 + beta) * (1 + beta) * g.pow(2).sum().item<double>() / (4 * gamma);
      CHECK(gap > 0);
      CHECK(gap < previous_gap);
      // The relative error of the first-order value shrinks like 1/γ (measured: 4e-4 at γ = 10).
      CHECK(gap * gamma == Approx(predicted * gamma).epsilon(0.02 / gamma));
      const double moved = (diagnostics->adversarial - x).abs().max().item<double>();
      const double predicted_move = (1 + beta) * g.abs().max().item<double>() / (2 * gamma);
      CHECK(moved == Approx(predicted_move).epsilon(0.05 / gamma));
      previous_gap = gap;
    }
    CHECK(previous_gap < 1e-3);
  }
}

TEST_CASE("with beta = 0 distributional_ig is WRM: same maximizer, value and parameter gradients",
          "[distributional][wrm]") {
  auto net = rar::test::smooth_mlp(5, 6, 3);
  torch::manual_seed(52);
  // Two samples at the ends of [0, 1], where the unconstrained ascent gets clipped.
  auto x = torch::rand({4, 5}, torch::kDouble);
  x[0].fill_(0.0);
  x[1].fill_(1.0);
  const auto y = torch::tensor({0, 1, 2, 1});
  for (double p : {2.0, 3.0, 1.5}) {
    INFO("p " << p);
    const double gamma = 0.5, step = 0.3;
    const int64_t steps = 12;
    auto diagnostics = std::make_shared<rar::InnerMaxDiagnostics>();
    auto opts = rar::DistributionalIGOptions().beta(0.0).gamma(gamma).p(p).attack_steps(steps)
                    .attack_step_size(step).diagnostics(diagnostics);
    const auto term = rar::distributional_ig(opts)(net, x, y);
    const auto [direct, x_direct] = wrm(net, x, y, gamma, p, steps, step, 0.0, 1.0);
    CHECK(max_rel_diff(diagnostics->adversarial, x_direct) < 1e-13);
    // The ascent moved, and clipping was active.
    CHECK((x_direct - x).abs().max().item<double>() > 1e-2);
    CHECK(((x_direct == 0.0) | (x_direct == 1.0)).any().item<bool>());
    CHECK(term.item<double>() == Approx(direct.mean().item<double>()).epsilon(1e-13));
    const auto params = net->parameters();
    const auto g_term = torch::autograd::grad({term}, params);
    const auto g_direct = torch::autograd::grad({direct.mean()}, params);
    for (size_t i = 0; i < params.size(); ++i) CHECK(max_rel_diff(g_term[i], g_direct[i]) < 1e-12);
  }
}

TEST_CASE("the inner ascent of distributional_ig increases the objective at every step",
          "[distributional]") {
  auto net = rar::test::smooth_mlp(4, 6, 3);
  torch::manual_seed(53);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({1, 0, 2});
  for (bool random_start : {false, true}) {
    INFO("random_start " << random_start);
    auto diagnostics = std::make_shared<rar::InnerMaxDiagnostics>();
    std::vector<double> seen;
    auto opts = rar::DistributionalIGOptions()
                    .beta(0.5)
                    .gamma(2.0)
                    .attack_steps(10)
                    .attack_step_size(0.05)
                    .random_start(random_start)
                    .start_radius(0.05)
                    .steps(10)
                    .inner_stride(2)
                    .diagnostics(diagnostics)
                    .callback([&](int64_t, const torch::Tensor&, const torch::Tensor& objective) {
                      if (objective.defined()) seen.push_back(objective.mean().item<double>());
                    });
    const auto [loss, g] = loss_and_gradient(net, x, y);
    rar::distributional_ig(opts)(net, x, y);
    const auto& trace = diagnostics->objective;
    REQUIRE(trace.size() == 11);
    REQUIRE(seen.size() == 10);
    for (size_t t = 0; t < seen.size(); ++t) CHECK(seen[t] == Approx(trace[t]).epsilon(1e-14));
    for (size_t t = 1; t < trace.size(); ++t) CHECK(trace[t] > trace[t - 1]);
    if (!random_start) CHECK(trace.front() == Approx(loss.mean().item<double>()).epsilon(1e-14));
    CHECK(trace.back() - trace.front() > 1e-3);
  }
}

TEST_CASE("distributional_ig matches central differences in the parameters once the ascent has "
          "converged",
          "[distributional][gradcheck]") {
  // The term's gradient holds x′ fixed (Danskin). The finite difference also moves x′(θ), which
  // changes the value only to second order once ∇_{x′} of the objective is ~0, i.e. when the
  // ascent has converged: γ = 4 makes the inner problem strongly concave and 60 steps converge.
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(54);
  const auto x = 0.3 + 0.4 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  {
    auto opts = rar::DistributionalIGOptions()
                    .beta(0.4)
                    .gamma(4.0)
                    .attack_steps(60)
                    .attack_step_size(0.06)
                    .steps(6)
                    .inner_stride(1)
                    .random_start(true)
                    .start_radius(0.02);
    // A fresh term per evaluation draws the same random start (stream (seed, 0)).
    check_parameter_gradients(*net, [&] { return rar::distributional_ig(opts)(net, x, y); }, 1e-6,
                              1e-5);
  }
}

TEST_CASE("distributional_ig: each call draws a new random start; a seed reproduces the sequence",
          "[distributional]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(55);
  const auto x = 0.2 + 0.6 * torch::rand({2, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2});
  auto opts = rar::DistributionalIGOptions().attack_steps(2).steps(4).inner_stride(2)
                  .random_start(true).start_radius(0.1).seed(9);
  auto a = rar::distributional_ig(opts);
  auto b = rar::distributional_ig(opts);
  const double a0 = a(net, x, y).item<double>();
  const double a1 = a(net, x, y).item<double>();
  CHECK(a0 != a1);
  CHECK(b(net, x, y).item<double>() == a0);
  CHECK(b(net, x, y).item<double>() == a1);
  auto c = rar::distributional_ig(rar::DistributionalIGOptions(opts).seed(10));
  CHECK(c(net, x, y).item<double>() != a0);
  auto fixed = rar::distributional_ig(rar::DistributionalIGOptions(opts).random_start(false));
  CHECK(fixed(net, x, y).item<double>() == fixed(net, x, y).item<double>());
}

TEST_CASE("distributional_ig composes, leaves parameter gradients untouched until backward and "
          "trains",
          "[distributional]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(56);
  const auto x = 0.2 + 0.6 * torch::rand({6, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1, 1, 0, 2});
  const rar::test::ModuleState before(*net);
  auto term = rar::distributional_ig(rar::DistributionalIGOptions().gamma(2.0).steps(10)
                                         .inner_stride(5).attack_steps(5));
  const auto objective = 0.5 * term + rar::cross_entropy();
  const auto loss = objective(net, x, y);
  CHECK(rar::test::ModuleState(*net) == before);
  CHECK(loss.dim() == 0);
  // Gradient steps (on random labels, so slowly) lower the term.
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1));
  const double first = term(net, x, y).item<double>();
  std::vector<double> values;
  for (int i = 0; i < 30; ++i) {
    sgd.zero_grad();
    const auto value = term(net, x, y);
    values.push_back(value.item<double>());
    value.backward();
    sgd.step();
  }
  // Measured: 1.1110 -> 1.0955 in 30 steps, every step lower.
  for (size_t i = 1; i < values.size(); ++i) CHECK(values[i] < values[i - 1]);
  CHECK(term(net, x, y).item<double>() < first - 0.01);
}

TEST_CASE("distributional_ig rejects bad options and inputs with clear messages",
          "[distributional][errors]") {
  using Catch::Matchers::Contains;
  using Options = rar::DistributionalIGOptions;
  CHECK_THROWS_WITH(rar::distributional_ig(Options().beta(-0.1)),
                    Contains("rar::distributional_ig: beta must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().gamma(std::nan(""))),
                    Contains("rar::distributional_ig: gamma must be finite and >= 0, got nan"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().p(0.5)),
                    Contains("rar::distributional_ig: p must be finite and >= 1, got 0.5"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().attack_steps(-1)),
                    Contains("rar::distributional_ig: attack_steps must be >= 0, got -1"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().attack_step_size(-0.5)),
                    Contains("rar::distributional_ig: attack_step_size must be finite and >= 0, got -0.5"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().start_radius(-1.0)),
                    Contains("rar::distributional_ig: start_radius must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().clip_min(1.0).clip_max(0.0)),
                    Contains("rar::distributional_ig: clip_min must be <= clip_max, got clip_min = 1 "
                             "and clip_max = 0"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().steps(0)),
                    Contains("rar::distributional_ig: steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::distributional_ig(Options().steps(10).inner_stride(3)),
                    Contains("rar::distributional_ig: inner_stride must divide steps, got steps = 10 "
                             "and inner_stride = 3"));
  auto net = rar::test::smooth_mlp(4, 5, 3);
  auto term = rar::distributional_ig(Options().steps(4).inner_stride(2).attack_steps(1));
  const auto x = torch::full({2, 4}, 0.5, torch::kDouble);
  CHECK_THROWS_WITH(term(net, x + 0.6, torch::tensor({0, 1})),
                    Contains("rar::distributional_ig: x must lie in the data range [clip_min, "
                             "clip_max] = [0, 1], but 8 of its 8 values lie outside (they span [1.1, 1.1])"));
  CHECK_THROWS_WITH(term(net, x, torch::tensor({0, 1, 2})),
                    Contains("rar::distributional_ig: y must be int64 labels of shape [2]"));
  CHECK_NOTHROW(term(net, x, torch::tensor({0, 1})));
}
