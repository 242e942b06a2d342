// GradientSHAP, DeepLIFT-SHAP, Grad-CAM and Guided Grad-CAM against the passes they are built from.
//
// GradCAM/split_cnn/<dev>        rar::grad_cam on a GTSRB-sized split network (head: three
//                                ReLU conv layers to h [N, 64, 8, 8]; tail: global average pool
//                                and a 43-way linear layer; the examples' ResNet does not expose
//                                a layer); ratio_to_fwd_bwd = time / (forward of head and tail +
//                                backward to the input over N rows). Grad-CAM backpropagates only
//                                through the tail, so the ratio can be below 1.
// GuidedGradCAM/split_cnn/<dev>  rar::guided_grad_cam on the same network; ratio_to_2fwd_bwd =
//                                time / two forward + backward passes over N rows (Grad-CAM's and
//                                guided backprop's).
// GradientSHAP/gtsrb_resnet/<dev> rar::gradient_shap with S samples and a baseline set of 16, all
//                                N·S rows in one pass (internal_batch_size = N·S);
//                                ratio_to_fwd_bwd = time / (forward + input-gradient backward over
//                                N·S rows in one pass).
// DeepLIFTSHAP/gtsrb_resnet/<dev> rar::deeplift_shap with B baselines on the GTSRB ResNet (its
//                                rar::nn functional activations: the scope-based DeepLIFT);
//                                ratio_to_2fwd_bwd = time / (forward of the N·B inputs and of the
//                                N·B references + one backward over N·B rows).
#include <rar/attribution/deeplift_shap.hpp>
#include <rar/attribution/grad_cam.hpp>
#include <rar/attribution/gradient_shap.hpp>
#include <rar/rar.hpp>

#include "support.hpp"

namespace {

using rar::bench::paired;

// A GTSRB-sized network written as head and tail, seeded, eval mode, float32 on `device`.
std::pair<torch::nn::Sequential, torch::nn::Sequential> split_cnn(const torch::Device& device) {
  namespace nn = torch::nn;
  torch::manual_seed(0);
  auto conv = [](int64_t in, int64_t out, int64_t stride) {
    return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
  };
  nn::Sequential head(conv(3, 16, 1), nn::ReLU(), conv(16, 32, 2), nn::ReLU(), conv(32, 64, 2),
                      nn::ReLU());
  nn::Sequential tail(nn::AdaptiveAvgPool2d(1), nn::Flatten(), nn::Linear(64, 43));
  for (auto* m : {head.ptr().get(), tail.ptr().get()}) {
    m->eval();
    m->to(device);
  }
  return {head, tail};
}

// One forward of head and tail and one backward to the input over the rows of x.
auto fwd_bwd_split(torch::nn::Sequential& head, torch::nn::Sequential& tail, const torch::Tensor& x,
                   const torch::Tensor& y) {
  return [&head, &tail, x, y] {
    const torch::Tensor p = x.detach().requires_grad_(true);
    const torch::Tensor s = rar::score::logit(tail->forward(head->forward(p)), y);
    benchmark::DoNotOptimize(torch::autograd::grad({s.sum()}, {p})[0]);
  };
}

// Args: {N}.
void bm_grad_cam(benchmark::State& state, torch::Device device, bool guided) {
  const int64_t n = state.range(0);
  auto parts = split_cnn(device);
  torch::nn::Sequential& head = parts.first;
  torch::nn::Sequential& tail = parts.second;
  const torch::Tensor x = rar::bench::images(rar::bench::gtsrb_resnet(), n, device);
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = tail->forward(head->forward(x)).argmax(1);
  }
  auto one = fwd_bwd_split(head, tail, x, y);
  if (guided) {
    const auto opts = rar::GuidedGradCamOptions().target(y);
    paired(
        state, device,
        [&] { benchmark::DoNotOptimize(rar::guided_grad_cam(head, tail, x, opts)); },
        {{"2fwd_bwd", [&] { one(); one(); }}}, static_cast<double>(n));
  } else {
    const auto opts = rar::GradCamOptions().target(y).relu(true);
    paired(
        state, device, [&] { benchmark::DoNotOptimize(rar::grad_cam(head, tail, x, opts)); },
        {{"fwd_bwd", one}}, static_cast<double>(n));
  }
}

