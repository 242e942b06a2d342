// Attribution-similarity metrics, on one thread, against one std::sort of the same values.
//
// Metrics/<metric>  time of rar::kendall_tau / rar::spearman_rho / rar::topk_intersection /
//                   rar::lens (window 1; lens_div: with top-k-div) on
//                   N pairs of n features (float32 [N, n], the form evaluation code passes);
//                   ratio_to_sort = time / (std::sort of the N·n values as N float64 vectors).
//                   Kendall also reports ratio_to_5ms at n = 16384, N = 1 (the budget of one
//                   pair on one core).
// Metrics/kendall_tau_brute_force  the O(n²) pair count, for contrast, at small n.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <rar/rar.hpp>
#include <vector>

#include "support.hpp"

namespace {

/// Runs the benchmark body on one intra-op thread and restores the previous count after.
class OneThread {
 public:
  OneThread() : previous_(at::get_num_threads()) { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(previous_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int previous_;
};

/// N pairs of correlated maps, float32 [N, n]: b = a + noise, as a map and its attacked version.
std::pair<torch::Tensor, torch::Tensor> map_pairs(int64_t n_pairs, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor a = torch::randn({n_pairs, n});
  const torch::Tensor b = a + 0.5 * torch::randn({n_pairs, n});
  return {a, b};
}

/// Inputs cycled through from one iteration to the next, 16 pairs in all: sorting the same few
/// thousand values again and again lets the branch predictor learn them, which makes a
/// comparison sort look several times faster than it is on fresh data.
struct Inputs {
  Inputs(int64_t n_pairs, int64_t n) {
    const int64_t batches = std::max<int64_t>(1, 16 / n_pairs);
    for (int64_t i = 0; i < batches; ++i) {
      auto [x, y] = map_pairs(n_pairs, n, 2 + static_cast<uint64_t>(i));
      a.push_back(x);
      b.push_back(y);
    }
  }
  size_t size() const { return a.size(); }
  std::vector<torch::Tensor> a, b;
};

/// The reference: std::sort of each row of `a` as float64 (one O(n log n) pass per pair).
class SortReference {
 public:
  explicit SortReference(const Inputs& inputs) {
    for (const torch::Tensor& a : inputs.a) {
      const torch::Tensor rows = a.to(torch::kDouble).contiguous();
      const double* p = rows.data_ptr<double>();
      values_.emplace_back(p, p + rows.numel());
    }
    width_ = inputs.a.front().size(1);
  }
  void operator()() {
    scratch_ = values_[next_++ % values_.size()];
    for (size_t start = 0; start < scratch_.size(); start += static_cast<size_t>(width_))
      std::sort(scratch_.begin() + static_cast<std::ptrdiff_t>(start),
                scratch_.begin() + static_cast<std::ptrdiff_t>(start) + width_);
    benchmark::DoNotOptimize(scratch_.data());
  }

 private:
  std::vector<std::vector<double>> values_;
  std::vector<double> scratch_;
  int64_t width_ = 0;
  size_t next_ = 0;
};

enum class Metric { kendall, spearman, topk, lens, lens_div };

// Args: {n, N}.
void bm_metric(benchmark::State& state, Metric metric) {
  OneThread one_thread;
  const int64_t n = state.range(0);
  const int64_t pairs = state.range(1);
  const Inputs inputs(pairs, n);
  const int64_t k = std::max<int64_t>(1, n / 10);
  SortReference sort(inputs);
  size_t next = 0;
  const double seconds = rar::bench::paired(
      state, torch::Device(torch::kCPU),
      [&] {
        const size_t i = next++ % inputs.size();
        const torch::Tensor &a = inputs.a[i], &b = inputs.b[i];
        switch (metric) {
          case Metric::kendall:
            benchmark::DoNotOptimize(rar::kendall_tau(a, b));
            break;
          case Metric::spearman:
            benchmark::DoNotOptimize(rar::spearman_rho(a, b));
            break;
          case Metric::topk:
            benchmark::DoNotOptimize(rar::topk_intersection(a, b, k));
            break;
          case Metric::lens:
          case Metric::lens_div: {
            // The features as 2-d maps, rows of 128 (28 for 784).
            const int64_t width = n % 128 == 0 ? 128 : 28;
            benchmark::DoNotOptimize(rar::lens(a.view({pairs, -1, width}), b.view({pairs, -1, width}),
                                               rar::LensOptions().k(k).window(1).diverse(
                                                   metric == Metric::lens_div)));
            break;
          }
        }
      },
      {{"sort", [&] { sort(); }}}, static_cast<double>(pairs * n));
  // The budget of one pair of 16384 features on one core: below 1 meets it.
  if (metric == Metric::kendall && n == 16384 && pairs == 1)
    state.counters["ratio_to_5ms"] = seconds / 5e-3;
}

/// Kendall's tau-b by counting all n(n−1)/2 pairs: the textbook O(n²) definition.
double kendall_tau_brute_force(const double* a, const double* b, int64_t n) {
  int64_t concordant_minus_discordant = 0, tied_a = 0, tied_b = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      const int sa = (a[i] > a[j]) - (a[i] < a[j]);
      const int sb = (b[i] > b[j]) - (b[i] < b[j]);
      concordant_minus_discordant += sa * sb;
      tied_a += sa == 0;
      tied_b += sb == 0;
    }
  }
  const int64_t total = n * (n - 1) / 2;
  return static_cast<double>(concordant_minus_discordant) /
         std::sqrt(static_cast<double>(total - tied_a)) /
         std::sqrt(static_cast<double>(total - tied_b));
}

// Args: {n}.
void bm_kendall_brute_force(benchmark::State& state) {
  OneThread one_thread;
  const int64_t n = state.range(0);
  const Inputs inputs(1, n);
  const torch::Tensor da = inputs.a[0].to(torch::kDouble).contiguous();
  const torch::Tensor db = inputs.b[0].to(torch::kDouble).contiguous();
  const double fast = rar::kendall_tau(inputs.a[0], inputs.b[0]).item<double>();
  const double slow = kendall_tau_brute_force(da.data_ptr<double>(), db.data_ptr<double>(), n);
  if (std::abs(fast - slow) > 1e-12) {
    state.SkipWithError("rar::kendall_tau disagrees with the O(n^2) count");
    return;
  }
  SortReference sort(inputs);
  rar::bench::paired(
      state, torch::Device(torch::kCPU),
      [&] {
        benchmark::DoNotOptimize(
            kendall_tau_brute_force(da.data_ptr<double>(), db.data_ptr<double>(), n));
      },
      {{"sort", [&] { sort(); }}}, static_cast<double>(n));
}

void register_metrics() {
  const std::pair<const char*, Metric> metrics[] = {{"kendall_tau", Metric::kendall},
                                                    {"spearman_rho", Metric::spearman},
                                                    {"topk_intersection", Metric::topk},
                                                    {"lens", Metric::lens},
                                                    {"lens_div", Metric::lens_div}};
  for (const auto& [name, metric] : metrics) {
    auto* b = benchmark::RegisterBenchmark(
        ("Metrics/" + std::string(name)).c_str(),
        [metric = metric](benchmark::State& s) { bm_metric(s, metric); });
    b->ArgNames({"n", "N"})->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);
    // One pair, and a batch of 16 (28×28, 32×32×3, 128×128, 128×128×3 features).
    for (int64_t pairs : {1, 16})
      for (int64_t n : {784, 3072, 16384, 49152}) b->Args({n, pairs});
  }
  benchmark::RegisterBenchmark("Metrics/kendall_tau_brute_force", bm_kendall_brute_force)
      ->ArgNames({"n"})
      ->Args({784})
      ->Args({3072})
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(0.2);
}

const rar::bench::Registrar metrics_registrar(register_metrics);

}  // namespace
