// The IG family against the passes they are built from, and adaptive IG against Captum's
// default (50 Gauss-Legendre points).
//
// IGAdaptive/<net>/<dev>   rar::integrated_gradients with steps(4).tolerance(τ) and the quadrature
//                          `rule` (0 Gauss-Legendre, 1 right Riemann, 2 middle Riemann,
//                          3 trapezoid), where τ is the worst (target 0) or the mean (target 1)
//                          relative completeness error |δ|/|F(x) − F(x′)| of Captum's default,
//                          50 Gauss-Legendre points, on the same N inputs (measured at setup):
//                          every sample then ends at least as complete as the default's worst
//                          (or its mean) sample. ratio_to_gl50 = time / the 50-point call; rows_adaptive and
//                          rows_gl50 = the path rows each evaluated (adaptive: over all its
//                          rounds); error_adaptive and error_gl50 = the mean relative error.
// IDGI/<net>/<dev>         rar::idgi with m segments; ratio_to_ig = time / rar::integrated_gradients
//                          with m points (IDGI adds one forward over the N inputs).
// ExpectedGradients/<net>/<dev>  rar::expected_gradients over B = 4 baselines (samples(0)) with
//                          m/4 points each; ratio_to_ig = time / IG with m points (the same rows).
// CertifiedTopK/<net>/<dev>  rar::certified_topk with the saliency explainer, S noisy copies per
//                          input; ratio_to_fwd_bwd = time / (forward + input-gradient backward
//                          over the N·S copies), the limit of any sampling certificate.
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

double mean_relative_error(const rar::Attribution& r, const torch::Tensor& change) {
  return (r.delta.abs() / change.abs()).mean().item<double>();
}

constexpr rar::Quadrature kRules[] = {rar::Quadrature::gauss_legendre,
                                      rar::Quadrature::riemann_right,
                                      rar::Quadrature::riemann_middle,
                                      rar::Quadrature::riemann_trapezoid};

// Args: {N, rule, target}: target 0 = the 50-point rule's worst sample error, 1 = its mean.
void bm_ig_adaptive(benchmark::State& state, const rar::examples::NetConfig& config,
                    torch::Device device) {
  const int64_t n = state.range(0);
  const rar::Quadrature rule = kRules[state.range(1)];
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto gl50 = rar::IGOptions().target(y).steps(50);
  const rar::Attribution fixed = rar::integrated_gradients_with_delta(net, x, gl50);
  torch::Tensor change;
  {
    torch::NoGradGuard no_grad;
    const auto score = [&](const torch::Tensor& in) {
      return net->forward(in).gather(1, y.view({-1, 1})).squeeze(1);
    };
    change = score(x) - score(torch::zeros_like(x));
  }
  const torch::Tensor errors = fixed.delta.abs() / change.abs();
  const double tolerance =
      state.range(2) == 0 ? errors.max().item<double>() : errors.mean().item<double>();
  const auto adaptive =
      rar::IGOptions(gl50).steps(4).method(rule).tolerance(tolerance).max_steps(4096);
  const rar::Attribution a = rar::integrated_gradients_with_delta(net, x, adaptive);
  // Path rows evaluated: the nested rules (right, left, trapezoid) evaluate each node once, so
  // a sample that ends at m points cost m rows; the others recompute every round m0, 2 m0, ...,
  // m: 2 m − m0 rows.
  const bool nested = rule != rar::Quadrature::gauss_legendre &&
                      rule != rar::Quadrature::riemann_middle;
  const double rows = (nested ? a.points : 2 * a.points - 4).sum().item<double>();
  state.counters["max_points"] = a.points.max().item<double>();
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::integrated_gradients(net, x, adaptive)); },
      {{"gl50", [&] { benchmark::DoNotOptimize(rar::integrated_gradients(net, x, gl50)); }}},
      static_cast<double>(n));
  state.counters["rows_adaptive"] = rows;
  state.counters["rows_gl50"] = static_cast<double>(50 * n);
  state.counters["error_adaptive"] = mean_relative_error(a, change);
  state.counters["error_gl50"] = mean_relative_error(fixed, change);
  state.counters["tolerance"] = tolerance;
}

