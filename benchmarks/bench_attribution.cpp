// Attribution methods against the passes they are built from.
//
// IG/<net>/<device>       time of rar::integrated_gradients on N inputs with m steps (in one
//                         batch, chunk:-1, or in chunks of `chunk` path rows:
//                         internal_batch_size); ratio_to_fwd_bwd = time / (forward +
//                         input-gradient backward over the N·m path rows, in the same passes),
//                         target <= 1.1.
// IGBatching/<net>/<dev>  rar::integrated_gradients with the default batching rule against the
//                         same call with every fixed internal_batch_size of the grid (64 ... 1024
//                         rows and one batch); ratio_to_chunk<c> = default / fixed c; the
//                         target is default <= 1.1 x the best fixed chunk (scripts/bench-tables
//                         prints ratio_to_best).
// Roofline/<net>/<device> forward + input-gradient backward over `rows` rows of the network
//                         (the passes IG, Captum's IG and the RAR terms are made of) against
//                         single-precision matrix products of the same number of operations,
//                         in the same iterations: fraction_of_sgemm = the passes' FLOP rate /
//                         torch::mm's (fraction_fwd_of_sgemm for the forward alone). It says
//                         how much of the core's attainable rate LibTorch's kernels reach on
//                         these passes, i.e. how much any reordering of them could still gain.
// DeepLIFT/<device>       time of rar::deeplift on a Sequential MNIST CNN, with the default
//                         zero reference (shared:1, run as one row) or a reference tensor per
//                         sample (shared:0); ratio_to_2fwd_bwd = time / (forward of x + forward
//                         of x' + one input-gradient backward over the N inputs), target <= 1.5;
//                         ratio_to_fwd_bwd_2n = time / (forward + backward over [x; x']).
#include <algorithm>
#include <cmath>
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// Args: {m, N, internal_batch_size}.
void bm_integrated_gradients(benchmark::State& state, const rar::examples::NetConfig& config,
                             torch::Device device) {
  const int64_t m = state.range(0);
  const int64_t n = state.range(1);
  const int64_t chunk = state.range(2);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options = rar::IGOptions()
                           .target(y)
                           .steps(m)
                           .method(rar::Quadrature::riemann_right)
                           .internal_batch_size(chunk < 0 ? n * m : chunk);
  // The limit: forward and backward w.r.t. the input over the N·m path rows, in the same
  // passes as IG makes (one batch, or chunks of `chunk` rows).
  const torch::Tensor rows = rar::bench::images(config, n * m, device);
  const torch::Tensor row_targets = y.repeat({m});
  const int64_t step = chunk > 0 ? chunk : n * m;
  auto fwd_bwd = [&] {
    for (int64_t start = 0; start < n * m; start += step) {
      const int64_t stop = std::min(n * m, start + step);
      benchmark::DoNotOptimize(rar::bench::logit_input_gradient(
          net, rows.slice(0, start, stop), row_targets.slice(0, start, stop)));
    }
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::integrated_gradients(net, x, options)); },
      {{"fwd_bwd", fwd_bwd}}, static_cast<double>(n));
}

// The fixed chunk sizes the default batching rule is compared with (0 stands for one batch).
constexpr int64_t kFixedChunks[] = {64, 128, 256, 512, 1024, 0};

// Args: {m, N}.
void bm_ig_batching(benchmark::State& state, const rar::examples::NetConfig& config,
                    torch::Device device) {
  const int64_t m = state.range(0);
  const int64_t n = state.range(1);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const auto options =
      rar::IGOptions().target(y).steps(m).method(rar::Quadrature::riemann_right);
  std::vector<rar::bench::Reference> fixed;
  for (const int64_t chunk : kFixedChunks) {
    if (chunk >= n * m) continue;  // the same as one batch
    const auto chunked = rar::IGOptions(options).internal_batch_size(chunk > 0 ? chunk : n * m);
    fixed.push_back({chunk > 0 ? "chunk" + std::to_string(chunk) : std::string("one_batch"),
                     [&net, &x, chunked] {
                       benchmark::DoNotOptimize(rar::integrated_gradients(net, x, chunked));
                     }});
  }
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::integrated_gradients(net, x, options)); },
      fixed, static_cast<double>(n));
}

// Args: {rows}.
void bm_roofline(benchmark::State& state, const rar::examples::NetConfig& config,
                 torch::Device device) {
  const int64_t rows = state.range(0);
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, rows, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const double pass_flops = 2 * rar::bench::forward_flops(config) * static_cast<double>(rows);
  auto fwd_bwd = [&] { benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, x, y)); };
  auto forward = [&] {
    torch::NoGradGuard no_grad;
    benchmark::DoNotOptimize(net->forward(x));
  };
  // Matrix products [256, 1024] x [1024, 1024] (0.54 GFLOP each), as many as give the passes'
  // operation count.
  const torch::Tensor a = torch::randn({256, 1024}, torch::TensorOptions().device(device));
  const torch::Tensor b = torch::randn({1024, 1024}, torch::TensorOptions().device(device));
  const double mm_flops = 2.0 * 256 * 1024 * 1024;
  const int64_t products = std::max<int64_t>(1, std::llround(pass_flops / mm_flops));
  auto sgemm = [&] {
    for (int64_t i = 0; i < products; ++i) benchmark::DoNotOptimize(torch::mm(a, b));
  };
  const double seconds = paired(state, device, fwd_bwd, {{"sgemm", sgemm}, {"forward", forward}},
                                static_cast<double>(rows));
  const double sgemm_rate = static_cast<double>(products) * mm_flops /
                            (1e-3 * state.counters["sgemm_ms"].value);
  const double forward_rate = pass_flops / 2 / (1e-3 * state.counters["forward_ms"].value);
  state.counters.erase("ratio_to_sgemm");  // the two sides differ by the rounding of `products`
  state.counters["gflops"] = pass_flops / seconds / 1e9;
  state.counters["forward_gflops"] = forward_rate / 1e9;
  state.counters["sgemm_gflops"] = sgemm_rate / 1e9;
  state.counters["fraction_of_sgemm"] = pass_flops / seconds / sgemm_rate;
  state.counters["fraction_fwd_of_sgemm"] = forward_rate / sgemm_rate;
}

