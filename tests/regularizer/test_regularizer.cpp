// RAR loss terms: finite differences, the paper's one-layer theorem, the inner maximization,
// composition, side effects and bad input.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>
#include "support/skip.hpp"

#include "support/models.hpp"
#include "support/gradcheck.hpp"

using rar::test::max_rel_diff;

namespace {

using rar::test::check_parameter_gradients;

// The paper's one-layer setting: logits [0, ⟨w, x⟩], so ℓ(x) = softplus(−s⟨w, x⟩) with
// s = +1 for class 1 and −1 for class 0.
struct OneLayer {
  torch::nn::Linear net{nullptr};
  torch::Tensor w;
  explicit OneLayer(int64_t d) {
    torch::manual_seed(31);
    net = torch::nn::Linear(d, 2);
    net->to(torch::kDouble);
    w = torch::randn({d}, torch::kDouble);
    torch::NoGradGuard no_grad;
    net->weight.zero_();
    net->weight[1].copy_(w);
    net->bias.zero_();
  }
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    return rar::score::cross_entropy(net->forward(x), y);
  }
  // x* = x − ε·s·sign(w), the maximizer of the loss over the L∞ ball.
  torch::Tensor x_star(const torch::Tensor& x, const torch::Tensor& y, double eps) {
    const auto s = (2 * y - 1).to(torch::kDouble).view({-1, 1});
    return x - eps * s * w.sign().unsqueeze(0);
  }
};

}  // namespace

TEST_CASE("ig_norm, ig_sum_norm and input_gradient_norm match central differences in the parameters",
          "[regularizer][gradcheck]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(32);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  // A fresh term per evaluation draws the same random start; sign-ascent iterates are locally
  // constant in the parameters, so the term is a smooth function of them at this x′.
  SECTION("ig_norm") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(6).inner_stride(2).attack_steps(3).lambda(0.7);
    check_parameter_gradients(*net, [&] { return rar::ig_norm(opts)(net, x, y); });
  }
  SECTION("ig_sum_norm") {
    auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(6).inner_stride(3).attack_steps(3).beta(0.3);
    check_parameter_gradients(*net, [&] { return rar::ig_sum_norm(opts)(net, x, y); });
  }
  SECTION("ig_sum") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(5).inner_stride(1).attack_steps(2);
    check_parameter_gradients(*net, [&] { return rar::ig_sum(opts)(net, x, y); });
  }
  SECTION("input_gradient_norm, L-inf and L2") {
    for (auto norm : {rar::Norm::linf, rar::Norm::l2}) {
      auto opts = rar::InputGradientOptions().epsilon(0.2).norm(norm).lambda(1.5);
      check_parameter_gradients(*net, [&] { return rar::input_gradient_norm(opts)(net, x, y); });
    }
  }
}

TEST_CASE("one-layer theorem: max ||IG||_1 = max sum(IG) = loss(x*) - loss(x), found by exhaustive search",
          "[regularizer][theorem]") {
  const int64_t d = 10;
  OneLayer model(d);
  const double eps = 0.1;
  torch::manual_seed(33);
  const auto x = 0.4 + 0.2 * torch::rand({2, d}, torch::kDouble);
  const auto y = torch::tensor({1, 0});
  // Every corner of the L∞ ball (2^10 of them) for each sample.
  const int64_t corners = int64_t{1} << d;
  const auto bits = torch::arange(corners).unsqueeze(1).bitwise_right_shift(torch::arange(d)).bitwise_and(1);
  const auto signs = (2 * bits - 1).to(torch::kDouble);
  for (int64_t n = 0; n < 2; ++n) {
    const auto xn = x[n].unsqueeze(0);
    const auto yn = y[n].expand({corners}).contiguous();
    const auto points = xn + eps * signs;
    const auto ig = rar::integrated_gradients(
        model.net, points,
        rar::IGOptions().baseline(xn).target(yn).steps(48).score(rar::score::cross_entropy));
    const auto l1 = ig.abs().sum(1);
    const auto sum = ig.sum(1);
    const auto star = model.x_star(xn, y[n].view({1}), eps);
    const double gain = (model.loss(star, y[n].view({1})) - model.loss(xn, y[n].view({1}))).item<double>();
    const int64_t best = l1.argmax().item<int64_t>();
    CHECK(max_rel_diff(points[best].unsqueeze(0), star) < 1e-15);  // the maximizer is x*
    CHECK(l1.max().item<double>() == Approx(gain).epsilon(1e-10));
    CHECK(sum.max().item<double>() == Approx(gain).epsilon(1e-10));
  }
}

