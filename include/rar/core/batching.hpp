#pragma once
/// @file
/// The default batching rule: how many rows of a large batch of path points or perturbations
/// go through the model per pass when a method's `internal_batch_size` is left at 0.
///
/// On the CPU the rule measures what one row of the pass allocates (forward, backward, and the
/// graph kept with `create_graph`) on the first two chunks, then sizes every further chunk so
/// that the pass allocates about `rar::chunk_memory_budget()` bytes. Large one-batch passes are
/// slow on a CPU: every temporary above glibc's mmap threshold (at most 32 MiB) is mapped,
/// faulted in page by page and unmapped again, and misses every cache, while chunks of a few
/// hundred rows reuse the heap. On a GPU, and on any other device, the rule runs one batch and
/// halves the chunk when the device runs out of memory. docs/performance.md measures the rule
/// against every fixed chunk size.

#include <rar/core/model.hpp>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace rar {

namespace detail {

/// The default of `rar::chunk_memory_budget()`: 64 MiB (docs/performance.md).
inline constexpr int64_t kDefaultChunkMemoryBudget = int64_t{64} << 20;

inline std::atomic<int64_t>& chunk_memory_budget_storage() {
  static std::atomic<int64_t> budget{kDefaultChunkMemoryBudget};
  return budget;
}

}  // namespace detail

/// Bytes one CPU pass may allocate under the default batching rule (default 64 MiB).
///
/// Example:
/// @code
/// rar::set_chunk_memory_budget(int64_t{256} << 20);  // larger chunks, e.g. for a large L3
/// @endcode
inline int64_t chunk_memory_budget() { return detail::chunk_memory_budget_storage().load(); }

/// Sets the bytes one CPU pass may allocate under the default batching rule, for the whole
/// process (methods called with `internal_batch_size > 0` are not affected). Thread-safe.
///
/// Example:
/// @code
/// rar::set_chunk_memory_budget(int64_t{16} << 20);  // smaller passes: less memory at a time
/// @endcode
/// @param bytes the budget, > 0
inline void set_chunk_memory_budget(int64_t bytes) {
  TORCH_CHECK(bytes > 0, "rar::set_chunk_memory_budget: bytes must be > 0, got ", bytes);
  detail::chunk_memory_budget_storage().store(bytes);
}

