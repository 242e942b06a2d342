#pragma once
/// @file
/// Seeded random tensors that are the same on every device: drawn on the CPU, then moved.

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>

namespace rar {
namespace detail {

/// A CPU generator seeded with `seed` (one per call site, so results do not depend on the
/// global RNG or on what else ran before).
inline at::Generator seeded_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

/// Standard normal noise of `sizes`, drawn from `gen` on the CPU, then cast to `like`'s dtype
/// and device.
inline torch::Tensor normal_like(at::Generator& gen, const torch::Tensor& like) {
  return torch::randn(like.sizes(), gen, torch::TensorOptions().dtype(torch::kDouble))
      .to(like.options());
}

/// Uniform noise in [low, high) with `like`'s shape, dtype and device.
inline torch::Tensor uniform_like(at::Generator& gen, const torch::Tensor& like, double low,
                                  double high) {
  return torch::empty(like.sizes(), torch::TensorOptions().dtype(torch::kDouble))
      .uniform_(low, high, gen)
      .to(like.options());
}

}  // namespace detail
}  // namespace rar
