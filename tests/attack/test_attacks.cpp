// Attacks: PGD (ball, analytic optima, seeds, targeted, side effects, bad input), attribution
// attacks on a model trained here (top-k vs random sign, mass center, targeted, determinism,
// ball, bookkeeping, bad input) and softplus surrogates.

#include <rar/attack.hpp>
#include <rar/attribution.hpp>
#include <rar/explain.hpp>
#include <rar/metrics/metrics.hpp>

#include <torch/version.h>

#include <catch2/catch.hpp>
#include "support/warnings.hpp"
#include "support/skip.hpp"

#include "support/models.hpp"

#include <cmath>
#include <cstdio>
#include <vector>

using Catch::Contains;
using rar::test::max_rel_diff;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }
double min_value(const torch::Tensor& t) { return t.min().item<double>(); }
double max_value(const torch::Tensor& t) { return t.max().item<double>(); }

// Largest per-sample L2 norm of a batch.
double max_l2(const torch::Tensor& t) { return t.flatten(1).norm(2, 1).max().item<double>(); }

// -output[n, target[n]]: a loss whose maximum over an L∞ ball of a linear model is x − ε·sign(w_y).
torch::Tensor negative_logit(const torch::Tensor& output, const torch::Tensor& target) {
  return -output.gather(1, target.view({-1, 1})).squeeze(1);
}

// Synthetic 2-class 8×8 textures: uniform noise in [0, 0.8], plus 0.2 on the left half
// (class 0) or on the right half (class 1). Many pixels carry evidence with similar weight, as
// in natural images, so the attribution maps have no single dominant feature.
std::pair<torch::Tensor, torch::Tensor> half_images(int64_t n, uint64_t seed) {
  auto gen = rar::seeded_generator(seed);
  const torch::Tensor noise =
      torch::rand({n, 1, 8, 8}, gen, torch::TensorOptions().dtype(torch::kDouble)) * 0.8;
  const torch::Tensor y =
      torch::randint(0, 2, {n}, gen, torch::TensorOptions().dtype(torch::kLong));
  const torch::Tensor cols = torch::arange(8, torch::TensorOptions().dtype(torch::kLong));
  const torch::Tensor bright_half = (cols.view({1, 1, 1, 8}) >= 4) == (y.view({n, 1, 1, 1}) == 1);
  return {noise + 0.2 * bright_half.to(torch::kDouble), y};
}

// A ReLU MLP trained (seeded, well under a second) on half-bright textures, and correctly
// classified held-out images to attack. Trained once for the whole executable.
struct HalfTask {
  torch::nn::Sequential net;
  torch::Tensor x, y;
};

HalfTask& half_task() {
  static HalfTask task = [] {
    torch::manual_seed(11);
    torch::nn::Sequential net(torch::nn::Flatten(), torch::nn::Linear(64, 32), torch::nn::ReLU(),
                              torch::nn::Linear(32, 16), torch::nn::ReLU(),
                              torch::nn::Linear(16, 2));
    net->to(torch::kDouble);
    const auto train = half_images(512, 1);
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
    for (int step = 0; step < 300; ++step) {
      opt.zero_grad();
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(net->forward(train.first), train.second);
      loss.backward();
      opt.step();
    }
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    net->eval();
    const auto test = half_images(64, 2);
    torch::NoGradGuard no_grad;
    const torch::Tensor correct = net->forward(test.first).argmax(1) == test.second;
    const torch::Tensor idx = correct.nonzero().select(1, 0);
    return HalfTask{net, test.first.index_select(0, idx), test.second.index_select(0, idx)};
  }();
  return task;
}

// IG of the target logit (right Riemann, zero baseline) as in Chen et al.'s evaluation; fewer
// steps for the surrogate's differentiable map than for the measured map.
const auto ig_method = [](auto& net, const torch::Tensor& x, const torch::Tensor& y,
                          bool create_graph) {
  return rar::integrated_gradients(net, x,
                                   rar::IGOptions()
                                       .target(y)
                                       .steps(create_graph ? 8 : 16)
                                       .method(rar::Quadrature::riemann_right)
                                       .create_graph(create_graph));
};

const auto saliency_method = [](auto& net, const torch::Tensor& x, const torch::Tensor& y,
                                bool create_graph) {
  return rar::saliency(net, x, rar::GradientOptions().target(y).create_graph(create_graph));
};

double mean_over(const torch::Tensor& values, const torch::Tensor& mask) {
  return values.index({mask.cpu()}).mean().item<double>();
}

}  // namespace

// =============================================================================================
// PGD

TEMPLATE_TEST_CASE("PGD iterates never leave the epsilon-ball or the clip range", "[pgd]", float,
                   double) {
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  torch::nn::Sequential model = rar::test::smooth_mlp(12, 16, 3, dtype);
  const double slack = std::is_same<TestType, float>::value ? 1e-6 : 1e-12;
  for (uint64_t seed : {1, 2, 3}) {
    auto gen = rar::seeded_generator(100 + seed);
    // Inputs near the range's lower end, so both the ball and the clip range bind.
    const torch::Tensor x =
        torch::rand({16, 12}, gen, torch::TensorOptions().dtype(torch::kDouble)).pow(3).to(dtype);
    const torch::Tensor y =
        torch::randint(0, 3, {16}, gen, torch::TensorOptions().dtype(torch::kLong));
    for (auto norm : {rar::Norm::linf, rar::Norm::l2}) {
      const double eps = norm == rar::Norm::linf ? 0.2 : 0.5;
      for (bool start : {true, false}) {
        const torch::Tensor x_adv = rar::pgd_attack(model, x, y,
                                                    rar::PGDOptions()
                                                        .epsilon(eps)
                                                        .step_size(0.15)
                                                        .steps(7)
                                                        .norm(norm)
                                                        .random_start(start)
                                                        .seed(seed));
        CHECK(x_adv.sizes() == x.sizes());
        CHECK(x_adv.scalar_type() == dtype);
        CHECK_FALSE(x_adv.requires_grad());
        CHECK(min_value(x_adv) >= 0.0);
        CHECK(max_value(x_adv) <= 1.0);
        if (norm == rar::Norm::linf) {
          CHECK(max_abs(x_adv - x) <= eps + slack);
        } else {
          CHECK(max_l2(x_adv - x) <= eps * (1 + slack));
        }
        CHECK(max_abs(x_adv - x) > 0.0);  // it does move
      }
    }
  }
}

TEST_CASE(
    "PGD reaches the analytic L-inf optimum x - eps*sign(w_y - w_other) of a 2-class "
    "linear model",
    "[pgd]") {
  auto model = rar::test::linear_model(6, 2);
  torch::manual_seed(5);
  const auto x = 0.3 + 0.4 * torch::rand({10, 6}, torch::kDouble);
  const auto y = torch::randint(0, 2, {10}, torch::kLong);
  const auto w = model->weight.detach();
  const auto direction = w.index_select(0, y) - w.index_select(0, 1 - y);
  const double eps = 0.1;
  const auto expected = (x - eps * direction.sign()).clamp(0, 1);
  for (bool start : {false, true}) {
    // From any start in the ball, steps·α ≥ 2ε reaches the corner.
    const auto x_adv = rar::pgd_attack(
        model, x, y, rar::PGDOptions().epsilon(eps).step_size(0.03).steps(8).random_start(start));
    CHECK(max_abs(x_adv - expected) < 1e-12);
  }
}

TEST_CASE("PGD reaches the analytic L2 optimum x - eps*d/||d|| of a 2-class linear model",
          "[pgd]") {
  auto model = rar::test::linear_model(6, 2);
  torch::manual_seed(6);
  const auto x = 0.3 + 0.4 * torch::rand({10, 6}, torch::kDouble);
  const auto y = torch::randint(0, 2, {10}, torch::kLong);
  const auto w = model->weight.detach();
  const auto d = w.index_select(0, y) - w.index_select(0, 1 - y);
  const double eps = 0.2;
  const auto expected = x - eps * d / d.norm(2, 1, true);
  const auto x_adv = rar::pgd_attack(model, x, y,
                                     rar::PGDOptions()
                                         .norm(rar::Norm::l2)
                                         .epsilon(eps)
                                         .step_size(0.05)
                                         .steps(6)
                                         .random_start(false));
  CHECK(max_abs(x_adv - expected) < 1e-10);
}

