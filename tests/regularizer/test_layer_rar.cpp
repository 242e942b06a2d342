// RAR at a layer: ig_norm, ig_sum_norm and ig_sum called with a rar::Split take IG_h at
// h = head(·) along head(x) → head(x′), with x′ searched in the input ball. Tested: the
// identity head gives today's input-space terms bitwise, completeness in h-space, agreement
// with rar::layer_integrated_gradients, central differences in the parameters of head and
// tail (MLP and CNN), composition and bad input.

#include <rar/rar.hpp>

#include <catch2/catch.hpp>

#include "support/models.hpp"
#include "support/gradcheck.hpp"

#include <type_traits>
#include <utility>

using rar::test::max_rel_diff;
namespace nn = torch::nn;

namespace {

// Every parameter of head and tail must reach the term.
template <class F>
void check_head_tail_gradients(const std::vector<torch::Tensor>& params, F&& f) {
  const int64_t checked = rar::test::check_parameter_gradients(
      params, std::forward<F>(f), 1e-6, 1e-5, 1e-8, /*every_parameter_reached=*/true);
  CHECK(checked >= static_cast<int64_t>(params.size()));
}

std::vector<torch::Tensor> parameters_of(nn::Module& head, nn::Module& tail) {
  auto params = head.parameters();
  for (const auto& p : tail.parameters()) params.push_back(p);
  return params;
}

// A small MLP split after its first tanh: head 4 → 6, tail 6 → 5 → 3.
struct SplitMlp {
  nn::Sequential head{nullptr}, tail{nullptr};
  explicit SplitMlp(torch::Dtype dtype = torch::kDouble, uint64_t seed = 41) {
    torch::manual_seed(seed);
    head = nn::Sequential(nn::Linear(4, 6), nn::Tanh());
    tail = nn::Sequential(nn::Linear(6, 5), nn::Tanh(), nn::Linear(5, 3));
    head->to(dtype);
    tail->to(dtype);
  }
  torch::Tensor loss(const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    return rar::score::cross_entropy(tail->forward(head->forward(x)), y);
  }
};

// A small CNN split after its first convolution: head [1, 6, 6] → [3, 4, 4], tail → 3 classes.
struct SplitCnn {
  nn::Sequential head{nullptr}, tail{nullptr};
  explicit SplitCnn(uint64_t seed = 42) {
    torch::manual_seed(seed);
    head = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 3, 3)), nn::Tanh());
    tail = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 2, 3)), nn::Tanh(), nn::Flatten(),
                          nn::Linear(2 * 2 * 2, 3));
    head->to(torch::kDouble);
    tail->to(torch::kDouble);
  }
};

// The loss and every parameter gradient of `term(model, x, y)`, computed from fresh gradients.
template <class Term, class Model>
std::pair<torch::Tensor, std::vector<torch::Tensor>> loss_and_gradients(
    const Term& term, Model&& model, nn::Module& net, const torch::Tensor& x,
    const torch::Tensor& y) {
  const torch::Tensor loss = term(model, x, y);
  return {loss.detach(), torch::autograd::grad({loss}, net.parameters())};
}

// A fixed x′ inside the ball N(x, eps) ∩ [0, 1]: x + eps/2 · (random signs).
torch::Tensor fixed_point(const torch::Tensor& x, double eps, uint64_t seed) {
  torch::manual_seed(seed);
  return x + 0.5 * eps * (2 * torch::randint(2, x.sizes(), torch::kLong) - 1).to(x.dtype());
}

}  // namespace

