// The threat model defined once: the ball and ascent blocks, the flat setters that forward to
// them, one validation per block, the projection, the step, the random start and the ascent loop
// with its per-iterate callback.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"

#include <cmath>
#include <limits>
#include <vector>

using Catch::Contains;

namespace {

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// A linear objective ⟨w_n, x_n⟩ per sample and its ascent direction w.
rar::AscentDirection linear_direction(const torch::Tensor& w, const torch::Tensor& x_adv) {
  return {w.clone(), (w * x_adv).flatten(1).sum(1)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Blocks and flat setters

TEST_CASE("every options struct keeps its flat setters and defaults, forwarding to the blocks",
          "[threat_model][options]") {
  SECTION("PGDOptions") {
    const rar::PGDOptions d;
    CHECK(d.epsilon() == 0.3);
    CHECK(d.norm() == rar::Norm::linf);
    CHECK(d.clip_min() == 0.0);
    CHECK(d.clip_max() == 1.0);
    CHECK(d.steps() == 40);
    CHECK(d.step_size() == 0.01);
    CHECK(d.random_start());
    CHECK(d.seed() == 0);
    const auto o = rar::PGDOptions().epsilon(0.1).norm(rar::Norm::l2).clip_min(-1).clip_max(2)
                       .steps(7).step_size(0.5).random_start(false).seed(9);
    CHECK(o.ball().epsilon() == 0.1);
    CHECK(o.ball().norm() == rar::Norm::l2);
    CHECK(o.ball().clip_min() == -1.0);
    CHECK(o.ball().clip_max() == 2.0);
    CHECK(o.ascent().steps() == 7);
    CHECK(o.ascent().step_size() == 0.5);
    CHECK_FALSE(o.ascent().random_start());
    CHECK(o.ascent().seed() == 9);
    // A block set as a whole is read back through the flat getters; the mutable getters write
    // into the block.
    auto p = rar::PGDOptions().ball(rar::BallOptions().epsilon(0.25).clip_max(255));
    CHECK(p.epsilon() == 0.25);
    CHECK(p.clip_max() == 255.0);
    p.steps() = 3;
    CHECK(p.ascent().steps() == 3);
  }
  SECTION("AttributionAttackOptions: iterations are the ascent's steps, no random start") {
    const rar::AttributionAttackOptions d;
    CHECK(d.iterations() == 100);
    CHECK(d.ascent().steps() == 100);
    CHECK_FALSE(d.random_start());
    CHECK(d.epsilon() == 0.3);
    CHECK(d.step_size() == 0.01);
    CHECK(d.norm() == rar::Norm::linf);
    CHECK(rar::AttributionAttackOptions().iterations(12).ascent().steps() == 12);
    CHECK(rar::AttributionAttackOptions().norm(rar::Norm::l2).ball().norm() == rar::Norm::l2);
  }
  SECTION("IGNormOptions and IGSumNormOptions: attack_steps and attack_step_size") {
    const rar::IGNormOptions d;
    CHECK(d.steps() == 50);  // IG points, not ascent steps
    CHECK(d.attack_steps() == 40);
    CHECK(d.attack_step_size() == 0.01);
    CHECK(d.random_start());
    const auto o = rar::IGNormOptions().attack_steps(5).attack_step_size(0.2).seed(4).epsilon(0.1);
    CHECK(o.ascent().steps() == 5);
    CHECK(o.ascent().step_size() == 0.2);
    CHECK(o.ascent().seed() == 4);
    CHECK(o.ball().epsilon() == 0.1);
    CHECK(o.steps() == 50);
    const auto s = rar::IGSumNormOptions().attack_steps(6).clip_max(2);
    CHECK(s.ascent().steps() == 6);
    CHECK(s.ball().clip_max() == 2.0);
    CHECK(s.beta() == 0.1);
  }
  SECTION("MaxSensitivityOptions and InputGradientOptions: a ball without a clip range") {
    const double inf = std::numeric_limits<double>::infinity();
    const rar::MaxSensitivityOptions m;
    CHECK(m.radius() == 0.02);
    CHECK(m.ball().epsilon() == 0.02);
    CHECK(m.clip_min() == -inf);
    CHECK(m.clip_max() == inf);
    CHECK(rar::MaxSensitivityOptions().radius(0.5).ball().epsilon() == 0.5);
    const rar::InputGradientOptions g;
    CHECK(g.epsilon() == 0.3);
    CHECK(g.ball().clip_min() == -inf);
    CHECK(rar::InputGradientOptions().norm(rar::Norm::l2).ball().norm() == rar::Norm::l2);
  }
  SECTION("one ball shared by several methods") {
    const auto ball = rar::BallOptions().epsilon(8.0 / 255).clip_max(1.0);
    const auto ascent = rar::AscentOptions().steps(7).step_size(2.0 / 255);
    const auto pgd = rar::PGDOptions().ball(ball).ascent(ascent);
    const auto reg = rar::IGNormOptions().ball(pgd.ball()).ascent(pgd.ascent());
    const auto attack = rar::AttributionAttackOptions().ball(ball);
    CHECK(reg.epsilon() == pgd.epsilon());
    CHECK(reg.attack_steps() == 7);
    CHECK(reg.attack_step_size() == 2.0 / 255);
    CHECK(attack.epsilon() == 8.0 / 255);
  }
}

TEST_CASE("each block is validated once: the message names the function, the field and the value",
          "[threat_model][errors]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const auto x = torch::rand({2, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  const double inf = std::numeric_limits<double>::infinity();
  // The ball: epsilon (finite, >= 0) and the clip range, for every user of the block.
  CHECK_THROWS_WITH(rar::pgd_attack(net, x, y, rar::PGDOptions().epsilon(inf)),
                    Contains("rar::pgd_attack: epsilon must be finite and >= 0, got inf"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().epsilon(-2)),
                    Contains("rar::ig_norm: epsilon must be finite and >= 0, got -2"));
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().clip_min(3).clip_max(2)),
                    Contains("rar::ig_sum_norm: clip_min must be <= clip_max, got clip_min = 3 "
                             "and clip_max = 2"));
  CHECK_THROWS_WITH(rar::adversarial(rar::PGDOptions().epsilon(-1)),
                    Contains("rar::adversarial: epsilon must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::input_gradient_norm(rar::InputGradientOptions().clip_min(1).clip_max(0)),
                    Contains("rar::input_gradient_norm: clip_min must be <= clip_max"));
  const auto identity = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) { return in; };
  CHECK_THROWS_WITH(
      rar::max_sensitivity(net, identity, x, rar::MaxSensitivityOptions().radius(inf)),
      Contains("rar::max_sensitivity: radius must be finite and >= 0, got inf"));
  // The ascent: steps (>= 0) and step_size (finite, >= 0), under each struct's own names.
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().attack_steps(-1)),
                    Contains("rar::ig_norm: attack_steps must be >= 0, got -1"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().attack_step_size(inf)),
                    Contains("rar::ig_norm: attack_step_size must be finite and >= 0, got inf"));
  CHECK_THROWS_WITH(rar::adversarial(rar::PGDOptions().steps(-3)),
                    Contains("rar::adversarial: steps must be >= 0, got -3"));
  CHECK_THROWS_WITH(rar::pgd_attack(net, x, y, rar::PGDOptions().step_size(-0.5)),
                    Contains("rar::pgd_attack: step_size must be finite and >= 0, got -0.5"));
  const auto saliency = rar::explain::saliency();
  CHECK_THROWS_WITH(rar::attribution_attack(net, net, saliency, x, y,
                                            rar::AttributionAttackOptions().k(2).iterations(-4)),
                    Contains("rar::attribution_attack: iterations must be >= 0, got -4"));
  CHECK_THROWS_WITH(
      rar::attribution_attack(net, net, saliency, x, y,
                              rar::AttributionAttackOptions().k(2).epsilon(std::nan(""))),
      Contains("rar::attribution_attack: epsilon must be finite and >= 0, got nan"));
}