TEST_CASE("PGD with a custom loss reaches x - eps*sign(w_y) on a multi-class linear model",
          "[pgd]") {
  auto model = rar::test::linear_model(8, 4);
  torch::manual_seed(7);
  const auto x = 0.3 + 0.4 * torch::rand({12, 8}, torch::kDouble);
  const auto y = torch::randint(0, 4, {12}, torch::kLong);
  const auto expected = x - 0.1 * model->weight.detach().index_select(0, y).sign();
  const auto x_adv = rar::pgd_attack(
      model, x, y, rar::PGDOptions().epsilon(0.1).step_size(0.05).steps(5).loss(negative_logit));
  CHECK(max_abs(x_adv - expected) < 1e-12);
  // A 0-dim target applies to every sample.
  const auto x_adv0 =
      rar::pgd_attack(model, x, torch::tensor(2, torch::kLong),
                      rar::PGDOptions().epsilon(0.1).step_size(0.05).steps(5).loss(negative_logit));
  const auto expected0 = x - 0.1 * model->weight.detach()[2].sign();
  CHECK(max_abs(x_adv0 - expected0) < 1e-12);
}

TEST_CASE("PGD is reproducible under a seed and different seeds start differently", "[pgd]") {
  auto model = rar::test::smooth_mlp(10, 8, 3);
  torch::manual_seed(8);
  const auto x = torch::rand({6, 10}, torch::kDouble);
  const auto y = torch::randint(0, 3, {6}, torch::kLong);
  for (auto norm : {rar::Norm::linf, rar::Norm::l2}) {
    auto opts = rar::PGDOptions().norm(norm).epsilon(0.3).step_size(0.01).steps(3);
    const auto a = rar::pgd_attack(model, x, y, opts.seed(1));
    torch::manual_seed(12345);  // the global RNG plays no part
    const auto b = rar::pgd_attack(model, x, y, opts.seed(1));
    const auto c = rar::pgd_attack(model, x, y, opts.seed(2));
    CHECK(a.equal(b));
    CHECK(max_abs(a - c) > 1e-3);
  }
}

TEST_CASE("targeted PGD moves toward the target class and untargeted PGD away from the label",
          "[pgd]") {
  auto model = rar::test::smooth_mlp(10, 16, 4);
  torch::manual_seed(9);
  const auto x = torch::rand({20, 10}, torch::kDouble);
  const auto y = torch::randint(0, 4, {20}, torch::kLong);
  const auto goal = (y + 1) % 4;
  const auto loss = [&](const torch::Tensor& z, const torch::Tensor& t) {
    torch::NoGradGuard no_grad;
    return rar::score::cross_entropy(model->forward(z), t);
  };
  auto opts = rar::PGDOptions().epsilon(0.3).step_size(0.02).steps(20).random_start(false);
  const auto toward = rar::pgd_attack(model, x, goal, rar::PGDOptions(opts).targeted(true));
  const auto away = rar::pgd_attack(model, x, y, opts);
  CHECK((loss(toward, goal) < loss(x, goal)).all().item<bool>());
  CHECK((loss(away, y) > loss(x, y)).all().item<bool>());
  // On a 2-class linear model, going toward the other class is the untargeted attack.
  auto linear = rar::test::linear_model(6, 2);
  const auto x2 = 0.3 + 0.4 * torch::rand({10, 6}, torch::kDouble);
  const auto y2 = torch::randint(0, 2, {10}, torch::kLong);
  auto lin_opts = rar::PGDOptions().epsilon(0.1).step_size(0.03).steps(8).random_start(false);
  CHECK(rar::pgd_attack(linear, x2, 1 - y2, rar::PGDOptions(lin_opts).targeted(true))
            .equal(rar::pgd_attack(linear, x2, y2, lin_opts)));
}

TEST_CASE("PGD leaves the model untouched and works under a caller's NoGradGuard", "[pgd]") {
  auto model = rar::test::smooth_mlp(10, 8, 3);
  torch::manual_seed(10);
  const auto x = torch::rand({5, 10}, torch::kDouble);
  const auto y = torch::randint(0, 3, {5}, torch::kLong);
  // Some gradients already accumulated, one frozen parameter, eval mode.
  torch::nn::functional::cross_entropy(model->forward(x), y).backward();
  model->parameters()[2].set_requires_grad(false);
  model->eval();
  const rar::test::ModuleState before(*model);
  const auto opts = rar::PGDOptions().epsilon(0.2).steps(5).seed(3);
  const auto free_run = rar::pgd_attack(model, x, y, opts);
  torch::Tensor guarded;
  {
    torch::NoGradGuard no_grad;
    guarded = rar::pgd_attack(model, x, y, opts);
    CHECK_FALSE(torch::GradMode::is_enabled());
  }
  CHECK(guarded.equal(free_run));
  CHECK(rar::test::ModuleState(*model) == before);
  // A lambda model and an input that requires grad work too; the result is detached.
  const auto lambda = [&](const torch::Tensor& z) { return model->forward(z); };
  const auto leaf = x.clone().requires_grad_(true);
  const auto from_lambda = rar::pgd_attack(lambda, leaf, y, opts);
  CHECK_FALSE(from_lambda.requires_grad());
  CHECK(from_lambda.equal(free_run));
}

TEST_CASE("PGD with no steps returns the start point", "[pgd]") {
  auto model = rar::test::smooth_mlp(4, 4, 2);
  const auto x = torch::full({3, 4}, 0.5, torch::kDouble);
  const auto y = torch::zeros({3}, torch::kLong);
  CHECK(rar::pgd_attack(model, x, y, rar::PGDOptions().steps(0).random_start(false)).equal(x));
  const auto start = rar::pgd_attack(model, x, y, rar::PGDOptions().steps(0).epsilon(0.1));
  CHECK(max_abs(start - x) <= 0.1);
  CHECK(max_abs(start - x) > 0);
  // An input outside the clip range is refused, never clamped in silence.
  const auto outside = torch::full({3, 4}, 1.5, torch::kDouble);
  CHECK_THROWS_WITH(rar::pgd_attack(model, outside, y,
                                    rar::PGDOptions().steps(1).random_start(false).epsilon(0.1)),
                    Contains("rar::pgd_attack: input must lie in the data range [clip_min, clip_max] = "
                             "[0, 1], but 12 of its 12 values lie outside (they span [1.5, 1.5])"));
  // With the range set to the data's, the same input is attacked as given.
  const auto in_range = rar::pgd_attack(
      model, outside, y, rar::PGDOptions().steps(1).random_start(false).epsilon(0.1).clip_max(2.0));
  CHECK(max_abs(in_range - outside) <= 0.1 + 1e-12);
}

TEST_CASE("PGD rejects bad arguments with clear messages", "[pgd][errors]") {
  auto model = rar::test::smooth_mlp(4, 4, 3);
  const auto x = torch::rand({3, 4}, torch::kDouble);
  const auto y = torch::zeros({3}, torch::kLong);
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, y, rar::PGDOptions().epsilon(-0.1)),
                    Contains("rar::pgd_attack: epsilon must be finite and >= 0, got -0.1"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, y, rar::PGDOptions().step_size(-1)),
                    Contains("step_size must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, y, rar::PGDOptions().steps(-2)),
                    Contains("steps must be >= 0, got -2"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, y, rar::PGDOptions().clip_min(1).clip_max(0)),
                    Contains("clip_min must be <= clip_max, got clip_min = 1 and clip_max = 0"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, torch::zeros({4}, torch::kLong)),
                    Contains("target must be 0-dim or of shape [3]"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, torch::zeros({3}, torch::kFloat)),
                    Contains("target must be an int64 tensor"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, torch::Tensor()),
                    Contains("rar::pgd_attack: target must be a defined"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, torch::ones({3, 4}, torch::kLong), y),
                    Contains("input must be float32 or float64"));
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, torch::full({3}, 5, torch::kLong)),
                    Contains("target class indices must lie in [0, 3)"));
  const auto bad_loss = [](const torch::Tensor& out, const torch::Tensor&) { return out.sum(); };
  CHECK_THROWS_WITH(rar::pgd_attack(model, x, y, rar::PGDOptions().loss(bad_loss)),
                    Contains("the loss must return one value per sample, shape [3]"));
}

// =============================================================================================
// Attribution attacks

