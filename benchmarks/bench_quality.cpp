// Quality metrics against the forward passes they are made of.
//
// Infidelity/mnist_cnn/<device>  time of rar::infidelity on N inputs with S perturbations each
//                                (default Gaussian perturbations, given attributions);
//                                ratio_to_fwd = time / (one forward over the N + N·S rows the
//                                metric must evaluate, in one batch).
// Deletion/mnist_cnn/<device>    time of rar::deletion_curve on N 28×28 maps in `steps` steps
//                                (features_per_step = 784 / steps, softmax score);
//                                ratio_to_fwd = time / (one forward over the N·(steps + 1)
//                                perturbed inputs, in one batch). Insertion costs the same.
#include <rar/metrics/quality.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// Args: {N, S}.
void bm_infidelity(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t samples = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor attr = torch::randn_like(x);
  const auto options = rar::InfidelityOptions().target(y).samples(samples).stddev(0.1);
  // The limit: the forwards over the inputs and their N·S perturbed copies, in one batch.
  const torch::Tensor rows = torch::cat({x, x.repeat_interleave(samples, 0) -
                                                0.1 * torch::randn({n * samples, 1, 28, 28})
                                                          .to(device)});
  auto fwd = [&] {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(net->forward(rows));
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::infidelity(net, x, attr, options)); },
      {{"fwd", fwd}}, static_cast<double>(n));
}

// Args: {N, steps}.
void bm_deletion(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t steps = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor attr = torch::randn_like(x);
  const auto options =
      rar::PerturbationCurveOptions().target(y).features_per_step((28 * 28 + steps - 1) / steps);
  // The limit: one forward over the N·(steps + 1) perturbed inputs, built beforehand.
  const torch::Tensor rows = rar::bench::images(config, n * (steps + 1), device);
  auto fwd = [&] {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(torch::softmax(net->forward(rows), 1));
  };
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::deletion_curve(net, x, attr, options).auc); },
      {{"fwd", fwd}}, static_cast<double>(n));
}

void register_quality() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    auto* i = benchmark::RegisterBenchmark(
        ("Infidelity/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_infidelity(s, device); });
    i->ArgNames({"N", "S"})->Args({16, 10})->Args({64, 10})->UseManualTime();
    i->Unit(benchmark::kMillisecond);
    auto* d = benchmark::RegisterBenchmark(
        ("Deletion/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_deletion(s, device); });
    d->ArgNames({"N", "steps"})->Args({16, 16})->Args({16, 49})->UseManualTime();
    d->Unit(benchmark::kMillisecond);
    if (device.is_cpu()) {
      i->MinTime(0.5);
      d->MinTime(0.5);
    }
  }
}

const rar::bench::Registrar quality_registrar(register_quality);

}  // namespace