// ---------------------------------------------------------------------------------------------
// Projection, step, random start

TEMPLATE_TEST_CASE("project_to_ball clamps to the L-inf cube, scales into the L2 ball and clips "
                   "to the range",
                   "[threat_model]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  const double tol = rar::test::tolerance<TestType>();
  const auto x = torch::tensor({{0.5, 0.5, 0.5}, {0.1, 0.9, 0.5}}, dtype);
  const auto moved = torch::tensor({{0.9, 0.3, 0.55}, {0.1, 0.9, 0.5}}, dtype);
  const auto linf = rar::project_to_ball(moved, x, rar::BallOptions().epsilon(0.1));
  CHECK(max_abs(linf - torch::tensor({{0.6, 0.4, 0.55}, {0.1, 0.9, 0.5}}, dtype)) < tol);
  // L2: δ = (0.4, −0.2, 0.05) has norm 0.45; scaled to ε = 0.3.
  const auto l2 = rar::project_to_ball(moved, x, rar::BallOptions().epsilon(0.3).norm(rar::Norm::l2));
  const auto delta = torch::tensor({0.4, -0.2, 0.05}, dtype);
  CHECK(max_abs(l2[0] - (x[0] + delta * (0.3 / std::sqrt(0.2025)))) < tol);
  CHECK(max_abs(l2[1] - x[1]) < tol);  // inside the ball: unchanged
  // The range clips after the ball.
  const auto clipped =
      rar::project_to_ball(moved, x, rar::BallOptions().epsilon(1.0).clip_min(0.35).clip_max(0.8));
  CHECK(max_abs(clipped - moved.clamp(0.35, 0.8)) < tol);
  // One ascent step: sign for L-inf, normalized for L2.
  const auto g = torch::tensor({{3.0, -4.0, 0.0}, {0.0, 0.0, 2.0}}, dtype);
  CHECK(max_abs(rar::ascent_step(x, g, 0.1, rar::Norm::linf) -
                (x + 0.1 * torch::tensor({{1.0, -1.0, 0.0}, {0.0, 0.0, 1.0}}, dtype))) < tol);
  CHECK(max_abs(rar::ascent_step(x, g, 0.5, rar::Norm::l2) -
                (x + 0.5 * torch::tensor({{0.6, -0.8, 0.0}, {0.0, 0.0, 1.0}}, dtype))) < tol);
}