TEST_CASE(
    "the top-k attack lowers the top-k intersection far below random sign noise while "
    "predictions are kept",
    "[attribution_attack]") {
  auto& task = half_task();
  REQUIRE(task.x.size(0) >= 50);
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.01).iterations(20);
  const auto top = rar::attribution_attack(task.net, smooth, ig_method, task.x, task.y, opts);
  const auto noise = rar::attribution_attack(
      task.net, smooth, ig_method, task.x, task.y,
      rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign));
  const double kept = top.prediction_kept.to(torch::kDouble).mean().item<double>();
  const double in_top = mean_over(top.topk_intersection, top.prediction_kept);
  const double in_noise = mean_over(noise.topk_intersection, noise.prediction_kept);
  const double co_top = mean_over(top.kendall_tau, top.prediction_kept);
  const double co_noise = mean_over(noise.kendall_tau, noise.prediction_kept);
  std::printf(
      "[attribution attack, half-bright task, eps 0.1, k 8] IN top-k %.4f random-sign %.4f; "
      "CO top-k %.4f random-sign %.4f\n",
      in_top, in_noise, co_top, co_noise);
  CHECK(kept == 1.0);  // every attacked input was classified correctly; iterates keep the label
  CHECK(in_top < in_noise - 0.2);
  CHECK(co_top < co_noise);
  CHECK(top.improved.to(torch::kDouble).mean().item<double>() > 0.9);
  // The reported numbers are those of the returned iterate under the real model.
  const auto map = rar::attribution_map(ig_method(task.net, top.adversarial, task.y, false));
  CHECK(max_rel_diff(map, top.adversarial_map) < 1e-12);
  CHECK(rar::topk_intersection(top.original_map, map, 8).equal(top.topk_intersection));
  torch::NoGradGuard no_grad;
  CHECK((task.net->forward(top.adversarial).argmax(1) == task.y).all().item<bool>());
}

TEST_CASE("the batched top-k attack equals a per-image loop written after the original code",
          "[attribution_attack]") {
  // One image at a time, as in InterpretationFragility/utils.py and Chen et al.'s
  // MNIST/ig_attack.py: mask = top-k of the real model's original map; each iteration a sign
  // step down the surrogate's mass on the mask, test_image + clip(x + α·pert − test_image,
  // −ε, ε) clipped to [0, 1]; an iterate counts if the real label is kept and its intersection
  // is strictly below the best so far (starting at 1).
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const int64_t k = 8, iterations = 12, n = 6;
  const double eps = 0.1, alpha = 0.02;
  const auto x = task.x.slice(0, 0, n);
  const auto y = task.y.slice(0, 0, n);
  const auto batched = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions().k(k).epsilon(eps).step_size(alpha).iterations(iterations));
  for (int64_t i = 0; i < n; ++i) {
    const auto xi = x.slice(0, i, i + 1);
    const auto yi = y.slice(0, i, i + 1);
    const auto original = rar::attribution_map(ig_method(task.net, xi, yi, false));
    const auto top = std::get<1>(original.reshape({1, -1}).topk(k, 1));
    const auto mask = torch::zeros({1, 64}, xi.options()).scatter_(1, top, 1.0);
    double best = 1.0;
    torch::Tensor best_x = xi, x_adv = xi;
    for (int64_t it = 0; it < iterations; ++it) {
      const auto leaf = x_adv.detach().requires_grad_(true);
      const auto loss =
          (rar::attribution_map(ig_method(smooth, leaf, yi, true)).reshape({1, -1}) * mask).sum();
      const auto pert = -torch::autograd::grad({loss}, {leaf})[0].sign();
      x_adv = (xi + (x_adv + alpha * pert - xi).clamp(-eps, eps)).clamp(0.0, 1.0).detach();
      torch::Tensor label;
      {
        torch::NoGradGuard no_grad;
        label = task.net->forward(x_adv).argmax(1);
      }
      if (!label.equal(yi)) continue;
      const double crit =
          rar::topk_intersection(original,
                                 rar::attribution_map(ig_method(task.net, x_adv, yi, false)), k)
              .item<double>();
      if (crit < best) {
        best = crit;
        best_x = x_adv;
      }
    }
    CHECK(max_abs(batched.adversarial.slice(0, i, i + 1) - best_x) < 1e-12);
    CHECK(batched.topk_intersection[i].item<double>() == best);
  }
}

TEST_CASE(
    "the mass-center attack shifts the map's center and the targeted attack moves mass "
    "into the region",
    "[attribution_attack]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.01).iterations(15);

  auto center = rar::AttributionAttackOptions(opts)
                    .kind(rar::AttackKind::mass_center)
                    .measure(rar::AttackMeasure::center_of_mass_shift);
  const auto moved = rar::attribution_attack(task.net, smooth, ig_method, task.x, task.y, center);
  const auto noise = rar::attribution_attack(
      task.net, smooth, ig_method, task.x, task.y,
      rar::AttributionAttackOptions(center).kind(rar::AttackKind::random_sign));
  const double shift =
      rar::center_of_mass_shift(moved.original_map, moved.adversarial_map).mean().item<double>();
  const double shift_noise =
      rar::center_of_mass_shift(noise.original_map, noise.adversarial_map).mean().item<double>();
  CHECK(shift > 1.5 * shift_noise);

  // Pull the maps into the top rows.
  const auto region =
      torch::zeros({8, 8}, torch::kBool).index_put_({torch::indexing::Slice(0, 2)}, true);
  const auto pulled = rar::attribution_attack(
      task.net, smooth, ig_method, task.x, task.y,
      rar::AttributionAttackOptions(opts).kind(rar::AttackKind::targeted).target_region(region));
  const auto mass = [&](const torch::Tensor& maps) {
    return (maps * region.to(maps.scalar_type())).flatten(1).sum(1).mean().item<double>();
  };
  CHECK(mass(pulled.adversarial_map) > mass(pulled.original_map) + 0.05);
  // One mask per sample is accepted too.
  const auto per_sample = region.expand({task.x.size(0), 8, 8}).clone();
  const auto pulled2 = rar::attribution_attack(task.net, smooth, ig_method, task.x, task.y,
                                               rar::AttributionAttackOptions(opts)
                                                   .kind(rar::AttackKind::targeted)
                                                   .target_region(per_sample));
  CHECK(pulled2.adversarial.equal(pulled.adversarial));
}

TEMPLATE_TEST_CASE("attribution attacks never leave the epsilon-ball or the clip range",
                   "[attribution_attack]", float, double) {
  auto& task = half_task();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  torch::nn::Sequential net(
      std::dynamic_pointer_cast<torch::nn::SequentialImpl>(task.net->clone()));
  net->to(dtype);
  auto smooth = rar::smooth_surrogate(net, 10.0);
  // Inputs inside the clip range [0.05, 0.95] below (outside it they would be refused).
  const torch::Tensor x = task.x.slice(0, 0, 16).to(dtype).clamp(0.05, 0.95);
  const torch::Tensor y = task.y.slice(0, 0, 16);
  const torch::Tensor region = torch::ones({8, 8}, torch::kBool);
  const double slack = std::is_same<TestType, float>::value ? 1e-6 : 1e-12;
  for (auto kind : {rar::AttackKind::top_k, rar::AttackKind::mass_center, rar::AttackKind::targeted,
                    rar::AttackKind::random_sign}) {
    for (auto measure : {rar::AttackMeasure::topk_intersection, rar::AttackMeasure::kendall_tau,
                         rar::AttackMeasure::center_of_mass_shift, rar::AttackMeasure::lens_recall}) {
      const double eps = 0.15;
      const rar::AttackResult r = rar::attribution_attack(net, smooth, saliency_method, x, y,
                                                          rar::AttributionAttackOptions()
                                                              .kind(kind)
                                                              .measure(measure)
                                                              .k(10)
                                                              .epsilon(eps)
                                                              .step_size(0.1)
                                                              .iterations(4)
                                                              .clip_min(0.05)
                                                              .clip_max(0.95)
                                                              .target_region(region));
      CHECK(r.adversarial.sizes() == x.sizes());
      CHECK(r.adversarial.scalar_type() == dtype);
      CHECK(r.original_map.scalar_type() == dtype);
      CHECK_FALSE(r.adversarial.requires_grad());
      CHECK(max_abs(r.adversarial - x) <= eps + slack);
      // Changed samples lie in the clip range (unchanged ones are the inputs themselves).
      const torch::Tensor changed = r.improved;
      CHECK(changed.any().template item<bool>());
      const torch::Tensor moved = r.adversarial.index({changed});
      CHECK(min_value(moved) >= 0.05 - slack);
      CHECK(max_value(moved) <= 0.95 + slack);
      const torch::Tensor same = r.adversarial.index({~changed});
      CHECK(same.equal(x.index({~changed})));
      CHECK(r.original_map.sizes() == torch::IntArrayRef({16, 8, 8}));
      CHECK(r.topk_intersection.scalar_type() == torch::kDouble);
      CHECK(r.kendall_tau.sizes() == torch::IntArrayRef({16}));
      CHECK(r.prediction_kept.scalar_type() == torch::kBool);
    }
  }
}

