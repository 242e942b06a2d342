#pragma once
/// @file
/// Argument validation shared by every public entry point (rar::detail).

#include <torch/torch.h>

#include <string>

namespace rar {
namespace detail {

/// Checks that `input` is a defined floating-point batch `[N, ...]` with N >= 1.
inline void check_batch(const char* fn, const char* name, const torch::Tensor& input) {
  TORCH_CHECK(input.defined(), fn, ": ", name, " must be a defined tensor");
  TORCH_CHECK(input.dim() >= 1 && input.size(0) >= 1, fn, ": ", name,
              " must be a batch [N, ...] with N >= 1, got shape ", input.sizes());
  TORCH_CHECK(input.scalar_type() == torch::kFloat || input.scalar_type() == torch::kDouble,
              fn, ": ", name, " must be float32 or float64, got ", input.scalar_type());
}

/// Checks that every entry of `t` is finite; otherwise raises an error naming the argument, how
/// many entries are NaN and how many infinite, and the first one's sample. Attributions, attacks
/// and loss terms of NaN or infinite inputs are undefined, so the entry points refuse them
/// instead of returning NaN maps or losses.
inline void check_finite(const char* fn, const char* name, const torch::Tensor& t) {
  if (!t.defined() || t.numel() == 0 || !t.is_floating_point()) return;
  const torch::Tensor d = t.detach();
  const torch::Tensor bad = torch::isfinite(d).logical_not();
  if (!bad.any().item<bool>()) return;
  const int64_t count = bad.sum().item<int64_t>();
  const int64_t nan = torch::isnan(d).sum().item<int64_t>();
  const int64_t first = bad.flatten().nonzero()[0][0].item<int64_t>();
  const int64_t per_sample = d.dim() == 0 || d.size(0) == 0 ? 1 : d.numel() / d.size(0);
  TORCH_CHECK(false, fn, ": ", name, " must be finite, but ", count, " of its ", d.numel(),
              " values are not (", nan, " NaN, ", count - nan, " infinite); the first is in sample ",
              first / per_sample, " of shape ", d.sizes());
}

/// `check_batch` and `check_finite`: a finite floating-point batch `[N, ...]`, N >= 1.
inline void check_input(const char* fn, const char* name, const torch::Tensor& input) {
  check_batch(fn, name, input);
  check_finite(fn, name, input);
}

/// Checks that `other` has the dtype and device of `input`.
inline void check_like(const char* fn, const char* name, const torch::Tensor& other,
                       const torch::Tensor& input) {
  TORCH_CHECK(other.device() == input.device(), fn, ": ", name,
              " must be on the input's device ", input.device(), ", got ", other.device());
  TORCH_CHECK(other.scalar_type() == input.scalar_type(), fn, ": ", name,
              " must have the input's dtype ", input.scalar_type(), ", got ",
              other.scalar_type());
}

/// Checks that `other` has exactly the shape of `input`.
inline void check_same_shape(const char* fn, const char* a_name, const torch::Tensor& a,
                             const char* b_name, const torch::Tensor& b) {
  TORCH_CHECK(a.sizes() == b.sizes(), fn, ": ", a_name, " and ", b_name,
              " must have the same shape, got ", a.sizes(), " and ", b.sizes());
}

/// Returns the baseline broadcast to the input's shape; an undefined baseline is zeros.
///
/// Accepted: undefined, a 0-dim tensor, the input's shape, or any shape that broadcasts to it
/// without changing it (e.g. `[1, C, H, W]` for one baseline shared by the batch).
inline torch::Tensor expand_baseline(const char* fn, const torch::Tensor& baseline,
                                     const torch::Tensor& input) {
  if (!baseline.defined()) return torch::zeros_like(input);
  check_like(fn, "baseline", baseline, input);
  check_finite(fn, "baseline", baseline);
  bool ok = baseline.dim() <= input.dim();
  for (int64_t i = 1; ok && i <= baseline.dim(); ++i) {
    const int64_t b = baseline.size(-i);
    ok = b == 1 || b == input.size(-i);
  }
  TORCH_CHECK(ok, fn, ": baseline of shape ", baseline.sizes(),
              " does not broadcast to the input's shape ", input.sizes());
  return baseline.expand(input.sizes());
}

/// Returns the target as an int64 tensor `[n]` on `device`; undefined stays undefined.
///
/// A 0-dim target applies to every sample. Class indices must be >= 0; the upper bound is
/// checked against the model output by the score functions.
inline torch::Tensor expand_target(const char* fn, const torch::Tensor& target, int64_t n,
                                   const torch::Device& device) {
  if (!target.defined()) return target;
  TORCH_CHECK(target.scalar_type() == torch::kLong, fn,
              ": target must be an int64 tensor of class indices, got ", target.scalar_type());
  TORCH_CHECK(target.device() == device, fn, ": target must be on the input's device ", device,
              ", got ", target.device());
  TORCH_CHECK(target.dim() == 0 || (target.dim() == 1 && target.size(0) == n), fn,
              ": target must be 0-dim or of shape [", n, "] (one class per sample), got shape ",
              target.sizes());
  if (target.dim() == 0) return target.expand({n}).contiguous();
  return target;
}

/// Checks a batching option (`internal_batch_size`, `perturbations_per_eval`): >= 0, where 0
/// means rar's batching rule (`rar/core/batching.hpp`) and any other value a fixed chunk.
inline void check_batching(const char* fn, const char* name, int64_t value) {
  TORCH_CHECK(value >= 0, fn, ": ", name, " must be >= 0 (0 = the default batching rule), got ",
              value);
}

/// Checks that a callable option (a score function, a similarity, ...) is set.
template <class F>
void check_callable(const char* fn, const char* name, const F& f) {
  TORCH_CHECK(static_cast<bool>(f), fn, ": ", name, " must be a callable");
}

/// Returns `t` itself when it already takes part in a graph we must keep (`keep_graph`),
/// otherwise a detached copy that requires grad: the point where input gradients are taken.
inline torch::Tensor differentiable_leaf(const torch::Tensor& t, bool keep_graph) {
  if (keep_graph && t.requires_grad()) return t;
  return t.detach().requires_grad_(true);
}

/// Shape `[k, 1, 1, ...]` with `extra` trailing ones, to broadcast a per-step vector.
inline std::vector<int64_t> leading_shape(int64_t k, int64_t extra) {
  std::vector<int64_t> shape(static_cast<size_t>(extra + 1), 1);
  shape[0] = k;
  return shape;
}

}  // namespace detail
}  // namespace rar