TEMPLATE_TEST_CASE("RAR terms with head = identity equal the input-space terms bitwise",
                   "[layer-rar]", float, double) {
  const auto dtype = rar::test::dtype_of<TestType>();
  auto net = rar::test::smooth_mlp(4, 5, 3, dtype, 43);
  torch::manual_seed(44);
  const auto x = (0.2 + 0.6 * torch::rand({5, 4}, torch::kDouble)).to(dtype);
  const auto y = torch::tensor({0, 2, 1, 1, 0});
  nn::Identity identity;
  auto same = [](const torch::Tensor& t) { return t; };
  auto ig_norm_opts = rar::IGNormOptions().epsilon(0.1).steps(8).inner_stride(2).attack_steps(4)
                          .lambda(0.7).seed(5);
  auto sum_norm_opts = rar::IGSumNormOptions().epsilon(0.1).steps(6).inner_stride(3)
                           .attack_steps(4).beta(0.4).seed(6).reduction(rar::Reduction::sum);
  auto check_equal = [&](const auto& make_term, const char* name) {
    INFO(name);
    auto d_input = std::make_shared<rar::InnerMaxDiagnostics>();
    auto d_layer = std::make_shared<rar::InnerMaxDiagnostics>();
    const auto [loss, grads] = loss_and_gradients(make_term(d_input), net, *net, x, y);
    for (int which = 0; which < 2; ++which) {
      const auto [layer_loss, layer_grads] =
          which == 0 ? loss_and_gradients(make_term(d_layer), rar::Split{identity, net}, *net, x, y)
                     : loss_and_gradients(make_term(d_layer), rar::Split{same, net}, *net, x, y);
      CHECK(layer_loss.scalar_type() == dtype);
      CHECK(layer_loss.equal(loss));
      REQUIRE(layer_grads.size() == grads.size());
      for (size_t p = 0; p < grads.size(); ++p) CHECK(layer_grads[p].equal(grads[p]));
      CHECK(d_layer->adversarial.equal(d_input->adversarial));
      CHECK(d_layer->objective == d_input->objective);
    }
    CHECK(loss.template item<double>() > 0);  // a real value, not a vacuous 0 == 0
  };
  check_equal([&](auto d) { return rar::ig_norm(rar::IGNormOptions(ig_norm_opts).diagnostics(d)); },
              "ig_norm");
  check_equal([&](auto d) {
    return rar::ig_sum_norm(rar::IGSumNormOptions(sum_norm_opts).diagnostics(d));
  }, "ig_sum_norm");
  check_equal([&](auto d) {
    return rar::ig_sum(rar::IGNormOptions(ig_norm_opts).random_start(false).attack_steps(3)
                           .diagnostics(d));
  }, "ig_sum");
  // The whole composed objective, with one term object per model kind (each counts its calls).
  const auto objective = rar::cross_entropy() + 0.5 * rar::ig_norm(ig_norm_opts);
  const auto objective2 = objective;
  CHECK(objective(rar::Split{identity, net}, x, y).equal(objective2(net, x, y)));
}

TEST_CASE("Sum of IG_h is loss(x') - loss(x): the right-Riemann error halves as m doubles",
          "[layer-rar]") {
  SplitMlp model;
  torch::manual_seed(45);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({2, 0, 1});
  const double eps = 0.2;
  const auto x_adv = fixed_point(x, eps, 46);
  for (int64_t n = 0; n < 3; ++n) {
    INFO("sample " << n);
    const auto xn = x.slice(0, n, n + 1), yn = y.slice(0, n, n + 1);
    // Σ IG_h(x, x′) at the fixed x′ (no ascent) with m right-Riemann points; `used` receives
    // the x′ the term took (the start, projected onto the ball).
    torch::Tensor used;
    auto sum_ig = [&](int64_t m) {
      auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
      const auto term = rar::ig_sum(rar::IGNormOptions().epsilon(eps).steps(m).inner_stride(m)
                                        .attack_steps(0).lambda(1.0).diagnostics(diag)
                                        .start([&](const torch::Tensor&) {
                                          return x_adv.slice(0, n, n + 1);
                                        }));
      const double value = term(rar::Split{model.head, model.tail}, xn, yn).item<double>();
      CHECK(max_rel_diff(diag->adversarial, x_adv.slice(0, n, n + 1)) < 1e-15);
      used = diag->adversarial;
      return value;
    };
    std::vector<double> sums, errors;
    double exact = 0;
    for (int64_t m : {16, 32, 64, 128, 256}) {
      sums.push_back(sum_ig(m));
      exact = (model.loss(used, yn) - model.loss(xn, yn)).item<double>();  // ℓ(x′) − ℓ(x)
      errors.push_back(std::abs(sums.back() - exact));
    }
    REQUIRE(std::abs(exact) > 1e-3);
    for (size_t i = 1; i < errors.size(); ++i) {
      CHECK(errors[i] / errors[i - 1] == Approx(0.5).margin(3e-3));
    }
    CHECK(errors.back() < 3e-5 * std::abs(exact));  // m = 256
    // Richardson: 2·S(2m) − S(m) cancels the 1/m term, leaving O(1/m²).
    CHECK(std::abs(2 * sums[4] - sums[3] - exact) < 1e-9);
  }
}