// Args: {N, S}.
void bm_gradient_shap(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t samples = state.range(1);
  const auto config = rar::bench::gtsrb_resnet();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor background = 0.5 * rar::bench::images(config, 16, device);
  const auto opts = rar::GradientShapOptions()
                        .baselines(background)
                        .target(y)
                        .samples(samples)
                        .stddev(0.1)
                        .internal_batch_size(n * samples);
  const torch::Tensor rows = rar::bench::images(config, n * samples, device);
  const torch::Tensor row_targets = y.repeat_interleave(samples);
  auto fwd_bwd = [&] {
    benchmark::DoNotOptimize(rar::bench::logit_input_gradient(net, rows, row_targets));
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::gradient_shap(net, x, opts)); },
      {{"fwd_bwd", fwd_bwd}}, static_cast<double>(n));
}

// Args: {N, B}.
void bm_deeplift_shap(benchmark::State& state, torch::Device device) {
  const int64_t n = state.range(0);
  const int64_t b = state.range(1);
  const auto config = rar::bench::gtsrb_resnet();
  auto net = rar::bench::make_net(config, device);
  const torch::Tensor x = rar::bench::images(config, n, device);
  const torch::Tensor y = rar::bench::predicted(net, x);
  const torch::Tensor background = 0.5 * rar::bench::images(config, b, device);
  const auto opts = rar::DeepLiftShapOptions()
                        .baselines(background)
                        .target(y)
                        .internal_batch_size(n * b);
  const torch::Tensor inputs = x.repeat_interleave(b, 0);
  const torch::Tensor references = background.repeat({n, 1, 1, 1});
  const torch::Tensor row_targets = y.repeat_interleave(b);
  auto two_fwd_bwd = [&] {
    const torch::Tensor p = inputs.detach().requires_grad_(true);
    const torch::Tensor s = rar::score::logit(net->forward(p), row_targets);
    {
      torch::NoGradGuard no_grad;
      benchmark::DoNotOptimize(net->forward(references));
    }
    benchmark::DoNotOptimize(torch::autograd::grad({s.sum()}, {p})[0]);
  };
  paired(
      state, device, [&] { benchmark::DoNotOptimize(rar::deeplift_shap(net, x, opts)); },
      {{"2fwd_bwd", two_fwd_bwd}}, static_cast<double>(n));
}

void register_cam() {
  rar::bench::add_context();
  for (const auto& [device_name, device] : rar::bench::devices()) {
    const bool cpu = device.is_cpu();
    for (const bool guided : {false, true}) {
      auto* g = benchmark::RegisterBenchmark(
          ((guided ? "GuidedGradCAM/split_cnn/" : "GradCAM/split_cnn/") + device_name).c_str(),
          [device = device, guided](benchmark::State& s) { bm_grad_cam(s, device, guided); });
      g->ArgNames({"N"})->Args({1})->Args({16})->Args({64})->UseManualTime();
      g->Unit(benchmark::kMillisecond);
      if (cpu) g->MinTime(0.5);
    }
    auto* s = benchmark::RegisterBenchmark(
        ("GradientSHAP/gtsrb_resnet/" + device_name).c_str(),
        [device = device](benchmark::State& st) { bm_gradient_shap(st, device); });
    s->ArgNames({"N", "S"})->Args({1, 5})->Args({16, 5})->Args({16, 25})->UseManualTime();
    s->Unit(benchmark::kMillisecond);
    if (cpu) s->MinTime(0.5);
    auto* d = benchmark::RegisterBenchmark(
        ("DeepLIFTSHAP/gtsrb_resnet/" + device_name).c_str(),
        [device = device](benchmark::State& st) { bm_deeplift_shap(st, device); });
    d->ArgNames({"N", "B"})->Args({1, 10})->Args({16, 10})->UseManualTime();
    d->Unit(benchmark::kMillisecond);
    if (cpu) d->MinTime(0.5);
  }
}

const rar::bench::Registrar cam_registrar(register_cam);

}  // namespace
