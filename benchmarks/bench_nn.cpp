// rar::nn activations and the methods that switch them.
//
// Activation/<kind>/<shape>/<device>  forward + backward of a rar::nn activation outside any
//                          scope; ratio_to_torch = time / (the same with its torch::nn
//                          namesake), target ≈ 1.00 (one thread-local load per call). Shapes: a
//                          small [1, 64] row (where a per-call overhead would show) and a
//                          [64, 32, 28, 28] feature map.
// Network/<device>         forward + backward of a small residual MLP built with rar::nn
//                          activations against the same network with torch::nn ones:
//                          ratio_to_torch, target ≈ 1.00.
// DeepLIFT/gtsrb_resnet/<device>  rar::deeplift on the GTSRB ResNet of the examples (a custom
//                          module with residual adds: the scope path), with the default zero
//                          reference (shared:1, one row) or one reference per sample
//                          (shared:0); ratio_to_2fwd_bwd = time / (forward of x + forward of x'
//                          + one input-gradient backward), target <= 1.5.
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;
namespace tnn = torch::nn;

// Args: {rows}; rows = 0 is the [64, 32, 28, 28] feature map, else [rows, 64].
template <class Ours, class Theirs>
void bm_activation(benchmark::State& state, Ours ours, Theirs theirs, torch::Device device) {
  const int64_t rows = state.range(0);
  torch::manual_seed(0);
  const torch::Tensor x =
      (rows == 0 ? torch::randn({64, 32, 28, 28}) : torch::randn({rows, 64})).to(device);
  auto run = [&](auto& act) {
    const torch::Tensor leaf = x.detach().requires_grad_(true);
    const torch::Tensor y = act(leaf);
    benchmark::DoNotOptimize(torch::autograd::grad({y}, {leaf}, {torch::ones_like(y)})[0]);
  };
  paired(
      state, device, [&] { run(ours); }, {{"torch", [&] { run(theirs); }}},
      static_cast<double>(x.numel()));
}

// A residual MLP block stack: y = fc_out(act(x + act(fc(x)))) repeated, activations as given.
template <class Act>
struct ResidualMlpImpl : tnn::Module {
  std::vector<tnn::Linear> fcs;
  std::vector<Act> acts;
  tnn::Linear out{nullptr};
  explicit ResidualMlpImpl(int64_t width) {
    torch::manual_seed(1);
    for (int i = 0; i < 4; ++i) {
      fcs.push_back(register_module("fc" + std::to_string(i), tnn::Linear(width, width)));
      acts.push_back(register_module("act" + std::to_string(2 * i), Act()));
      acts.push_back(register_module("act" + std::to_string(2 * i + 1), Act()));
    }
    out = register_module("out", tnn::Linear(width, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < fcs.size(); ++i) x = acts[2 * i + 1](x + acts[2 * i](fcs[i](x)));
    return out(x);
  }
};

// Args: {N}.
void bm_network(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  auto ours = std::make_shared<ResidualMlpImpl<rar::nn::ReLU>>(128);
  auto theirs = std::make_shared<ResidualMlpImpl<tnn::ReLU>>(128);
  ours->to(device);
  theirs->to(device);
  const torch::Tensor x = torch::randn({n, 128}).to(device);
  auto run = [&](auto& net) {
    const torch::Tensor leaf = x.detach().requires_grad_(true);
    benchmark::DoNotOptimize(torch::autograd::grad({net->forward(leaf).sum()}, {leaf})[0]);
  };
  paired(
      state, device, [&] { run(ours); }, {{"torch", [&] { run(theirs); }}},
      static_cast<double>(n));
}

// Args: {N, shared}.
void bm_deeplift_resnet(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const bool shared = state.range(1) != 0;
  const auto config = rar::bench::gtsrb_resnet();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor reference = torch::zeros_like(x);
  const auto options = shared ? rar::DeepLiftOptions().target(y)
                              : rar::DeepLiftOptions().target(y).baseline(reference);
  // The limit: the forward of x, the forward of x' and one input-gradient backward.
  auto two_fwd_bwd = [&] {
    const torch::Tensor p = x.detach().requires_grad_(true);
    const torch::Tensor s = rar::score::logit(net->forward(p), y);
    {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(net->forward(shared ? reference.narrow(0, 0, 1) : reference));
    }
    benchmark::DoNotOptimize(torch::autograd::grad({s.sum()}, {p})[0]);
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::deeplift(net, x, options)); },
      {{"2fwd_bwd", two_fwd_bwd}}, static_cast<double>(n));
}

void register_nn() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    auto add = [&](const std::string& name, auto ours, auto theirs) {
      auto* b = benchmark::RegisterBenchmark(
          ("Activation/" + name + "/" + device_name).c_str(),
          [ours, theirs, device = device](benchmark::State& s) mutable {
            bm_activation(s, ours, theirs, device);
          });
      b->ArgNames({"rows"})->Args({1})->Args({0})->UseManualTime()->Unit(benchmark::kMicrosecond);
      if (cpu) b->MinTime(0.3);
    };
    add("relu", rar::nn::ReLU(), tnn::ReLU());
    add("leaky_relu", rar::nn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.1)),
        tnn::LeakyReLU(tnn::LeakyReLUOptions().negative_slope(0.1)));
    add("softplus", rar::nn::Softplus(), tnn::Softplus());
    auto* net = benchmark::RegisterBenchmark(
        ("Network/residual_mlp/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_network(s, device); });
    net->ArgNames({"N"})->Args({1})->Args({256})->UseManualTime()->Unit(benchmark::kMicrosecond);
    if (cpu) net->MinTime(0.3);
    auto* d = benchmark::RegisterBenchmark(
        ("DeepLIFT/gtsrb_resnet/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_deeplift_resnet(s, device); });
    d->ArgNames({"N", "shared"})->ArgsProduct({{1, 16, 64}, {1, 0}})->UseManualTime();
    d->Unit(benchmark::kMillisecond);
    if (cpu) d->MinTime(0.5);
  }
}

const rar::bench::Registrar nn_registrar(register_nn);

}  // namespace
