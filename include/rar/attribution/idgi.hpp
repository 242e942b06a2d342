#pragma once
/// @file
/// IDGI, Important Direction Gradient Integration (Yang, Wang, Bilen, "IDGI: A Framework to
/// Eliminate Explanation Noise from Integrated Gradients", CVPR 2023): Integrated Gradients
/// with each path step's change of the score projected on the gradient's direction.

#include <torch/torch.h>

#include <cstdint>
#include <rar/attribution/completeness.hpp>
#include <rar/attribution/integrated_gradients.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>
#include <vector>

namespace rar {

/// Options for `rar::idgi`.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::idgi(model, x, rar::IDGIOptions().target(y).steps(64));
/// @endcode
struct IDGIOptions {
  /// The path's start x'. Undefined: zeros like the input. Broadcasts to the input as in IG.
  RAR_ARG(torch::Tensor, baseline);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Path segments m (≥ 1): the straight path is cut at α_k = k/m, k = 0..m.
  RAR_ARG(int64_t, steps) = 50;
  /// Rows of the N·m path batch per forward/backward; 0 (the default): rar's batching rule.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Keep the graph so the attributions are differentiable w.r.t. the input and the model's
  /// parameters (the attack and the RAR terms need it).
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// IDGI and its completeness delta: the implementation behind `idgi` and `idgi_with_delta`.
template <class Model>
Attribution idgi_delta(const char* fn, Model& model, const torch::Tensor& input,
                       const IDGIOptions& options) {
  check_input(fn, "input", input);
  TORCH_CHECK(options.steps() >= 1, fn, ": steps must be >= 1, got ", options.steps());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());
  const torch::Tensor baseline = expand_baseline(fn, options.baseline(), input);
  const torch::Tensor target = expand_target(fn, options.target(), input.size(0), input.device());
  const bool graph = options.create_graph();
  const int64_t m = options.steps(), n = input.size(0);
  // Gradients at x_0 .. x_{m−1} (the left end of each segment), scores at every x_k; the
  // gradient at x_m = x is not needed, only its score (one forward).
  torch::Tensor scores;
  const torch::Tensor g =
      path_gradients(fn, model, input, baseline.expand_as(input), target,
                     quadrature(Quadrature::riemann_left, m).alphas, options.internal_batch_size(),
                     graph, options.score(), &scores);
  torch::Tensor end, start;
  {
    torch::AutoGradMode grad_mode(graph);
    end = options.score()(call_model(model, input), target);
  }
  const torch::Tensor s = torch::cat({scores.view({m, n}), end.view({1, n})});
  const torch::Tensor d = s.slice(0, 1) - s.slice(0, 0, m);  // [m, N]: F(x_{k+1}) − F(x_k)
  const torch::Tensor g2 = g * g;
  const torch::Tensor norm = g2.flatten(2).sum(2);  // [m, N]
  // A segment whose gradient is zero has no direction to put its change on: it contributes
  // nothing (as in the reference implementation, where 0/0 would be NaN).
  const torch::Tensor weight = torch::where(
      norm > 0, d / torch::where(norm > 0, norm, torch::ones_like(norm)), torch::zeros_like(norm));
  Attribution result;
  std::vector<int64_t> per_step{m, n};
  per_step.resize(static_cast<size_t>(input.dim()) + 1, 1);
  result.attributions = (g2 * weight.view(per_step)).sum(0);
  start = s[0];
  result.delta = result.attributions.flatten(1).sum(1) - (end - start);
  result.points = torch::full({n}, m + 1, torch::kLong);
  return result;
}

}  // namespace detail

/// IDGI attributions: Σ_k (∇F(x_k) ⊙ ∇F(x_k)) / ‖∇F(x_k)‖² · (F(x_{k+1}) − F(x_k)).
///
/// On the straight path x_k = x′ + (k/m)(x − x′), k = 0..m, IG spends each step's change of
/// the score along (x − x′), where most of it is noise; IDGI (Yang et al., CVPR 2023, Alg. 1)
/// assigns the step's change F(x_{k+1}) − F(x_k) to the features in proportion to the squared
/// gradient, the direction in which the score actually changes. The attributions sum to
/// F(x) − F(x′) exactly (up to round-off), for any m, unless a gradient vanishes along the
/// path. The same formula as the authors' `IDGI(Gradients, Predictions)`, which drops the
/// gradient at x itself. Cost: one forward and one backward over N·m rows and one forward
/// over the N inputs.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::idgi(model, x, rar::IDGIOptions().target(y));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baseline, target, steps, internal_batch_size, create_graph, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor idgi(Model&& model, const torch::Tensor& input, const IDGIOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::idgi_delta("rar::idgi", model, input, options).attributions;
}

/// IDGI attributions with the completeness delta of each sample (0 up to round-off, unless a
/// gradient vanishes on the path) and the points used (m + 1).
///
/// Example:
/// @code
/// rar::Attribution r = rar::idgi_with_delta(model, x, rar::IDGIOptions().target(y));
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`
/// @param options as for `rar::idgi`
/// @return attributions, `delta` `[N]`, `points` `[N]`
template <class Model>
Attribution idgi_with_delta(Model&& model, const torch::Tensor& input,
                            const IDGIOptions& options = {}) {
  detail::static_check_model<Model>();
  return detail::idgi_delta("rar::idgi_with_delta", model, input, options);
}

}  // namespace rar