TEST_CASE("one-layer theorem: IG-NORM at x* equals (1 - lambda) loss(x) + lambda loss(x*)",
          "[regularizer][theorem]") {
  OneLayer model(8);
  const double eps = 0.1;
  torch::manual_seed(34);
  const auto x = 0.4 + 0.2 * torch::rand({3, 8}, torch::kDouble);
  const auto y = torch::tensor({1, 0, 1});
  const auto star = model.x_star(x, y, eps);
  for (double lambda : {0.0, 0.5, 1.0, 2.0}) {
    // m = 2000 right-Riemann points: the quadrature error is O(1/m).
    auto opts = rar::IGSumNormOptions().epsilon(eps).steps(2000).inner_stride(2000).attack_steps(20)
                    .random_start(false).beta(lambda);
    auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
    opts.diagnostics(diag);
    // IG-SUM-NORM's deterministic ascent from x reaches x* (the loss gradient leads there).
    rar::ig_sum_norm(opts)(model.net, x, y);
    CHECK(max_rel_diff(diag->adversarial, star) < 1e-15);
    // ℓ(x) + λ‖IG(x, x*)‖₁ = (1 − λ)ℓ(x) + λℓ(x*): strong and weak instantiations coincide.
    const auto ig = rar::integrated_gradients(
        model.net, star, rar::IGOptions().baseline(x).target(y).steps(64).score(rar::score::cross_entropy));
    const auto ig_norm_value = model.loss(x, y) + lambda * ig.abs().sum(1);
    const auto expected = (1 - lambda) * model.loss(x, y) + lambda * model.loss(star, y);
    CHECK(max_rel_diff(ig_norm_value, expected) < 1e-10);
  }
}

TEST_CASE("Madry's PGD from x (no random start) reaches x* on the one-layer model",
          "[regularizer][theorem]") {
  OneLayer model(8);
  torch::manual_seed(35);
  const auto x = 0.4 + 0.2 * torch::rand({3, 8}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 1});
  const auto adv = rar::pgd_attack(model.net, x, y,
                                   rar::PGDOptions().epsilon(0.1).steps(15).step_size(0.01).random_start(false));
  CHECK(max_rel_diff(adv, model.x_star(x, y, 0.1)) < 1e-15);
  // And the term is ℓ(x*), averaged.
  const auto term = rar::adversarial(rar::PGDOptions().epsilon(0.1).steps(15).random_start(false));
  CHECK(term(model.net, x, y).item<double>() ==
        Approx(model.loss(model.x_star(x, y, 0.1), y).mean().item<double>()).epsilon(1e-12));
}

TEST_CASE("ig_norm's inner maximization stays in the ball, increases the objective and gets close to the maximum",
          "[regularizer][inner]") {
  const int64_t d = 10;
  OneLayer model(d);
  const double eps = 0.1;
  torch::manual_seed(36);
  const auto x = 0.05 + 0.9 * torch::rand({16, d}, torch::kDouble);  // some near the range ends
  const auto y = torch::randint(2, {16}, torch::kLong);
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  auto opts = rar::IGNormOptions().epsilon(eps).steps(20).inner_stride(4).attack_steps(20).diagnostics(diag);
  const auto value = rar::ig_norm(opts)(model.net, x, y);
  const auto& adv = diag->adversarial;
  CHECK((adv - x).abs().max().item<double>() <= eps + 1e-12);
  CHECK(adv.min().item<double>() >= 0.0);
  CHECK(adv.max().item<double>() <= 1.0);
  REQUIRE(diag->objective.size() == 21);
  CHECK(diag->objective.back() > diag->objective.front());
  // The maximum over the ball ∩ range is at x* clipped to [0, 1] (still a corner of the box).
  const auto star = model.x_star(x, y, eps).clamp(0.0, 1.0);
  const double best = (model.loss(star, y) - model.loss(x, y)).mean().item<double>();
  CHECK(value.item<double>() >= 0.6 * best);
  CHECK(value.item<double>() <= best * 1.05);  // right-Riemann error with m = 20 is a few %
}

