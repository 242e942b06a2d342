// The cheaper-training levers of the robust-IG terms (quadrature, inner objective,
// penalty_every, first_call) and the recipe IGSumNormOptions::fast: equality with today's term
// where a lever is off, independent recomputation where it is on, finite differences, and the
// errors.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/gradcheck.hpp"
#include "support/models.hpp"
#include "support/residual.hpp"

// Named, not anonymous: the unity build puts this file in one translation unit with others.
namespace levers_test {

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

struct Batch {
  torch::Tensor x, y;
};

Batch batch(int64_t n = 4, int64_t d = 4, uint64_t seed = 40) {
  torch::manual_seed(seed);
  return {0.2 + 0.6 * torch::rand({n, d}, torch::kDouble), torch::randint(3, {n}, torch::kLong)};
}

// λ·‖IG‖₁ of the loss along x → x′ (and ℓ(x′) for IG-SUM-NORM), computed with
// rar::integrated_gradients: the formula the terms must implement, independently.
template <class Model>
torch::Tensor reference_objective(Model& net, const torch::Tensor& x, const torch::Tensor& x_adv,
                                  const torch::Tensor& y, rar::Quadrature rule, int64_t points,
                                  double weight, bool with_loss) {
  const torch::Tensor ig = rar::integrated_gradients(
      net, x_adv,
      rar::IGOptions().baseline(x).target(y).steps(points).method(rule).score(
          rar::score::cross_entropy));
  torch::Tensor value = weight * ig.abs().flatten(1).sum(1);
  if (with_loss) {
    torch::NoGradGuard no_grad;
    value = value + rar::score::cross_entropy(net->forward(x_adv), y);
  }
  return value.detach();
}

}  // namespace levers_test

namespace lt = levers_test;

TEST_CASE("the levers switched off give today's terms exactly", "[regularizer][levers]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const lt::Batch b = lt::batch();
  const auto base = rar::IGNormOptions().epsilon(0.1).steps(6).inner_stride(2).attack_steps(3).seed(4);
  const auto off = rar::IGNormOptions(base)
                       .quadrature(rar::Quadrature::riemann_right)
                       .inner_objective(rar::InnerObjective::full)
                       .penalty_every(1)
                       .first_call(0);
  auto today = rar::ig_norm(base);
  auto levers = rar::ig_norm(off);
  for (int call = 0; call < 2; ++call) {
    const torch::Tensor a = today(net, b.x, b.y), c = levers(net, b.x, b.y);
    CHECK(a.item<double>() == c.item<double>());
    auto ga = torch::autograd::grad({a}, net->parameters());
    auto gc = torch::autograd::grad({c}, net->parameters());
    for (size_t i = 0; i < ga.size(); ++i) CHECK(torch::equal(ga[i], gc[i]));
  }
  // first_call = i is call i of a term that starts at 0: the same stream (seed, i).
  auto counted = rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2).attack_steps(2).seed(7));
  for (int i = 0; i < 3; ++i) counted(net, b.x, b.y);
  const double fourth = counted(net, b.x, b.y).item<double>();
  const double jumped =
      rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2).attack_steps(2).seed(7).first_call(3))(
          net, b.x, b.y).item<double>();
  CHECK(fourth == jumped);
}

TEST_CASE("quadrature: the inner ascent uses m / inner_stride points of the rule, the objective all m",
          "[regularizer][levers]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const lt::Batch b = lt::batch();
  for (const bool sum_norm : {false, true}) {
    INFO((sum_norm ? "ig_sum_norm" : "ig_norm"));
    auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
    torch::Tensor start;
    auto callback = [&](int64_t t, const torch::Tensor& iterate, const torch::Tensor&) {
      if (t == 0) start = iterate.clone();
    };
    torch::Tensor value;
    if (sum_norm) {
      value = rar::ig_sum_norm(rar::IGSumNormOptions()
                                   .epsilon(0.1).steps(6).inner_stride(2).attack_steps(2).beta(0.4)
                                   .quadrature(rar::Quadrature::gauss_legendre)
                                   .reduction(rar::Reduction::sum)
                                   .diagnostics(diag).callback(callback))(net, b.x, b.y);
    } else {
      value = rar::ig_norm(rar::IGNormOptions()
                               .epsilon(0.1).steps(6).inner_stride(2).attack_steps(2).lambda(0.4)
                               .quadrature(rar::Quadrature::gauss_legendre)
                               .reduction(rar::Reduction::sum)
                               .diagnostics(diag).callback(callback))(net, b.x, b.y);
    }
    // The objective at the maximizer: 6 Gauss-Legendre points.
    const auto outer = lt::reference_objective(net, b.x, diag->adversarial, b.y,
                                           rar::Quadrature::gauss_legendre, 6, 0.4, sum_norm);
    CHECK(value.item<double>() == Approx(outer.sum().item<double>()).epsilon(1e-10));
    // The inner objective at the start: 3 Gauss-Legendre points.
    const auto inner = lt::reference_objective(net, b.x, start, b.y, rar::Quadrature::gauss_legendre,
                                           3, 0.4, sum_norm);
    CHECK(diag->objective.front() == Approx(inner.mean().item<double>()).epsilon(1e-10));
    // ... and not the right-Riemann one.
    const auto riemann = lt::reference_objective(net, b.x, start, b.y, rar::Quadrature::riemann_right,
                                             3, 0.4, sum_norm);
    CHECK(std::abs(diag->objective.front() - riemann.mean().item<double>()) > 1e-6);
  }
}