TEST_CASE("random_start is uniform in the L-inf cube and in the L2 ball, inside the range",
          "[threat_model][random]") {
  const auto x = torch::full({4000, 3}, 0.5, torch::kDouble);
  at::Generator gen = rar::seeded_generator(3);
  const auto cube = rar::random_start(gen, x, rar::BallOptions().epsilon(0.2));
  CHECK(max_abs(cube - x) <= 0.2);
  CHECK((cube - x).mean().item<double>() == Approx(0.0).margin(0.01));
  // Uniform on [−ε, ε]: variance ε²/3.
  CHECK((cube - x).var().item<double>() == Approx(0.04 / 3).epsilon(0.05));
  const auto ball = rar::random_start(gen, x, rar::BallOptions().epsilon(0.2).norm(rar::Norm::l2));
  const auto r = (ball - x).norm(2, 1) / 0.2;
  CHECK(r.max().item<double>() <= 1.0 + 1e-12);
  // Uniform in a 3-ball: (r/ε)³ ~ U(0, 1).
  CHECK(r.pow(3).mean().item<double>() == Approx(0.5).margin(0.02));
  const auto near_edge = torch::full({100, 3}, 0.95, torch::kDouble);
  const auto clipped = rar::random_start(gen, near_edge, rar::BallOptions().epsilon(0.2));
  CHECK(clipped.max().item<double>() <= 1.0);
  // ascent_start: x itself without random_start, stream (seed, index) with it.
  CHECK(rar::ascent_start(x, rar::BallOptions(), rar::AscentOptions().random_start(false)).equal(x));
  at::Generator g5 = rar::seeded_generator(5, 2);
  CHECK(rar::ascent_start(x, rar::BallOptions(), rar::AscentOptions().seed(5), 2)
            .equal(rar::random_start(g5, x, rar::BallOptions())));
}

// ---------------------------------------------------------------------------------------------
// The ascent loop

TEMPLATE_TEST_CASE("projected_ascent on a linear objective reaches the analytic maximizer",
                   "[threat_model][ascent]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  const double tol = rar::test::tolerance<TestType>();
  torch::manual_seed(3);
  const auto x = (0.3 + 0.4 * torch::rand({5, 6}, torch::kDouble)).to(dtype);
  const auto w = torch::randn({5, 6}, torch::kDouble).to(dtype);
  const auto direction = [&](const torch::Tensor& p) { return linear_direction(w, p); };
  // L-inf: x + ε·sign(w), reached after steps·α ≥ ε.
  const auto linf = rar::BallOptions().epsilon(0.1);
  const auto a = rar::projected_ascent(x, x, linf, rar::AscentOptions().steps(4).step_size(0.03),
                                       direction);
  CHECK(max_abs(a - (x + 0.1 * w.sign())) < tol);
  // L2: x + ε·w/‖w‖ per sample, along the direction at every step.
  const auto l2 = rar::BallOptions().epsilon(0.2).norm(rar::Norm::l2);
  const auto b = rar::projected_ascent(x, x, l2, rar::AscentOptions().steps(3).step_size(0.1),
                                       direction);
  CHECK(max_abs(b - (x + 0.2 * w / w.norm(2, 1, true))) < tol);
  // A bare tensor is a direction too.
  const auto c = rar::projected_ascent(x, x, linf, rar::AscentOptions().steps(4).step_size(0.03),
                                       [&](const torch::Tensor&) { return w; });
  CHECK(c.equal(a));
}

