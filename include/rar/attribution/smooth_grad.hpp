#pragma once
/// @file
/// SmoothGrad (Smilkov et al. 2017), SmoothGrad² and VarGrad (Adebayo et al. 2018) over any
/// attribution method, like Captum 0.7's `NoiseTunnel`.

#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/detail/random.hpp>

#include <torch/torch.h>

#include <type_traits>

namespace rar {

/// How the attributions of the noisy copies are aggregated.
///
/// Example: `rar::SmoothGradOptions().kind(rar::NoiseKind::vargrad)`.
enum class NoiseKind {
  smoothgrad,     ///< mean of the attributions
  smoothgrad_sq,  ///< mean of the squared attributions
  vargrad         ///< variance of the attributions: mean(a²) − mean(a)²
};

/// Options for `rar::smooth_grad`.
///
/// Example:
/// @code
/// auto opts = rar::SmoothGradOptions().samples(50).stddev(0.1).kind(rar::NoiseKind::vargrad);
/// @endcode
struct SmoothGradOptions {
  /// Number of noisy copies of each input (≥ 1).
  RAR_ARG(int64_t, samples) = 25;
  /// Standard deviation of the Gaussian noise, in input units (Captum's `stdevs`; ≥ 0).
  RAR_ARG(double, stddev) = 0.15;
  /// Aggregation of the noisy attributions.
  RAR_ARG(NoiseKind, kind) = NoiseKind::smoothgrad;
  /// Seed of the noise; the same seed gives the same result on every device.
  RAR_ARG(uint64_t, seed) = 0;
};

/// SmoothGrad over an attribution method: aggregates `method(model, x + noise)` over
/// `samples` Gaussian perturbations of the input.
///
/// The method is called once per noise sample on a batch of the input's size, so a method that
/// captures a per-sample target `[N]` works unchanged.
///
/// Example:
/// @code
/// auto ig = [&](auto& m, const torch::Tensor& x) {
///   return rar::integrated_gradients(m, x, rar::IGOptions().target(y).steps(16));
/// };
/// torch::Tensor smooth = rar::smooth_grad(model, ig, x, rar::SmoothGradOptions().samples(20));
/// @endcode
/// @param model any model, passed on to `method`
/// @param method callable `(model, input) -> attributions` (same shape as input)
/// @param input batch `[N, ...]`, float32 or float64
/// @param options samples, stddev, kind, seed
/// @return aggregated attributions, shape/dtype/device of `input`
template <class Model, class Method>
torch::Tensor smooth_grad(Model&& model, Method&& method, const torch::Tensor& input,
                          const SmoothGradOptions& options = {}) {
  static_assert(std::is_invocable_r_v<torch::Tensor, Method&, Model&, const torch::Tensor&>,
                "rar::smooth_grad: method must be callable as "
                "torch::Tensor(model, const torch::Tensor& input)");
  const char* fn = "rar::smooth_grad";
  detail::check_batch(fn, "input", input);
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(options.stddev() >= 0, fn, ": stddev must be >= 0, got ", options.stddev());
  at::Generator gen = detail::seeded_generator(options.seed());
  torch::Tensor sum, sum_sq;
  for (int64_t s = 0; s < options.samples(); ++s) {
    const torch::Tensor noisy = input + options.stddev() * detail::normal_like(gen, input);
    const torch::Tensor a = method(model, noisy);
    TORCH_CHECK(a.sizes() == input.sizes(), fn,
                ": method must return attributions of the input's shape ", input.sizes(),
                ", got ", a.sizes());
    if (options.kind() == NoiseKind::smoothgrad || options.kind() == NoiseKind::vargrad)
      sum = sum.defined() ? sum + a : a;
    if (options.kind() != NoiseKind::smoothgrad)
      sum_sq = sum_sq.defined() ? sum_sq + a * a : a * a;
  }
  const double count = static_cast<double>(options.samples());
  switch (options.kind()) {
    case NoiseKind::smoothgrad:
      return sum / count;
    case NoiseKind::smoothgrad_sq:
      return sum_sq / count;
    case NoiseKind::vargrad: {
      const torch::Tensor mean = sum / count;
      return sum_sq / count - mean * mean;
    }
  }
  TORCH_CHECK(false, fn, ": unknown noise kind ", static_cast<int>(options.kind()));
}

}  // namespace rar
