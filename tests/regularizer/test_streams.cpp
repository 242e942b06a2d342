// The terms' randomness contract (call i draws from the stream (seed, i); copies; threads), the
// inner maximization's callback and diagnostics as a callback, and input-gradient regularization
// over a ball with a clip range.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <mutex>
#include <thread>
#include <vector>

using Catch::Contains;
using rar::test::max_rel_diff;

namespace {

// The random start the contract promises for call `index` of a term with this ball and seed.
torch::Tensor expected_start(const torch::Tensor& x, const rar::BallOptions& ball, uint64_t seed,
                             uint64_t index) {
  at::Generator gen = rar::seeded_generator(seed, index);
  return rar::random_start(gen, x, ball);
}

}  // namespace

TEST_CASE("call i of ig_norm starts its inner maximization from the stream (seed, i)",
          "[regularizer][random]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(51);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  // No ascent steps: the maximizer is the start itself.
  const auto opts = rar::IGNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(0)
                        .seed(17).diagnostics(diag);
  auto term = rar::ig_norm(opts);
  for (uint64_t i = 0; i < 3; ++i) {
    term(net, x, y);
    CHECK(diag->adversarial.equal(expected_start(x, opts.ball(), 17, i)));
  }
  // Call 0 is a fresh generator seeded with the seed: the starts of earlier versions.
  at::Generator plain = rar::seeded_generator(17);
  rar::ig_norm(opts)(net, x, y);
  CHECK(diag->adversarial.equal(rar::random_start(plain, x, opts.ball())));
}

TEST_CASE("call i of adversarial is pgd_attack from the stream (seed, i)", "[regularizer][random]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(52);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({1, 2, 0});
  std::vector<torch::Tensor> starts;
  const auto opts = rar::PGDOptions().epsilon(0.2).steps(3).seed(5).callback(
      [&](int64_t t, const torch::Tensor& it, const torch::Tensor&) {
        if (t == 0) starts.push_back(it);
      });
  auto term = rar::adversarial(opts);
  std::vector<double> values;
  for (int i = 0; i < 3; ++i) values.push_back(term(net, x, y).item<double>());
  REQUIRE(starts.size() == 3);
  for (uint64_t i = 0; i < 3; ++i) CHECK(starts[i].equal(expected_start(x, opts.ball(), 5, i)));
  CHECK(values[0] != values[1]);
  // Call 0 is exactly pgd_attack with the same options.
  const auto x_adv = rar::pgd_attack(net, x, y, opts);
  CHECK(values[0] == rar::score::cross_entropy(net->forward(x_adv), y).mean().item<double>());
}

TEST_CASE("a copy of a term continues from the original's count, then counts on its own",
          "[regularizer][random]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(53);
  const auto x = 0.2 + 0.6 * torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto opts = rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(1).seed(9);
  auto term = rar::ig_norm(opts);
  const double v0 = term(net, x, y).item<double>();
  const double v1 = term(net, x, y).item<double>();
  auto copy = term;  // at count 2
  const double c2 = copy(net, x, y).item<double>();
  const double t2 = term(net, x, y).item<double>();
  CHECK(c2 == t2);  // both are call 2
  CHECK(c2 != v1);
  CHECK(copy(net, x, y).item<double>() == term(net, x, y).item<double>());  // both call 3
  // A composed objective holds a copy made at composition: it starts from the count then.
  auto fresh = rar::ig_norm(opts);
  auto objective = rar::cross_entropy() + fresh;
  const double ce = rar::cross_entropy()(net, x, y).item<double>();
  CHECK(objective(net, x, y).item<double>() == Approx(ce + v0).epsilon(1e-14));
  CHECK(objective(net, x, y).item<double>() == Approx(ce + v1).epsilon(1e-14));
  CHECK(fresh(net, x, y).item<double>() == v0);  // the original was not advanced
}

TEST_CASE("concurrent calls of one term get distinct stream indices", "[regularizer][random]") {
  // A lambda model with constant weights: forward and autograd are safe from several threads.
  torch::manual_seed(54);
  const auto weight = torch::randn({3, 4}, torch::kDouble);
  const auto model = [weight](const torch::Tensor& in) { return torch::tanh(in.matmul(weight.t())); };
  const auto x = 0.2 + 0.6 * torch::rand({2, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2});
  std::mutex mutex;
  std::vector<torch::Tensor> starts;
  const auto opts = rar::PGDOptions().epsilon(0.1).steps(1).seed(77).callback(
      [&](int64_t t, const torch::Tensor& it, const torch::Tensor&) {
        if (t != 0) return;
        std::lock_guard<std::mutex> lock(mutex);
        starts.push_back(it);
      });
  const auto term = rar::adversarial(opts);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) term(model, x, y);
    });
  for (auto& th : threads) th.join();
  REQUIRE(starts.size() == 20);
  // Every index 0 … 19 was used exactly once, whichever thread got it.
  std::vector<bool> used(20, false);
  for (const auto& s : starts) {
    int64_t match = -1;
    for (uint64_t i = 0; i < 20; ++i)
      if (s.equal(expected_start(x, opts.ball(), 77, i))) match = static_cast<int64_t>(i);
    REQUIRE(match >= 0);
    CHECK_FALSE(used[static_cast<size_t>(match)]);
    used[static_cast<size_t>(match)] = true;
  }
}