TEST_CASE("The layer term is IG_h of rar::layer_integrated_gradients at x', and ig_sum_norm's loss is l(tail(head(x')))",
          "[layer-rar]") {
  SplitMlp model;
  torch::manual_seed(47);
  const auto x = 0.2 + 0.6 * torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 1});
  const double eps = 0.15;
  const auto start = fixed_point(x, eps, 48);
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  auto at_x_adv = [&](const torch::Tensor&) { return start; };
  const rar::Split split{model.head, model.tail};
  // The x′ the terms take: the start projected onto the ball (no ascent step).
  rar::ig_norm(rar::IGNormOptions().epsilon(eps).steps(4).inner_stride(4).attack_steps(0)
                   .start(at_x_adv).diagnostics(diag))(split, x, y);
  const torch::Tensor x_adv = diag->adversarial;
  REQUIRE(max_rel_diff(x_adv, start) < 1e-15);
  const auto lig = rar::layer_integrated_gradients(
      model.head, model.tail, x_adv,
      rar::IGOptions().baseline(x).target(y).steps(12).method(rar::Quadrature::riemann_right)
          .score(rar::score::cross_entropy));
  REQUIRE(lig.sizes() == torch::IntArrayRef({4, 6}));
  const double lambda = 0.8;
  const auto ig_norm = rar::ig_norm(rar::IGNormOptions().epsilon(eps).steps(12).inner_stride(4)
                                        .attack_steps(0).lambda(lambda).start(at_x_adv));
  const double expected_norm = lambda * lig.abs().sum(1).mean().item<double>();
  CHECK(ig_norm(split, x, y).item<double>() == Approx(expected_norm).epsilon(1e-13));
  const auto ig_sum = rar::ig_sum(rar::IGNormOptions().epsilon(eps).steps(12).inner_stride(4)
                                      .attack_steps(0).lambda(lambda).start(at_x_adv)
                                      .reduction(rar::Reduction::sum));
  CHECK(ig_sum(split, x, y).item<double>() ==
        Approx(lambda * lig.sum().item<double>()).epsilon(1e-13));
  // β = 0: the term is ℓ(x′) alone, read off the h-space path's last point.
  const auto loss_only = rar::ig_sum_norm(rar::IGSumNormOptions().epsilon(eps).steps(12)
                                              .inner_stride(4).attack_steps(0).beta(0.0)
                                              .start(at_x_adv));
  CHECK(loss_only(split, x, y).item<double>() ==
        Approx(model.loss(x_adv, y).mean().item<double>()).epsilon(1e-14));
  // And the layer attribution is not the input one: the head is not the identity.
  const auto input_ig = rar::integrated_gradients(
      split, x_adv,
      rar::IGOptions().baseline(x).target(y).steps(12).method(rar::Quadrature::riemann_right)
          .score(rar::score::cross_entropy));
  const double input_norm = lambda * input_ig.abs().sum(1).mean().item<double>();
  CHECK(std::abs(input_norm - expected_norm) > 1e-3 * expected_norm);
  CHECK(ig_norm(split, x, y).item<double>() != Approx(input_norm).epsilon(1e-3));
}

TEST_CASE("The layer term's ascent searches the input ball and raises the h-space objective",
          "[layer-rar]") {
  SplitMlp model;
  torch::manual_seed(49);
  const auto x = 0.05 + 0.9 * torch::rand({8, 4}, torch::kDouble);
  const auto y = torch::randint(3, {8}, torch::kLong);
  const double eps = 0.1;
  auto diag = std::make_shared<rar::InnerMaxDiagnostics>();
  int64_t iterates = 0;
  const auto term = rar::ig_sum_norm(rar::IGSumNormOptions().epsilon(eps).steps(16).inner_stride(4)
                                         .attack_steps(10).beta(1.0).diagnostics(diag)
                                         .callback([&](int64_t, const torch::Tensor& point,
                                                       const torch::Tensor&) {
                                           CHECK(point.sizes() == x.sizes());  // input space
                                           ++iterates;
                                           return false;
                                         }));
  const double value = term(rar::Split{model.head, model.tail}, x, y).item<double>();
  CHECK(iterates == 11);
  const auto& adv = diag->adversarial;
  CHECK((adv - x).abs().max().item<double>() <= eps + 1e-12);
  CHECK(adv.min().item<double>() >= 0.0);
  CHECK(adv.max().item<double>() <= 1.0);
  REQUIRE(diag->objective.size() == 11);
  CHECK(diag->objective.back() > diag->objective.front());
  // The maximizer's value beats the loss at x: ℓ(x′) ≥ ℓ(x) on average after the ascent.
  CHECK(value > model.loss(x, y).mean().item<double>());
}

