// Attacks and RAR training terms against the passes they are built from.
//
// PGD/<net>/<device>         one rar::detail::pgd_step (the step of rar::pgd_attack);
//                            ratio_to_fwd_bwd = time / (forward + input-gradient backward over N).
// AttributionAttack/<device> one iteration of rar::attribution_attack (top-k, IG with 10 steps,
//                            softplus surrogate, MNIST CNN): (time with I iterations − time with
//                            0) / I; ratio_to_parts = that / (surrogate IG with create_graph and
//                            its gradient w.r.t. x + real forward + real IG), measured alike.
// RAR/<term>/<device>        one training step, term(model, x, y).backward() (no optimizer), at
//                            the quick settings (m = 10, stride 5, 5 inner steps, batch 50);
//                            ratio_to_natural = time / cross_entropy().backward();
//                            ratio_to_parts = time / (its inner steps + its outer objective and
//                            backward, called through rar::detail), target <= 1.2.
#include <algorithm>
#include <functional>
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;
using rar::bench::seconds;

// ---- PGD ------------------------------------------------------------------------------------

// Args: {N}.
void bm_pgd_step(benchmark::State& state, const rar::examples::NetConfig& config,
                 torch::Device device) {
  const int64_t n = state.range(0);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options = rar::PGDOptions().epsilon(0.3).step_size(0.01);
  const torch::Tensor start = rar::detail::pgd_start(x, options);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::detail::pgd_step(net, start, x, y, options)); },
      {{"fwd_bwd",
        [&] {
          const torch::Tensor p = start.detach().requires_grad_(true);
          const torch::Tensor l = rar::score::cross_entropy(net->forward(p), y);
          benchmark::DoNotOptimize(torch::autograd::grad({l.sum()}, {p})[0]);
        }}},
      static_cast<double>(n));
}

// ---- attribution attack ---------------------------------------------------------------------

// IG points of the attack's method (for the surrogate's gradient and for the real maps).
constexpr int64_t kAttackIGSteps = 10;

// Args: {N, I}.
void bm_attribution_attack(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t iterations = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  auto surrogate = rar::smooth_surrogate(net, 10.0);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  auto ig = [](auto& model, const torch::Tensor& input, const torch::Tensor& target,
               bool create_graph) {
    return rar::integrated_gradients(model, input,
                                     rar::IGOptions()
                                         .target(target)
                                         .steps(kAttackIGSteps)
                                         .method(rar::Quadrature::riemann_right)
                                         .create_graph(create_graph));
  };
  const auto options =
      rar::AttributionAttackOptions().k(100).epsilon(0.3).step_size(0.01).iterations(iterations);
  const auto setup_only = rar::AttributionAttackOptions(options).iterations(0);
  auto attack = [&](const rar::AttributionAttackOptions& o) {
    benchmark::DoNotOptimize(rar::attribution_attack(net, surrogate, ig, x, y, o).adversarial);
  };
  // The passes of one iteration: the surrogate's differentiable map and its gradient w.r.t. the
  // input, the real model's prediction and its map.
  const torch::Tensor top =
      std::get<1>(rar::attribution_map(ig(net, x, y, false)).flatten(1).topk(100, 1));
  const torch::Tensor mask = torch::zeros({n, 28 * 28}, x.options()).scatter_(1, top, 1.0);
  auto parts = [&] {
    const torch::Tensor xs = x.detach().requires_grad_(true);
    const torch::Tensor map = rar::attribution_map(ig(surrogate, xs, y, true));
    const torch::Tensor objective = -(map.flatten(1) * mask).sum();
    benchmark::DoNotOptimize(torch::autograd::grad({objective}, {xs})[0]);
    {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(net->forward(x).argmax(1));
    }
    benchmark::DoNotOptimize(rar::attribution_map(ig(net, x, y, false)));
  };
  attack(options);  // warm-up
  parts();
  double work_total = 0, parts_total = 0;
  for (auto _ : state) {
    const double with = seconds(device, [&] { attack(options); });
    const double without = seconds(device, [&] { attack(setup_only); });
    const double per_iteration = std::max(0.0, with - without) / static_cast<double>(iterations);
    state.SetIterationTime(per_iteration);
    work_total += per_iteration;
    parts_total += seconds(device, parts);
  }
  const auto count = static_cast<double>(state.iterations());
  state.counters["ratio_to_parts"] = work_total / parts_total;
  state.counters["parts_ms"] = 1e3 * parts_total / count;
  state.counters["items_per_second"] = static_cast<double>(n) * count / work_total;
}

// ---- RAR training terms ---------------------------------------------------------------------

enum class TermKind { ig_norm, ig_sum_norm, madry };

// The term settings of the examples' quick preset: m = 10, stride 5, 5 inner steps of 0.01 in
// the 0.3-ball (on the full-width MNIST CNN; the preset also narrows the network).
constexpr int64_t kSteps = 10, kStride = 5, kInnerSteps = 5;
constexpr double kEpsilon = 0.3, kStepSize = 0.01;