TEST_CASE("the LENS measure picks the iterate of lowest LENS recall on the same trajectory",
          "[attribution_attack]") {
  // The trajectory does not depend on the measure, so the iterate chosen by LENS recall has a
  // recall no higher than the one chosen by top-k intersection, and vice versa for IN.
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 16);
  const auto y = task.y.slice(0, 0, 16);
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.01).iterations(6);
  const auto by_in = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  const auto by_lens = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).measure(rar::AttackMeasure::lens_recall));
  const auto lens_opts = rar::LensOptions().k(8).window(1);
  const torch::Tensor recall_lens = rar::lens(by_lens.original_map, by_lens.adversarial_map, lens_opts).recall;
  const torch::Tensor recall_in = rar::lens(by_in.original_map, by_in.adversarial_map, lens_opts).recall;
  CHECK((recall_lens <= recall_in + 1e-12).all().item<bool>());
  CHECK((by_in.topk_intersection <= by_lens.topk_intersection + 1e-12).all().item<bool>());
  CHECK((recall_lens < 1.0).any().item<bool>());  // the attack moved some map
}

TEST_CASE("measuring every k-th iterate chooses among those iterates only", "[attribution_attack]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 16);
  const auto y = task.y.slice(0, 0, 16);
  auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.01).iterations(12);
  const auto every = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  const auto last = rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                            rar::AttributionAttackOptions(opts).measure_every(12));
  const auto fourth = rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                              rar::AttributionAttackOptions(opts).measure_every(4));
  // The trajectory does not depend on what is measured: only the final iterate is a candidate
  // with measure_every = iterations, so the best over all iterates is at least as good.
  const auto only_final = rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                                  rar::AttributionAttackOptions(opts).iterations(12));
  CHECK((every.topk_intersection <= last.topk_intersection + 1e-12).all().item<bool>());
  CHECK((every.topk_intersection <= fourth.topk_intersection + 1e-12).all().item<bool>());
  CHECK((fourth.topk_intersection <= last.topk_intersection + 1e-12).all().item<bool>());
  CHECK(only_final.adversarial.equal(every.adversarial));
  CHECK((last.topk_intersection < 1.0).any().item<bool>());
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                            rar::AttributionAttackOptions(opts).measure_every(0)),
                    Catch::Contains("measure_every must be >= 1, got 0"));
}

TEST_CASE("attribution attacks are reproducible under a seed", "[attribution_attack]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 16);
  const auto y = task.y.slice(0, 0, 16);
  auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(5);
  auto noise = rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign);
  const auto a = rar::attribution_attack(task.net, smooth, ig_method, x, y, noise.seed(4));
  torch::manual_seed(999);  // the global RNG plays no part
  const auto b = rar::attribution_attack(task.net, smooth, ig_method, x, y, noise.seed(4));
  const auto c = rar::attribution_attack(task.net, smooth, ig_method, x, y, noise.seed(5));
  CHECK(a.adversarial.equal(b.adversarial));
  CHECK(a.topk_intersection.equal(b.topk_intersection));
  CHECK_FALSE(a.adversarial.equal(c.adversarial));
  const auto t1 = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  const auto t2 = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  CHECK(t1.adversarial.equal(t2.adversarial));
}

TEST_CASE("misclassified inputs are not attacked and no-op attacks return the inputs",
          "[attribution_attack]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 8);
  auto y = task.y.slice(0, 0, 8).clone();
  y.slice(0, 0, 3).fill_(1).sub_(task.y.slice(0, 0, 3)).abs_();  // flip the first three labels
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).iterations(5);
  const auto r = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  const auto wrong = torch::arange(3);
  CHECK(r.adversarial.index_select(0, wrong).equal(x.index_select(0, wrong)));
  CHECK_FALSE(r.prediction_kept.index_select(0, wrong).any().item<bool>());
  CHECK_FALSE(r.improved.index_select(0, wrong).any().item<bool>());
  CHECK((r.topk_intersection.index_select(0, wrong) == 1.0).all().item<bool>());
  CHECK(r.prediction_kept.slice(0, 3).all().item<bool>());
  // Zero iterations or ε = 0: nothing moves, IN = 1, tau = 1.
  for (const auto& none : {rar::AttributionAttackOptions(opts).iterations(0),
                           rar::AttributionAttackOptions(opts).epsilon(0)}) {
    const auto z =
        rar::attribution_attack(task.net, smooth, ig_method, x, task.y.slice(0, 0, 8), none);
    CHECK(z.adversarial.equal(x));
    CHECK((z.topk_intersection == 1.0).all().item<bool>());
    CHECK((z.kendall_tau == 1.0).all().item<bool>());
    CHECK_FALSE(z.improved.any().item<bool>());
    CHECK(z.prediction_kept.all().item<bool>());
  }
}

TEST_CASE(
    "attribution attacks work with saliency, leave both models untouched and run under "
    "NoGradGuard",
    "[attribution_attack]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 12);
  const auto y = task.y.slice(0, 0, 12);
  const rar::test::ModuleState net_before(*task.net.ptr());
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).iterations(5);
  const auto free_run = rar::attribution_attack(task.net, smooth, saliency_method, x, y, opts);
  rar::AttackResult guarded;
  {
    torch::NoGradGuard no_grad;
    guarded = rar::attribution_attack(task.net, smooth, saliency_method, x, y, opts);
  }
  CHECK(guarded.adversarial.equal(free_run.adversarial));
  // The surrogate shares the network's weights: its state is the network's.
  CHECK(rar::test::ModuleState(*task.net.ptr()) == net_before);
  CHECK(free_run.topk_intersection.mean().item<double>() < 1.0);
}

TEST_CASE("attribution_attack rejects bad arguments with clear messages",
          "[attribution_attack][errors]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 4);
  const auto y = task.y.slice(0, 0, 4);
  const auto attack = [&](const rar::AttributionAttackOptions& o) {
    return rar::attribution_attack(task.net, smooth, saliency_method, x, y, o);
  };
  const auto opts = rar::AttributionAttackOptions().iterations(1);
  CHECK_THROWS_WITH(attack(opts), Contains("rar::attribution_attack: k must be in [1, 64] (the "
                                           "number of features of each saliency map, shape [8, "
                                           "8]), got k = 200"));
  CHECK_THROWS_WITH(attack(rar::AttributionAttackOptions(opts).k(0)), Contains("got k = 0"));
  CHECK_THROWS_WITH(attack(rar::AttributionAttackOptions(opts).k(8).epsilon(-0.3)),
                    Contains("rar::attribution_attack: epsilon must be finite and >= 0, got -0.3"));
  CHECK_THROWS_WITH(attack(rar::AttributionAttackOptions(opts).k(8).step_size(-1)),
                    Contains("step_size must be finite and >= 0, got -1"));
  CHECK_THROWS_WITH(attack(rar::AttributionAttackOptions(opts).k(8).iterations(-1)),
                    Contains("iterations must be >= 0, got -1"));
  CHECK_THROWS_WITH(attack(rar::AttributionAttackOptions(opts).k(8).clip_min(2)),
                    Contains("clip_min must be <= clip_max"));
  const auto targeted = rar::AttributionAttackOptions(opts).k(8).kind(rar::AttackKind::targeted);
  CHECK_THROWS_WITH(attack(targeted), Contains("the targeted attack needs target_region, a bool "
                                               "mask of the map's shape [8, 8]"));
  CHECK_THROWS_WITH(
      attack(rar::AttributionAttackOptions(targeted).target_region(
          torch::ones({1, 8, 8}, torch::kBool))),
      Contains("target_region must have the map's shape [8, 8] or [4, 8, 8] (one mask per "
               "sample), got [1, 8, 8]"));
  CHECK_THROWS_WITH(
      attack(rar::AttributionAttackOptions(targeted).target_region(torch::ones({8, 8}))),
      Contains("target_region must be a bool mask, got Float"));
  CHECK_THROWS_WITH(
      rar::attribution_attack(task.net, smooth, saliency_method, x, torch::zeros({5}, torch::kLong),
                              rar::AttributionAttackOptions(opts).k(8)),
      Contains("target must be 0-dim or of shape [4]"));
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, smooth, saliency_method, x.to(torch::kInt), y,
                                            rar::AttributionAttackOptions(opts).k(8)),
                    Contains("input must be float32 or float64"));
  const auto wrong_shape = [](auto&, const torch::Tensor& in, const torch::Tensor&, bool) {
    return torch::zeros({in.size(0), 64}, in.options());
  };
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, smooth, wrong_shape, x, y,
                                            rar::AttributionAttackOptions(opts).k(8)),
                    Contains("method(model, x, target, create_graph) must return attributions "
                             "of the input's shape [4, 1, 8, 8], got [4, 64]"));
  const auto no_graph = [](auto& net, const torch::Tensor& in, const torch::Tensor& t, bool) {
    return rar::saliency(net, in, rar::GradientOptions().target(t));
  };
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, smooth, no_graph, x, y,
                                            rar::AttributionAttackOptions(opts).k(8)),
                    Contains("must return attributions differentiable w.r.t. x"));
}

