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

#include <cmath>
#include <limits>
#include <utility>
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
  /// Adaptive point count. 0 (the default): `steps` points for every sample. δ > 0: start with
  /// `steps` points and double them (the trapezoid rule: double its intervals), for the samples
  /// that still miss, until each sample's
  /// completeness error |Σ IG − (F(x) − F(x′))| is at most δ·|F(x) − F(x′)| (plus round-off,
  /// 8·ε_dtype·(|F(x)| + |F(x′)|)) or `max_steps` is reached. The points each sample used are
  /// in `integrated_gradients_with_delta(...).points`. Costs two extra forwards (F(x), F(x′))
  /// and, per round, a path batch over the samples still missing only; the right, left and
  /// trapezoid rules nest, so their rounds evaluate only the new points (a sample that ends at m
  /// points cost m rows), while Gauss–Legendre and the middle rule recompute (up to 2m rows).
  RAR_ARG(double, tolerance) = 0.0;
  /// The most points the adaptive rule may use (≥ steps); only read when `tolerance` > 0.
  RAR_ARG(int64_t, max_steps) = 1024;
};

namespace detail {

/// The gradients of the score at the points x'_n + α_k (x_n − x'_n) of the straight path, for
/// every α_k of `alphas`: the path batch behind Integrated Gradients and its variants (IDGI).
///
/// The path batch is laid out step-major, row k·N + n = x'_n + α_k (x_n − x'_n), so that
/// one forward and one backward over N·m rows (or over chunks of it) give every gradient.
/// Returns the gradients `[m, N, ...]`; when `path_scores` is given it receives the score of
/// every path row `[m·N]` (step-major, part of the graph when `create_graph`), so callers can
/// reuse the forward pass.
template <class Model>
torch::Tensor path_gradients(const char* fn, Model& model, const torch::Tensor& input,
                             const torch::Tensor& baseline, const torch::Tensor& target,
                             const std::vector<double>& alpha_values, int64_t internal_batch_size,
                             bool create_graph, const ScoreFunction& score,
                             torch::Tensor* path_scores = nullptr) {
  torch::AutoGradMode grad_mode(true);
  const int64_t m = static_cast<int64_t>(alpha_values.size());
  const int64_t n = input.size(0);
  const auto opts = input.options();
  const auto alphas = torch::tensor(alpha_values, opts.dtype(torch::kDouble))
                          .to(opts)
                          .view(leading_shape(m, input.dim()));
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
        fn, model, input, [&] { return score(call_model(model, points), t); },
        [&] {
          return "a batch of " + std::to_string(stop - start) + " path points (" +
                 std::to_string(n) + " samples x " + std::to_string(m) + " steps, shape " +
                 c10::str(points.sizes()) + ")";
        });
    TORCH_CHECK(s.dim() == 1 && s.size(0) == stop - start, fn,
                ": the score function must return one value per sample, shape [", stop - start,
                "], got ", s.sizes());
    torch::Tensor g = torch::autograd::grad({s.sum()}, {points}, {}, /*retain_graph=*/create_graph,
                                            /*create_graph=*/create_graph)[0];
    grads.push_back(std::move(g));
    if (path_scores) scores.push_back(create_graph ? s : s.detach());
  });
  if (path_scores) *path_scores = scores.size() == 1 ? scores[0] : torch::cat(scores);
  std::vector<int64_t> step_major(input.sizes().begin(), input.sizes().end());
  step_major.insert(step_major.begin(), m);
  return (grads.size() == 1 ? grads[0] : torch::cat(grads)).view(step_major);
}

/// Integrated Gradients with the baseline already expanded: the one implementation behind
/// `integrated_gradients`, `integrated_gradients_with_delta` and the RAR terms:
/// (x − x') ⊙ Σ_k w_k ∇F(x' + α_k (x − x')) over the path batch of `path_gradients`.
/// When `path_scores` is given it receives the score of every path row `[m·N]`.
template <class Model>
torch::Tensor integrated_gradients_expanded(Model& model, const torch::Tensor& input,
                                            const torch::Tensor& baseline,
                                            const torch::Tensor& target,
                                            const QuadratureRule& rule,
                                            int64_t internal_batch_size, bool create_graph,
                                            const ScoreFunction& score,
                                            torch::Tensor* path_scores = nullptr) {
  const int64_t m = static_cast<int64_t>(rule.alphas.size());
  const torch::Tensor g =
      path_gradients("rar::integrated_gradients", model, input, baseline, target, rule.alphas,
                     internal_batch_size, create_graph, score, path_scores);
  const auto weights = torch::tensor(rule.weights, input.options().dtype(torch::kDouble))
                           .to(input.options())
                           .view(leading_shape(m, input.dim()));
  return (g * weights).sum(0) * (input - baseline);
}

