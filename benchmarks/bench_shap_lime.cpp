// LIME and KernelSHAP against the forward passes they are built from.
//
// LIME/mnist_cnn/<device>        time of rar::lime (default Lasso surrogate) on N images with a
// KernelSHAP/mnist_cnn/<device>  4×4 superpixel mask (49 features) and S coalitions per image;
//                                ratio_to_fwd = time / (one forward, without autograd, over N·S
//                                images in one batch: the perturbed rows the method scores);
//                                ratio_to_fit = time / (the N surrogate regressions alone, on
//                                the CPU in float64), and regression_share = fit time / time.
#include <rar/attribution/kernel_shap.hpp>
#include <rar/attribution/lime.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// The 4×4 superpixels of a 28×28 image: 49 features, shared by the batch and the channel.
torch::Tensor superpixels(const torch::Device& device) {
  const torch::Tensor block = torch::arange(28, torch::kLong).div(4, "floor");
  return (block.view({28, 1}) * 7 + block.view({1, 28})).view({1, 1, 28, 28}).to(device);
}

// Args: {N, S}; kernel_shap selects the method.
void bm_surrogate(benchmark::State& state, bool kernel_shap, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t s = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor mask = superpixels(device);
  const auto lime_options = rar::LimeOptions().target(y).feature_mask(mask).samples(s);
  const auto shap_options = rar::KernelShapOptions().target(y).feature_mask(mask).samples(s);
  auto work = [&] {
    if (kernel_shap) {
      benchmark::DoNotOptimize(rar::kernel_shap(net, x, shap_options));
    } else {
      benchmark::DoNotOptimize(rar::lime(net, x, lime_options));
    }
  };
  // The limit: one forward over the N·S perturbed rows, in one batch, without autograd.
  const torch::Tensor rows = rar::bench::images(config, n * s, device);
  auto fwd = [&] {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(net->forward(rows));
  };
  // The regressions alone, on the coalitions, scores and weights of one call.
  const char* fn = kernel_shap ? "KernelSHAP" : "LIME";
  const auto features = rar::detail::interpretable_features(fn, mask, x);
  at::Generator gen = rar::seeded_generator(0);
  const torch::Tensor coalitions =
      kernel_shap ? rar::detail::kernel_shap_coalitions(gen, n, s, features.count)
                  : torch::rand({n, s, features.count}, gen, torch::kDouble) < 0.5;
  const rar::LimeDistance distance = rar::LimeDistance::cosine;
  const auto evaluated = rar::detail::evaluate_coalitions(
      fn, net, x, torch::zeros_like(x), features, coalitions, y, rar::score::logit, 0,
      kernel_shap ? nullptr : &distance);
  const torch::Tensor weights = kernel_shap ? rar::detail::kernel_shap_weights(coalitions)
                                            : rar::detail::lime_weights(evaluated.distances, 1.0);
  const auto kind =
      kernel_shap ? rar::LinearSurrogate::linear_regression : rar::LinearSurrogate::lasso;
  auto fit = [&] {
    benchmark::DoNotOptimize(rar::detail::surrogate_attributions(
        x, features, coalitions, evaluated.scores, weights, kind, 0.01));
  };
  const double mean = paired(state, device, work, {{"fwd", fwd}, {"fit", fit}},
                             static_cast<double>(n));
  state.counters["regression_share"] = 1e-3 * state.counters["fit_ms"].value / mean;
}

void register_shap_lime() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    for (const bool kernel_shap : {false, true}) {
      const std::string name =
          std::string(kernel_shap ? "KernelSHAP" : "LIME") + "/mnist_cnn/" + device_name;
      auto* b = benchmark::RegisterBenchmark(
          name.c_str(), [kernel_shap = kernel_shap, device = device](benchmark::State& s) {
            bm_surrogate(s, kernel_shap, device);
          });
      b->ArgNames({"N", "S"})->ArgsProduct({{1, 8}, {200}})->UseManualTime();
      b->Unit(benchmark::kMillisecond);
      if (device.is_cpu()) b->MinTime(0.5);
    }
  }
}

const rar::bench::Registrar shap_lime_registrar(register_shap_lime);

}  // namespace