TEMPLATE_TEST_CASE("the L2 attribution attack stays in the L2 ball and steps along the "
                   "normalized gradient",
                   "[attribution_attack][l2]", float, double) {
  auto& task = half_task();
  const torch::Dtype dtype = rar::test::dtype_of<TestType>();
  torch::nn::Sequential net(
      std::dynamic_pointer_cast<torch::nn::SequentialImpl>(task.net->clone()));
  net->to(dtype);
  auto smooth = rar::smooth_surrogate(net, 10.0);
  const torch::Tensor x = task.x.slice(0, 0, 16).to(dtype);
  const torch::Tensor y = task.y.slice(0, 0, 16);
  const double eps = 0.8, alpha = 0.2;
  const double slack = std::is_same<TestType, float>::value ? 1e-6 : 1e-12;
  std::vector<torch::Tensor> iterates;
  const auto opts = rar::AttributionAttackOptions()
                        .norm(rar::Norm::l2)
                        .k(8)
                        .epsilon(eps)
                        .step_size(alpha)
                        .iterations(6)
                        .callback([&](int64_t, const torch::Tensor& it, const torch::Tensor&) {
                          iterates.push_back(it);
                        });
  const auto r = rar::attribution_attack(net, smooth, ig_method, x, y, opts);
  REQUIRE(iterates.size() == 7);
  CHECK(max_l2(r.adversarial - x) <= eps * (1 + slack));
  CHECK(max_l2(r.adversarial - x) > 0.1);  // it moves well beyond an L-inf step
  // Before the ball binds, each step has length α per sample (minus what the range clips).
  const auto first = (iterates[1] - iterates[0]).flatten(1).norm(2, 1);
  CHECK(first.max().template item<double>() <= alpha * (1 + slack));
  CHECK(first.mean().template item<double>() > 0.9 * alpha);
  for (const auto& it : iterates) CHECK(max_l2(it - x) <= eps * (1 + slack));
  CHECK(mean_over(r.topk_intersection, r.prediction_kept) < 1.0);
  // The L2 sign-free step differs from the L-inf attack of the same budget per coordinate.
  const auto linf = rar::attribution_attack(
      net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).norm(rar::Norm::linf).callback(rar::AscentCallback()));
  CHECK_FALSE(linf.adversarial.equal(r.adversarial));
}

TEST_CASE("a custom objective that lowers the top-k mass is the top-k attack",
          "[attribution_attack][custom]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 12);
  const auto y = task.y.slice(0, 0, 12);
  const int64_t k = 8;
  int64_t calls = 0;
  const rar::AttackObjective top_mass = [&](const torch::Tensor& map, const torch::Tensor& original,
                                            const torch::Tensor& iterate) {
    ++calls;
    CHECK(iterate.requires_grad());
    CHECK(map.sizes() == original.sizes());
    const int64_t m = map.size(0);
    const auto top = std::get<1>(original.reshape({m, -1}).topk(k, 1));
    const auto mask = torch::zeros({m, 64}, map.options()).scatter_(1, top, 1.0);
    return -(map.reshape({m, -1}) * mask).sum(1);
  };
  auto opts = rar::AttributionAttackOptions().k(k).epsilon(0.1).step_size(0.02).iterations(6);
  const auto builtin = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  const auto custom = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).kind(rar::AttackKind::custom).objective(top_mass));
  CHECK(calls == 6);
  CHECK(custom.adversarial.equal(builtin.adversarial));
  CHECK(custom.topk_intersection.equal(builtin.topk_intersection));
  CHECK(mean_over(custom.topk_intersection, custom.prediction_kept) < 1.0);
  // Its value per sample reaches the callback: the mass outside the top-k rises.
  std::vector<torch::Tensor> values;
  rar::attribution_attack(task.net, smooth, ig_method, x, y,
                          rar::AttributionAttackOptions(opts)
                              .kind(rar::AttackKind::custom)
                              .objective(top_mass)
                              .callback([&](int64_t, const torch::Tensor&, const torch::Tensor& v) {
                                values.push_back(v);
                              }));
  REQUIRE(values.size() == 7);
  CHECK(values[0].sizes() == torch::IntArrayRef({12}));
  CHECK(values[5].mean().item<double>() > values[0].mean().item<double>());
  CHECK_FALSE(values[6].defined());
  // Errors: no objective, or not one value per sample.
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                            rar::AttributionAttackOptions(opts).kind(
                                                rar::AttackKind::custom)),
                    Contains("rar::attribution_attack: AttackKind::custom needs an objective"));
  const rar::AttackObjective scalar = [](const torch::Tensor& map, const torch::Tensor&,
                                         const torch::Tensor&) { return map.sum(); };
  CHECK_THROWS_WITH(
      rar::attribution_attack(
          task.net, smooth, ig_method, x, y,
          rar::AttributionAttackOptions(opts).kind(rar::AttackKind::custom).objective(scalar)),
      Contains("the objective must return one value per attacked sample, shape [12], got []"));
}

TEST_CASE("the attack's callback sees the whole batch, and stopping early is a shorter attack",
          "[attribution_attack][callback]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 8);
  auto y = task.y.slice(0, 0, 8).clone();
  y[0] = 1 - y[0];  // sample 0 is misclassified: not attacked
  auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(6);
  std::vector<torch::Tensor> iterates, values;
  const auto r = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).callback(
          [&](int64_t, const torch::Tensor& it, const torch::Tensor& v) {
            iterates.push_back(it);
            values.push_back(v);
          }));
  REQUIRE(iterates.size() == 7);
  CHECK(iterates[0].equal(x));
  for (const auto& it : iterates) {
    CHECK(it.sizes() == x.sizes());
    CHECK(it[0].equal(x[0]));  // not attacked: stays at its input
  }
  CHECK(std::isnan(values[1][0].item<double>()));
  CHECK_FALSE(torch::isnan(values[1].slice(0, 1)).any().item<bool>());
  CHECK_FALSE(r.prediction_kept[0].item<bool>());
  // A callback that stops after iterate 3 gives the 3-iteration attack.
  const auto stopped = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).callback(
          [](int64_t t, const torch::Tensor&, const torch::Tensor&) { return t == 3; }));
  const auto three = rar::attribution_attack(task.net, smooth, ig_method, x, y,
                                             rar::AttributionAttackOptions(opts).iterations(3));
  CHECK(stopped.adversarial.equal(three.adversarial));
  CHECK(stopped.topk_intersection.equal(three.topk_intersection));
}

TEST_CASE("a random start for the attribution attack is drawn from the stream (seed, 0) and is a "
          "candidate",
          "[attribution_attack][random]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 8);
  const auto y = task.y.slice(0, 0, 8);
  std::vector<torch::Tensor> iterates;
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02)
                        .iterations(0).random_start(true).seed(6);
  const auto r = rar::attribution_attack(
      task.net, smooth, ig_method, x, y,
      rar::AttributionAttackOptions(opts).callback(
          [&](int64_t, const torch::Tensor& it, const torch::Tensor&) { iterates.push_back(it); }));
  REQUIRE(iterates.size() == 1);
  at::Generator gen = rar::seeded_generator(6, 0);
  const auto start = rar::random_start(gen, x, opts.ball());
  CHECK(iterates[0].equal(start));
  // With no steps the start is the only candidate: where it beats the input it is returned.
  const auto improved = r.improved.cpu();
  CHECK(improved.any().item<bool>());
  CHECK(r.adversarial.index({improved}).equal(start.index({improved})));
  CHECK(r.adversarial.index({~improved}).equal(x.index({~improved})));
}