TEST_CASE("inner_objective(loss): the ascent climbs the loss alone and reaches x* on the one-layer model",
          "[regularizer][levers][theorem]") {
  // The one-layer model of the paper: logits [0, <w, x>]; the loss's maximizer over the L-inf
  // ball is x* = x - eps * s * sign(w), which sign ascent on the loss reaches from x.
  const int64_t d = 8;
  torch::manual_seed(41);
  torch::nn::Linear net(d, 2);
  net->to(torch::kDouble);
  const auto w = torch::randn({d}, torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    net->weight.zero_();
    net->weight[1].copy_(w);
    net->bias.zero_();
  }
  const auto x = 0.3 + 0.4 * torch::rand({6, d}, torch::kDouble);
  const auto y = torch::randint(2, {6}, torch::kLong);
  const double eps = 0.05;
  const auto s = (2 * y - 1).to(torch::kDouble).view({-1, 1});
  const auto star = x - eps * s * w.sign().unsqueeze(0);
  std::vector<torch::Tensor> objectives, iterates;
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  auto opts = rar::IGNormOptions()
                  .epsilon(eps).steps(4).inner_stride(4).attack_steps(3).attack_step_size(0.02)
                  .random_start(false).inner_objective(rar::InnerObjective::loss)
                  .diagnostics(diag)
                  .callback([&](int64_t, const torch::Tensor& it, const torch::Tensor& obj) {
                    iterates.push_back(it);
                    objectives.push_back(obj);
                  });
  rar::ig_norm(opts)(net, x, y);
  CHECK(lt::max_abs(diag->adversarial - star) < 1e-12);
  // The objective the callback sees is the per-sample loss at the iterate.
  for (size_t t = 0; t + 1 < iterates.size(); ++t) {
    REQUIRE(objectives[t].defined());
    torch::NoGradGuard no_grad;
    CHECK(lt::max_abs(objectives[t] - rar::score::cross_entropy(net->forward(iterates[t]), y)) < 1e-12);
  }
}

TEST_CASE("penalty_every = k: the penalty on every k-th call, weighted k; the calls between are cheap",
          "[regularizer][levers]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const lt::Batch b = lt::batch();
  const int64_t k = 3;
  // Deterministic ascent (no random start), so that calls differ only by the lever.
  const auto base = rar::IGNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2).random_start(false).lambda(0.5);
  const double plain = rar::ig_norm(base)(net, b.x, b.y).item<double>();
  auto every = rar::ig_norm(rar::IGNormOptions(base).penalty_every(k));
  std::vector<double> values;
  for (int i = 0; i < 2 * k; ++i) {
    const torch::Tensor v = every(net, b.x, b.y);
    v.backward();  // every call can be differentiated, the empty ones too
    values.push_back(v.item<double>());
  }
  CHECK(values[0] == Approx(k * plain).epsilon(1e-12));
  CHECK(values[3] == Approx(k * plain).epsilon(1e-12));
  for (const int i : {1, 2, 4, 5}) CHECK(values[i] == 0.0);
  // Unbiased: the mean over k calls is the term.
  CHECK((values[0] + values[1] + values[2]) / k == Approx(plain).epsilon(1e-12));
  // first_call moves the phase: with first_call = 2 the second call is the penalized one.
  auto shifted = rar::ig_norm(rar::IGNormOptions(base).penalty_every(k).first_call(2));
  CHECK(shifted(net, b.x, b.y).item<double>() == 0.0);
  CHECK(shifted(net, b.x, b.y).item<double>() == Approx(k * plain).epsilon(1e-12));

  // IG-SUM-NORM between penalized calls is Madry's objective: the loss at the PGD point.
  const auto sum_base = rar::IGSumNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2).random_start(false).beta(0.5);
  auto sum_every = rar::ig_sum_norm(rar::IGSumNormOptions(sum_base).penalty_every(k).first_call(1));
  const double madry =
      rar::adversarial(rar::PGDOptions().epsilon(0.1).steps(2).step_size(0.01).random_start(false))(
          net, b.x, b.y).item<double>();
  CHECK(sum_every(net, b.x, b.y).item<double>() == Approx(madry).epsilon(1e-12));
}

