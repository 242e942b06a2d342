// Perturbation attribution against the forward passes it is made of.
//
// Occlusion/<net>/<device>        time of rar::occlusion with a w×w window (all channels) moved
//                                 by s on N images; ratio_to_fwds = time / one no-grad forward
//                                 over the (K + 1)·N rows it must evaluate (K windows, plus the
//                                 unperturbed input), in one batch. The gap is building the
//                                 occluded copies and the batching rule's chunks.
// FeatureAblation/<net>/<device>  rar::feature_ablation with g×g superpixels as groups;
//                                 ratio_to_fwds over the (G + 1)·N rows.
// ShapleySampling/<net>/<device>  rar::shapley_value_sampling with g×g superpixels, S orders;
//                                 ratio_to_fwds over the S·(G − 1)·N + 2N rows.
#include <rar/attribution/perturbation.hpp>
#include <rar/attribution/shapley_value_sampling.hpp>
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// One no-grad forward over `rows` seeded images: what every perturbation method must run.
template <class Net>
rar::bench::Reference forwards(Net& net, const rar::examples::NetConfig& config, int64_t rows,
                               const torch::Device& device) {
  const torch::Tensor batch = rar::bench::images(config, rows, device);
  return {"fwds", [&net, batch] {
            torch::NoGradGuard no_grad;
            benchmark::DoNotOptimize(net->forward(batch));
          }};
}

// Superpixels of g×g pixels of a size×size image, one mask [1, 1, size, size] for the batch.
torch::Tensor superpixels(int64_t size, int64_t g, const torch::Device& device) {
  const torch::Tensor cells = torch::arange(size, torch::TensorOptions().dtype(torch::kLong).device(device)).div(g, "trunc");
  const int64_t per_row = (size + g - 1) / g;
  return (cells.view({size, 1}) * per_row + cells.view({1, size})).view({1, 1, size, size});
}

// Args: {w, s, N}.
void bm_occlusion(benchmark::State& state, const rar::examples::NetConfig& config,
                  torch::Device device) {
  const int64_t w = state.range(0), s = state.range(1), n = state.range(2);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options =
      rar::OcclusionOptions({config.in_channels, w, w}).strides({1, s, s}).target(y);
  const int64_t per_dim = (config.image_size - w + s - 1) / s + 1;
  const int64_t windows = per_dim * per_dim;
  state.counters["windows"] = static_cast<double>(windows);
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::occlusion(net, x, options)); },
      {forwards(net, config, (windows + 1) * n, device)}, static_cast<double>(n));
}

// Args: {g, N}.
void bm_feature_ablation(benchmark::State& state, const rar::examples::NetConfig& config,
                         torch::Device device) {
  const int64_t g = state.range(0), n = state.range(1);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor mask = superpixels(config.image_size, g, device);
  const int64_t groups = mask.max().item<int64_t>() + 1;
  const auto options = rar::FeatureAblationOptions().feature_mask(mask).target(y);
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::feature_ablation(net, x, options)); },
      {forwards(net, config, (groups + 1) * n, device)}, static_cast<double>(n));
}

// Args: {g, S, N}.
void bm_shapley(benchmark::State& state, const rar::examples::NetConfig& config,
                torch::Device device) {
  const int64_t g = state.range(0), samples = state.range(1), n = state.range(2);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor mask = superpixels(config.image_size, g, device);
  const int64_t players = mask.max().item<int64_t>() + 1;
  const auto options = rar::ShapleyOptions().feature_mask(mask).samples(samples).target(y);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::shapley_value_sampling(net, x, options)); },
      {forwards(net, config, samples * (players - 1) * n + 2 * n, device)},
      static_cast<double>(n));
}

void register_perturbation() {
  rar::bench::add_context();
  const auto config = rar::bench::mnist_cnn();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    auto* o = benchmark::RegisterBenchmark(
        ("Occlusion/mnist_cnn/" + device_name).c_str(),
        [config, device = device](benchmark::State& s) { bm_occlusion(s, config, device); });
    o->ArgNames({"w", "s", "N"})->UseManualTime()->Unit(benchmark::kMillisecond);
    for (int64_t n : {1, 16}) {
      o->Args({4, 4, n});
      o->Args({4, 2, n});
    }
    if (!cpu) o->Args({4, 1, 64});
    if (cpu) o->MinTime(0.5);
    auto* a = benchmark::RegisterBenchmark(
        ("FeatureAblation/mnist_cnn/" + device_name).c_str(),
        [config, device = device](benchmark::State& s) { bm_feature_ablation(s, config, device); });
    a->ArgNames({"g", "N"})->UseManualTime()->Unit(benchmark::kMillisecond);
    a->ArgsProduct({{7, 4}, {1, 16}});
    if (cpu) a->MinTime(0.5);
    auto* sv = benchmark::RegisterBenchmark(
        ("ShapleySampling/mnist_cnn/" + device_name).c_str(),
        [config, device = device](benchmark::State& s) { bm_shapley(s, config, device); });
    sv->ArgNames({"g", "S", "N"})->UseManualTime()->Unit(benchmark::kMillisecond);
    sv->Args({7, 25, 1})->Args({7, 25, 16});
    if (cpu) sv->MinTime(0.5);
  }
}

const rar::bench::Registrar perturbation_registrar(register_perturbation);

}  // namespace