TEST_CASE("a start function replaces the random start; its point is projected onto the ball and range",
          "[regularizer][inner]") {
  OneLayer model(8);
  const double eps = 0.1;
  torch::manual_seed(39);
  const auto x = 0.4 + 0.2 * torch::rand({3, 8}, torch::kDouble);
  const auto y = torch::tensor({1, 0, 1});
  const auto star = model.x_star(x, y, eps);
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  // Three times x*'s step: outside the ball, so the start is projected back onto x*.
  const auto far = x + 3 * (star - x);
  int64_t calls = 0;
  auto opts = rar::IGSumNormOptions().epsilon(eps).steps(40).inner_stride(8).attack_steps(0)
                  .diagnostics(diag).start([&](const torch::Tensor& batch) {
                    ++calls;
                    CHECK(batch.equal(x));
                    return far;
                  });
  const auto value = rar::ig_sum_norm(opts)(model.net, x, y);
  CHECK(calls == 1);
  CHECK(max_rel_diff(diag->adversarial, star) < 1e-15);
  const auto at_star = rar::ig_sum_norm(rar::IGSumNormOptions(opts).start(
      [&](const torch::Tensor&) { return star; }))(model.net, x, y);
  CHECK(value.item<double>() == at_star.item<double>());
  // A start at x with random_start left on is the deterministic run (no draw is made).
  auto from_x = rar::IGSumNormOptions(opts).attack_steps(20).start(
      [](const torch::Tensor& batch) { return batch; });
  rar::ig_sum_norm(from_x)(model.net, x, y);
  CHECK(max_rel_diff(diag->adversarial, star) < 1e-15);
  // The range clips the start as well: a start below 0 lands on 0.
  const auto low = rar::IGNormOptions().epsilon(0.7).attack_steps(0).steps(4).inner_stride(2)
                       .diagnostics(diag).start([](const torch::Tensor& b) { return b - 10; });
  rar::ig_norm(low)(model.net, x, y);
  CHECK(diag->adversarial.equal(torch::zeros_like(x)));
  CHECK_THROWS_WITH(
      rar::ig_norm(rar::IGNormOptions().start([](const torch::Tensor& b) { return b[0]; }))(
          model.net, x, y),
      Catch::Contains("rar::ig_norm: the start function must return a tensor of x's shape [3, 8], got [8]"));
}

TEST_CASE("terms compose with + and scalar *, and user callables are terms", "[regularizer]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  torch::manual_seed(37);
  const auto x = torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto ig_opts = rar::IGNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2);
  auto user = [](auto& model, const torch::Tensor& in, const torch::Tensor&) {
    return rar::call_model(model, in).pow(2).mean();
  };
  const auto objective = rar::cross_entropy() + 2.0 * rar::ig_norm(ig_opts) + user;
  const double combined = objective(net, x, y).item<double>();
  const double parts = rar::cross_entropy()(net, x, y).item<double>() +
                       2.0 * rar::ig_norm(ig_opts)(net, x, y).item<double>() +
                       user(net, x, y).item<double>();
  CHECK(combined == Approx(parts).epsilon(1e-13));
  const double sum_red = rar::cross_entropy(rar::Reduction::sum)(net, x, y).item<double>();
  CHECK(sum_red == Approx(4 * rar::cross_entropy()(net, x, y).item<double>()).epsilon(1e-13));
  CHECK((rar::cross_entropy() * 0.5)(net, x, y).item<double>() ==
        Approx(0.5 * rar::cross_entropy()(net, x, y).item<double>()).epsilon(1e-14));
}

