#pragma once
/// @file
/// What every rar_bench benchmark shares: the paper's networks, devices, and the paired timing
/// that reports each operation's time together with its ratio to a reference measured in the
/// same run (docs/performance.md lists the references and what bounds each ratio).

#include <ATen/Parallel.h>
#include <rar/core/score.hpp>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "support/heap.hpp"
#include "support/models.hpp"

namespace rar {
namespace bench {

/// The paper's MNIST CNN (conv5×5×32 – pool – conv5×5×64 – pool – fc1024 – fc10), 28×28×1.
inline examples::NetConfig mnist_cnn() {
  examples::NetConfig c;
  c.arch = examples::Architecture::mnist_cnn;
  return c;
}

/// The paper's GTSRB network: slim ResNet (16/32/64 channels, 2 units per stage), leaky ReLU
/// 0.1, per-image standardization, 32×32×3 inputs, 43 classes.
inline examples::NetConfig gtsrb_resnet() {
  examples::NetConfig c;
  c.arch = examples::Architecture::resnet;
  c.in_channels = 3;
  c.image_size = 32;
  c.classes = 43;
  c.units_per_stage = 2;
  c.leaky_slope = 0.1;
  c.standardize = true;
  return c;
}

/// Floating-point operations of one forward pass of one row through `config`'s network: twice
/// the multiply-adds of its convolutions and linear layers (activations, pooling, additions and
/// the standardization are not counted). An input-gradient backward has the same multiply-adds
/// (each layer's transpose), so forward + backward is twice this.
inline double forward_flops(const examples::NetConfig& config) {
  const double s = static_cast<double>(config.image_size);
  const double in = static_cast<double>(config.in_channels);
  double macs = 0;
  if (config.arch == examples::Architecture::mnist_cnn) {
    const double c1 = static_cast<double>(config.conv1), c2 = static_cast<double>(config.conv2);
    const double fc = static_cast<double>(config.fc);
    macs = in * c1 * 25 * s * s + c1 * c2 * 25 * (s / 2) * (s / 2) +
           c2 * (s / 4) * (s / 4) * fc + fc * static_cast<double>(config.classes);
    return 2 * macs;
  }
  // ResNet: 3×3 stem to 16 channels, then 3 stages of `units_per_stage` units (two 3×3
  // convolutions, a 1×1 shortcut where the shape changes), global pooling, one linear layer.
  double channels = 16, side = s;
  macs = in * 16 * 9 * s * s;
  for (int stage = 0; stage < 3; ++stage) {
    const double width = static_cast<double>(16 << stage);
    for (int64_t unit = 0; unit < config.units_per_stage; ++unit) {
      const bool down = stage > 0 && unit == 0;
      if (down) side /= 2;
      macs += channels * width * 9 * side * side + width * width * 9 * side * side;
      if (down || channels != width) macs += channels * width * side * side;
      channels = width;
    }
  }
  macs += channels * static_cast<double>(config.classes);
  return 2 * macs;
}

/// A network with seeded weights, in eval mode, float32, on `device`.
inline examples::Net make_net(const examples::NetConfig& config, const torch::Device& device) {
  torch::manual_seed(0);
  examples::Net net(config);
  net->eval();
  net->to(device);
  return net;
}

/// A seeded batch of N images in [0, 1] for `config`, float32 on `device`.
inline torch::Tensor images(const examples::NetConfig& config, int64_t n,
                            const torch::Device& device) {
  torch::manual_seed(1);
  return torch::rand({n, config.in_channels, config.image_size, config.image_size}).to(device);
}

/// Labels: the network's own predictions, so every sample counts as correctly classified.
template <class Model>
torch::Tensor predicted(Model& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return model->forward(x).argmax(1);
}

/// The limit most attribution benchmarks are compared with: one forward of `model` over `rows`
/// and one backward of the summed `target` logits w.r.t. the rows. Returns that gradient.
template <class Model>
torch::Tensor logit_input_gradient(Model& model, const torch::Tensor& rows,
                                   const torch::Tensor& target) {
  const torch::Tensor p = rows.detach().requires_grad_(true);
  const torch::Tensor s = rar::score::logit(model->forward(p), target);
  return torch::autograd::grad({s.sum()}, {p})[0];
}

/// Waits for the device's queued work (a no-op on the CPU).
inline void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

/// Wall-clock seconds of one call of `f`, the device's queue drained before and after.
template <class F>
double seconds(const torch::Device& device, F&& f) {
  sync(device);
  const auto start = std::chrono::steady_clock::now();
  f();
  sync(device);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// A reference measurement: its short name and the code it times.
struct Reference {
  std::string name;
  std::function<void()> run;
};

/// The paired measurement behind every ratio counter: each benchmark iteration times `work`
/// (reported as the iteration's time; register with `->UseManualTime()`) and then each
/// reference, the limits it is compared with, so that all see the same machine state. Reports,
/// per reference r, `ratio_to_<r>` = Σ work / Σ r and `<r>_ms` = r's mean time, and
/// `items_per_iteration` per second of work as `items_per_second`. Returns the mean seconds of
/// `work`.
template <class Work>
double paired(benchmark::State& state, const torch::Device& device, Work&& work,
              const std::vector<Reference>& references, double items_per_iteration) {
  work();  // warm-up: allocator caches, oneDNN primitives, lazy initialization
  for (const auto& r : references) r.run();
  double work_total = 0;
  std::vector<double> reference_total(references.size(), 0.0);
  for (auto _ : state) {
    const double w = seconds(device, work);
    state.SetIterationTime(w);
    work_total += w;
    for (size_t i = 0; i < references.size(); ++i)
      reference_total[i] += seconds(device, references[i].run);
  }
  const auto iterations = static_cast<double>(state.iterations());
  for (size_t i = 0; i < references.size(); ++i) {
    state.counters["ratio_to_" + references[i].name] = work_total / reference_total[i];
    state.counters[references[i].name + "_ms"] = 1e3 * reference_total[i] / iterations;
  }
  state.counters["items_per_second"] = items_per_iteration * iterations / work_total;
  return work_total / iterations;
}

/// The devices benchmarks are registered for: the CPU, and the first GPU when there is one.
inline std::vector<std::pair<std::string, torch::Device>> devices() {
  std::vector<std::pair<std::string, torch::Device>> out{{"cpu", torch::Device(torch::kCPU)}};
  if (torch::cuda::is_available()) out.emplace_back("cuda", torch::Device(torch::kCUDA, 0));
  return out;
}

/// Keeps large tensor buffers on glibc's heap as the example programs do
/// (`rar::examples::keep_large_buffers_on_heap`): with glibc's defaults every iteration
/// page-faults its tens of MB of temporaries in again, which dominated the elementwise-heavy
/// benchmarks (DeepLIFT: ratio 1.8 instead of 1.3 at N = 256). RAR_BENCH_SYSTEM_MALLOC=1 keeps
/// glibc's defaults. Returns what the run uses.
inline std::string configure_malloc() {
  const char* keep = std::getenv("RAR_BENCH_SYSTEM_MALLOC");
  if (keep != nullptr && std::string(keep) == "1") return "system defaults";
  return examples::keep_large_buffers_on_heap()
             ? "glibc heap only (M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB)"
             : "system defaults";
}

/// Adds what the timings depend on to the run's context (the console header and the JSON);
/// every registrar calls it, the first call does the work.
inline void add_context() {
  static const bool added = [] {
    benchmark::AddCustomContext("malloc", configure_malloc());
    benchmark::AddCustomContext("libtorch", TORCH_VERSION);
    benchmark::AddCustomContext("intra_op_threads", std::to_string(at::get_num_threads()));
    // OpenBLAS's pthread build would otherwise run LibTorch's matrix products on every core:
    // one thread, as LibTorch's own operators, unless OPENBLAS_NUM_THREADS says otherwise.
    const char* openblas = std::getenv("OPENBLAS_NUM_THREADS");
    benchmark::AddCustomContext(
        "openblas_threads", examples::single_threaded_openblas()
                                ? std::string("1 (set by rar_bench)")
                                : std::string(openblas != nullptr ? openblas : "library default"));
    benchmark::AddCustomContext("cuda", torch::cuda::is_available() ? "yes" : "no");
    return true;
  }();
  (void)added;
}

/// Runs `f` at static initialization: benchmarks whose registration depends on the machine
/// (CUDA present or not) are registered from one of these.
struct Registrar {
  template <class F>
  explicit Registrar(F&& f) {
    f();
  }
};

}  // namespace bench
}  // namespace rar
