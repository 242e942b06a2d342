// Localisation and robustness metrics against the work they are made of.
//
// Localisation/<device>                  relevance mass accuracy + relevance rank accuracy +
//                                        pointing game of N 28×28 maps;
//                                        ratio_to_sort = time / (one sort of the N maps).
// LocalLipschitz/mnist_cnn/<device>      rar::local_lipschitz_estimate with saliency, N inputs,
//                                        S perturbations; ratio_to_grad = time / (one input
//                                        gradient over the N + N·S rows, in one batch).
// RelativeInputStability/mnist_cnn/...   the same for rar::relative_input_stability.
// RelativeOutputStability/mnist_cnn/...  the same for rar::relative_output_stability (plus the
//                                        forwards of the logits).
// Continuity/mnist_cnn/<device>          rar::continuity with saliency, N inputs, T translations;
//                                        ratio_to_grad over the N + N·T rows.
// InputInvariance/mnist_cnn/<device>     rar::input_invariance with saliency (the network is its
//                                        own "shifted" model, which costs the same);
//                                        ratio_to_grad over 2N rows.
#include <rar/explain/explainers.hpp>
#include <rar/metrics/localisation.hpp>
#include <rar/metrics/robustness.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// Args: {N}.
void bm_localisation(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const torch::Tensor map = torch::rand({n, 28, 28}).to(device);
  const torch::Tensor mask = (torch::rand({n, 28, 28}) < 0.2).to(device);
  auto sort = [&] { benchmark::DoNotOptimize(map.reshape({n, -1}).sort(1, true)); };
  paired(
      state, device,
      [&] {
        benchmark::DoNotOptimize(rar::relevance_mass_accuracy(map, mask));
        benchmark::DoNotOptimize(rar::relevance_rank_accuracy(map, mask));
        benchmark::DoNotOptimize(rar::pointing_game(map, mask));
      },
      {{"sort", sort}}, static_cast<double>(n));
}

/// The limit of the robustness metrics: one saliency pass over `rows` rows.
rar::bench::Reference gradient_reference(rar::examples::Net& net, const torch::Tensor& rows,
                                         const torch::Tensor& target) {
  return {"grad", [&net, rows, target] {
            benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, rows, target));
          }};
}

enum class RobustnessMetric {
  lipschitz,
  input_stability,
  output_stability,
  continuity,
  invariance
};

// Args: {N, S} (S: perturbations, or translations for continuity; unused for invariance).
void bm_robustness(benchmark::State& state, torch::Device device, RobustnessMetric metric) {
  const int64_t n = state.range(0);
  const int64_t s = state.range(1);
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto sal = rar::explain::saliency();
  const int64_t extra = metric == RobustnessMetric::invariance ? 1 : s;
  const torch::Tensor rows = rar::bench::images(config, n * (1 + extra), device);
  const torch::Tensor rows_target = y.repeat({1 + extra});
  const auto lle = rar::LocalLipschitzOptions().nr_samples(s).target(y);
  const auto rs = rar::RelativeStabilityOptions().nr_samples(s).target(y);
  const auto cont = rar::ContinuityOptions().nr_steps(s).target(y);
  const auto inv = rar::InputInvarianceOptions().target(y);
  paired(
      state, device,
      [&] {
        switch (metric) {
          case RobustnessMetric::lipschitz:
            benchmark::DoNotOptimize(rar::local_lipschitz_estimate(net, sal, x, lle));
            break;
          case RobustnessMetric::input_stability:
            benchmark::DoNotOptimize(rar::relative_input_stability(net, sal, x, rs));
            break;
          case RobustnessMetric::output_stability:
            benchmark::DoNotOptimize(rar::relative_output_stability(net, sal, x, rs));
            break;
          case RobustnessMetric::continuity:
            benchmark::DoNotOptimize(rar::continuity(net, sal, x, cont));
            break;
          case RobustnessMetric::invariance:
            benchmark::DoNotOptimize(rar::input_invariance(net, net, sal, x, inv));
            break;
        }
      },
      {gradient_reference(net, rows, rows_target)}, static_cast<double>(n));
}

void register_localisation_robustness() {
  rar::bench::add_context();
  const std::vector<std::pair<std::string, RobustnessMetric>> metrics{
      {"LocalLipschitz", RobustnessMetric::lipschitz},
      {"RelativeInputStability", RobustnessMetric::input_stability},
      {"RelativeOutputStability", RobustnessMetric::output_stability},
      {"Continuity", RobustnessMetric::continuity},
      {"InputInvariance", RobustnessMetric::invariance}};
  for (const auto& [device_name, device] : rar::bench::devices()) {
    auto* l = benchmark::RegisterBenchmark(
        ("Localisation/" + device_name).c_str(),
        [device = device](benchmark::State& st) { bm_localisation(st, device); });
    l->ArgNames({"N"})->Arg(64)->Arg(256)->UseManualTime()->Unit(benchmark::kMillisecond);
    for (const auto& [name, metric] : metrics) {
      auto* b =
          benchmark::RegisterBenchmark((name + "/mnist_cnn/" + device_name).c_str(),
                                       [device = device, metric = metric](benchmark::State& st) {
                                         bm_robustness(st, device, metric);
                                       });
      b->ArgNames({"N", "S"})->Args({16, 10})->UseManualTime()->Unit(benchmark::kMillisecond);
      if (device.is_cpu()) b->MinTime(0.5);
    }
  }
}

const rar::bench::Registrar localisation_robustness_registrar(register_localisation_robustness);

}  // namespace