TEST_CASE("RAR terms leave parameter gradients and modes untouched until backward", "[regularizer][side-effects]") {
  torch::manual_seed(38);
  torch::nn::Sequential net(torch::nn::Linear(4, 6), torch::nn::Tanh(), torch::nn::Linear(6, 3));
  net->to(torch::kDouble);
  const auto x = torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2});
  net->eval();
  const rar::test::ModuleState before(*net);
  auto term = rar::ig_norm(rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(3)) +
              rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2).attack_steps(3)) +
              rar::adversarial(rar::PGDOptions().steps(3)) + rar::input_gradient_norm();
  const auto loss = term(net, x, y);
  CHECK(rar::test::ModuleState(*net) == before);  // no .grad written by the inner loops
  loss.backward();
  for (const auto& p : net->parameters()) CHECK(p.grad().defined());
}

TEST_CASE("each call of a RAR term draws a new random start; a seed makes runs reproducible",
          "[regularizer]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const auto x = torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto opts = rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(1).seed(9);
  auto a = rar::ig_norm(opts), b = rar::ig_norm(opts);
  const double a1 = a(net, x, y).item<double>(), a2 = a(net, x, y).item<double>();
  const double b1 = b(net, x, y).item<double>(), b2 = b(net, x, y).item<double>();
  CHECK(a1 == b1);
  CHECK(a2 == b2);
  CHECK(a1 != a2);
}

TEST_CASE("RAR terms reject bad options and inputs with clear messages", "[regularizer][errors]") {
  using Catch::Contains;
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const auto x = torch::rand({2, 4}, torch::kDouble);
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().epsilon(-0.1)), Contains("rar::ig_norm: epsilon must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().steps(0)), Contains("rar::ig_norm: steps must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().steps(10).inner_stride(11)),
                    Contains("rar::ig_sum_norm: inner_stride must lie in [1, steps = 10], got 11"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().clip_min(1).clip_max(0)), Contains("clip_min must be <= clip_max"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().steps(10).inner_stride(3)),
                    Contains("rar::ig_norm: inner_stride must divide steps, got steps = 10 and inner_stride = 3"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().lambda(-1)), Contains("rar::ig_norm: lambda must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().beta(-0.5)), Contains("rar::ig_sum_norm: beta must be finite and >= 0, got -0.5"));
  CHECK_THROWS_WITH(rar::input_gradient_norm(rar::InputGradientOptions().epsilon(-1)), Contains("rar::input_gradient_norm: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::adversarial(rar::PGDOptions().epsilon(-1)), Contains("rar::adversarial: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::ig_norm()(net, x, torch::tensor({0, 1, 2})), Contains("rar::ig_norm: y must be int64 labels of shape [2], got [3]"));
  CHECK_THROWS_WITH(rar::cross_entropy()(net, x, torch::tensor({0.0, 1.0})), Contains("rar::cross_entropy: y must be int64 labels"));
  CHECK_THROWS_WITH(rar::ig_sum_norm()(net, x, torch::tensor({0, 7})), Contains("target class indices must lie in [0, 3)"));
}

TEST_CASE("IG-NORM on CUDA matches the CPU", "[regularizer][cuda]") {
  RAR_REQUIRE_CUDA();
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const auto x = torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const auto opts = rar::IGNormOptions().steps(6).inner_stride(2).attack_steps(3);
  const double cpu = rar::ig_norm(opts)(net, x, y).item<double>();
  net->to(torch::kCUDA);
  const double gpu = rar::ig_norm(opts)(net, x.cuda(), y.cuda()).item<double>();
  CHECK(gpu == Approx(cpu).epsilon(1e-9));
  net->to(torch::kCPU);
}