TEST_CASE("attribution_attack, its surrogate agreement and explainers from rar::explain",
          "[attribution_attack][explainers]") {
  auto& task = half_task();
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto x = task.x.slice(0, 0, 12);
  const auto y = task.y.slice(0, 0, 12);
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(4);
  // Integrated gradients: the explainer equals the lambda written with rar::integrated_gradients.
  const auto ig = rar::explain::integrated_gradients(
                      rar::IGOptions().steps(16).method(rar::Quadrature::riemann_right))
                      .graph_steps(8);
  const auto with_explainer = rar::attribution_attack(task.net, smooth, ig, x, y, opts);
  const auto with_lambda = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);
  CHECK(with_explainer.adversarial.equal(with_lambda.adversarial));
  CHECK(with_explainer.topk_intersection.equal(with_lambda.topk_intersection));
  CHECK(with_explainer.kendall_tau.equal(with_lambda.kendall_tau));
  // Saliency likewise.
  const auto sal = rar::attribution_attack(task.net, smooth, rar::explain::saliency(), x, y, opts);
  const auto sal_lambda = rar::attribution_attack(task.net, smooth, saliency_method, x, y, opts);
  CHECK(sal.adversarial.equal(sal_lambda.adversarial));
  CHECK(mean_over(sal.topk_intersection, sal.prediction_kept) < 1.0);
  // The smooth surrogate agrees with the network on these inputs; a constant one does not.
  CHECK(with_explainer.surrogate_agreement.all().item<bool>());
  const auto always_zero = [](const torch::Tensor& in) {
    return torch::stack({in.flatten(1).sum(1), torch::zeros({in.size(0)}, in.options())}, 1);
  };
  const auto r = rar::attribution_attack(task.net, always_zero, rar::explain::saliency(), x, y,
                                         rar::AttributionAttackOptions(opts).kind(
                                             rar::AttackKind::random_sign));
  CHECK(r.surrogate_agreement.equal(y == 0));
}

TEST_CASE("pgd_attack and attribution_attack on CUDA match the CPU and keep tensors on the device",
          "[pgd][attribution_attack][cuda]") {
  RAR_REQUIRE_CUDA();
  const torch::Device cuda(torch::kCUDA);
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 8);
  const auto y = task.y.slice(0, 0, 8);
  auto cpu_net = task.net;
  auto smooth = rar::smooth_surrogate(cpu_net, 10.0);
  const auto pgd_opts = rar::PGDOptions().epsilon(0.1).step_size(0.02).steps(5).seed(3);
  const auto pgd_cpu = rar::pgd_attack(cpu_net, x, y, pgd_opts);
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(3).seed(4);
  const auto ig = rar::explain::integrated_gradients(
      rar::IGOptions().steps(8).method(rar::Quadrature::riemann_right));
  const auto cpu = rar::attribution_attack(cpu_net, smooth, ig, x, y, opts);
  // The same networks on the device (copies, so the CPU ones stay where they are).
  auto net = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(cpu_net->clone());
  REQUIRE(net);
  torch::nn::Sequential gpu_net(net);
  gpu_net->to(cuda);
  auto gpu_smooth = rar::smooth_surrogate(gpu_net, 10.0);
  const auto xc = x.to(cuda), yc = y.to(cuda);
  const auto pgd_gpu = rar::pgd_attack(gpu_net, xc, yc, pgd_opts);
  CHECK(pgd_gpu.device() == xc.device());
  // Sign steps: the same iterates unless a gradient entry sits at zero; compare loosely.
  CHECK(rar::test::max_rel_diff(pgd_gpu, pgd_cpu) < 1e-6);
  const auto gpu = rar::attribution_attack(gpu_net, gpu_smooth, ig, xc, yc, opts);
  for (const auto* t : {&gpu.adversarial, &gpu.original_map, &gpu.adversarial_map})
    CHECK(t->device() == xc.device());
  CHECK(gpu.prediction_kept.cpu().equal(cpu.prediction_kept));
  CHECK(rar::test::max_rel_diff(gpu.adversarial, cpu.adversarial) < 1e-6);
  CHECK(rar::test::max_rel_diff(gpu.topk_intersection, cpu.topk_intersection) < 1e-9);
}

// =============================================================================================
// Surrogates

TEST_CASE("the smooth surrogate follows the network as beta grows", "[surrogate]") {
  torch::manual_seed(21);
  torch::nn::Sequential net(torch::nn::Linear(6, 16), torch::nn::ReLU(), torch::nn::Linear(16, 16),
                            torch::nn::ReLU(), torch::nn::Linear(16, 3));
  net->to(torch::kDouble);
  const auto x = torch::randn({32, 6}, torch::kDouble);
  torch::NoGradGuard no_grad;
  const auto reference = net->forward(x);
  double previous = 1e300;
  for (double beta : {1.0, 10.0, 100.0, 1000.0}) {
    auto smooth = rar::smooth_surrogate(net, beta);
    const double diff = max_abs(smooth(x) - reference);
    CHECK(diff < previous);
    previous = diff;
    if (beta == 100.0) CHECK(diff < 0.05);
  }
  CHECK(previous < 5e-3);
  // A small CNN (the layout of the examples) works the same way.
  torch::nn::Sequential cnn(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
                            torch::nn::ReLU(), torch::nn::MaxPool2d(2), torch::nn::Flatten(),
                            torch::nn::Linear(4 * 4 * 4, 8), torch::nn::ReLU(),
                            torch::nn::Linear(8, 3));
  cnn->to(torch::kDouble);
  const auto images = torch::rand({4, 1, 8, 8}, torch::kDouble);
  auto smooth_cnn = rar::smooth_surrogate(cnn, 100.0);
  CHECK(max_abs(smooth_cnn(images) - cnn->forward(images)) < 0.05);
}

TEST_CASE("choose_surrogate_beta picks the smallest beta of the ladder whose agreement reaches the "
          "threshold",
          "[surrogate][fidelity]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 64);
  torch::Tensor predicted;
  {
    torch::NoGradGuard no_grad;
    predicted = task.net->forward(x).argmax(1);
  }
  // The agreement of each beta, written out.
  const std::vector<double> ladder = {0.05, 0.3, 1, 3, 10, 30, 100};
  std::vector<double> expected;
  for (const double beta : ladder) {
    torch::NoGradGuard no_grad;
    auto smooth = rar::smooth_surrogate(task.net, beta);
    expected.push_back(
        (rar::call_model(smooth, x).argmax(1) == predicted).to(torch::kDouble).mean().item<double>());
  }
  INFO("agreements: " << torch::tensor(expected));
  CHECK(expected.back() == 1.0);  // a sharp surrogate is the network
  for (const double threshold : {0.5, 0.9, 0.99, 1.0}) {
    const auto choice = rar::choose_surrogate_beta(
        task.net, x, rar::SurrogateBetaOptions().ladder(ladder).threshold(threshold));
    size_t first = 0;
    while (expected[first] < threshold) ++first;
    CHECK(choice.beta == ladder[first]);
    CHECK(choice.agreement == expected[first]);
    CHECK(choice.reached);
    CHECK(choice.agreements == std::vector<double>(expected.begin(), expected.begin() + first + 1));
  }
  // A threshold no beta reaches: the largest beta, flagged.
  const auto low = rar::choose_surrogate_beta(task.net, x,
                                              rar::SurrogateBetaOptions().ladder({0.01}).threshold(1.0));
  if (expected.front() < 1.0) CHECK_FALSE(low.reached);
  CHECK(low.beta == 0.01);
  CHECK_THROWS_WITH(rar::choose_surrogate_beta(task.net, x, rar::SurrogateBetaOptions().ladder({3, 1})),
                    Contains("rar::choose_surrogate_beta: the ladder must increase, got 3 then 1"));
  CHECK_THROWS_WITH(rar::choose_surrogate_beta(task.net, x, rar::SurrogateBetaOptions().threshold(0)),
                    Contains("threshold must lie in (0, 1], got 0"));
}

