#pragma once
/// @file
/// GradientSHAP (Lundberg, Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS
/// 2017; the `GradientExplainer` of the SHAP package), with the semantics of Captum 0.7's
/// `GradientShap`: SmoothGrad over a one-point integrated gradient from a random baseline.

#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace rar {

/// Options for `rar::gradient_shap`.
///
/// Example:
/// @code
/// auto opts = rar::GradientShapOptions().baselines(background).samples(50).stddev(0.1).target(y);
/// torch::Tensor attr = rar::gradient_shap(model, x, opts);
/// @endcode
struct GradientShapOptions {
  /// The baseline distribution: a set of B references `[B, ...]` whose non-batch dimensions are
  /// the input's, same dtype and device; each sample draws its baselines uniformly from it, with
  /// replacement. Undefined: one baseline of zeros (Captum has no default).
  RAR_ARG(torch::Tensor, baselines);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Random points per input sample (Captum's `n_samples`, default 5), ≥ 1.
  RAR_ARG(int64_t, samples) = 5;
  /// Standard deviation of the Gaussian noise added to the input before each point (Captum's
  /// `stdevs`, default 0), ≥ 0.
  RAR_ARG(double, stddev) = 0.0;
  /// Seed of the draws (baseline indices, noise, path positions); the same seed gives the same
  /// result on every device.
  RAR_ARG(uint64_t, seed) = 0;
  /// Multiply the gradients by (noisy input − baseline) (Captum's `multiply_by_inputs`, default
  /// true: "global" attributions); false returns the mean gradient ("local").
  RAR_ARG(bool, multiply_by_inputs) = true;
  /// Rows of the N·samples batch per forward/backward. 0 (the default) = rar's batching rule
  /// (`rar/core/batching.hpp`). Any value gives the same attributions (to round-off).
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Keep the graph so the attributions are differentiable w.r.t. the input and the model's
  /// parameters (the draws are fixed by the seed, so the result is a smooth function of x).
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// Checks a baseline distribution `[B, ...]` against the input `[N, ...]` and returns it (zeros
/// `[1, ...]` when undefined).
inline torch::Tensor baseline_distribution(const char* fn, const torch::Tensor& baselines,
                                           const torch::Tensor& input) {
  if (!baselines.defined()) return torch::zeros_like(input.narrow(0, 0, 1));
  check_like(fn, "baselines", baselines, input);
  check_finite(fn, "baselines", baselines);
  TORCH_CHECK(baselines.dim() == input.dim() && baselines.size(0) >= 1 &&
                  baselines.sizes().slice(1) == input.sizes().slice(1),
              fn, ": baselines must be a set [B, ...] with B >= 1 and the input's non-batch "
              "dimensions ", input.sizes().slice(1), ", got shape ", baselines.sizes(),
              " (input ", input.sizes(), ")");
  return baselines;
}

}  // namespace detail

/// GradientSHAP: the expected gradient × (input − baseline) at random points between random
/// baselines and the noisy input.
///
/// For every sample x_n and draw s = 1..S (S = `samples`), with a baseline b_{ns} drawn
/// uniformly from the set, noise ε_{ns} ~ N(0, stddev² I) and α_{ns} ~ U(0, 1):
///
///     x̃ = x_n + ε_{ns},   z = α_{ns} x̃ + (1 − α_{ns}) b_{ns}
///     GS(x_n) = 1/S Σ_s (x̃ − b_{ns}) ⊙ ∇F(z)            (multiply_by_inputs)
///
/// with F = score(model(·), target). This is Captum 0.7's `GradientShap(model).attribute(x,
/// baselines, n_samples, stdevs, target)`: NoiseTunnel's SmoothGrad over `InputBaselineXGradient`
/// with `draw_baseline_from_distrib=True`; the draws come from `rar::seeded_generator(seed)`
/// (indices, then noise, then α; Captum's come from numpy's and torch's global generators), so
/// the two agree in expectation. With stddev = 0 the expectation is the mean over the baseline
/// set of the integrated gradients from each baseline, and the attributions sum to
/// F(x) − mean_b F(b) in expectation.
///
/// All N·S points go through one forward and one backward (rows n·S + s, as Captum's
/// `repeat_interleave`), in chunks chosen by the batching rule (`internal_batch_size` overrides
/// it). Does not change the model's mode, flags or parameter gradients.
///
/// Example:
/// @code
/// torch::Tensor background = train_images.slice(0, 0, 100);
/// torch::Tensor attr = rar::gradient_shap(
///     model, x, rar::GradientShapOptions().baselines(background).samples(20).target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baselines, target, samples, stddev, seed, multiply_by_inputs,
///        internal_batch_size, create_graph, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor gradient_shap(Model&& model, const torch::Tensor& input,
                            const GradientShapOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::gradient_shap";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(options.samples() >= 1, fn, ": samples must be >= 1, got ", options.samples());
  TORCH_CHECK(options.stddev() >= 0, fn, ": stddev must be >= 0, got ", options.stddev());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());
  const torch::Tensor baselines = detail::baseline_distribution(fn, options.baselines(), input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  const bool graph = options.create_graph();
  const int64_t n = input.size(0);
  const int64_t samples = options.samples();
  const int64_t rows = n * samples;
  torch::AutoGradMode grad_mode(true);

  // The draws, in a fixed order from the stream (seed, 0), on the CPU in float64.
  at::Generator gen = seeded_generator(options.seed());
  const torch::Tensor index =
      torch::randint(baselines.size(0), {rows}, gen, torch::TensorOptions().dtype(torch::kLong))
          .to(input.device());
  std::vector<int64_t> row_shape(input.sizes().begin(), input.sizes().end());
  row_shape[0] = rows;
  const torch::Tensor repeated = input.repeat_interleave(samples, 0);
  const torch::Tensor noisy =
      options.stddev() > 0
          ? repeated + options.stddev() *
                           normal_like(gen, torch::empty(row_shape, input.options()))
          : repeated;
  const torch::Tensor alpha =
      uniform_like(gen, torch::empty({rows}, input.options()), 0.0, 1.0)
          .view(detail::leading_shape(rows, input.dim() - 1));
  const torch::Tensor base = baselines.index_select(0, index);
  // Captum's _scale_input: α x̃ + (1 − α) b.
  torch::Tensor points = alpha * noisy + (1.0 - alpha) * base;
  if (!graph) points = points.detach();
  const torch::Tensor row_target = target.defined() ? target.repeat_interleave(samples) : target;

  std::vector<torch::Tensor> grads;
  const int64_t row_bytes = input.numel() / n * static_cast<int64_t>(input.element_size());
  detail::for_each_row_chunk(rows, options.internal_batch_size(), input.device(), row_bytes,
                             [&](int64_t start, int64_t stop) {
    const bool whole = start == 0 && stop == rows;
    const torch::Tensor z =
        detail::differentiable_leaf(whole ? points : points.slice(0, start, stop), graph);
    const torch::Tensor t = row_target.defined() && !whole ? row_target.slice(0, start, stop)
                                                           : row_target;
    const torch::Tensor s = detail::in_user_terms(
        fn, model, input, [&] { return options.score()(call_model(model, z), t); }, [&] {
          return "a batch of " + std::to_string(stop - start) + " noisy path points (" +
                 std::to_string(n) + " samples x " + std::to_string(samples) + " samples)";
        });
    TORCH_CHECK(s.dim() == 1 && s.size(0) == stop - start, fn,
                ": the score function must return one value per sample, shape [", stop - start,
                "], got ", s.sizes());
    torch::Tensor g = torch::autograd::grad({s.sum()}, {z}, {}, /*retain_graph=*/graph,
                                            /*create_graph=*/graph)[0];
    grads.push_back(std::move(g));
  });
  torch::Tensor g = grads.size() == 1 ? grads[0] : torch::cat(grads);
  if (options.multiply_by_inputs()) g = g * (graph ? noisy - base : (noisy - base).detach());
  if (!graph) g = g.detach();
  std::vector<int64_t> per_sample(input.sizes().begin(), input.sizes().end());
  per_sample.insert(per_sample.begin() + 1, samples);
  return g.view(per_sample).mean(1);
}

}  // namespace rar
