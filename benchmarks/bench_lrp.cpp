// Layer-wise relevance propagation against the passes it is built from.
//
// LRP/mnist_cnn/<device>  time of rar::lrp on the paper's MNIST CNN written as a
//                         torch::nn::Sequential (the examples' network is a custom module), N
//                         inputs, with the ε rule everywhere (gamma:0) or the γ rule on both
//                         convolutions (gamma:1, one more forward of each of them);
//                         ratio_to_fwd_bwd = time / (one forward + one input-gradient backward of
//                         the target logit over the N inputs). LRP is one forward and one backward
//                         with an elementwise division and product per layer, so the ratio should
//                         stay near 1 (plus the convolutions' extra forward with gamma:1).
#include <rar/attribution/lrp.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// The paper's MNIST CNN as a Sequential (conv5×5×32 – pool – conv5×5×64 – pool – fc1024 – fc10).
torch::nn::Sequential lrp_mnist_cnn() {
  namespace nn = torch::nn;
  torch::manual_seed(0);
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 5).padding(2)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 5).padding(2)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                        nn::Linear(64 * 7 * 7, 1024), nn::ReLU(), nn::Linear(1024, 10));
}

// Args: {N, gamma}.
void bm_lrp(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const bool gamma = state.range(1) != 0;
  auto net = lrp_mnist_cnn();
  net->eval();
  net->to(device);
  const torch::Tensor x = rar::bench::images(rar::bench::mnist_cnn(), n, device);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = net->forward(x).argmax(1);
  }
  auto options = rar::LRPOptions().target(y);
  if (gamma) options.rule(0, rar::LRPRule::gamma()).rule(3, rar::LRPRule::gamma());
  // The limit: one forward and one input-gradient backward over the N inputs.
  auto fwd_bwd = [&] { benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, x, y)); };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::lrp(net, x, options)); },
      {{"fwd_bwd", fwd_bwd}}, static_cast<double>(n));
}

void register_lrp() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    auto* b = benchmark::RegisterBenchmark(
        ("LRP/mnist_cnn/" + device_name).c_str(),
        [device = device](benchmark::State& s) { bm_lrp(s, device); });
    b->ArgNames({"N", "gamma"})->ArgsProduct({{1, 16, 64}, {0, 1}})->UseManualTime();
    b->Unit(benchmark::kMillisecond);
    if (device.is_cpu()) b->MinTime(0.5);
  }
}

const rar::bench::Registrar lrp_registrar(register_lrp);

}  // namespace
