// Evaluation throughput: what the examples' `eval` runs over a test set, batched over images,
// against the same algorithm run one image at a time (the official code's loop).
//
// Eval/attack/<net>/<device>  rar::attribution_attack (top-k, k = 100, the quick settings of
//                             `eval`: surrogate IG with 10 steps, real IG maps with 10 steps)
//                             on N images with I iterations, all images in one call;
//                             ratio_to_per_image = batched / (one call per image), target <= 0.2
//                             (at least 5x faster at N = 100); image_iterations_per_second.
// Eval/pgd/<net>/<device>     rar::pgd_attack (AA: 20 steps of 0.01 in the 0.1-ball) on N images
//                             at once against one call per image; ratio_to_per_image likewise.
// Eval/accuracy/<net>/<device> NA: one no-grad forward over N images against N one-image
//                             forwards.
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

constexpr int64_t kIGSteps = 10;

// The explainer of `eval`'s quick settings: IG of the true logit, right Riemann, 10 points.
auto eval_ig() {
  return rar::explain::integrated_gradients(
      rar::IGOptions().steps(kIGSteps).method(rar::Quadrature::riemann_right));
}

// Args: {N, I}.
void bm_eval_attack(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t iterations = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  auto surrogate = rar::smooth_surrogate(net, 10.0);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options =
      rar::AttributionAttackOptions().k(100).epsilon(0.1).step_size(0.01).iterations(iterations);
  const auto ig = eval_ig();
  auto batched = [&] {
    benchmark::DoNotOptimize(rar::attribution_attack(net, surrogate, ig, x, y, options).adversarial);
  };
  auto per_image = [&] {
    for (int64_t i = 0; i < n; ++i) {
      benchmark::DoNotOptimize(rar::attribution_attack(net, surrogate, ig, x.slice(0, i, i + 1),
                                                       y.slice(0, i, i + 1), options)
                                   .adversarial);
    }
  };
  const double seconds = paired(state, device, batched, {{"per_image", per_image}},
                                static_cast<double>(n));
  state.counters["image_iterations_per_second"] =
      static_cast<double>(n * iterations) / seconds;
}

// Args: {N}.
void bm_eval_pgd(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options = rar::PGDOptions().epsilon(0.1).step_size(0.01).steps(20);
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::pgd_attack(net, x, y, options)); },
      {{"per_image",
        [&] {
          for (int64_t i = 0; i < n; ++i)
            benchmark::DoNotOptimize(
                rar::pgd_attack(net, x.slice(0, i, i + 1), y.slice(0, i, i + 1), options));
        }}},
      static_cast<double>(n));
}

// Args: {N}.
void bm_eval_accuracy(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  torch::NoGradGuard no_grad;
  paired(
      state, device, [&] { benchmark::DoNotOptimize(net->forward(x).argmax(1)); },
      {{"per_image",
        [&] {
          for (int64_t i = 0; i < n; ++i)
            benchmark::DoNotOptimize(net->forward(x.slice(0, i, i + 1)).argmax(1));
        }}},
      static_cast<double>(n));
}

void register_eval() {
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    auto* a = benchmark::RegisterBenchmark(
        ("Eval/attack/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_eval_attack(s, device); });
    a->ArgNames({"N", "I"})->Args({100, 3})->UseManualTime()->Unit(benchmark::kMillisecond);
    if (cpu) a->Iterations(1);
    auto* p = benchmark::RegisterBenchmark(
        ("Eval/pgd/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_eval_pgd(s, device); });
    p->ArgNames({"N"})->Args({100})->UseManualTime()->Unit(benchmark::kMillisecond);
    if (cpu) p->Iterations(2);
    auto* f = benchmark::RegisterBenchmark(
        ("Eval/accuracy/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_eval_accuracy(s, device); });
    f->ArgNames({"N"})->Args({1000})->UseManualTime()->Unit(benchmark::kMillisecond);
    if (cpu) f->MinTime(0.5);
  }
}

const rar::bench::Registrar eval_registrar(register_eval);

}  // namespace
