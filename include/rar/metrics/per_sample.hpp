#pragma once
/// @file
/// The machinery of the batched metrics: validation of a pair of batches, their rows as a
/// float64 CPU matrix, and a per-sample loop parallel over the batch (rar::detail).

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <rar/detail/checks.hpp>

#include <algorithm>
#include <cstdint>

namespace rar {
namespace detail {

/// Validates a pair of batches compared sample by sample: defined float batches `[N, ...]` of
/// the same shape with at least one feature per sample. Dtypes and devices may differ.
inline void check_metric_pair(const char* fn, const torch::Tensor& a, const torch::Tensor& b) {
  check_batch(fn, "a", a);
  check_batch(fn, "b", b);
  TORCH_CHECK(!a.is_meta() && !b.is_meta(), fn,
              ": a and b must hold data, got a meta tensor (device ",
              a.is_meta() ? a.device() : b.device(), ")");
  check_same_shape(fn, "a", a, "b", b);
  TORCH_CHECK(a.numel() > 0, fn, ": a and b must have at least one feature per sample, got shape ",
              a.sizes());
}

/// `t` as a contiguous float64 CPU matrix `[N, D]` (each sample flattened), detached.
inline torch::Tensor metric_rows(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kDouble).reshape({t.size(0), -1}).contiguous();
}

/// out[i] = f(a_i, b_i, D, workspace) for every sample i, in parallel over the batch with
/// `at::parallel_for` (one `Workspace` per chunk of samples). Returns float64 `[N]` on the CPU.
///
/// Note: with LibTorch's OpenMP backend `at::parallel_for` is inline and only runs in parallel
/// when the calling code is compiled with OpenMP (`-fopenmp`, `OpenMP::OpenMP_CXX`); without
/// it the samples are processed one after another (same results).
template <class Workspace, class F>
torch::Tensor per_sample_metric(const torch::Tensor& a, const torch::Tensor& b, const F& f) {
  const torch::Tensor rows_a = metric_rows(a);
  const torch::Tensor rows_b = metric_rows(b);
  const int64_t n = rows_a.size(0);
  const int64_t d = rows_a.size(1);
  torch::Tensor out = torch::empty({n}, torch::TensorOptions().dtype(torch::kDouble));
  const double* pa = rows_a.data_ptr<double>();
  const double* pb = rows_b.data_ptr<double>();
  double* po = out.data_ptr<double>();
  // Aim for ~32k features per task so that small samples do not pay one task each.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(d, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    Workspace workspace;
    for (int64_t i = begin; i < end; ++i) po[i] = f(pa + i * d, pb + i * d, d, workspace);
  });
  return out;
}

}  // namespace detail
}  // namespace rar