/// Validates IG arguments common to every entry point and returns the expanded baseline/target.
inline std::pair<torch::Tensor, torch::Tensor> prepare_ig(const char* fn,
                                                          const torch::Tensor& input,
                                                          const IGOptions& options) {
  check_input(fn, "input", input);
  TORCH_CHECK(options.steps() >= 1, fn, ": steps must be >= 1, got ", options.steps());
  rar::detail::check_batching(fn, "internal_batch_size", options.internal_batch_size());
  rar::detail::check_callable(fn, "score", options.score());
  TORCH_CHECK(std::isfinite(options.tolerance()) && options.tolerance() >= 0, fn,
              ": tolerance must be finite and >= 0 (0 = a fixed number of steps), got ",
              options.tolerance());
  TORCH_CHECK(options.tolerance() == 0 || options.max_steps() >= options.steps(), fn,
              ": max_steps must be >= steps (", options.steps(), "), got ", options.max_steps());
  return {expand_baseline(fn, options.baseline(), input),
          expand_target(fn, options.target(), input.size(0), input.device())};
}

/// Integrated Gradients with the completeness delta and the points used, fixed or adaptive
/// (`options.tolerance()`): the implementation behind both public entry points.
///
/// Adaptive rounds: every sample starts with m = `steps` points; after each round the samples
/// whose |delta| exceeds δ·|ΔF| + 8·ε·(|F(x)| + |F(x′)|) run again with 2m points, or twice
/// the intervals for the trapezoid rule (their rows only, so easy samples stop early; only the
/// new nodes for the nested right, left and trapezoid rules), until none is left or the next
/// rule would exceed `max_steps`. The result of a
/// sample is that of its last round, so with `create_graph` it stays differentiable (the
/// choice of m is piecewise constant).
template <class Model>
Attribution integrated_gradients_delta(const char* fn, Model& model, const torch::Tensor& input,
                                       const torch::Tensor& baseline, const torch::Tensor& target,
                                       const IGOptions& options) {
  const int64_t n = input.size(0);
  const bool graph = options.create_graph();
  const auto ends = [&] {
    torch::AutoGradMode grad_mode(graph);
    const torch::Tensor end = options.score()(call_model(model, input), target);
    const torch::Tensor start = options.score()(call_model(model, baseline.contiguous()), target);
    TORCH_CHECK(end.dim() == 1 && end.size(0) == n && start.sizes() == end.sizes(), fn,
                ": the score function must return one value per sample, shape [", n, "], got ",
                end.sizes());
    return std::make_pair(end, start);
  };
  const auto run = [&](const torch::Tensor& x, const torch::Tensor& b, const torch::Tensor& t,
                       int64_t steps) {
    return integrated_gradients_expanded(model, x, b, t, quadrature(options.method(), steps),
                                         options.internal_batch_size(), graph, options.score());
  };
  Attribution result;
  if (options.tolerance() == 0) {
    result.attributions = run(input, baseline, target, options.steps());
    const auto [end, start] = ends();
    result.delta = result.attributions.flatten(1).sum(1) - (end - start);
    result.points = torch::full({n}, options.steps(), torch::kLong);
    return result;
  }
  const auto [end, start] = ends();
  const torch::Tensor change = end - start;
  const double round_off = 8.0 * (input.scalar_type() == torch::kDouble
                                      ? std::numeric_limits<double>::epsilon()
                                      : std::numeric_limits<float>::epsilon());
  const torch::Tensor allowed =
      (options.tolerance() * change.abs() + round_off * (end.abs() + start.abs())).detach();
  const bool per_row_baseline = baseline.size(0) == n && n > 1;
  // The right, left and trapezoid rules nest: doubling their intervals keeps every node, so a
  // round evaluates only the new midpoints and halves the running weighted sum
  // W = Σ_k w_k ∇F(x_k). The others (Gauss–Legendre, middle) recompute each round.
  const Quadrature method = options.method();
  const bool nested = method == Quadrature::riemann_right || method == Quadrature::riemann_left ||
                      method == Quadrature::riemann_trapezoid;
  const auto intervals = [&](int64_t points) {
    return method == Quadrature::riemann_trapezoid ? points - 1 : points;
  };
  torch::Tensor attributions = torch::zeros_like(input), delta = torch::zeros_like(change);
  torch::Tensor points = torch::zeros({n}, torch::kLong);
  torch::Tensor active = torch::arange(n, torch::TensorOptions().dtype(torch::kLong).device(input.device()));
  torch::Tensor weighted;  // W of the active samples (nested rules)
  for (int64_t m = options.steps(), round = 0;; ++round) {
    const bool all = active.size(0) == n;
    const torch::Tensor x = all ? input : input.index_select(0, active);
    const torch::Tensor b =
        (all || !per_row_baseline ? baseline : baseline.index_select(0, active)).expand_as(x);
    const torch::Tensor t = all || !target.defined() || target.dim() == 0
                                ? target
                                : target.index_select(0, active);
    torch::Tensor a;
    if (!nested) {
      a = run(x, b, t, m);
    } else {
      const int64_t k = intervals(m);
      if (round == 0) {
        const QuadratureRule rule = quadrature(method, m);
        const torch::Tensor g = path_gradients(fn, model, x, b, t, rule.alphas,
                                               options.internal_batch_size(), graph, options.score());
        const auto w = torch::tensor(rule.weights, x.options().dtype(torch::kDouble))
                           .to(x.options())
                           .view(leading_shape(m, x.dim()));
        weighted = (g * w).sum(0);
      } else {
        // The midpoints (2i + 1) / (2K) of the K = k / 2 intervals of the previous round.
        std::vector<double> mid;
        for (int64_t i = 0; i < k / 2; ++i)
          mid.push_back(static_cast<double>(2 * i + 1) / static_cast<double>(k));
        const torch::Tensor g = path_gradients(fn, model, x, b, t, mid,
                                               options.internal_batch_size(), graph, options.score());
        weighted = 0.5 * weighted + g.sum(0) / static_cast<double>(k);
      }
      a = weighted * (x - b);
    }
    const torch::Tensor d = a.flatten(1).sum(1) - change.index_select(0, active);
    attributions = attributions.index_copy(0, active, a);
    delta = delta.index_copy(0, active, d);
    points.index_fill_(0, active.cpu(), m);
    const torch::Tensor missing = d.detach().abs() > allowed.index_select(0, active);
    // The next rule: twice the intervals (nested rules) or twice the points.
    const int64_t next = nested ? m + intervals(m) : 2 * m;
    if (!missing.any().template item<bool>() || next > options.max_steps()) break;
    if (nested) weighted = weighted.index_select(0, missing.nonzero().squeeze(1));
    active = active.masked_select(missing);
    m = next;
  }
  result.attributions = attributions;
  result.delta = delta;
  result.points = points;
  return result;
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
  if (options.tolerance() > 0)
    return detail::integrated_gradients_delta(fn, model, input, baseline, target, options)
        .attributions;
  return detail::integrated_gradients_expanded(
      model, input, baseline, target, quadrature(options.method(), options.steps()),
      options.internal_batch_size(), options.create_graph(), options.score());
}