namespace detail {

// The parameter types of c10::MemoryReportingInfoBase::reportMemoryUsage differ between
// LibTorch versions (int64_t totals in 1.13, size_t later): read them off the declaration.
template <class F>
struct report_signature;
template <class C, class Ptr, class Size, class Total, class Device>
struct report_signature<void (C::*)(Ptr, Size, Total, Total, Device)> {
  using size_type = Size;
  using total_type = Total;
};
using report_types = report_signature<decltype(&c10::MemoryReportingInfoBase::reportMemoryUsage)>;

/// Counts the bytes the allocator hands out on this thread while it is installed (LibTorch's
/// memory-profiling hook: the CPU allocator reports every allocation and every free of memory
/// allocated under it). Records the peak of the running total.
class AllocationCounter final : public c10::MemoryReportingInfoBase {
 public:
  void reportMemoryUsage(void* /*ptr*/, report_types::size_type alloc_size,
                         report_types::total_type /*total_allocated*/,
                         report_types::total_type /*total_reserved*/,
                         c10::Device /*device*/) override {
    const auto bytes = static_cast<int64_t>(alloc_size);
    current_ += bytes;
    peak_ = std::max(peak_, current_);
    if (bytes > 0) {
      ++allocations_;
      allocated_ += bytes;
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
  /// The largest number of bytes held at once (allocated minus freed) while installed.
  int64_t peak() const noexcept { return peak_; }
  /// The number of allocations while installed.
  int64_t allocations() const noexcept { return allocations_; }
  /// The bytes of all allocations while installed.
  int64_t allocated() const noexcept { return allocated_; }

 private:
  int64_t current_ = 0, peak_ = 0, allocations_ = 0, allocated_ = 0;
};

/// True when `error` is an allocator's out-of-memory failure (CUDA's caching allocator or the
/// CPU allocator).
inline bool is_out_of_memory(const c10::Error& error) {
  const std::string what = error.what();
  return what.find("out of memory") != std::string::npos ||
         what.find("can't allocate memory") != std::string::npos ||
         what.find("not enough memory") != std::string::npos;
}

/// Runs `compute()`, a forward (and score) of `model` on an internal batch built from `input`
/// (perturbed copies, noisy samples, stacked baselines), and raises its error in the caller's
/// terms with `rethrow_in_user_terms`: the input's shape, what the model returns for it, and
/// `describe()`, e.g. "a batch of 256 perturbed copies (8 samples x 32 perturbations)", rather
/// than LibTorch's message about a batch the user never made. Out-of-memory errors pass through
/// unchanged (the batching rule halves the chunk).
template <class Model, class Compute, class Describe>
torch::Tensor in_user_terms(const char* fn, Model& model, const torch::Tensor& input,
                            Compute&& compute, Describe&& describe) {
  try {
    return compute();
  } catch (const c10::Error& e) {
    if (is_out_of_memory(e)) throw;
    rethrow_in_user_terms(fn, model, input, describe(), e);
  }
}

/// Runs `pass(start, stop)` over consecutive chunks that cover the rows [0, rows), the one
/// batching rule of every method that evaluates many rows (IG's path, SmoothGrad's samples,
/// the attack's surrogate maps).
///
/// `fixed > 0`: chunks of `fixed` rows (the user's `internal_batch_size`). Otherwise, on the
/// CPU, one pass for at most 64 rows (128 when 32 × `row_input_bytes` per row fits the budget);
/// beyond, the first two chunks (p and 2p rows, p = budget / (128 × `row_input_bytes`) within
/// [4, 16]) are measured with `AllocationCounter` and the
/// rest are split into equal chunks of at most budget / (bytes per row between the two probes)
/// rows; on other devices one batch, halved on out-of-memory errors. `pass` must leave no trace when it throws (push its
/// results only after computing them).
template <class Pass>
void for_each_row_chunk(int64_t rows, int64_t fixed, const torch::Device& device,
                        int64_t row_input_bytes, Pass&& pass) {
  if (rows <= 0) return;
  if (fixed > 0) {
    for (int64_t start = 0; start < rows; start += fixed) pass(start, std::min(rows, start + fixed));
    return;
  }
  if (!device.is_cpu()) {
    int64_t chunk = rows;
    for (int64_t start = 0; start < rows;) {
      const int64_t stop = std::min(rows, start + chunk);
      try {
        pass(start, stop);
        start = stop;
      } catch (const c10::Error& error) {
        if (!is_out_of_memory(error) || chunk == 1) throw;
        chunk = (chunk + 1) / 2;
      }
    }
    return;
  }
  // Few rows: one pass (probing would only split a pass that is small anyway). "Few": at most
  // 64 rows, or 128 when activations 32 times the input row would still fit the budget.
  const int64_t budget = chunk_memory_budget();
  const int64_t guessed_row_bytes = std::max<int64_t>(1, 32 * row_input_bytes);
  if (rows <= 64 || (rows <= 128 && rows <= budget / guessed_row_bytes)) {
    pass(0, rows);
    return;
  }
  // Two probes of p and 2p rows: small chunks run slower per row, so p is as large as the
  // guessed row size allows (32 rows for MNIST- and CIFAR-sized inputs), at least 4.
  const int64_t probe_rows[2] = {
      std::clamp<int64_t>(budget / (4 * guessed_row_bytes), 4, 16),
      2 * std::clamp<int64_t>(budget / (4 * guessed_row_bytes), 4, 16)};
  // A profiler that records memory already owns the hook: then fall back to fixed probes.
  const bool measurable =
      c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE) == nullptr;
  int64_t probe_peak[2] = {0, 0};
  int64_t start = 0;
  for (int probe = 0; probe < 2 && start < rows; ++probe) {
    const int64_t stop = std::min(rows, start + probe_rows[probe]);
    if (measurable) {
      auto counter = std::make_shared<AllocationCounter>();
      {
        c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, counter);
        pass(start, stop);
      }
      probe_peak[probe] = counter->peak();
    } else {
      pass(start, stop);
    }
    start = stop;
  }
  if (start >= rows) return;
  // Bytes per row from the difference of the two probes (what does not grow with the rows,
  // such as reordered weights, cancels); the larger probe's average bounds it from above.
  const int64_t slope = (probe_peak[1] - probe_peak[0]) / (probe_rows[1] - probe_rows[0]);
  const int64_t per_row =
      std::max<int64_t>(1, slope > 0 ? slope : probe_peak[1] / probe_rows[1]);
  const int64_t limit = measurable ? std::clamp<int64_t>(budget / per_row, probe_rows[1], rows)
                                   : int64_t{256};
  // Equal chunks under the limit (no small remainder pass at the end).
  const int64_t left = rows - start;
  const int64_t count = (left + limit - 1) / limit;
  const int64_t chunk = (left + count - 1) / count;
  for (; start < rows; start += chunk) pass(start, std::min(rows, start + chunk));
}

}  // namespace detail
}  // namespace rar
