// Faithfulness metrics against the forward passes they are made of (MNIST CNN, given
// attributions).
//
// FaithfulnessCorrelation/mnist_cnn/<device>  N inputs, R random subsets of 224 pixels each;
//                                  ratio_to_fwd = time / (one forward over the N + N·R rows).
// FaithfulnessEstimate/mnist_cnn/<device>     N inputs, features_in_step = 784 / steps;
//                                  ratio_to_fwd = time / (one forward over N + N·steps rows).
// MonotonicityCorrelation/mnist_cnn/<device>  N inputs, 16 groups of 49 pixels, S draws each;
//                                  ratio_to_fwd = time / (one forward over N + N·16·S rows).
// ROAD/mnist_cnn/<device>          N inputs, P percentages, noisy linear imputation solved by
//                                  conjugate gradients; ratio_to_fwd = time / (one forward over
//                                  the N·P rows): the rest is the imputation.
// Completeness/mnist_cnn/<device>  N inputs; ratio_to_fwd = time / (one forward over 2N rows).
// RandomLogit/mnist_cnn/<device>   N inputs, saliency explainer; ratio_to_fwd = time / (two
//                                  forward + backward passes over the N rows).
#include <rar/explain/explainers.hpp>
#include <rar/metrics/faithfulness.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

struct FaithSetup {
  rar::examples::Net net;
  torch::Tensor x, y, attr;
};

FaithSetup faith_setup(int64_t n, torch::Device device) {
  const auto config = rar::bench::mnist_cnn();
  auto net = rar::bench::make_net(config, device);
  torch::Tensor x = rar::bench::images(config, n, device);
  torch::Tensor y = rar::bench::predicted(net, x);
  return {net, x, y, torch::randn_like(x)};
}

/// A forward of `net` over `rows` images (the limit every metric is compared with).
auto faith_forward(rar::examples::Net& net, int64_t rows, torch::Device device) {
  torch::Tensor batch = rar::bench::images(rar::bench::mnist_cnn(), rows, device);
  return [&net, batch] {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(net->forward(batch));
  };
}

// Args: {N, R}.
void bm_faithfulness_correlation(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0), runs = state.range(1);
  auto s = faith_setup(n, device);
  const auto options = rar::FaithfulnessCorrelationOptions().target(s.y).nr_runs(runs);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::faithfulness_correlation(s.net, s.x, s.attr, options)); },
      {{"fwd", faith_forward(s.net, n + n * runs, device)}}, static_cast<double>(n));
}

// Args: {N, steps}.
void bm_faithfulness_estimate(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0), steps = state.range(1);
  auto s = faith_setup(n, device);
  const auto options =
      rar::FaithfulnessEstimateOptions().target(s.y).features_in_step((784 + steps - 1) / steps);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::faithfulness_estimate(s.net, s.x, s.attr, options)); },
      {{"fwd", faith_forward(s.net, n + n * steps, device)}}, static_cast<double>(n));
}

// Args: {N, S}.
void bm_monotonicity_correlation(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0), samples = state.range(1);
  auto s = faith_setup(n, device);
  const auto options =
      rar::MonotonicityCorrelationOptions().target(s.y).features_in_step(49).nr_samples(samples);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::monotonicity_correlation(s.net, s.x, s.attr, options)); },
      {{"fwd", faith_forward(s.net, n + n * 16 * samples, device)}}, static_cast<double>(n));
}

// Args: {N, P}.
void bm_road(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0), p = state.range(1);
  auto s = faith_setup(n, device);
  std::vector<double> percentages;
  for (int64_t i = 0; i < p; ++i) percentages.push_back(100.0 * (i + 0.5) / static_cast<double>(p));
  const auto options = rar::ROADOptions().target(s.y).percentages(percentages);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::road(s.net, s.x, s.attr, options).curve); },
      {{"fwd", faith_forward(s.net, n * p, device)}}, static_cast<double>(n));
}

// Args: {N}.
void bm_completeness(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  auto s = faith_setup(n, device);
  const auto options = rar::CompletenessOptions().target(s.y);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::completeness_gap(s.net, s.x, s.attr, options)); },
      {{"fwd", faith_forward(s.net, 2 * n, device)}}, static_cast<double>(n));
}

// Args: {N}.
void bm_random_logit(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  auto s = faith_setup(n, device);
  const auto options = rar::RandomLogitOptions().target(s.y);
  const auto explainer = rar::explain::saliency();
  auto limit = [&] {
    benchmark::DoNotOptimize(rar::bench::logit_input_gradient(s.net, s.x, s.y));
    benchmark::DoNotOptimize(rar::bench::logit_input_gradient(s.net, s.x, s.y));
  };
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::random_logit(s.net, explainer, s.x, options)); },
      {{"fwd", limit}}, static_cast<double>(n));
}

void register_faithfulness() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const auto add = [&, device = device](const std::string& name, auto fn) {
      auto* b =
          benchmark::RegisterBenchmark((name + "/mnist_cnn/" + device_name).c_str(),
                                       [device, fn](benchmark::State& st) { fn(st, device); });
      b->UseManualTime()->Unit(benchmark::kMillisecond);
      if (device.is_cpu()) b->MinTime(0.5);
      return b;
    };
    add("FaithfulnessCorrelation", bm_faithfulness_correlation)
        ->ArgNames({"N", "R"})
        ->Args({16, 20})
        ->Args({16, 100});
    add("FaithfulnessEstimate", bm_faithfulness_estimate)->ArgNames({"N", "steps"})->Args({16, 49});
    add("MonotonicityCorrelation", bm_monotonicity_correlation)
        ->ArgNames({"N", "S"})
        ->Args({16, 10});
    add("ROAD", bm_road)->ArgNames({"N", "P"})->Args({16, 10});
    add("Completeness", bm_completeness)->ArgNames({"N"})->Args({64});
    add("RandomLogit", bm_random_logit)->ArgNames({"N"})->Args({16});
  }
}

const rar::bench::Registrar faithfulness_registrar(register_faithfulness);

}  // namespace