TEST_CASE("the ascent callback sees every iterate with its objective and can stop the ascent",
          "[threat_model][ascent][callback]") {
  torch::manual_seed(4);
  const auto x = 0.3 + 0.4 * torch::rand({3, 4}, torch::kDouble);
  const auto w = torch::randn({3, 4}, torch::kDouble);
  const auto ball = rar::BallOptions().epsilon(0.1);
  const auto ascent = rar::AscentOptions().steps(5).step_size(0.01);
  std::vector<int64_t> seen;
  std::vector<torch::Tensor> iterates, values;
  const auto record = [&](int64_t t, const torch::Tensor& it, const torch::Tensor& value) {
    seen.push_back(t);
    iterates.push_back(it);
    values.push_back(value);
  };
  const auto result = rar::projected_ascent(
      x, x, ball, ascent, [&](const torch::Tensor& p) { return linear_direction(w, p); }, record);
  REQUIRE(seen == std::vector<int64_t>({0, 1, 2, 3, 4, 5}));
  CHECK(iterates[0].equal(x));
  CHECK(iterates[5].equal(result));
  CHECK_FALSE(values[5].defined());  // the last iterate's objective is not computed
  for (int64_t t = 0; t < 5; ++t) {
    // Each step moves every coordinate by α along sign(w): ⟨w, x_t⟩ = ⟨w, x⟩ + t·α·‖w‖₁.
    const auto expected = (w * x).sum(1) + 0.01 * static_cast<double>(t) * w.abs().sum(1);
    CHECK(max_abs(values[static_cast<size_t>(t)] - expected) < 1e-12);
  }
  // Returning true stops the loop at that iterate.
  int64_t calls = 0;
  const auto stopped = rar::projected_ascent(
      x, x, ball, ascent, [&](const torch::Tensor& p) { return linear_direction(w, p); },
      [&](int64_t t, const torch::Tensor&, const torch::Tensor&) {
        ++calls;
        return t == 2;
      });
  CHECK(calls == 3);
  CHECK(stopped.equal(iterates[2]));
  // Without steps the callback sees the start once, with no objective.
  int64_t once = 0;
  rar::projected_ascent(x, x, ball, rar::AscentOptions().steps(0), [&](const torch::Tensor& p) {
    return linear_direction(w, p);
  }, [&](int64_t t, const torch::Tensor& it, const torch::Tensor& value) {
    ++once;
    CHECK(t == 0);
    CHECK(it.equal(x));
    CHECK_FALSE(value.defined());
  });
  CHECK(once == 1);
}

TEST_CASE("PGD reports each iterate's per-sample loss to its callback and stops when asked",
          "[threat_model][pgd][callback]") {
  auto model = rar::test::linear_model(6, 3);
  torch::manual_seed(5);
  const auto x = 0.3 + 0.4 * torch::rand({4, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  std::vector<torch::Tensor> iterates, losses;
  auto opts = rar::PGDOptions().epsilon(0.1).steps(6).step_size(0.02).seed(3).callback(
      [&](int64_t, const torch::Tensor& it, const torch::Tensor& loss) {
        iterates.push_back(it);
        losses.push_back(loss);
      });
  const auto x_adv = rar::pgd_attack(model, x, y, opts);
  REQUIRE(iterates.size() == 7);
  CHECK(iterates.back().equal(x_adv));
  for (size_t t = 0; t < 6; ++t) {
    const auto expected = rar::score::cross_entropy(model->forward(iterates[t]), y).detach();
    CHECK(max_abs(losses[t] - expected) < 1e-12);
  }
  // The loss climbs (a linear model: the sign step is the exact steepest ascent in L-inf).
  CHECK((losses[5] > losses[0]).all().item<bool>());
  // Targeted: the objective reported is what the steps climb, −loss.
  losses.clear();
  iterates.clear();
  rar::pgd_attack(model, x, y, rar::PGDOptions(opts).targeted(true).steps(1));
  CHECK(max_abs(losses[0] + rar::score::cross_entropy(model->forward(iterates[0]), y)) < 1e-12);
  // Stopping after two steps returns what two steps give.
  const auto two = rar::pgd_attack(
      model, x, y,
      rar::PGDOptions(opts).callback(
          [](int64_t t, const torch::Tensor&, const torch::Tensor&) { return t == 2; }));
  CHECK(two.equal(rar::pgd_attack(model, x, y,
                                  rar::PGDOptions(opts).steps(2).callback(rar::AscentCallback()))));
}
