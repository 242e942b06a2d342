#pragma once
/// @file
/// SmoothGrad (Smilkov et al. 2017), SmoothGrad² and VarGrad (Adebayo et al. 2018) over any
/// attribution method, like Captum 0.7's `NoiseTunnel`.

#include <rar/core/batching.hpp>
#include <rar/core/explainer.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <rar/core/random.hpp>

#include <torch/torch.h>

#include <type_traits>
#include <utility>
#include <vector>

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
  /// Class per sample, int64 `[N]` or 0-dim, passed to an explainer `method` (ignored by a
  /// two-argument method, which captures its own).
  RAR_ARG(torch::Tensor, target);
  /// Ask an explainer `method` for differentiable attributions (the average is then
  /// differentiable w.r.t. the input too).
  RAR_ARG(bool, create_graph) = false;
  /// Rows (noisy copies × samples of the batch) per call of an explainer `method`: 0 (the
  /// default) = rar's batching rule (`rar/core/batching.hpp`), which stacks the noisy copies
  /// and calls the explainer on chunks of them. Methods without a target parameter are called
  /// once per noise sample whatever this says.
  RAR_ARG(int64_t, internal_batch_size) = 0;
};

/// SmoothGrad over an attribution method: aggregates `method(model, x + noise)` over
/// `samples` Gaussian perturbations of the input.
///
/// The explainer (`(model, input, target, create_graph)`, such as every `rar::explain` one) is
/// called on the noisy copies of all samples stacked, `[samples·N, ...]`, in chunks chosen by
/// the batching rule (`internal_batch_size` overrides it), with the target repeated per copy; it
/// must treat rows independently, as every rar explainer does. The noise of call s is drawn
/// from the stream of `seed` (the same noise for the same seed on every device and every call).
///
/// Example:
/// @code
/// torch::Tensor smooth = rar::smooth_grad(
///     model, rar::explain::integrated_gradients(rar::IGOptions().steps(16)), x,
///     rar::SmoothGradOptions().samples(20).target(y));
/// // or, as an explainer usable by every tool:
/// auto smooth_ig = rar::explain::smooth_grad(rar::explain::integrated_gradients());
/// @endcode
/// @param model any model, passed on to `method`
/// @param method an explainer `(model, input, target, create_graph) -> attributions` of the
///        input's shape
/// @param input batch `[N, ...]`, float32 or float64
/// @param options samples, stddev, kind, seed
/// @return aggregated attributions, shape/dtype/device of `input`
template <class Model, class Method>
torch::Tensor smooth_grad(Model&& model, Method&& method, const torch::Tensor& input,
                          const SmoothGradOptions& options = {}) {
  const char* fn = "rar::smooth_grad";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(options.stddev() >= 0, fn, ": stddev must be >= 0, got ", options.stddev());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  at::Generator gen = rar::seeded_generator(options.seed());
  const int64_t samples = options.samples();
  // The attributions of every noisy copy, [samples, N, ...].
  torch::Tensor all;
  {
    std::vector<torch::Tensor> noisy;
    noisy.reserve(static_cast<size_t>(samples));
    for (int64_t s = 0; s < samples; ++s)
      noisy.push_back(input + options.stddev() * rar::normal_like(gen, input));
    const torch::Tensor stacked = torch::cat(noisy);
    const torch::Tensor& target = options.target();
    const bool per_row = target.defined() && target.dim() == 1;
    if (per_row) {
      TORCH_CHECK(target.size(0) == input.size(0), fn, ": target must have one entry per sample, [",
                  input.size(0), "], got ", target.sizes());
    }
    const torch::Tensor row_target = per_row ? target.repeat({samples}) : target;
    std::vector<torch::Tensor> parts;
    detail::for_each_row_chunk(
        stacked.size(0), options.internal_batch_size(), input.device(),
        input.size(0) > 0 ? input.numel() / input.size(0) * static_cast<int64_t>(input.element_size())
                          : 0,
        [&](int64_t start, int64_t stop) {
          const torch::Tensor rows = stacked.slice(0, start, stop);
          parts.push_back(detail::call_explainer(
              fn, method, model, rows, per_row ? row_target.slice(0, start, stop) : row_target,
              options.create_graph(), detail::MapShape::input));
        });
    std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
    shape.insert(shape.begin(), samples);
    all = (parts.size() == 1 ? parts[0] : torch::cat(parts)).view(shape);
  }
  torch::Tensor sum, sum_sq;
  if (options.kind() == NoiseKind::smoothgrad || options.kind() == NoiseKind::vargrad)
    sum = all.sum(0);
  if (options.kind() != NoiseKind::smoothgrad) sum_sq = (all * all).sum(0);
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
  return {};  // not reached; without it GCC warns (-Wreturn-type) in optimized user builds
}

}  // namespace rar