/// Integrated Gradients and the convergence delta of each sample (completeness check).
///
/// `delta[n] = Σ_i attributions[n, i] − (score(x_n) − score(x'_n))`; it goes to 0 as steps grow.
/// Costs one extra forward over the inputs and one over the baselines. With
/// `options.tolerance(δ)` the points are chosen per sample (see `IGOptions::tolerance`) and
/// `points` says how many each sample used.
///
/// Example:
/// @code
/// auto result = rar::integrated_gradients_with_delta(model, x, rar::IGOptions().target(y));
/// double worst = result.delta.abs().max().item<double>();
/// auto adaptive = rar::integrated_gradients_with_delta(
///     model, x, rar::IGOptions().target(y).steps(4).tolerance(0.01));  // adaptive.points: [N]
/// @endcode
/// @param model any model
/// @param input batch `[N, ...]`
/// @param options as for `rar::integrated_gradients`
/// @return the attributions (as `rar::integrated_gradients` returns them), `delta` `[N]` and
///         the `points` each sample used
template <class Model>
Attribution integrated_gradients_with_delta(Model&& model, const torch::Tensor& input,
                                            const IGOptions& options = {}) {
  detail::static_check_model<Model>();
  const char* fn = "rar::integrated_gradients_with_delta";
  const auto [baseline, target] = detail::prepare_ig(fn, input, options);
  return detail::integrated_gradients_delta(fn, model, input, baseline, target, options);
}

}  // namespace rar