// Args: {m, N}.
void bm_idgi(benchmark::State& state, const rar::examples::NetConfig& config, torch::Device device) {
  const int64_t m = state.range(0), n = state.range(1);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  paired(
      state, device,
      [&] { benchmark::DoNotOptimize(rar::idgi(net, x, rar::IDGIOptions().target(y).steps(m))); },
      {{"ig",
        [&] {
          benchmark::DoNotOptimize(rar::integrated_gradients(
              net, x, rar::IGOptions().target(y).steps(m).method(rar::Quadrature::riemann_left)));
        }}},
      static_cast<double>(n));
}

// Args: {m, N}.
void bm_expected_gradients(benchmark::State& state, const rar::examples::NetConfig& config,
                           torch::Device device) {
  const int64_t m = state.range(0), n = state.range(1);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor set = rar::bench::images(config, 4, device);
  const auto opts =
      rar::ExpectedGradientsOptions().baselines(set).target(y).samples(0).steps(m / 4);
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::expected_gradients(net, x, opts)); },
      {{"ig",
        [&] {
          benchmark::DoNotOptimize(
              rar::integrated_gradients(net, x, rar::IGOptions().target(y).steps(m)));
        }}},
      static_cast<double>(n));
}

// Args: {S, N}.
void bm_certified(benchmark::State& state, const rar::examples::NetConfig& config,
                  torch::Device device) {
  const int64_t s = state.range(0), n = state.range(1);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto opts = rar::CertifiedTopKOptions().k(100).sigma(0.1).samples(s).target(y);
  const torch::Tensor rows = rar::bench::images(config, n * s, device);
  const torch::Tensor row_targets = y.repeat_interleave(s);
  paired(
      state, device,
      [&] {
        benchmark::DoNotOptimize(rar::certified_topk(net, rar::explain::saliency(), x, opts).radius);
      },
      {{"fwd_bwd",
        [&] { benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, rows, row_targets)); }}},
      static_cast<double>(n));
}

void register_ig_family() {
  rar::bench::add_context();
  const auto config = rar::bench::mnist_cnn();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    const std::string suffix = "/mnist_cnn/" + device_name;
    auto* a = benchmark::RegisterBenchmark(("IGAdaptive" + suffix).c_str(),
                                           [config, device = device](benchmark::State& s) {
                                             bm_ig_adaptive(s, config, device);
                                           });
    a->ArgNames({"N", "rule", "target"})->ArgsProduct({{16}, {0, 1, 2, 3}, {0, 1}});
    a->UseManualTime()->Unit(benchmark::kMillisecond);
    auto* i = benchmark::RegisterBenchmark(
        ("IDGI" + suffix).c_str(),
        [config, device = device](benchmark::State& s) { bm_idgi(s, config, device); });
    i->ArgNames({"m", "N"})->Args({32, 16})->UseManualTime()->Unit(benchmark::kMillisecond);
    auto* e = benchmark::RegisterBenchmark(("ExpectedGradients" + suffix).c_str(),
                                           [config, device = device](benchmark::State& s) {
                                             bm_expected_gradients(s, config, device);
                                           });
    e->ArgNames({"m", "N"})->Args({32, 16})->UseManualTime()->Unit(benchmark::kMillisecond);
    auto* c = benchmark::RegisterBenchmark(
        ("CertifiedTopK" + suffix).c_str(),
        [config, device = device](benchmark::State& s) { bm_certified(s, config, device); });
    c->ArgNames({"S", "N"})->Args({100, 8})->UseManualTime()->Unit(benchmark::kMillisecond);
    if (cpu) {
      for (auto* b : {a, i, e, c}) b->MinTime(0.5);
    }
  }
}

const rar::bench::Registrar ig_family_registrar(register_ig_family);

}  // namespace
