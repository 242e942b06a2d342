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
//                            backward, called through rar::detail), target <= 1.2; peak_MiB =
//                            the allocator's peak during one step. Networks: the paper's MNIST
//                            CNN and the quick preset's (conv 16/32, fc 128), the network of
//                            benchmarks/reference.py's RAR/ cases (target: rar <= 0.8 x Python).
// RARProfile/ig_norm/<net> one IG-NORM step written out of its passes, each phase timed
//                            (path, forward, backward, ig, double_backward, projection, other)
//                            and the allocator's count and bytes per step.
// RARLevers/<lever>/<device> one IG-SUM-NORM training step (term + backward, no optimizer) on the
//                            quick preset's CNN at Fashion-MNIST's ε = 0.1, batch 50, with one
//                            cheaper-training lever (docs/methods.md, "Cheaper robust training"):
//                            demo (the earlier demo's m = 5, stride 5, 5 full inner steps),
//                            gauss_legendre_2 (2 points), loss_inner (5 inner steps on the loss),
//                            every_2 (penalty_every 2, averaged over both calls), fast
//                            (IGSumNormOptions::fast). ratio_to_natural = time / a natural step,
//                            ratio_to_demo = time / the demo setting's step.
// RARPaperStep/ig_norm       one IG-NORM step at the paper's scale (m = 50, 40 inner steps,
//                            batch 50): time and peak_MiB.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
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

// Bytes LibTorch's allocator holds at the peak of `f()` (rar::detail::AllocationCounter), MiB.
template <class F>
double peak_mib(F&& f) {
  auto counter = std::make_shared<rar::detail::AllocationCounter>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, counter);
    f();
  }
  return static_cast<double>(counter->peak()) / (1 << 20);
}

// The quick preset's network (conv 16/32, fc 128), the "small CNN" of the Python reference.
rar::examples::NetConfig mnist_cnn_quick() {
  auto c = rar::bench::mnist_cnn();
  c.conv1 = 16;
  c.conv2 = 32;
  c.fc = 128;
  return c;
}

// Args: {N}.
void bm_rar_term(benchmark::State& state, TermKind kind, const rar::examples::NetConfig& config,
                 torch::Device device) {
  const int64_t n = state.range(0);
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
  state.counters["peak_MiB"] = peak_mib([&] {
    net->zero_grad();
    term().backward();
  });
}

// The levers of docs/methods.md, one IG-SUM-NORM step each, against a natural step and the
// earlier demo's setting, measured alike in the same run.
enum class Lever { demo, gauss_legendre_2, loss_inner, every_2, fast };

rar::IGSumNormOptions lever_options(Lever lever) {
  const auto demo = rar::IGSumNormOptions()
                        .epsilon(0.1)
                        .steps(5)
                        .inner_stride(5)
                        .attack_steps(5)
                        .attack_step_size(0.01)
                        .beta(0.1);
  switch (lever) {
    case Lever::demo:
      return demo;
    case Lever::gauss_legendre_2:
      return rar::IGSumNormOptions(demo).steps(2).inner_stride(2).quadrature(
          rar::Quadrature::gauss_legendre);
    case Lever::loss_inner:
      return rar::IGSumNormOptions(demo).inner_objective(rar::InnerObjective::loss);
    case Lever::every_2:
      return rar::IGSumNormOptions(demo).penalty_every(2);
    case Lever::fast:
      return rar::IGSumNormOptions::fast(0.1).beta(0.1);
  }
  return demo;
}

// Args: {N}.
void bm_rar_lever(benchmark::State& state, Lever lever, torch::Device device) {
  const int64_t n = state.range(0);
  const auto config = mnist_cnn_quick();
  auto net = rar::bench::make_net(config, device);
  net->train();
  const torch::Tensor x = rar::bench::images(config, n, device);
  torch::manual_seed(3);
  const torch::Tensor y = torch::randint(0, config.classes, {n}, torch::kLong).to(device);
  // Each call of the term is one training step; every_2 alternates its two kinds of call.
  auto step = [&, t = rar::ig_sum_norm(lever_options(lever))] {
    net->zero_grad();
    t(net, x, y).backward();
  };
  auto demo = [&, t = rar::ig_sum_norm(lever_options(Lever::demo))] {
    net->zero_grad();
    t(net, x, y).backward();
  };
  auto natural = [&] {
    net->zero_grad();
    rar::cross_entropy()(net, x, y).backward();
  };
  paired(state, device, step, {{"natural", natural}, {"demo", demo}}, static_cast<double>(n));
}