TEST_CASE("the inner maximization's callback sees every iterate; diagnostics are such a callback",
          "[regularizer][callback]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(55);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  std::vector<int64_t> seen;
  std::vector<torch::Tensor> iterates, values;
  auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(6).inner_stride(3).attack_steps(4)
                  .seed(2).diagnostics(diag).callback(
                      [&](int64_t t, const torch::Tensor& it, const torch::Tensor& v) {
                        seen.push_back(t);
                        iterates.push_back(it);
                        values.push_back(v);
                      });
  rar::ig_sum_norm(opts)(net, x, y);
  REQUIRE(seen == std::vector<int64_t>({0, 1, 2, 3, 4}));
  REQUIRE(diag->objective.size() == 5);
  CHECK(diag->adversarial.equal(iterates.back()));
  CHECK(iterates.front().equal(expected_start(x, opts.ball(), 2, 0)));
  CHECK_FALSE(values.back().defined());
  for (size_t t = 0; t < 4; ++t) {
    REQUIRE(values[t].sizes() == torch::IntArrayRef({3}));
    CHECK(values[t].mean().item<double>() == Approx(diag->objective[t]).epsilon(1e-14));
  }
  // The objective reported is the strided IG-SUM-NORM objective at the iterate:
  // ℓ(x′) + β‖IG(x, x′)‖₁ with the k = 3, 6 points of the 6-point right-Riemann rule.
  const auto ig = rar::integrated_gradients(
      net, iterates[1],
      rar::IGOptions().baseline(x).target(y).steps(2).method(rar::Quadrature::riemann_right)
          .score(rar::score::cross_entropy));
  const auto expected =
      rar::score::cross_entropy(net->forward(iterates[1]), y) + 0.1 * ig.abs().sum(1);
  CHECK(max_rel_diff(values[1], expected) < 1e-12);
  // Stopping early: the maximizer is the iterate the callback stopped at.
  std::vector<torch::Tensor> kept;
  auto stop = rar::IGSumNormOptions(opts).callback(
      [&](int64_t t, const torch::Tensor& it, const torch::Tensor&) {
        kept.push_back(it);
        return t == 2;
      });
  rar::ig_sum_norm(stop)(net, x, y);
  REQUIRE(kept.size() == 3);
  CHECK(diag->adversarial.equal(kept.back()));
  CHECK(diag->objective.size() == 3);
  CHECK(kept.back().equal(iterates[2]));
}

TEMPLATE_TEST_CASE("input_gradient_norm over an L-inf ball with a clip range is the exact maximum "
                   "of the first-order term",
                   "[regularizer][input_gradient]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto model = rar::test::linear_model(5, 3, dtype);
  torch::manual_seed(56);
  // Some coordinates near the ends of [0, 1], where the range cuts the ball.
  const auto x = torch::tensor({{0.02, 0.5, 0.97, 0.3, 0.5}, {0.5, 0.99, 0.01, 0.6, 0.4}}, dtype);
  const auto y = torch::tensor({2, 0});
  const double eps = 0.1;
  const auto leaf = x.clone().requires_grad_(true);
  const auto loss = rar::score::cross_entropy(model->forward(leaf), y);
  const auto g = torch::autograd::grad({loss.sum()}, {leaf})[0].to(torch::kDouble);
  const auto xd = x.to(torch::kDouble);
  // Each coordinate moves to the end of its interval [max(−ε, −x), min(ε, 1 − x)] that g favours.
  const auto best = torch::where(g > 0, g * (1.0 - xd).clamp_max(eps), g * (-xd).clamp_min(-eps));
  const double expected = 2.0 * best.sum(1).mean().template item<double>();
  const auto ranged =
      rar::input_gradient_norm(rar::InputGradientOptions().epsilon(eps).clip_min(0).clip_max(1)
                                   .lambda(2.0))(model, x, y);
  const double tol = rar::test::tolerance<TestType>();
  CHECK(ranged.template item<double>() == Approx(expected).epsilon(tol));
  // Without a range it is λ·ε·‖g‖₁; the range only lowers it.
  const auto free = rar::input_gradient_norm(
      rar::InputGradientOptions().epsilon(eps).lambda(2.0))(model, x, y);
  CHECK(free.template item<double>() == Approx(2.0 * eps * g.abs().sum(1).mean().template item<double>()).epsilon(tol));
  CHECK(ranged.template item<double>() < free.template item<double>());
  // The same by brute force over the corners of the box ∩ ball (the maximum of a linear
  // function is at a corner).
  const auto lo = (-xd).clamp_min(-eps), hi = (1.0 - xd).clamp_max(eps);
  double brute = 0;
  for (int64_t n = 0; n < 2; ++n) {
    double best_n = -1e300;
    for (int64_t mask = 0; mask < 32; ++mask) {
      double v = 0;
      for (int64_t i = 0; i < 5; ++i) {
        const double d = (mask >> i & 1) ? hi[n][i].template item<double>() : lo[n][i].template item<double>();
        v += g[n][i].template item<double>() * d;
      }
      best_n = std::max(best_n, v);
    }
    brute += best_n;
  }
  CHECK(ranged.template item<double>() == Approx(2.0 * brute / 2).epsilon(tol));
  CHECK_THROWS_WITH(rar::input_gradient_norm(
                        rar::InputGradientOptions().norm(rar::Norm::l2).clip_min(0).clip_max(1)),
                    Contains("rar::input_gradient_norm: a finite clip range is supported with "
                             "Norm::linf only, got clip_min = 0 and clip_max = 1 with Norm::l2"));
}
