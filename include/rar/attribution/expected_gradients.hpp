#pragma once
/// @file
/// Expected Gradients (Erion, Janizek, Sturmfels, Lundberg, Lee, "Improving performance of deep
/// learning models with axiomatic attribution priors and expected gradients", Nature Machine
/// Intelligence 2021): Integrated Gradients averaged over a distribution of baselines.

#include <torch/torch.h>

#include <cstdint>
#include <rar/attribution/gradient_shap.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/model.hpp>
#include <rar/core/random.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <vector>

namespace rar {

/// Options for `rar::expected_gradients`.
///
/// Example:
/// @code
/// auto opts = rar::ExpectedGradientsOptions().baselines(train_images.slice(0, 0, 64)).target(y);
/// torch::Tensor attr = rar::expected_gradients(model, x, opts);           // Erion's estimator
/// torch::Tensor exact = rar::expected_gradients(model, x, opts.samples(0).steps(16));
/// @endcode
struct ExpectedGradientsOptions {
  /// The baseline distribution, a set `[B, ...]` with the input's non-batch dimensions, same
  /// dtype and device (e.g. a sample of the training data). Undefined: one baseline of zeros.
  RAR_ARG(torch::Tensor, baselines);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Baselines drawn per input sample, uniformly with replacement (≥ 0). 0: every baseline of
  /// the set once, in order (no draw; needs `steps` ≥ 1).
  RAR_ARG(int64_t, samples) = 50;
  /// Points on each path (≥ 0). 0 (the default): one uniformly random point per drawn baseline,
  /// the paper's Monte-Carlo estimator. m ≥ 1: the integrated gradients of each drawn baseline
  /// with m points of `method` (lower variance at m times the cost per draw).
  RAR_ARG(int64_t, steps) = 0;
  /// The quadrature rule when `steps` ≥ 1.
  RAR_ARG(Quadrature, method) = Quadrature::gauss_legendre;
  /// Seed of the draws (baseline indices, then path positions).
  RAR_ARG(uint64_t, seed) = 0;
  /// Rows per forward/backward; 0 (the default): rar's batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Keep the graph so the attributions are differentiable w.r.t. the input and the model's
  /// parameters (the draws are fixed by the seed), as the attack and the RAR terms need.
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

/// Expected Gradients: E_{x′∼D} IG(x; x′) = E_{x′∼D, α∼U(0,1)} (x − x′) ⊙ ∇F(x′ + α(x − x′)).
///
/// The attributions sum to F(x) − E_{x′∼D} F(x′) in expectation (exactly, up to quadrature,
/// with `samples(0)` and `steps` ≥ 1: then they are the mean over the set of the integrated
/// gradients from each baseline). With `steps` = 0 this is the estimator of Erion et al. (one
/// random baseline and one random α per draw), the same draws and numbers as
/// `rar::gradient_shap` with stddev 0 and the same seed (Captum's `GradientShap` without noise).
/// With `steps` ≥ 1 the path integral of each drawn baseline is computed by quadrature.
/// All N·samples·max(steps, 1) points go through one forward and one backward (in chunks by the
/// batching rule).
///
/// Example:
/// @code
/// torch::Tensor attr = rar::expected_gradients(
///     model, x, rar::ExpectedGradientsOptions().baselines(background).samples(32).target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baselines, target, samples, steps, method, seed, internal_batch_size,
///        create_graph, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor expected_gradients(Model&& model, const torch::Tensor& input,
                                 const ExpectedGradientsOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::expected_gradients";
  detail::check_input(fn, "input", input);
  TORCH_CHECK(options.samples() >= 0, fn, ": samples must be >= 0 (0 = every baseline once), got ",
              options.samples());
  TORCH_CHECK(options.steps() >= 0, fn,
              ": steps must be >= 0 (0 = one random point per draw), got ", options.steps());
  TORCH_CHECK(options.samples() > 0 || options.steps() > 0, fn,
              ": samples(0) (every baseline once) needs steps >= 1 (a quadrature per baseline), "
              "got steps 0");
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());
  if (options.steps() == 0) {
    return gradient_shap(model, input,
                         GradientShapOptions()
                             .baselines(options.baselines())
                             .target(options.target())
                             .samples(options.samples())
                             .seed(options.seed())
                             .internal_batch_size(options.internal_batch_size())
                             .create_graph(options.create_graph())
                             .score(options.score()));
  }
  const torch::Tensor baselines = detail::baseline_distribution(fn, options.baselines(), input);
  const torch::Tensor target =
      detail::expand_target(fn, options.target(), input.size(0), input.device());
  const int64_t n = input.size(0), b = baselines.size(0);
  const int64_t per = options.samples() > 0 ? options.samples() : b;
  const auto long_cpu = torch::TensorOptions().dtype(torch::kLong);
  // Rows n·S + s (as Captum's repeat_interleave): input n with its s-th baseline.
  const torch::Tensor index =
      (options.samples() > 0
           ? torch::randint(b, {n * per}, seeded_generator(options.seed()), long_cpu)
           : torch::arange(b, long_cpu).repeat({n}))
          .to(input.device());
  const torch::Tensor rows_x = input.repeat_interleave(per, 0);
  const torch::Tensor rows_b = baselines.index_select(0, index);
  const torch::Tensor rows_t = target.defined() ? target.repeat_interleave(per) : target;
  const torch::Tensor a = detail::integrated_gradients_expanded(
      model, rows_x, rows_b, rows_t, quadrature(options.method(), options.steps()),
      options.internal_batch_size(), options.create_graph(), options.score());
  std::vector<int64_t> per_sample(input.sizes().begin(), input.sizes().end());
  per_sample.insert(per_sample.begin() + 1, per);
  return a.view(per_sample).mean(1);
}

}  // namespace rar