// One IG-NORM step at the paper's MNIST scale (m = 50, inner stride 5, 40 inner steps, batch 50,
// the full-width CNN): its time and the peak bytes LibTorch's allocator holds.
void bm_rar_paper_step(benchmark::State& state, torch::Device device) {
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  net->train();
  const torch::Tensor x = rar::bench::images(config, 50, device);
  torch::manual_seed(3);
  const torch::Tensor y = torch::randint(0, config.classes, {50}, torch::kLong).to(device);
  const auto term = rar::ig_norm(rar::IGNormOptions()
                                     .epsilon(kEpsilon)
                                     .steps(50)
                                     .inner_stride(5)
                                     .attack_steps(40)
                                     .attack_step_size(kStepSize));
  double peak = 0;
  for (auto _ : state) {
    net->zero_grad();
    const double s = rar::bench::seconds(device, [&] { peak = peak_mib([&] { term(net, x, y).backward(); }); });
    state.SetIterationTime(s);
  }
  state.counters["peak_MiB"] = peak;
}

// Where the time of one IG-NORM step goes: the step written out of its passes (as
// rar::detail::robust_ig_objective and rar::projected_ascent run them), each phase timed on its
// own. Counters, ms per step: path (building x + α(x′ − x)), forward, backward (the first,
// create_graph), ig (weights, |IG|, sums), double_backward (the inner gradients w.r.t. x′ and the
// outer backward w.r.t. the parameters), projection (sign step, ball, range); allocations = the
// number of tensors LibTorch's allocator hands out per step, allocated_MiB their total size.
void bm_rar_profile(benchmark::State& state, const rar::examples::NetConfig& config,
                    torch::Device device) {
  const int64_t n = state.range(0);
  auto net = rar::bench::make_net(config, device);
  net->train();
  const torch::Tensor x = rar::bench::images(config, n, device);
  torch::manual_seed(3);
  const torch::Tensor y = torch::randint(0, config.classes, {n}, torch::kLong).to(device);
  const auto ball = rar::BallOptions().epsilon(kEpsilon);
  std::map<std::string, double> phase;
  auto timed = [&](const char* name, auto&& f) {
    const auto start = std::chrono::steady_clock::now();
    auto result = f();
    rar::bench::sync(device);
    phase[name] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };
  // The objective λ‖IG‖₁ at x′ over the rule's points, phase by phase.
  auto objective = [&](const torch::Tensor& xa, const rar::QuadratureRule& rule) {
    const int64_t k = static_cast<int64_t>(rule.alphas.size());
    const torch::Tensor alphas = torch::tensor(rule.alphas, x.options().dtype(torch::kDouble))
                                     .to(x.options())
                                     .view({k, 1, 1, 1, 1});
    const torch::Tensor diff = xa - x;
    torch::Tensor path = timed("path", [&] {
      return (x.unsqueeze(0) + alphas * diff.unsqueeze(0)).reshape({k * n, x.size(1), x.size(2), x.size(3)});
    });
    if (!path.requires_grad()) path = path.detach().requires_grad_(true);
    const torch::Tensor out = timed("forward", [&] { return net->forward(path); });
    const torch::Tensor g = timed("backward", [&] {
      const torch::Tensor s = rar::score::cross_entropy(out, y.repeat({k}));
      return torch::autograd::grad({s.sum()}, {path}, {}, true, true)[0];
    });
    return timed("ig", [&] {
      return (diff * g.view({k, n, x.size(1), x.size(2), x.size(3)}).mean(0)).abs().flatten(1).sum(1);
    });
  };
  const rar::QuadratureRule inner = rar::detail::strided_right_riemann(kSteps, kStride);
  const rar::QuadratureRule full = rar::detail::strided_right_riemann(kSteps, 1);
  auto step = [&] {
    torch::Tensor xa = timed("projection", [&] {
      return rar::project_to_ball(x + torch::empty_like(x).uniform_(-kEpsilon, kEpsilon), x, ball);
    });
    for (int64_t t = 0; t < kInnerSteps; ++t) {
      const torch::Tensor leaf = xa.detach().requires_grad_(true);
      const torch::Tensor o = objective(leaf, inner);
      const torch::Tensor g =
          timed("double_backward", [&] { return torch::autograd::grad({o.sum()}, {leaf})[0]; });
      xa = timed("projection", [&] {
        torch::NoGradGuard no_grad;
        return rar::project_to_ball(rar::ascent_step(leaf, g, kStepSize, rar::Norm::linf), x, ball);
      });
    }
    net->zero_grad();
    const torch::Tensor o = objective(xa.detach(), full);
    timed("double_backward", [&] {
      o.mean().backward();
      return 0;
    });
  };
  step();  // warm-up
  auto counter = std::make_shared<rar::detail::AllocationCounter>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, counter);
    step();
  }
  phase.clear();
  double total = 0;
  for (auto _ : state) {
    const double s = rar::bench::seconds(device, step);
    state.SetIterationTime(s);
    total += s;
  }
  const auto count = static_cast<double>(state.iterations());
  double accounted = 0;
  for (const auto& [name, seconds] : phase) {
    state.counters[name + "_ms"] = 1e3 * seconds / count;
    accounted += seconds;
  }
  state.counters["other_ms"] = 1e3 * (total - accounted) / count;
  state.counters["allocations"] = static_cast<double>(counter->allocations());
  state.counters["allocated_MiB"] = static_cast<double>(counter->allocated()) / (1 << 20);
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
    const std::pair<const char*, rar::examples::NetConfig> widths[] = {
        {"mnist_cnn", rar::bench::mnist_cnn()}, {"mnist_cnn_quick", mnist_cnn_quick()}};
    for (const auto& [term_name, kind] : terms) {
      for (const auto& [net_name, config] : widths) {
        auto* r = benchmark::RegisterBenchmark(
            ("RAR/" + std::string(term_name) + "/" + net_name + "/" + device_name).c_str(),
            [kind = kind, config = config, device = device](benchmark::State& s) {
              bm_rar_term(s, kind, config, device);
            });
        r->ArgNames({"N"})->Args({50})->UseManualTime()->Unit(benchmark::kMillisecond);
        if (cpu) r->Iterations(kind == TermKind::madry ? 20 : 5);
      }
    }
    for (const auto& [net_name, config] : widths) {
      auto* f = benchmark::RegisterBenchmark(
          ("RARProfile/ig_norm/" + std::string(net_name) + "/" + device_name).c_str(),
          [config = config, device = device](benchmark::State& s) {
            bm_rar_profile(s, config, device);
          });
      f->ArgNames({"N"})->Args({50})->UseManualTime()->Unit(benchmark::kMillisecond);
      if (cpu) f->Iterations(5);
    }
    const std::pair<const char*, Lever> levers[] = {{"demo", Lever::demo},
                                                    {"gauss_legendre_2", Lever::gauss_legendre_2},
                                                    {"loss_inner", Lever::loss_inner},
                                                    {"every_2", Lever::every_2},
                                                    {"fast", Lever::fast}};
    for (const auto& [lever_name, lever] : levers) {
      auto* l = benchmark::RegisterBenchmark(
          ("RARLevers/" + std::string(lever_name) + "/mnist_cnn_quick/" + device_name).c_str(),
          [lever = lever, device = device](benchmark::State& s) { bm_rar_lever(s, lever, device); });
      // An even count of iterations: every_2 averages a penalized call and one between.
      l->ArgNames({"N"})->Args({50})->UseManualTime()->Unit(benchmark::kMillisecond);
      if (cpu) l->Iterations(20);
    }
    auto* p = benchmark::RegisterBenchmark(
        ("RARPaperStep/ig_norm/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_rar_paper_step(s, device); });
    p->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
  }
}

const rar::bench::Registrar training_registrar(register_training);

}  // namespace