TEST_CASE("choose_surrogate_beta with an explainer also requires the surrogate's map to share the "
          "model's top-k features",
          "[surrogate][fidelity]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 48);
  const auto y = task.y.slice(0, 0, 48);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(16));
  const int64_t k = 8;
  const std::vector<double> ladder = {0.05, 0.3, 1, 3, 10, 30, 100};
  // Class and map agreement of each beta, written out: the top-k sets by torch::topk, counted
  // by hand (not through rar::topk_intersection).
  const torch::Tensor model_map = rar::attribution_map(ig(task.net, x, y, false)).flatten(1);
  const torch::Tensor model_top = std::get<1>(model_map.topk(k, 1));
  torch::Tensor predicted;
  {
    torch::NoGradGuard no_grad;
    predicted = task.net->forward(x).argmax(1);
  }
  std::vector<double> classes, maps;
  for (const double beta : ladder) {
    auto smooth = rar::smooth_surrogate(task.net, beta);
    {
      torch::NoGradGuard no_grad;
      classes.push_back((rar::call_model(smooth, x).argmax(1) == predicted)
                            .to(torch::kDouble)
                            .mean()
                            .item<double>());
    }
    const torch::Tensor top =
        std::get<1>(rar::attribution_map(ig(smooth, x, y, false)).flatten(1).topk(k, 1));
    double shared = 0;
    for (int64_t n = 0; n < x.size(0); ++n)
      for (int64_t i = 0; i < k; ++i)
        shared += (model_top[n] == top[n][i]).any().item<bool>() ? 1.0 : 0.0;
    maps.push_back(shared / static_cast<double>(x.size(0) * k));
  }
  INFO("class agreements: " << torch::tensor(classes) << "\nmap agreements: " << torch::tensor(maps));
  CHECK(maps.back() > maps.front());  // the sharper surrogate explains like the network
  // Here the class criterion (90 %) passes at beta = 1, whose map shares about 94 % of the top-8
  // features; the sharper surrogates share more, so the higher map thresholds move the choice up.
  const auto class_only = rar::choose_surrogate_beta(
      task.net, x, rar::SurrogateBetaOptions().ladder(ladder).threshold(0.9));
  const auto strict = rar::choose_surrogate_beta(
      task.net, ig, x, y,
      rar::SurrogateBetaOptions().ladder(ladder).threshold(0.9).map_threshold(0.99).k(k));
  CHECK(strict.beta > class_only.beta);
  for (const double map_threshold : {0.0, 0.5, 0.9, 0.95, 0.97, 0.99, 1.0}) {
    const auto options = rar::SurrogateBetaOptions().ladder(ladder).threshold(0.9).map_threshold(
        map_threshold).k(k);
    const auto choice = rar::choose_surrogate_beta(task.net, ig, x, y, options);
    size_t first = 0;
    while (first + 1 < ladder.size() &&
           (classes[first] < 0.9 || (map_threshold > 0 && maps[first] < map_threshold)))
      ++first;
    const bool reached = classes[first] >= 0.9 && (map_threshold == 0 || maps[first] >= map_threshold);
    INFO("map threshold " << map_threshold);
    CHECK(choice.beta == ladder[first]);
    CHECK(choice.reached == reached);
    CHECK(choice.agreement == classes[first]);
    REQUIRE(choice.map_agreements.size() == first + 1);
    for (size_t i = 0; i <= first; ++i) {
      // Maps are compared only once the class agrees (and not at all without a map threshold).
      if (map_threshold == 0 || classes[i] < 0.9) {
        CHECK(std::isnan(choice.map_agreements[i]));
      } else {
        CHECK(choice.map_agreements[i] == Approx(maps[i]).margin(1e-12));
      }
    }
    if (map_threshold == 0) {
      // Class agreement only: the choice of the overload without an explainer.
      const auto by_class = rar::choose_surrogate_beta(task.net, x, options);
      CHECK(by_class.beta == choice.beta);
      CHECK(std::isnan(choice.map_agreement));
    } else {
      CHECK(choice.map_agreement == choice.map_agreements.back());
      // Never a smaller beta than the class criterion alone.
      CHECK(choice.beta >= rar::choose_surrogate_beta(task.net, x, options).beta);
    }
  }
  CHECK_THROWS_WITH(rar::choose_surrogate_beta(task.net, ig, x, y,
                                               rar::SurrogateBetaOptions().map_threshold(1.5).k(k)),
                    Contains("rar::choose_surrogate_beta: map_threshold must lie in [0, 1] (0: no "
                             "map criterion), got 1.5"));
  CHECK_THROWS_WITH(rar::choose_surrogate_beta(task.net, ig, x, y, rar::SurrogateBetaOptions().k(65)),
                    Contains("k must be in [1, 64] (the features of each map, shape [8, 8]), "
                             "got k = 65"));
  CHECK_THROWS_WITH(rar::choose_surrogate_beta(task.net, ig, x, y.slice(0, 0, 3),
                                               rar::SurrogateBetaOptions().k(k)),
                    Contains("target must hold one class per input sample, shape [48], got [3]"));
}

TEST_CASE("auto_surrogate makes the attack choose beta by agreement on its input and report it",
          "[attribution_attack][surrogate][fidelity]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 12);
  const auto y = task.y.slice(0, 0, 12);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(6));
  const auto opts = rar::AttributionAttackOptions().k(5).epsilon(0.05).iterations(4).step_size(0.02);
  const auto ladder = rar::SurrogateBetaOptions().ladder({0.3, 3, 30}).threshold(0.9);
  // The attack chooses by class and map agreement, the maps compared at its own k.
  const auto choice =
      rar::choose_surrogate_beta(task.net, ig, x, y, rar::SurrogateBetaOptions(ladder).k(opts.k()));
  INFO("agreements: " << torch::tensor(choice.agreements)
                      << ", maps: " << torch::tensor(choice.map_agreements));
  const auto chosen = rar::attribution_attack(task.net, rar::auto_surrogate(ladder), ig, x, y, opts);
  CHECK(chosen.surrogate_beta == choice.beta);
  // The same attack as with the surrogate of that beta passed by hand.
  auto smooth = rar::smooth_surrogate(task.net, choice.beta);
  const auto by_hand = rar::attribution_attack(task.net, smooth, ig, x, y, opts);
  CHECK(std::isnan(by_hand.surrogate_beta));
  CHECK(torch::equal(chosen.adversarial, by_hand.adversarial));
  CHECK(torch::equal(chosen.topk_intersection, by_hand.topk_intersection));
  CHECK(torch::equal(chosen.surrogate_agreement, by_hand.surrogate_agreement));
  CHECK(chosen.surrogate_agreement.to(torch::kDouble).mean().item<double>() == choice.agreement);
  // A different ladder gives a different beta (the option is honoured).
  const auto sharp = rar::attribution_attack(
      task.net, rar::auto_surrogate(rar::SurrogateBetaOptions().ladder({50})), ig, x, y, opts);
  CHECK(sharp.surrogate_beta == 50);
  CHECK_THROWS_WITH(rar::attribution_attack(task.net,
                                            rar::auto_surrogate(rar::SurrogateBetaOptions().threshold(2)),
                                            ig, x, y, opts),
                    Contains("threshold must lie in (0, 1], got 2"));
}

TEST_CASE("auto_surrogate takes a smooth model (torch::nn::GELU inside a custom module) as its own "
          "surrogate, and refuses a hidden torch::relu by its missing curvature",
          "[attribution_attack][surrogate]") {
  torch::manual_seed(31);
  struct SmoothImpl : torch::nn::Module {
    torch::nn::Linear fc1{nullptr}, fc2{nullptr};
    torch::nn::GELU gelu{nullptr};
    SmoothImpl()
        : fc1(register_module("fc1", torch::nn::Linear(16, 12))),
          fc2(register_module("fc2", torch::nn::Linear(12, 3))),
          gelu(register_module("gelu", torch::nn::GELU())) {}
    torch::Tensor forward(const torch::Tensor& t) { return fc2(gelu(fc1(t.flatten(1)))); }
  };
  auto net = std::make_shared<SmoothImpl>();
  net->to(torch::kDouble);
  const auto x = torch::rand({4, 1, 4, 4}, torch::kDouble);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(6));
  const auto opts = rar::AttributionAttackOptions().k(4).epsilon(0.05).iterations(3).step_size(0.02);
  const auto chosen = rar::attribution_attack(net, rar::auto_surrogate(), ig, x, y, opts);
  CHECK(std::isinf(chosen.surrogate_beta));
  const auto itself = rar::attribution_attack(net, net, ig, x, y, opts);
  CHECK(torch::equal(chosen.adversarial, itself.adversarial));
  CHECK(torch::equal(chosen.topk_intersection, itself.topk_intersection));
  // A forward with torch::relu hidden in it has nothing rar can smooth and no curvature: refused.
  auto hidden = [&](const torch::Tensor& t) { return net->fc2(torch::relu(net->fc1(t.flatten(1)))); };
  CHECK_THROWS_WITH(rar::attribution_attack(hidden, rar::auto_surrogate(), ig, x, y, opts),
                    Contains("the surrogate computes what the model computes (the model itself, a copy or a "
                             "wrapper of it), and the model has no second derivative"));
}