TEST_CASE("Layer RAR terms match central differences in the parameters of head and tail (MLP)",
          "[layer-rar][gradcheck]") {
  SplitMlp model;
  torch::manual_seed(50);
  const auto x = 0.2 + 0.6 * torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 2, 1});
  const auto params = parameters_of(*model.head, *model.tail);
  // A fresh term per evaluation draws the same random start; the sign-ascent iterates are
  // locally constant in the parameters, so the term is a smooth function of them at this x′.
  SECTION("ig_norm") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(6).inner_stride(2).attack_steps(3).lambda(0.7);
    check_head_tail_gradients(params, [&] {
      return rar::ig_norm(opts)(rar::Split{model.head, model.tail}, x, y);
    });
  }
  SECTION("ig_sum_norm") {
    auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(6).inner_stride(3).attack_steps(3).beta(0.3);
    check_head_tail_gradients(params, [&] {
      return rar::ig_sum_norm(opts)(rar::Split{model.head, model.tail}, x, y);
    });
  }
  SECTION("ig_sum") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(5).inner_stride(1).attack_steps(2);
    check_head_tail_gradients(params, [&] {
      return rar::ig_sum(opts)(rar::Split{model.head, model.tail}, x, y);
    });
  }
}

TEST_CASE("Layer RAR terms match central differences in the parameters of head and tail (CNN)",
          "[layer-rar][gradcheck]") {
  SplitCnn model;
  torch::manual_seed(51);
  const auto x = 0.2 + 0.6 * torch::rand({2, 1, 6, 6}, torch::kDouble);
  const auto y = torch::tensor({1, 2});
  const auto params = parameters_of(*model.head, *model.tail);
  SECTION("ig_norm") {
    auto opts = rar::IGNormOptions().epsilon(0.1).steps(6).inner_stride(3).attack_steps(2).lambda(1.3);
    check_head_tail_gradients(params, [&] {
      return rar::ig_norm(opts)(rar::Split{model.head, model.tail}, x, y);
    });
  }
  SECTION("ig_sum_norm") {
    auto opts = rar::IGSumNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2).beta(0.5);
    check_head_tail_gradients(params, [&] {
      return rar::ig_sum_norm(opts)(rar::Split{model.head, model.tail}, x, y);
    });
  }
}

TEST_CASE("rar::Split is the composed model everywhere else, holds lvalues by reference and composes",
          "[layer-rar]") {
  SplitMlp model;
  torch::manual_seed(52);
  const auto x = 0.2 + 0.6 * torch::rand({4, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1, 2, 0});
  auto flatten = [](const torch::Tensor& t) { return t.flatten(1); };
  rar::Split split{model.head, model.tail};
  static_assert(std::is_same_v<decltype(split), rar::Split<nn::Sequential&, nn::Sequential&>>);
  static_assert(std::is_same_v<decltype(rar::Split{flatten, model.tail}),
                               rar::Split<decltype(flatten)&, nn::Sequential&>>);
  static_assert(std::is_same_v<decltype(rar::Split{nn::Identity(), model.tail}),
                               rar::Split<nn::Identity, nn::Sequential&>>);
  static_assert(rar::is_split_v<const decltype(split)&>);
  static_assert(!rar::is_split_v<nn::Sequential>);
  static_assert(rar::is_model_v<decltype(split)>);
  const auto logits = model.tail->forward(model.head->forward(x));
  CHECK(rar::call_model(split, x).equal(logits));
  CHECK(std::as_const(split)(x).equal(logits));
  CHECK(&split.head() == &model.head);
  // Cross-entropy and every other term see tail(head(x)).
  CHECK(rar::cross_entropy()(split, x, y).item<double>() ==
        model.loss(x, y).mean().item<double>());
  // The composed objective is the sum of its parts, IG taken at the layer.
  const auto opts = rar::IGNormOptions().epsilon(0.1).steps(4).inner_stride(2).attack_steps(2).seed(3);
  const auto objective = rar::cross_entropy() + 2.0 * rar::ig_norm(opts);
  const double parts = model.loss(x, y).mean().item<double>() +
                       2.0 * rar::ig_norm(opts)(split, x, y).item<double>();
  CHECK(objective(split, x, y).item<double>() == Approx(parts).epsilon(1e-14));
  // Nothing is written to .grad until backward, and then both halves receive gradients.
  const rar::test::ModuleState head_before(*model.head), tail_before(*model.tail);
  const auto loss = objective(split, x, y);
  CHECK(rar::test::ModuleState(*model.head) == head_before);
  CHECK(rar::test::ModuleState(*model.tail) == tail_before);
  loss.backward();
  for (const auto& p : parameters_of(*model.head, *model.tail)) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().abs().sum().item<double>() > 0);
  }
}