// Args: {N}.
void bm_rar_term(benchmark::State& state, TermKind kind, torch::Device device) {
  const int64_t n = state.range(0);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  net->train();
  const torch::Tensor x = rar::bench::images(config, n, device);
  torch::manual_seed(3);
  const torch::Tensor y = torch::randint(0, config.classes, {n}, torch::kLong).to(device);

  const auto ig_norm_options = rar::IGNormOptions()
                                   .epsilon(kEpsilon)
                                   .steps(kSteps)
                                   .inner_stride(kStride)
                                   .attack_steps(kInnerSteps)
                                   .attack_step_size(kStepSize)
                                   .lambda(1.0);
  const auto ig_sum_norm_options = rar::IGSumNormOptions()
                                       .epsilon(kEpsilon)
                                       .steps(kSteps)
                                       .inner_stride(kStride)
                                       .attack_steps(kInnerSteps)
                                       .attack_step_size(kStepSize)
                                       .beta(0.1);
  const auto pgd_options =
      rar::PGDOptions().epsilon(kEpsilon).step_size(kStepSize).steps(kInnerSteps);

  std::function<torch::Tensor()> term;
  switch (kind) {
    case TermKind::ig_norm:
      term = [&, t = rar::ig_norm(ig_norm_options)] { return t(net, x, y); };
      break;
    case TermKind::ig_sum_norm:
      term = [&, t = rar::ig_sum_norm(ig_sum_norm_options)] { return t(net, x, y); };
      break;
    case TermKind::madry:
      term = [&, t = rar::adversarial(pgd_options)] { return t(net, x, y); };
      break;
  }

  // The parts, called directly: a point of the ball stands in for the inner iterates.
  const torch::Tensor x_adv = rar::detail::pgd_start(x, pgd_options);
  const rar::detail::RobustIGConfig robust =
      kind == TermKind::ig_sum_norm
          ? rar::detail::robust_ig_config("rar::ig_sum_norm", ig_sum_norm_options,
                                          ig_sum_norm_options.beta(), true,
                                          rar::detail::SizeFunction::l1)
          : rar::detail::robust_ig_config("rar::ig_norm", ig_norm_options, ig_norm_options.lambda(),
                                          false, rar::detail::SizeFunction::l1);
  const rar::QuadratureRule inner_rule = rar::detail::strided_right_riemann(kSteps, kStride);
  const rar::QuadratureRule full_rule = rar::detail::strided_right_riemann(kSteps, 1);
  auto parts = [&] {
    net->zero_grad();
    if (kind == TermKind::madry) {
      // inner: steps × (forward + backward w.r.t. the input over N)
      for (int64_t s = 0; s < kInnerSteps; ++s) {
        const torch::Tensor p = x_adv.detach().requires_grad_(true);
        const torch::Tensor l = rar::score::cross_entropy(net->forward(p), y);
        benchmark::DoNotOptimize(torch::autograd::grad({l.sum()}, {p})[0]);
      }
      // outer: the loss at x* and its backward w.r.t. the parameters
      rar::score::cross_entropy(net->forward(x_adv), y).mean().backward();
      return;
    }
    // inner: steps × (the strided objective over N·m/stride rows with create_graph, and its
    // gradient w.r.t. x′)
    for (int64_t s = 0; s < kInnerSteps; ++s) {
      const torch::Tensor xa = x_adv.detach().requires_grad_(true);
      const torch::Tensor objective =
          rar::detail::robust_ig_objective(net, x, xa, y, inner_rule, robust);
      benchmark::DoNotOptimize(torch::autograd::grad({objective.sum()}, {xa})[0]);
    }
    // outer: the full-m objective at x′ and its backward w.r.t. the parameters
    rar::detail::robust_ig_objective(net, x, x_adv, y, full_rule, robust).mean().backward();
  };
  auto natural = [&] {
    net->zero_grad();
    rar::cross_entropy()(net, x, y).backward();
  };
  paired(
      state, device,
      [&] {
        net->zero_grad();
        term().backward();
      },
      {{"parts", parts}, {"natural", natural}}, static_cast<double>(n));
}

void register_training() {
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    const std::pair<const char*, rar::examples::NetConfig> nets[] = {
        {"mnist_cnn", rar::bench::mnist_cnn()}, {"gtsrb_resnet", rar::bench::gtsrb_resnet()}};
    for (const auto& [net_name, config] : nets) {
      auto* b =
          benchmark::RegisterBenchmark(("PGD/" + std::string(net_name) + "/" + device_name).c_str(),
                                       [config = config, device = device](benchmark::State& s) {
                                         bm_pgd_step(s, config, device);
                                       });
      b->ArgNames({"N"})->Args({16})->Args({64})->Args({256})->UseManualTime();
      b->Unit(benchmark::kMillisecond);
      if (cpu) b->MinTime(0.3);
    }
    auto* a = benchmark::RegisterBenchmark(
        ("AttributionAttack/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_attribution_attack(s, device); });
    a->ArgNames({"N", "I"})->Args({16, 3})->UseManualTime()->Unit(benchmark::kMillisecond);
    if (cpu) a->Iterations(3);

    const std::pair<const char*, TermKind> terms[] = {{"ig_norm", TermKind::ig_norm},
                                                      {"ig_sum_norm", TermKind::ig_sum_norm},
                                                      {"madry", TermKind::madry}};
    for (const auto& [term_name, kind] : terms) {
      auto* r = benchmark::RegisterBenchmark(
          ("RAR/" + std::string(term_name) + "/mnist_cnn/" + device_name).c_str(),
          [kind = kind, device = device](benchmark::State& s) { bm_rar_term(s, kind, device); });
      r->ArgNames({"N"})->Args({50})->UseManualTime()->Unit(benchmark::kMillisecond);
      if (cpu) r->Iterations(kind == TermKind::madry ? 20 : 5);
    }
  }
}

const rar::bench::Registrar registrar(register_training);

}  // namespace