TEST_CASE("a ReLU network passed as its own surrogate is refused, as itself, a copy or a "
          "wrapper: its map has no curvature",
          "[attribution_attack][surrogate]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 4);
  const auto y = task.y.slice(0, 0, 4);
  const auto ig = rar::explain::integrated_gradients(rar::IGOptions().steps(8));
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(2);
  const auto refused = Contains("rar::attribution_attack: the surrogate computes what the model "
                                "computes (the model itself, a copy or a wrapper of it), and the "
                                "model has no second derivative at the input");
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, task.net, ig, x, y, opts), refused);
  // The check compares behaviour, not objects: a deep copy and a lambda around the model are
  // the same ReLU network.
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(task.net->clone());
  REQUIRE(copy != nullptr);
  torch::nn::Sequential copied(copy);
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, copied, ig, x, y, opts), refused);
  auto wrapper = [&](const torch::Tensor& in) { return rar::call_model(task.net, in); };
  CHECK_THROWS_WITH(rar::attribution_attack(task.net, wrapper, ig, x, y, opts), refused);
  // The smooth surrogate, or a smooth model as its own surrogate, are fine; so is random-sign.
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  CHECK_NOTHROW(rar::attribution_attack(task.net, smooth, ig, x, y, opts));
  auto tanh_net = rar::test::smooth_mlp(64, 8, 2);
  auto flat = [&](const torch::Tensor& in) { return rar::call_model(tanh_net, in.flatten(1)); };
  CHECK_NOTHROW(rar::attribution_attack(flat, flat, ig, x, y, opts));
  CHECK_NOTHROW(rar::attribution_attack(task.net, task.net, ig, x, y,
                                        rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign)));
}

TEST_CASE("an explainer that ignores create_graph is refused: the attack would miss the map's "
          "curvature",
          "[attribution_attack][surrogate]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 4);
  const auto y = task.y.slice(0, 0, 4);
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto opts = rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(2);
  // IG whose input gradients are always detached: the map still requires grad through x − x′.
  const auto detached_ig = [](auto& net, const torch::Tensor& in, const torch::Tensor& target,
                              bool) {
    return rar::integrated_gradients(net, in, rar::IGOptions().target(target).steps(8));
  };
  const auto detached_gxi = [](auto& net, const torch::Tensor& in, const torch::Tensor& target,
                               bool) {
    return in * rar::saliency(net, in, rar::GradientOptions().target(target));
  };
  for (const auto dtype : {torch::kDouble, torch::kFloat}) {
    CAPTURE(dtype);
    torch::nn::Sequential copy(
        std::dynamic_pointer_cast<torch::nn::SequentialImpl>(task.net->clone()));
    copy->to(dtype);
    auto net = rar::smooth_surrogate(copy, 10.0);
    const auto xd = x.to(dtype);
    // In both dtypes: the map's graph does not reach the surrogate's weights.
    CHECK_THROWS_WITH(rar::attribution_attack(net, net, detached_ig, xd, y, opts),
                      Contains("rar::attribution_attack: the surrogate's map, computed with "
                               "create_graph = true, does not depend on the surrogate's "
                               "parameters") &&
                          Contains("Does the method ignore create_graph?"));
    CHECK_THROWS_WITH(rar::attribution_attack(net, net, detached_gxi, xd, y, opts),
                      Contains("Does the method ignore create_graph?"));
    // A surrogate whose parameters rar cannot see (a lambda): the finite differences decide,
    // in float64 (float32 is too coarse for them to decide safely).
    auto hidden = [&](const torch::Tensor& in) { return rar::call_model(net, in); };
    if (dtype == torch::kDouble) {
      CHECK_THROWS_WITH(rar::attribution_attack(net, hidden, detached_ig, xd, y, opts),
                        Contains("rar::attribution_attack: the surrogate's map is not "
                                 "differentiated correctly") &&
                            Contains("Does the method ignore create_graph?"));
    } else {
      CHECK_NOTHROW(rar::attribution_attack(net, hidden, detached_ig, xd, y, opts));
    }
    // The same methods passing create_graph on, and the library's explainers, are accepted.
    CHECK_NOTHROW(rar::attribution_attack(net, net, ig_method, xd, y, opts));
    CHECK_NOTHROW(rar::attribution_attack(
        net, net, rar::explain::gradient_x_input(rar::GradientOptions()), xd, y, opts));
    CHECK_NOTHROW(rar::attribution_attack(
        net, net, rar::explain::integrated_gradients(rar::IGOptions().steps(8)), xd, y, opts));
  }
  // The check can be switched off (the attack then runs, weakly), and random-sign needs none.
  CHECK_NOTHROW(rar::attribution_attack(task.net, smooth, detached_ig, x, y,
                                        rar::AttributionAttackOptions(opts).check_gradient(false)));
  CHECK_NOTHROW(rar::attribution_attack(
      task.net, smooth, detached_ig, x, y,
      rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign)));
}

using rar::test::WarningCollector;
using rar::test::WarningGuard;

TEST_CASE("attack_strength: the top-k attack beats random-sign at the same budget, a no-op "
          "attack does not and is warned about",
          "[attribution_attack][strength]") {
  auto& task = half_task();
  const auto x = task.x.slice(0, 0, 16);
  const auto y = task.y.slice(0, 0, 16);
  auto smooth = rar::smooth_surrogate(task.net, 10.0);
  const auto opts =
      rar::AttributionAttackOptions().k(8).epsilon(0.1).step_size(0.02).iterations(10).seed(3);
  const auto attack = rar::attribution_attack(task.net, smooth, ig_method, x, y, opts);

  WarningCollector warnings;
  WarningGuard guard(&warnings);
  const auto s = rar::attack_strength(task.net, ig_method, x, y, attack, opts);
  // The baseline, run by hand: the same options with random-sign directions.
  const auto random = rar::attribution_attack(
      task.net, task.net, ig_method, x, y,
      rar::AttributionAttackOptions(opts).kind(rar::AttackKind::random_sign));
  const auto both = (attack.prediction_kept & random.prediction_kept).cpu();
  CHECK(s.samples == both.sum().item<int64_t>());
  REQUIRE(s.samples > 8);
  const auto mean = [&](const torch::Tensor& v) { return mean_over(v.nan_to_num(0.0), both); };
  CHECK(s.attack_topk_intersection == Approx(mean(attack.topk_intersection)).epsilon(1e-12));
  CHECK(s.random_topk_intersection == Approx(mean(random.topk_intersection)).epsilon(1e-12));
  CHECK(s.attack_kendall == Approx(mean(attack.kendall_tau)).epsilon(1e-12));
  CHECK(s.random_kendall == Approx(mean(random.kendall_tau)).epsilon(1e-12));
  CHECK(s.attack_topk_intersection < s.random_topk_intersection);
  CHECK(s.stronger);
  CHECK(warnings.messages.empty());

  // An attack that did nothing (no iterations) keeps every map: IN = 1, not stronger, warned.
  const auto noop =
      rar::attribution_attack(task.net, smooth, ig_method, x, y,
                              rar::AttributionAttackOptions(opts).iterations(0));
  const auto w = rar::attack_strength(task.net, ig_method, x, y, noop, opts);
  CHECK(w.attack_topk_intersection == Approx(1.0));
  CHECK_FALSE(w.stronger);
  REQUIRE(warnings.messages.size() == 1);
  CHECK_THAT(warnings.messages[0],
             Contains("rar::attack_strength: the attack is not stronger than the random-sign "
                      "baseline at the same budget") &&
                 Contains("surrogate_agreement"));

  // The result must belong to the same batch.
  CHECK_THROWS_WITH(rar::attack_strength(task.net, ig_method, x.slice(0, 0, 4), y.slice(0, 0, 4),
                                         attack, opts),
                    Contains("rar::attack_strength: attack.topk_intersection must have one row "
                             "per input sample (4), got [16]"));
}
