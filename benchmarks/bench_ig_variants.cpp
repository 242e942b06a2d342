// Blur IG and Guided IG against Integrated Gradients with the same number of model passes.
//
// BlurIG/mnist_cnn/<device>    time of rar::blur_ig on N 28×28 images with `steps` path points
//                              (max_sigma 50, PAIR's defaults otherwise);
//                              ratio_to_ig = time / rar::integrated_gradients with the same steps
//                              (the same N·steps forward/backward rows); ratio_to_grad = time /
//                              (one forward and backward over the N·steps rows, in one batch).
//                              The excess over IG is the blur: 2·steps blur matrix products.
// GuidedIG/mnist_cnn/<device>  time of rar::guided_ig on N images in `steps` steps (fraction
//                              0.25, max_dist 0.02): one forward/backward over N rows per step,
//                              then the feature selection; ratio_to_ig as above (IG batches its
//                              N·steps rows, Guided IG cannot: each step starts where the last
//                              ended), ratio_to_grad likewise.
#include <rar/attribution/blur_ig.hpp>
#include <rar/attribution/guided_ig.hpp>
#include <rar/attribution/integrated_gradients.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// Args: {N, steps}. `guided` picks the method.
void bm_ig_variant(benchmark::State& state, torch::Device device, bool guided) {
  const int64_t n = state.range(0);
  const int64_t steps = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto ig_options = rar::IGOptions().target(y).steps(steps);
  const torch::Tensor rows = rar::bench::images(config, n * steps, device);
  const torch::Tensor rows_target = y.repeat({steps});
  auto ig = [&] { benchmark::DoNotOptimize(rar::integrated_gradients(net, x, ig_options)); };
  auto grad = [&] {
    benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, rows, rows_target));
  };
  auto work = [&] {
    if (guided) {
      benchmark::DoNotOptimize(
          rar::guided_ig(net, x, rar::GuidedIGOptions().target(y).steps(steps)));
    } else {
      benchmark::DoNotOptimize(rar::blur_ig(net, x, rar::BlurIGOptions().target(y).steps(steps)));
    }
  };
  paired(state, device, work, {{"ig", ig}, {"grad", grad}}, static_cast<double>(n));
}

void register_ig_variants() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    auto* b = benchmark::RegisterBenchmark(
        ("BlurIG/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_ig_variant(s, device, false); });
    b->ArgNames({"N", "steps"})->Args({4, 32})->Args({16, 32})->UseManualTime();
    b->Unit(benchmark::kMillisecond);
    auto* g = benchmark::RegisterBenchmark(
        ("GuidedIG/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_ig_variant(s, device, true); });
    g->ArgNames({"N", "steps"})->Args({4, 32})->Args({16, 32})->UseManualTime();
    g->Unit(benchmark::kMillisecond);
    if (device.is_cpu()) {
      b->MinTime(0.5);
      g->MinTime(0.5);
    }
  }
}

const rar::bench::Registrar ig_variants_registrar(register_ig_variants);

}  // namespace