// The paper's MNIST CNN written as a torch::nn::Sequential (what rar::deeplift takes).
torch::nn::Sequential sequential_mnist_cnn() {
  namespace nn = torch::nn;
  torch::manual_seed(0);
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                        nn::Linear(64 * 7 * 7, 1024), nn::ReLU(), nn::Linear(1024, 10));
}

// Args: {N, shared}.
void bm_deeplift(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const bool shared = state.range(1) != 0;
  auto net = sequential_mnist_cnn();
  net->eval();
  net->to(device);
  const torch::Tensor x = rar::bench::images(rar::bench::mnist_cnn(), n, device);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
  const torch::Tensor reference = torch::zeros_like(x);
  // shared: the default reference (zeros, broadcast over the batch); else one row per sample.
  const auto options = shared ? rar::DeepLiftOptions().target(y)
                              : rar::DeepLiftOptions().target(y).baseline(reference);
  // The limit: the two forward passes and the one backward pass DeepLIFT is made of.
  auto two_fwd_bwd = [&] {
    const torch::Tensor p = x.detach().requires_grad_(true);
    const torch::Tensor s = rar::score::logit(net->forward(p), y);
    benchmark::DoNotOptimize(net->forward(reference));
    benchmark::DoNotOptimize(torch::autograd::grad({s.sum()}, {p})[0]);
  };
  // For context: forward and backward over the [x; x'] batch of 2N rows, the passes
  // rar::deeplift runs (it propagates the multipliers through both halves).
  const torch::Tensor both = torch::cat({x, reference});
  const torch::Tensor both_targets = torch::cat({y, y});
  auto fwd_bwd_2n = [&] {
    benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, both, both_targets));
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::deeplift(net, x, options)); },
      {{"2fwd_bwd", two_fwd_bwd}, {"fwd_bwd_2n", fwd_bwd_2n}}, static_cast<double>(n));
}

// The grid, pruned to what a 2-core CPU runs in a few minutes (docs/performance.md): the
// largest path batches (N·m > 3200 rows for the MNIST CNN, > 1600 for the ResNet) are measured
// only on a GPU, and on the CPU each configuration runs for 0.5 s (one iteration for the
// largest).
void register_attribution() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    const int64_t max_rows = cpu ? 3200 : 1 << 20;
    const std::pair<const char*, rar::examples::NetConfig> nets[] = {
        {"mnist_cnn", rar::bench::mnist_cnn()}, {"gtsrb_resnet", rar::bench::gtsrb_resnet()}};
    for (const auto& [net_name, config] : nets) {
      const bool resnet = config.arch == rar::examples::Architecture::resnet;
      auto* b =
          benchmark::RegisterBenchmark(("IG/" + std::string(net_name) + "/" + device_name).c_str(),
                                       [config = config, device = device](benchmark::State& s) {
                                         bm_integrated_gradients(s, config, device);
                                       });
      b->ArgNames({"m", "N", "chunk"})->UseManualTime()->Unit(benchmark::kMillisecond);
      for (int64_t m : {16, 50, 128}) {
        for (int64_t n : {1, 16, 64}) {
          const int64_t rows = n * m;
          if (rows > (resnet ? max_rows / 2 : max_rows)) continue;
          b->Args({m, n, -1});
          // The same attributions in chunks of 256 path rows (less memory, same result).
          if (rows > 256) b->Args({m, n, 256});
        }
      }
      if (cpu) b->MinTime(0.5);
      auto* g = benchmark::RegisterBenchmark(
          ("IGBatching/" + std::string(net_name) + "/" + device_name).c_str(),
          [config = config, device = device](benchmark::State& s) {
            bm_ig_batching(s, config, device);
          });
      g->ArgNames({"m", "N"})->UseManualTime()->Unit(benchmark::kMillisecond);
      for (int64_t m : {16, 50, 128}) {
        for (int64_t n : {1, 16, 64}) {
          if (n * m > (resnet ? max_rows : 2 * max_rows)) continue;
          g->Args({m, n});
        }
      }
      if (cpu) g->MinTime(0.5);
      auto* r = benchmark::RegisterBenchmark(
          ("Roofline/" + std::string(net_name) + "/" + device_name).c_str(),
          [config = config, device = device](benchmark::State& s) {
            bm_roofline(s, config, device);
          });
      r->ArgNames({"rows"})->Args({16})->Args({256})->Args({1024});
      r->UseManualTime()->Unit(benchmark::kMillisecond);
      if (cpu) r->MinTime(0.5);
    }
    auto* d = benchmark::RegisterBenchmark(
        ("DeepLIFT/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_deeplift(s, device); });
    d->ArgNames({"N", "shared"})->ArgsProduct({{1, 16, 64, 256}, {1, 0}})->UseManualTime();
    d->Unit(benchmark::kMillisecond);
    if (cpu) d->MinTime(0.5);
  }
}

const rar::bench::Registrar attribution_registrar(register_attribution);

}  // namespace