TEST_CASE("Layer RAR terms reject bad options, labels and heads with clear messages",
          "[layer-rar][errors]") {
  using Catch::Contains;
  SplitMlp model;
  const auto x = torch::rand({2, 4}, torch::kDouble);
  const auto y = torch::tensor({0, 1});
  // The options are validated when the term is built, whatever model it is later called with.
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().steps(10).inner_stride(4)),
                    Contains("rar::ig_norm: inner_stride must divide steps, got steps = 10 and inner_stride = 4"));
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().beta(-2)),
                    Contains("rar::ig_sum_norm: beta must be finite and >= 0, got -2"));
  CHECK_THROWS_WITH(rar::ig_sum(rar::IGNormOptions().epsilon(-0.5)),
                    Contains("rar::ig_sum: epsilon must be finite and >= 0, got -0.5"));
  CHECK_THROWS_WITH(rar::ig_norm(rar::IGNormOptions().attack_steps(-1)),
                    Contains("rar::ig_norm: attack_steps must be >= 0, got -1"));
  const auto opts = rar::IGNormOptions().steps(4).inner_stride(2).attack_steps(1);
  const rar::Split split{model.head, model.tail};
  CHECK_THROWS_WITH(rar::ig_norm(opts)(split, x, torch::tensor({0, 1, 2})),
                    Contains("rar::ig_norm: y must be int64 labels of shape [2], got [3]"));
  CHECK_THROWS_WITH(rar::ig_sum_norm()(split, x, torch::tensor({0, 3})),
                    Contains("target class indices must lie in [0, 3)"));
  // Heads that do not map the batch to a layer batch of its rows, dtype and device.
  auto first_row = [&](const torch::Tensor& t) { return model.head->forward(t.slice(0, 0, 1)); };
  CHECK_THROWS_WITH(rar::ig_norm(opts)(rar::Split{first_row, model.tail}, x, y),
                    Contains("rar::ig_norm: head(x) must be a batch [N, ...] with N = 2 rows, got shape [1, 6]"));
  auto as_float = [&](const torch::Tensor& t) { return model.head->forward(t).to(torch::kFloat); };
  CHECK_THROWS_WITH(rar::ig_sum(opts)(rar::Split{as_float, model.tail}, x, y),
                    Contains("rar::ig_sum: head(x) must have the input's dtype Double"));
  // A head whose width depends on the call: head(x′) must have head(x)'s shape.
  int64_t calls = 0;
  auto growing = [&](const torch::Tensor& t) {
    const auto h = model.head->forward(t);
    return calls++ == 0 ? h : torch::cat({h, h}, 1);
  };
  auto wide_tail = [&](const torch::Tensor& h) { return model.tail->forward(h.slice(1, 0, 6)); };
  CHECK_THROWS_WITH(rar::ig_sum_norm(rar::IGSumNormOptions().steps(4).inner_stride(2))(
                        rar::Split{growing, wide_tail}, x, y),
                    Contains("rar::ig_sum_norm: head(x') must have the shape of head(x) [2, 6], got [2, 12]"));
}