TEST_CASE("every lever and the fast recipe match central differences in the parameters",
          "[regularizer][levers][gradcheck]") {
  auto net = rar::test::smooth_mlp(4, 5, 3);
  const lt::Batch b = lt::batch(3);
  SECTION("Gauss-Legendre points") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(3).inner_stride(1).attack_steps(2)
                    .quadrature(rar::Quadrature::gauss_legendre).lambda(0.7);
    rar::test::check_parameter_gradients(*net, [&] { return rar::ig_norm(opts)(net, b.x, b.y); });
  }
  SECTION("the inner ascent on the loss") {
    auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(3)
                    .inner_objective(rar::InnerObjective::loss).beta(0.3);
    rar::test::check_parameter_gradients(*net, [&] { return rar::ig_sum_norm(opts)(net, b.x, b.y); });
  }
  SECTION("penalty_every, a penalized call and one between") {
    for (const uint64_t first : {0, 1}) {
      auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2)
                      .penalty_every(2).first_call(first).beta(0.3);
      rar::test::check_parameter_gradients(*net, [&] { return rar::ig_sum_norm(opts)(net, b.x, b.y); });
    }
  }
  SECTION("IGSumNormOptions::fast") {
    auto opts = rar::IGSumNormOptions::fast(0.1).beta(0.3);
    rar::test::check_parameter_gradients(*net, [&] { return rar::ig_sum_norm(opts)(net, b.x, b.y); });
  }
}

TEST_CASE("the fast recipe trains a user's residual module, at the input and at a layer",
          "[regularizer][levers][residual]") {
  auto net = rar::test::residual_model();
  torch::manual_seed(42);
  const auto x = 0.2 + 0.6 * torch::rand({2, 2, 6, 6}, torch::kDouble);
  const auto y = torch::tensor({0, 2});
  auto opts = rar::IGSumNormOptions::fast(0.05).beta(0.5);
  rar::test::check_parameter_gradients(*net, [&] { return rar::ig_sum_norm(opts)(net, x, y); }, 1e-6, 1e-4,
                            1e-7);
  // At a layer: IG_h along head(x) -> head(x'), the loss-only ascent through the head.
  auto head = [&](const torch::Tensor& in) { return net->stem_act(net->stem(in)); };
  auto tail = [&](const torch::Tensor& h) {
    const torch::Tensor r = net->conv_b(net->act_a(net->conv_a(h)));
    const torch::Tensor h2 = net->add_act(h + r);
    const torch::Tensor bb = net->branch_act(net->branch(h));
    torch::Tensor z = torch::avg_pool2d(torch::cat({h2, bb}, 1), 2).flatten(1);
    z = net->act2(net->fc2(net->act1(net->fc1(z))));
    return net->fc4(net->act3(net->fc3(z)));
  };
  auto split = rar::Split{head, tail};
  const torch::Tensor at_layer = rar::ig_sum_norm(opts)(split, x, y);
  CHECK(std::isfinite(at_layer.item<double>()));
  // β = 0: the loss at the maximizer alone, wherever IG is taken.
  auto no_ig = rar::IGSumNormOptions::fast(0.05).beta(0.0);
  CHECK(rar::ig_sum_norm(no_ig)(split, x, y).item<double>() ==
        Approx(rar::ig_sum_norm(no_ig)(net, x, y).item<double>()).epsilon(1e-12));
}

TEST_CASE("the fast recipe's options are the documented levers", "[regularizer][levers]") {
  const auto fast = rar::IGSumNormOptions::fast(0.1);
  CHECK(fast.epsilon() == 0.1);
  CHECK(fast.steps() == rar::IGSumNormOptions::kFastPoints);
  CHECK(fast.quadrature() == rar::IGSumNormOptions::kFastQuadrature);
  CHECK(fast.inner_objective() == rar::InnerObjective::loss);
  CHECK(fast.attack_steps() == rar::IGSumNormOptions::kFastInnerSteps);
  CHECK(fast.attack_step_size() == Approx(rar::IGSumNormOptions::kFastStepFraction * 0.1));
  CHECK(fast.random_start());
  CHECK(fast.penalty_every() == rar::IGSumNormOptions::kFastPenaltyEvery);
  CHECK(fast.beta() == rar::IGSumNormOptions().beta());
}

TEST_CASE("the levers reject bad values with clear messages", "[regularizer][levers][errors]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().penalty_every(0)),
                    Contains("rar::ig_norm: penalty_every must be >= 1, got 0"));
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(4).quadrature(
                        rar::Quadrature::riemann_trapezoid)),
                    Contains("rar::ig_sum_norm: the trapezoid rule needs steps / inner_stride >= 2 "
                             "points, got steps = 4 and inner_stride = 4"));
  CHECK_THROWS_WITH(rar::IGSumNormOptions::fast(-0.1),
                    Contains("rar::IGSumNormOptions::fast: epsilon must be finite and >= 0, got -0.1"));
}
