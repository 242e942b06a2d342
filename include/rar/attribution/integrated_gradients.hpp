#pragma once
/// @file
/// Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks",
/// ICML 2017), batched over all path points, differentiable with `create_graph`.

#include <rar/attribution/completeness.hpp>
#include <rar/attribution/quadrature.hpp>
#include <rar/core/batching.hpp>
#include <rar/core/model.hpp>
#include <rar/core/score.hpp>
#include <rar/detail/arg.hpp>
#include <rar/detail/checks.hpp>

#include <torch/torch.h>

#include <vector>

namespace rar {

/// Options for `rar::integrated_gradients`.
///
/// Example:
/// @code
/// auto opts = rar::IGOptions().target(labels).steps(32).method(rar::Quadrature::riemann_right);
/// torch::Tensor attr = rar::integrated_gradients(model, images, opts);
/// @endcode
struct IGOptions {
  /// The path's start x'. Undefined: zeros like the input. Any shape that broadcasts to the
  /// input's (one baseline per sample, or one for the whole batch), same dtype and device.
  RAR_ARG(torch::Tensor, baseline);
  /// Class per sample, int64 `[N]` or 0-dim. Undefined: the model output must already be `[N]`.
  RAR_ARG(torch::Tensor, target);
  /// Number of points m on the path (≥ 1; ≥ 2 for the trapezoid rule).
  RAR_ARG(int64_t, steps) = 50;
  /// Quadrature rule for the path integral.
  RAR_ARG(Quadrature, method) = Quadrature::gauss_legendre;
  /// Rows of the N·m path batch evaluated per forward/backward. 0 (the default) = rar's batching
  /// rule (`rar/core/batching.hpp`): on the CPU chunks sized to `rar::chunk_memory_budget()`
  /// from the bytes per row measured on the first two chunks, elsewhere one batch, halved on
  /// out-of-memory. Any value gives the same attributions (to round-off); smaller values use
  /// less memory.
  RAR_ARG(int64_t, internal_batch_size) = 0;
  /// Keep the graph so the attributions are differentiable w.r.t. the input and the model's
  /// parameters (double backward), as RAR training and attribution attacks need.
  RAR_ARG(bool, create_graph) = false;
  /// What is explained: a per-sample scalar `[N]` from (output, target).
  RAR_ARG(ScoreFunction, score) = score::logit;
};

namespace detail {

/// Integrated Gradients with the baseline already expanded: the one implementation behind
/// `integrated_gradients`, `integrated_gradients_with_delta` and the RAR terms.
///
/// The path batch is laid out step-major, row k·N + n = x'_n + α_k (x_n − x'_n), so that
/// one forward and one backward over N·m rows (or over chunks of it) give every gradient.
/// When `path_scores` is given it receives the score of every path row `[m·N]` (step-major,
/// part of the graph when `create_graph`), so callers can reuse the forward pass.
template <class Model>
torch::Tensor integrated_gradients_expanded(Model& model, const torch::Tensor& input,
                                            const torch::Tensor& baseline,
                                            const torch::Tensor& target,
                                            const QuadratureRule& rule,
                                            int64_t internal_batch_size, bool create_graph,
                                            const ScoreFunction& score,
                                            torch::Tensor* path_scores = nullptr) {
  torch::AutoGradMode grad_mode(true);
  const int64_t m = static_cast<int64_t>(rule.alphas.size());
  const int64_t n = input.size(0);
  const auto opts = input.options();
  const auto steps_shape = leading_shape(m, input.dim());
  const auto alphas = torch::tensor(rule.alphas, opts.dtype(torch::kDouble))
                          .to(opts)
                          .view(steps_shape);
  const auto weights = torch::tensor(rule.weights, opts.dtype(torch::kDouble))
                           .to(opts)
                           .view(steps_shape);
  const torch::Tensor diff = input - baseline;
  std::vector<int64_t> flat_shape(input.sizes().begin(), input.sizes().end());
  flat_shape[0] = m * n;
  torch::Tensor path = (baseline.unsqueeze(0) + alphas * diff.unsqueeze(0)).reshape(flat_shape);
  if (!create_graph) path = path.detach();
  const torch::Tensor path_target = target.defined() ? target.repeat({m}) : target;

  const int64_t rows = m * n;
  std::vector<torch::Tensor> grads, scores;
  const int64_t row_bytes = n > 0 ? input.numel() / n * static_cast<int64_t>(input.element_size()) : 0;
  for_each_row_chunk(rows, internal_batch_size, input.device(), row_bytes, [&](int64_t start, int64_t stop) {
    const bool whole = start == 0 && stop == rows;
    torch::Tensor points =
        differentiable_leaf(whole ? path : path.slice(0, start, stop), create_graph);
    const torch::Tensor t =
        path_target.defined() ? (whole ? path_target : path_target.slice(0, start, stop))
                              : path_target;
    // Out-of-memory errors pass through: the batching rule halves the chunk and retries.
    const torch::Tensor s = in_user_terms(
        "rar::integrated_gradients", model, input,
        [&] { return score(call_model(model, points), t); },
        [&] {
          return "a batch of " + std::to_string(stop - start) + " path points (" +
                 std::to_string(n) + " samples x " + std::to_string(m) + " steps, shape " +
                 c10::str(points.sizes()) + ")";
        });
    TORCH_CHECK(s.dim() == 1 && s.size(0) == stop - start,
                "rar::integrated_gradients: the score function must return one value per sample, "
                "shape [", stop - start, "], got ", s.sizes());
    torch::Tensor g = torch::autograd::grad({s.sum()}, {points}, {}, /*retain_graph=*/create_graph,
                                            /*create_graph=*/create_graph)[0];
    grads.push_back(std::move(g));
    if (path_scores) scores.push_back(create_graph ? s : s.detach());
  });
  if (path_scores) *path_scores = scores.size() == 1 ? scores[0] : torch::cat(scores);
  std::vector<int64_t> step_major(input.sizes().begin(), input.sizes().end());
  step_major.insert(step_major.begin(), m);
  const torch::Tensor g = (grads.size() == 1 ? grads[0] : torch::cat(grads)).view(step_major);
  return (g * weights).sum(0) * diff;
}

/// Validates IG arguments common to every entry point and returns the expanded baseline/target.
inline std::pair<torch::Tensor, torch::Tensor> prepare_ig(const char* fn,
                                                          const torch::Tensor& input,
                                                          const IGOptions& options) {
  check_input(fn, "input", input);
  TORCH_CHECK(options.steps() >= 1, fn, ": steps must be >= 1, got ", options.steps());
  TORCH_CHECK(options.internal_batch_size() >= 0, fn,
              ": internal_batch_size must be >= 0 (0 = the default batching rule), got ",
              options.internal_batch_size());
  TORCH_CHECK(static_cast<bool>(options.score()), fn, ": score must be a callable");
  return {expand_baseline(fn, options.baseline(), input),
          expand_target(fn, options.target(), input.size(0), input.device())};
}

}  // namespace detail

/// Integrated Gradients of `score(model(x), target)` along the straight path from the baseline.
///
/// IG_i(x) = (x_i − x'_i) · Σ_k w_k ∂F(x' + α_k (x − x'))/∂x_i with the nodes α_k and weights
/// w_k of `options.method()`. Numerically the same as Captum 0.7's `IntegratedGradients`.
/// Costs one forward and one backward over N·steps inputs, in chunks chosen by the batching
/// rule (`internal_batch_size` overrides it). Does not change the model's mode, flags or parameter gradients.
///
/// Example:
/// @code
/// torch::Tensor attr = rar::integrated_gradients(model, x, rar::IGOptions().target(y).steps(32));
/// @endcode
/// @param model any model (module holder, module, or callable Tensor(const Tensor&))
/// @param input batch `[N, ...]`, float32 or float64, on any device
/// @param options baseline, target, steps, method, batching, create_graph, score
/// @return attributions with the shape, dtype and device of `input`
template <class Model>
torch::Tensor integrated_gradients(Model&& model, const torch::Tensor& input,
                                   const IGOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::integrated_gradients";
  const auto [baseline, target] = detail::prepare_ig(fn, input, options);
  return detail::integrated_gradients_expanded(
      model, input, baseline, target, quadrature(options.method(), options.steps()),
      options.internal_batch_size(), options.create_graph(), options.score());
}

/// Integrated Gradients and the convergence delta of each sample (completeness check).
///
/// `delta[n] = Σ_i attributions[n, i] − (score(x_n) − score(x'_n))`; it goes to 0 as steps grow.
/// Costs one extra forward over the inputs and one over the baselines.
///
/// Example:
/// @code
/// auto result = rar::integrated_gradients_with_delta(model, x, rar::IGOptions().target(y));
/// double worst = result.delta.abs().max().item<double>();
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`
/// @param options as for `rar::integrated_gradients`
/// @return the attributions (as `rar::integrated_gradients` returns them) and `delta` `[N]`
template <class Model>
Attribution integrated_gradients_with_delta(Model&& model, const torch::Tensor& input,
                                            const IGOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::integrated_gradients_with_delta";
  const auto [baseline, target] = detail::prepare_ig(fn, input, options);
  Attribution result;
  result.attributions = detail::integrated_gradients_expanded(
      model, input, baseline, target, quadrature(options.method(), options.steps()),
      options.internal_batch_size(), options.create_graph(), options.score());
  torch::AutoGradMode grad_mode(options.create_graph());
  const torch::Tensor end = options.score()(detail::call_model(model, input), target);
  const torch::Tensor start =
      options.score()(detail::call_model(model, baseline.contiguous()), target);
  result.delta = result.attributions.flatten(1).sum(1) - (end - start);
  return result;
}

}  // namespace rar
